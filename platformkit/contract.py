"""The event contract between the services, in one place: topics, consumer groups, the names as the
broker knows them (TOPIC_PREFIX applied here and nowhere else), topic creation, and the event types
each topic carries (docs/events.md is the human description, with each type's data fields; a test
keeps the two lists equal).

Production code names a topic or a group only through this module (tests/unit/test_contract.py
fails on a topic literal anywhere else in platformkit/ or services/).

Names used in code are the contract's *logical* names (`membership.events`); `topic()` / `group()`
turn them into the broker's names. TOPIC_PREFIX is empty in production and set by tests and
side-by-side demos so that parallel runs never see each other's events or rebalance each other's
groups.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from . import settings
from .envelope import Envelope, new_event

# ---------------------------------------------------------------------------- topics (logical names)
MEMBERSHIP_EVENTS = "membership.events"
TRAINING_EVENTS = "training.events"
WELFARE_EVENTS = "welfare.events"
# Periodic reports' lifecycle (services/reporting/periodic: saved, submitted, approved, returned, reopened).
REPORTING_EVENTS = "reporting.events"

DOMAIN_TOPICS = (MEMBERSHIP_EVENTS, TRAINING_EVENTS, WELFARE_EVENTS, REPORTING_EVENTS)
# What the reporting projector folds (reporting.events is not a source of the views).
REPORTING_SOURCES = (MEMBERSHIP_EVENTS, TRAINING_EVENTS, WELFARE_EVENTS)
# Short stable keys of the source topics, used in field names of the reporting store (no dots).
SOURCE_KEYS = {MEMBERSHIP_EVENTS: "m", TRAINING_EVENTS: "t", WELFARE_EVENTS: "w"}

# ---------------------------------------------------------------------------- consumer groups
TRAINING_MEMBERSHIP_VIEW = "training-membership-view"
WELFARE_MEMBERSHIP_VIEW = "welfare-membership-view"
# Groups whose dead-letter topics are created up front (1 partition, infinite retention).
FIXED_GROUPS = (TRAINING_MEMBERSHIP_VIEW, WELFARE_MEMBERSHIP_VIEW)
DEAD_LETTER_SUFFIX = ".dlq"
REPLAY_SUFFIX = ".replay"


def projector_group(generation: int) -> str:
    """The reporting projector's group for one generation of the views: a new generation starts
    from offset zero because its group is new."""
    return f"reporting-projector-g{generation}"


# ---------------------------------------------------------------------------- broker names
def prefix() -> str:
    return settings.current().topic_prefix


def topic(name: str) -> str:
    """The broker's name of a contract topic (or of any name under this run's prefix)."""
    return prefix() + name


def topics(names: Iterable[str]) -> list[str]:
    return [topic(n) for n in names]


def group(name: str) -> str:
    """The broker's name of a consumer group."""
    return prefix() + name


def dead_letter_topic(group_name: str) -> str:
    """`<group>.dlq`, under the prefix (group_name is the logical group name)."""
    return topic(group_name + DEAD_LETTER_SUFFIX)


def logical(broker_topic: str) -> str:
    """The contract name of a broker topic of this run: the prefix taken off the front."""
    p = prefix()
    return broker_topic[len(p):] if p and broker_topic.startswith(p) else broker_topic


# ---------------------------------------------------------------------------- topic creation
def ensure(names: Iterable[str], partitions: int | None = None) -> None:
    """Create contract topics (logical names) under this run's prefix; idempotent."""
    from .kafka_io import ensure_topics
    ensure_topics(topics(names), **({"partitions": partitions} if partitions else {}))


def ensure_all() -> list[str]:
    """Every domain topic, and the dead-letter topics of the fixed groups (so they get infinite
    retention too). `python -m platformkit.run topics` (the `topics` job)."""
    ensure(DOMAIN_TOPICS)
    ensure([g + DEAD_LETTER_SUFFIX for g in FIXED_GROUPS], partitions=1)
    return topics(DOMAIN_TOPICS)


# ---------------------------------------------------------------------------- events
@dataclass(frozen=True)
class Event:
    """A domain event before its envelope: what happened (`type`, past tense) and its facts (`data`).
    Pure rules return these; the service gives each one its envelope (id, source, subject, time,
    aggregate version) when it saves the new state, because only the service knows the version it
    writes. One name for it everywhere (it was `Raised` in training, `Event` in welfare, and
    membership builds `Envelope`s directly): "event" is the word docs/events.md and the issue use for
    the fact itself, while the envelope is the transport around it."""
    type: str
    data: dict[str, Any] = field(default_factory=dict)

    def envelope(self, source: str, subject: str, version: int) -> Envelope:
        return new_event(source, self.type, subject, self.data, version)


def envelopes(source: str, subject: str, version: int, events: Iterable[Event]) -> list[Envelope]:
    return [e.envelope(source, subject, version) for e in events]


# ---------------------------------------------------------------------------- event types
# Per topic, every type it carries (the `.vN` suffix included). Their data: docs/events.md.
EVENT_TYPES: dict[str, tuple[str, ...]] = {
    MEMBERSHIP_EVENTS: (
        "membership.unit.created.v1", "membership.unit.renamed.v1", "membership.unit.moved.v1",
        "membership.unit.merged.v1", "membership.unit.dissolved.v1", "membership.cdcs.founded.v1",
        "membership.committee.consolidated.v1", "membership.cdcs.rated.v1",
        "membership.member.admitted.v1", "membership.member.approved.v1", "membership.member.refused.v1",
        "membership.member.card_issued.v1", "membership.member.transferred.v1", "membership.member.left.v1",
        "membership.member.reinstated.v1", "membership.member.profile_updated.v1",
        "membership.dues.recorded.v1",
        "membership.member.transfer_requested.v1", "membership.member.transfer_refused.v1",
        "membership.member.transfer_cancelled.v1", "membership.unit.change_scheduled.v1",
        "membership.unit.change_cancelled.v1",
    ),
    TRAINING_EVENTS: (
        "training.course.registered.v1", "training.course.retired.v1", "training.class.planned.v1",
        "training.class.opened.v1", "training.class.started.v1", "training.class.closed.v1",
        "training.class.cancelled.v1", "training.enrolment.created.v1", "training.enrolment.withdrawn.v1",
        "training.attendance.recorded.v1", "training.enrolment.completed.v1",
        "training.enrolment.not_completed.v1", "training.certificate.issued.v1",
        "training.dissemination.recorded.v1", "training.dissemination.member_reached.v1",
        "training.dissemination.cdcs_reached.v1",
    ),
    WELFARE_EVENTS: (
        "welfare.programme.created.v1", "welfare.case.requested.v1", "welfare.case.approved.v1",
        "welfare.case.rejected.v1", "welfare.case.disbursed.v1", "welfare.loan.repaid.v1",
    ),
    REPORTING_EVENTS: (
        "reporting.report.saved.v1", "reporting.report.submitted.v1", "reporting.report.approved.v1",
        "reporting.report.returned.v1", "reporting.report.reopened.v1",
    ),
}


# ---------------------------------------------------------------------------- event data
# The data fields every event of a type carries (docs/events.md describes them; a test keeps the
# two equal). A field may be null where docs/events.md says so, but it is always present: a consumer
# reads `data[field]` without guessing whether an older producer left it out. Events may carry more
# (a profile update carries the changed fields).
UNIT_FIELDS = ("unit_id", "ancestors")
MEMBER_COMMON = ("member_id", "unit_id", "ancestors", "full_name", "gender", "is_official")
CLASS_FACTS = ("class_id", "class_code", "course_id", "course_code", "topic", "audience", "format",
               "organising_unit_id", "organising_ancestors", "start_date", "end_date", "days_count")
MEMBER_FACTS = ("member_id", "unit_id", "ancestors", "is_official")
COURSE_FIELDS = ("course_id", "code", "name", "topic", "audience", "format", "duration_days",
                 "min_attendance_percent", "owner_unit_id", "owner_ancestors", "status")
CASE_FIELDS = ("case_id", "programme_id", "programme_kind", "programme_year", "member_id", "unit_id", "ancestors",
               "hardship_type", "amount", "form", "funding")
REPORT_FIELDS = ("report_id", "unit_id", "ancestors", "parent_id", "period", "kind", "cutoff", "status",
                 "by_unit_id", "by_subject", "at", "reason", "entered", "totals", "computed", "first_submitted_on")


def _fields(*groups: Iterable[str] | str) -> frozenset[str]:
    out: set[str] = set()
    for g in groups:
        out |= {f.strip() for f in g.split(",")} if isinstance(g, str) else set(g)
    return frozenset(out)


EVENT_DATA: dict[str, frozenset[str]] = {
    "membership.unit.created.v1": _fields(UNIT_FIELDS, "parent_id, name, code, kind, level, sector, effective_date"),
    "membership.unit.renamed.v1": _fields(UNIT_FIELDS, "old_name, name, effective_date"),
    "membership.unit.moved.v1": _fields(UNIT_FIELDS, "old_parent_id, parent_id, old_ancestors, effective_date"),
    "membership.unit.merged.v1": _fields(UNIT_FIELDS, "into_unit_id, into_ancestors, effective_date"),
    "membership.unit.dissolved.v1": _fields(UNIT_FIELDS, "effective_date"),
    "membership.cdcs.founded.v1": _fields(UNIT_FIELDS, "sector, method, founding_member_count, decision_no, "
                                                       "decision_date, effective_date"),
    "membership.committee.consolidated.v1": _fields(UNIT_FIELDS, "term, date, positions"),
    "membership.cdcs.rated.v1": _fields(UNIT_FIELDS, "sector, year, rating, status, confirmed_by_unit_id"),
    "membership.unit.change_scheduled.v1": _fields(UNIT_FIELDS, "change_id, kind, date, params"),
    "membership.unit.change_cancelled.v1": _fields(UNIT_FIELDS, "change_id, kind, date, by"),
    "membership.member.admitted.v1": _fields(MEMBER_COMMON, "admitted_on, date_of_birth, method"),
    "membership.member.approved.v1": _fields(MEMBER_COMMON, "approved_on, approved_by_unit_id"),
    "membership.member.refused.v1": _fields(MEMBER_COMMON, "admitted_on, refused_on, reason, refused_by_unit_id"),
    "membership.member.card_issued.v1": _fields(MEMBER_COMMON, "member_number, issued_on"),
    "membership.member.transferred.v1": _fields(MEMBER_COMMON, "from_unit_id, from_ancestors, transferred_on, "
                                                               "reason, letter_no, letter_date"),
    "membership.member.transfer_requested.v1": _fields(MEMBER_COMMON, "to_unit_id, to_ancestors, letter_no, "
                                                                      "letter_date, requested_by, requested_on"),
    "membership.member.transfer_refused.v1": _fields(MEMBER_COMMON, "to_unit_id, letter_no, letter_date, on, by, "
                                                                    "reason"),
    "membership.member.transfer_cancelled.v1": _fields(MEMBER_COMMON, "to_unit_id, letter_no, letter_date, on, by"),
    "membership.member.left.v1": _fields(MEMBER_COMMON, "left_on, reason"),
    "membership.member.reinstated.v1": _fields(MEMBER_COMMON, "reinstated_on"),
    "membership.member.profile_updated.v1": _fields(MEMBER_COMMON, "changed, effective_date"),
    "membership.dues.recorded.v1": _fields("member_id, unit_id, ancestors, month, salary, rate_permille, due, paid, "
                                           "exempt_reason"),
    "training.course.registered.v1": _fields(COURSE_FIELDS),
    "training.course.retired.v1": _fields(COURSE_FIELDS),
    "training.class.planned.v1": _fields(CLASS_FACTS, "capacity, location"),
    "training.class.opened.v1": _fields(CLASS_FACTS, "capacity"),
    "training.class.started.v1": _fields(CLASS_FACTS, "enrolled"),
    "training.class.closed.v1": _fields(CLASS_FACTS, "closed_on, enrolled, completed, not_completed, "
                                                     "certificates_issued, officials_enrolled, officials_completed"),
    "training.class.cancelled.v1": _fields(CLASS_FACTS, "cancelled_on, reason, enrolled_member_ids"),
    "training.enrolment.created.v1": _fields(CLASS_FACTS, MEMBER_FACTS, "enrolled_on"),
    "training.enrolment.withdrawn.v1": _fields(CLASS_FACTS, MEMBER_FACTS, "withdrawn_on, reason"),
    "training.attendance.recorded.v1": _fields(CLASS_FACTS, "date, present, absent, present_count, absent_count"),
    "training.enrolment.completed.v1": _fields(CLASS_FACTS, MEMBER_FACTS, "attended_days, required_days, score, "
                                                                          "grade, completed_on, certificate_no"),
    "training.enrolment.not_completed.v1": _fields(CLASS_FACTS, MEMBER_FACTS, "attended_days, required_days, "
                                                                              "score, assessed_on, reason"),
    "training.certificate.issued.v1": _fields(CLASS_FACTS, MEMBER_FACTS, "attended_days, required_days, score, "
                                                                         "grade, certificate_no, issued_on, full_name"),
    "training.dissemination.recorded.v1": _fields("session_id, organising_unit_id, organising_ancestors, topic, "
                                                  "document_ref, held_on, format, audience, reached, members_reached, "
                                                  "members_identified, unidentified, units_reached, cdcs_reached"),
    "training.dissemination.member_reached.v1": _fields("session_id, organising_unit_id, held_on, member_id, "
                                                        "unit_id, ancestors, cdcs_id"),
    "training.dissemination.cdcs_reached.v1": _fields("session_id, organising_unit_id, held_on, unit_id, ancestors, "
                                                      "members_identified"),
    "welfare.programme.created.v1": _fields("programme_id, name, kind, year, unit_id, ancestors, budget, "
                                            "funding_sources"),
    "welfare.case.requested.v1": _fields(CASE_FIELDS, "requested_on"),
    "welfare.case.approved.v1": _fields(CASE_FIELDS, "approved_on, approved_by_unit_id, approved_level"),
    "welfare.case.rejected.v1": _fields(CASE_FIELDS, "rejected_on, reason, rejected_by_unit_id, rejected_level"),
    "welfare.case.disbursed.v1": _fields(CASE_FIELDS, "disbursed_on, disbursed_by_unit_id, approved_by_unit_id, "
                                                      "approved_level"),
    "welfare.loan.repaid.v1": _fields("loan_id, case_id, programme_id, programme_kind, programme_year, member_id, "
                                      "unit_id, ancestors, amount, paid_on, seq, principal, repaid_total, "
                                      "outstanding, late, overdue_amount, fully_repaid"),
    **{t: _fields(REPORT_FIELDS) for t in EVENT_TYPES[REPORTING_EVENTS]},
}


class ContractBroken(ValueError):
    """An event about to be committed lacks data fields the contract promises its consumers."""


def missing_data(type_: str, data: dict[str, Any]) -> list[str]:
    """The contract's fields of this type that `data` lacks ([] for a type the contract does not
    know: EVENT_TYPES is checked elsewhere)."""
    return sorted(EVENT_DATA.get(type_, frozenset()) - set(data))


def check_events(events: Iterable[Envelope]) -> None:
    """Refuse to commit an event that breaks the contract (settings.contract_check: on in every
    test run, so every event any test commits is checked; off by default in production, where a
    missing optional field must not turn a member's admission into a 500)."""
    for e in events:
        gone = missing_data(e.type, e.data)
        if gone:
            raise ContractBroken(f"{e.type} lacks data fields {gone} (platformkit/contract.py EVENT_DATA)")
