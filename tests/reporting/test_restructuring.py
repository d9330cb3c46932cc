"""Restructuring never loses targets or history (issue #13, items 3 and 5), on the real broker, the
real projector process and the real database, through the HTTP API (Flask test client):

* a city assigns a district its 2020 target; the district is dissolved in 2025 after its CĐCS
  moved to a new commune union: the city's 2020 figure, target and percentage stay as they were
  (views, GET /targets, the export, after a rebuild), and the commune union carries the target
  (`carried_from`);
* a CĐCS merges into a sibling: the commune's figures, targets and percentages of earlier periods
  stay; wherever a view no longer lists the merged CĐCS, the unit it merged into shows its figures
  and targets (`includes_merged`, `carried_from`), so the children always add up to the parent."""
from __future__ import annotations

import csv
import io
import uuid

import pytest

from platformkit.auth import mint
from platformkit.envelope import Envelope
from services.reporting.app import create_app
from services.reporting.rebuild import rebuild
from tests.reporting.test_projector import PROJECTOR
from tests.support.infra import wait_until

pytestmark = pytest.mark.integration

ADMITTED = "members.admitted"
LOANS = "loans.outstanding"


class Stream:
    """Hand-made membership / welfare events with per-aggregate versions."""

    def __init__(self):
        self.versions: dict[str, int] = {}
        self.events: list[Envelope] = []

    def add(self, type_: str, subject: str, data: dict, on: str, source: str = "membership") -> Envelope:
        self.versions[subject] = self.versions.get(subject, 0) + 1
        env = Envelope(id=str(uuid.uuid4()), source=source, type=type_, subject=subject, time=f"{on}T09:00:00.000Z",
                       data=data, aggregateversion=self.versions[subject])
        self.events.append(env)
        return env

    def unit(self, uid: str, parent: str | None, ancestors: list[str], kind: str, on: str = "2019-01-01"):
        self.add("membership.unit.created.v1", uid, {"unit_id": uid, "parent_id": parent, "ancestors": ancestors,
                                                      "name": f"Đơn vị {uid}", "code": uid, "kind": kind,
                                                      "level": len(ancestors) + 1,
                                                      "sector": "non_state" if kind == "cdcs" else None,
                                                      "effective_date": on}, on)

    def admit(self, unit: str, ancestors: list[str], n: int, on: str):
        for _ in range(n):
            member = "m-" + uuid.uuid4().hex[:10]
            self.add("membership.member.admitted.v1", member, {
                "member_id": member, "unit_id": unit, "ancestors": ancestors, "full_name": "Trần Văn An",
                "gender": "male", "is_official": False, "admitted_on": on, "date_of_birth": "1990-01-01",
                "method": "individual"}, on)

    def move(self, uid: str, old_parent: str, old_anc: list[str], parent: str, anc: list[str], on: str):
        self.add("membership.unit.moved.v1", uid, {"unit_id": uid, "old_parent_id": old_parent, "parent_id": parent,
                                                    "old_ancestors": old_anc, "ancestors": anc, "effective_date": on}, on)

    def take(self) -> list[Envelope]:
        out, self.events = self.events, []
        return out


def auth(unit: str, roles=("officer",)) -> dict:
    return {"Authorization": f"Bearer {mint(f'test-{unit}', unit, list(roles))}"}


ADMIN = auth("*", ("admin",))


@pytest.fixture
def client(isolated):
    return create_app().test_client()


def get(client, path, status=200):
    r = client.get("/api/v1" + path, headers=ADMIN)
    assert r.status_code == status, (path, r.status_code, r.get_data(as_text=True)[:500])
    return r.get_json() if r.is_json else r


def put_target(client, unit, by, year, indicator, value):
    r = client.put(f"/api/v1/targets/{unit}", json={"year": year, "indicator": indicator, "value": value},
                   headers=auth(by))
    assert r.status_code == 200, r.get_data(as_text=True)


def row(view_rows, code=ADMITTED) -> dict:
    return next(r for r in view_rows if r["indicator"] == code)


def figures(r: dict) -> tuple:
    return r["actual"], r["target"], r["attainment_pct"], r["reached"]


def actual(client, path, code=ADMITTED):
    """A view's actual, or None while the unit is not known yet."""
    r = client.get("/api/v1" + path, headers=ADMIN)
    return row(r.get_json()["rows"], code)["actual"] if r.status_code == 200 else None


def unit_status(client, uid) -> str | None:
    r = client.get(f"/api/v1/views/{uid}?period=2020", headers=ADMIN)
    return r.get_json()["unit"]["status"] if r.status_code == 200 else None


def csv_rows(client, path) -> dict[str, list[str]]:
    body = get(client, path).get_data().decode("utf-8-sig")
    return {line[0]: line for line in list(csv.reader(io.StringIO(body)))[2:]}


def test_a_dissolved_district_keeps_the_city_s_targets_and_its_successor_carries_them(publish, procs, client):
    s = Stream()
    city, dist, cu = ["VN", "CITY"], ["VN", "CITY", "DIST"], ["VN", "CITY", "CU"]
    s.unit("VN", None, [], "central")
    s.unit("CITY", "VN", ["VN"], "province")
    s.unit("DIST", "CITY", city, "district")
    s.unit("OTHER", "CITY", city, "district")
    for c in ("C1", "C2"):
        s.unit(c, "DIST", dist, "cdcs")
    s.unit("C3", "OTHER", ["VN", "CITY", "OTHER"], "cdcs")
    s.admit("C1", dist, 100, "2020-03-10")
    s.admit("C2", dist, 55, "2020-09-01")
    s.admit("C3", ["VN", "CITY", "OTHER"], 20, "2020-05-05")
    publish(s.take())
    procs(PROJECTOR, "projector")
    wait_until(lambda: actual(client, "/views/CITY?period=2020") == 175 and
               actual(client, "/views/DIST?period=2020") == 155, 120, message="2020 projected")
    put_target(client, "DIST", "CITY", 2020, ADMITTED, 150)
    put_target(client, "OTHER", "CITY", 2020, ADMITTED, 30)

    def city_figures():
        view = get(client, "/views/CITY?period=2020")
        drill = get(client, "/views/CITY/children?period=2020")
        targets = get(client, "/targets/CITY?year=2020")["items"]
        export = csv_rows(client, "/views/CITY/export.csv?period=2020&indicators=members.admitted")
        return {"own": figures(row(view["rows"])), "total": figures(row(drill["total"])),
                "targets": sorted((t["unit"], t["value"]) for t in targets if "carried_from" not in t),
                "export": export["CITY"][3:7]}

    before = city_figures()
    assert before["own"] == (175, 180, round(100 * 175 / 180, 2), False)
    assert before["total"] == before["own"]
    assert before["targets"] == [("DIST", 150), ("OTHER", 30)]
    assert get(client, "/views/DIST?period=2020")["rows"] and figures(row(get(client, "/views/DIST?period=2020")["rows"])) \
        == (155, 150, 103.33, True)

    # 1/7/2025: a new commune union; the district's CĐCS move to it; the district is dissolved
    s.unit("CU", "CITY", city, "commune", on="2025-06-15")
    s.move("C1", "DIST", dist, "CU", cu, "2025-07-01")
    s.move("C2", "DIST", dist, "CU", cu, "2025-07-01")
    s.add("membership.unit.dissolved.v1", "DIST", {"unit_id": "DIST", "ancestors": city, "effective_date": "2025-07-01"},
          "2025-07-01")
    publish(s.take())
    wait_until(lambda: unit_status(client, "DIST") == "dissolved" and
               get(client, "/views/CU?period=2020")["unit"]["predecessors"] == ["DIST"], 90,
               message="the moves and the dissolution projected")

    def after_checks():
        assert city_figures() == before  # the city's 2020: figure, target, %, list of targets, export
        union = get(client, "/views/CU?period=2020")
        r = row(union["rows"])
        assert figures(r) == (155, 150, 103.33, True) and r["carried_from"] == ["DIST"]
        assert union["unit"]["predecessors"] == ["DIST"]
        carried = get(client, "/targets/CU?year=2020")["items"]
        assert [(t["unit"], t["indicator"], t["value"], t["carried_from"]) for t in carried] == \
            [("CU", ADMITTED, 150, "DIST")]
        drill = get(client, "/views/CITY/children?period=2020")
        kids = {c["unit"]["id"]: row(c["rows"]) for c in drill["children"]}
        assert set(kids) == {"DIST", "OTHER", "CU"}
        assert figures(kids["CU"]) == (155, 150, 103.33, True) and kids["CU"]["carried_from"] == ["DIST"]
        assert kids["DIST"]["actual"] == 0 and kids["DIST"]["carried_to"] == ["CU"]
        assert sum(k["actual"] for k in kids.values()) == before["own"][0]
        export = csv_rows(client, "/views/CITY/export.csv?period=2020&indicators=members.admitted")
        assert export["CU"][3:7] == ["155", "150", "103.33", "Đạt"]

    after_checks()
    assert rebuild(out=io.StringIO()) == 1
    after_checks()  # the rebuilt generation says the same


def test_a_merged_cdcs_hands_its_figures_and_targets_to_the_unit_it_joined(publish, procs, client):
    s = Stream()
    com = ["VN", "CITY", "COM"]
    s.unit("VN", None, [], "central")
    s.unit("CITY", "VN", ["VN"], "province")
    s.unit("COM", "CITY", ["VN", "CITY"], "commune")
    for c in ("M", "N", "K"):
        s.unit(c, "COM", com, "cdcs")
    s.admit("M", com, 40, "2025-03-03")
    s.admit("N", com, 60, "2025-04-04")
    s.admit("K", com, 10, "2025-05-05")
    s.add("welfare.case.disbursed.v1", "loan-1", {
        "case_id": "loan-1", "programme_id": "p1", "programme_kind": "micro_loan", "programme_year": 2025,
        "member_id": "m-x", "unit_id": "M", "ancestors": com, "hardship_type": "illness", "amount": 5_000_000,
        "form": "cash", "funding": [{"source": "union_fund", "amount": 5_000_000}], "principal": 5_000_000,
        "term_months": 12, "disbursed_on": "2025-03-20", "disbursed_by_unit_id": "COM", "approved_by_unit_id": "COM",
        "approved_level": 3, "outstanding": 5_000_000}, "2025-03-20", source="welfare")
    publish(s.take())
    procs(PROJECTOR, "projector")
    codes = f"{ADMITTED},{LOANS}"
    wait_until(lambda: actual(client, f"/views/COM?period=2025&indicators={codes}") == 110 and
               actual(client, f"/views/COM?period=2025&indicators={codes}", LOANS) == 5_000_000 and
               all(actual(client, f"/views/{u}?period=2025") for u in ("M", "N", "K")), 120, message="2025 projected")
    for unit, value in (("M", 50), ("N", 70), ("K", 10)):
        put_target(client, unit, "COM", 2025, ADMITTED, value)

    def commune(period="2025"):
        return [figures(r) for r in get(client, f"/views/COM?period={period}&indicators={codes}")["rows"]]

    before = commune()
    assert before[0] == (110, 130, round(100 * 110 / 130, 2), False)
    before_2026 = commune("2026")
    assert before_2026[1][0] == 5_000_000

    s.add("membership.unit.merged.v1", "M", {"unit_id": "M", "into_unit_id": "N", "ancestors": com,
                                              "into_ancestors": com, "effective_date": "2025-09-01"}, "2025-09-01")
    publish(s.take())
    wait_until(lambda: get(client, "/views/M?period=2025")["unit"]["status"] == "merged" and
               get(client, "/views/N?period=2025")["unit"]["predecessors"] == ["M"], 90, message="merge projected")

    def drill(period, extra=""):
        view = get(client, f"/views/COM/children?period={period}&indicators={codes}{extra}")
        kids = {c["unit"]["id"]: c for c in view["children"]}
        for code in (ADMITTED, LOANS):  # the children add up to the commune
            assert sum(row(k["rows"], code)["actual"] for k in kids.values()) == row(view["total"], code)["actual"], \
                (period, extra, code)
        return view, kids

    def after_checks():
        assert commune() == before and commune("2026") == before_2026  # nothing of the commune changed
        # 2025, listing the CĐCS closed during it: M on its own row, N its own
        _, kids = drill("2025")
        assert set(kids) == {"M", "N", "K"}
        assert figures(row(kids["M"]["rows"])) == (40, 50, 80.0, False) and row(kids["M"]["rows"])["carried_to"] == ["N"]
        assert figures(row(kids["N"]["rows"])) == (60, 70, round(100 * 60 / 70, 2), False)
        # only those operating: N's row carries M's figures and target
        _, kids = drill("2025", "&include_closed=false")
        assert set(kids) == {"N", "K"} and kids["N"]["unit"]["includes_merged"] == ["M"]
        n = row(kids["N"]["rows"])
        assert figures(n) == (100, 120, round(100 * 100 / 120, 2), False) and n["carried_from"] == ["M"]
        assert row(kids["N"]["rows"], LOANS)["actual"] == 5_000_000
        # 2026: M closed before it, left out by default; its outstanding loan shows on N
        _, kids = drill("2026")
        assert set(kids) == {"N", "K"} and row(kids["N"]["rows"], LOANS)["actual"] == 5_000_000
        own = get(client, f"/views/N?period=2026&indicators={codes}")
        assert own["unit"]["includes_merged"] == ["M"] and row(own["rows"], LOANS)["actual"] == 5_000_000
        series = get(client, f"/views/N/series?indicator={LOANS}&first=2026-01&last=2026-02")
        assert [p["value"] for p in series["points"]] == [5_000_000, 5_000_000]
        # the merged CĐCS's own view keeps its history
        assert row(get(client, "/views/M?period=2025")["rows"])["actual"] == 40
        export = csv_rows(client, f"/views/COM/export.csv?period=2025&indicators={ADMITTED}")
        assert export["COM"][3:7] == [str(before[0][0]), str(before[0][1]), str(before[0][2]), "Chưa đạt"]

    after_checks()
    assert rebuild(out=io.StringIO()) == 1
    after_checks()


class CountingFinds:
    """The targets collection, recording each find's filter (the real collection answers)."""

    def __init__(self, coll):
        self.coll, self.filters = coll, []

    def find(self, flt, *args, **kwargs):
        self.filters.append(dict(flt))
        return self.coll.find(flt, *args, **kwargs)


def test_children_s_targets_are_read_by_parent_and_moved_units_keep_theirs(publish, procs, client):
    """A commune's target is the sum of its children's. The children that only ever had this
    parent are read in one query by the parent their targets were set under; a CĐCS that moved
    in keeps the target its old commune gave it, including one moved on the very day it was
    created (its history then names only the new parent: `parents_seen` still knows the old)."""
    from services.reporting import stores as reporting_stores
    from services.reporting import views

    s = Stream()
    city = ["VN", "CITY"]
    s.unit("VN", None, [], "central")
    s.unit("CITY", "VN", ["VN"], "province")
    for com in ("A", "B"):
        s.unit(com, "CITY", city, "commune")
    for c, com in (("C1", "A"), ("C2", "A"), ("C3", "B"), ("C4", "B")):
        s.unit(c, com, city + [com], "cdcs")
    s.unit("C5", "B", city + ["B"], "cdcs", on="2021-03-01")
    publish(s.take())
    procs(PROJECTOR, "projector")
    wait_until(lambda: all(unit_status(client, u) == "active" for u in ("C1", "C2", "C3", "C4", "C5")), 120,
               message="units projected")
    for unit, com, value in (("C1", "A", 10), ("C2", "A", 20), ("C3", "B", 30), ("C4", "B", 40), ("C5", "B", 5)):
        put_target(client, unit, com, 2020, ADMITTED, value)

    def target(unit):
        return row(get(client, f"/views/{unit}?period=2020")["rows"])["target"]

    assert (target("A"), target("B")) == (30, 75)
    s.move("C3", "B", city + ["B"], "A", city + ["A"], "2021-06-01")
    s.move("C5", "B", city + ["B"], "A", city + ["A"], "2021-03-01")  # the day it was created
    publish(s.take())
    wait_until(lambda: get(client, "/views/C5?period=2020")["unit"]["path"][-1]["id"] == "A" and
               get(client, "/views/C3?period=2020")["unit"]["path"][-1]["id"] == "A", 90, message="moves projected")
    assert (target("A"), target("B")) == (65, 40)
    drill = {c["unit"]["id"]: row(c["rows"])["target"] for c in get(client, "/views/CITY/children?period=2020")["children"]}
    assert drill == {"A": 65, "B": 40}

    st = reporting_stores.stores()
    gen = st.live()
    c5 = gen.unit("C5")
    assert [e["parent"] for e in c5["parents"]] == ["A"] and c5["parents_seen"] == ["A", "B"]
    counting = CountingFinds(st.target_docs)
    book = views.TargetBook(counting, 2020, gen)
    unit = views.unit_info(gen, "A")
    targets, _ = book.of(unit, views.children_of_year(gen, "A", 2020))
    assert targets[ADMITTED] == 65
    # C1 and C2 by their parent; the moved C3 and C5, and A itself (alone under CITY), one by one
    assert sorted(map(sorted, (f.items() for f in counting.filters))) == sorted([
        [("parent_id", "A"), ("year", 2020)], [("unit", "A"), ("year", 2020)],
        [("unit", "C3"), ("year", 2020)], [("unit", "C5"), ("year", 2020)]])
