"""The service layer: load the aggregate, check the caller's subtree, let the domain decide, save
the new state and its events in ONE single-document write.

Courses and classes are changed by concurrent commands, so they are saved through store.py on
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

from pymongo.database import Database

from platformkit.clock import today
from platformkit import auth, idempotency, mongo, paging
from platformkit.auth import Caller, Forbidden
from platformkit.envelope import new_event
from platformkit.idempotency import Request
from platformkit.membership_view import INDEXES as VIEW_INDEXES
from platformkit.outbox import OUTBOX_INDEX, AlreadyExists, insert_with_events
from platformkit.errors import Conflict
from platformkit.errors import NotFound as Missing
from platformkit.errors import Refusal as DomainError

from . import domain
from .store import FIRST_ANSWER, HIDDEN, NOT_STATE, AggregateStore, KeyTaken
from .view import MEMBERS, UNITS, member_with_ancestors, unit_ancestors

SERVICE = "training"
COURSES = "courses"
CLASSES = "classes"
SESSIONS = "dissemination_sessions"
COMMITTED = {"version": {"$gte": 1}}  # version 0: a creation not committed (yet)

INDEXES = {
    COURSES: [([("owner_unit_id", 1), ("code", 1)], {"name": "owner_code", "unique": True}),
              ("owner_ancestors", {"name": "owner_ancestors"}), idempotency.index()],
    CLASSES: [("code", {"name": "code", "unique": True}), idempotency.index(),
              ("organising_unit_id", {"name": "organiser"}),
              ("organising_ancestors", {"name": "organiser_ancestors"}),
              ("enrolments.member_id", {"name": "enrolled_member"}),
              ("enrolments.certificate_no", {"name": "certificate_no"})],
    SESSIONS: [("organising_unit_id", {"name": "organiser"}),
               ("organising_ancestors", {"name": "organiser_ancestors"}), *OUTBOX_INDEX, idempotency.index()],
    **AggregateStore.indexes(COURSES),
    **AggregateStore.indexes(CLASSES),
    **VIEW_INDEXES,
}


def database() -> Database:
    return mongo.database(SERVICE)


def courses_store(db: Database | None = None) -> AggregateStore:
    return AggregateStore(db if db is not None else database(), COURSES, "course")


def classes_store(db: Database | None = None) -> AggregateStore:
    return AggregateStore(db if db is not None else database(), CLASSES, "class", list_field="enrolments")


def _new_id() -> str:
    return str(uuid.uuid4())


def _envelopes(subject: str, version: int, raised: list[domain.Event]):
    return [new_event(SERVICE, r.type, subject, r.data, version) for r in raised]


def _create(store: AggregateStore, state: dict, raised: list[domain.Event], req: Request) -> dict:
    """Create; with a key the version-0 document carries it and the answer (`store.FIRST_ANSWER`)."""
    stamp = {**req.stamp(), FIRST_ANSWER: {**state, "version": 1}} if req.key else None
    return store.create(state, lambda v: _envelopes(state["_id"], v, raised), stamp)


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
                   decide: Callable[[dict], tuple[dict, list[domain.Event]]], answer: Callable[[dict], dict]) -> dict:
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
        new = store.command(_id, check, decide, lambda v, raised: _envelopes(_id, v, raised), stamp)
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
             decide: Callable[[dict], tuple[dict, list[domain.Event]]]) -> dict:
    return store.command(_id, check, decide, lambda v, raised: _envelopes(_id, v, raised))


def _today(body: dict) -> date:
    return body.get("on") or today()


def _caller_ancestors(db: Database, caller: Caller) -> list[str]:
    return unit_ancestors(db, caller.unit_id) or []


def _subtree(unit_field: str, ancestors_field: str, unit_id: str) -> dict:
    return {"$or": [{unit_field: unit_id}, {ancestors_field: unit_id}]}


def _scope_filter(db: Database, unit_field: str, ancestors_field: str, unit_id: str | None) -> dict:
    """List filter: the caller's subtree, or the subtree of `unit_id` when it lies inside it."""
    caller = auth.current_caller()
    if unit_id:
        auth.require_in_scope(unit_id, unit_ancestors(db, unit_id) or [])
        return _subtree(unit_field, ancestors_field, unit_id)
    return _subtree(unit_field, ancestors_field, caller.unit_id)


def _page(coll, flt: dict, projection: dict, query: dict) -> dict:
    items, next_cursor = paging.page(coll, flt, query.get("after"), query.get("limit", 100), projection=projection)
    return {"items": items, "next_cursor": next_cursor}


# ---------------------------------------------------------------- courses

def _check_course_read(db: Database, course: dict) -> None:
    """A course is visible to its owner's subtree and to units below the owner that use it
    (catalogue flows downward): the caller covers the owner, or the owner is above the caller."""
    caller = auth.current_caller()
    if caller.covers(course["owner_unit_id"], course["owner_ancestors"]):
        return
    if course["owner_unit_id"] in _caller_ancestors(db, caller):
        return
    raise Forbidden("the course is outside the caller's reach")


def _check_course_write(course: dict) -> None:
    auth.require_in_scope(course["owner_unit_id"], course["owner_ancestors"], write=True)


def register_course(body: dict, key: str | None = None) -> dict:
    db = database()
    ancestors = unit_ancestors(db, body["owner_unit_id"])
    caller = auth.require_in_scope(body["owner_unit_id"], ancestors or [], write=True)
    req = Request.of(caller, key, "course", body)
    store = courses_store(db)
    if req.key and (first := store.created_with(req.key)) is not None:
        return _replay_creation(store, first, req, _check_course_write, domain.course_created)
    course, raised = domain.register_course(_new_id(), body, ancestors)
    try:
        return _create(store, course, raised, req)
    except AlreadyExists as exc:
        if req.key and (first := store.created_with(req.key)) is not None:  # a racing retry won
            return _replay_creation(store, first, req, _check_course_write, domain.course_created)
        raise Conflict(f"unit {course['owner_unit_id']} already has a course coded {course['code']}", "code") from exc


def get_course(course_id: str) -> dict:
    db = database()
    course = courses_store(db).load(course_id)
    _check_course_read(db, course)
    return course


def list_courses(query: dict) -> dict:
    db = database()
    caller = auth.current_caller()
    if query.get("unit_id"):
        flt = _scope_filter(db, "owner_unit_id", "owner_ancestors", query["unit_id"])
    else:  # the caller's subtree plus the catalogues of the units above it
        flt = {"$or": [{"owner_unit_id": caller.unit_id}, {"owner_ancestors": caller.unit_id},
                       {"owner_unit_id": {"$in": _caller_ancestors(db, caller)}}]}
    for key in ("topic", "status"):
        if query.get(key):
            flt[key] = query[key]
    return _page(db[COURSES], {**flt, **COMMITTED}, HIDDEN, query)


def retire_course(course_id: str) -> dict:
    return _command(courses_store(), course_id, _check_course_write, domain.retire_course)


# ---------------------------------------------------------------- classes

def _check_class_read(cls: dict) -> None:
    auth.require_in_scope(cls["organising_unit_id"], cls["organising_ancestors"])


def _check_class_write(cls: dict) -> None:
    auth.require_in_scope(cls["organising_unit_id"], cls["organising_ancestors"], write=True)


def plan_class(body: dict, key: str | None = None) -> dict:
    db = database()
    ancestors = unit_ancestors(db, body["organising_unit_id"])
    caller = auth.require_in_scope(body["organising_unit_id"], ancestors or [], write=True)
    req = Request.of(caller, key, "class", body)
    store = classes_store(db)
    if req.key and (first := store.created_with(req.key)) is not None:
        return _replay_creation(store, first, req, _check_class_write, domain.class_created)
    try:
        course = courses_store(db).load(body["course_id"])
    except Missing:
        course = None
    cls, raised = domain.plan_class(_new_id(), body, course, ancestors)
    try:
        return _create(store, cls, raised, req)
    except AlreadyExists as exc:
        if req.key and (first := store.created_with(req.key)) is not None:  # a racing retry won
            return _replay_creation(store, first, req, _check_class_write, domain.class_created)
        raise Conflict(f"class code {cls['code']} is taken", "code") from exc


def get_class(class_id: str) -> dict:
    cls = classes_store().load(class_id)
    _check_class_read(cls)
    return cls


def list_classes(query: dict) -> dict:
    db = database()
    flt = _scope_filter(db, "organising_unit_id", "organising_ancestors", query.get("unit_id"))
    for key in ("status", "course_id", "topic"):
        if query.get(key):
            flt[key] = query[key]
    return _page(db[CLASSES], {**flt, **COMMITTED}, {**HIDDEN, "enrolments": 0}, query)


def _class_command(class_id: str, decide) -> dict:
    return _command(classes_store(), class_id, _check_class_write, decide)


def open_class(class_id: str) -> dict:
    return _class_command(class_id, domain.open_class)


def start_class(class_id: str) -> dict:
    return _class_command(class_id, domain.start_class)


def close_class(class_id: str, body: dict) -> dict:
    return _class_command(class_id, lambda c: domain.close_class(c, _today(body)))


def cancel_class(class_id: str, body: dict) -> dict:
    return _class_command(class_id, lambda c: domain.cancel_class(c, _today(body), body["reason"]))


def _enrolment_out(cls: dict, member_id: str) -> dict:
    entry = domain.find_enrolment(cls, member_id)
    return {**entry, "class_id": cls["_id"]}


def enrol(class_id: str, body: dict, key: str | None = None) -> dict:
    db = database()
    member_id = body["member_id"]
    req = Request.of(auth.current_caller(), key, "enrolment", class_id, body)
    member, ancestors = member_with_ancestors(db, member_id)
    return _keyed_command(classes_store(db), class_id, req, _check_class_write,
                          lambda c: domain.enrol(c, member, ancestors, member_id, _today(body)),
                          lambda cls: _enrolment_out(cls, member_id))


def withdraw(class_id: str, member_id: str, body: dict) -> dict:
    cls = _class_command(class_id, lambda c: domain.withdraw(c, member_id, _today(body), body.get("reason")))
    return _enrolment_out(cls, member_id)


def list_enrolments(class_id: str) -> list[dict]:
    cls = get_class(class_id)
    return [{**e, "class_id": cls["_id"]} for e in cls["enrolments"]]


def member_enrolments(member_id: str) -> list[dict]:
    """A member's training history: enrolments in classes the caller may see, or of a member in
    the caller's subtree (a commune union sees its members' places in a province class)."""
    caller = auth.current_caller()
    out = []
    for cls in database()[CLASSES].find({"enrolments.member_id": member_id, **COMMITTED}, HIDDEN).sort("start_date", 1):
        entry = domain.find_enrolment(cls, member_id)
        if caller.covers(cls["organising_unit_id"], cls["organising_ancestors"]) or \
                caller.covers(entry["unit_id"], entry["ancestors"]):
            out.append({**entry, "class_id": cls["_id"]})
    return out


def record_attendance(class_id: str, body: dict) -> dict:
    cls = _class_command(class_id, lambda c: domain.record_attendance(c, body["date"], body["present"]))
    d = body["date"].isoformat()
    present = sorted({e["member_id"] for e in cls["enrolments"] if d in e["attended"]})
    absent = sorted(e["member_id"] for e in cls["enrolments"]
                    if e["status"] == "enrolled" and d not in e["attended"])
    return {"class_id": class_id, "date": d, "present": present, "absent": absent, "version": cls["version"]}


def assess_completion(class_id: str, member_id: str, body: dict, key: str | None = None) -> dict:
    req = Request.of(auth.current_caller(), key, "completion", class_id, member_id, body)

    def answer(cls: dict) -> dict:
        days = len(cls["days"])
        return {**_enrolment_out(cls, member_id), "days_count": days, "version": cls["version"],
                "required_days": domain.required_days(days, cls["min_attendance_percent"])}

    return _keyed_command(classes_store(), class_id, req, _check_class_write,
                          lambda c: domain.assess_completion(c, member_id, body["score"], _today(body)), answer)


def _certificate(cls: dict, e: dict) -> dict:
    return {"certificate_no": e["certificate_no"], "member_id": e["member_id"], "full_name": e.get("full_name"),
            "unit_id": e["unit_id"], "class_id": cls["_id"], "class_code": cls["code"],
            "class_name": cls["name"], "course_id": cls["course_id"], "course_code": cls["course_code"],
            "topic": cls["topic"], "organising_unit_id": cls["organising_unit_id"], "grade": e["grade"],
            "score": e["score"], "issued_on": e["assessed_on"]}


def get_certificate(number: str) -> dict:
    cls = database()[CLASSES].find_one({"enrolments.certificate_no": number, **COMMITTED}, HIDDEN)
    entry = cls and next((e for e in cls["enrolments"] if e.get("certificate_no") == number), None)
    if not entry:
        raise Missing(f"certificate {number} not found")
    caller = auth.current_caller()
    if not (caller.covers(cls["organising_unit_id"], cls["organising_ancestors"])
            or caller.covers(entry["unit_id"], entry["ancestors"])):
        raise Forbidden("the certificate is outside the caller's subtree")
    return _certificate(cls, entry)


def class_certificates(class_id: str) -> list[dict]:
    cls = get_class(class_id)
    return [_certificate(cls, e) for e in cls["enrolments"] if e.get("certificate_no")]


# ---------------------------------------------------------------- dissemination sessions

BELOW_CDCS = ("cdcs_member", "department", "group")  # sections inside a CĐCS (they hold no members)


def _unit_reach(db: Database, unit_id: str) -> tuple[list[str] | None, str | None, list[str] | None]:
    """(ancestors, CĐCS id, CĐCS ancestors) of a member's unit. Members sit in a CĐCS (membership
    admits into CĐCS only); a unit the view has not heard of is taken to be the CĐCS itself."""
    doc = db[UNITS].find_one({"_id": unit_id}, {"ancestors": 1, "kind": 1})
    if doc is None:
        return None, unit_id, None
    ancestors = doc["ancestors"]
    kind = doc.get("kind")
    if kind in (None, "cdcs"):
        return ancestors, unit_id, ancestors
    if kind in BELOW_CDCS:
        for i in range(len(ancestors) - 1, -1, -1):
            up = db[UNITS].find_one({"_id": ancestors[i]}, {"kind": 1})
            if up is not None and up.get("kind") == "cdcs":
                return ancestors, ancestors[i], ancestors[:i]
    return ancestors, None, None  # a member of a federation unit: in no CĐCS


def _reach_facts(db: Database, member_ids: list[str]) -> dict[str, domain.Reach]:
    """What the local view knows of each listed member: ONE `_id $in` query for all of them (at
    most MAX_MEMBERS_PER_SESSION), then one look-up per distinct unit. Not a `find_one` per member:
    FerretDB 1.24 finds even an `_id` by scanning up to it (measured, 52,000 members in the view:
    ~66 ms per look-up, 2,000 look-ups ~130 s, against 5.2 s for one `$in` of 2,000 ids); MongoDB
    answers both from the `_id` index."""
    wanted = list(dict.fromkeys(member_ids))
    found = {d["_id"]: d for d in db[MEMBERS].find({"_id": {"$in": wanted}})} if wanted else {}
    units: dict[str, tuple] = {}
    out: dict[str, domain.Reach] = {}
    for mid in wanted:
        member = found.get(mid)
        if member is None:
            out[mid] = domain.Reach(None, None)
            continue
        uid = member["unit_id"]
        if uid not in units:
            units[uid] = _unit_reach(db, uid)
        ancestors, cdcs_id, cdcs_ancestors = units[uid]
        if ancestors is None and member.get("ancestors") is not None:  # the unit's events lag behind
            ancestors = cdcs_ancestors = member["ancestors"]
        out[mid] = domain.Reach(member, ancestors, cdcs_id, cdcs_ancestors)
    return out


def _public_session(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in HIDDEN}


def record_dissemination(body: dict, key: str | None = None) -> dict:
    db = database()
    org = body["organising_unit_id"]
    ancestors = unit_ancestors(db, org)
    caller = auth.require_in_scope(org, ancestors or [], write=True)
    req = Request.of(caller, key, "dissemination", body)

    def replay(first: dict) -> dict:
        req.check(first)
        auth.require_in_scope(first["organising_unit_id"], first["organising_ancestors"], write=True)
        return _public_session(first)

    if req.key and (first := db[SESSIONS].find_one({idempotency.KEY: req.key})) is not None:
        return replay(first)
    ids = [r["unit_id"] for r in body.get("reached") or []]
    known = {d["_id"]: d["ancestors"] for d in db[UNITS].find({"_id": {"$in": ids}}, {"ancestors": 1})} if ids else {}
    members = _reach_facts(db, body.get("member_ids") or [])
    session, raised = domain.record_dissemination(_new_id(), body, ancestors, {i: known.get(i) for i in ids},
                                                  members)
    try:
        insert_with_events(db[SESSIONS], {**session, **req.stamp()}, _envelopes(session["_id"], 1, raised))
    except AlreadyExists:
        first = db[SESSIONS].find_one({idempotency.KEY: req.key}) if req.key else None
        if first is None:
            raise
        return replay(first)  # a racing retry inserted it first
    return {**session, "version": 1}


def get_dissemination(session_id: str) -> dict:
    doc = database()[SESSIONS].find_one({"_id": session_id}, HIDDEN)
    if doc is None:
        raise Missing(f"dissemination session {session_id} not found")
    auth.require_in_scope(doc["organising_unit_id"], doc["organising_ancestors"])
    return doc


def list_dissemination(query: dict) -> dict:
    """Without the member lists (up to MAX_MEMBERS_PER_SESSION each): GET one session for them."""
    db = database()
    flt = _scope_filter(db, "organising_unit_id", "organising_ancestors", query.get("unit_id"))
    return _page(db[SESSIONS], flt, {**HIDDEN, "member_ids": 0}, query)
