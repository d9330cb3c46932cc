"""Periodic reports, the service layer: scope, who is expected to report, computed figures read
from reporting's live views at the cut-off, the workflow steps, completeness and on-time rates,
the entered indicators rolled up, deadlines per province.

Computed figures are read at the moment of a submission and frozen with it (the approval keeps
them); the live figure keeps moving when events dated before the cut-off arrive late, and the
difference shows as the adjustment (live minus frozen) until the report is reopened and submitted
again.

The commands (save, submit, approve, return, reopen, deadlines) are handlers taking
`(command, caller, stores)` (reporting's commands.py and stores.py); the reads keep their
`(caller, unit_id, ...)` arguments and use this process's stores.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from platformkit import clock
from platformkit.auth import Caller, Forbidden, check_scope
from platformkit.envelope import utc_now_iso
from platformkit.errors import InvalidInput, RuleViolated

from .. import commands
from .. import service as reporting
from .. import views
from ..periods import Period
from ..store import Generation
from ..stores import Stores
from . import forms, store
from .forms import FormError, ReportPeriod
from .workflow import Actor, StepRefused, check_step

SUBMITTED = ("submitted", "approved", "returned")  # received at least once (returned: corrected next)


def today() -> date:
    """Vietnam's day (a deadline is a calendar day there); tests replace it."""
    return clock.today()


def setup(db) -> None:
    store.setup(db)


def _period(code: str) -> ReportPeriod:
    try:
        return forms.report_period(code)
    except FormError as exc:
        raise InvalidInput(str(exc), field=exc.field) from None


def _refuse(exc: StepRefused):
    if exc.status == 403:
        raise Forbidden(str(exc))
    if exc.status == 400:
        raise InvalidInput(str(exc), field=exc.field)
    raise RuleViolated(str(exc), field=exc.field)


# ------------------------------------------------------------------------ hierarchy at the cut-off

def _cutoff(rp: ReportPeriod) -> Period:
    return Period(rp.period.last, rp.period.last, rp.period.last)


def _closed_by(unit: dict, rp: ReportPeriod) -> bool:
    closed_on = unit.get("closed_on")
    return unit.get("status") in views.CLOSED and bool(closed_on) and closed_on[:10] <= rp.cutoff.isoformat()


def active_at_cutoff(gen: Generation, units: list[dict], rp: ReportPeriod) -> list[dict]:
    """The units that operate at the cut-off: not closed on or before it, and a CĐCS counted in
    `cdcs.active` at the cut-off (founded by then: reporting keeps no creation date of other units)."""
    open_ = [u for u in units if not _closed_by(u, rp)]
    cdcs = [u["_id"] for u in open_ if u.get("kind") == "cdcs"]
    founded = views.period_sums(gen, cdcs, _cutoff(rp)) if cdcs else {}
    return [u for u in open_ if u.get("kind") != "cdcs" or founded[u["_id"]].get("cdcs.active", 0) > 0]


def _unit(gen: Generation, unit_id: str) -> dict:
    return views.unit_info(gen, unit_id)


def _reporting_unit(gen: Generation, unit_id: str, rp: ReportPeriod) -> dict:
    unit = _unit(gen, unit_id)
    if not active_at_cutoff(gen, [unit], rp):
        raise RuleViolated(f"unit {unit_id} is not active at the cut-off {rp.cutoff.isoformat()}", field="unit_id")
    return unit


def expected_children(gen: Generation, unit_id: str, rp: ReportPeriod) -> list[dict]:
    kids = list(gen.units.find({"parent_id": unit_id}, views.UNIT_FIELDS | {"level": 1, "parent_id": 1}))
    return sorted(active_at_cutoff(gen, kids, rp), key=lambda u: (u.get("name") or u["_id"], u["_id"]))


# ------------------------------------------------------------------------ deadlines

def due_days_for(st: Stores, unit: dict) -> dict[str, dict[int, int]]:
    """The deadlines that apply to a unit: the nearest settings document on its path (its province
    sets them; a commune or the central level may too), else the defaults (forms.DEFAULT_DUE_DAYS)."""
    for uid in [unit["_id"], *reversed(unit.get("ancestors") or [])]:
        doc = st.db[store.SETTINGS].find_one({"_id": uid})
        if doc:
            return {k: {int(lv): n for lv, n in v.items()} for k, v in doc["due_days"].items()}
    return forms.DEFAULT_DUE_DAYS


def due_of(unit: dict, rp: ReportPeriod, due_days: dict) -> date:
    return forms.due_date(rp, forms.level_of(unit), due_days)


def get_settings(unit_id: str, caller: Caller, stores: Stores) -> dict:
    return _settings_out(stores, caller, unit_id)


def _settings_out(st: Stores, caller: Caller, unit_id: str) -> dict:
    unit = reporting.scoped_unit(caller, unit_id, st.live())
    doc = st.db[store.SETTINGS].find_one({"_id": unit_id})
    return {"unit_id": unit_id, "own": bool(doc), "due_days": _days_out(due_days_for(st, unit))}


def set_deadlines(command: commands.SetDeadlines, caller: Caller, stores: Stores) -> dict:
    unit = _unit(stores.live(), command.unit_id)
    check_scope(caller, unit["_id"], unit.get("ancestors", []), write=True)
    try:
        days = forms.check_due_days(command.due_days)
    except FormError as exc:
        raise InvalidInput(str(exc), field=exc.field) from None
    doc = {"due_days": _days_out(days), "set_by": caller.subject, "set_at": utc_now_iso()}
    stores.db[store.SETTINGS].replace_one({"_id": command.unit_id}, doc, upsert=True)
    return _settings_out(stores, caller, command.unit_id)


def _days_out(days: dict) -> dict:
    return {k: {str(lv): n for lv, n in v.items()} for k, v in days.items()}


# ------------------------------------------------------------------------ figures

def computed_figures(st: Stores, gen: Generation, unit_id: str, rp: ReportPeriod) -> dict[str, int]:
    """The computed figures of a unit's form, from the live views at the cut-off."""
    sums = views.period_sums(gen, [unit_id], rp.period)[unit_id]
    if rp.kind != "quarter":
        return {f.code: int(sums.get(f.indicator, 0)) for f in forms.COMPUTED_HALF_YEAR}
    prev = store.load(st.db, store.report_id(rp.previous_quarter, unit_id))
    if prev and prev.get("status") == "approved":
        opening = prev["computed"]["closing_balance"]  # the next quarter opens where the approved one closed
    else:
        opening = int(views.period_sums(gen, [unit_id], forms.quarter_opening_period(rp))[unit_id].get("members.active", 0))
    out = {f.code: int(sums.get(f.indicator, 0)) for f in forms.COMPUTED_QUARTER if f.indicator}
    out["opening_balance"] = opening
    out["adjustment"] = out["closing_balance"] - (opening + out["admitted"] + out["transferred_in"]
                                                  - out["transferred_out"] - out["left"])
    return out


def _children_totals(reports: list[dict], entered_codes: list[str]) -> dict[str, int]:
    out = {c: 0 for c in entered_codes}
    for r in reports:
        if r.get("status") == "approved":
            for c in entered_codes:
                out[c] += int((r.get("totals") or {}).get(c, 0))
    return out


def _blank(unit: dict, rp: ReportPeriod) -> dict:
    return {"_id": store.report_id(rp.code, unit["_id"]), "unit": unit["_id"], "parent_id": unit.get("parent_id"),
            "ancestors": unit.get("ancestors") or [], "period": rp.code, "kind": rp.kind, "step_no": 0,
            "status": "draft", "entered": {f.code: 0 for f in rp.entered}, "totals": None, "computed": None,
            "first_submitted_on": None, "submitted_at": None, "approved_at": None, "approved_by": None,
            "returned_reason": None}


def _load_or_blank(st: Stores, unit: dict, rp: ReportPeriod) -> dict:
    return store.load(st.db, store.report_id(rp.code, unit["_id"])) or _blank(unit, rp)


def _child_reports(st: Stores, unit_id: str, rp: ReportPeriod) -> dict[str, dict]:
    return {r["unit"]: r for r in store.find(st.db, {"parent_id": unit_id, "period": rp.code})}


def report_view(unit_id: str, code: str, caller: Caller, stores: Stores) -> dict:
    rp = _period(code)
    st = stores
    gen = st.live()
    unit = reporting.scoped_unit(caller, unit_id, gen)
    return _report_out(st, gen, unit, rp, _load_or_blank(st, unit, rp))


def _report_out(st: Stores, gen: Generation, unit: dict, rp: ReportPeriod, doc: dict) -> dict:
    live = computed_figures(st, gen, unit["_id"], rp)
    frozen = doc.get("computed")
    kids = _child_reports(st, unit["_id"], rp)
    from_children = _children_totals(list(kids.values()), [f.code for f in rp.entered])
    own = doc.get("entered") or {}
    totals = doc.get("totals") or {c: own.get(c, 0) + from_children[c] for c in own}
    due = due_of(unit, rp, due_days_for(st, unit))
    rows = []
    for f in rp.fields():
        if f.source == "computed":
            value = frozen[f.code] if frozen else live[f.code]
            rows.append({"code": f.code, "name_vi": f.name_vi, "name_en": f.name_en, "unit": f.unit,
                         "source": "computed", "value": value, "live": live[f.code],
                         "adjustment": (live[f.code] - frozen[f.code]) if frozen else None})
        else:
            rows.append({"code": f.code, "name_vi": f.name_vi, "name_en": f.name_en, "unit": f.unit,
                         "source": "entered", "own": own.get(f.code, 0), "from_children": from_children[f.code],
                         "value": totals.get(f.code, 0)})
    return {"id": doc["_id"], "unit": views.unit_out(unit, views.path_of(gen, unit)), "period": rp.code,
            "kind": rp.kind, "kind_name": forms.KINDS[rp.kind], "cutoff": rp.cutoff.isoformat(),
            "due_date": due.isoformat(), "status": doc["status"], "step_no": doc.get("step_no", 0),
            "frozen": frozen is not None, "first_submitted_on": doc.get("first_submitted_on"),
            "on_time": forms.on_time(doc.get("first_submitted_on"), due),
            "approved_at": doc.get("approved_at"), "approved_by": doc.get("approved_by"),
            "returned_reason": doc.get("returned_reason"),
            "unionisation_pct": forms.unionisation_pct(totals) if rp.entered else None,
            "rows": rows}


# ------------------------------------------------------------------------ steps

def _actor(caller: Caller) -> Actor:
    return Actor(caller.unit_id)


def save(command: commands.SaveReport | commands.SubmitReport, caller: Caller, stores: Stores) -> dict:
    """Save the unit's own figures; a SubmitReport also submits (the computed figures are frozen)."""
    unit_id, submit = command.unit_id, isinstance(command, commands.SubmitReport)
    rp = _period(command.period)
    gen = stores.live()
    unit = _unit(gen, unit_id)
    check_scope(caller, unit["_id"], unit.get("ancestors", []), write=True)
    doc = _load_or_blank(stores, unit, rp)
    step = "submit" if submit else "save"
    try:
        status = check_step(step, doc["status"], unit_id, unit.get("ancestors") or [], _actor(caller))
    except StepRefused as exc:
        _refuse(exc)
    if command.step_no is not None and command.step_no != doc.get("step_no", 0):
        raise RuleViolated(f"the report is at step {doc.get('step_no', 0)}, not {command.step_no}; reload it",
                           field="step_no")
    _reporting_unit(gen, unit_id, rp)
    try:
        own = forms.check_entered(dict(command.entered) if command.entered is not None
                                  else doc.get("entered") or {}, rp)
    except FormError as exc:
        raise InvalidInput(str(exc), field=exc.field) from None
    kids = _child_reports(stores, unit_id, rp)
    from_children = _children_totals(list(kids.values()), list(own))
    totals = {code: own[code] + from_children[code] for code in own}
    try:
        forms.check_totals(totals)
    except FormError as exc:
        raise InvalidInput(str(exc), field=exc.field) from None
    new = {**doc, "unit": unit_id, "parent_id": unit.get("parent_id"), "ancestors": unit.get("ancestors") or [],
           "entered": own, "status": status}
    at = utc_now_iso()
    if submit:
        expected = expected_children(gen, unit_id, rp)
        waiting = [k for k in expected if kids.get(k["_id"], {}).get("status") != "approved"]
        if waiting:
            raise RuleViolated("children's reports are not all approved: " + ", ".join(
                f"{k['_id']} ({kids.get(k['_id'], {}).get('status', 'missing')})" for k in waiting),
                field="children")
        new.update(totals=totals, computed=computed_figures(stores, gen, unit_id, rp), submitted_at=at,
                   first_submitted_on=doc.get("first_submitted_on") or today().isoformat(), returned_reason=None)
    if doc.get("step_no", 0) == 0:
        store.placeholder(stores.db, {k: v for k, v in _blank(unit, rp).items()})
    saved = store.commit(stores.db, doc, new, step, _event_data(caller, unit, rp, new, at, None), at)
    return _report_out(stores, gen, unit, rp, saved)


def decide(command: commands.ApproveReport | commands.ReturnReport | commands.ReopenReport, caller: Caller,
           stores: Stores) -> dict:
    """Approve, return or reopen a child's report (by a unit above it)."""
    unit_id, reason, step = command.unit_id, command.reason, commands.DECISIONS[type(command)]
    rp = _period(command.period)
    gen = stores.live()
    unit = _unit(gen, unit_id)
    check_scope(caller, unit["_id"], unit.get("ancestors", []), write=True)
    doc = store.load(stores.db, store.report_id(rp.code, unit_id))
    if doc is None:
        raise RuleViolated(f"unit {unit_id} has not submitted its {rp.code} report", field="status")
    try:
        status = check_step(step, doc["status"], unit_id, unit.get("ancestors") or [], _actor(caller), reason)
    except StepRefused as exc:
        _refuse(exc)
    at = utc_now_iso()
    new = {**doc, "status": status}
    if step == "approve":
        new.update(approved_at=at, approved_by=caller.unit_id)
    else:
        new.update(returned_reason=reason.strip(), approved_at=None, approved_by=None)
    saved = store.commit(stores.db, doc, new, step, _event_data(caller, unit, rp, new, at, reason), at)
    return _report_out(stores, gen, unit, rp, saved)


def _event_data(caller: Caller, unit: dict, rp: ReportPeriod, new: dict, at: str, reason: str | None) -> dict:
    return {"report_id": new["_id"], "unit_id": unit["_id"], "ancestors": unit.get("ancestors") or [],
            "parent_id": unit.get("parent_id"), "period": rp.code, "kind": rp.kind, "cutoff": rp.cutoff.isoformat(),
            "status": new["status"], "by_unit_id": caller.unit_id, "by_subject": caller.subject, "at": at,
            "reason": reason, "entered": new.get("entered"), "totals": new.get("totals"),
            "computed": new.get("computed"), "first_submitted_on": new.get("first_submitted_on")}


def history(unit_id: str, code: str, caller: Caller, stores: Stores) -> list[dict]:
    rp = _period(code)
    st = stores
    reporting.scoped_unit(caller, unit_id, st.live())
    steps = st.db[store.STEPS].find({"report": store.report_id(rp.code, unit_id)}, {"step_no": 1, "step": 1, "who": 1})
    return [{"step_no": s["step_no"], "step": s["step"], **(s.get("who") or {})}
            for s in sorted(steps, key=lambda s: s["step_no"])]


# ------------------------------------------------------------------------ status tree and rates

def _entry(unit: dict, rp: ReportPeriod, report: dict | None, now: date, days: dict) -> dict:
    due = due_of(unit, rp, days)
    status = report["status"] if report else "missing"
    first = report.get("first_submitted_on") if report else None
    submitted = status in SUBMITTED and first is not None
    timely = forms.on_time(first, due) if submitted else None
    late = (submitted and not timely) or (not submitted and now > due)
    return {"status": status, "due_date": due.isoformat(), "first_submitted_on": first, "submitted": submitted,
            "on_time": timely, "late": bool(late), "missing": not submitted}


def _rates(counts: dict[str, int]) -> dict:
    exp = counts["expected"]
    return {**counts, "completeness_pct": views.ratio(counts["submitted"], exp),
            "on_time_pct": views.ratio(counts["on_time"], exp)}


COUNTS = ("expected", "submitted", "on_time", "late", "missing", "approved", "returned")


def _subtree(st: Stores, gen: Generation, unit: dict, rp: ReportPeriod) -> tuple[list[dict], dict[str, dict], dict[str, dict]]:
    """Every unit below `unit` expected to report (its parent expects it), the reports of the
    subtree by unit, and the entry of every expected unit."""
    below = list(gen.units.find({"ancestors": unit["_id"]}, views.UNIT_FIELDS | {"level": 1, "parent_id": 1}))
    active = {u["_id"]: u for u in active_at_cutoff(gen, below, rp)}
    # expected: active at the cut-off and its parent active too (a closed parent expects nothing)
    expected = [u for u in active.values() if u["parent_id"] == unit["_id"] or u["parent_id"] in active]
    reports = {r["unit"]: r for r in store.find(st.db, {"ancestors": unit["_id"], "period": rp.code})}
    now, days = today(), due_days_for(st, unit)
    entries = {u["_id"]: _entry(u, rp, reports.get(u["_id"]), now, days) for u in expected}
    return expected, reports, entries


def _summed(unit_id: str, expected: list[dict], entries: dict[str, dict]) -> dict[str, dict[str, int]]:
    """Counts per unit of the subtree (and `unit_id` itself), each report counted at its parent and
    every unit above it up to `unit_id`: sums up the hierarchy."""
    sums: dict[str, dict[str, int]] = defaultdict(lambda: {c: 0 for c in COUNTS})
    for u in expected:
        e = entries[u["_id"]]
        path = u["ancestors"][u["ancestors"].index(unit_id):] if unit_id in u["ancestors"] else [unit_id]
        for a in path:
            s = sums[a]
            s["expected"] += 1
            s["submitted"] += e["submitted"]
            s["on_time"] += bool(e["on_time"])
            s["late"] += e["late"]
            s["missing"] += e["missing"]
            s["approved"] += e["status"] == "approved"
            s["returned"] += e["status"] == "returned"
    return sums


def status_tree(unit_id: str, code: str, caller: Caller, stores: Stores) -> dict:
    """The unit's own report, its children's (each with its status, due date, on time / late /
    missing) and the rates summed over the whole subtree, per child too (drill-down: ask again
    for a child)."""
    rp = _period(code)
    st = stores
    gen = st.live()
    unit = reporting.scoped_unit(caller, unit_id, gen)
    expected, reports, entries = _subtree(st, gen, unit, rp)
    sums = _summed(unit_id, expected, entries)
    days = due_days_for(st, unit)
    own = _entry(unit, rp, store.load(st.db, store.report_id(rp.code, unit_id)), today(), days)
    kids = sorted([u for u in expected if u["parent_id"] == unit_id], key=lambda u: (u.get("name") or "", u["_id"]))
    return {"unit": views.unit_out(unit, views.path_of(gen, unit)), "period": rp.code, "kind": rp.kind,
            "cutoff": rp.cutoff.isoformat(), "own": own,
            "rates": _rates(sums[unit_id]),
            "children": [{"unit": views.unit_out(k), **entries[k["_id"]], "has_children": k["_id"] in sums,
                          "rates": _rates(sums[k["_id"]]) if k["_id"] in sums else None} for k in kids]}


def completeness(unit_id: str, code: str, caller: Caller, stores: Stores) -> dict:
    """Expected, submitted, on time, late, missing over the whole subtree, the rates against their
    targets, and the list of late and missing units for follow-up."""
    rp = _period(code)
    st = stores
    gen = st.live()
    unit = reporting.scoped_unit(caller, unit_id, gen)
    expected, _, entries = _subtree(st, gen, unit, rp)
    counts = _summed(unit_id, expected, entries)[unit_id]
    sums = {f"reports.{c}": counts[c] for c in COUNTS}
    follow = [{"unit": views.unit_out(u), **entries[u["_id"]]} for u in expected
              if entries[u["_id"]]["late"] or entries[u["_id"]]["missing"]]
    follow.sort(key=lambda x: (x["unit"]["ancestors"], x["unit"]["id"]))
    return {"unit": views.unit_out(unit, views.path_of(gen, unit)), "period": rp.code,
            "rates": _rates(counts), "rows": _rows(st, gen, unit, rp, sums, RATE_CODES),
            "late": [f for f in follow if f["late"] and not f["missing"]],
            "missing": [f for f in follow if f["missing"]]}


RATE_CODES = ["reports.expected", "reports.submitted", "reports.on_time", "reports.late", "reports.missing",
              "reports.completeness_pct", "reports.on_time_pct"]
ENTERED_CODES = [f"entered.{c}" for c in forms.ENTERED_CODES] + ["entered.unionisation_pct"]


def _rows(st: Stores, gen: Generation, unit: dict, rp: ReportPeriod, sums: dict, codes: list[str]) -> list[dict]:
    # the unit's own targets, else its children's of that year (closed ones too), and those it
    # carries from closed predecessors: the same book the views use
    book = views.TargetBook(st.target_docs, rp.period.year, gen)
    targets, carried_from = book.of(unit, views.children_of_year(gen, unit["_id"], rp.period.year))
    return views.rows_for(sums, targets, codes, rp.period, carried_from, book.carried_to(unit))


def entered_view(unit_id: str, code: str, basis: str, caller: Caller, stores: Stores) -> dict:
    """The entered indicators of a unit's subtree for a report period, rolled up as sums (the
    unionisation rate: members among the workforce over the workforce, both summed first), against
    their targets. `basis`: `approved` sums the approved reports (what was frozen), `live` the
    latest entry of every report, submitted or not."""
    rp = _period(code)
    if rp.kind == "quarter":
        raise InvalidInput("the quarterly member changes have no entered figures", field="period")
    st = stores
    gen = st.live()
    unit = reporting.scoped_unit(caller, unit_id, gen)
    reports = store.find(st.db, {"ancestors": unit_id, "period": rp.code})
    own = store.load(st.db, store.report_id(rp.code, unit_id))
    sums: dict[str, int] = defaultdict(int)
    counted = 0
    for r in reports + ([own] if own else []):
        if basis == "approved" and r.get("status") != "approved":
            continue
        counted += 1
        for c, v in (r.get("entered") or {}).items():
            sums[f"entered.{c}"] += int(v)
    return {"unit": views.unit_out(unit, views.path_of(gen, unit)), "period": rp.code, "basis": basis,
            "reports_counted": counted, "rows": _rows(st, gen, unit, rp, sums, ENTERED_CODES)}


def export_form(unit_id: str, code: str, caller: Caller, stores: Stores) -> dict[str, Any]:
    return report_view(unit_id, code, caller, stores)
