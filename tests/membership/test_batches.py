"""Batches on the real database: approvals and refusals, cards, ratings. Each item succeeds or
fails on its own with the status the one-item endpoint would answer; a retry with the same
Idempotency-Key changes nothing; the events and documents equal those of the one-by-one path."""
import random

import pytest

from platformkit import mongo

pytestmark = pytest.mark.integration

ON = "2025-03-10"


from tests.membership.aggregates import db  # noqa: E402 - aggregate documents with their outboxes


def snapshot():
    """Every member document, outbox included, and the unit documents (ratings)."""
    return (sorted(db().members.find({}), key=lambda d: d["_id"]), sorted(db().units.find({}), key=lambda d: d["_id"]))


def admit_many(api, unit_id, n, first, name=None, admitted_on="2025-03-01"):
    """n admitted members through the import (one request), citizen IDs first..first+n-1, in order."""
    rows = "".join(f"{name or f'Người Thứ {first + i}'},0791{first + i:08d},1990-05-17,{'nữ' if i % 2 else 'nam'},"
                   f"{admitted_on}\n" for i in range(n))
    report = api.ok(api.upload(unit_id, "ds.csv", ("full_name,citizen_id,date_of_birth,gender,admitted_on\n" + rows)
                               .encode()))
    assert report["admitted"] == n, report
    return [r["member_id"] for r in report["rows"]]


def events_of(member_id):
    return db().members.find_one({"_id": member_id})["outbox"]


def test_500_decisions_in_one_request_apply_the_valid_items_once(api, tree):
    ids = admit_many(api, tree["s1"], 495, 1)
    other = admit_many(api, tree["s3"], 2, 1000)  # under the other commune: outside the caller's subtree
    c1 = {"as_unit": tree["c1"], "roles": ("officer",)}
    for mid in ids[490:492]:  # already approved before the batch
        api.ok(api.post(f"/members/{mid}/approve", {"on": "2025-03-05"}, **c1))
    approve, refuse_ = ids[:480], ids[480:490]
    no_reason, stale = ids[492:494], ids[494]
    items = ([("ok", {"member_id": m, "decision": "approve"}) for m in approve]
             + [("ok", {"member_id": m, "decision": "refuse", "reason": "Không đủ điều kiện kết nạp"}) for m in refuse_]
             + [(404, {"member_id": "m-unknown", "decision": "approve"})]
             + [(422, {"member_id": m, "decision": "approve"}) for m in ids[490:492]]
             + [(403, {"member_id": m, "decision": "approve"}) for m in other]
             + [(400, {"member_id": m, "decision": "refuse"}) for m in no_reason]
             + [(400, {"member_id": stale, "decision": "maybe"})]
             + [(412, {"member_id": stale, "decision": "approve", "version": 7})])
    random.Random(7).shuffle(items)
    items.append((422, {"member_id": approve[0], "decision": "approve"}))  # twice in one batch: once
    assert len(items) == 500
    untouched = [ids[490], ids[491], *other, *no_reason, stale]
    before = {m: db().members.find_one({"_id": m}) for m in untouched}
    body = {"items": [b for _, b in items], "on": ON}
    key = {"Idempotency-Key": "duyet-dot-1-2025"}

    r = api.post("/members/approvals", body, headers=key, **c1)
    answer = api.ok(r, 200)
    assert "Idempotent-Replayed" not in r.headers
    assert (answer["total"], answer["succeeded"], answer["failed"]) == (500, 490, 10)
    assert all(type(answer[k]) is int for k in ("total", "succeeded", "failed"))  # counts are integers
    assert [x["index"] for x in answer["results"]] == list(range(500))
    for (want, item), got in zip(items, answer["results"]):
        if want == "ok":
            assert got["status"] == 200 and got["member"]["id"] == item["member_id"], got
            assert got["member"]["status"] == ("active" if item["decision"] == "approve" else "refused")
            assert "error" not in got
        else:
            assert got["status"] == want and got["error"]["status"] == want and "member" not in got, (want, got)
    by_status = {}
    for (want, item), got in zip(items, answer["results"]):
        by_status.setdefault(want, []).append(got["error"] if want != "ok" else None)
    assert sorted(next(iter(e["errors"])) for e in by_status[400]) == ["decision", "reason", "reason"]
    assert all(e["errors"] == {"status": [e["message"]]} for e in by_status[422])
    assert all("outside" in e["message"] for e in by_status[403])

    # applied exactly once, with the batch's date and the caller's unit
    for m in approve:
        evs = events_of(m)
        assert [e["type"] for e in evs] == ["membership.member.admitted.v1", "membership.member.approved.v1"]
        assert evs[1]["data"]["approved_on"] == ON and evs[1]["data"]["approved_by_unit_id"] == tree["c1"]
    for m in refuse_:
        assert [e["type"].split(".")[2] for e in events_of(m)] == ["admitted", "refused"]
    assert {m: db().members.find_one({"_id": m}) for m in untouched} == before  # refused items wrote nothing

    # the same batch again with the same key: the first answer, and nothing changes
    everything = snapshot()
    again = api.post("/members/approvals", body, headers=key, **c1)
    assert again.status_code == 200 and again.get_json() == answer
    assert again.headers["Idempotent-Replayed"] == "true"
    assert snapshot() == everything
    # the same key for another request: 422 naming the header, nothing changes
    r = api.post("/members/approvals", {"items": body["items"][:10], "on": ON}, headers=key, **c1)
    assert r.status_code == 422 and "Idempotency-Key" in r.get_json()["errors"], r.get_json()
    assert snapshot() == everything
    # without a key, a retry applies nothing twice: the done items are refused by the rules, no event
    retry = api.ok(api.post("/members/approvals", body, **c1), 200)
    assert retry["succeeded"] == 0
    assert {x["status"] for x in retry["results"]} <= {400, 403, 404, 412, 422}
    assert snapshot() == everything


def test_a_batch_is_1_to_500_items_and_its_date_is_checked_before_anything_is_written(api, tree):
    ids = admit_many(api, tree["s1"], 2, 1)
    before = snapshot()
    c1 = {"as_unit": tree["c1"], "roles": ("officer",)}
    item = {"member_id": ids[0], "decision": "approve"}
    for body, field in (({"items": [item] * 501}, "items"), ({"items": []}, "items"), ({"items": item}, "items"),
                        ({}, "items"), ({"items": [item], "on": "9999-12-31"}, "on"),
                        ({"items": [item], "extra": 1}, "extra")):
        r = api.post("/members/approvals", body, **c1)
        assert r.status_code == 400 and field in r.get_json()["errors"], (body.keys(), r.get_json())
    r = api.post("/members/approvals", {"items": [item]}, headers={"Idempotency-Key": "x" * 201}, **c1)
    assert r.status_code == 400 and "Idempotency-Key" in r.get_json()["errors"]["headers"]
    for body in ({"items": [item]}, {"items": ["not an object"]}):  # a viewer may not approve at all
        assert api.post("/members/approvals", body, as_unit=tree["c1"], roles=("viewer",)).status_code == 403
    # odd items are refused one by one (400 naming what is wrong), never the whole batch
    odd = api.ok(api.post("/members/approvals", {"items": ["x", 12, {"member_id": ids[0]}, {"$where": 1}]}, **c1), 200)
    assert [r["status"] for r in odd["results"]] == [400, 400, 400, 400]
    assert "decision" in odd["results"][2]["error"]["errors"] and "$where" in odd["results"][3]["error"]["errors"]
    assert snapshot() == before
    assert db().batches.count_documents({}) == 0  # without a key, nothing is stored


def member_facts_compared(doc):
    """A member document without what differs between two people admitted the same way."""
    skip = {"_id", "citizen_id", "active_citizen_id", "member_number", "outbox", "rev", "outbox_pending", "name_search",
            "name_terms"}
    return {k: v for k, v in doc.items() if k not in skip}


def events_compared(doc):
    out = []
    for e in doc["outbox"]:
        data = {k: v for k, v in e["data"].items() if k not in ("member_id",)}
        if "member_number" in data:
            data["member_number"] = data["member_number"][:4]  # province code and year; the sequence differs
        out.append((e["type"], e["source"], e["subject"] == doc["_id"], e["aggregateversion"], data))
    return out


def test_the_batch_writes_the_same_events_and_documents_as_one_by_one(api, tree):
    n = 12
    one = admit_many(api, tree["s1"], n, 1, name="Trần Thị Giống")
    many = admit_many(api, tree["s1"], n, 100, name="Trần Thị Giống")
    c1 = {"as_unit": tree["c1"], "roles": ("officer",)}
    reason = "Hồ sơ chưa đủ"
    decisions = ["refuse" if i % 4 == 3 else "approve" for i in range(n)]
    for mid, decision in zip(one, decisions):
        if decision == "approve":
            api.ok(api.post(f"/members/{mid}/approve", {"on": ON}, **c1))
        else:
            api.ok(api.post(f"/members/{mid}/refuse", {"on": ON, "reason": reason}, **c1))
    answer = api.ok(api.post("/members/approvals", {"on": ON, "items": [
        {"member_id": mid, "decision": d, **({"reason": reason} if d == "refuse" else {})}
        for mid, d in zip(many, decisions)]}, **c1), 200)
    assert answer["succeeded"] == n
    approved = [i for i, d in enumerate(decisions) if d == "approve"]
    for i in approved:
        api.ok(api.post(f"/members/{one[i]}/card", {"on": "2025-03-15"}, **c1))
    cards = api.ok(api.post("/members/cards", {"on": "2025-03-15", "items": [{"member_id": many[i]} for i in approved]},
                            headers={"Idempotency-Key": "the-cards"}, **c1), 200)
    assert cards["succeeded"] == len(approved)
    assert all(r["member"]["member_number"].startswith("HCM25") for r in cards["results"])
    for a, b in zip(one, many):
        da, dbb = db().members.find_one({"_id": a}), db().members.find_one({"_id": b})
        assert events_compared(da) == events_compared(dbb)
        assert member_facts_compared(da) == member_facts_compared(dbb)
    assert {e["type"].split(".")[2] for a in one for e in events_of(a)} == {"admitted", "approved", "refused",
                                                                             "card_issued"}


def test_items_outside_the_callers_subtree_are_refused_each_while_the_others_pass(api, tree):
    mine = admit_many(api, tree["s1"], 2, 1)
    theirs = admit_many(api, tree["s4"], 1, 50)  # Hà Nội
    c1 = {"as_unit": tree["c1"], "roles": ("officer",)}
    other_before = db().members.find_one({"_id": theirs[0]})
    res = api.ok(api.post("/members/approvals", {"items": [
        {"member_id": mine[0], "decision": "approve"}, {"member_id": theirs[0], "decision": "approve"},
        {"member_id": mine[1], "decision": "refuse", "reason": "Chưa đủ tuổi đoàn"}]}, **c1), 200)
    assert [r["status"] for r in res["results"]] == [200, 403, 200]
    denied = res["results"][1]
    assert denied["error"]["code"] == "forbidden" and theirs[0] not in str(denied) and "Người" not in str(denied)
    assert db().members.find_one({"_id": theirs[0]}) == other_before
    # a CĐCS officer decides nothing for its own CĐCS: the level rule refuses each item (422)
    own = api.ok(api.post("/members/approvals", {"items": [{"member_id": mine[0], "decision": "refuse",
                                                            "reason": "x"}]},
                          as_unit=tree["s1"], roles=("officer",)), 200)
    assert own["results"][0]["status"] == 422


def test_refusing_an_admission(api, tree):
    m = api.ok(api.admit(tree["s1"], admitted_on="2025-02-03"))
    before = db().members.find_one({"_id": m["id"]})
    r = api.post(f"/members/{m['id']}/refuse", {"reason": "Không đủ điều kiện"}, as_unit=tree["s1"], roles=("officer",))
    assert r.status_code == 422 and "refused_by" in r.get_json()["errors"]  # not by the CĐCS itself
    r = api.post(f"/members/{m['id']}/refuse", {}, as_unit=tree["c1"], roles=("officer",))
    assert r.status_code == 400 and "reason" in r.get_json()["errors"]
    r = api.post(f"/members/{m['id']}/refuse", {"reason": "   "}, as_unit=tree["c1"], roles=("officer",))
    assert r.status_code == 400 and "reason" in r.get_json()["errors"]
    assert db().members.find_one({"_id": m["id"]}) == before
    refused = api.ok(api.post(f"/members/{m['id']}/refuse", {"reason": " Không  đủ điều kiện ", "on": "2025-03-01"},
                              as_unit=tree["c1"], roles=("officer",)))
    assert (refused["status"], refused["refused_on"], refused["refused_reason"]) == ("refused", "2025-03-01",
                                                                                     "Không đủ điều kiện")
    ev = events_of(m["id"])[-1]
    assert ev["type"] == "membership.member.refused.v1" and ev["aggregateversion"] == 2
    assert ev["data"] == {"member_id": m["id"], "unit_id": tree["s1"], "ancestors": [tree["vn"], tree["hcm"], tree["c1"]],
                          "full_name": "Nguyễn Thị Hà", "gender": "female", "is_official": False,
                          "admitted_on": "2025-02-03", "refused_on": "2025-03-01", "reason": "Không đủ điều kiện",
                          "refused_by_unit_id": tree["c1"]}
    after = db().members.find_one({"_id": m["id"]})
    for path, body in ((f"/members/{m['id']}/approve", {}), (f"/members/{m['id']}/refuse", {"reason": "lại"}),
                       (f"/members/{m['id']}/leave", {"reason": "resigned"}), (f"/members/{m['id']}/card", {}),
                       (f"/members/{m['id']}/reinstate", {})):
        r = api.post(path, body, as_unit=tree["c1"], roles=("officer",))
        assert r.status_code == 422 and "status" in r.get_json()["errors"], (path, r.get_json())
    assert db().members.find_one({"_id": m["id"]}) == after
    assert api.ok(api.get(f"/units/{tree['s1']}/members?status=refused"))["items"][0]["id"] == m["id"]
    again = api.ok(api.admit(tree["s1"]))  # the person may be admitted again: a new admission
    assert again["id"] != m["id"] and again["status"] == "admitted"


def test_cards_in_a_batch(api, tree):
    ids = admit_many(api, tree["s1"], 4, 1)
    c1 = {"as_unit": tree["c1"], "roles": ("officer",)}
    api.ok(api.post("/members/approvals", {"items": [{"member_id": m, "decision": "approve"} for m in ids[:3]]}, **c1))
    api.ok(api.post(f"/members/{ids[2]}/card", {}, **c1))
    theirs = admit_many(api, tree["s4"], 1, 50)
    res = api.ok(api.post("/members/cards", {"items": [{"member_id": m} for m in [*ids, *theirs]]}, **c1), 200)
    assert [r["status"] for r in res["results"]] == [200, 200, 409, 422, 403]
    numbers = [r["member"]["member_number"] for r in res["results"][:2]]
    assert len(set(numbers)) == 2 and all(n.startswith("HCM") for n in numbers)
    assert res["results"][2]["error"]["errors"].keys() == {"member_number"}


def test_ratings_in_a_batch(api, tree):
    c1 = {"as_unit": tree["c1"], "roles": ("officer",)}
    units_before = {u: db().units.find_one({"_id": u}) for u in (tree["s4"],)}
    res = api.ok(api.post("/units/ratings", {"items": [
        {"unit_id": tree["s1"], "year": 2024, "rating": "good", "action": "propose"},
        {"unit_id": tree["s2"], "year": 2024, "rating": "excellent", "action": "propose"},
        {"unit_id": tree["s4"], "year": 2024, "rating": "good", "action": "propose"},       # Hà Nội: 403
        {"unit_id": tree["s1"], "year": 2024, "action": "propose"},                         # no rating: 400
        {"unit_id": tree["c1"], "year": 2024, "rating": "good", "action": "propose"},       # not a CĐCS: 422
        {"unit_id": tree["s1"], "year": 2024, "rating": "excellent", "action": "confirm"},  # by the commune
        {"unit_id": tree["s2"], "year": 2030, "action": "confirm"},                         # nothing proposed
    ]}, **c1), 200)
    assert [r["status"] for r in res["results"]] == [200, 200, 403, 400, 422, 200, 422]
    assert res["results"][3]["error"]["errors"].keys() == {"rating"}
    assert res["results"][5]["unit"] == {"id": tree["s1"], "version": db().units.find_one({"_id": tree["s1"]})["version"],
                                         "year": 2024, "rating": "excellent", "rating_status": "confirmed"}
    assert {u: db().units.find_one({"_id": u}) for u in (tree["s4"],)} == units_before
    # the same proposal again changes nothing (no event); a CĐCS cannot confirm its own rating
    s2 = db().units.find_one({"_id": tree["s2"]})
    again = api.ok(api.post("/units/ratings", {"items": [
        {"unit_id": tree["s2"], "year": 2024, "rating": "excellent", "action": "propose"}]}, **c1), 200)
    assert again["results"][0]["status"] == 200 and db().units.find_one({"_id": tree["s2"]}) == s2
    own = api.ok(api.post("/units/ratings", {"items": [{"unit_id": tree["s2"], "year": 2024, "action": "confirm"}]},
                          as_unit=tree["s2"], roles=("officer",)), 200)
    assert own["results"][0]["status"] == 422 and db().units.find_one({"_id": tree["s2"]}) == s2
    assert api.post("/units/ratings", {"items": [{"unit_id": tree["s2"], "year": 2024, "action": "confirm"}]},
                    as_unit=tree["c1"], roles=("service",)).status_code == 403


def test_an_abandoned_batch_is_taken_over_from_its_saved_results(api, tree, monkeypatch):
    """A request that died half-way (its batch document still `running`, no heartbeat for a
    while): a retry with the same key goes on from the saved results, never applies twice."""
    from datetime import datetime, timedelta, timezone

    from services.membership import batch
    ids = admit_many(api, tree["s1"], 6, 1)
    c1 = {"as_unit": tree["c1"], "roles": ("officer",)}
    body = {"items": [{"member_id": m, "decision": "approve"} for m in ids], "on": ON}
    key = {"Idempotency-Key": "dies-half-way"}
    monkeypatch.setattr(batch, "SAVE_EVERY", 2)
    real = batch._apply_one
    calls = []

    def dying(index, *args):
        calls.append(index)
        if index == 3:
            raise ConnectionError("the request dies here")
        return real(index, *args)
    monkeypatch.setattr(batch, "_apply_one", dying)
    assert api.post("/members/approvals", body, headers=key, **c1).status_code == 500
    monkeypatch.setattr(batch, "_apply_one", real)
    doc = db().batches.find_one({})
    assert doc["state"] == "running" and len(__import__("json").loads(doc["results"])) == 2
    r = api.post("/members/approvals", body, headers=key, **c1)  # the dead run's heartbeat is still fresh
    assert r.status_code == 409 and "Idempotency-Key" in r.get_json()["errors"]
    db().batches.update_one({"_id": doc["_id"]}, {"$set": {
        "heartbeat": datetime.now(timezone.utc) - timedelta(seconds=batch.STALE_SECONDS + 1)}})
    answer = api.ok(api.post("/members/approvals", body, headers=key, **c1), 200)
    # items 0-1 saved, item 2 applied after the last save (so now "already approved"), 3-5 applied now
    assert [r["status"] for r in answer["results"]] == [200, 200, 422, 200, 200, 200]
    assert all(len(events_of(m)) == 2 for m in ids)
    assert api.post("/members/approvals", body, headers=key, **c1).get_json() == answer


def test_a_refused_record_holds_no_unit_up(api, tree):
    """A refused admission is no one's member: it neither blocks dissolving its CĐCS nor moves in a merger."""
    gone = api.ok(api.admit(tree["s2"]))
    api.ok(api.post(f"/members/{gone['id']}/refuse", {"reason": "Không đủ điều kiện"}, as_unit=tree["c1"]))
    stays = api.ok(api.admit(tree["s3"], cid="079190000002"))
    api.ok(api.post(f"/members/{stays['id']}/refuse", {"reason": "Không đủ điều kiện"}, as_unit=tree["c2"]))
    kept = api.ok(api.admit(tree["s3"], cid="079190000003"))
    assert api.ok(api.post(f"/units/{tree['s2']}/dissolve", {}, as_unit=tree["c1"]))["status"] == "dissolved"
    api.ok(api.post(f"/units/{tree['s3']}/merge", {"into_unit_id": tree["s1"]}, as_unit=tree["hcm"]))
    assert api.ok(api.get(f"/members/{kept['id']}"))["unit_id"] == tree["s1"]
    refused = api.ok(api.get(f"/members/{stays['id']}"))
    assert (refused["unit_id"], refused["status"], refused["version"]) == (tree["s3"], "refused", 2)
