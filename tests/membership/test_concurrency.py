"""Concurrent commands on the same members through the real app, the real FerretDB/MongoDB and the
real relay process publishing to Kafka at the same time (platformkit/repository.py): every 2xx
answer is in the database and its event is on membership.events exactly once; a caller that sent
no version never gets a 412, whatever the contention; a caller's stale version still does."""
from __future__ import annotations

import random
import threading
from collections import Counter

import pytest

from platformkit import config, mongo
from platformkit.envelope import decode
from platformkit.kafka_io import ensure_topics
from platformkit.repository import apply_ops
from tests.membership.conftest import Api
from tests.support.infra import read_topic, wait_until

pytestmark = pytest.mark.integration

TOPIC = "membership.events"


def db():
    return mongo.database("membership")


def committed_states(collection: str, aggregate_id: str) -> list[dict]:
    """Every state the aggregate went through, from its copy at change 0 and its change documents."""
    changes = sorted(db()[f"{collection}_events"].find({"aggregate_id": aggregate_id}), key=lambda c: c["seq"])
    state = db()[collection].find_one({"_id": aggregate_id})
    assert [c["seq"] for c in changes] == list(range(1, len(changes) + 1)), "no gap in the change numbers"
    # the copy may be ahead of change 0: rebuild from the creation's fields (the copy's) at change 0
    states = []
    for c in changes:
        state = {**apply_ops(state, c["ops"]), "version": c["version"], "seq": c["seq"]}
        states.append(state)
    return states


def start_relay(procs):
    ensure_topics([config.topic(TOPIC)], partitions=3)
    procs(["-m", "platformkit.run", "relay", "membership"], "membership-relay")


def run_threads(n: int, target) -> None:
    threads = [threading.Thread(target=target, args=(t,)) for t in range(n)]
    [t.start() for t in threads]
    [t.join() for t in threads]


def test_a_thousand_concurrent_commands_on_the_same_members_are_all_in_the_database_and_on_kafka(
        api, tree, procs):
    members = [api.ok(api.admit(tree["s1"], name=f"Người Thứ {i}", cid=f"0791900009{i:02d}"))["id"] for i in range(4)]
    start_relay(procs)  # marks events published while the commands run
    app = api.c.application
    answers: list[tuple[str, str, int, dict]] = []  # (what, path, status, body)
    lock = threading.Lock()
    c1 = {"as_unit": tree["c1"], "roles": ("officer",)}
    per_thread = 167  # 6 threads: 1,002 commands

    def worker(t: int) -> None:
        me = Api(app.test_client())
        rnd = random.Random(t)
        for i in range(per_thread):
            m = members[rnd.randrange(len(members))]
            kind = rnd.choice(("approve", "phone", "phone", "card", "dues"))
            if kind == "approve":
                r = me.post(f"/members/{m}/approve", {"on": "2025-03-05"}, **c1)
            elif kind == "phone":
                r = me.patch(f"/members/{m}", {"phone": f"09{t}{i:07d}"})
            elif kind == "card":
                r = me.post(f"/members/{m}/card", {"on": "2025-03-06"}, **c1)
            else:
                r = me.post(f"/members/{m}/dues", {"month": f"2025-{rnd.randrange(1, 4):02d}",
                                                   "salary": 5_000_000 + 1000 * t + i, "paid": 0})
            with lock:
                answers.append((kind, m, r.status_code, r.get_json()))

    run_threads(6, worker)
    assert len(answers) >= 1000
    statuses = Counter(s for _, _, s, _ in answers)
    # refusals are the rules' own (422; 409 for a second card), never 412 (no version was sent),
    # never 5xx (no busy, no error)
    unexpected = [(k, b) for k, _, s, b in answers if s not in (200, 201, 422) and (k, s) != ("card", 409)]
    assert not unexpected and 412 not in statuses, (statuses, unexpected[:3])
    assert statuses[200] + statuses[201] > 500, statuses

    # every 2xx answer is a state the database committed, at the version it answered
    ok = [(k, m, b) for k, m, s, b in answers if s in (200, 201)]
    member_states = {m: {s["version"]: s for s in committed_states("members", m)} for m in members}
    approvals = Counter()
    for kind, m, body in ok:
        if kind == "dues":
            continue  # checked against its event on Kafka below (the answer carries no version)
        state = member_states[m][body["version"]]
        fields = {"approve": ("status", "approved_on"), "phone": ("phone",), "card": ("member_number",)}[kind]
        assert {f: state.get(f) for f in fields} == {f: body.get(f) for f in fields}, (kind, body)
        approvals[(kind, m)] += 1
    assert all(approvals[("approve", m)] == 1 and approvals[("card", m)] <= 1 for m in members)
    # versions of one member are answered once each: no two commands both "won" a version
    versions = Counter((m, b["version"]) for k, m, b in ok if k != "dues")
    assert max(versions.values()) == 1

    # the copies converged to the newest change, and every change's events reached Kafka once
    for m in members:
        newest = max(member_states[m].values(), key=lambda s: s["seq"])
        copy = db().members.find_one({"_id": m})
        assert (copy["seq"], copy["version"], copy.get("phone"), copy["status"]) == \
               (newest["seq"], newest["version"], newest.get("phone"), newest["status"])
    wait_until(lambda: sum(db()[c].count_documents({"outbox_pending": True})
                           for c in ("members_events", "dues_events")) == 0, 180, message="outboxes drained")
    expected = {}
    for kind, m, body in ok:
        if kind != "dues":
            expected[(m, body["version"])] = kind
    changes = db().members_events.count_documents({}) + db().dues_events.count_documents({})
    msgs = [decode(msg.value) for msg in read_topic(config.topic(TOPIC), min_count=changes, timeout=120)]
    ids = Counter(e.id for e in msgs)
    assert max(ids.values()) == 1, [i for i, n in ids.items() if n > 1][:5]
    on_kafka = Counter((e.subject, e.aggregateversion) for e in msgs if e.subject in members)
    assert set(expected) <= set(on_kafka), sorted(set(expected) - set(on_kafka))[:5]
    assert all(on_kafka[k] == 1 for k in expected)
    dues_facts = Counter((e.subject, e.data["salary"], e.data["paid"]) for e in msgs if e.type.startswith("membership.dues"))
    for kind, m, body in ok:
        if kind == "dues":
            assert dues_facts[(body["id"], body["salary"], body["paid"])] == 1, body
    assert sum(dues_facts.values()) == sum(db().dues_events.count_documents({"aggregate_id": d})
                                           for d in {b["id"] for k, _, b in ok if k == "dues"})
    # and nothing is on Kafka that the database did not commit
    assert set(on_kafka) == {(m, v) for m in members for v in member_states[m] if v >= 1}


def test_no_version_sent_is_never_412_under_forced_contention(api, tree):
    m = api.ok(api.admit(tree["s1"]))["id"]
    app = api.c.application
    statuses: list[int] = []
    lock = threading.Lock()

    def worker(t: int) -> None:
        me = Api(app.test_client())
        for i in range(15):
            r = me.patch(f"/members/{m}", {"phone": f"08{t}{i:07d}"})
            with lock:
                statuses.append(r.status_code)

    run_threads(8, worker)
    assert Counter(statuses) == Counter({200: 120})
    doc = db().members.find_one({"_id": m})
    assert doc["version"] == 121 and doc["seq"] == 121  # admission + 120 changes, none lost


def test_a_stale_version_sent_by_the_caller_is_still_412_and_writes_nothing(api, tree):
    m = api.ok(api.admit(tree["s1"]))
    changed = api.ok(api.patch(f"/members/{m['id']}", {"phone": "0900000001", "version": m["version"]}))
    before = db().members_events.count_documents({"aggregate_id": m["id"]})
    r = api.patch(f"/members/{m['id']}", {"phone": "0900000002", "version": m["version"]})
    assert r.status_code == 412
    r = api.post(f"/members/{m['id']}/approve", {"version": m["version"]}, as_unit=tree["c1"], roles=("officer",))
    assert r.status_code == 412
    assert db().members_events.count_documents({"aggregate_id": m["id"]}) == before
    assert api.ok(api.get(f"/members/{m['id']}"))["phone"] == changed["phone"] == "0900000001"
