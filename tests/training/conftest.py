"""Fixtures of the training tests: the app on a fresh database whose local membership view is
seeded with the org tree of tests/training/support.py and a few members."""
from types import SimpleNamespace

import pytest

from tests.training.support import TREE, active_member, left_member, member_event, seed, token, unit_created

MEMBERS = {  # member -> (unit, is_official)
    "m1": ("C1", True), "m2": ("C1", False), "m3": ("C2", True), "m4": ("C1", False), "m5": ("C2", False),
    "m6": ("C1", False), "m7": ("C1", False), "m9": ("C3", True), "gone": ("C1", False),
}


@pytest.fixture
def training(isolated):
    from services.training.app import create_app
    from services.training.stores import stores
    app = create_app()
    db = stores().db
    events = [unit_created(u) for u in TREE]
    for mid, (unit, official) in MEMBERS.items():
        events += active_member(mid, unit, official, full_name=f"Nguyễn Văn {mid}")
    events.append(left_member("gone", "C1"))
    events.append(member_event("admitted", "newbie", "C1", 1, admitted_on="2025-09-01",
                               date_of_birth="2000-01-01", method="individual"))
    seed(db, events)
    client = app.test_client()

    def call(method, path, unit="HCM", json=None, roles=("officer",), **kw):
        headers = token(unit, roles) if unit else {}
        return client.open("/api/v1" + path, method=method, json=json, headers=headers, **kw)

    return SimpleNamespace(app=app, db=db, client=client, call=call)
