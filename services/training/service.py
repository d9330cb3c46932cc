"""Training's handlers: `handler(command, caller, stores)` for the verbs (commands.py), reads
`handler(ids or query..., caller, stores)`. Each loads the aggregate, checks the caller's subtree,
lets the domain decide, and saves the new state and its events in ONE single-document write. The
database is reached only through `stores` (stores.py); no driver, no web layer here.

Courses and classes are changed by concurrent commands, so they are saved through stores.py on
platformkit/repository.py (the change document with its events is the unit of commit; see there why
a conditional update loses writes on FerretDB). A command that lost a race is re-run on the fresh state: the
second of two enrolments for the last seat sees a full class and is refused (422). Dissemination
sessions are only ever inserted: `insert_with_events` on the session document is enough.

Idempotency-Key (platformkit/idempotency.py) on every creating POST: courses, classes, enrolments,
completions (they issue certificates) and dissemination sessions. The scoped key and the request's
fingerprint are stored IN what the POST inserts (the course or class document, the class's change
document, the session document), under a sparse unique index, with the answer it gave; a retry finds
it and answers the same (status, id and body), a racing retry loses the unique insert and does the
same, and the same key with another request is a 422 naming the header."""
from __future__ import annotations

import uuid
from datetime import date
from typing import Any, Callable

from platformkit.clock import today
from platformkit import auth, idempotency, mongo, paging, period_lists
from platformkit.auth import Caller, Forbidden
from platformkit.envelope import new_event
from platformkit.idempotency import Request
from platformkit.outbox import AlreadyExists, insert_with_events
from platformkit.errors import Conflict
from platformkit.errors import NotFound as Missing
from platformkit.errors import Refusal as DomainError

from . import commands as c
from . import domain
from .stores import (CLASS_ID_CHARS, CLASS_LIST_ROUND, CLASSES, FIRST_ANSWER, HIDDEN, NOT_STATE, SERVICE,
                     AggregateStore, KeyTaken, Stores, class_index_fields, class_markers, session_index_fields)

# A member's training history is read whole (GET /members/{id}/enrolments): bounded all the same.
MAX_CLASSES_PER_MEMBER = 1000


def _committed(docs: list[dict]) -> list[dict]:
    """Without creations not committed (yet): a copy at version 0 (platformkit/repository.py).
    Filtered here, not in the query: a range there would stop FerretDB's push-down of the query's
    equalities (conventions.md: hot queries are top-level equalities only)."""
    return [d for d in docs if d.get("version", 0) >= 1]


def _new_id() -> str:
    return str(uuid.uuid4())


def _envelopes(subject: str, version: int, raised: list[domain.Event]):
    return [new_event(SERVICE, r.type, subject, r.data, version) for r in raised]


def _create(store: AggregateStore, state: dict, raised: list[domain.Event], req: Request) -> dict:
    """Create; with a key the version-0 document carries it and the answer (`FIRST_ANSWER`)."""
    state = store.with_derived(state)  # so that the first answer is the stored state
    stamp = {**req.stamp(), FIRST_ANSWER: {**state, "version": 1}} if req.key else None
    return store.create(state, lambda v: _envelopes(state["_id"], v, raised), stamp)


def _create_once(store: AggregateStore, req: Request, check_write: Callable[[dict], Any],
                 created: Callable[[dict], list[domain.Event]],
                 decide: Callable[[], tuple[dict, list[domain.Event]]],
                 taken: Callable[[dict], Conflict]) -> dict:
    """A creation: a retry with the same Idempotency-Key gets the first answer (before deciding
    anything, and again when a racing retry inserted first); any other duplicate is `taken(state)`."""
    if req.key and (first := store.created_with(req.key)) is not None:
        return _replay_creation(store, first, req, check_write, created)
    state, raised = decide()
    try:
        return _create(store, state, raised, req)
    except AlreadyExists as exc:
        if req.key and (first := store.created_with(req.key)) is not None:  # a racing retry won
            return _replay_creation(store, first, req, check_write, created)
        raise taken(state) from exc


def _replay_creation(store: AggregateStore, first: dict, req: Request, check_write: Callable[[dict], Any],
                     created: Callable[[dict], list[domain.Event]]) -> dict:
    """The answer to a retry of a creation: the first answer. A creation its first request left
    half-done (crashed between its two inserts, or still between them) is finished here."""
    req.check(first)
    check_write(first)
    if first["version"] < 1:
        state = {k: v for k, v in first.items() if k not in NOT_STATE}
        state["_id"] = first["_id"]
        store.finish_create(state, lambda v: _envelopes(first["_id"], v, created(state)))
    return first[FIRST_ANSWER]


def _keyed_command(store: AggregateStore, _id: str, req: Request, check: Callable[[dict], Any],
                   decide: Callable[[dict], tuple[dict, list[domain.Event]]], answer: Callable[[dict], dict],
                   expected_version: int | None = None) -> dict:
    """A command that creates something (an enrolment, a certificate): its change document carries
    the key and the answer; a retry gets that answer and commits nothing."""
    def replay(first: dict) -> dict:
        req.check(first)
        check(store.load(_id))
        return first[FIRST_ANSWER]

    if req.key and (first := store.changed_with(req.key)) is not None:
        return replay(first)
    stamp = (lambda new: {**req.stamp(), FIRST_ANSWER: answer(new)}) if req.key else None
    try:
        new = store.command(_id, check, decide, lambda v, raised: _envelopes(_id, v, raised), stamp,
                            expected_version=expected_version)
    except KeyTaken as taken:
        return replay(taken.first)
    except DomainError:
        # a racing request with the same key committed between our look-up and our decision (the
        # member is enrolled now): that one is the answer
        first = store.changed_with(req.key) if req.key else None
        if first is None:
            raise
        return replay(first)
    return answer(new)


def _command(store: AggregateStore, _id: str, check: Callable[[dict], Any],
             decide: Callable[[dict], tuple[dict, list[domain.Event]]], expected_version: int | None = None) -> dict:
    return store.command(_id, check, decide, lambda v, raised: _envelopes(_id, v, raised),
                         expected_version=expected_version)


def _day(on: date | None) -> date:
    return on or today()


def _caller_ancestors(stores: Stores, caller: Caller) -> list[str]:
    return stores.unit_ancestors(caller.unit_id) or []


def _scope_filter(stores: Stores, caller: Caller, scope_field: str, unit_id: str | None) -> dict:
    """List filter: the caller's subtree, or the subtree of `unit_id` when it lies inside it: one
    equality on the stored scope (ancestors and the unit itself, stores.scope_of)."""
    if unit_id:
        auth.check_scope(caller, unit_id, stores.unit_ancestors(unit_id) or [])
        return {scope_field: unit_id}
    return {scope_field: caller.unit_id}


def _page(coll, flt: dict, projection: dict, query: dict) -> dict:
    items, next_cursor = paging.page(coll, flt, query.get("after"), query.get("limit", 100), projection=projection)
    return {"items": _committed(items), "next_cursor": next_cursor}


# ---------------------------------------------------------------- courses

def _check_course_read(stores: Stores, caller: Caller, course: dict) -> None:
    """A course is visible to its owner's subtree and to units below the owner that use it
    (catalogue flows downward): the caller covers the owner, or the owner is above the caller."""
    if caller.covers(course["owner_unit_id"], course["owner_ancestors"]):
        return
    if course["owner_unit_id"] in _caller_ancestors(stores, caller):
        return
    raise Forbidden("the course is outside the caller's reach")


def _course_writer(caller: Caller) -> Callable[[dict], Any]:
    return lambda course: auth.check_scope(caller, course["owner_unit_id"], course["owner_ancestors"], write=True)


def register_course(cmd: c.RegisterCourse, caller: Caller, stores: Stores) -> dict:
    body = cmd.body()
    ancestors = stores.unit_ancestors(cmd.owner_unit_id)
    auth.check_scope(caller, cmd.owner_unit_id, ancestors or [], write=True)
    req = Request.of(caller, cmd.idempotency_key, "course", body)
    return _create_once(stores.courses, req, _course_writer(caller), domain.course_created,
                        lambda: domain.register_course(_new_id(), body, ancestors),
                        lambda course: Conflict(f"unit {course['owner_unit_id']} already has a course coded "
                                                f"{course['code']}", "code"))


def get_course(course_id: str, caller: Caller, stores: Stores) -> dict:
    course = stores.courses.load(course_id)
    _check_course_read(stores, caller, course)
    return course


def list_courses(query: dict, caller: Caller, stores: Stores) -> dict:
    extra = {key: query[key] for key in ("topic", "status") if query.get(key)}
    if query.get("unit_id"):
        return _page(stores.courses.coll, {**_scope_filter(stores, caller, "owner_scope", query["unit_id"]), **extra},
                     HIDDEN, query)
    # the caller's subtree plus the catalogues of the units above it: one equality query each
    # (the caller's scope, then each ancestor as owner), their pages merged by _id
    filters = [{"owner_scope": caller.unit_id, **extra}] + \
        [{"owner_unit_id": a, **extra} for a in _caller_ancestors(stores, caller)]
    items, next_cursor = paging.page_union(stores.courses.coll, filters, query.get("after"),
                                           query.get("limit", 100), projection=HIDDEN)
    return {"items": _committed(items), "next_cursor": next_cursor}


def retire_course(cmd: c.RetireCourse, caller: Caller, stores: Stores) -> dict:
    return _command(stores.courses, cmd.course_id, _course_writer(caller), domain.retire_course, cmd.version)


# ---------------------------------------------------------------- classes

def _check_class_read(caller: Caller, cls: dict) -> None:
    auth.check_scope(caller, cls["organising_unit_id"], cls["organising_ancestors"])


def _class_writer(caller: Caller) -> Callable[[dict], Any]:
    return lambda cls: auth.check_scope(caller, cls["organising_unit_id"], cls["organising_ancestors"], write=True)


def plan_class(cmd: c.PlanClass, caller: Caller, stores: Stores) -> dict:
    body = cmd.body()
    ancestors = stores.unit_ancestors(cmd.organising_unit_id)
    auth.check_scope(caller, cmd.organising_unit_id, ancestors or [], write=True)
    req = Request.of(caller, cmd.idempotency_key, "class", body)

    def planned():
        try:
            course = stores.courses.load(cmd.course_id)
        except Missing:
            course = None
        return domain.plan_class(_new_id(), body, course, ancestors)
    return _create_once(stores.classes, req, _class_writer(caller), domain.class_created, planned,
                        lambda cls: Conflict(f"class code {cls['code']} is taken", "code"))


def get_class(class_id: str, caller: Caller, stores: Stores) -> dict:
    cls = stores.classes.load(class_id)
    _check_class_read(caller, cls)
    return cls


def list_classes(query: dict, caller: Caller, stores: Stores) -> dict:
    """The classes organised in the subtree, the latest start first, read a period at a time
    (platformkit/period_lists.py): a province's page reads about a page of classes."""
    unit = _scope_filter(stores, caller, "organising_scope", query.get("unit_id"))["organising_scope"]
    flt = {key: query[key] for key in ("status", "course_id", "topic") if query.get(key)}
    items, next_cursor = period_lists.page(stores.classes.coll, stores.db, CLASSES, flt, unit, "start_date",
                                           query.get("after"), query.get("limit", 100),
                                           projection={**HIDDEN, "enrolments": 0})
    return {"items": _committed(items), "next_cursor": next_cursor}


def _class_command(cmd: Any, caller: Caller, stores: Stores, decide) -> dict:
    return _command(stores.classes, cmd.class_id, _class_writer(caller), decide, cmd.version)


def open_class(cmd: c.OpenClass, caller: Caller, stores: Stores) -> dict:
    return _class_command(cmd, caller, stores, domain.open_class)


def start_class(cmd: c.StartClass, caller: Caller, stores: Stores) -> dict:
    return _class_command(cmd, caller, stores, domain.start_class)


def close_class(cmd: c.CloseClass, caller: Caller, stores: Stores) -> dict:
    return _class_command(cmd, caller, stores, lambda cls: domain.close_class(cls, _day(cmd.on)))


def cancel_class(cmd: c.CancelClass, caller: Caller, stores: Stores) -> dict:
    return _class_command(cmd, caller, stores, lambda cls: domain.cancel_class(cls, _day(cmd.on), cmd.reason))


def _enrolment_out(cls: dict, member_id: str) -> dict:
    entry = domain.find_enrolment(cls, member_id)
    return {**entry, "class_id": cls["_id"]}


def enrol(cmd: c.EnrolMember, caller: Caller, stores: Stores) -> dict:
    member_id = cmd.member_id
    req = Request.of(caller, cmd.idempotency_key, "enrolment", cmd.class_id, cmd.body())
    member, ancestors = stores.member_with_ancestors(member_id)
    return _keyed_command(stores.classes, cmd.class_id, req, _class_writer(caller),
                          lambda cls: domain.enrol(cls, member, ancestors, member_id, _day(cmd.on)),
                          lambda cls: _enrolment_out(cls, member_id), cmd.version)


def withdraw(cmd: c.WithdrawEnrolment, caller: Caller, stores: Stores) -> dict:
    cls = _class_command(cmd, caller, stores,
                         lambda cls: domain.withdraw(cls, cmd.member_id, _day(cmd.on), cmd.reason))
    return _enrolment_out(cls, cmd.member_id)


def list_enrolments(class_id: str, caller: Caller, stores: Stores) -> list[dict]:
    cls = get_class(class_id, caller, stores)
    return [{**e, "class_id": cls["_id"]} for e in cls["enrolments"]]


def member_enrolments(member_id: str, caller: Caller, stores: Stores) -> list[dict]:
    """A member's training history: enrolments in classes the caller may see, or of a member in
    the caller's subtree (a commune union sees its members' places in a province class)."""
    out = []
    # (enrolments come by commands after a class's creation: every class found is committed)
    for cls in stores.classes.coll.find({"enrolled_member_ids": member_id}, HIDDEN).sort("start_date", 1).limit(
            MAX_CLASSES_PER_MEMBER):
        entry = domain.find_enrolment(cls, member_id)
        if caller.covers(cls["organising_unit_id"], cls["organising_ancestors"]) or \
                caller.covers(entry["unit_id"], entry["ancestors"]):
            out.append({**entry, "class_id": cls["_id"]})
    return out


def record_attendance(cmd: c.RecordAttendance, caller: Caller, stores: Stores) -> dict:
    present = list(cmd.present)
    cls = _class_command(cmd, caller, stores, lambda cls: domain.record_attendance(cls, cmd.date, present))
    d = cmd.date.isoformat()
    present_ids = sorted({e["member_id"] for e in cls["enrolments"] if d in e["attended"]})
    absent = sorted(e["member_id"] for e in cls["enrolments"]
                    if e["status"] == "enrolled" and d not in e["attended"])
    return {"class_id": cmd.class_id, "date": d, "present": present_ids, "absent": absent, "version": cls["version"]}


def assess_completion(cmd: c.AssessCompletion, caller: Caller, stores: Stores) -> dict:
    member_id = cmd.member_id
    req = Request.of(caller, cmd.idempotency_key, "completion", cmd.class_id, member_id, cmd.body())

    def answer(cls: dict) -> dict:
        days = len(cls["days"])
        return {**_enrolment_out(cls, member_id), "days_count": days, "version": cls["version"],
                "required_days": domain.required_days(days, cls["min_attendance_percent"])}

    return _keyed_command(stores.classes, cmd.class_id, req, _class_writer(caller),
                          lambda cls: domain.assess_completion(cls, member_id, cmd.score, _day(cmd.on)), answer,
                          cmd.version)


def _certificate(cls: dict, e: dict) -> dict:
    return {"certificate_no": e["certificate_no"], "member_id": e["member_id"], "full_name": e.get("full_name"),
            "unit_id": e["unit_id"], "class_id": cls["_id"], "class_code": cls["code"],
            "class_name": cls["name"], "course_id": cls["course_id"], "course_code": cls["course_code"],
            "topic": cls["topic"], "organising_unit_id": cls["organising_unit_id"], "grade": e["grade"],
            "score": e["score"], "issued_on": e["assessed_on"]}


def get_certificate(number: str, caller: Caller, stores: Stores) -> dict:
    # (a class holds certificate numbers only after commands that followed its creation: committed)
    cls = stores.classes.coll.find_one({"certificate_nos": number}, HIDDEN)
    entry = cls and next((e for e in cls["enrolments"] if e.get("certificate_no") == number), None)
    if not entry:
        raise Missing(f"certificate {number} not found")
    if not (caller.covers(cls["organising_unit_id"], cls["organising_ancestors"])
            or caller.covers(entry["unit_id"], entry["ancestors"])):
        raise Forbidden("the certificate is outside the caller's subtree")
    return _certificate(cls, entry)


def class_certificates(class_id: str, caller: Caller, stores: Stores) -> list[dict]:
    cls = get_class(class_id, caller, stores)
    return [_certificate(cls, e) for e in cls["enrolments"] if e.get("certificate_no")]


# ---------------------------------------------------------------- dissemination sessions

BELOW_CDCS = ("cdcs_member", "department", "group")  # sections inside a CĐCS (they hold no members)


def _unit_reach(stores: Stores, unit_id: str) -> tuple[list[str] | None, str | None, list[str] | None]:
    """(ancestors, CĐCS id, CĐCS ancestors) of a member's unit. Members sit in a CĐCS (membership
    admits into CĐCS only); a unit the view has not heard of is taken to be the CĐCS itself."""
    doc = stores.units.find_one({"_id": unit_id}, {"ancestors": 1, "kind": 1})
    if doc is None:
        return None, unit_id, None
    ancestors = doc["ancestors"]
    kind = doc.get("kind")
    if kind in (None, "cdcs"):
        return ancestors, unit_id, ancestors
    if kind in BELOW_CDCS:
        for i in range(len(ancestors) - 1, -1, -1):
            up = stores.units.find_one({"_id": ancestors[i]}, {"kind": 1})
            if up is not None and up.get("kind") == "cdcs":
                return ancestors, ancestors[i], ancestors[:i]
    return ancestors, None, None  # a member of a federation unit: in no CĐCS


def _reach_facts(stores: Stores, member_ids: list[str]) -> dict[str, domain.Reach]:
    """What the local view knows of each listed member (at most MAX_MEMBERS_PER_SESSION): one look-up
    by `_id` each, then one per distinct unit. An `_id $in` query was faster on FerretDB over SQLite,
    which scanned for every look-up; on PostgreSQL with the GIN `_id` index a look-up is ~2.6 ms at
    200k documents, while `$in` (never pushed down) reads the whole view: 2.5M members at province
    size (platformkit.mongo.find_by_ids)."""
    wanted = list(dict.fromkeys(member_ids))
    found = mongo.find_by_ids(stores.members, wanted)
    units: dict[str, tuple] = {}
    out: dict[str, domain.Reach] = {}
    for mid in wanted:
        member = found.get(mid)
        if member is None:
            out[mid] = domain.Reach(None, None)
            continue
        uid = member["unit_id"]
        if uid not in units:
            units[uid] = _unit_reach(stores, uid)
        ancestors, cdcs_id, cdcs_ancestors = units[uid]
        if ancestors is None and member.get("ancestors") is not None:  # the unit's events lag behind
            ancestors = cdcs_ancestors = member["ancestors"]
        out[mid] = domain.Reach(member, ancestors, cdcs_id, cdcs_ancestors)
    return out


def _public_session(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in HIDDEN}


def record_dissemination(cmd: c.RecordDissemination, caller: Caller, stores: Stores) -> dict:
    body = cmd.body()
    org = cmd.organising_unit_id
    ancestors = stores.unit_ancestors(org)
    auth.check_scope(caller, org, ancestors or [], write=True)
    req = Request.of(caller, cmd.idempotency_key, "dissemination", body)

    def replay(first: dict) -> dict:
        req.check(first)
        auth.check_scope(caller, first["organising_unit_id"], first["organising_ancestors"], write=True)
        return _public_session(first)

    if req.key and (first := stores.sessions.find_one({idempotency.KEY: req.key})) is not None:
        return replay(first)
    ids = [r["unit_id"] for r in body["reached"]]
    known = {i: d["ancestors"] for i, d in mongo.find_by_ids(stores.units, ids, {"ancestors": 1}).items()}
    members = _reach_facts(stores, body["member_ids"])
    session, raised = domain.record_dissemination(_new_id(), body, ancestors, {i: known.get(i) for i in ids},
                                                  members)
    session = {**session, **session_index_fields(session)}
    try:
        insert_with_events(stores.sessions, {**session, **req.stamp()}, _envelopes(session["_id"], 1, raised))
    except AlreadyExists:
        first = stores.sessions.find_one({idempotency.KEY: req.key}) if req.key else None
        if first is None:
            raise
        return replay(first)  # a racing retry inserted it first
    return {**session, "version": 1}


def get_dissemination(session_id: str, caller: Caller, stores: Stores) -> dict:
    doc = stores.sessions.find_one({"_id": session_id}, HIDDEN)
    if doc is None:
        raise Missing(f"dissemination session {session_id} not found")
    auth.check_scope(caller, doc["organising_unit_id"], doc["organising_ancestors"])
    return doc


def list_dissemination(query: dict, caller: Caller, stores: Stores) -> dict:
    """Without the member lists (up to MAX_MEMBERS_PER_SESSION each): GET one session for them."""
    flt = _scope_filter(stores, caller, "organising_scope", query.get("unit_id"))
    return _page(stores.sessions, flt, {**HIDDEN, "member_ids": 0}, query)


def backfill_class_periods(stores: Stores, progress: Callable[[int, int], None] | None = None) -> int:
    """Classes stored before `scope_periods` existed get their periods and markers, once
    (platformkit/period_lists.py backfill). Runs at start (description.py) or as the `prepare`
    job, before the lists are served; `progress(done, total)` every 1,000 classes."""
    return period_lists.backfill(stores.classes, CLASSES, class_index_fields, class_markers,
                                 {"_id": 1, "organising_unit_id": 1, "organising_ancestors": 1, "start_date": 1},
                                 progress, 1_000, id_chars=CLASS_ID_CHARS, round_no=CLASS_LIST_ROUND)
