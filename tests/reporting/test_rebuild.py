"""Rebuild: replay every topic from the beginning into a fresh generation, with progress, then
swap it in; the rebuilt views equal the incremental ones exactly, and the live projector goes on
in the new generation."""
import io

import pytest

from platformkit import mongo
from services.reporting.rebuild import rebuild
from services.reporting.store import AGG_BUCKETS, Generation, active_generation
from synthetic.province import Province
from tests.reporting.test_projector import PROJECTOR, caught_up
from tests.support.infra import wait_until

pytestmark = pytest.mark.integration


def snapshot(number: int) -> dict:
    db = mongo.database("reporting")
    out = {}
    for b in range(AGG_BUCKETS):
        for doc in db[f"g{number}_agg_{b:02x}"].find({}, {"v": 1}):
            values = {k: v for k, v in (doc.get("v") or {}).items() if v}
            if values:
                out[doc["_id"]] = values
    units = {u["_id"]: (u.get("parent_id"), u.get("ancestors")) for u in Generation(db, number).units.find()}
    return {"agg": out, "units": units}


def test_rebuild_equals_incremental_and_the_projector_follows(publish, procs):
    province = Province(seed=31, communes=2, cdcs=6, members=400)
    envs = list(province.events())
    first, rest = envs[: len(envs) // 2], envs[len(envs) // 2:]
    publish(first)
    procs(PROJECTOR, "projector")
    wait_until(lambda: caught_up(first), 120, interval=0.5, message="incremental caught up")
    publish(rest)
    wait_until(lambda: caught_up(envs), 120, interval=0.5, message="incremental caught up on all")
    db = mongo.database("reporting")
    assert active_generation(db) == 0
    incremental = snapshot(0)
    out = io.StringIO()
    number = rebuild(out=out)
    log = out.getvalue()
    assert number == 1 and active_generation(db) == 1
    assert f"{len(envs):,} events to replay" in log and "events/s" in log and "now active" in log
    assert snapshot(1) == incremental  # exactly, document by document
    # the live projector notices the swap and continues in generation 1
    extra = province.move_commune("HCM-X001", "HN", __import__("datetime").date(2025, 11, 29))
    publish([extra])
    envs.append(extra)
    wait_until(lambda: caught_up(envs), 90, interval=0.5, message="projector continued in the new generation")
