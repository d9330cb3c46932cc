"""Views of a past period with the hierarchy they are asked for (issue #13): current by default,
as of a date on request (`as_of`), on the real broker, the real projector process and the real
database, through the HTTP API. A CĐCS moves from district A to district B on 1/7/2025."""
from __future__ import annotations

import io

import pytest

from services.reporting.rebuild import rebuild
from tests.reporting.test_projector import PROJECTOR
from tests.reporting.test_restructuring import ADMIN, Stream, actual, client, csv_rows, get, row  # noqa: F401 (fixture)
from tests.support.infra import wait_until

pytestmark = pytest.mark.integration


def test_a_past_period_as_of_a_date_uses_the_hierarchy_of_that_date(publish, procs, client):  # noqa: F811
    s = Stream()
    city, a, b = ["VN", "CITY"], ["VN", "CITY", "A"], ["VN", "CITY", "B"]
    s.unit("VN", None, [], "central")
    s.unit("CITY", "VN", ["VN"], "province")
    s.unit("A", "CITY", city, "district")
    s.unit("B", "CITY", city, "district")
    s.unit("C1", "A", a, "cdcs")
    s.unit("C2", "A", a, "cdcs")
    s.unit("C3", "B", b, "cdcs")
    s.admit("C1", a, 7, "2024-03-10")
    s.admit("C2", a, 3, "2024-05-01")
    s.admit("C3", b, 5, "2024-06-01")
    publish(s.take())
    procs(PROJECTOR, "projector")
    wait_until(lambda: actual(client, "/views/CITY?period=2024") == 15, 120, message="2024 projected")
    assert actual(client, "/views/A?period=2024") == 10 and actual(client, "/views/B?period=2024") == 5

    s.move("C1", "A", a, "B", b, "2025-07-01")
    publish(s.take())
    wait_until(lambda: get(client, "/views/C1?period=2024")["unit"]["ancestors"] == b, 90, message="move projected")

    # the current hierarchy (the default): the move carried C1's totals, its past too, to B
    current = get(client, "/views/A?period=2024")
    assert current["hierarchy"] == {"kind": "current", "as_of": None}
    assert row(current["rows"])["actual"] == 3
    assert actual(client, "/views/B?period=2024") == 12
    drill = get(client, "/views/A/children?period=2024")
    assert [c["unit"]["id"] for c in drill["children"]] == ["C2"]

    def as_of_answers():
        view_a = get(client, "/views/A?period=2024&as_of=2024-12-31")
        view_b = get(client, "/views/B?period=2024&as_of=2024-12-31")
        kids_a = get(client, "/views/A/children?period=2024&as_of=2024-12-31")
        kids_b = get(client, "/views/B/children?period=2024&as_of=2024-12-31")
        kids_city = get(client, "/views/CITY/children?period=2024&as_of=2024-12-31")
        return {
            "hierarchy": view_a["hierarchy"], "A": row(view_a["rows"])["actual"], "B": row(view_b["rows"])["actual"],
            "A_path": [p["id"] for p in view_a["unit"]["path"]],
            "A_kids": {c["unit"]["id"]: row(c["rows"])["actual"] for c in kids_a["children"]},
            "A_total": row(kids_a["total"])["actual"], "kids_hierarchy": kids_a["hierarchy"],
            "B_kids": {c["unit"]["id"]: row(c["rows"])["actual"] for c in kids_b["children"]},
            "C1_path": [p["id"] for p in kids_a["children"][0]["unit"]["path"]],
            "CITY": row(get(client, "/views/CITY?period=2024&as_of=2024-12-31")["rows"])["actual"],
            "CITY_kids": {c["unit"]["id"]: row(c["rows"])["actual"] for c in kids_city["children"]},
            "export": {u: line[3] for u, line in csv_rows(
                client, "/views/A/export.csv?period=2024&indicators=members.admitted&as_of=2024-12-31").items()},
            "export_title": get(client, "/views/A/export.csv?period=2024&as_of=2024-12-31").get_data()
            .decode("utf-8-sig").splitlines()[0],
            "A_2026": row(get(client, "/views/A?period=2024&as_of=2026-01-01")["rows"])["actual"],
        }

    before = as_of_answers()
    assert before["hierarchy"] == {"kind": "as_of", "as_of": "2024-12-31"} == before["kids_hierarchy"]
    assert before["A"] == 10 == before["A_total"]  # C1's 2024 figures are A's, as of 31/12/2024
    assert before["A_kids"] == {"C1": 7, "C2": 3}
    assert before["A_path"] == ["VN", "CITY"] and before["C1_path"] == ["VN", "CITY", "A"]
    assert before["B"] == 5 and before["B_kids"] == {"C3": 5}  # not C1: it was not B's then
    # the parent of A and B sums the same either way, and its children add up to it
    assert before["CITY"] == 15 == actual(client, "/views/CITY?period=2024")
    assert before["CITY_kids"] == {"A": 10, "B": 5}
    assert before["export"] == {"A": "10", "C1": "7", "C2": "3"}
    assert "31/12/2024" in before["export_title"]
    assert before["A_2026"] == 3  # as of a date after the move: today's hierarchy again

    assert rebuild(out=io.StringIO()) == 1
    assert as_of_answers() == before  # the rebuilt generation kept the history


def test_as_of_out_of_bounds_is_refused_naming_it(client):  # noqa: F811
    for bad in ("1899-12-31", "2101-01-01", "31/12/2024"):
        r = client.get(f"/api/v1/views/X?period=2024&as_of={bad}", headers=ADMIN)
        assert r.status_code == 400, (bad, r.status_code)
        assert "as_of" in r.get_data(as_text=True)
        r = client.get(f"/api/v1/views/X/children?period=2024&as_of={bad}", headers=ADMIN)
        assert r.status_code == 400 and "as_of" in r.get_data(as_text=True)
