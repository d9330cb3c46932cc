"""Training rules (đào tạo, bồi dưỡng, tập huấn cán bộ công đoàn), pure: no I/O, no clock.

Every command is a function `(current state, command facts) -> (new state, [Event])`. The caller
(service.py) loads the aggregate, passes in what it read from the local membership view, and saves
the new state together with the events in one single-document write.

Aggregates
* course: a catalogue entry owned by a unit (province federation, commune union ...). A course is
  usable by its owner and by every unit below it (the catalogue flows downward).
* class: one run of a course by an organising unit. The enrolments live INSIDE the class document
  (classes stay below MAX_CAPACITY = 500 people), so capacity, attendance and certificate numbers
  are decided by one conditional update of one document: two enrolments racing for the last seat
  cannot both win (the loser's write misses the version it read, reloads, and finds the class full).
* dissemination session (quán triệt nghị quyết): a recorded fact with the members reached (identified
  by member id, so that reporting counts each member and each CĐCS once a year) and head counts per
  unit of attendees not identified (lượt only). Events: `dissemination.recorded` (per unit counts),
  one `dissemination.member_reached` per member, one `dissemination.cdcs_reached` per CĐCS.

Class life cycle:  planned -> open -> running -> closed;  planned/open/running -> cancelled.
  open:     enrolments accepted (and withdrawn)
  running:  attendance is taken per class day; completion is assessed per member
  closed:   only once every active enrolment was assessed
Completion rule: a member completes when they attended at least `min_attendance_percent` of the
class days (default 80%, rounded UP to whole days: 2-day class -> both days, 5-day -> 4 days) AND
scored at least PASS_SCORE (5 of 10). Otherwise the enrolment ends `not_completed` with the reason.
Grades follow the usual Vietnamese 10-point bands.
Certificate numbers: `<class code>-<sequence, 4 digits>`; class codes are unique (index) and the
sequence is kept in the class document and bumped in the same write that issues the certificate,
so a number can never be issued twice.

Events of the class aggregate use subject = class id. The events one command raises share its
aggregateversion (completion raises `enrolment.completed` and `certificate.issued` together);
consumers dedupe them by envelope id.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Iterable

from platformkit.contract import Event
from platformkit.errors import Conflict, InvalidInput, NotFound, RuleViolated

TOPICS = ("union_work", "finance_accounting", "osh", "labour_law", "collective_bargaining",
          "inspection", "cdcs_chair", "resolution", "skills", "other")
AUDIENCES = ("part_time_officials", "full_time_officials", "cdcs_chairs", "officials", "members",
             "workers")
FORMATS = ("in_person", "online", "blended")
CLASS_STATUSES = ("planned", "open", "running", "closed", "cancelled")
ENROLMENT_STATUSES = ("enrolled", "withdrawn", "completed", "not_completed")
CODE_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9._-]{1,39}$")

DEFAULT_MIN_ATTENDANCE_PERCENT = 80
MIN_ATTENDANCE_PERCENT_RANGE = (50, 100)
MAX_DURATION_DAYS = 365
MAX_CAPACITY = 500
PASS_SCORE = 5.0
# (lowest score, grade), best first: xuất sắc, giỏi, khá, trung bình
GRADE_BANDS = ((9.0, "excellent"), (8.0, "good"), (6.5, "fair"), (5.0, "average"))


# ---------------------------------------------------------------- helpers

def _iso(d: date | str) -> str:
    return d if isinstance(d, str) else d.isoformat()


def covers(unit_id: str, target_unit_id: str, target_ancestors: Iterable[str]) -> bool:
    """True when `target` is `unit_id` itself or lies below it."""
    return target_unit_id == unit_id or unit_id in set(target_ancestors or ())


def _check_code(code: str, field_name: str = "code") -> str:
    code = (code or "").strip().upper()
    if not CODE_PATTERN.match(code):
        raise InvalidInput("code: 2-40 characters, capital letters, digits, '.', '_' or '-'", field_name)
    return code


def _check_text(value: str | None, field_name: str, max_len: int = 300, required: bool = True) -> str | None:
    value = (value or "").strip()
    if not value:
        if required:
            raise InvalidInput(f"{field_name} must not be blank", field_name)
        return None
    if len(value) > max_len:
        raise InvalidInput(f"{field_name} is longer than {max_len} characters", field_name)
    return value


def _one_of(value: str, allowed: tuple[str, ...], field_name: str) -> str:
    if value not in allowed:
        raise InvalidInput(f"{field_name} must be one of {', '.join(allowed)}", field_name)
    return value


def grade_for(score: float) -> str:
    for lowest, grade in GRADE_BANDS:
        if score >= lowest:
            return grade
    return "fail"


def required_days(days_count: int, min_percent: int) -> int:
    """Whole days a member must attend: the share rounded up (80% of 2 days -> 2, of 5 -> 4)."""
    return max(1, math.ceil(days_count * min_percent / 100 - 1e-9))


def certificate_number(class_code: str, seq: int) -> str:
    return f"{class_code}-{seq:04d}"


# ---------------------------------------------------------------- courses

def register_course(course_id: str, cmd: dict[str, Any], owner_ancestors: list[str] | None) -> tuple[dict, list[Event]]:
    """A new catalogue entry. `owner_ancestors` is None when the owner unit is unknown here."""
    if owner_ancestors is None:
        raise RuleViolated(f"unit {cmd.get('owner_unit_id')} is not known to training", "owner_unit_id")
    duration = cmd.get("duration_days")
    if not isinstance(duration, int) or isinstance(duration, bool) or not 1 <= duration <= MAX_DURATION_DAYS:
        raise InvalidInput(f"duration_days must be a whole number from 1 to {MAX_DURATION_DAYS}", "duration_days")
    pct = cmd.get("min_attendance_percent", DEFAULT_MIN_ATTENDANCE_PERCENT)
    lo, hi = MIN_ATTENDANCE_PERCENT_RANGE
    if not isinstance(pct, int) or isinstance(pct, bool) or not lo <= pct <= hi:
        raise InvalidInput(f"min_attendance_percent must be from {lo} to {hi}", "min_attendance_percent")
    course = {
        "_id": course_id,
        "code": _check_code(cmd.get("code")),
        "name": _check_text(cmd.get("name"), "name"),
        "description": _check_text(cmd.get("description"), "description", 4000, required=False),
        "topic": _one_of(cmd.get("topic"), TOPICS, "topic"),
        "audience": _one_of(cmd.get("audience"), AUDIENCES, "audience"),
        "format": _one_of(cmd.get("format", "in_person"), FORMATS, "format"),
        "duration_days": duration,
        "min_attendance_percent": pct,
        "owner_unit_id": cmd["owner_unit_id"],
        "owner_ancestors": list(owner_ancestors),
        "status": "active",
    }
    return course, course_created(course)


def course_created(course: dict) -> list[Event]:
    """The events that commit a course's creation (also when a retry finishes a half-done one)."""
    return [Event("training.course.registered.v1", _course_facts(course))]


def retire_course(course: dict) -> tuple[dict, list[Event]]:
    if course["status"] == "retired":
        raise RuleViolated("the course is already retired", "status")
    new = {**course, "status": "retired"}
    return new, [Event("training.course.retired.v1", _course_facts(new))]


def _course_facts(c: dict) -> dict[str, Any]:
    return {"course_id": c["_id"], "code": c["code"], "name": c["name"], "topic": c["topic"],
            "audience": c["audience"], "format": c["format"], "duration_days": c["duration_days"],
            "min_attendance_percent": c["min_attendance_percent"], "owner_unit_id": c["owner_unit_id"],
            "owner_ancestors": c["owner_ancestors"], "status": c["status"]}


# ---------------------------------------------------------------- classes

def plan_class(class_id: str, cmd: dict[str, Any], course: dict | None,
               organiser_ancestors: list[str] | None) -> tuple[dict, list[Event]]:
    """A class of a catalogue course, organised by a unit that may use that course."""
    org = cmd["organising_unit_id"]
    if organiser_ancestors is None:
        raise RuleViolated(f"unit {org} is not known to training", "organising_unit_id")
    if course is None:
        raise RuleViolated("no such course", "course_id")
    if course["status"] != "active":
        raise RuleViolated("the course is retired", "course_id")
    if not covers(course["owner_unit_id"], org, organiser_ancestors):
        raise RuleViolated("the course belongs to a unit that is neither the organising unit nor above it",
                           "course_id")
    capacity = cmd.get("capacity")
    if not isinstance(capacity, int) or isinstance(capacity, bool) or not 1 <= capacity <= MAX_CAPACITY:
        raise InvalidInput(f"capacity must be from 1 to {MAX_CAPACITY}", "capacity")
    start: date = cmd["start_date"]
    days = cmd.get("days")
    if days:
        if len(set(days)) != len(days):
            raise InvalidInput("days must not repeat a date", "days")
        days = sorted(days)
        if days[0] != start:
            raise InvalidInput("the first class day must be start_date", "days")
        if len(days) != course["duration_days"]:
            raise RuleViolated(f"course {course['code']} lasts {course['duration_days']} day(s); "
                               f"{len(days)} given", "days")
    else:
        days = [start + timedelta(days=i) for i in range(course["duration_days"])]
    cls = {
        "_id": class_id,
        "code": _check_code(cmd.get("code")),
        "name": _check_text(cmd.get("name") or course["name"], "name"),
        "course_id": course["_id"],
        "course_code": course["code"],
        "topic": course["topic"],
        "audience": course["audience"],
        "format": _one_of(cmd.get("format") or course["format"], FORMATS, "format"),
        "min_attendance_percent": course["min_attendance_percent"],
        "organising_unit_id": org,
        "organising_ancestors": list(organiser_ancestors),
        "location": _check_text(cmd.get("location"), "location", required=False),
        "days": [_iso(d) for d in days],
        "start_date": _iso(days[0]),
        "end_date": _iso(days[-1]),
        "capacity": capacity,
        "status": "planned",
        "seats_taken": 0,
        "certificate_seq": 0,
        "enrolments": [],
    }
    return cls, class_created(cls)


def class_created(cls: dict) -> list[Event]:
    """The events that commit a class's creation (also when a retry finishes a half-done one)."""
    return [Event("training.class.planned.v1", {**class_facts(cls), "capacity": cls["capacity"],
                                                 "location": cls["location"]})]


def class_facts(cls: dict) -> dict[str, Any]:
    """What every class event carries, so consumers never call back."""
    return {"class_id": cls["_id"], "class_code": cls["code"], "course_id": cls["course_id"],
            "course_code": cls["course_code"], "topic": cls["topic"], "audience": cls["audience"],
            "format": cls["format"], "organising_unit_id": cls["organising_unit_id"],
            "organising_ancestors": cls["organising_ancestors"], "start_date": cls["start_date"],
            "end_date": cls["end_date"], "days_count": len(cls["days"])}


def member_facts(e: dict) -> dict[str, Any]:
    return {"member_id": e["member_id"], "unit_id": e["unit_id"], "ancestors": e["ancestors"],
            "is_official": e["is_official"]}


def _require_status(cls: dict, allowed: tuple[str, ...], doing: str) -> None:
    if cls["status"] not in allowed:
        raise RuleViolated(f"cannot {doing} a class that is {cls['status']} (needs {' or '.join(allowed)})",
                           "status")


def counts(cls: dict) -> dict[str, int]:
    by = {s: 0 for s in ENROLMENT_STATUSES}
    for e in cls["enrolments"]:
        by[e["status"]] += 1
    return {"enrolled": by["enrolled"] + by["completed"] + by["not_completed"],
            "completed": by["completed"], "not_completed": by["not_completed"],
            "withdrawn": by["withdrawn"], "unassessed": by["enrolled"],
            "officials_enrolled": sum(1 for e in cls["enrolments"] if e["status"] != "withdrawn" and e["is_official"]),
            "officials_completed": sum(1 for e in cls["enrolments"] if e["status"] == "completed" and e["is_official"])}


def open_class(cls: dict) -> tuple[dict, list[Event]]:
    _require_status(cls, ("planned",), "open enrolment of")
    new = {**cls, "status": "open"}
    return new, [Event("training.class.opened.v1", {**class_facts(new), "capacity": new["capacity"]})]


def start_class(cls: dict) -> tuple[dict, list[Event]]:
    _require_status(cls, ("open",), "start")
    new = {**cls, "status": "running"}
    return new, [Event("training.class.started.v1", {**class_facts(new), "enrolled": counts(new)["enrolled"]})]


def close_class(cls: dict, on: date) -> tuple[dict, list[Event]]:
    _require_status(cls, ("running",), "close")
    c = counts(cls)
    if c["unassessed"]:
        raise RuleViolated(f"{c['unassessed']} enrolment(s) are not assessed yet; record their completion first",
                           "enrolments")
    new = {**cls, "status": "closed", "closed_on": _iso(on)}
    data = {**class_facts(new), "closed_on": new["closed_on"], "enrolled": c["enrolled"],
            "completed": c["completed"], "not_completed": c["not_completed"],
            "certificates_issued": new["certificate_seq"], "officials_enrolled": c["officials_enrolled"],
            "officials_completed": c["officials_completed"]}
    return new, [Event("training.class.closed.v1", data)]


def cancel_class(cls: dict, on: date, reason: str) -> tuple[dict, list[Event]]:
    _require_status(cls, ("planned", "open", "running"), "cancel")
    if cls["certificate_seq"]:
        raise RuleViolated("certificates were already issued in this class; close it instead", "status")
    reason = _check_text(reason, "reason", 1000)
    new = {**cls, "status": "cancelled", "cancelled_on": _iso(on), "cancel_reason": reason}
    return new, [Event("training.class.cancelled.v1", {
        **class_facts(new), "cancelled_on": new["cancelled_on"], "reason": reason,
        "enrolled_member_ids": [e["member_id"] for e in cls["enrolments"] if e["status"] != "withdrawn"]})]


def find_enrolment(cls: dict, member_id: str) -> dict | None:
    return next((e for e in cls["enrolments"] if e["member_id"] == member_id), None)


def _replace_enrolment(cls: dict, entry: dict) -> list[dict]:
    out = [entry if e["member_id"] == entry["member_id"] else e for e in cls["enrolments"]]
    if not any(e["member_id"] == entry["member_id"] for e in cls["enrolments"]):
        out.append(entry)
    return out


def enrol(cls: dict, member: dict | None, member_ancestors: list[str] | None, member_id: str,
          on: date) -> tuple[dict, list[Event]]:
    """`member` is the local view's document (None if unknown); `member_ancestors` its unit's."""
    _require_status(cls, ("open",), "enrol in")
    if member is None:
        raise RuleViolated(f"member {member_id} is not known to training", "member_id")
    if member.get("status") == "left":
        raise RuleViolated(f"member {member_id} has left the union", "member_id")
    if member.get("status") != "active":
        raise RuleViolated(f"member {member_id} is not an active member yet (status {member.get('status')})",
                           "member_id")
    if member_ancestors is None:
        raise RuleViolated("the member's unit is not known to training yet", "member_id")
    if not covers(cls["organising_unit_id"], member["unit_id"], member_ancestors):
        # names no unit: the member's unit may lie outside the caller's subtree
        raise RuleViolated("the member is outside the organising unit's subtree", "member_id")
    existing = find_enrolment(cls, member_id)
    if existing is not None and existing["status"] != "withdrawn":
        raise Conflict(f"member {member_id} is already enrolled", "member_id")
    if cls["seats_taken"] >= cls["capacity"]:
        raise RuleViolated(f"the class is full ({cls['capacity']} seats)", "capacity")
    entry = {"member_id": member_id, "full_name": member.get("full_name"), "unit_id": member["unit_id"],
             "ancestors": list(member_ancestors), "is_official": bool(member.get("is_official")),
             "status": "enrolled", "enrolled_on": _iso(on), "attended": [], "score": None, "grade": None,
             "certificate_no": None, "assessed_on": None, "reason": None}
    new = {**cls, "enrolments": _replace_enrolment(cls, entry), "seats_taken": cls["seats_taken"] + 1}
    return new, [Event("training.enrolment.created.v1", {**class_facts(new), **member_facts(entry),
                                                           "enrolled_on": entry["enrolled_on"]})]


def withdraw(cls: dict, member_id: str, on: date, reason: str | None) -> tuple[dict, list[Event]]:
    _require_status(cls, ("open", "running"), "withdraw from")
    entry = find_enrolment(cls, member_id)
    if entry is None or entry["status"] == "withdrawn":
        raise NotFound(f"member {member_id} is not enrolled in this class", "member_id")
    if entry["status"] != "enrolled":
        raise Conflict(f"member {member_id} was already assessed ({entry['status']})", "member_id")
    entry = {**entry, "status": "withdrawn", "withdrawn_on": _iso(on), "reason": reason}
    new = {**cls, "enrolments": _replace_enrolment(cls, entry), "seats_taken": cls["seats_taken"] - 1}
    return new, [Event("training.enrolment.withdrawn.v1", {**class_facts(new), **member_facts(entry),
                                                             "withdrawn_on": entry["withdrawn_on"],
                                                             "reason": reason})]


def record_attendance(cls: dict, day: date, present: list[str]) -> tuple[dict, list[Event]]:
    """The roll call of one class day: the members listed were there, every other member still
    under assessment was not. Recording a day again replaces its roll call."""
    _require_status(cls, ("running",), "take attendance in")
    d = _iso(day)
    if d not in cls["days"]:
        raise RuleViolated(f"{d} is not a day of this class ({', '.join(cls['days'])})", "date")
    present_set = set(present)
    active = {e["member_id"] for e in cls["enrolments"] if e["status"] == "enrolled"}
    strangers = sorted(present_set - active)
    if strangers:
        raise RuleViolated(f"not enrolled (or already assessed): {', '.join(strangers)}", "present")
    enrolments = []
    for e in cls["enrolments"]:
        if e["status"] == "enrolled":
            attended = [x for x in e["attended"] if x != d]
            if e["member_id"] in present_set:
                attended = sorted(attended + [d])
            e = {**e, "attended": attended}
        enrolments.append(e)
    new = {**cls, "enrolments": enrolments}
    absent = sorted(active - present_set)
    return new, [Event("training.attendance.recorded.v1", {
        **class_facts(new), "date": d, "present": sorted(present_set), "absent": absent,
        "present_count": len(present_set), "absent_count": len(absent)})]


def assess_completion(cls: dict, member_id: str, score: float, on: date) -> tuple[dict, list[Event]]:
    """Completion of one member: attendance share and score decide; a completed member gets the
    next certificate number of the class."""
    _require_status(cls, ("running",), "assess completion in")
    entry = find_enrolment(cls, member_id)
    if entry is None or entry["status"] == "withdrawn":
        raise NotFound(f"member {member_id} is not enrolled in this class", "member_id")
    if entry["status"] != "enrolled":
        raise Conflict(f"member {member_id} was already assessed ({entry['status']})", "member_id")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 10:
        raise InvalidInput("score must be from 0 to 10", "score")
    days_count = len(cls["days"])
    need = required_days(days_count, cls["min_attendance_percent"])
    attended = len(entry["attended"])
    facts = {**class_facts(cls), **member_facts(entry), "attended_days": attended, "required_days": need,
             "score": float(score)}
    if attended < need or score < PASS_SCORE:
        reason = "attendance" if attended < need else "score"
        entry = {**entry, "status": "not_completed", "score": float(score), "grade": grade_for(score),
                 "assessed_on": _iso(on), "reason": reason}
        new = {**cls, "enrolments": _replace_enrolment(cls, entry)}
        return new, [Event("training.enrolment.not_completed.v1", {**facts, "assessed_on": entry["assessed_on"],
                                                                     "reason": reason})]
    seq = cls["certificate_seq"] + 1
    number = certificate_number(cls["code"], seq)
    grade = grade_for(score)
    entry = {**entry, "status": "completed", "score": float(score), "grade": grade, "assessed_on": _iso(on),
             "certificate_no": number, "reason": None}
    new = {**cls, "enrolments": _replace_enrolment(cls, entry), "certificate_seq": seq}
    return new, [
        Event("training.enrolment.completed.v1", {**facts, "grade": grade, "completed_on": entry["assessed_on"],
                                                    "certificate_no": number}),
        Event("training.certificate.issued.v1", {**facts, "grade": grade, "certificate_no": number,
                                                   "issued_on": entry["assessed_on"],
                                                   "full_name": entry.get("full_name")}),
    ]


# ---------------------------------------------------------------- dissemination sessions

MAX_MEMBERS_PER_SESSION = 2000  # one event per member reached travels in the session's outbox
MAX_UNITS_PER_SESSION = 5000


@dataclass(frozen=True)
class Reach:
    """What training's local view knows of a member listed as reached (service.py looks it up)."""
    member: dict[str, Any] | None        # the view's member document; None: unknown here
    ancestors: list[str] | None          # ancestors of the member's unit; None: unit unknown
    cdcs_id: str | None = None           # the member's CĐCS (its unit; the CĐCS above a section)
    cdcs_ancestors: list[str] | None = None


# why a listed member is refused, in the order the message names them
_REFUSALS = ("not known to training", "left the union", "not an active member yet",
             "in a unit not known to training yet", "outside the organising unit's subtree")


def record_dissemination(session_id: str, cmd: dict[str, Any], organiser_ancestors: list[str] | None,
                         reached_ancestors: dict[str, list[str] | None],
                         members: dict[str, Reach] | None = None) -> tuple[dict, list[Event]]:
    """A session that disseminated a resolution (quán triệt nghị quyết).

    Who was reached: `member_ids`, the members identified (active, in the organising unit's
    subtree; a member listed twice is reached once), from which the session derives the members
    reached per unit and the CĐCS reached; and `reached`, head counts per unit of attendees NOT
    identified. Both count as lượt (person-times reached: `members_reached`); only identified
    members count toward the distinct members and CĐCS reached (reporting's shares), since a head
    count cannot say who was there. `reached_ancestors` maps each unit of `reached` to its
    ancestors, `members` each listed member to what the view knows (None: unknown)."""
    org = cmd["organising_unit_id"]
    if organiser_ancestors is None:
        raise RuleViolated(f"unit {org} is not known to training", "organising_unit_id")
    heads = cmd.get("reached") or []
    member_ids = sorted(set(cmd.get("member_ids") or []))
    if not heads and not member_ids:
        raise InvalidInput("list the members reached (member_ids) and/or head counts per unit of attendees "
                           "not identified (reached)", "member_ids")
    if len(member_ids) > MAX_MEMBERS_PER_SESSION:
        raise InvalidInput(f"at most {MAX_MEMBERS_PER_SESSION} members per session; record a larger "
                           f"gathering as several sessions", "member_ids")
    if len(heads) > MAX_UNITS_PER_SESSION:
        raise InvalidInput(f"at most {MAX_UNITS_PER_SESSION} units per session", "reached")
    ids = [r["unit_id"] for r in heads]
    if len(set(ids)) != len(ids):
        raise InvalidInput("a unit is listed twice", "reached")
    units: dict[str, dict[str, Any]] = {}
    for r in heads:
        n = r.get("members_reached")
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise InvalidInput(f"members_reached of unit {r['unit_id']} must be a whole number >= 1", "reached")
        anc = reached_ancestors.get(r["unit_id"])
        if anc is None:
            raise RuleViolated(f"unit {r['unit_id']} is not known to training", "reached")
        if not covers(org, r["unit_id"], anc):
            raise RuleViolated(f"unit {r['unit_id']} is outside the organising unit", "reached")
        units[r["unit_id"]] = {"unit_id": r["unit_id"], "ancestors": list(anc), "members_reached": n,
                               "identified": 0, "unidentified": n}
    refused: dict[str, list[str]] = {why: [] for why in _REFUSALS}
    accepted: list[tuple[str, dict, Reach]] = []
    for mid in member_ids:
        reach = (members or {}).get(mid) or Reach(None, None)
        m = reach.member
        if m is None:
            refused[_REFUSALS[0]].append(mid)
        elif m.get("status") == "left":
            refused[_REFUSALS[1]].append(mid)
        elif m.get("status") != "active":
            refused[_REFUSALS[2]].append(mid)
        elif reach.ancestors is None:
            refused[_REFUSALS[3]].append(mid)
        elif not covers(org, m["unit_id"], reach.ancestors):
            # names only the member ids the caller typed, never the member's unit
            refused[_REFUSALS[4]].append(mid)
        else:
            accepted.append((mid, m, reach))
    if any(refused.values()):
        raise RuleViolated("; ".join(f"{', '.join(ms)}: {why}" for why, ms in refused.items() if ms),
                           "member_ids")
    cdcs: dict[str, dict[str, Any]] = {}
    reached_members = []
    for mid, m, reach in accepted:
        unit = m["unit_id"]
        entry = units.setdefault(unit, {"unit_id": unit, "ancestors": list(reach.ancestors), "members_reached": 0,
                                        "identified": 0, "unidentified": 0})
        entry["identified"] += 1
        entry["members_reached"] += 1
        reached_members.append({"member_id": mid, "unit_id": unit, "ancestors": list(reach.ancestors),
                                "cdcs_id": reach.cdcs_id})
        if reach.cdcs_id is not None:
            c = cdcs.setdefault(reach.cdcs_id, {"unit_id": reach.cdcs_id, "ancestors": list(reach.cdcs_ancestors or []),
                                                "members_identified": 0})
            c["members_identified"] += 1
    out = list(units.values())
    session = {
        "_id": session_id,
        "organising_unit_id": org,
        "organising_ancestors": list(organiser_ancestors),
        "topic": _check_text(cmd.get("topic"), "topic", 500),
        "document_ref": _check_text(cmd.get("document_ref"), "document_ref", 200, required=False),
        "held_on": _iso(cmd["held_on"]),
        "format": _one_of(cmd.get("format", "in_person"), FORMATS, "format"),
        "audience": _one_of(cmd.get("audience", "members"), AUDIENCES, "audience"),
        "member_ids": member_ids,
        "reached": out,
        "cdcs_ids": sorted(cdcs),
        "members_reached": sum(r["members_reached"] for r in out),
        "members_identified": len(member_ids),
        "unidentified": sum(r["unidentified"] for r in out),
        "units_reached": len(out),
        "cdcs_reached": len(cdcs),
    }
    common = {"session_id": session_id, "organising_unit_id": org, "held_on": session["held_on"]}
    data = {"session_id": session_id, **{k: session[k] for k in (
        "organising_unit_id", "organising_ancestors", "topic", "document_ref", "held_on", "format", "audience",
        "reached", "members_reached", "members_identified", "unidentified", "units_reached", "cdcs_reached")}}
    return session, [Event("training.dissemination.recorded.v1", data),
                     *(Event("training.dissemination.member_reached.v1", {**common, **r}) for r in reached_members),
                     *(Event("training.dissemination.cdcs_reached.v1", {**common, **c})
                       for _, c in sorted(cdcs.items()))]
