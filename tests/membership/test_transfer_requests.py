"""Transfers across subtrees as requests, and unit changes dated in the future (issue 13, items 4
and 6), through membership's API on the real database; what reporting makes of them through the
real projector process on real Kafka (the membership events published as membership wrote them)."""
from __future__ import annotations

from datetime import date

import pytest

from platformkit import config, mongo
from platformkit.envelope import from_dict
from platformkit.kafka_io import EventPublisher, ensure_topics
from services.reporting import views
from services.reporting.periods import parse
from services.reporting.store import Generation, active_generation
from tests.membership.aggregates import db
from tests.support.infra import wait_until

pytestmark = pytest.mark.integration

PROJECTOR = ["-m", "platformkit.run", "consumer", "reporting", "projector"]
LETTER = {"letter_no": "15/GGT-CĐ", "letter_date": "2025-03-01"}
FIGURES = ("members.active", "members.transferred_in", "members.transferred_out")


@pytest.fixture
def reporting(isolated, procs):
    """Publishes membership's not yet published events (in each aggregate's order) and reads the
    projector's figures."""
    ensure_topics([config.topic(t) for t in ("membership.events", "training.events", "welfare.events")],
                  partitions=3)
    publisher = EventPublisher()
    sent: set[str] = set()

    class Reporting:
        def publish(self) -> list:
            d = db()
            units = sorted(d.units.find({}, {"outbox": 1, "ancestors": 1}), key=lambda u: (len(u["ancestors"]), u["_id"]))
            members = sorted(d.members.find({}, {"outbox": 1}), key=lambda m: m["_id"])
            envs = [from_dict(e) for doc in units + members for e in doc.get("outbox") or []]
            new = [e for e in envs if e.id not in sent]
            sent.update(e.id for e in new)
            if new:
                publisher.publish(config.topic("membership.events"), new)
            return new

        @staticmethod
        def generation():
            rdb = mongo.database("reporting")
            return Generation(rdb, active_generation(rdb))

        def figures(self, unit: str, period: str = "2025") -> dict[str, int]:
            sums = views.period_sums(self.generation(), [unit], parse(period))[unit]
            return {k: sums.get(k, 0) for k in FIGURES}

        def member_seen(self, member_id: str, version: int) -> bool:
            """The projector has taken in the member's events up to `version`."""
            try:
                state = self.generation().load_states([f"member:{member_id}"]).get(f"member:{member_id}")
            except Exception:  # noqa: BLE001 - no generation yet
                return False
            return bool(state) and state.get("v", 0) >= version

    procs(PROJECTOR, "projector")
    yield Reporting()
    publisher.close()


ABOVE = {"s1": "c1", "s2": "c1", "s3": "c2", "s4": "c3"}


def active_member(api, tree, unit="s1", cid="079190000001"):
    m = api.ok(api.admit(tree[unit], cid=cid, admitted_on="2025-01-06"))
    return api.ok(api.post(f"/members/{m['id']}/approve", {"on": "2025-01-20"}, as_unit=tree[ABOVE[unit]]))


def request(api, tree, member_id, to="s4", as_unit="c1", **extra):
    """An officer of the commune above s1 asks to transfer a member to Hà Nội's CĐCS (outside it)."""
    return api.post(f"/members/{member_id}/transfer", {"to_unit_id": tree[to], **LETTER, "on": "2025-03-01", **extra},
                    as_unit=tree[as_unit], roles=("officer",))


def test_a_request_moves_the_member_and_the_figures_only_on_acceptance(api, tree, reporting):
    m = active_member(api, tree)
    r = api.ok(request(api, tree, m["id"]))
    assert r["unit_id"] == tree["s1"]
    assert r["pending_transfer"] == {"to_unit_id": tree["s4"], **LETTER, "requested_by": "tester",
                                     "requested_on": "2025-03-01"}
    ev = db().members.find_one({"_id": m["id"]})["outbox"][-1]
    assert ev["type"] == "membership.member.transfer_requested.v1"
    assert ev["data"]["unit_id"] == tree["s1"] and ev["data"]["to_unit_id"] == tree["s4"]
    # the sending side sees the member; the receiving side sees the request, not yet the member
    assert api.get(f"/members/{m['id']}", as_unit=tree["c1"], roles=("officer",)).status_code == 200
    assert api.get(f"/members/{m['id']}", as_unit=tree["s4"], roles=("officer",)).status_code == 403
    incoming = api.ok(api.get(f"/units/{tree['hn']}/transfer-requests", as_unit=tree["hn"], roles=("viewer",)))
    assert [i["id"] for i in incoming["items"]] == [m["id"]]
    assert api.ok(api.get(f"/units/{tree['s3']}/transfer-requests"))["items"] == []
    # paged like other lists
    page = api.ok(api.get(f"/units/{tree['s4']}/transfer-requests?limit=1", as_unit=tree["s4"], roles=("officer",)))
    assert [i["id"] for i in page["items"]] == [m["id"]] and page["next_cursor"] is None

    reporting.publish()
    wait_until(lambda: reporting.member_seen(m["id"], r["version"]), 90, interval=0.5, message="request projected")
    before = {u: reporting.figures(tree[u]) for u in ("s1", "s4", "hcm", "hn")}
    assert before["s1"]["members.active"] == 1 and before["s4"]["members.active"] == 0
    assert before["s1"]["members.transferred_out"] == 0 and before["hn"]["members.transferred_in"] == 0

    # accepting from outside the receiving subtree: 403 (the sender too), nothing written
    snapshot = db().members.find_one({"_id": m["id"]})
    for outsider in ("c1", "s3", "hcm"):
        r2 = api.post(f"/units/{tree['s4']}/transfer-requests/{m['id']}/accept", {}, as_unit=tree[outsider],
                      roles=("officer",))
        assert r2.status_code == 403, r2.get_json()
    assert db().members.find_one({"_id": m["id"]}) == snapshot

    # the level above the receiving CĐCS accepts
    done = api.ok(api.post(f"/units/{tree['c3']}/transfer-requests/{m['id']}/accept", {"on": "2025-03-10"},
                           as_unit=tree["c3"], roles=("officer",)))
    assert done["unit_id"] == tree["s4"] and done.get("pending_transfer") is None
    ev = db().members.find_one({"_id": m["id"]})["outbox"][-1]
    assert ev["type"] == "membership.member.transferred.v1"
    assert (ev["data"]["letter_no"], ev["data"]["letter_date"], ev["data"]["from_unit_id"], ev["data"]["transferred_on"]) \
        == (LETTER["letter_no"], LETTER["letter_date"], tree["s1"], "2025-03-10")
    assert api.ok(api.get(f"/units/{tree['s4']}/transfer-requests"))["items"] == []

    reporting.publish()
    wait_until(lambda: reporting.member_seen(m["id"], done["version"]), 90, interval=0.5, message="transfer projected")
    after = {u: reporting.figures(tree[u]) for u in ("s1", "s4", "hcm", "hn")}
    assert after["s4"]["members.active"] == before["s4"]["members.active"] + 1
    assert after["s1"]["members.active"] == before["s1"]["members.active"] - 1
    assert after["hn"]["members.transferred_in"] == 1 and after["hcm"]["members.transferred_out"] == 1


def test_a_refused_or_cancelled_request_leaves_everything(api, tree):
    m = active_member(api, tree)
    r = request(api, tree, m["id"], letter_no=None)
    assert r.status_code == 400 and "letter_no" in r.get_json()["errors"]
    r = request(api, tree, m["id"], letter_date=None)
    assert r.status_code == 400 and "letter_date" in r.get_json()["errors"]
    pending = api.ok(request(api, tree, m["id"]))
    # pending: no second transfer (not even inside the subtree), no leaving: 422 naming the field
    for path, body in (("transfer", {"to_unit_id": tree["s2"]}), ("leave", {"reason": "resigned"})):
        r = api.post(f"/members/{m['id']}/{path}", body, as_unit=tree["c1"], roles=("officer",))
        assert r.status_code == 422 and "pending_transfer" in r.get_json()["errors"], r.get_json()
    # refusal needs a reason, and is the receiving side's
    r = api.post(f"/units/{tree['s4']}/transfer-requests/{m['id']}/refuse", {"reason": " "}, as_unit=tree["s4"],
                 roles=("officer",))
    assert r.status_code in (400, 422) and "reason" in r.get_json()["errors"]
    refused = api.ok(api.post(f"/units/{tree['s4']}/transfer-requests/{m['id']}/refuse",
                              {"reason": "Đơn vị không tiếp nhận"}, as_unit=tree["s4"], roles=("officer",)))
    assert refused["unit_id"] == tree["s1"] and refused.get("pending_transfer") is None
    assert refused["version"] == pending["version"] + 1
    ev = db().members.find_one({"_id": m["id"]})["outbox"][-1]
    assert ev["type"] == "membership.member.transfer_refused.v1" and ev["data"]["reason"] == "Đơn vị không tiếp nhận"
    assert db().members.find_one({"_id": m["id"]})["unit_path"][-1] == tree["s1"]
    # no longer pending: nothing to accept
    r = api.post(f"/units/{tree['s4']}/transfer-requests/{m['id']}/accept", {}, as_unit=tree["s4"], roles=("officer",))
    assert r.status_code == 404

    # the sender asks again, then cancels; the receiving side cannot cancel it
    api.ok(request(api, tree, m["id"]))
    r = api.post(f"/members/{m['id']}/transfer-request/cancel", {}, as_unit=tree["s4"], roles=("officer",))
    assert r.status_code == 403
    cancelled = api.ok(api.post(f"/members/{m['id']}/transfer-request/cancel", {}, as_unit=tree["s1"],
                                roles=("officer",)))
    assert cancelled["unit_id"] == tree["s1"] and cancelled.get("pending_transfer") is None
    assert db().members.find_one({"_id": m["id"]})["outbox"][-1]["type"] == "membership.member.transfer_cancelled.v1"
    r = api.post(f"/members/{m['id']}/transfer-request/cancel", {}, as_unit=tree["s1"], roles=("officer",))
    assert r.status_code == 422 and "pending_transfer" in r.get_json()["errors"]
    # free again: a transfer inside the subtree is immediate, and records its letter when given one
    moved = api.ok(api.post(f"/members/{m['id']}/transfer", {"to_unit_id": tree["s2"], **LETTER},
                            as_unit=tree["c1"], roles=("officer",)))
    assert moved["unit_id"] == tree["s2"] and moved["transfer_letter"]["letter_no"] == LETTER["letter_no"]


def test_a_future_dated_move_changes_nothing_before_its_date_and_everything_after(api, tree, reporting, monkeypatch):
    from services.membership import service
    from services.membership.stores import stores
    monkeypatch.setattr(service, "today", lambda: date(2025, 6, 10))
    m = active_member(api, tree, unit="s3", cid="079190000002")
    m2 = active_member(api, tree, unit="s3", cid="079190000003")
    c2 = api.ok(api.get(f"/units/{tree['c2']}"))
    # the commune union c2 (with s3 and its members) moves from HCM to Hà Nội on 1 July
    scheduled = api.ok(api.post(f"/units/{tree['c2']}/move", {"parent_id": tree["hn"], "effective_date": "2025-07-01"}))
    assert scheduled["parent_id"] == tree["hcm"] and scheduled["ancestors"] == c2["ancestors"]
    (change_id, entry), = scheduled["scheduled"].items()
    assert (entry["kind"], entry["date"], entry["params"]) == ("move", "2025-07-01", {"parent_id": tree["hn"]})
    outbox = db().units.find_one({"_id": tree["c2"]})["outbox"]
    assert outbox[-1]["type"] == "membership.unit.change_scheduled.v1"
    assert not [e for e in outbox if e["type"] == "membership.unit.moved.v1"]
    # a cancellable change: cancel one, schedule again
    another = api.ok(api.post(f"/units/{tree['s2']}/dissolve", {"effective_date": "2025-08-01"}))
    (dissolve_id, _), = another["scheduled"].items()
    api.ok(api.post(f"/units/{tree['s2']}/scheduled-changes/{dissolve_id}/cancel", {}))
    assert db().units.find_one({"_id": tree["s2"]})["outbox"][-1]["type"] == "membership.unit.change_cancelled.v1"

    assert service.apply_due(date(2025, 6, 30), stores()) == []  # the day before: nothing
    assert api.ok(api.get(f"/units/{tree['c2']}"))["parent_id"] == tree["hcm"]
    assert db().members.find_one({"_id": m["id"]})["unit_path"] == [tree["vn"], tree["hcm"], tree["c2"], tree["s3"]]
    reporting.publish()
    wait_until(lambda: reporting.member_seen(m2["id"], m2["version"]) and reporting.figures(tree["hcm"])["members.active"] == 2,
               90, interval=0.5, message="members projected")
    assert reporting.figures(tree["hn"])["members.active"] == 0

    # on its date: applied once, even when two steps run it (the second finds nothing to do)
    assert service.apply_due(date(2025, 7, 1), stores()) == [change_id]
    assert service.apply_due(date(2025, 7, 1), stores()) == []
    c2_after = api.ok(api.get(f"/units/{tree['c2']}"))
    assert c2_after["parent_id"] == tree["hn"] and not c2_after.get("scheduled")
    moved = [e for e in db().units.find_one({"_id": tree["c2"]})["outbox"] if e["type"] == "membership.unit.moved.v1"]
    assert len(moved) == 1 and moved[0]["data"]["effective_date"] == "2025-07-01"
    for mid in (m["id"], m2["id"]):
        assert db().members.find_one({"_id": mid})["unit_path"] == [tree["vn"], tree["hn"], tree["c2"], tree["s3"]]
    reporting.publish()
    wait_until(lambda: reporting.figures(tree["hn"])["members.active"] == 2, 90, interval=0.5,
               message="the move projected")
    assert reporting.figures(tree["hcm"])["members.active"] == 0


def test_a_scheduled_change_is_checked_when_recorded_and_a_refused_one_stays_marked(api, tree):
    from services.membership import service
    from services.membership.stores import stores
    future = date.fromordinal(service.today().toordinal() + 30).isoformat()
    r = api.post(f"/units/{tree['s1']}/move", {"parent_id": tree["c1"], "effective_date": future})
    assert r.status_code == 422 and "parent_id" in r.get_json()["errors"]  # already there: refused now
    # a dissolution of a CĐCS that will still have a member on the day: recorded, refused on the day
    active_member(api, tree)
    unit = api.ok(api.post(f"/units/{tree['s1']}/dissolve", {"effective_date": future}))
    (change_id, _), = unit["scheduled"].items()
    assert service.apply_due(date.fromisoformat(future), stores()) == []
    after = api.ok(api.get(f"/units/{tree['s1']}"))
    assert after["status"] == "active" and "members" in after["scheduled"][change_id]["failed"]


def test_two_apply_due_steps_at_once_apply_each_change_once(api, tree):
    import threading
    from services.membership import service
    from services.membership.stores import stores
    future = date.fromordinal(service.today().toordinal() + 10)
    api.ok(api.post(f"/units/{tree['s3']}/move", {"parent_id": tree["c1"], "effective_date": future.isoformat()}))
    api.ok(api.post(f"/units/{tree['c3']}/move", {"parent_id": tree["hcm"], "effective_date": future.isoformat()}))
    applied: list[list[str]] = []
    threads = [threading.Thread(target=lambda: applied.append(service.apply_due(future, stores()))) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(applied) == 2  # both steps ran to the end (neither raised)
    for unit, parent in (("s3", "c1"), ("c3", "hcm")):
        doc = db().units.find_one({"_id": tree[unit]})
        assert doc["parent_id"] == tree[parent] and not doc.get("scheduled") and not doc.get("has_scheduled")
        assert [e["type"] for e in doc["outbox"]].count("membership.unit.moved.v1") == 1
    assert db().units.find_one({"_id": tree["s4"]})["ancestors"] == [tree["vn"], tree["hcm"], tree["c3"]]
