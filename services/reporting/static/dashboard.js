// The attainment dashboard. Served as a file so that the page runs under a strict
// Content-Security-Policy (script-src 'self', no inline script, style or event handlers).
//
// Every value that comes from the API or from the address (unit names and codes, indicator names,
// error messages, parameters) is put into the page as text: DOM nodes built with createElement and
// textContent, never markup (no innerHTML / outerHTML / insertAdjacentHTML anywhere).
//
// The bearer token lives in a variable for the page's life only: never in localStorage,
// sessionStorage or a cookie. It comes from the address's fragment (#token=..., which browsers do
// not send to servers nor in Referer headers; removed from the address bar at once) or from the
// token field. A ?token= query string is refused: query strings end up in server logs.
(function () {
  'use strict';

  const nf = new Intl.NumberFormat('vi-VN');
  const pf = new Intl.NumberFormat('vi-VN', { maximumFractionDigits: 2, minimumFractionDigits: 0 });
  const KIDS_COLS = ['members.active', 'members.admitted', 'members.left', 'cdcs.founded', 'dues.collected',
    'officials.trained_pct', 'welfare.amount'];
  const RATINGS = new Set(['excellent', 'good', 'completed', 'not_completed']);
  const KINDS = new Set(['SY', 'H1', 'Y', 'Q', 'M']);
  const state = { unit: null, token: '', home: null, seq: 0 };

  const $ = id => document.getElementById(id);

  // An element with a class and children; strings and numbers become text nodes (never markup).
  function el(tag, className, ...children) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  // Shared with periodic.js (loaded after this one: both `defer`, run in document order), so that
  // the one function that puts values into the page exists once. Holds no state, no token.
  window.congdoanDom = Object.freeze({ el });

  function fmt(v, unit) {
    if (v === null || v === undefined) return el('span', 'muted', '—');
    if (unit === '%') return pf.format(v) + ' %';
    if (unit === 'đồng') return nf.format(Math.round(v)) + ' đ';
    return nf.format(v);
  }
  function vnMonth(m) { return m.slice(5, 7) + '/' + m.slice(0, 4); }
  function vnDate(d) { return String(d).slice(8, 10) + '/' + vnMonth(String(d)); }
  // Reached or not against the target: a text mark, never a colour alone.
  function mark(reached) {
    if (reached === true) return el('span', 'reached yes', 'Đạt');
    if (reached === false) return el('span', 'reached no', 'Chưa đạt');
    return el('span', 'muted', '—');
  }
  // A dissolved or merged unit, as a text after its name.
  function closedMark(unit) {
    if (unit.status !== 'dissolved' && unit.status !== 'merged') return null;
    const what = unit.status === 'dissolved' ? 'đã giải thể' : 'đã sáp nhập';
    return el('span', 'closed', ` (${what}${unit.closed_on ? ' ' + vnDate(unit.closed_on) : ''})`);
  }
  function pathText(unit) {
    return (unit.path || []).map(p => p.name).concat([unit.name]).join(' › ');
  }
  function lastDay(m) { const y = +m.slice(0, 4), mo = +m.slice(5, 7); return new Date(Date.UTC(y, mo, 0)).getUTCDate(); }
  function ddmmyyyy(m, end) { const d = end ? lastDay(m) : 1; return String(d).padStart(2, '0') + '/' + vnMonth(m); }
  function bar(pct) {
    if (pct === null || pct === undefined) return el('span', 'muted', 'chưa giao chỉ tiêu');
    const cls = pct >= 100 ? 'ok' : pct >= 80 ? 'mid' : 'low';
    const fill = el('i', cls);
    fill.style.width = Math.max(0, Math.min(Number(pct) || 0, 100)) + '%';  // CSSOM, allowed by the CSP
    return el('div', 'bar', fill, el('b', null, pf.format(pct) + ' %'));
  }
  function periodCode() {
    const kind = $('kind').value, y = $('year').value, sub = $('sub').value;
    return { SY: `${y}-SY`, H1: `${y}-H1`, Y: `${y}`, Q: `${y}-Q${sub}`, M: `${y}-${String(sub).padStart(2, '0')}` }[kind];
  }
  const enc = encodeURIComponent;

  async function api(path) {
    const r = await fetch('/api/v1' + path, {
      // error texts in Vietnamese, like the rest of the page
      headers: { Authorization: 'Bearer ' + state.token, 'Accept-Language': 'vi' }, credentials: 'omit', cache: 'no-store',
      referrerPolicy: 'no-referrer',
    });
    if (!r.ok) { const body = await r.json().catch(() => ({})); throw new Error(`${r.status}: ${body.message || r.statusText}`); }
    return r;
  }
  function setStatus(t) { $('status').textContent = t; }

  // The drill-down answers a page of children at a time (by name): read every page.
  async function drillDown(unitId, p) {
    let view = null, after = null;
    do {
      const page = await api(`/views/${enc(unitId)}/children?period=${enc(p)}&limit=500` +
        (after ? `&after=${enc(after)}` : '')).then(r => r.json());
      if (view) view.children.push(...page.children); else view = page;
      after = page.next_cursor;
    } while (after);
    return view;
  }

  async function load(unitId) {
    state.unit = unitId;
    const seq = ++state.seq;  // a slower earlier answer must not overwrite a later one
    const p = periodCode();
    setStatus('Đang tải…');
    try {
      const [kids, ratings] = await Promise.all([
        drillDown(unitId, p),
        api(`/views/${enc(unitId)}/ratings?year=${enc(p.slice(0, 4))}`).then(r => r.json()),
      ]);
      if (seq !== state.seq) return;
      render(kids, ratings);
      setStatus('Cập nhật ' + new Date().toLocaleString('vi-VN'));
      // periodic.js (the periodic reports section) follows the unit and year shown here
      document.dispatchEvent(new CustomEvent('dashboard:unit', {
        detail: { token: state.token, unit: unitId, year: p.slice(0, 4), home: state.home } }));
    } catch (e) {
      if (seq === state.seq) setStatus('Lỗi ' + e.message);
    }
  }

  function renderCrumbs(view) {
    // The path from the caller's own unit down to this one; the levels above the caller's unit are
    // outside its scope (the API would answer 403), so they are not offered.
    const above = new Set((state.home && state.home.ancestors) || []);
    const nodes = [];
    (view.unit.ancestors || []).filter(id => !above.has(id)).forEach(id => {
      const a = el('a', null, '↑ ' + id);
      a.title = 'Lên cấp trên: ' + id;
      a.addEventListener('click', () => load(id));
      nodes.push(a, el('span', 'sep', '›'));
    });
    nodes.push(el('span', 'here', view.unit.code || view.unit.id));
    $('crumbs').replaceChildren(...nodes);
  }

  function renderOwn(view) {
    $('own').tBodies[0].replaceChildren(...view.total.map(r => {
      const tr = el('tr', null, el('td', 'name', r.name_vi), el('td', null, fmt(r.actual, r.unit)),
        el('td', null, fmt(r.target, r.unit)), el('td', null, bar(r.attainment_pct)), el('td', 'mark', mark(r.reached)));
      tr.dataset.ind = r.indicator;
      return tr;
    }));
  }

  function renderKids(view) {
    const byCode = rows => new Map(rows.map(r => [r.indicator, r]));
    const names = byCode(view.total);
    const kids = $('kids');
    kids.tHead.replaceChildren(el('tr', null, el('th', 'name', 'Đơn vị'),
      ...KIDS_COLS.map(c => el('th', null, names.has(c) ? names.get(c).name_vi : c))));
    const rows = view.children.map(ch => {
      const figures = byCode(ch.rows);
      const name = el('td', 'name', ch.unit.name);
      const closed = closedMark(ch.unit);
      if (closed) name.append(closed);
      name.title = pathText(ch.unit);
      const tr = el('tr', closed ? 'child closed' : 'child', name, ...KIDS_COLS.map(c => {
        const r = figures.get(c);
        if (!r) return el('td');
        const td = el('td', null, fmt(r.actual, r.unit));
        if (r.attainment_pct !== null && r.attainment_pct !== undefined) {
          td.append(el('br'), el('span', 'muted', pf.format(r.attainment_pct) + ' % KH · '), mark(r.reached));
        }
        return td;
      }));
      tr.dataset.unit = ch.unit.id;
      tr.dataset.status = ch.unit.status || 'active';
      tr.tabIndex = 0;
      tr.addEventListener('click', () => load(ch.unit.id));
      tr.addEventListener('keydown', e => { if (e.key === 'Enter') load(ch.unit.id); });
      return tr;
    });
    if (!rows.length) {
      const td = el('td', 'name muted', 'Không có đơn vị trực thuộc');
      td.colSpan = KIDS_COLS.length + 1;
      rows.push(el('tr', null, td));
    }
    kids.tBodies[0].replaceChildren(...rows);
  }

  // The shares are of the CĐCS ELIGIBLE for rating (operating 12 months by 30 November): the strip
  // shows each grade's share of them (the grey rest: not rated), the table "good or better"
  // (hoàn thành tốt nhiệm vụ trở lên) overall and by sector against its target.
  function renderRatings(ratings) {
    $('ryear').textContent = ratings.year;
    if (!ratings.eligible && !ratings.rated) {
      $('ratings').replaceChildren(el('span', 'muted', 'Chưa có CĐCS thuộc diện xếp loại hay kết quả xếp loại được cấp trên xác nhận'));
      return;
    }
    const segs = ratings.shares.filter(s => s.count && s.share_pct !== null).map(s => {
      const seg = el('span', 'seg', pf.format(s.share_pct) + ' %');
      if (RATINGS.has(s.rating)) seg.classList.add(s.rating);
      seg.title = `${s.name_vi}: ${s.count}`;
      seg.style.width = Math.max(0, Math.min(Number(s.share_pct) || 0, 100)) + '%';
      return seg;
    });
    const summary = `${nf.format(ratings.eligible)} CĐCS thuộc diện xếp loại (hoạt động đủ 12 tháng đến ` +
      `${vnDate(ratings.cutoff)}); ${nf.format(ratings.rated)} CĐCS được xếp loại: ` +
      ratings.shares.map(s => `${s.name_vi} ${nf.format(s.count)}`).join('; ');
    const head = el('tr', null, el('th', 'name', 'Khu vực'), el('th', null, 'Thuộc diện xếp loại'),
      el('th', null, 'Được xếp loại'), el('th', null, 'Hoàn thành tốt nhiệm vụ trở lên'), el('th', null, 'Tỷ lệ'),
      el('th', null, 'Chỉ tiêu'), el('th', null, 'Đánh giá'));
    const line = (sector, name, s) => {
      const g = s.good_or_better;
      const tr = el('tr', sector === 'all' ? 'total' : null, el('td', 'name', name), el('td', null, nf.format(s.eligible)),
        el('td', null, nf.format(s.rated)), el('td', null, nf.format(g.count)), el('td', null, fmt(g.share_pct, '%')),
        el('td', null, fmt(g.target, '%')), el('td', 'mark', mark(g.reached)));
      tr.dataset.sector = sector;
      return tr;
    };
    const table = el('table', null, el('thead', null, head), el('tbody', null, line('all', 'Toàn bộ', ratings),
      ...ratings.by_sector.map(s => line(s.sector, s.name_vi, s))));
    table.id = 'rsectors';
    $('ratings').replaceChildren(el('div', 'strip', ...segs), el('div', 'muted', summary), table);
  }

  function render(view, ratings) {
    $('title').textContent = view.unit.name;
    $('range').textContent = `Kỳ ${view.period.code}: từ ${ddmmyyyy(view.period.first_month)} đến ${ddmmyyyy(view.period.last_month, true)}`;
    renderCrumbs(view);
    renderOwn(view);
    renderKids(view);
    renderRatings(ratings);
  }

  async function download(ext) {
    if (!state.unit) { setStatus('Chưa chọn đơn vị'); return; }
    try {
      const r = await api(`/views/${enc(state.unit)}/export.${ext}?period=${enc(periodCode())}`);
      const blob = await r.blob();
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = (r.headers.get('Content-Disposition') || '').split('filename="')[1]?.replace('"', '') || `bao-cao.${ext}`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    } catch (e) { setStatus('Lỗi ' + e.message); }
  }

  function option(value, label) {
    const o = document.createElement('option');
    o.value = String(value);
    o.textContent = String(label);
    return o;
  }

  function fillSub() {
    const kind = $('kind').value;
    $('subwrap').hidden = !(kind === 'Q' || kind === 'M');
    $('sublabel').textContent = kind === 'Q' ? 'Quý' : 'Tháng';
    const n = kind === 'Q' ? 4 : 12;
    $('sub').replaceChildren(...Array.from({ length: n }, (_, i) => option(i + 1, i + 1)));
  }

  // The token from the fragment, which is then removed from the address bar (and so from the
  // history and any bookmark); the other parameters (year, kind, unit) stay.
  function takeFragment() {
    const params = new URLSearchParams(location.hash.slice(1));
    const token = params.get('token');
    if (token !== null) {
      params.delete('token');
      const rest = params.toString();
      history.replaceState(history.state, '', location.pathname + location.search + (rest ? '#' + rest : ''));
    }
    return { params, token };
  }

  // A token in the query string is never used (it has reached the server's logs already): removed
  // from the address bar, and the user told.
  function refuseQueryToken() {
    const query = new URLSearchParams(location.search);
    if (!query.has('token')) return false;
    query.delete('token');
    const rest = query.toString();
    history.replaceState(history.state, '', location.pathname + (rest ? '?' + rest : '') + location.hash);
    return true;
  }

  async function boot(unit) {
    state.unit = null;
    try {
      const me = await api('/me').then(r => r.json());
      state.home = me.unit;
      const id = unit || (me.unit && me.unit.id);
      if (!id) { setStatus('Chưa có dữ liệu đơn vị'); return; }
      await load(id);
    } catch (e) { setStatus('Lỗi ' + e.message); }
  }

  async function start() {
    const { params, token } = takeFragment();
    const refused = refuseQueryToken();
    const query = new URLSearchParams(location.search);
    const param = name => params.get(name) ?? query.get(name);
    state.token = token || '';

    const now = new Date().getFullYear();
    const asked = /^\d{4}$/.test(param('year') || '') ? +param('year') : now;
    const years = [];
    for (let y = now + 1; y >= now - 5; y--) years.push(y);
    if (!years.includes(asked)) years.push(asked);
    const yearSel = $('year');
    yearSel.replaceChildren(...years.map(y => option(y, y)));
    yearSel.value = String(asked);
    if (KINDS.has(param('kind'))) $('kind').value = param('kind');
    fillSub();

    $('kind').addEventListener('change', fillSub);
    $('go').addEventListener('click', () => {
      const field = $('token'), typed = field.value.trim();
      field.value = '';  // the token is kept in a variable, not left in the page
      if (typed && typed !== state.token) { state.token = typed; boot(); return; }
      if (!state.token) { setStatus('Nhập mã truy cập rồi bấm Xem'); return; }
      if (state.unit) load(state.unit); else boot();
    });
    $('csv').addEventListener('click', () => download('csv'));
    $('xlsx').addEventListener('click', () => download('xlsx'));
    window.addEventListener('hashchange', () => {
      const fresh = takeFragment();
      if (fresh.token) { state.token = fresh.token; boot(fresh.params.get('unit')); }
    });

    if (state.token) await boot(param('unit'));
    else setStatus(refused ? 'Mã truy cập không được nhận qua ?token= trong địa chỉ: dùng #token= hoặc nhập vào ô'
      : 'Nhập mã truy cập rồi bấm Xem');
  }

  start();
})();
