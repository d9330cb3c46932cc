"""The dashboard in a real headless browser (Debian's chromium) against the reporting API served
by gunicorn as a real process, over views the real projector built: what a federation officer
sees, in Vietnamese, with Vietnamese number formats, drill-down and scope; and that what the API
answers (unit names, codes, ids a CĐCS officer can set) is only ever shown as text, under a strict
Content-Security-Policy, with the token kept in the page's memory only.

Needs:  apt-get update && apt-get install -y chromium"""
from __future__ import annotations

import json
import re
import struct
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from platformkit import config
from platformkit.auth import mint
from platformkit.envelope import Envelope
from platformkit.kafka_io import EventPublisher
from tests.reporting.browser import Browser, Page, Tab
from tests.reporting.projected import projected_province
from tests.reporting.scenario import sector_targets
from tests.support.infra import Proc, free_port, gunicorn_args, wait_http, wait_until

pytestmark = pytest.mark.integration

PLATFORM = mint("test-platform", "*", ["admin"])
PROVINCE = mint("test-hcm", "HCM", ["officer"])
COMMUNE = mint("test-x000", "HCM-X000", ["viewer"])
TARGETS = [("HCM-X000", "members.admitted", 150), ("HCM-X001", "members.admitted", 400),
           ("HCM-X000", "welfare.amount", 40_000_000)]

# Names a unit's officers can give it: each must show as the literal text. Units of the synthetic
# province renamed (after their siblings in the API's order by name, which the tests above assert),
# and a small subtree added under HN: a commune whose id, code and name are hostile (the name in
# Vietnamese, with markup characters) and its CĐCS named with nothing but a payload.
IMG = '<img src=x onerror="window.__xss=1">'
SCRIPT = "<script>window.__xss=2</script>"
SVG = '"><svg onload=window.__xss=3>'
IFRAME = '<iframe srcdoc="<script>parent.__xss=5</script>"></iframe>'
RENAMED = {"HCM-X001": f"Công đoàn phường 2 {IMG}", "HCM-X000-S00002": f"CĐCS đơn vị 3 {SCRIPT}",
           "HCM-X000-S00004": f"CĐCS đơn vị 5 {SVG}"}
HOSTILE_ID = 'HN-X9"><svg onload=window.__xss=6>'
HOSTILE_CODE = '<img src=x onerror="window.__xss=4">'  # shown in the breadcrumbs
VIETNAMESE = 'Công đoàn cơ sở "Hợp tác xã Đồng Xuân" – Hoàn Kiếm & <b>Hà Nội</b> &amp; Ứng Hòa'
HOSTILE_CDCS = {"HN-X9-S1": IFRAME, "HN-X9-S2": IMG, "HN-X9-S3": SCRIPT, "HN-X9-S4": SVG}

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer"}


def _event(type_: str, unit: str, data: dict, version: int) -> Envelope:
    return Envelope(id=str(uuid.uuid4()), source="membership", type=type_, subject=unit,
                    time="2025-06-02T09:00:00.000Z", data=data, aggregateversion=version)


def hostile_units(province) -> list:
    """Renames of units of the synthetic province, and a commune (hostile id, code and a name in
    Vietnamese with markup characters) and its CĐCS under HN, as membership events."""
    events = []
    for uid, name in RENAMED.items():
        unit = province.units[uid]
        unit.version += 1
        events.append(_event("membership.unit.renamed.v1", uid, {
            "unit_id": uid, "ancestors": unit.ancestors, "old_name": unit.name, "name": name,
            "effective_date": "2025-06-02"}, unit.version))
        unit.name = name
    created = [(HOSTILE_ID, ["VN", "HN"], HOSTILE_CODE, VIETNAMESE, "commune", 3)]
    created += [(uid, ["VN", "HN", HOSTILE_ID], uid, name, "cdcs", 4) for uid, name in HOSTILE_CDCS.items()]
    for uid, ancestors, code, name, kind, level in created:
        parent = ancestors[-1]
        events.append(_event("membership.unit.created.v1", uid, {
            "unit_id": uid, "parent_id": parent, "ancestors": ancestors, "name": name, "code": code, "kind": kind,
            "level": level, "sector": None, "effective_date": "2025-06-02"}, 1))
    return events


# Under HCM-X001: a CĐCS eligible for rating but not rated (its sector's share falls short of a
# target), and one dissolved during the year (marked in the drill-down).
UNRATED, CLOSED = "HCM-X001-D1", "HCM-X001-D2"


def unrated_and_closed(province) -> list:
    ancestors = province.units["HCM-X001"].ancestors + ["HCM-X001"]
    events = []
    for uid, name, founded in ((UNRATED, "CĐCS chưa xếp loại", "2023-01-10"), (CLOSED, "CĐCS đã giải thể", "2023-02-01")):
        base = {"unit_id": uid, "ancestors": ancestors}
        events.append(_event("membership.unit.created.v1", uid, {
            **base, "parent_id": "HCM-X001", "name": name, "code": uid, "kind": "cdcs", "level": 4,
            "sector": "informal", "effective_date": founded}, 1))
        events.append(_event("membership.cdcs.founded.v1", uid, {
            **base, "sector": "informal", "method": "standard", "founding_member_count": 7, "decision_no": "1/QĐ",
            "decision_date": founded, "effective_date": founded}, 2))
    events.append(_event("membership.unit.dissolved.v1", CLOSED, {"unit_id": CLOSED, "ancestors": ancestors,
                                                                   "effective_date": "2025-06-20"}, 3))
    return events


def publish_hostile_units(base: str, province) -> None:
    def eligible():
        r = requests.get(f"{base}/api/v1/views/HCM/ratings?year=2025", headers={"Authorization": f"Bearer {PLATFORM}"},
                         timeout=10)
        return r.json()["eligible"] if r.status_code == 200 else None

    before = eligible()
    publisher = EventPublisher()
    try:
        publisher.publish(config.topic("membership.events"), hostile_units(province) + unrated_and_closed(province))
    finally:
        publisher.close()
    wait_until(lambda: eligible() == before + 1, 60, interval=0.3, message="the unrated CĐCS projected")

    def projected():
        got = {}
        for parent in ("HCM", "HCM-X000", "HN", HOSTILE_ID):
            r = requests.get(f"{base}/api/v1/views/{requests.utils.quote(parent, safe='')}/children?period=2025",
                             headers={"Authorization": f"Bearer {PLATFORM}"}, timeout=10)
            if r.status_code != 200:
                return False
            got.update({c["unit"]["id"]: c["unit"]["name"] for c in r.json()["children"]})
        return all(got.get(uid) == name for uid, name in {**RENAMED, HOSTILE_ID: VIETNAMESE, **HOSTILE_CDCS}.items())
    wait_until(projected, 60, interval=0.3, message="the hostile unit names projected")


@pytest.fixture(scope="module")
def browser():
    with Browser() as b:
        yield b


@pytest.fixture(scope="module")
def server(infra, tmp_path_factory, browser):
    logs = tmp_path_factory.mktemp("reporting-dashboard")
    with projected_province(logs) as province:
        port = free_port()
        web = Proc(gunicorn_args('platformkit.run:app("reporting")', port), {}, "gunicorn", logs)
        web.start({"WEB_WORKERS": "1", "WEB_THREADS": "4"})
        try:
            base = f"http://127.0.0.1:{port}"
            wait_http(f"{base}/healthz")
            for unit, indicator, value in TARGETS:
                r = requests.put(f"{base}/api/v1/targets/{unit}", json={"year": 2025, "indicator": indicator,
                                                                        "value": value},
                                 headers={"Authorization": f"Bearer {PROVINCE}"}, timeout=10)
                assert r.status_code == 200, r.text
            publish_hostile_units(base, province.province)
            # plans for the province's CĐCS ratings, by sector (one reached, one not) and in total
            ratings = requests.get(f"{base}/api/v1/views/HCM/ratings?year=2025",
                                   headers={"Authorization": f"Bearer {PLATFORM}"}, timeout=10).json()
            sectors = sector_targets(ratings)
            for indicator, value in [(f"cdcs.rated.good_or_better_pct.{sector}", target) for sector, target in sectors] + [
                    ("cdcs.rated.good_or_better_pct", 95)]:
                r = requests.put(f"{base}/api/v1/targets/HCM", json={"year": 2025, "indicator": indicator, "value": value},
                                 headers={"Authorization": f"Bearer {PLATFORM}"}, timeout=10)
                assert r.status_code == 200, r.text
            yield {"base": base, "province": province, "logs": logs, "web": web, "browser": browser,
                   "sectors": sectors}
        finally:
            web.stop()  # SIGTERM: the master takes its worker down with it


def api(server, path, token=PLATFORM):
    r = requests.get(f"{server['base']}/api/v1{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def vn_int(n) -> str:
    """Intl.NumberFormat('vi-VN'): '.' groups thousands."""
    return f"{int(round(n)):,}".replace(",", ".")


def vn_pct(v) -> str:
    """Up to two decimals, ',' as the decimal mark, then ' %'."""
    text = f"{v:.2f}".rstrip("0").rstrip(".")
    whole, _, frac = text.partition(".")
    return vn_int(int(whole)) + ("," + frac if frac else "") + " %"


SETTLED = "/^(Cập nhật|Lỗi|Nhập mã|Mã truy cập)/.test(document.getElementById('status').textContent)"


def settled(tab: Tab) -> str:
    """Wait for the page to have rendered the API's answer (or an error): its status line says so."""
    tab.wait(SETTLED)
    return tab.evaluate("document.getElementById('status').textContent")


@contextmanager
def opened(server, token=PROVINCE, bypass_csp=False, query: str = "", **params):
    """The dashboard opened the way a user opens a link (#token=... in the fragment, which never
    reaches a server), once it has rendered; a fresh browser context (empty storage) each time."""
    fragment = "&".join(f"{k}={requests.utils.quote(str(v), safe='')}"
                        for k, v in {"token": token, "year": "2025", **params}.items() if v is not None)
    tab = server["browser"].open(f"{server['base']}/dashboard{query}#{fragment}", bypass_csp=bypass_csp)
    try:
        settled(tab)
        yield tab
    finally:
        tab.close()


def dashboard(server, token=PROVINCE, **params) -> Page:
    """Load the dashboard the way a user opens a link, and wait for it to have rendered."""
    with opened(server, token, **params) as tab:
        return tab.page()


def own_rows(page: Page) -> dict[str, list[str]]:
    return {r["attrs"]["data-ind"]: r["cells"] for r in page.body_rows("own")}


def test_province_page_in_vietnamese_with_vietnamese_numbers(server):
    page = dashboard(server, kind="Y")
    assert page.text("status").startswith("Cập nhật"), page.text("status")
    view = api(server, "/views/HCM/children?period=2025")
    assert page.text("title") == "LĐLĐ HCM" == view["unit"]["name"]
    assert page.text("range") == "Kỳ 2025: từ 01/01/2025 đến 31/12/2025"
    total = {r["indicator"]: r for r in view["total"]}
    rows = own_rows(page)
    assert list(rows) == [r["indicator"] for r in view["total"]]
    assert rows["members.active"][:2] == ["Đoàn viên hiện có", vn_int(total["members.active"]["actual"])]
    assert rows["members.admitted"][0] == "Kết nạp đoàn viên mới"
    # money: '.' thousands separators and ' đ'
    amount = total["welfare.amount"]["actual"]
    assert amount >= 1_000_000
    assert rows["welfare.amount"][1] == vn_int(amount) + " đ"
    assert rows["welfare.amount"][1].count(".") >= 2 and rows["welfare.amount"][1].endswith(" đ")
    assert rows["dues.collected"][1] == vn_int(total["dues.collected"]["actual"]) + " đ"
    # a percentage with a decimal comma
    female = total["members.female_pct"]["actual"]
    assert rows["members.female_pct"][1] == vn_pct(female) and "," in vn_pct(female)
    # targets summed from the children, attainment as a bar labelled in Vietnamese format
    admitted = total["members.admitted"]
    assert admitted["target"] == 550 and admitted["reached"] is (admitted["actual"] >= 550)
    assert rows["members.admitted"][2:] == ["550", vn_pct(admitted["attainment_pct"]),
                                            "Đạt" if admitted["reached"] else "Chưa đạt"]
    assert rows["welfare.amount"][2] == "40.000.000 đ"
    assert rows["members.active"][2:] == ["—", "chưa giao chỉ tiêu", "—"]
    # the share of eligible CĐCS rated good or better, against the province's plan (95 %)
    good = total["cdcs.rated.good_or_better_pct"]
    assert good["target"] == 95 and good["reached"] is False
    assert rows["cdcs.rated.good_or_better_pct"][1:] == [vn_pct(good["actual"]), "95 %",
                                                         vn_pct(good["attainment_pct"]), "Chưa đạt"]
    assert page.rows["own"][0]["cells"] == ["Chỉ tiêu", "Thực hiện", "Kế hoạch", "% kế hoạch", "Đánh giá"]
    # one row per child unit, in the API's order, with their own figures
    kids = page.body_rows("kids")
    assert [r["attrs"]["data-unit"] for r in kids] == [c["unit"]["id"] for c in view["children"]] == ["HCM-X000",
                                                                                                    "HCM-X001"]
    for row, child in zip(kids, view["children"]):
        figures = {r["indicator"]: r for r in child["rows"]}
        assert row["cells"][0] == child["unit"]["name"]
        assert row["cells"][1] == vn_int(figures["members.active"]["actual"])
        assert row["cells"][2].startswith(vn_int(figures["members.admitted"]["actual"]))
        assert f"{vn_pct(figures['members.admitted']['attainment_pct'])} KH · " in row["cells"][2]
        mark = "Đạt" if figures["members.admitted"]["reached"] else "Chưa đạt"
        assert row["cells"][2].endswith(f"KH · {mark}"), row["cells"][2]
        assert row["cells"][7].startswith(vn_int(figures["welfare.amount"]["actual"]) + " đ")
    header = page.rows["kids"][0]["cells"]
    assert header[:3] == ["Đơn vị", "Đoàn viên hiện có", "Kết nạp đoàn viên mới"]
    # the CĐCS ratings
    ratings = api(server, "/views/HCM/ratings?year=2025")
    assert page.text("ryear") == "2025"
    assert f"{ratings['rated']} CĐCS được xếp loại" in page.text("ratings")
    assert page.text("crumbs") == "HCM"  # a province officer is not offered the levels above


def test_default_period_is_the_statistics_year(server):
    page = dashboard(server, token=PLATFORM)
    assert page.text("title") == "Tổng Liên đoàn Lao động Việt Nam"  # the platform's root unit
    assert page.text("range") == "Kỳ 2025-SY: từ 01/12/2024 đến 30/11/2025"
    assert [r["attrs"]["data-unit"] for r in page.body_rows("kids")] == ["HCM", "HN"]
    h1 = dashboard(server, token=PLATFORM, kind="H1", unit="HCM")
    assert h1.text("range") == "Kỳ 2025-H1: từ 01/12/2024 đến 31/05/2025"
    view = api(server, "/views/HCM?period=2025-H1")
    admitted = next(r for r in view["rows"] if r["indicator"] == "members.admitted")
    assert own_rows(h1)["members.admitted"][1] == vn_int(admitted["actual"])


def test_drill_down_to_a_commune_shows_its_cdcs(server):
    page = dashboard(server, token=PLATFORM, kind="Y", unit="HCM-X000")
    assert page.text("status").startswith("Cập nhật"), page.text("status")
    assert page.text("title") == "Công đoàn phường 1"
    assert page.text("crumbs") == "↑ VN›↑ HCM›HCM-X000"
    view = api(server, "/views/HCM-X000/children?period=2025")
    kids = page.body_rows("kids")
    assert [r["attrs"]["data-unit"] for r in kids] == ["HCM-X000-S00000", "HCM-X000-S00002", "HCM-X000-S00004"]
    assert [r["cells"][0] for r in kids] == [c["unit"]["name"] for c in view["children"]]
    total = {r["indicator"]: r for r in view["total"]}
    rows = own_rows(page)
    assert rows["members.admitted"][1:] == [vn_int(total["members.admitted"]["actual"]), "150",
                                            vn_pct(total["members.admitted"]["attainment_pct"]),
                                            "Đạt" if total["members.admitted"]["reached"] else "Chưa đạt"]
    # a CĐCS has no children
    leaf = dashboard(server, token=PLATFORM, kind="Y", unit="HCM-X000-S00000")
    assert leaf.text("title") == "CĐCS đơn vị 1"
    assert leaf.text("kids").endswith("Không có đơn vị trực thuộc")


def test_ratings_by_sector_against_their_targets(server):
    """The share of ELIGIBLE CĐCS rated good or better, in total and per sector, with the plan and
    whether it is reached, as text."""
    page = dashboard(server, kind="SY")
    ratings = api(server, "/views/HCM/ratings?year=2025")
    assert ratings["eligible"] > ratings["rated"] > 0
    assert (f"{ratings['eligible']} CĐCS thuộc diện xếp loại (hoạt động đủ 12 tháng đến 30/11/2025); "
            f"{ratings['rated']} CĐCS được xếp loại") in page.text("ratings")
    rows = {r["attrs"]["data-sector"]: r["cells"] for r in page.body_rows("rsectors")}
    assert list(rows) == ["all"] + [s["sector"] for s in ratings["by_sector"]]
    assert page.rows["rsectors"][0]["cells"] == ["Khu vực", "Thuộc diện xếp loại", "Được xếp loại",
                                                 "Hoàn thành tốt nhiệm vụ trở lên", "Tỷ lệ", "Chỉ tiêu", "Đánh giá"]
    good = ratings["good_or_better"]
    assert rows["all"] == ["Toàn bộ", vn_int(ratings["eligible"]), vn_int(ratings["rated"]), vn_int(good["count"]),
                           vn_pct(good["share_pct"]), "95 %", "Chưa đạt"]
    by_sector = {s["sector"]: s for s in ratings["by_sector"]}
    (hit, hit_target), (missed, missed_target) = server["sectors"]
    assert hit_target > 0
    for sector, target, mark in ((hit, hit_target, "Đạt"), (missed, missed_target, "Chưa đạt")):
        s = by_sector[sector]
        g = s["good_or_better"]
        assert (g["target"], g["reached"]) == (target, mark == "Đạt")
        assert rows[sector] == [s["name_vi"], vn_int(s["eligible"]), vn_int(s["rated"]), vn_int(g["count"]),
                                vn_pct(g["share_pct"]), vn_pct(target), mark], sector
    for sector in set(by_sector) - {hit, missed}:
        assert rows[sector][5:] == ["—", "—"], sector  # no plan for that sector


def test_closed_units_are_marked_in_the_drill_down(server):
    with opened(server, PLATFORM, kind="Y", unit="HCM-X001") as tab:
        rows = tab.evaluate("[...document.querySelectorAll('#kids tr.child')].map(tr => [tr.dataset.unit, "
                            "tr.dataset.status, tr.className, tr.cells[0].textContent, tr.cells[0].title])")
        by_unit = {r[0]: r[1:] for r in rows}
        assert by_unit[CLOSED] == ["dissolved", "child closed", "CĐCS đã giải thể (đã giải thể 20/06/2025)",
                                   f"Tổng Liên đoàn Lao động Việt Nam › LĐLĐ HCM › {RENAMED['HCM-X001']} › "
                                   "CĐCS đã giải thể"]
        assert by_unit[UNRATED][:3] == ["active", "child", "CĐCS chưa xếp loại"]
        assert_inert(tab)


def test_commune_officer_sees_its_own_subtree_only(server):
    page = dashboard(server, token=COMMUNE, kind="Y")
    assert page.text("title") == "Công đoàn phường 1"
    assert page.text("crumbs") == "HCM-X000"
    assert len(page.body_rows("kids")) == 3
    refused = dashboard(server, token=COMMUNE, kind="Y", unit="HCM")
    assert refused.text("status").startswith("Lỗi 403"), refused.text("status")
    assert refused.body_rows("own") == []
    nobody = dashboard(server, token="not-a-token", kind="Y")
    assert nobody.text("status").startswith("Lỗi 401"), nobody.text("status")


def test_screenshot(server):
    path = server["logs"] / "dashboard-HCM.png"
    with opened(server, PROVINCE, kind="Y") as tab:  # a 1400x1000 viewport
        # the styles came from the stylesheet and the script's CSSOM widths, none refused by the CSP
        looks = tab.evaluate("""({
          header: getComputedStyle(document.querySelector('header')).backgroundColor,
          bars: [...document.querySelectorAll('.bar > i')].map(i => [i.className, i.style.width,
                                                                     getComputedStyle(i).backgroundColor]),
          segs: [...document.querySelectorAll('#ratings .seg')].map(s => [s.style.width,
                                                                         getComputedStyle(s).backgroundColor]),
          csp: window.__csp_violations })""")
        assert looks["header"] == "rgb(31, 78, 156)" and looks["csp"] == [], looks
        assert looks["bars"] and all(width.endswith("%") and colour != "rgba(0, 0, 0, 0)"
                                     for _, width, colour in looks["bars"]), looks
        assert looks["segs"] and all(width.endswith("%") and colour != "rgba(0, 0, 0, 0)"
                                     for width, colour in looks["segs"]), looks
        tab.screenshot(path)
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1400, 1000)
    assert len(data) > 20_000, len(data)  # a rendered page, not a blank one
    print(f"screenshot: {path}")


# ------------------------------------------------------------------ hostile data, CSP, the token

# What data could have turned into markup: elements of kinds the page never creates, event-handler
# attributes, scripts other than the dashboard's own, <b> outside the attainment bars, and whether
# any payload ran; the CSP violations the page reported (the page itself must need none).
INSPECT = """(() => {
  const all = [...document.querySelectorAll('*')];
  return {
    elements: [...document.querySelectorAll('img, svg, iframe, object, embed, frame, base, form, meta[http-equiv]')]
      .map(e => e.outerHTML),
    handlers: all.flatMap(e => [...e.attributes].filter(a => /^on/i.test(a.name)).map(a => e.tagName + ' ' + a.name)),
    scripts: [...document.scripts].map(s => s.getAttribute('src')),
    stylesheets: [...document.querySelectorAll('style, link')].map(e => e.getAttribute('href')),
    bold: [...document.querySelectorAll('b')].filter(b => !b.parentElement.classList.contains('bar'))
      .map(b => b.outerHTML),
    xss: typeof window.__xss,
    csp: window.__csp_violations,
  };
})()"""


def assert_inert(tab: Tab) -> None:
    tab.evaluate("new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)))")  # onload/onerror had their turn
    found = tab.evaluate(INSPECT)
    assert found == {"elements": [], "handlers": [], "scripts": ["/static/dashboard.js", "/static/periodic.js"],
                     "stylesheets": ["/static/dashboard.css"], "bold": [], "xss": "undefined", "csp": []}, found


def text_of(tab: Tab, ident: str) -> str:
    return tab.evaluate(f"document.getElementById({json.dumps(ident)}).textContent")


def children(tab: Tab) -> list[list[str]]:
    """[data-unit, the name cell's text] of each child row, as the DOM holds them (not re-parsed)."""
    return tab.evaluate("[...document.querySelectorAll('#kids tbody tr.child')].map(tr => [tr.dataset.unit, "
                        "tr.cells[0].textContent])")


def click_and_wait(tab: Tab, selector_js: str, title: str) -> None:
    """Click what the expression finds (as a user would), then wait for the page of `title`."""
    tab.evaluate(f"({selector_js}).click()")
    tab.wait(f"document.getElementById('title').textContent === {json.dumps(title)} && "
             f"document.getElementById('status').textContent.startsWith('Cập nhật')")


def child_row(unit_id: str) -> str:
    return f"[...document.querySelectorAll('#kids tr.child')].find(tr => tr.dataset.unit === {json.dumps(unit_id)})"


def crumb(unit_id: str) -> str:
    return f"[...document.querySelectorAll('#crumbs a')].find(a => a.textContent === {json.dumps('↑ ' + unit_id)})"


@pytest.mark.parametrize("csp", ["enforced", "bypassed"])
def test_hostile_unit_names_are_shown_as_text(server, csp):
    """With the CSP enforced, and with the browser told to ignore it: the page's own code must never
    turn data into markup, the CSP is the second line."""
    bypass = csp == "bypassed"
    # the province officer's page: a child named with an <img onerror>, then a click into it
    with opened(server, PROVINCE, bypass_csp=bypass, kind="Y") as tab:
        assert text_of(tab, "status").startswith("Cập nhật"), text_of(tab, "status")
        assert children(tab) == [["HCM-X000", "Công đoàn phường 1"], ["HCM-X001", RENAMED["HCM-X001"]]]
        assert tab.page().body_rows("kids")[1]["cells"][0] == RENAMED["HCM-X001"]  # serialised as text too
        assert_inert(tab)
        click_and_wait(tab, child_row("HCM-X001"), RENAMED["HCM-X001"])
        assert text_of(tab, "crumbs") == "↑ HCM›HCM-X001"
        assert_inert(tab)

    # a commune whose CĐCS are named with <script> and with an attribute break-out, then into each
    with opened(server, PLATFORM, bypass_csp=bypass, kind="Y", unit="HCM-X000") as tab:
        assert children(tab) == [["HCM-X000-S00000", "CĐCS đơn vị 1"],
                                 ["HCM-X000-S00002", RENAMED["HCM-X000-S00002"]],
                                 ["HCM-X000-S00004", RENAMED["HCM-X000-S00004"]]]
        assert_inert(tab)
        click_and_wait(tab, child_row("HCM-X000-S00002"), RENAMED["HCM-X000-S00002"])
        assert text_of(tab, "crumbs") == "↑ VN›↑ HCM›↑ HCM-X000›HCM-X000-S00002"
        assert_inert(tab)
        click_and_wait(tab, crumb("HCM-X000"), "Công đoàn phường 1")
        click_and_wait(tab, child_row("HCM-X000-S00004"), RENAMED["HCM-X000-S00004"])
        assert_inert(tab)

    # HN: a commune whose id breaks out of an attribute, whose code is an <img onerror> and whose
    # name is Vietnamese with markup characters; its CĐCS, named with payloads only
    with opened(server, PLATFORM, bypass_csp=bypass, kind="Y", unit="HN") as tab:
        assert children(tab) == [[HOSTILE_ID, VIETNAMESE]]
        assert_inert(tab)
        click_and_wait(tab, child_row(HOSTILE_ID), VIETNAMESE)
        assert text_of(tab, "crumbs") == f"↑ VN›↑ HN›{HOSTILE_CODE}"
        assert tab.evaluate("document.querySelector('#crumbs .here').textContent") == HOSTILE_CODE
        assert sorted(children(tab)) == sorted([uid, name] for uid, name in HOSTILE_CDCS.items())
        assert_inert(tab)
        for uid, name in HOSTILE_CDCS.items():
            click_and_wait(tab, child_row(uid), name)
            assert text_of(tab, "crumbs") == f"↑ VN›↑ HN›↑ {HOSTILE_ID}›{uid}"
            assert tab.evaluate("[...document.querySelectorAll('#crumbs a')].map(a => a.title)") == [
                "Lên cấp trên: VN", "Lên cấp trên: HN", f"Lên cấp trên: {HOSTILE_ID}"]
            assert text_of(tab, "kids").endswith("Không có đơn vị trực thuộc")
            assert_inert(tab)
            # back up by the breadcrumb: the hostile id in the API's path
            click_and_wait(tab, crumb(HOSTILE_ID), VIETNAMESE)
            assert_inert(tab)

    # opened directly by a link naming the unit (the fragment carries the hostile id)
    with opened(server, PLATFORM, bypass_csp=bypass, kind="Y", unit=HOSTILE_ID) as tab:
        assert text_of(tab, "title") == VIETNAMESE
        assert tab.page().text("title") == VIETNAMESE
        assert_inert(tab)


def test_dashboard_and_its_files_send_a_strict_policy(server):
    base = server["base"]
    html = requests.get(f"{base}/dashboard", timeout=10)
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
    for name, value in SECURITY_HEADERS.items():
        assert html.headers.get(name) == value, (name, html.headers)
    assert html.headers["Cache-Control"] == "no-store"
    # nothing inline the policy would refuse: scripts, styles and handlers are files
    assert re.findall(r'<script\b[^>]*>', html.text) == ['<script src="/static/dashboard.js" defer>',
                                                         '<script src="/static/periodic.js" defer>']
    assert not re.search(r"<style\b|\sstyle\s*=|\son[a-z]+\s*=|javascript:", html.text, re.I), html.text
    for name, kind in (("dashboard.js", "text/javascript"), ("periodic.js", "text/javascript"),
                       ("dashboard.css", "text/css")):
        r = requests.get(f"{base}/static/{name}", timeout=10)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith(kind), r.headers
        for header, value in SECURITY_HEADERS.items():
            assert r.headers.get(header) == value, (name, header, r.headers)
    for js in ("dashboard.js", "periodic.js"):
        script = re.sub(r"(?m)^\s*//.*$", "", requests.get(f"{base}/static/{js}", timeout=10).text)  # code only
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                     "localStorage", "sessionStorage", "document.cookie", "setAttribute('on", 'setAttribute("on'):
            assert sink not in script, (js, sink)
    assert requests.get(f"{base}/static/../app.py", timeout=10).status_code == 404


STORAGE = """({local: localStorage.length, session: sessionStorage.length, cookie: document.cookie,
  href: location.href, field: document.getElementById('token').value,
  dom: document.documentElement.outerHTML.includes(%s)})"""


def test_token_stays_in_the_page_memory(server):
    # from the fragment: used, then taken out of the address bar; nothing stored
    with opened(server, PROVINCE, kind="Y") as tab:
        assert text_of(tab, "status").startswith("Cập nhật")
        assert text_of(tab, "title") == "LĐLĐ HCM"
        assert tab.evaluate(STORAGE % json.dumps(PROVINCE)) == {
            "local": 0, "session": 0, "cookie": "", "href": f"{server['base']}/dashboard#year=2025&kind=Y",
            "field": "", "dom": False}
        assert tab.history()[-1] == f"{server['base']}/dashboard#year=2025&kind=Y"  # replaced, not pushed
        assert not [url for url in tab.history() if PROVINCE in url]
        # drilling down keeps working with the token held in memory
        click_and_wait(tab, child_row("HCM-X000"), "Công đoàn phường 1")
        assert tab.evaluate(STORAGE % json.dumps(PROVINCE))["local"] == 0

    # typed into the field: used, the field emptied; nothing stored
    with opened(server, None, kind="Y") as tab:
        assert text_of(tab, "status") == "Nhập mã truy cập rồi bấm Xem"
        assert text_of(tab, "title") == "…"
        tab.evaluate(f"document.getElementById('token').value = {json.dumps(COMMUNE)}; "
                     "document.getElementById('go').click()")
        tab.wait("document.getElementById('status').textContent.startsWith('Cập nhật')")
        assert text_of(tab, "title") == "Công đoàn phường 1"
        assert tab.evaluate(STORAGE % json.dumps(COMMUNE)) == {
            "local": 0, "session": 0, "cookie": "", "href": f"{server['base']}/dashboard#year=2025&kind=Y",
            "field": "", "dom": False}

    # from the query string: refused (it is in the server's logs already) and taken out of the address
    with opened(server, None, query=f"?token={PROVINCE}&kind=Y") as tab:
        assert text_of(tab, "status").startswith("Mã truy cập không được nhận qua ?token=")
        assert text_of(tab, "title") == "…"
        assert tab.page().body_rows("own") == []
        assert tab.evaluate("location.href") == f"{server['base']}/dashboard?kind=Y#year=2025"
        assert tab.evaluate(STORAGE % json.dumps(PROVINCE))["dom"] is False
