"""The daily work of a federation's officers, through the reporting API (Flask test client) over
views the real projector built on real Kafka from a synthetic province plus CĐCS that exercise the
edges (tests/reporting/scenario.py):

- CĐCS rating shares divide by the CĐCS ELIGIBLE for rating (operating 12 months by 30 November
  and still active then), overall, by grade, good or better, and by sector: equal to an
  independent recount and to membership's own eligibility rule;
- per-sector targets on those shares, reached or not, in JSON, CSV and XLSX;
- counts are integers in every JSON answer, ratios numbers with two decimals;
- drill-down rows carry their status (dissolved / merged with the date) and path, closed
  children are left out on request;
- exported text cells that a spreadsheet would run as formulas are neutralised."""
from __future__ import annotations

import csv
import io
import json

import pytest
from openpyxl import load_workbook

from services.membership.domain import rating_eligible
from services.reporting.app import create_app
from services.reporting.indicators import CATALOGUE, HEADLINE, RATINGS, SECTORS
from tests.reporting import scenario
from tests.reporting.projected import projected_province
from tests.reporting.test_api import PLATFORM, PROVINCE, auth, get

pytestmark = pytest.mark.integration

YEAR = 2025
COMMUNE = scenario.COMMUNE


@pytest.fixture(scope="module")
def province(infra, tmp_path_factory):
    with projected_province(tmp_path_factory.mktemp("reporting-ratings"), seed=23, communes=2, cdcs=16,
                            members=300, extra=scenario.closures_and_edges) as done:
        yield done


@pytest.fixture(scope="module")
def client(province):
    return create_app().test_client()


NATION = auth("VN")


def put_target(client, unit, indicator, value, headers=NATION, status=200):
    r = client.put(f"/api/v1/targets/{unit}", json={"year": YEAR, "indicator": indicator, "value": value},
                   headers=headers)
    assert r.status_code == status, (unit, indicator, value, r.status_code, r.get_data(as_text=True))
    return r


def rows_by_code(rows):
    return {r["indicator"]: r for r in rows}


def pct(numerator, denominator):
    return round(100.0 * numerator / denominator, 2) if denominator else None


def field_errors(body: dict) -> dict:
    errors = dict(body.get("errors") or {})
    return {**errors, **errors.pop("query", {})}


# ------------------------------------------------------------------------------ rating shares

def eligible_by_the_domain_rule(envs, year: int) -> dict[str, str]:
    """{CĐCS: sector} eligible for `year`: membership's own `rating_eligible` on the founding date,
    and not dissolved or merged on or before 30 November."""
    founded, closed = {}, {}
    for e in envs:
        if e.type == "membership.cdcs.founded.v1":
            founded[e.data["unit_id"]] = e.data
        elif e.type in ("membership.unit.dissolved.v1", "membership.unit.merged.v1"):
            closed[e.data["unit_id"]] = e.data["effective_date"]
    return {u: d["sector"] for u, d in founded.items()
            if rating_eligible(d, year) and not (u in closed and closed[u] <= f"{year}-11-30")}


def test_scenario_cases_are_counted_as_the_rules_say(client, province):
    eligible = eligible_by_the_domain_rule(province.envs, YEAR)
    for case in scenario.CASES:
        assert (case.unit_id in eligible) == case.eligible_2025, case
        view = get(client, f"/views/{case.unit_id}/ratings?year={YEAR}")
        assert view["eligible"] == int(case.eligible_2025), case
        assert view["rated"] == int(case.rating_counts), case
        counts = {s["rating"]: s["count"] for s in view["shares"]}
        assert counts == {r: int(case.rating_counts and r == case.rating) for r in RATINGS}, case
    # the synthetic province rates CĐCS founded during the year too (membership would refuse it):
    # those ratings count nowhere, so a share never exceeds 100 %
    rated_not_eligible = {e.data["unit_id"] for e in province.envs if e.type == "membership.cdcs.rated.v1"
                          and e.data["status"] == "confirmed"} - set(eligible)
    assert {"HCM-X000-E2", "HCM-X000-E3"} <= rated_not_eligible and len(rated_not_eligible) >= 3


@pytest.mark.parametrize("unit", ["VN", "HCM", COMMUNE, "HCM-X001"])
def test_rating_shares_divide_by_the_eligible_cdcs(client, province, unit):
    want = province.recount(str(YEAR))[unit]
    eligible = eligible_by_the_domain_rule(province.envs, YEAR)
    view = get(client, f"/views/{unit}/ratings?year={YEAR}")
    assert view["cutoff"] == f"{YEAR}-11-30"
    assert view["eligible"] == want["cdcs.rating_eligible"] > view["rated"] == want["cdcs.rated"] > 0
    if unit in ("VN", "HCM"):  # every CĐCS is in HCM: the domain's rule gives the same number
        assert view["eligible"] == len(eligible)
    assert view["rated_pct"] == pct(view["rated"], view["eligible"])
    counts = {s["rating"]: s["count"] for s in view["shares"]}
    assert counts == {r: want.get(f"cdcs.rated.{r}", 0) for r in RATINGS}
    for s in view["shares"]:
        assert s["share_pct"] == pct(s["count"], view["eligible"]), s
    assert sum(s["share_pct"] for s in view["shares"]) <= 100.01
    good = view["good_or_better"]
    assert good["rating"] == "good_or_better" and good["name_vi"] == "Hoàn thành tốt nhiệm vụ trở lên"
    assert good["count"] == counts["excellent"] + counts["good"] == want["cdcs.rated.good_or_better"]
    assert good["share_pct"] == pct(good["count"], view["eligible"])
    by_sector = {s["sector"]: s for s in view["by_sector"]}
    assert set(by_sector) == {s for s in SECTORS if want.get(f"cdcs.rating_eligible.{s}")
                              or want.get(f"cdcs.rated.{s}")}
    assert len(by_sector) >= 2
    for sector, s in by_sector.items():
        assert s["eligible"] == want.get(f"cdcs.rating_eligible.{sector}", 0), sector
        assert s["rated"] == want.get(f"cdcs.rated.{sector}", 0), sector
        g = want.get(f"cdcs.rated.good_or_better.{sector}", 0)
        assert s["good_or_better"]["count"] == g, sector
        assert s["good_or_better"]["share_pct"] == pct(g, s["eligible"]), sector
        assert s["rated_pct"] == pct(s["rated"], s["eligible"])
        assert sum(r["count"] for r in s["ratings"]) == s["rated"]
    assert sum(s["eligible"] for s in by_sector.values()) == view["eligible"]
    # the same figures as indicators of the views, for the calendar and the statistics year
    codes = ["cdcs.rating_eligible", "cdcs.rated", "cdcs.rated.good_or_better", "cdcs.rated.good_or_better_pct",
             "cdcs.rated_pct", *(f"cdcs.rated.{r}_pct" for r in RATINGS),
             *(f"cdcs.rated.good_or_better_pct.{s}" for s in SECTORS)]
    for period in (str(YEAR), f"{YEAR}-SY", f"{YEAR}-Q4", f"{YEAR}-11"):
        rows = rows_by_code(get(client, f"/views/{unit}?period={period}&indicators={','.join(codes)}")["rows"])
        assert rows["cdcs.rating_eligible"]["actual"] == view["eligible"], period
        assert rows["cdcs.rated"]["actual"] == view["rated"], period
        assert rows["cdcs.rated.good_or_better_pct"]["actual"] == good["share_pct"], period
        assert rows["cdcs.rated_pct"]["actual"] == view["rated_pct"], period
        for s in view["shares"]:
            assert rows[f"cdcs.rated.{s['rating']}_pct"]["actual"] == s["share_pct"], period
        for sector in SECTORS:
            share = by_sector[sector]["good_or_better"]["share_pct"] if sector in by_sector else None
            assert rows[f"cdcs.rated.good_or_better_pct.{sector}"]["actual"] == share, (period, sector)
    # a period without a 30 November cut-off has no rating figures (not zeros)
    for period in (f"{YEAR}-H1", f"{YEAR}-Q3"):
        rows = rows_by_code(get(client, f"/views/{unit}?period={period}&indicators={','.join(codes)}")["rows"])
        assert all(r["actual"] is None for r in rows.values()), period


def test_rating_series_has_the_share_at_the_cutoff_only(client):
    view = get(client, f"/views/HCM/ratings?year={YEAR}")
    series = get(client, f"/views/HCM/series?indicator=cdcs.rated.good_or_better_pct&first={YEAR}-01&last={YEAR}-12")
    values = {p["month"]: p["value"] for p in series["points"]}
    assert values[f"{YEAR}-11"] == view["good_or_better"]["share_pct"]
    assert all(v is None for m, v in values.items() if m != f"{YEAR}-11")
    eligible = get(client, f"/views/HCM/series?indicator=cdcs.rating_eligible&first={YEAR}-01&last={YEAR}-12")
    assert {p["month"]: p["value"] for p in eligible["points"]}[f"{YEAR}-11"] == view["eligible"]


# ------------------------------------------------------------------------------ targets, reached

def test_sector_targets_reached_or_not_in_json_csv_and_xlsx(client):
    view = get(client, f"/views/HCM/ratings?year={YEAR}")
    (hit, hit_target), (missed, missed_target) = scenario.sector_targets(view)
    assert hit_target > 0
    codes = [f"cdcs.rated.good_or_better_pct.{hit}", f"cdcs.rated.good_or_better_pct.{missed}"]
    # plans are set by the level above: the nation for the province
    put_target(client, "HCM", codes[0], hit_target)
    put_target(client, "HCM", codes[1], missed_target)
    put_target(client, "HCM", codes[1], 101, status=422)  # a share's target is a percentage
    put_target(client, "HCM", codes[0], hit_target, headers=PROVINCE, status=403)  # not its own plan
    # the ratings view, by sector
    by_sector = {s["sector"]: s["good_or_better"] for s in get(client, f"/views/HCM/ratings?year={YEAR}")["by_sector"]}
    assert (by_sector[hit]["target"], by_sector[hit]["reached"]) == (hit_target, True)
    assert (by_sector[missed]["target"], by_sector[missed]["reached"]) == (missed_target, False)
    assert by_sector[missed]["attainment_pct"] == pct(by_sector[missed]["share_pct"], missed_target)
    # the province's own view and the nation's drill-down
    query = f"period={YEAR}-SY&indicators={','.join(codes)}"
    own = rows_by_code(get(client, f"/views/HCM?{query}")["rows"])
    assert [(own[c]["target"], own[c]["reached"]) for c in codes] == [(hit_target, True), (missed_target, False)]
    drill = get(client, f"/views/VN/children?{query}")
    hcm = next(c for c in drill["children"] if c["unit"]["id"] == "HCM")
    assert rows_by_code(hcm["rows"]) == own
    # a share's target is the unit's own: never summed up to the nation, which has no target
    assert all(r["target"] is None and r["reached"] is None for r in drill["total"])
    # ... and in the exports: the province's line says "Đạt" and "Chưa đạt"
    lines = list(csv.reader(io.StringIO(get(client, f"/views/VN/export.csv?{query}").get_data().decode("utf-8-sig"))))
    header, body = lines[1], {line[0]: line for line in lines[2:]}
    for code, target, mark in ((codes[0], hit_target, "Đạt"), (codes[1], missed_target, "Chưa đạt")):
        name = CATALOGUE[code].name_vi
        col = header.index(f"{name} — thực hiện")
        assert header[col:col + 4] == [f"{name} — {c}" for c in ("thực hiện", "chỉ tiêu", "% kế hoạch", "đánh giá")]
        assert float(body["HCM"][col]) == own[code]["actual"]
        assert float(body["HCM"][col + 1]) == target
        assert body["HCM"][col + 3] == mark
        assert body["VN"][col + 1] == body["VN"][col + 3] == ""
    ws = load_workbook(io.BytesIO(get(client, f"/views/VN/export.xlsx?{query}").get_data())).active
    rows = {ws.cell(r, 1).value: r for r in range(6, ws.max_row + 1)}
    for i, (target, mark) in enumerate(((hit_target, "Đạt"), (missed_target, "Chưa đạt"))):
        col = 4 + 4 * i
        assert ws.cell(4, col).value == f"{CATALOGUE[codes[i]].name_vi} (%)"
        assert [ws.cell(5, col + j).value for j in range(4)] == ["Thực hiện", "Chỉ tiêu", "% KH", "Đánh giá"]
        assert ws.cell(rows["HCM"], col).value == own[codes[i]]["actual"]
        assert ws.cell(rows["HCM"], col + 1).value == target
        assert ws.cell(rows["HCM"], col + 3).value == mark
        assert ws.cell(rows["VN"], col + 3).value is None


def test_count_targets_reached_and_the_exact_boundary(client, province):
    admitted = province.recount(str(YEAR))[COMMUNE]["members.admitted"]
    put_target(client, COMMUNE, "members.admitted", admitted, headers=PROVINCE)
    put_target(client, "HCM-X001", "members.admitted", province.recount(str(YEAR))["HCM-X001"]["members.admitted"] + 1,
               headers=PROVINCE)
    drill = get(client, f"/views/HCM/children?period={YEAR}&indicators=members.admitted")
    rows = {c["unit"]["id"]: c["rows"][0] for c in drill["children"]}
    assert (rows[COMMUNE]["reached"], rows[COMMUNE]["attainment_pct"]) == (True, 100.0)
    assert rows["HCM-X001"]["reached"] is False
    total = drill["total"][0]
    assert total["target"] == rows[COMMUNE]["target"] + rows["HCM-X001"]["target"] and total["reached"] is False


# ------------------------------------------------------------------------------ integers

def raw(client, path, headers=PLATFORM):
    r = client.get("/api/v1" + path, headers=headers)
    assert r.status_code == 200, r.get_data(as_text=True)
    return json.loads(r.get_data(as_text=True))


def assert_row_types(row):
    kind = CATALOGUE[row["indicator"]].kind
    for key in ("actual", "target"):
        value = row[key]
        if value is None:
            continue
        if kind == "ratio":
            assert type(value) is float and round(value, 2) == value, row
        else:
            assert type(value) is int, row
    assert row["attainment_pct"] is None or type(row["attainment_pct"]) is float
    assert row["reached"] in (None, True, False)


def test_counts_are_integers_in_every_json_answer(client):
    # a count's target answers as entered, whole; a percentage keeps its decimals
    r = put_target(client, "HCM-X001", "welfare.cases", 150, headers=PROVINCE).get_json()
    assert type(r["value"]) is int and r["value"] == 150
    r = put_target(client, "HCM-X001", "welfare.amount", 40000000.0, headers=PROVINCE).get_json()
    assert type(r["value"]) is int and r["value"] == 40_000_000
    r = put_target(client, "HCM-X001", "dues.collected_pct", 95.5, headers=PROVINCE).get_json()
    assert r["value"] == 95.5
    r = put_target(client, "HCM-X001", "cdcs.rated.good_or_better_pct.non_state", 55, headers=PROVINCE).get_json()
    assert type(r["value"]) is float and r["value"] == 55.0
    # a fractional count is bad input, naming the field
    body = put_target(client, "HCM-X001", "members.admitted", 150.5, headers=PROVINCE, status=400).get_json()
    assert "value" in body["errors"]
    listed = {t["indicator"]: t["value"] for t in raw(client, f"/targets/HCM?year={YEAR}")["items"] if t["unit"] == "HCM-X001"}
    assert type(listed["welfare.cases"]) is int and listed["dues.collected_pct"] == 95.5
    every = ",".join(CATALOGUE)
    view = raw(client, f"/views/HCM-X001?period={YEAR}&indicators={every}")
    for row in view["rows"]:
        assert_row_types(row)
    rows = rows_by_code(view["rows"])
    assert type(rows["members.active"]["actual"]) is int and rows["members.active"]["actual"] > 0
    assert rows["welfare.cases"]["target"] == 150 and type(rows["welfare.cases"]["target"]) is int
    drill = raw(client, f"/views/HCM/children?period={YEAR}")
    for row in drill["total"] + [r for c in drill["children"] for r in c["rows"]]:
        assert_row_types(row)
    series = raw(client, f"/views/HCM/series?indicator=members.active&first={YEAR}-01&last={YEAR}-12")
    assert all(type(p["value"]) is int for p in series["points"])
    series = raw(client, f"/views/HCM/series?indicator=members.female_pct&first={YEAR}-01&last={YEAR}-12")
    assert all(p["value"] is None or type(p["value"]) is float for p in series["points"])
    ratings = raw(client, f"/views/HCM/ratings?year={YEAR}")
    assert all(type(ratings[k]) is int for k in ("eligible", "rated"))
    for share in ratings["shares"] + [ratings["good_or_better"]]:
        assert type(share["count"]) is int and type(share["share_pct"]) is float
    # the catalogue says which are counted at the 30 November cut-off
    catalogue = {i["code"]: i for i in raw(client, "/indicators")}
    assert catalogue["cdcs.rated.good_or_better_pct.public_admin"]["annual"] is True
    assert catalogue["cdcs.rated.good_or_better_pct.public_admin"]["denominator"] == "cdcs.rating_eligible.public_admin"
    assert catalogue["members.active"]["annual"] is False
    assert {"cdcs.rating_eligible", "cdcs.rated.good_or_better_pct"} <= set(HEADLINE)


# ------------------------------------------------------------------------------ drill-down

def test_drill_down_rows_carry_status_and_path(client, province):
    want = province.recount(str(YEAR))
    operating = ["HCM-X000-S00000", "HCM-X000-S00002", "HCM-X000-S00004", "HCM-X000-S00006", "HCM-X000-S00008",
                 "HCM-X000-S00010", "HCM-X000-S00012", "HCM-X000-S00014", "HCM-X000-E1", "HCM-X000-E2"]
    path = [{"id": "VN", "code": "VN", "name": "Tổng Liên đoàn Lao động Việt Nam"},
            {"id": "HCM", "code": "HCM", "name": "LĐLĐ HCM"}]
    below = path + [{"id": COMMUNE, "code": COMMUNE, "name": "Công đoàn phường 1"}]

    def drill(query=""):
        view = get(client, f"/views/{COMMUNE}/children?period={YEAR}{query}")
        assert view["unit"]["path"] == path and view["unit"]["status"] == "active"
        return view, {c["unit"]["id"]: c for c in view["children"]}

    # by default: those operating, and those closed during the period (E3, E4, E6), not E5 (2024)
    view, kids = drill()
    assert set(kids) == set(operating) | {"HCM-X000-E3", "HCM-X000-E4", "HCM-X000-E6"}
    for uid, child in kids.items():
        unit = child["unit"]
        assert unit["path"] == below and unit["ancestors"] == [p["id"] for p in below], uid
        case = scenario.BY_ID.get(uid)
        if case is None or case.closed is None:
            assert (unit["status"], unit["closed_on"], unit["merged_into"]) == ("active", None, None), uid
        else:
            status = "merged" if case.merged_into else "dissolved"
            assert (unit["status"], unit["closed_on"], unit["merged_into"]) == (status, case.closed,
                                                                               case.merged_into), uid
    # ... so the children add up to the commune for every count of the period
    total = rows_by_code(view["total"])
    for code in HEADLINE:
        if CATALOGUE[code].kind != "ratio":
            assert sum(rows_by_code(c["rows"])[code]["actual"] for c in kids.values()) == total[code]["actual"], code
            assert total[code]["actual"] == want[COMMUNE].get(code, 0), code
    # on request: every child, or only those operating
    _, every = drill("&include_closed=true")
    assert set(every) == set(kids) | {"HCM-X000-E5"}
    assert every["HCM-X000-E5"]["unit"]["status"] == "dissolved"
    _, active = drill("&include_closed=false")
    assert sorted(active) == sorted(operating)
    body = get(client, f"/views/{COMMUNE}/children?period={YEAR}&include_closed=maybe", status=400)
    assert "include_closed" in field_errors(body)
    # a unit's own view, a CĐCS's, and the caller's own unit carry their path too
    assert get(client, f"/views/{COMMUNE}?period={YEAR}")["unit"]["path"] == path
    leaf = get(client, f"/views/HCM-X000-E3?period={YEAR}")["unit"]
    assert (leaf["path"], leaf["status"], leaf["closed_on"]) == (below, "dissolved", "2025-11-25")
    assert get(client, "/me", headers=auth(COMMUNE))["unit"]["path"] == path


# ------------------------------------------------------------------------------ exports

FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r")


def is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def test_exports_show_status_and_neutralise_formulas(client):
    query = f"period={YEAR}&include_closed=true"
    lines = list(csv.reader(io.StringIO(
        get(client, f"/views/{COMMUNE}/export.csv?{query}").get_data().decode("utf-8-sig"))))
    header, body = lines[1], lines[2:]
    assert header[:3] == ["Mã đơn vị", "Tên đơn vị", "Trạng thái"]
    assert len(header) == 3 + 4 * len(HEADLINE)
    by_id = {line[0].lstrip("'"): line for line in body}
    # names as entered, readable, behind a single quote when a spreadsheet would run them
    assert by_id["E1"][1] == "'" + scenario.HYPERLINK
    assert by_id["-E2"][0] == "'-E2" and by_id["-E2"][1] == "'+1-2"
    assert by_id["E3"][1] == "'@SUM(A1)"
    assert by_id["E5"][1] == "'-CĐCS E5"
    assert by_id["E4"][1] == "Công đoàn cơ sở E4"  # nothing to neutralise: unchanged
    assert by_id["E1"][2] == "Đang hoạt động"
    assert by_id["E3"][2] == "Đã giải thể 25/11/2025"
    assert by_id["E4"][2] == "Đã sáp nhập 05/12/2025 vào HCM-X000-E1"
    assert by_id["E5"][2] == "Đã giải thể 30/06/2024"
    # no text cell starts a formula; numbers stay plain numbers
    for line in lines:
        for cell in line:
            assert not cell.startswith(FORMULA_LEAD) or is_number(cell), cell
    members = 3 + 4 * HEADLINE.index("members.active")
    assert all(is_number(line[members]) for line in body)
    ws = load_workbook(io.BytesIO(get(client, f"/views/{COMMUNE}/export.xlsx?{query}").get_data())).active
    assert [ws.cell(4, c).value for c in (1, 2, 3)] == ["Mã đơn vị", "Tên đơn vị", "Trạng thái"]
    cells = {str(ws.cell(r, 1).value).lstrip("'"): r for r in range(6, ws.max_row + 1)}
    assert ws.cell(cells["E1"], 2).value == "'" + scenario.HYPERLINK
    assert ws.cell(cells["-E2"], 1).value == "'-E2" and ws.cell(cells["-E2"], 2).value == "'+1-2"
    assert ws.cell(cells["E3"], 2).value == "'@SUM(A1)" and ws.cell(cells["E3"], 3).value == "Đã giải thể 25/11/2025"
    assert ws.cell(cells["E4"], 3).value == "Đã sáp nhập 05/12/2025 vào HCM-X000-E1"
    for row in ws.iter_rows(min_row=1, max_row=ws.max_row):
        for cell in row:
            assert cell.data_type != "f", cell.coordinate  # no formula anywhere
            if isinstance(cell.value, str):
                assert not cell.value.startswith(FORMULA_LEAD), (cell.coordinate, cell.value)
    col = 4 + 4 * HEADLINE.index("members.active")
    assert all(type(ws.cell(r, col).value) is int for r in range(6, ws.max_row + 1))
