"""Periodic reports (issue #16) on the real broker and database: the reporting projector (a real
process) builds the hierarchy and the computed figures from membership events on Kafka; the reports
API runs in-process (Flask test client); the relay (a real process) publishes every step to
reporting.events.

    VN > P (province) > C (commune) > S1, S2, S3 (CĐCS founded 2024), S4 (CĐCS founded July 2025)
                      > D (commune of another subtree) > T1

Deadlines (defaults): a CĐCS is due 5 days after the cut-off, a commune 10 days: 2025-H1 cuts off
on 31 May, CĐCS due 5 June, commune due 10 June. The platform's day is replaced by the test's.
"""
from __future__ import annotations

import csv
import io
import threading
import uuid
from datetime import date

import pytest
from kafka import KafkaConsumer
from openpyxl import load_workbook

from platformkit import config, mongo
from platformkit.auth import mint
from platformkit.envelope import Envelope, decode
from platformkit.kafka_io import ensure_topics
from services.reporting import views
from services.reporting.app import create_app
from services.reporting.periodic import service as periodic
from services.reporting.periods import parse
from services.reporting.rebuild import rebuild
from services.reporting.store import Generation, active_generation
from tests.support.infra import wait_until

pytestmark = pytest.mark.integration

PROJECTOR = ["-m", "services.reporting.projector"]
RELAY = ["-m", "platformkit.run", "relay", "reporting"]
H1 = "2025-H1"


def _ev(type_: str, subject: str, data: dict, version: int, on: str) -> Envelope:
    return Envelope(id=str(uuid.uuid4()), source="membership", type=type_, subject=subject,
                    time=f"{on}T09:00:00.000Z", data=data, aggregateversion=version)


UNITS = [("VN", None, "central", 1), ("P", "VN", "province", 2), ("C", "P", "commune", 3),
         ("C-S1", "C", "cdcs", 4), ("C-S2", "C", "cdcs", 4), ("C-S3", "C", "cdcs", 4), ("C-S4", "C", "cdcs", 4),
         ("D", "P", "commune", 3), ("D-T1", "D", "cdcs", 4), ("D-T2", "D", "cdcs", 4)]
FOUNDED = {"C-S1": "2024-03-01", "C-S2": "2024-03-01", "C-S3": "2024-03-01", "C-S4": "2025-07-01",
           "D-T1": "2024-03-01", "D-T2": "2024-03-01"}
# a name a spreadsheet would run as a formula
NAMES = {"D-T2": "=HYPERLINK(\"http://evil.example/\",\"Bấm\")"}
ANCESTORS: dict[str, list[str]] = {}


def hierarchy() -> list[Envelope]:
    out = []
    for uid, parent, kind, level in UNITS:
        ANCESTORS[uid] = (ANCESTORS[parent] + [parent]) if parent else []
        out.append(_ev("membership.unit.created.v1", uid, {
            "unit_id": uid, "parent_id": parent, "ancestors": ANCESTORS[uid], "name": NAMES.get(uid, f"Đơn vị {uid}"),
            "code": uid,
            "kind": kind, "level": level, "sector": "non_state" if kind == "cdcs" else None,
            "effective_date": "2024-01-01"}, 1, "2024-01-02"))
        if uid in FOUNDED:
            out.append(_ev("membership.cdcs.founded.v1", uid, {
                "unit_id": uid, "ancestors": ANCESTORS[uid], "sector": "non_state", "method": "standard",
                "founding_member_count": 7, "decision_no": f"{uid}/QĐ", "decision_date": FOUNDED[uid],
                "effective_date": FOUNDED[uid]}, 2, FOUNDED[uid]))
    return out


def member(mid: str, unit: str, on: str, moves: list[tuple[str, str]] = ()) -> list[Envelope]:
    """A member admitted and approved on `on` (counts as active from that month)."""
    base = {"member_id": mid, "unit_id": unit, "ancestors": ANCESTORS[unit], "full_name": f"Người {mid}",
            "gender": "female", "is_official": False}
    evs = [_ev("membership.member.admitted.v1", mid, {**base, "admitted_on": on, "date_of_birth": "1990-01-01",
                                                       "method": "individual"}, 1, on),
           _ev("membership.member.approved.v1", mid, {**base, "approved_on": on, "approved_by_unit_id": "C"}, 2, on)]
    for kind, day in moves:
        evs.append(_ev(f"membership.member.{kind}.v1", mid, {**base, "left_on": day, "reason": "resigned"},
                       len(evs) + 1, day))
    return evs


def auth(unit: str, roles=("officer",)) -> dict:
    return {"Authorization": f"Bearer {mint(f'test-{unit}', unit, list(roles))}"}


def figures(unit: str, period: str) -> dict:
    db = mongo.database("reporting")
    gen = Generation(db, active_generation(db))
    return dict(views.period_sums(gen, [unit], parse(period))[unit])


@pytest.fixture
def world(publish, procs, isolated):
    ensure_topics([config.topic("reporting.events")], partitions=3)
    envs = hierarchy()
    envs += member("m1", "C-S1", "2025-02-10") + member("m2", "C-S1", "2025-03-10")
    envs += member("m3", "C-S2", "2025-01-15") + member("m4", "C-S3", "2025-04-20", [("left", "2025-05-20")])
    envs += member("m5", "C-S1", "2025-06-10") + member("m6", "D-T1", "2025-01-10")
    publish(envs)
    projector = procs(PROJECTOR, "projector")
    wait_until(lambda: figures("P", "2025").get("members.admitted") == 6 and figures("C-S4", "2025").get("cdcs.active"),
               120, interval=0.5, message="projector caught up")
    client = create_app().test_client()
    return {"client": client, "publish": publish, "procs": procs, "projector": projector}


class Day:
    def __init__(self, monkeypatch):
        self.value = date(2025, 6, 3)
        monkeypatch.setattr(periodic, "today", lambda: self.value)


def call(client, method, path, headers, body=None, status=200):
    r = getattr(client, method)("/api/v1/periodic" + path, json=body, headers=headers)
    assert r.status_code == status, (method, path, r.status_code, r.get_data(as_text=True)[:600])
    return r.get_json() if r.is_json else r


ENTERED = {"initiatives": 4, "workforce": 120, "workforce_members": 90, "enterprises_with_union": 1,
           "enterprises_without_union": 2, "cla_signed": 1, "emulation_titles": 3, "commendations": 5}


def rows(report):
    return {r["code"]: r for r in report["rows"]}


def steps_in_db():
    return list(mongo.database("reporting")["periodic_steps"].find({}, {"outbox": 0}))


def test_a_commune_and_its_three_cdcs_through_a_half_year(world, monkeypatch):
    c, day = world["client"], Day(monkeypatch)
    S1, S2, S3, C = auth("C-S1"), auth("C-S2"), auth("C-S3"), auth("C")

    # the computed figures come from the views at the 31 May cut-off (m5, admitted in June, is not in)
    draft = call(c, "get", f"/C-S1/{H1}/report", S1)
    assert draft["status"] == "draft" and draft["due_date"] == "2025-06-05" and draft["cutoff"] == "2025-05-31"
    assert rows(draft)["members_active"]["value"] == 2 == figures("C-S1", H1)["members.active"]

    # bad input: 4xx naming the field, nothing written
    r = c.put(f"/api/v1/periodic/C-S1/{H1}/report", json={"entered": {**ENTERED, "initiatives": -1}}, headers=S1)
    assert r.status_code == 400 and "initiatives" in r.get_data(as_text=True)
    r = c.post(f"/api/v1/periodic/C-S1/{H1}/report/submit",
               json={"entered": {**ENTERED, "workforce_members": 121}}, headers=S1)
    assert r.status_code == 400 and r.get_json()["errors"] == {"entered.workforce_members": [r.get_json()["message"]]} \
        or "workforce_members" in r.get_data(as_text=True)
    r = c.post(f"/api/v1/periodic/C-S1/{H1}/report/approve", json={}, headers=C)  # not submitted
    assert r.status_code == 422 and "status" in r.get_data(as_text=True)
    r = c.post(f"/api/v1/periodic/C-S4/{H1}/report/submit", json={"entered": ENTERED}, headers=auth("C-S4"))
    assert r.status_code == 422 and "unit_id" in r.get_data(as_text=True)  # founded after the cut-off
    assert steps_in_db() == []

    # two CĐCS submit on time; a unit submits only its own report
    call(c, "post", f"/C-S2/{H1}/report/submit", S1, {"entered": ENTERED}, status=403)
    s1 = call(c, "post", f"/C-S1/{H1}/report/submit", S1, {"entered": ENTERED})
    assert s1["status"] == "submitted" and s1["frozen"] and s1["on_time"] is True
    call(c, "post", f"/C-S2/{H1}/report/submit", S2, {"entered": {**ENTERED, "initiatives": 6}})
    tree = call(c, "get", f"/C/{H1}/status", C)
    assert tree["rates"]["expected"] == 3  # S4 was not active at the cut-off
    assert (tree["rates"]["submitted"], tree["rates"]["completeness_pct"]) == (2, 66.67)
    assert {k["unit"]["id"]: k["status"] for k in tree["children"]} == {
        "C-S1": "submitted", "C-S2": "submitted", "C-S3": "missing"}

    # the commune cannot submit before approving all three (422 naming them)
    r = c.post(f"/api/v1/periodic/C/{H1}/report/submit", json={"entered": ENTERED}, headers=C)
    assert r.status_code == 422 and all(u in r.get_data(as_text=True) for u in ("C-S1", "C-S2", "C-S3"))

    # a return with a reason, a corrected resubmission; nobody approves their own report, a sibling neither
    call(c, "post", f"/C-S2/{H1}/report/return", C, {}, status=400)  # a reason is required
    returned = call(c, "post", f"/C-S2/{H1}/report/return", C, {"reason": "Sáng kiến chưa khớp sổ"})
    assert returned["status"] == "returned" and returned["returned_reason"] == "Sáng kiến chưa khớp sổ"
    call(c, "post", f"/C-S2/{H1}/report/approve", S2, {}, status=403)
    call(c, "post", f"/C-S2/{H1}/report/approve", S1, {}, status=403)
    again = call(c, "post", f"/C-S2/{H1}/report/submit", S2, {"entered": {**ENTERED, "initiatives": 5}})
    assert again["status"] == "submitted" and again["on_time"] is True  # on time by its first submission
    call(c, "post", f"/C-S1/{H1}/report/approve", C, {})
    call(c, "post", f"/C-S2/{H1}/report/approve", C, {})
    call(c, "post", f"/C-S1/{H1}/report/submit", S1, {"entered": ENTERED}, status=422)  # after approval

    # the third submits late: completeness 3/3, on time 2/3; the late one is listed for follow-up
    day.value = date(2025, 6, 8)
    comp = call(c, "get", f"/C/{H1}/completeness", C)
    assert [m["unit"]["id"] for m in comp["missing"]] == ["C-S3"] and comp["missing"][0]["late"]
    call(c, "post", f"/C-S3/{H1}/report/submit", S3, {"entered": ENTERED})
    comp = call(c, "get", f"/C/{H1}/completeness", C)
    assert comp["rates"]["submitted"] == comp["rates"]["expected"] == 3 and comp["rates"]["completeness_pct"] == 100.0
    assert comp["rates"]["on_time"] == 2 and comp["rates"]["on_time_pct"] == 66.67
    assert [m["unit"]["id"] for m in comp["late"]] == ["C-S3"] and comp["missing"] == []
    call(c, "post", f"/C-S3/{H1}/report/approve", C, {})

    # the commune submits now; its entered totals are its own plus its children's approved ones
    com = call(c, "post", f"/C/{H1}/report/submit", C, {"entered": {"initiatives": 1}})
    assert rows(com)["initiatives"]["value"] == 1 + 4 + 5 + 4 and rows(com)["initiatives"]["from_children"] == 13
    assert com["unionisation_pct"] == 75.0 and com["on_time"] is True  # commune due 10 June
    call(c, "post", f"/C/{H1}/report/approve", C, {}, status=403)  # its own
    call(c, "post", f"/C/{H1}/report/approve", auth("D"), {}, status=403)  # another subtree
    call(c, "post", f"/C/{H1}/report/approve", auth("P"), {})
    # the province's rates sum the subtree: C (on time) and its 3 CĐCS, D, D-T1 and D-T2 (missing)
    prov = call(c, "get", f"/P/{H1}/status", auth("P"))
    assert prov["rates"]["expected"] == 7 and prov["rates"]["submitted"] == 4 and prov["rates"]["on_time"] == 3
    assert prov["rates"]["missing"] == 3 and prov["rates"]["approved"] == 4 and prov["rates"]["completeness_pct"] == 57.14
    kid = {k["unit"]["id"]: k for k in prov["children"]}
    assert kid["C"]["rates"]["expected"] == 3 and kid["C"]["status"] == "approved"
    assert kid["D"]["rates"]["missing"] == 2 and kid["D"]["status"] == "missing"

    # targets on the entered indicators and on the rates, via the existing targets API
    r = c.put("/api/v1/targets/C", json={"year": 2025, "indicator": "entered.initiatives", "value": 10}, headers=auth("P"))
    assert r.status_code == 200, r.get_data(as_text=True)
    r = c.put("/api/v1/targets/C", json={"year": 2025, "indicator": "reports.on_time_pct", "value": 80},
              headers=auth("P"))
    assert r.status_code == 200
    ent = {x["indicator"]: x for x in call(c, "get", f"/C/entered?period={H1}", C)["rows"]}
    assert ent["entered.initiatives"]["actual"] == 14 and ent["entered.initiatives"]["reached"] is True
    assert ent["entered.unionisation_pct"]["actual"] == 75.0  # 360 / 480, sum over sum
    comp = {x["indicator"]: x for x in call(c, "get", f"/C/{H1}/completeness", C)["rows"]}
    assert comp["reports.on_time_pct"]["actual"] == 66.67 and comp["reports.on_time_pct"]["reached"] is False

    # reopen only by the level above, with a reason
    call(c, "post", f"/C-S3/{H1}/report/reopen", S3, {"reason": "x"}, status=403)
    call(c, "post", f"/C-S3/{H1}/report/reopen", C, {"reason": "Sai số lao động"})
    assert call(c, "get", f"/C-S3/{H1}/report", S3)["status"] == "returned"
    assert [h["step"] for h in call(c, "get", f"/C-S2/{H1}/report/history", C)] == [
        "submit", "return", "submit", "approve"]

    # another subtree sees nothing
    for path in (f"/C/{H1}/status", f"/C-S1/{H1}/report", f"/C/{H1}/completeness", f"/C/entered?period={H1}"):
        call(c, "get", path, auth("D"), status=403)

    # every step is an event on reporting.events, through the outbox and the relay
    world["procs"](RELAY, "relay")
    consumer = KafkaConsumer(config.topic("reporting.events"), bootstrap_servers=config.kafka_bootstrap(),
                             auto_offset_reset="earliest", consumer_timeout_ms=2000, group_id=None)
    got: list = []
    wait_until(lambda: got.extend(decode(m.value) for m in consumer) or len(got) >= len(steps_in_db()), 60,
               message="steps published")
    consumer.close()
    s2 = [e for e in got if e.subject == f"{H1}|C-S2"]
    assert [e.type for e in sorted(s2, key=lambda e: e.aggregateversion)] == [
        "reporting.report.submitted.v1", "reporting.report.returned.v1", "reporting.report.submitted.v1",
        "reporting.report.approved.v1"]
    assert s2[1].data["by_unit_id"] == "C" and s2[1].data["reason"] == "Sáng kiến chưa khớp sổ" and s2[1].data["at"]
    wait_until(lambda: all(not s.get("outbox_pending") for s in mongo.database("reporting")["periodic_steps"].find()),
               30, message="outbox emptied")
    # who did what, when and why stays in the history after the events left the outbox
    hist = call(c, "get", f"/C-S2/{H1}/report/history", C)
    assert [(h["step"], h["by_unit_id"], h["reason"]) for h in hist] == [
        ("submit", "C-S2", None), ("return", "C", "Sáng kiến chưa khớp sổ"), ("submit", "C-S2", None),
        ("approve", "C", None)]
    assert all(h["at"] and h["by_subject"] == f"test-{h['by_unit_id']}" for h in hist)


def test_frozen_figures_adjustment_quarters_and_rebuild(world, monkeypatch):
    c, day = world["client"], Day(monkeypatch)
    S1, C = auth("C-S1"), auth("C")
    call(c, "post", f"/C-S1/{H1}/report/submit", S1, {"entered": ENTERED})
    call(c, "post", f"/C-S1/{H1}/report/approve", C, {})
    # quarters: Q1 closing = Q2 opening (Q1 approved: the opening is its frozen closing balance)
    day.value = date(2025, 4, 2)
    q1 = rows(call(c, "post", "/C-S1/2025-Q1/report/submit", S1, {}))
    assert (q1["opening_balance"]["value"], q1["admitted"]["value"], q1["closing_balance"]["value"]) == (0, 2, 2)
    call(c, "post", "/C-S1/2025-Q1/report/approve", C, {})

    # an event dated before the cut-off (a member admitted 10 March) arrives after the approval
    world["publish"](member("m9", "C-S1", "2025-03-10"))
    wait_until(lambda: figures("C-S1", H1).get("members.active") == 3, 60, message="late event projected")
    h1 = call(c, "get", f"/C-S1/{H1}/report", S1)
    r = rows(h1)["members_active"]
    assert (r["value"], r["live"], r["adjustment"]) == (2, 3, 1)  # approved figure unchanged
    q1 = rows(call(c, "get", "/C-S1/2025-Q1/report", S1))
    assert (q1["closing_balance"]["value"], q1["closing_balance"]["live"], q1["closing_balance"]["adjustment"]) == (2, 3, 1)
    # the next quarter opens where the approved one closed; the late member shows as its adjustment
    day.value = date(2025, 7, 2)
    q2 = rows(call(c, "post", "/C-S1/2025-Q2/report/submit", S1, {}))
    assert q2["opening_balance"]["value"] == q1["closing_balance"]["value"] == 2
    assert q2["closing_balance"]["value"] == (q2["opening_balance"]["value"] + q2["admitted"]["value"]
                                              + q2["transferred_in"]["value"] - q2["transferred_out"]["value"]
                                              - q2["left"]["value"] + q2["adjustment"]["value"])
    assert q2["adjustment"]["value"] == 1

    # a second submission racing the first: exactly one wins, the other fails cleanly (409 / 422)
    barrier, answers = threading.Barrier(4), []

    def submit():
        client = create_app().test_client()
        barrier.wait()
        answers.append(client.post("/api/v1/periodic/C-S2/2025-Q2/report/submit", json={}, headers=auth("C-S2"))
                       .status_code)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(answers)[0] == 200 and answers.count(200) == 1 and set(answers) <= {200, 409, 422}, answers
    assert [s["step"] for s in steps_in_db() if s["report"] == "2025-Q2|C-S2"] == ["submit"]

    # export in the upward-report layout, formula-like text neutralised
    text = c.get(f"/api/v1/periodic/C-S1/{H1}/report/export.csv", headers=S1).get_data().decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[4][:6] == ["STT", "Chỉ tiêu", "Đơn vị tính", "Của đơn vị", "Cấp dưới (đã duyệt)", "Tổng số"]
    active = next(l for l in lines if l[1:2] == ["Đoàn viên hiện có"])
    assert active[5:8] == ["2", "3", "1"]
    wb = load_workbook(io.BytesIO(c.get(f"/api/v1/periodic/C-S1/{H1}/report/export.xlsx", headers=S1).get_data()))
    assert any(row[1] == "Sáng kiến" and row[5] == 4 for row in wb.active.iter_rows(values_only=True))
    hostile = auth("D-T2")
    text = c.get(f"/api/v1/periodic/D-T2/{H1}/report/export.csv", headers=hostile).get_data().decode("utf-8-sig")
    assert next(csv.reader(io.StringIO(text)))[1] == "'" + NAMES["D-T2"]
    wb = load_workbook(io.BytesIO(c.get(f"/api/v1/periodic/D-T2/{H1}/report/export.xlsx", headers=hostile).get_data()))
    assert wb.active.cell(1, 2).value == "'" + NAMES["D-T2"] and wb.active.cell(1, 2).data_type == "s"

    # deadlines per province: the province's settings document moves its CĐCS' due date
    assert call(c, "get", f"/C-S1/{H1}/report", S1)["due_date"] == "2025-06-05"
    days = {"due_days": {"half_year": {"4": 9, "3": 14}}}
    call(c, "put", "/settings/P", auth("P"), days, status=403)  # an officer: report.settings is the admin's
    r = c.put("/api/v1/periodic/settings/P", json={"due_days": {"half_year": {"4": 20, "3": 14}}},
              headers=auth("P", ("admin",)))
    assert r.status_code == 400 and "due_days.half_year.3" in r.get_data(as_text=True)  # a level above due first
    call(c, "put", "/settings/P", auth("P", ("admin",)), days)
    assert call(c, "get", f"/C-S1/{H1}/report", S1)["due_date"] == "2025-06-09"
    assert call(c, "get", "/settings/C-S1", S1)["due_days"]["half_year"] == {"1": 20, "2": 15, "3": 14, "4": 9}
    assert call(c, "get", f"/D-T1/{H1}/report", auth("D-T1"))["due_date"] == "2025-06-09"  # the whole province
    call(c, "put", "/settings/P", auth("D", ("admin",)), days, status=403)  # not its unit
    call(c, "put", "/settings/P", auth("P", ("admin",)), {"due_days": {}})  # back to the defaults

    # a rebuild of the views: the snapshots live outside the generations and stay; rates recompute equal
    before = {p: call(c, "get", f"/C/{p}/completeness", C)["rates"] for p in (H1, "2025-Q1", "2025-Q2")}
    reports = {r["_id"]: r for r in mongo.database("reporting")["periodic_reports"].find()}
    world["projector"].kill()
    assert rebuild(out=io.StringIO()) == 1
    assert {r["_id"]: r for r in mongo.database("reporting")["periodic_reports"].find()} == reports
    assert {p: call(c, "get", f"/C/{p}/completeness", C)["rates"] for p in before} == before
    h1_after = rows(call(c, "get", f"/C-S1/{H1}/report", S1))["members_active"]
    assert (h1_after["value"], h1_after["live"]) == (2, 3)
