"""The reporting HTTP API (Flask test client) over views the real projector built from a synthetic
province on real Kafka: figures equal the independent recount, drill-down, targets and
attainment (sums of targets, ratio of sums), series, ratings, CSV / XLSX exports, scope, errors
and the OpenAPI document."""
from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from platformkit.auth import mint
from services.reporting.app import create_app
from services.reporting.indicators import CATALOGUE, HEADLINE, RATINGS
from tests.reporting.projected import projected_province
from tests.reporting.recount import COMPARED

pytestmark = pytest.mark.integration

PERIOD = "2025"
COMMUNES = ["HCM-X000", "HCM-X001"]


@pytest.fixture(scope="module")
def province(infra, tmp_path_factory):
    with projected_province(tmp_path_factory.mktemp("reporting-api")) as done:
        yield done


@pytest.fixture(scope="module")
def client(province):
    return create_app().test_client()


def auth(unit: str, roles=("officer",)) -> dict:
    return {"Authorization": f"Bearer {mint(f'test-{unit}', unit, list(roles))}"}


PLATFORM = auth("*", ("admin",))
PROVINCE = auth("HCM")
COMMUNE = auth("HCM-X000")


def get(client, path, headers=PLATFORM, status=200):
    r = client.get("/api/v1" + path, headers=headers)
    assert r.status_code == status, (path, r.status_code, r.get_data(as_text=True)[:500])
    return r.get_json() if r.is_json else r


def rows_by_code(rows):
    return {r["indicator"]: r for r in rows}


def put_target(client, unit, indicator, value, headers=PROVINCE, year=2025, status=200):
    r = client.put(f"/api/v1/targets/{unit}", json={"year": year, "indicator": indicator, "value": value},
                   headers=headers)
    assert r.status_code == status, (unit, indicator, value, r.status_code, r.get_data(as_text=True))
    return r.get_json()


def pct(numerator, denominator):
    return round(100.0 * numerator / denominator, 2)


# ------------------------------------------------------------------------------------- figures

def test_unit_views_equal_the_recount(client, province):
    want = province.recount(PERIOD)
    codes = ",".join(COMPARED)
    for unit in ["VN", "HCM", *COMMUNES, "HCM-X000-S00000", "HCM-X001-S00001"]:
        view = get(client, f"/views/{unit}?period={PERIOD}&indicators={codes}")
        assert view["unit"]["id"] == unit
        assert view["period"] == {"code": PERIOD, "first_month": "2025-01", "last_month": "2025-12"}
        rows = rows_by_code(view["rows"])
        assert list(rows) == COMPARED
        for code in COMPARED:
            assert rows[code]["actual"] == want[unit].get(code, 0), (unit, code)
    hcm = want["HCM"]
    assert hcm["members.active"] > 100 and hcm["members.admitted"] > 0 and hcm["welfare.amount"] > 0


def test_default_view_is_the_headline_set_with_ratios_of_sums(client, province):
    want = province.recount(PERIOD)["HCM"]
    view = get(client, f"/views/HCM?period={PERIOD}")
    rows = rows_by_code(view["rows"])
    assert list(rows) == HEADLINE
    assert rows["members.active"]["actual"] == want["members.active"]
    assert rows["members.female_pct"]["actual"] == pct(want["members.active_female"], want["members.active"])
    assert rows["dues.collected_pct"]["actual"] == pct(want["dues.collected"], want["dues.due"])
    assert rows["members.active"]["name_vi"] == "Đoàn viên hiện có"
    # a half-year period differs from the calendar year and still equals the recount
    h1 = province.recount("2025-H1")["HCM"]
    rows = rows_by_code(get(client, "/views/HCM?period=2025-H1")["rows"])
    assert rows["members.admitted"]["actual"] == h1["members.admitted"] < want["members.admitted"]


def test_children_side_by_side_sum_to_the_parent(client, province):
    want = province.recount(PERIOD)
    view = get(client, f"/views/HCM/children?period={PERIOD}")
    assert [c["unit"]["id"] for c in view["children"]] == COMMUNES
    total = rows_by_code(view["total"])
    kids = [rows_by_code(c["rows"]) for c in view["children"]]
    flows = [c for c in HEADLINE if CATALOGUE[c].kind == "flow"]
    assert len(flows) >= 10
    for code in HEADLINE:
        if CATALOGUE[code].kind == "ratio":
            continue
        assert sum(k[code]["actual"] for k in kids) == total[code]["actual"], code
        for child, rows in zip(COMMUNES, kids):
            assert rows[code]["actual"] == want[child].get(code, 0), (child, code)
    assert all(k["members.admitted"]["actual"] > 0 for k in kids)
    # the commune's drill-down lists its CĐCS
    commune = get(client, f"/views/HCM-X000/children?period={PERIOD}")
    assert [c["unit"]["id"] for c in commune["children"]] == ["HCM-X000-S00000", "HCM-X000-S00002", "HCM-X000-S00004"]
    # in pages of one: the same children in the same order, each page with the same total
    pages, after = [], None
    while True:
        page = get(client, f"/views/HCM-X000/children?period={PERIOD}&limit=1" + (f"&after={after}" if after else ""))
        assert len(page["children"]) <= 1 and page["total"] == commune["total"]
        pages += page["children"]
        after = page["next_cursor"]
        if after is None:
            break
    assert pages == commune["children"] and commune["next_cursor"] is None
    bad = get(client, f"/views/HCM-X000/children?period={PERIOD}&after=eyJhIjoxfQ", status=400)
    assert "after" in bad["errors"]["query"]


# ------------------------------------------------------------------------------------- targets

def test_targets_are_assigned_by_the_level_above(client):
    out = put_target(client, "HCM-X000", "members.admitted", 40)
    assert out["unit"] == "HCM-X000" and out["value"] == 40 and out["assigned_by"] == "HCM"
    # a unit does not set its own target
    put_target(client, "HCM-X000", "members.admitted", 1, headers=COMMUNE, status=403)
    # nor a viewer above it
    put_target(client, "HCM-X000", "members.admitted", 1, headers=auth("HCM", ("viewer",)), status=403)
    # nor a province for a unit of another province
    put_target(client, "HN", "members.admitted", 1, status=403)
    # a ratio's target is a percentage
    r = client.put("/api/v1/targets/HCM-X000", json={"year": 2025, "indicator": "dues.collected_pct", "value": 120},
                   headers=PROVINCE)
    assert r.status_code == 422 and "value" in r.get_json()["errors"]
    r = client.put("/api/v1/targets/HCM-X000", json={"year": 2025, "indicator": "members.no_such", "value": 5},
                   headers=PROVINCE)
    assert r.status_code == 400 and "indicator" in r.get_json()["errors"]
    r = client.put("/api/v1/targets/HCM-X999", json={"year": 2025, "indicator": "members.admitted", "value": 5},
                   headers=PROVINCE)
    assert r.status_code == 404
    # the change is kept, and listed under the parent
    put_target(client, "HCM-X000", "members.admitted", 55)
    listed = get(client, "/targets/HCM?year=2025", headers=PROVINCE)["items"]
    assert {"unit": "HCM-X000", "indicator": "members.admitted", "value": 55.0} in [
        {k: t[k] for k in ("unit", "indicator", "value")} for t in listed]
    # a page of one unit at a time lists the same targets
    paged, after = [], None
    while True:
        page = get(client, "/targets/HCM?year=2025&limit=1" + (f"&after={after}" if after else ""), headers=PROVINCE)
        assert len({t["unit"] for t in page["items"]}) <= 1
        paged += page["items"]
        after = page["next_cursor"]
        if after is None:
            break
    assert paged == listed
    row = rows_by_code(get(client, f"/views/HCM-X000?period={PERIOD}", headers=COMMUNE)["rows"])["members.admitted"]
    assert row["target"] == 55


def test_attainment_is_the_ratio_of_sums_never_an_average(client, province):
    want = province.recount(PERIOD)
    a0, a1 = want["HCM-X000"]["members.admitted"], want["HCM-X001"]["members.admitted"]
    assert a0 > 0 and a1 > 0
    t0, t1 = a0, 4 * a1 + 7  # X000 exactly on plan (100 %), X001 far behind
    put_target(client, "HCM-X000", "members.admitted", t0)
    put_target(client, "HCM-X001", "members.admitted", t1)
    view = get(client, f"/views/HCM/children?period={PERIOD}", headers=PROVINCE)
    kids = {c["unit"]["id"]: rows_by_code(c["rows"])["members.admitted"] for c in view["children"]}
    assert kids["HCM-X000"]["target"] == t0 and kids["HCM-X000"]["attainment_pct"] == 100.0
    assert kids["HCM-X001"]["target"] == t1 and kids["HCM-X001"]["attainment_pct"] == pct(a1, t1)
    for row in kids.values():
        assert row["attainment_pct"] == round(100 * row["actual"] / row["target"], 2)
    # the province has no target of its own: its target is what it assigned to its children
    total = rows_by_code(view["total"])["members.admitted"]
    assert total["target"] == t0 + t1
    ratio_of_sums = pct(a0 + a1, t0 + t1)
    average = round((pct(a0, t0) + pct(a1, t1)) / 2, 2)
    assert abs(ratio_of_sums - average) > 1  # the case tells the two apart
    assert total["attainment_pct"] == ratio_of_sums
    # the same through the plain unit view
    row = rows_by_code(get(client, f"/views/HCM?period={PERIOD}")["rows"])["members.admitted"]
    assert (row["target"], row["attainment_pct"]) == (t0 + t1, ratio_of_sums)
    # one level up: VN has no target, HCM none of its own -> VN's target is what VN assigned (none)
    vn = rows_by_code(get(client, f"/views/VN?period={PERIOD}")["rows"])["members.admitted"]
    assert vn["target"] is None and vn["attainment_pct"] is None


def test_an_own_target_wins_over_the_sum_of_the_children(client, province):
    want = province.recount(PERIOD)["HCM"]["cdcs.active"]
    put_target(client, "HCM-X000", "cdcs.active", 100)
    put_target(client, "HCM-X001", "cdcs.active", 100)
    put_target(client, "HCM", "cdcs.active", 8, headers=auth("VN"))
    row = rows_by_code(get(client, f"/views/HCM?period={PERIOD}")["rows"])["cdcs.active"]
    assert row["target"] == 8 and row["attainment_pct"] == pct(want, 8)


def test_ratio_targets_are_never_summed_and_no_target_means_null(client, province):
    put_target(client, "HCM-X000", "dues.collected_pct", 90)
    view = get(client, f"/views/HCM/children?period={PERIOD}")
    x0 = rows_by_code(view["children"][0]["rows"])["dues.collected_pct"]
    assert x0["target"] == 90 and x0["attainment_pct"] == round(100 * x0["actual"] / 90, 2)
    total = rows_by_code(view["total"])
    assert total["dues.collected_pct"]["target"] is None and total["dues.collected_pct"]["attainment_pct"] is None
    # nobody assigned welfare.cases: no target, no attainment, but an actual
    assert total["welfare.cases"]["target"] is None and total["welfare.cases"]["attainment_pct"] is None
    assert total["welfare.cases"]["actual"] == province.recount(PERIOD)["HCM"]["welfare.cases"] > 0


# ------------------------------------------------------------------------------ series, ratings

@pytest.mark.parametrize("indicator", ["members.admitted", "welfare.amount", "dues.collected"])
def test_series_flow_points_sum_to_the_period_actual(client, province, indicator):
    series = get(client, f"/views/HCM/series?indicator={indicator}&first=2025-01&last=2025-12")
    assert [p["month"] for p in series["points"]] == [f"2025-{m:02d}" for m in range(1, 13)]
    assert sum(p["value"] for p in series["points"]) == province.recount(PERIOD)["HCM"][indicator] > 0
    q3 = get(client, f"/views/HCM/series?indicator={indicator}&first=2025-07&last=2025-09")
    assert [p["month"] for p in q3["points"]] == ["2025-07", "2025-08", "2025-09"]
    assert sum(p["value"] for p in q3["points"]) == province.recount("2025-Q3")["HCM"].get(indicator, 0)


def test_series_of_a_stock_ends_at_the_period_level(client, province):
    series = get(client, "/views/HCM/series?indicator=members.active&first=2025-01&last=2025-12")
    assert series["points"][-1]["value"] == province.recount(PERIOD)["HCM"]["members.active"]
    assert series["points"][5]["value"] == province.recount("2025-06")["HCM"]["members.active"]
    get(client, "/views/HCM/series?indicator=members.active&first=2025-09&last=2025-03", status=422)


def test_ratings_shares_match_the_confirmed_ratings(client, province):
    """Shares of the CĐCS eligible for rating (more in tests/reporting/test_ratings.py)."""
    want = province.recount(PERIOD)
    for unit in ["HCM", "HCM-X000"]:
        view = get(client, f"/views/{unit}/ratings?year=2025")
        assert view["rated"] == want[unit]["cdcs.rated"] > 0
        assert view["eligible"] == want[unit]["cdcs.rating_eligible"] >= view["rated"]
        counts = {s["rating"]: s["count"] for s in view["shares"]}
        assert counts == {r: want[unit].get(f"cdcs.rated.{r}", 0) for r in RATINGS}
        assert sum(counts.values()) == view["rated"]
        assert abs(sum(s["share_pct"] for s in view["shares"]) - pct(view["rated"], view["eligible"])) < 0.05
        for s in view["shares"]:
            assert s["share_pct"] == pct(s["count"], view["eligible"])
        assert sum(s["rated"] for s in view["by_sector"]) == view["rated"]
        assert sum(s["eligible"] for s in view["by_sector"]) == view["eligible"]


# ------------------------------------------------------------------------------------- exports

def field_errors(body: dict) -> dict:
    """{field: messages}; flask-smorest nests the messages of query arguments under "query"
    (platformkit.web unwraps only "json")."""
    errors = dict(body.get("errors") or {})
    return {**errors, **errors.pop("query", {})}


def _num(cell: str):
    return None if cell == "" else float(cell)


def test_csv_export_matches_the_json_view(client, province):
    put_target(client, "HCM-X000", "members.admitted", 30)
    view = get(client, f"/views/HCM/children?period={PERIOD}")
    r = get(client, f"/views/HCM/export.csv?period={PERIOD}")
    assert r.mimetype == "text/csv"
    assert 'filename="chi-tieu-HCM-2025.csv"' in r.headers["Content-Disposition"]
    raw = r.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    title, header, body = lines[0], lines[1], lines[2:]
    assert "LĐLĐ HCM" in title[0] and PERIOD in title[0]
    assert header[:3] == ["Mã đơn vị", "Tên đơn vị", "Trạng thái"]
    assert len(header) == 3 + 4 * len(HEADLINE)
    for i, code in enumerate(HEADLINE):
        name = CATALOGUE[code].name_vi
        assert header[3 + 4 * i:7 + 4 * i] == [f"{name} — {col}"
                                               for col in ("thực hiện", "chỉ tiêu", "% kế hoạch", "đánh giá")]
    units = [(view["unit"], view["total"])] + [(c["unit"], c["rows"]) for c in view["children"]]
    assert [line[0] for line in body] == ["HCM", *COMMUNES]
    marks = {True: "Đạt", False: "Chưa đạt", None: ""}
    for line, (unit, rows) in zip(body, units):
        assert line[1] == unit["name"] and line[2] == "Đang hoạt động"
        for i, row in enumerate(rows):
            got = [_num(c) for c in line[3 + 4 * i:6 + 4 * i]] + [line[6 + 4 * i]]
            assert got == [row["actual"], row["target"], row["attainment_pct"], marks[row["reached"]]], \
                (unit["id"], row["indicator"])
    # the target just set shows in the commune's line, reached or not
    i = HEADLINE.index("members.admitted")
    assert _num(body[1][4 + 4 * i]) == 30
    admitted = province.recount(PERIOD)["HCM-X000"]["members.admitted"]
    assert body[1][6 + 4 * i] == ("Đạt" if admitted >= 30 else "Chưa đạt")


def test_xlsx_export_has_the_same_numbers(client):
    view = get(client, f"/views/HCM/children?period={PERIOD}")
    r = get(client, f"/views/HCM/export.xlsx?period={PERIOD}")
    assert r.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    ws = load_workbook(io.BytesIO(r.get_data())).active
    assert ws.title == "Chỉ tiêu"
    assert "LĐLĐ HCM" in ws.cell(1, 1).value
    assert "01/2025" in ws.cell(2, 1).value and "12/2025" in ws.cell(2, 1).value
    for i, code in enumerate(HEADLINE):
        ind = CATALOGUE[code]
        assert ws.cell(4, 4 + 4 * i).value == f"{ind.name_vi} ({ind.unit})"
        assert [ws.cell(5, 4 + 4 * i + j).value for j in range(4)] == ["Thực hiện", "Chỉ tiêu", "% KH", "Đánh giá"]
    units = [(view["unit"], view["total"])] + [(c["unit"], c["rows"]) for c in view["children"]]
    assert ws.max_row == 5 + len(units)
    marks = {True: "Đạt", False: "Chưa đạt", None: None}
    for n, (unit, rows) in enumerate(units):
        assert ws.cell(6 + n, 1).value == unit["id"] and ws.cell(6 + n, 2).value == unit["name"]
        assert ws.cell(6 + n, 3).value == "Đang hoạt động"
        for i, row in enumerate(rows):
            got = [ws.cell(6 + n, 4 + 4 * i + j).value for j in range(4)]
            assert got == [row["actual"], row["target"], row["attainment_pct"], marks[row["reached"]]], \
                (unit["id"], row["indicator"])
            if CATALOGUE[row["indicator"]].kind != "ratio":
                assert type(got[0]) is int, (unit["id"], row["indicator"])


def test_commune_exports_its_cdcs(client):
    body = get(client, f"/views/HCM-X000/export.csv?period={PERIOD}", headers=COMMUNE).get_data().decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(body)))[2:]
    assert [line[0] for line in lines] == ["HCM-X000", "HCM-X000-S00000", "HCM-X000-S00002", "HCM-X000-S00004"]


# ------------------------------------------------------------------------------- scope, errors

def test_scope_follows_the_hierarchy(client):
    for path in ["/views/HCM", "/views/HN", "/views/VN", "/views/HCM-X001", "/views/HCM-X001-S00001"]:
        body = get(client, f"{path}?period={PERIOD}", headers=COMMUNE, status=403)
        assert body["code"] == "forbidden"
    for path in ["/views/HCM/children", "/views/HCM/export.csv", "/views/HCM/export.xlsx"]:
        get(client, f"{path}?period={PERIOD}", headers=COMMUNE, status=403)
    get(client, "/views/HCM/ratings?year=2025", headers=COMMUNE, status=403)
    get(client, "/views/HCM/series?indicator=members.active&first=2025-01&last=2025-02", headers=COMMUNE, status=403)
    get(client, "/targets/HCM?year=2025", headers=COMMUNE, status=403)
    for path in ["/views/HCM-X000", "/views/HCM-X000-S00000", "/views/HCM-X000/children"]:
        get(client, f"{path}?period={PERIOD}", headers=COMMUNE)
    get(client, f"/views/HN?period={PERIOD}", headers=PROVINCE, status=403)
    me = get(client, "/me", headers=COMMUNE)
    assert me["unit"]["id"] == "HCM-X000" and me["unit"]["name"] == "Công đoàn phường 1"
    assert get(client, "/me")["unit"]["id"] == "VN"


def test_no_token_or_a_bad_token_is_401(client):
    for headers in [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}]:
        for path in [f"/views/HCM?period={PERIOD}", f"/views/HCM/export.csv?period={PERIOD}", "/indicators", "/me"]:
            r = client.get("/api/v1" + path, headers=headers)
            assert r.status_code == 401, (path, headers)
            assert r.get_json()["code"] == "unauthorized" and r.headers["WWW-Authenticate"] == "Bearer"
    r = client.put("/api/v1/targets/HCM-X000", json={"year": 2025, "indicator": "members.admitted", "value": 1})
    assert r.status_code == 401


def test_bad_input_is_400_naming_the_field_and_unknown_unit_404(client):
    for bad in ["2025-13", "2025-Q5", "25", "2025-12..2025-01"]:
        body = get(client, f"/views/HCM?period={bad}", status=400)
        assert body["code"] == "invalid_input" and "period" in field_errors(body), (bad, body)
    body = get(client, "/views/HCM", status=400)
    assert "period" in field_errors(body)
    body = get(client, f"/views/HCM?period={PERIOD}&indicators=members.active,nope", status=400)
    assert "indicators" in field_errors(body)
    body = get(client, "/views/HCM/series?indicator=members.active&first=2025-1&last=2025-02", status=400)
    assert "first" in field_errors(body)
    body = get(client, "/views/HCM/ratings?year=abc", status=400)
    assert "year" in field_errors(body)
    body = get(client, f"/views/NOWHERE?period={PERIOD}", status=404)
    assert body["code"] == "not_found" and "NOWHERE" in body["message"]
    get(client, f"/views/NOWHERE/children?period={PERIOD}", status=404)


def test_openapi_lists_every_endpoint_with_its_errors(client):
    spec = client.get("/openapi.json").get_json()
    app_rules = {r.rule for r in client.application.url_map.iter_rules() if r.rule.startswith("/api/v1/")}
    documented = {p.replace("{", "<").replace("}", ">") for p in spec["paths"]}
    assert app_rules == documented
    assert len(documented) == 9 + 12  # views, targets, catalogue; periodic reports (test_periodic.py)
    operations = 0
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method not in ("get", "put", "post", "delete", "patch"):
                continue
            operations += 1
            assert "401" in op["responses"], (method, path)
            if "{unit_id}" in path:
                assert {"400", "403", "404"} <= set(op["responses"]), (method, path)
    assert operations == 10 + 14
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert "422" in spec["paths"]["/api/v1/targets/{unit_id}"]["put"]["responses"]


def test_ranges_beyond_ten_years_are_refused_at_once(client, province):
    """The series that once never answered (0001-01..9999-12) is a 400 naming the field; the longest
    allowed span (120 months) answers."""
    import time
    started = time.monotonic()
    r = get(client, "/views/HCM/series?indicator=cdcs.active&first=0001-01&last=9999-12", status=400)
    assert time.monotonic() - started < 2  # refused by validation, before any database call
    assert set(field_errors(r)) >= {"first", "last"}
    r = get(client, "/views/HCM/series?indicator=cdcs.active&first=2016-01&last=2026-01", status=400)
    assert "120" in field_errors(r)["last"][0]
    r = get(client, "/views/HCM/series?indicator=cdcs.active&first=2016-01&last=2025-12")
    assert len(r["points"]) == 120
    for period in ("0001-01..9999-12", "2016-01..2026-01", "1899-SY"):
        r = get(client, f"/views/HCM?period={period}", status=400)
        assert "period" in field_errors(r)
    assert get(client, "/views/HCM?period=2016-01..2025-12")["period"]["first_month"] == "2016-01"
