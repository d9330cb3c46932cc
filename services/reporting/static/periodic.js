// Periodic reports on the dashboard (docs/periodic-reports.md): the status tree of a period with
// drill-down and the completeness / on-time rates; the unit's own report as a form to enter, save
// and submit; the children's reports to approve, return or reopen; the form as CSV / XLSX.
//
// Same rules as dashboard.js: served as a file under the strict Content-Security-Policy, every value
// from the API or the user is put in the page as text (createElement / textContent, never markup),
// the token only in memory. dashboard.js tells this script the token, the unit and the year with a
// 'dashboard:unit' event on document each time it loads a unit. The section is closed at first and
// loads only while open: its reads (a whole subtree's reports) never compete with the attainment
// views for the server's heavy-read slots unless the user asks for it.
(function () {
  'use strict';

  const nf = new Intl.NumberFormat('vi-VN');
  const pf = new Intl.NumberFormat('vi-VN', { maximumFractionDigits: 2, minimumFractionDigits: 0 });
  const STATUS = { missing: 'Chưa nộp', draft: 'Đang soạn', submitted: 'Đã gửi, chờ duyệt', approved: 'Đã duyệt',
    returned: 'Bị trả lại' };
  const st = { token: '', unit: null, home: null, year: null, seq: 0 };
  const $ = id => document.getElementById(id);
  const enc = encodeURIComponent;

  const { el } = window.congdoanDom;  // dashboard.js's: values go into the page as text only
  function num(v) { return v === null || v === undefined ? el('span', 'muted', '—') : nf.format(v); }
  function pct(v) { return v === null || v === undefined ? el('span', 'muted', '—') : pf.format(v) + ' %'; }
  function vnDate(d) { return d ? String(d).slice(8, 10) + '/' + String(d).slice(5, 7) + '/' + String(d).slice(0, 4) : '—'; }
  function button(text, onClick, className) {
    const b = el('button', className || null, text);
    b.type = 'button';
    b.addEventListener('click', onClick);
    return b;
  }
  function say(text) { $('rp-status').textContent = text; }

  async function api(path, method, body) {
    const r = await fetch('/api/v1/periodic' + path, {
      method: method || 'GET', credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer',
      headers: Object.assign({ Authorization: 'Bearer ' + st.token, 'Accept-Language': 'vi' },
        body === undefined ? {} : { 'Content-Type': 'application/json' }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!r.ok) { const b = await r.json().catch(() => ({})); throw new Error(`${r.status}: ${b.message || r.statusText}`); }
    return r;
  }

  function period() { return $('rp-period').value; }

  function fillPeriods(year) {
    const sel = $('rp-period'), keep = sel.value;
    const codes = [[`${year}-SY`, `Năm ${year} (đến 30/11)`], [`${year}-H1`, `6 tháng đầu năm ${year} (đến 31/5)`]]
      .concat([1, 2, 3, 4].map(q => [`${year}-Q${q}`, `Biến động đoàn viên quý ${q}/${year}`]));
    sel.replaceChildren(...codes.map(([v, t]) => { const o = el('option', null, t); o.value = v; return o; }));
    if (codes.some(([v]) => v === keep)) sel.value = keep;
  }

  async function load(unitId) {
    st.unit = unitId;
    const seq = ++st.seq;
    say('Đang tải báo cáo…');
    try {
      // one after the other: each is a heavy read on the server (a few slots per process)
      const p = period(), base = `/${enc(unitId)}`;
      const tree = await api(`${base}/${enc(p)}/status`).then(r => r.json());
      const report = await api(`${base}/${enc(p)}/report`).then(r => r.json());
      const comp = await api(`${base}/${enc(p)}/completeness`).then(r => r.json());
      let approved = null, live = null;
      if (!/-Q[1-4]$/.test(p)) {
        approved = await api(`${base}/entered?period=${enc(p)}&basis=approved`).then(r => r.json());
        live = await api(`${base}/entered?period=${enc(p)}&basis=live`).then(r => r.json());
      }
      if (seq !== st.seq) return;
      renderTree(tree);
      renderForm(report);
      renderIndicators(comp.rows.filter(r => r.kind === 'ratio'), approved, live);
      say('Báo cáo cập nhật ' + new Date().toLocaleString('vi-VN'));
    } catch (e) {
      if (seq === st.seq) say('Lỗi ' + e.message);
    }
  }

  function rates(r) {
    return el('span', 'rates', `Đã nộp ${r.submitted}/${r.expected} (`, pct(r.completeness_pct), `), đúng hạn ${r.on_time}/${r.expected} (`,
      pct(r.on_time_pct), `), muộn ${r.late}, chưa nộp ${r.missing}, đã duyệt ${r.approved}`);
  }

  function renderTree(tree) {
    $('rp-title').textContent = `${tree.unit.name} — kỳ ${tree.period} (số liệu đến ${vnDate(tree.cutoff)})`;
    $('rp-rates').replaceChildren(rates(tree.rates));
    const up = $('rp-up');
    const above = new Set((st.home && st.home.ancestors) || []);
    const parent = (tree.unit.ancestors || []).slice(-1)[0];
    up.replaceChildren();
    if (parent && !above.has(parent) && st.home && st.home.id !== tree.unit.id) {
      up.append(button('↑ Lên cấp trên', () => load(parent)));
    }
    const body = $('rp-tree').tBodies[0];
    body.replaceChildren(...tree.children.map(ch => {
      const name = el('td', 'name', ch.unit.name);
      const tr = el('tr', 'rp-child ' + ch.status, name, el('td', 'status', STATUS[ch.status] || ch.status),
        el('td', null, vnDate(ch.due_date)), el('td', null, vnDate(ch.first_submitted_on)),
        el('td', null, ch.submitted ? (ch.on_time ? 'Đúng hạn' : 'Muộn') : (ch.late ? 'Quá hạn' : '—')),
        el('td', null, ch.rates ? rates(ch.rates) : ''), el('td', 'actions', ...actions(ch)));
      tr.dataset.unit = ch.unit.id;
      if (ch.has_children) {
        name.classList.add('drill');
        name.tabIndex = 0;
        name.title = 'Xem các đơn vị trực thuộc';
        name.addEventListener('click', () => load(ch.unit.id));
        name.addEventListener('keydown', e => { if (e.key === 'Enter') load(ch.unit.id); });
      }
      return tr;
    }));
  }

  // What the level above may do with a child's report: approve or return a submitted one, reopen
  // an approved one (a reason is required to return or reopen).
  function actions(ch) {
    if (ch.status !== 'submitted' && ch.status !== 'approved') return [];
    const reason = el('input', 'reason');
    reason.type = 'text';
    reason.placeholder = 'Lý do';
    reason.maxLength = 2000;
    const act = (step) => async () => {
      try {
        await api(`/${enc(ch.unit.id)}/${enc(period())}/report/${step}`, 'POST',
          step === 'approve' ? {} : { reason: reason.value });
        await load(st.unit);
      } catch (e) { say('Lỗi ' + e.message); }
    };
    if (ch.status === 'submitted') {
      return [button('Duyệt', act('approve'), 'approve'), reason, button('Trả lại', act('return'), 'return')];
    }
    return [reason, button('Mở lại', act('reopen'), 'reopen')];
  }

  function renderForm(rep) {
    $('rp-form-title').textContent = `${rep.kind_name} — ${rep.unit.name}: ${STATUS[rep.status] || rep.status}` +
      `, hạn nộp ${vnDate(rep.due_date)}` + (rep.first_submitted_on ? `, nộp ngày ${vnDate(rep.first_submitted_on)}` +
        (rep.on_time ? ' (đúng hạn)' : ' (muộn)') : '');
    $('rp-returned').textContent = rep.returned_reason ? 'Lý do trả lại: ' + rep.returned_reason : '';
    const own = st.home && (st.home.id === rep.unit.id);
    const editable = own && (rep.status === 'draft' || rep.status === 'returned');
    const body = $('rp-form').tBodies[0];
    body.replaceChildren(...rep.rows.map(r => {
      let ownCell;
      if (r.source === 'entered' && editable) {
        const input = el('input', 'entered');
        input.type = 'number';
        input.min = '0';
        input.step = '1';
        input.value = String(r.own);
        input.dataset.code = r.code;
        ownCell = el('td', null, input);
      } else {
        ownCell = el('td', null, r.source === 'entered' ? num(r.own) : '');
      }
      const tr = el('tr', r.source, el('td', 'name', r.name_vi), el('td', null, r.unit), ownCell,
        el('td', null, r.source === 'entered' ? num(r.from_children) : ''), el('td', 'value', num(r.value)),
        el('td', null, r.source === 'computed' ? num(r.live) : ''),
        el('td', 'adjustment', r.source === 'computed' && r.adjustment ? num(r.adjustment) : ''));
      tr.dataset.code = r.code;
      return tr;
    }));
    $('rp-union').textContent = rep.unionisation_pct === null || rep.unionisation_pct === undefined ? ''
      : 'Tỷ lệ đoàn viên trong CNVCLĐ: ' + pf.format(rep.unionisation_pct) + ' %';
    $('rp-save').hidden = $('rp-submit').hidden = !editable;
  }

  function mark(reached) {
    if (reached === true) return el('span', 'reached yes', 'Đạt');
    if (reached === false) return el('span', 'reached no', 'Chưa đạt');
    return el('span', 'muted', '—');
  }
  function value(row) { return row.kind === 'ratio' ? pct(row.actual) : num(row.actual); }

  // The rolled-up indicators of the subtree against their targets: the reporting rates, and the
  // entered figures as approved (frozen) and live (the latest entries, submitted or not).
  function renderIndicators(rates, approved, live) {
    const rows = rates.map(r => {
      const tr = el('tr', null, el('td', 'name', r.name_vi), el('td', null, value(r)), el('td', null, ''),
        el('td', null, r.target === null ? el('span', 'muted', '—') : pct(r.target)), el('td', null, mark(r.reached)));
      tr.dataset.ind = r.indicator;
      return tr;
    });
    if (approved && live) {
      const now = Object.fromEntries(live.rows.map(r => [r.indicator, r]));
      for (const r of approved.rows) {
        const tr = el('tr', null, el('td', 'name', `${r.name_vi} (${r.unit})`), el('td', null, value(r)),
          el('td', null, value(now[r.indicator] || {})), el('td', null, r.target === null ? el('span', 'muted', '—')
            : (r.kind === 'ratio' ? pct(r.target) : num(r.target))), el('td', null, mark(r.reached)));
        tr.dataset.ind = r.indicator;
        rows.push(tr);
      }
    }
    $('rp-indicators').tBodies[0].replaceChildren(...rows);
  }

  function entered() {
    const out = {};
    for (const input of document.querySelectorAll('#rp-form input.entered')) {
      const n = Number(input.value);
      out[input.dataset.code] = Number.isFinite(n) && input.value.trim() !== '' ? n : input.value;
    }
    return out;
  }

  async function send(submit) {
    try {
      const hasEntered = document.querySelector('#rp-form input.entered') !== null;
      await api(`/${enc(st.unit)}/${enc(period())}/report${submit ? '/submit' : ''}`, submit ? 'POST' : 'PUT',
        hasEntered ? { entered: entered() } : {});
      await load(st.unit);
    } catch (e) { say('Lỗi ' + e.message); }
  }

  async function download(ext) {
    if (!st.unit) return;
    try {
      const r = await api(`/${enc(st.unit)}/${enc(period())}/report/export.${ext}`);
      const blob = await r.blob();
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = (r.headers.get('Content-Disposition') || '').split('filename="')[1]?.replace('"', '') || `bao-cao.${ext}`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    } catch (e) { say('Lỗi ' + e.message); }
  }

  document.addEventListener('dashboard:unit', e => {
    const d = e.detail || {};
    if (!d.token || !d.unit) return;
    st.token = d.token;
    st.home = d.home || null;
    if (String(d.year) !== String(st.year)) { st.year = d.year; fillPeriods(d.year); }
    st.unit = d.unit;
    if ($('reports').open) load(d.unit);
  });
  $('reports').addEventListener('toggle', () => { if ($('reports').open && st.unit && st.token) load(st.unit); });
  $('rp-period').addEventListener('change', () => { if (st.unit) load(st.unit); });
  $('rp-save').addEventListener('click', () => send(false));
  $('rp-submit').addEventListener('click', () => send(true));
  $('rp-csv').addEventListener('click', () => download('csv'));
  $('rp-xlsx').addEventListener('click', () => download('xlsx'));
  $('rp-home').addEventListener('click', () => { if (st.home) load(st.home.id); });
})();
