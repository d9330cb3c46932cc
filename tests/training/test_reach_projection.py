"""What dissemination events mean for reporting, pure (services/reporting/projection/training.py):
lượt per session, each member and each CĐCS once a calendar year in the month of its earliest
session, whatever order the events are consumed in, and nothing more for a redelivered event."""
import itertools
from collections import Counter

from platformkit.envelope import new_event
from services.reporting.projection import project, state_key

ANC = ["VN", "HCM", "P1"]


def member_reached(session, member, unit, held_on):
    return new_event("training", "training.dissemination.member_reached.v1", session, {
        "session_id": session, "organising_unit_id": "P1", "held_on": held_on, "member_id": member,
        "unit_id": unit, "ancestors": ANC, "cdcs_id": unit}, 1)


def cdcs_reached(session, unit, held_on, n=1):
    return new_event("training", "training.dissemination.cdcs_reached.v1", session, {
        "session_id": session, "organising_unit_id": "P1", "held_on": held_on, "unit_id": unit, "ancestors": ANC,
        "members_identified": n}, 1)


def fold(events):
    """The projector's use of `project`: the memory per state key, the deltas summed."""
    states, totals = {}, Counter()
    for env in events:
        key = state_key(env)
        fx = project(env, states.get(key) if key else None)
        for d in fx.deltas:
            totals[(d.unit_id, d.indicator, d.month)] += d.amount
        if fx.state_key and fx.new_state is not None:
            assert fx.state_key == key
            states[fx.state_key] = fx.new_state
    return {k: v for k, v in totals.items() if v}, states


EVENTS = [
    member_reached("s-may", "m1", "C1", "2025-05-20"),
    member_reached("s-mar", "m1", "C1", "2025-03-10"),
    member_reached("s-mar", "m2", "C1", "2025-03-10"),
    member_reached("s-feb", "m2", "C2", "2025-02-01"),   # m2 was in C2 in February (transferred since)
    member_reached("s-jan26", "m1", "C1", "2026-01-15"),  # a new year counts again
    member_reached("s-mar-bis", "m1", "C1", "2025-03-10"),  # same day, another session: tie by session id
    cdcs_reached("s-may", "C1", "2025-05-20"),
    cdcs_reached("s-mar", "C1", "2025-03-10", 2),
    cdcs_reached("s-feb", "C2", "2025-02-01"),
]
EXPECTED = {
    ("C1", "training.members_reached_distinct", "2025-03"): 1,  # m1: earliest of 2025 is s-mar
    ("C2", "training.members_reached_distinct", "2025-02"): 1,  # m2: s-feb, where it was then
    ("C1", "training.members_reached_distinct", "2026-01"): 1,
    ("C1", "training.cdcs_reached", "2025-03"): 1,
    ("C2", "training.cdcs_reached", "2025-02"): 1,
}


def test_each_member_and_cdcs_counts_once_a_year_at_its_earliest_session_in_any_order():
    results = set()
    for order in itertools.islice(itertools.permutations(EVENTS), 0, None, 997):  # ~360 of the 362,880 orders
        totals, states = fold(order)
        assert totals == EXPECTED, order
        results.add(tuple(sorted((k, tuple(sorted(v.items()))) for k, v in states.items())))
    assert len(results) == 1  # the memory, too, is the same whatever the order (a rebuild equals live)
    _, states = fold(EVENTS)
    assert states["reached:m1:2025"] == {"at": "2025-03-10", "s": "s-mar", "u": "C1"}


def test_a_redelivered_event_counts_nothing():
    totals, _ = fold(EVENTS + EVENTS[::-1] + EVENTS)
    assert totals == EXPECTED


def test_luot_counts_every_member_and_head_count_of_every_session():
    recorded = new_event("training", "training.dissemination.recorded.v1", "s1", {
        "session_id": "s1", "organising_unit_id": "P1", "organising_ancestors": ["VN", "HCM"], "topic": "NQ",
        "document_ref": None, "held_on": "2025-03-10", "format": "in_person", "audience": "members",
        "reached": [{"unit_id": "C1", "ancestors": ANC, "members_reached": 7, "identified": 2, "unidentified": 5}],
        "members_reached": 7, "members_identified": 2, "unidentified": 5, "units_reached": 1, "cdcs_reached": 1}, 1)
    old_style = new_event("training", "training.dissemination.recorded.v1", "s0", {
        "session_id": "s0", "organising_unit_id": "P1", "organising_ancestors": ["VN", "HCM"], "topic": "NQ",
        "document_ref": None, "held_on": "2025-03-01", "format": "in_person", "audience": "members",
        "reached": [{"unit_id": "C1", "ancestors": ANC, "members_reached": 30}], "members_reached": 30,
        "units_reached": 1}, 1)
    totals, states = fold([recorded, old_style])
    assert totals == {("C1", "training.members_reached", "2025-03"): 37} and states == {}


def test_officials_trained_also_counts_at_the_earliest_completion_whatever_the_order():
    def completed(cls, on, unit="C1"):
        return new_event("training", "training.enrolment.completed.v1", cls, {
            "class_id": cls, "member_id": "o1", "unit_id": unit, "ancestors": ANC, "is_official": True,
            "completed_on": on}, 5)
    events = [completed("k-late", "2025-09-01"), completed("k-early", "2025-04-01", "C2")]
    for order in (events, events[::-1]):
        totals, states = fold(order)
        assert totals == {("C2", "officials.trained", "2025-04"): 1}
        assert states["trained:o1:2025"]["counted"] is True
    # a memory written before dates were kept stays where it counted
    totals, _ = fold([completed("k-x", "2025-01-05")])
    key = state_key(completed("k-x", "2025-01-05"))
    fx = project(completed("k-x", "2025-01-05"), {"counted": True, "v": 1})
    assert fx.deltas == [] and key == "trained:o1:2025"
