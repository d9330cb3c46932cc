"""The welfare API with Flask's test client against the real database (no Kafka: the local view is
seeded by applying membership events directly)."""
from __future__ import annotations

import threading
import time

import pytest

from services.welfare import service
from services.welfare.stores import Stores
from tests.welfare.conftest import token

pytestmark = pytest.mark.integration

PROV, COMMUNE, CDCS = token("prov"), token("commune"), token("cdcs")


def create_programme(client, budget=10_000_000, kind="hardship_visit", sources=("union_fund", "employer"),
                     unit="prov"):
    r = client.post("/api/v1/programmes", headers=token(unit), json={
        "name": "Thăm hỏi đoàn viên khó khăn 2025", "kind": kind, "unit_id": unit, "year": 2025,
        "budget": budget, "funding_sources": list(sources)})
    assert r.status_code == 201, r.json
    return r.json


def case_body(programme_id, amount=2_000_000, member="m-active", funding=None, **extra):
    return {"programme_id": programme_id, "member_id": member, "hardship_type": "illness",
            "amount": amount, "form": "cash", "requested_on": extra.pop("requested_on", "2025-03-01"),
            "funding": funding or [{"source": "union_fund", "amount": amount}], **extra}


def request_case(client, programme_id, headers=CDCS, **kw):
    r = client.post("/api/v1/cases", headers=headers, json=case_body(programme_id, **kw))
    assert r.status_code == 201, r.json
    return r.json


def snapshot(db):
    """Everything welfare wrote, to prove a refusal wrote nothing."""
    return tuple({d["_id"]: d for d in db[c].find()} for c in ("programmes", "cases", "budget_ledger", "claims"))


def remaining(client, programme_id):
    return client.get(f"/api/v1/programmes/{programme_id}", headers=PROV).json["remaining"]


def reserved_case_ids(db, programme_id):
    return sorted(e["case_id"] for e in db.budget_ledger.find({"programme_id": programme_id}))


def outbox_types(db, coll, _id):
    return [e["type"] for e in db[coll].find_one({"_id": _id})["outbox"]]


def test_programme_case_approve_disburse(client, tree):
    prog = create_programme(client)
    assert prog["remaining"] == 10_000_000 and prog["ancestors"] == ["central"]
    assert outbox_types(tree, "programmes", prog["id"]) == ["welfare.programme.created.v1"]
    split = [{"source": "union_fund", "amount": 1_500_000}, {"source": "employer", "amount": 500_000}]
    case = request_case(client, prog["id"], funding=split)
    assert case["status"] == "requested" and case["unit_id"] == "cdcs" and case["version"] == 1
    assert case["ancestors"] == ["central", "prov", "commune"] and case["member_name"] == "Nguyễn Thị Hà"

    r = client.post(f"/api/v1/cases/{case['id']}/approve", headers=COMMUNE, json={"approved_on": "2025-03-02"})
    assert r.status_code == 200, r.json
    assert (r.json["status"], r.json["approved_by_unit_id"], r.json["approved_level"]) == ("approved", "commune", 3)
    assert remaining(client, prog["id"]) == 8_000_000
    assert reserved_case_ids(tree, prog["id"]) == [case["id"]]

    r = client.post(f"/api/v1/cases/{case['id']}/disburse", headers={**CDCS, "Idempotency-Key": "pay-1"},
                    json={"disbursed_on": "2025-03-05"})
    assert r.status_code == 200 and r.json["status"] == "disbursed" and r.json["version"] == 3
    again = client.post(f"/api/v1/cases/{case['id']}/disburse", headers={**CDCS, "Idempotency-Key": "pay-1"},
                        json={"disbursed_on": "2025-03-05"})
    assert again.status_code == 200 and again.json["version"] == 3  # the first result, not paid twice
    other_key = client.post(f"/api/v1/cases/{case['id']}/disburse", headers={**CDCS, "Idempotency-Key": "pay-2"},
                            json={})
    assert other_key.status_code == 409
    assert outbox_types(tree, "cases", case["id"]) == [
        "welfare.case.requested.v1", "welfare.case.approved.v1", "welfare.case.disbursed.v1"]
    disbursed = tree.cases.find_one({"_id": case["id"]})["outbox"][-1]["data"]
    assert disbursed["amount"] == 2_000_000 and disbursed["approved_by_unit_id"] == "commune"
    assert disbursed["ancestors"] == ["central", "prov", "commune"] and disbursed["funding"] == split

    assert client.get(f"/api/v1/cases/{case['id']}", headers=PROV).json["status"] == "disbursed"
    listed = client.get(f"/api/v1/cases?programme_id={prog['id']}", headers=COMMUNE).json["items"]
    assert [c["id"] for c in listed] == [case["id"]]


def test_rejection_with_reason(client, tree):
    prog = create_programme(client)
    case = request_case(client, prog["id"])
    r = client.post(f"/api/v1/cases/{case['id']}/reject", headers=COMMUNE, json={"reason": "Không đủ điều kiện"})
    assert r.status_code == 200 and r.json["status"] == "rejected"
    assert r.json["rejection_reason"] == "Không đủ điều kiện"
    r = client.post(f"/api/v1/cases/{case['id']}/approve", headers=COMMUNE, json={})
    assert r.status_code == 409
    assert remaining(client, prog["id"]) == 10_000_000


# ------------------------------------------------------------------ refusals write nothing

def test_amount_over_the_remaining_budget(client, tree):
    prog = create_programme(client, budget=3_000_000)
    before = snapshot(tree)
    r = client.post("/api/v1/cases", headers=CDCS, json=case_body(prog["id"], amount=3_000_001))
    assert r.status_code == 422 and "amount" in r.json["errors"]
    assert snapshot(tree) == before
    # at approval: two requests fit one by one, not together
    a = request_case(client, prog["id"], amount=2_000_000)
    b = request_case(client, prog["id"], amount=2_000_000)
    assert client.post(f"/api/v1/cases/{a['id']}/approve", headers=COMMUNE, json={}).status_code == 200
    before = snapshot(tree)
    r = client.post(f"/api/v1/cases/{b['id']}/approve", headers=COMMUNE, json={})
    assert r.status_code == 422 and "amount" in r.json["errors"]
    assert snapshot(tree) == before
    assert remaining(client, prog["id"]) == 1_000_000


def test_a_split_that_does_not_add_up(client, tree):
    prog = create_programme(client)
    before = snapshot(tree)
    split = [{"source": "union_fund", "amount": 1_000_000}, {"source": "employer", "amount": 900_000}]
    r = client.post("/api/v1/cases", headers=CDCS, json=case_body(prog["id"], amount=2_000_000, funding=split))
    assert r.status_code == 400 and "funding" in r.json["errors"]
    r = client.post("/api/v1/cases", headers=CDCS, json=case_body(
        prog["id"], amount=1_000_000, funding=[{"source": "sponsor", "amount": 1_000_000}]))
    assert r.status_code == 422 and "funding" in r.json["errors"]  # the programme has no sponsor
    assert snapshot(tree) == before


def test_a_beneficiary_who_left_or_is_unknown(client, tree):
    prog = create_programme(client)
    before = snapshot(tree)
    for member in ("m-left", "m-nobody"):
        r = client.post("/api/v1/cases", headers=CDCS, json=case_body(prog["id"], member=member))
        assert r.status_code == 422 and "member_id" in r.json["errors"], member
    assert snapshot(tree) == before
    # admitted but not yet approved by the level above: still a member, may be helped
    assert request_case(client, prog["id"], member="m-admitted")["member_id"] == "m-admitted"


def test_a_wrong_level_approving(client, tree):
    prog = create_programme(client)
    case = request_case(client, prog["id"])
    before = snapshot(tree)
    r = client.post(f"/api/v1/cases/{case['id']}/approve", headers=CDCS, json={})
    assert r.status_code == 422 and "approver_unit_id" in r.json["errors"]
    r = client.post(f"/api/v1/cases/{case['id']}/reject", headers=CDCS, json={"reason": "x"})
    assert r.status_code == 422
    assert snapshot(tree) == before


def test_bad_input_is_400_naming_the_field(client, tree):
    prog = create_programme(client)
    before = snapshot(tree)
    for change, field in [({"amount": "2000000"}, "amount"), ({"amount": 0}, "amount"),
                          ({"form": "voucher"}, "form"), ({"requested_on": "01/03/2025"}, "requested_on"),
                          ({"colour": "red"}, "colour"), ({"funding": [{"source": "union_fund"}]}, "funding")]:
        r = client.post("/api/v1/cases", headers=CDCS, json={**case_body(prog["id"]), **change})
        assert r.status_code == 400 and field in r.json["errors"], (change, r.json)
    r = client.post("/api/v1/programmes", headers=PROV, json={"name": "x", "kind": "tet_gift", "unit_id": "prov",
                                                               "year": 2025, "budget": -1, "funding_sources": []})
    assert r.status_code == 400 and {"budget", "funding_sources"} <= set(r.json["errors"])
    assert snapshot(tree) == before


def test_a_caller_outside_the_subtree_gets_403(client, tree):
    prog = create_programme(client)
    case = request_case(client, prog["id"])
    outsider = token("prov2")
    before = snapshot(tree)
    assert client.get(f"/api/v1/cases/{case['id']}", headers=outsider).status_code == 403
    assert client.get(f"/api/v1/programmes/{prog['id']}", headers=outsider).status_code == 403
    assert client.post(f"/api/v1/cases/{case['id']}/approve", headers=outsider, json={}).status_code == 403
    assert client.post(f"/api/v1/cases/{case['id']}/disburse", headers=outsider, json={}).status_code == 403
    r = client.post("/api/v1/cases", headers=outsider, json=case_body(prog["id"]))
    assert r.status_code == 403
    r = client.post("/api/v1/programmes", headers=outsider, json={
        "name": "x", "kind": "tet_gift", "unit_id": "prov", "year": 2025, "budget": 1, "funding_sources": ["union_fund"]})
    assert r.status_code == 403
    # read-only role, in scope: may read, may not write
    viewer = token("commune", roles=("viewer",))
    assert client.get(f"/api/v1/cases/{case['id']}", headers=viewer).status_code == 200
    assert client.post(f"/api/v1/cases/{case['id']}/approve", headers=viewer, json={}).status_code == 403
    assert client.get(f"/api/v1/cases/{case['id']}").status_code == 401
    assert snapshot(tree) == before
    # lists show the caller's subtree only
    assert client.get("/api/v1/cases", headers=outsider).json["items"] == []
    assert client.get("/api/v1/programmes", headers=outsider).json["items"] == []
    assert [p["id"] for p in client.get("/api/v1/programmes", headers=token("central")).json["items"]] == [prog["id"]]


# ------------------------------------------------------------------ concurrency and retries

def race(n, fn):
    barrier = threading.Barrier(n)
    results = [None] * n

    def run(i):
        barrier.wait()
        results[i] = fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_ten_approvals_racing_for_a_budget_that_fits_three(app, client, tree):
    prog = create_programme(client, budget=3_500_000)
    cases = [request_case(client, prog["id"], amount=1_000_000)["id"] for _ in range(10)]

    def approve(i):
        return app.test_client().post(f"/api/v1/cases/{cases[i]}/approve", headers=COMMUNE, json={}).status_code

    statuses = race(10, approve)
    assert sorted(statuses) == [200] * 3 + [422] * 7
    programme = client.get(f"/api/v1/programmes/{prog['id']}", headers=PROV).json
    assert programme["remaining"] == 500_000 and programme["reserved"] == 3_000_000
    approved = sorted(c["_id"] for c in tree.cases.find({"status": "approved"}))
    assert len(approved) == 3 and reserved_case_ids(tree, prog["id"]) == approved
    assert tree.cases.count_documents({"status": "requested"}) == 7


def test_the_same_case_approved_twice_at_once_is_reserved_once(app, client, tree):
    prog = create_programme(client)
    case = request_case(client, prog["id"])
    statuses = race(4, lambda i: app.test_client().post(
        f"/api/v1/cases/{case['id']}/approve", headers=COMMUNE, json={}).status_code)
    assert sorted(statuses)[0] == 200 and statuses.count(200) == 1
    assert set(statuses) <= {200, 409, 412}
    assert remaining(client, prog["id"]) == 8_000_000
    assert reserved_case_ids(tree, prog["id"]) == [case["id"]]
    assert outbox_types(tree, "cases", case["id"]) == ["welfare.case.requested.v1", "welfare.case.approved.v1"]


def test_a_crash_after_the_reservation_is_finished_by_rerunning_approve(client, tree):
    prog = create_programme(client)
    case = request_case(client, prog["id"])
    # the first approval claimed the decision and reserved, then died before it marked the case
    tree.claims.insert_one({"_id": f"decision:{case['id']}", "decision": "approved", "unit_id": "commune",
                            "owner": "dead", "at": time.time() - service.CLAIM_LEASE_SECONDS - 1})
    service.reserve_disbursement(tree.cases.find_one({"_id": case["id"]}), Stores(tree))
    assert remaining(client, prog["id"]) == 8_000_000
    assert tree.cases.find_one({"_id": case["id"]})["status"] == "requested"
    r = client.post(f"/api/v1/cases/{case['id']}/reject", headers=COMMUNE, json={"reason": "x"})
    assert r.status_code == 409  # decided already: only finishing the approval is possible
    r = client.post(f"/api/v1/cases/{case['id']}/approve", headers=COMMUNE, json={})
    assert r.status_code == 200 and r.json["status"] == "approved"
    assert remaining(client, prog["id"]) == 8_000_000  # not twice
    assert reserved_case_ids(tree, prog["id"]) == [case["id"]]


def test_a_decision_in_progress_blocks_a_second_one(client, tree):
    prog = create_programme(client)
    case = request_case(client, prog["id"])
    tree.claims.insert_one({"_id": f"decision:{case['id']}", "decision": "rejected", "unit_id": "commune",
                            "owner": "busy", "at": time.time()})
    r = client.post(f"/api/v1/cases/{case['id']}/approve", headers=COMMUNE, json={})
    assert r.status_code == 409
    assert tree.budget_ledger.count_documents({}) == 0
    assert tree.cases.find_one({"_id": case["id"]})["status"] == "requested"


def test_a_retried_post_with_the_same_idempotency_key_creates_one_case(app, client, tree):
    prog = create_programme(client)
    headers = {**CDCS, "Idempotency-Key": "req-42"}
    first = client.post("/api/v1/cases", headers=headers, json=case_body(prog["id"]))
    retry = client.post("/api/v1/cases", headers=headers, json=case_body(prog["id"]))
    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json["id"] == first.json["id"]
    assert tree.cases.count_documents({}) == 1
    changed = client.post("/api/v1/cases", headers=headers, json=case_body(prog["id"], amount=999))
    assert changed.status_code == 409 and "Idempotency-Key" in changed.json["errors"]
    # retries racing each other still make one case
    racing = {**CDCS, "Idempotency-Key": "req-43"}
    results = race(6, lambda i: app.test_client().post("/api/v1/cases", headers=racing,
                                                       json=case_body(prog["id"], amount=1_000_000)))
    assert sorted(r.status_code for r in results) == [200] * 5 + [201]
    assert len({r.json["id"] for r in results}) == 1
    assert tree.cases.count_documents({}) == 2


def test_stale_version_is_412(client, tree):
    prog = create_programme(client)
    case = request_case(client, prog["id"])
    before = snapshot(tree)
    r = client.post(f"/api/v1/cases/{case['id']}/approve", headers=COMMUNE, json={"version": 7})
    assert r.status_code == 412
    assert snapshot(tree) == before
    r = client.post(f"/api/v1/cases/{case['id']}/approve", headers=COMMUNE, json={"version": 1})
    assert r.status_code == 200 and r.json["version"] == 2


# ------------------------------------------------------------------ micro-loans

def test_micro_loan_schedule_repayments_and_overdue(client, tree):
    prog = create_programme(client, budget=100_000_000, kind="micro_loan", sources=("union_fund",))
    r = client.post("/api/v1/cases", headers=CDCS, json=case_body(
        prog["id"], amount=10_000_000, hardship_type="job_loss", loan={"term_months": 3}, requested_on="2025-01-10"))
    assert r.status_code == 201 and r.json["loan"]["principal"] == 10_000_000
    loan_id = r.json["id"]
    r = client.post(f"/api/v1/cases/{loan_id}/approve", headers=COMMUNE, json={"approved_on": "2025-01-20"})
    assert r.status_code == 200
    r = client.post(f"/api/v1/loans/{loan_id}/repayments", headers=CDCS, json={"amount": 1000})
    assert r.status_code == 409  # not disbursed yet
    r = client.post(f"/api/v1/cases/{loan_id}/disburse", headers=CDCS, json={"disbursed_on": "2025-01-31"})
    assert r.status_code == 200
    loan = client.get(f"/api/v1/loans/{loan_id}?as_of=2025-03-01", headers=CDCS).json
    assert [(i["due_on"], i["amount"]) for i in loan["instalments"]] == [
        ("2025-02-28", 3_333_333), ("2025-03-31", 3_333_333), ("2025-04-30", 3_333_334)]
    assert (loan["status"], loan["overdue_amount"], loan["days_overdue"]) == ("overdue", 3_333_333, 1)

    pay = {**CDCS, "Idempotency-Key": "repay-1"}
    r = client.post(f"/api/v1/loans/{loan_id}/repayments", headers=pay, json={"amount": 2_000_000, "paid_on": "2025-03-05"})
    assert r.status_code == 201 and r.json["outstanding"] == 8_000_000 and r.json["status"] == "overdue"
    r = client.post(f"/api/v1/loans/{loan_id}/repayments", headers=pay, json={"amount": 2_000_000, "paid_on": "2025-03-05"})
    assert r.status_code == 200 and r.json["outstanding"] == 8_000_000  # the retry paid nothing more
    r = client.post(f"/api/v1/loans/{loan_id}/repayments", headers=CDCS, json={"amount": 8_000_001, "paid_on": "2025-03-06"})
    assert r.status_code == 422 and "amount" in r.json["errors"]
    r = client.post(f"/api/v1/loans/{loan_id}/repayments", headers=CDCS, json={"amount": 1_333_333, "paid_on": "2025-03-10"})
    assert r.status_code == 201 and r.json["status"] == "current"
    assert [i["status"] for i in r.json["instalments"]] == ["paid_late", "pending", "pending"]

    listed = client.get("/api/v1/loans?as_of=2025-04-15&status=overdue", headers=COMMUNE).json["items"]
    assert [(l["id"], l["overdue_amount"]) for l in listed] == [(loan_id, 3_333_333)]
    assert client.get("/api/v1/loans", headers=token("prov2")).json["items"] == []
    events = tree.cases.find_one({"_id": loan_id})["outbox"]
    repaid = [e["data"] for e in events if e["type"] == "welfare.loan.repaid.v1"]
    assert [(e["amount"], e["outstanding"], e["late"]) for e in repaid] == [
        (2_000_000, 8_000_000, True), (1_333_333, 6_666_667, True)]
    assert repaid[0]["principal"] == 10_000_000 and repaid[0]["unit_id"] == "cdcs"


def test_openapi_documents_every_endpoint_with_its_errors(client):
    spec = client.get("/openapi.json").json
    approve = spec["paths"]["/api/v1/cases/{case_id}/approve"]["post"]["responses"]
    assert {"200", "400", "403", "404", "409", "412", "422"} <= set(approve)
    post_case = spec["paths"]["/api/v1/cases"]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in post_case["parameters"])
    assert client.get("/healthz").status_code == 200


def test_racing_repayments_are_all_recorded_once(app, client, tree):
    prog = create_programme(client, budget=100_000_000, kind="micro_loan", sources=("union_fund",))
    loan_id = client.post("/api/v1/cases", headers=CDCS, json=case_body(
        prog["id"], amount=10_000_000, loan={"term_months": 10}, requested_on="2025-01-02")).json["id"]
    assert client.post(f"/api/v1/cases/{loan_id}/approve", headers=COMMUNE,
                       json={"approved_on": "2025-01-03"}).status_code == 200
    assert client.post(f"/api/v1/cases/{loan_id}/disburse", headers=CDCS,
                       json={"disbursed_on": "2025-01-05"}).status_code == 200
    statuses = race(6, lambda i: app.test_client().post(
        f"/api/v1/loans/{loan_id}/repayments", headers={**CDCS, "Idempotency-Key": f"k{i}"},
        json={"amount": 1_000_000, "paid_on": "2025-02-05"}).status_code)
    assert statuses == [201] * 6
    loan = client.get(f"/api/v1/loans/{loan_id}?as_of=2025-02-06", headers=CDCS).json
    assert loan["outstanding"] == 4_000_000 and sorted(r["seq"] for r in loan["repayments"]) == [1, 2, 3, 4, 5, 6]
    events = [e for e in tree.cases.find_one({"_id": loan_id})["outbox"] if e["type"] == "welfare.loan.repaid.v1"]
    assert sorted(e["data"]["outstanding"] for e in events) == [4_000_000, 5_000_000, 6_000_000, 7_000_000,
                                                                8_000_000, 9_000_000]


def test_lists_are_cursor_pages_in_their_order(client, tree):
    """Programmes page the latest year first (then by id): each once over pages of any size, the
    last page without a cursor; a cursor that is not a next_cursor is a 400 naming `after`."""
    ids_by_year = []
    for year in (2024, 2026, 2025, 2026, 2025):
        r = client.post("/api/v1/programmes", headers=PROV, json={
            "name": f"Chăm lo {year}", "kind": "hardship_visit", "unit_id": "prov", "year": year,
            "budget": 1_000_000, "funding_sources": ["union_fund"]})
        assert r.status_code == 201, r.json
        ids_by_year.append((-year, r.json["id"]))
    expected = [i for _, i in sorted(ids_by_year)]
    for limit in (1, 2, 5):
        seen, after = [], None
        while True:
            page = client.get("/api/v1/programmes", headers=PROV,
                              query_string={"limit": limit, **({"after": after} if after else {})}).json
            assert len(page["items"]) <= limit and set(page) == {"items", "next_cursor"}
            seen += [p["id"] for p in page["items"]]
            after = page["next_cursor"]
            if after is None:
                break
        assert seen == expected, limit
    bad = client.get("/api/v1/programmes?after=eyIkZ3QiOiIifQ", headers=PROV)  # {"$gt":""}
    assert bad.status_code == 400 and "after" in bad.json["errors"]["query"], bad.json
