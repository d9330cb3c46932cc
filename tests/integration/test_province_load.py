"""synthetic/load.py at a test's size, against the real broker and database: the documents are
those the services' write paths make for the same commands, every aggregate's change documents
and events agree with its version, and a rerun (finished, or after a crash mid-way) adds nothing."""
from __future__ import annotations

from collections import Counter
from datetime import date

from kafka import KafkaConsumer, TopicPartition

from platformkit import config, contract, mongo
from platformkit.envelope import decode
from platformkit.repository import apply_ops
from synthetic import load as loader
from synthetic.load import Loader, Plan

PLAN = Plan(seed=3, members=300, cdcs=6, communes=2, chunk=100, dues=1.5)


def topic_events() -> list:
    c = KafkaConsumer(bootstrap_servers=config.kafka_bootstrap(), group_id=None, enable_auto_commit=False)
    try:
        tps = [TopicPartition(config.topic(t), p) for t in contract.REPORTING_SOURCES
               for p in (c.partitions_for_topic(config.topic(t)) or [])]
        ends = c.end_offsets(tps)
        c.assign(tps)
        c.seek_to_beginning()
        out = []
        while any(c.position(tp) < ends[tp] for tp in tps):
            for recs in c.poll(timeout_ms=1000).values():
                out.extend(decode(r.value) for r in recs)
        return out
    finally:
        c.close()


def strip(doc: dict, *names: str) -> dict:
    return {k: v for k, v in doc.items() if k not in names}


def test_the_fast_copy_equals_the_repository_apply_ops(monkeypatch):
    fast = Loader(PLAN).chunk(1).docs
    monkeypatch.setattr(loader, "fast_apply", apply_ops)
    assert Loader(PLAN).chunk(1).docs == fast


def test_a_loaded_province_is_what_the_write_paths_make_and_a_rerun_adds_nothing(isolated):
    cp = loader.load(PLAN, log_every=0)
    mdb, tdb, wdb = (mongo.database(s) for s in ("membership", "training", "welfare"))
    assert cp["done"] and mdb.members.count_documents({}) == 300
    assert mdb.units.count_documents({"kind": "cdcs"}) == 6

    # every aggregate: its change documents are 1..seq, published (outbox emptied), and the topic
    # holds its events with the versions of those changes
    events = topic_events()
    assert len(events) == cp["events"] and len({e.id for e in events}) == len(events)
    by_subject = Counter(e.subject for e in events)
    for svc_db, coll in ((mdb, "members"), (mdb, "units"), (mdb, "dues"), (wdb, "cases"), (tdb, "classes")):
        docs = list(svc_db[coll].find({}))
        assert docs, coll
        changes = Counter(c["aggregate_id"] for c in svc_db[coll + "_events"].find({}, {"aggregate_id": 1}))
        for d in docs:
            assert changes[d["_id"]] == d["seq"] >= 1, (coll, d["_id"])
            assert by_subject[d["_id"]] >= 1, (coll, d["_id"])
        assert svc_db[coll + "_events"].count_documents({"outbox_pending": True}) == 0
    member_versions = {e.subject: e.aggregateversion for e in events if e.type.startswith("membership.member.")}
    for d in mdb.members.find({}, {"version": 1}):
        assert member_versions[d["_id"]] == d["version"]
    # the services' local membership views agree with the members
    for svc_db in (wdb, tdb):
        assert svc_db.view_members.count_documents({}) == 300
        assert svc_db.view_units.count_documents({}) == mdb.units.count_documents({})

    # the write path: the same admission and approval through services.membership.service
    from platformkit.auth import Caller
    from services.membership import commands, service
    from services.membership.stores import stores
    loaded = mdb.members.find_one({"status": "active", "seq": 2})
    unit = mdb.units.find_one({"_id": loaded["unit_id"]})
    admitted_on = date.fromisoformat(loaded["admitted_on"])
    cmd = {"full_name": loaded["full_name"], "citizen_id": "999999999999",
           "date_of_birth": date.fromisoformat(loaded["date_of_birth"]), "gender": loaded["gender"],
           "phone": None, "employer": None, "is_official": loaded["is_official"], "admitted_on": admitted_on}
    made = service.admit(commands.AdmitMember(unit_id=unit["_id"], **cmd), Caller("t", ("officer",), unit["_id"]),
                         stores())
    service.approve(commands.ApproveMember(member_id=made["_id"], on=admitted_on),
                    Caller("t", ("officer",), unit["parent_id"]), stores())
    written = mdb.members.find_one({"_id": made["_id"]})
    ids = ("_id", "citizen_id", "active_citizen_id")
    assert strip(written, *ids) == strip(loaded, *ids)
    for n in (1, 2):
        w = mdb.members_events.find_one({"_id": f"{made['_id']}@{n:09d}"})
        ld = mdb.members_events.find_one({"_id": f"{loaded['_id']}@{n:09d}"})
        assert w.keys() == ld.keys() and w["ops"] == ld["ops"] and w["version"] == ld["version"]
        assert [e["type"] for e in w["outbox"]] == [e.type for e in events if e.subject == loaded["_id"]][n - 1:n]

    # the lists' periods (platformkit/period_lists.py): every loaded case and class has its
    # derived periods, and exactly the markers the write paths write for them
    from platformkit import period_lists
    from services.training.stores import class_index_fields, class_markers
    from services.welfare.stores import case_fields, case_markers
    for svc_db, coll, fields, marks in ((wdb, "cases", case_fields, case_markers),
                                        (tdb, "classes", class_index_fields, class_markers)):
        docs = list(svc_db[coll].find({}))
        assert all(d[period_lists.FIELD] == fields(d)[period_lists.FIELD] for d in docs)
        want = {m["_id"]: m for d in docs for m in marks(d)}
        assert {m["_id"]: m for m in svc_db[period_lists.MARKERS].find({})} == want

    # welfare's write path (its API): the same request, approval and disbursement as a loaded case
    from platformkit.auth import mint
    from services.welfare.app import create_app
    case = wdb.cases.find_one({"status": "disbursed", "loan": None})
    unit = mdb.units.find_one({"_id": case["unit_id"]})
    client = create_app().test_client()

    def as_(unit_id):
        return {"Authorization": "Bearer " + mint(f"officer@{unit_id}", unit_id, ["officer"])}
    made = client.post("/api/v1/cases", headers=as_(unit["_id"]), json={
        "programme_id": case["programme_id"], "member_id": case["member_id"], "hardship_type": case["hardship_type"],
        "amount": case["amount"], "form": case["form"], "funding": case["funding"],
        "requested_on": case["requested_on"]})
    assert made.status_code == 201, made.get_json()
    cid = made.get_json()["id"]
    for step, on in (("approve", {"approved_on": case["approved_on"]}), ("disburse", {"disbursed_on": case["disbursed_on"]})):
        r = client.post(f"/api/v1/cases/{cid}/{step}", headers=as_(unit["parent_id"]), json=on)
        assert r.status_code == 200, r.get_json()
    # (and `scope_periods`, derived from the `_id` too: checked for every loaded case above)
    subjects = ("_id", "requested_by", "approved_by", "request_fingerprint", "scope_periods")
    assert strip(wdb.cases.find_one({"_id": cid}), *subjects) == strip(case, *subjects)
    for n in (1, 2, 3):
        w = wdb.cases_events.find_one({"_id": f"{cid}@{n:09d}"})
        ld = wdb.cases_events.find_one({"_id": f"{case['_id']}@{n:09d}"})
        assert w.keys() == ld.keys() and [o["path"] for o in w["ops"]] == [o["path"] for o in ld["ops"]]

    # a finished load: a rerun does nothing
    counts = {c: mdb[c].count_documents({}) for c in ("members", "members_events", "dues", "units")}
    loader.load(PLAN, log_every=0)
    assert len(topic_events()) == len(events)
    # a crash after chunk 0: the rerun redoes chunks 1.., inserting nothing twice and publishing
    # the same envelopes (same ids and versions: the projector's dedup drops them)
    mdb[loader.CHECKPOINT].update_one({"_id": "province"}, {"$set": {"next_chunk": 1, "done": False}})
    loader.load(PLAN, log_every=0, prepare=False)
    assert {c: mdb[c].count_documents({}) for c in counts} == counts
    again = topic_events()
    assert len(again) > len(events) and {e.id for e in again} == {e.id for e in events}
    assert {(e.id, e.aggregateversion, e.subject) for e in again} == {(e.id, e.aggregateversion, e.subject)
                                                                      for e in events}
