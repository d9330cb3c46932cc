"""Welfare test fixtures: an app on the test's own database, an org tree in the local view, tokens.

Tree (ids):  central > prov > commune > cdcs        (members m-active, m-left, m-admitted)
             central > prov2 > commune2 > cdcs2     (member m-other)
"""
from __future__ import annotations

import pytest

from platformkit import membership_view
from platformkit.auth import mint
from platformkit.consumer import Record
from platformkit.envelope import new_event
from services.welfare.stores import CASES, PROGRAMMES, stores
from services.welfare.app import create_app
from tests.support.aggregates import WithOutboxes

UNITS = [  # (id, parent, ancestors, kind, level)
    ("central", None, [], "central", 1),
    ("prov", "central", ["central"], "province", 2),
    ("commune", "prov", ["central", "prov"], "commune", 3),
    ("cdcs", "commune", ["central", "prov", "commune"], "cdcs", 4),
    ("prov2", "central", ["central"], "province", 2),
    ("commune2", "prov2", ["central", "prov2"], "commune", 3),
    ("cdcs2", "commune2", ["central", "prov2", "commune2"], "cdcs", 4),
]


def unit_created(unit_id, parent, ancestors, kind, level, version=1):
    return new_event("membership", "membership.unit.created.v1", unit_id, {
        "unit_id": unit_id, "parent_id": parent, "ancestors": ancestors, "name": f"Công đoàn {unit_id}",
        "code": unit_id.upper(), "kind": kind, "level": level,
        "sector": "non_state" if kind == "cdcs" else None, "effective_date": "2024-01-01"}, version)


def member_event(kind, member_id, unit_id, ancestors, version, **extra):
    return new_event("membership", f"membership.member.{kind}.v1", member_id, {
        "member_id": member_id, "unit_id": unit_id, "ancestors": ancestors, "full_name": "Nguyễn Thị Hà",
        "gender": "female", "is_official": True, **extra}, version)


def member_lifecycle(member_id, unit_id, ancestors, left=False, approved=True):
    events = [member_event("admitted", member_id, unit_id, ancestors, 1, admitted_on="2024-02-01",
                           date_of_birth="1990-05-01", method="individual")]
    if approved:
        events.append(member_event("approved", member_id, unit_id, ancestors, 2, approved_on="2024-02-10",
                                   approved_by_unit_id=ancestors[-1]))
    if left:
        events.append(member_event("left", member_id, unit_id, ancestors, 3, left_on="2025-01-15",
                                   reason="resigned"))
    return events


def tree_events():
    events = [unit_created(*u) for u in UNITS]
    cdcs_anc = ["central", "prov", "commune"]
    events += member_lifecycle("m-active", "cdcs", cdcs_anc)
    events += member_lifecycle("m-left", "cdcs", cdcs_anc, left=True)
    events += member_lifecycle("m-admitted", "cdcs", cdcs_anc, approved=False)
    events += member_lifecycle("m-other", "cdcs2", ["central", "prov2", "commune2"])
    return events


def apply(db, events):
    for ev in events:
        membership_view.apply_event(db, Record("membership.events", 0, 0, None, None, 0, envelope=ev))


def token(unit, roles=("officer",), sub=None):
    return {"Authorization": "Bearer " + mint(sub or f"officer@{unit}", unit, roles)}


@pytest.fixture
def db(isolated):
    return stores().db


@pytest.fixture
def app(db):
    return create_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def tree(db):
    """The database (programmes and cases with their pending events as `outbox`)."""
    apply(db, tree_events())
    return WithOutboxes(db, (PROGRAMMES, CASES))
