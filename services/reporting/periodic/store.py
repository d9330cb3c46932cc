"""Periodic reports in reporting's database, OUTSIDE the projector's generations (a rebuild of the
views never touches them: a report approved stays what it was approved as).

  periodic_reports   {_id: "<period>|<unit>", unit, parent_id, ancestors, period, kind, step_no,
                      status, ...}: the materialised copy of the report after its newest step
  periodic_steps     {_id: "<period>|<unit>@<step_no:06d>", report, step_no, step, state, outbox,
                      outbox_pending}: one document per step, the commit itself
  periodic_settings  {_id: <province unit id>, due_days}: deadlines of a province

Why a document per step: FerretDB 1.24 applies an update as read-then-write without isolation (a
version filter in an update is not a compare-and-set: two racing submissions would both
"succeed"), while a unique-key INSERT is atomic. Every step inserts `<report>@<n+1>`; of two
requests that read the report at step n, exactly one inserts n+1 and the other gets 409. The step
document carries the step's event in its outbox (platformkit.outbox), routed by
the reporting relay (`python -m platformkit.run relay reporting`, routes in services/reporting/description.py) to `reporting.events`; the relay only ever writes step
documents. The copy in `periodic_reports` is written after the commit; a reader rolls it forward
through newer steps (one `_id` look-up each), so a crash between the two writes heals itself.
"""
from __future__ import annotations

from typing import Any

from pymongo.database import Database

from platformkit.envelope import new_event
from platformkit.outbox import OUTBOX, PENDING, AlreadyExists, insert_with_events
from platformkit.mongo import is_duplicate_key
from platformkit.errors import Conflict

from .workflow import EVENT_TYPES

REPORTS, STEPS, SETTINGS = "periodic_reports", "periodic_steps", "periodic_settings"
HIDDEN = {OUTBOX: 0, PENDING: 0}
NOT_STATE = {"_id", OUTBOX, PENDING, "rev", "version"}


def report_id(period: str, unit: str) -> str:
    return f"{period}|{unit}"


def step_id(rid: str, n: int) -> str:
    return f"{rid}@{n:06d}"


def setup(db: Database) -> None:
    db[REPORTS].create_index([("parent_id", 1), ("period", 1)], name="parent_period")
    db[REPORTS].create_index([("ancestors", 1), ("period", 1)], name="ancestors_period")
    db[STEPS].create_index(PENDING, name="outbox_pending")
    db[STEPS].create_index("report", name="report")


def _roll_forward(db: Database, doc: dict) -> dict:
    n = doc.get("step_no", 0)
    rolled = False
    while True:
        step = db[STEPS].find_one({"_id": step_id(doc["_id"], n + 1)}, {"state": 1})
        if step is None:
            break
        doc = {**step["state"], "_id": doc["_id"]}
        n += 1
        rolled = True
    if rolled:  # heal the copy (a later, racing copy write is healed the same way by its reader)
        db[REPORTS].replace_one({"_id": doc["_id"]}, doc, upsert=True)
    return doc


def load(db: Database, rid: str) -> dict | None:
    doc = db[REPORTS].find_one({"_id": rid})
    if doc is None:
        return None
    doc = _roll_forward(db, doc)
    return doc


def find(db: Database, query: dict) -> list[dict]:
    return [_roll_forward(db, d) for d in db[REPORTS].find(query)]


def placeholder(db: Database, doc: dict) -> None:
    """The copy at step 0 (status draft), so that listings find a report whose first step commits
    after it: a duplicate means it is there already."""
    try:
        db[REPORTS].insert_one({**doc, "step_no": 0, "status": "draft"})
    except Exception as exc:  # noqa: BLE001
        if not is_duplicate_key(exc):
            raise


def commit(db: Database, current: dict, new_state: dict, step: str, event_data: dict, at: str) -> dict:
    """Commit `step` on a report read at `current['step_no']`: insert the step document with its
    event (the compare-and-set), then write the copy. 409 when another request committed first."""
    rid = current["_id"]
    n = current.get("step_no", 0) + 1
    state = {k: v for k, v in new_state.items() if k not in NOT_STATE}
    state["step_no"] = n
    event = new_event("reporting", EVENT_TYPES[step], rid, event_data, n, time=at)
    try:
        # who / when / why stay on the step document: the outbox entry leaves it once published
        who = {k: event_data.get(k) for k in ("by_unit_id", "by_subject", "at", "reason")}
        insert_with_events(db[STEPS], {"_id": step_id(rid, n), "report": rid, "step_no": n, "step": step,
                                       "who": who, "state": state}, [event])
    except AlreadyExists:
        raise Conflict(f"report {rid} was changed by a concurrent request; reload it", field="step_no") from None
    doc = {**state, "_id": rid}
    db[REPORTS].replace_one({"_id": rid}, doc, upsert=True)
    return doc


def history(db: Database, rid: str) -> list[dict[str, Any]]:
    steps = db[STEPS].find({"report": rid}, {"state": 0, **HIDDEN})
    return sorted(steps, key=lambda s: s["step_no"])
