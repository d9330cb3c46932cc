"""The dashboard in a real headless browser (Debian's chromium) against the reporting API served
by gunicorn as a real process, over views the real projector built: what a federation officer
sees, in Vietnamese, with Vietnamese number formats, drill-down and scope.

Needs:  apt-get update && apt-get install -y chromium"""
from __future__ import annotations

import struct
from pathlib import Path

import pytest
import requests

from platformkit.auth import mint
from tests.reporting.browser import Page, dump_dom, screenshot
from tests.reporting.projected import projected_province
from tests.support.infra import Proc, free_port, gunicorn_args, wait_http

pytestmark = pytest.mark.integration

PLATFORM = mint("test-platform", "*", ["admin"])
PROVINCE = mint("test-hcm", "HCM", ["officer"])
COMMUNE = mint("test-x000", "HCM-X000", ["viewer"])
TARGETS = [("HCM-X000", "members.admitted", 150), ("HCM-X001", "members.admitted", 400),
           ("HCM-X000", "welfare.amount", 40_000_000)]


@pytest.fixture(scope="module")
def server(infra, tmp_path_factory):
    logs = tmp_path_factory.mktemp("reporting-dashboard")
    with projected_province(logs) as province:
        port = free_port()
        web = Proc(gunicorn_args("services.reporting.app:create_app()", port), {}, "gunicorn", logs)
        web.start({"WEB_WORKERS": "1", "WEB_THREADS": "4"})
        try:
            base = f"http://127.0.0.1:{port}"
            wait_http(f"{base}/healthz")
            for unit, indicator, value in TARGETS:
                r = requests.put(f"{base}/api/v1/targets/{unit}", json={"year": 2025, "indicator": indicator,
                                                                        "value": value},
                                 headers={"Authorization": f"Bearer {PROVINCE}"}, timeout=10)
                assert r.status_code == 200, r.text
            yield {"base": base, "province": province, "logs": logs, "web": web}
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


def dashboard(server, token=PROVINCE, **params) -> Page:
    """Load the dashboard the way a user opens a link, and wait for it to have rendered."""
    query = "&".join(f"{k}={v}" for k, v in {"token": token, "year": "2025", **params}.items())
    url = f"{server['base']}/dashboard#{query}"
    for _ in range(2):  # one more go if a slow machine ran out of virtual time before the API answered
        page = Page(dump_dom(url))
        if page.text("status").startswith(("Cập nhật", "Lỗi")):
            break
    return page


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
    assert admitted["target"] == 550
    assert rows["members.admitted"][2:] == ["550", vn_pct(admitted["attainment_pct"])]
    assert rows["welfare.amount"][2] == "40.000.000 đ"
    assert rows["members.active"][2:] == ["—", "chưa giao chỉ tiêu"]
    # one row per child unit, in the API's order, with their own figures
    kids = page.body_rows("kids")
    assert [r["attrs"]["data-unit"] for r in kids] == [c["unit"]["id"] for c in view["children"]] == ["HCM-X000",
                                                                                                    "HCM-X001"]
    for row, child in zip(kids, view["children"]):
        figures = {r["indicator"]: r for r in child["rows"]}
        assert row["cells"][0] == child["unit"]["name"]
        assert row["cells"][1] == vn_int(figures["members.active"]["actual"])
        assert row["cells"][2].startswith(vn_int(figures["members.admitted"]["actual"]))
        assert f"{vn_pct(figures['members.admitted']['attainment_pct'])} KH" in row["cells"][2]
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
                                            vn_pct(total["members.admitted"]["attainment_pct"])]
    # a CĐCS has no children
    leaf = dashboard(server, token=PLATFORM, kind="Y", unit="HCM-X000-S00000")
    assert leaf.text("title") == "CĐCS đơn vị 1"
    assert leaf.text("kids").endswith("Không có đơn vị trực thuộc")


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
    url = f"{server['base']}/dashboard#token={PROVINCE}&year=2025&kind=Y"
    screenshot(url, path, 1400, 1000)
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1400, 1000)
    assert len(data) > 20_000, len(data)  # a rendered page, not a blank one
    print(f"screenshot: {path}")
