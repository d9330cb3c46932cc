"""The API's hierarchy reads (services/reporting/generations/hierarchy_reads.py) on the real
database: a province view read again asks the store for no unit document, and every kind of unit
write (the projector's flush, a rebuild of the same generation number) is seen by the next read.
The restructuring tests (tests/reporting/test_restructuring.py) read views before and after unit
moves through the real projector with one API process: they fail if a change is not seen."""
from __future__ import annotations

import io
from collections import Counter

import pytest
from pymongo import MongoClient, monitoring

from platformkit import config
from services.reporting import views
from services.reporting.generations.memory import MemoryGeneration
from services.reporting.generations.mongo import MongoGeneration, set_active_generation
from services.reporting.periods import parse
from services.reporting.rebuild import write
from services.reporting.stores import Stores

pytestmark = pytest.mark.integration


class UnitReads(monitoring.CommandListener):
    """The finds this client sends to a generation's units collection."""

    def __init__(self):
        self.count = Counter()

    def started(self, event):
        if event.command_name == "find" and str(event.command.get("find", "")).endswith("_units"):
            self.count["units"] += 1

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


@pytest.fixture
def counted(isolated):
    reads = UnitReads()
    client = MongoClient(config.mongo_url(), event_listeners=[reads], serverSelectionTimeoutMS=5000)
    yield client[config.db_name("reporting")], reads
    client.close()


def unit_op(uid: str, parent: str | None, ancestors: list[str], name: str, kind: str) -> dict:
    return {"k": "unit", "id": uid, "set": {"_id": uid, "parent_id": parent, "ancestors": ancestors, "name": name,
                                            "code": uid, "kind": kind, "status": "active", "v": 1,
                                            "parents": [{"parent": parent, "from": "2019-01-01"}] if parent else [],
                                            "parents_seen": [parent] if parent else []}}


def listed(stores: Stores) -> list[str]:
    view = views.children_view(stores.live(), stores.target_docs, "CITY", parse("2025"))
    return [c["unit"]["id"] for c in view["children"]]


def test_a_view_read_again_reads_no_unit_and_sees_every_unit_write(counted):
    db, reads = counted
    projector_side = MongoGeneration(db, 1)  # the projector's generation object: no shared reads
    projector_side.setup()
    projector_side.run_journal([unit_op("VN", None, [], "Việt Nam", "central"),
                                unit_op("CITY", "VN", ["VN"], "Thành phố", "province"),
                                unit_op("A", "CITY", ["VN", "CITY"], "Phường A", "commune"),
                                unit_op("B", "CITY", ["VN", "CITY"], "Phường B", "commune")])
    set_active_generation(db, 1)
    stores = Stores(db)  # one API process

    assert listed(stores) == ["A", "B"]
    first = reads.count["units"]
    assert first > 0
    assert listed(stores) == ["A", "B"]
    assert reads.count["units"] == first, "a second read of the same view read unit documents again"
    assert views.unit_info(stores.live(), "A")["name"] == "Phường A"

    # the projector flushes a new commune and renames one: the next read sees both
    projector_side.run_journal([unit_op("C", "CITY", ["VN", "CITY"], "Phường C", "commune"),
                                {**unit_op("A", "CITY", ["VN", "CITY"], "Phường Z", "commune")}])
    assert listed(stores) == ["B", "C", "A"]  # by name: Phường B, Phường C, Phường Z
    assert views.unit_info(stores.live(), "A")["name"] == "Phường Z"
    again = reads.count["units"]
    assert listed(stores) == ["B", "C", "A"] and reads.count["units"] == again

    # the same generation number dropped and built again by a rebuild (the stamp is not reused)
    MongoGeneration(db, 1).drop()
    rebuilt = MemoryGeneration(1)
    for op in [unit_op("VN", None, [], "Việt Nam", "central"), unit_op("CITY", "VN", ["VN"], "Thành phố", "province"),
               unit_op("D", "CITY", ["VN", "CITY"], "Phường D", "commune")]:
        rebuilt.known_units[op["id"]] = op["set"]
    write(rebuilt, io.StringIO())
    assert listed(stores) == ["D"]


def test_a_changed_copy_does_not_change_what_the_process_holds(counted):
    db, _ = counted
    gen = MongoGeneration(db, 1)
    gen.setup()
    gen.run_journal([unit_op("VN", None, [], "Việt Nam", "central"), unit_op("CITY", "VN", ["VN"], "Thành phố", "province"),
                     unit_op("A", "CITY", ["VN", "CITY"], "Phường A", "commune")])
    set_active_generation(db, 1)
    stores = Stores(db)
    stores.live().children("CITY")[0]["name"] = "changed by a caller"
    stores.live().unit("A")["name"] = "changed by a caller"
    assert stores.live().children("CITY")[0]["name"] == "Phường A"
    assert stores.live().unit("A")["name"] == "Phường A"
