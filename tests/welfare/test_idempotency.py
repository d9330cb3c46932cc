"""Idempotency-Key on every POST of welfare that creates something (programmes, cases, loan
repayments), against the real database: a retry with the same key creates nothing and answers with
the same id; the header is documented on each of them."""
from __future__ import annotations

import pytest

from tests.welfare.conftest import token
from tests.welfare.test_api import case_body, race, snapshot

pytestmark = pytest.mark.integration

PROV, COMMUNE, CDCS = token("prov"), token("commune"), token("cdcs")
CREATING = ["/api/v1/programmes", "/api/v1/cases", "/api/v1/loans/{case_id}/repayments"]
PROGRAMME = {"name": "Tết Sum vầy 2026", "kind": "tet_gift", "unit_id": "prov", "year": 2026,
             "budget": 50_000_000, "funding_sources": ["union_fund"]}


def test_every_creating_post_takes_the_header(client):
    spec = client.get("/openapi.json").json
    for path in CREATING:
        params = spec["paths"][path]["post"]["parameters"]
        assert any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in params), path
    for path, item in spec["paths"].items():
        if "201" in item.get("post", {}).get("responses", {}):
            assert path in CREATING, path


def test_a_retried_programme_creates_one_and_answers_the_first(app, client, tree):
    headers = {**PROV, "Idempotency-Key": "prg-1"}
    first = client.post("/api/v1/programmes", headers=headers, json=PROGRAMME)
    assert first.status_code == 201, first.json
    written = snapshot(tree)
    again = client.post("/api/v1/programmes", headers=headers, json=PROGRAMME)
    assert (again.status_code, again.json) == (201, first.json)
    assert snapshot(tree) == written
    other = client.post("/api/v1/programmes", headers=headers, json={**PROGRAMME, "budget": 1})
    assert other.status_code == 422 and list(other.json["errors"]) == ["Idempotency-Key"]
    assert snapshot(tree) == written
    # another caller's same key is another key
    mine = client.post("/api/v1/programmes", json=PROGRAMME,
                       headers={**token("prov", sub="someone-else"), "Idempotency-Key": "prg-1"})
    assert mine.status_code == 201 and mine.json["id"] != first.json["id"]
    # racing retries: one programme
    racing = {**PROV, "Idempotency-Key": "prg-race"}
    results = race(5, lambda i: app.test_client().post("/api/v1/programmes", headers=racing, json=PROGRAMME))
    assert [r.status_code for r in results] == [201] * 5 and len({r.json["id"] for r in results}) == 1
    assert tree.programmes.count_documents({}) == 3


def test_a_retried_case_and_repayment_create_one_each(client, tree):
    prog = client.post("/api/v1/programmes", headers=PROV, json={
        **PROGRAMME, "kind": "micro_loan", "year": 2025, "budget": 100_000_000}).json["id"]
    body = case_body(prog, amount=10_000_000, hardship_type="job_loss", loan={"term_months": 5})
    headers = {**CDCS, "Idempotency-Key": "case-1"}
    first = client.post("/api/v1/cases", headers=headers, json=body)
    again = client.post("/api/v1/cases", headers=headers, json=body)
    assert first.status_code == 201 and again.json["id"] == first.json["id"]
    assert tree.cases.count_documents({}) == 1
    loan = first.json["id"]
    assert client.post(f"/api/v1/cases/{loan}/approve", headers=COMMUNE,
                       json={"approved_on": "2025-03-02"}).status_code == 200
    assert client.post(f"/api/v1/cases/{loan}/disburse", headers=CDCS,
                       json={"disbursed_on": "2025-03-05"}).status_code == 200
    pay = {**CDCS, "Idempotency-Key": "repay-1"}
    one = client.post(f"/api/v1/loans/{loan}/repayments", headers=pay, json={"amount": 1_000_000,
                                                                            "paid_on": "2025-04-01"})
    two = client.post(f"/api/v1/loans/{loan}/repayments", headers=pay, json={"amount": 1_000_000,
                                                                            "paid_on": "2025-04-01"})
    assert one.status_code == 201 and two.json["id"] == one.json["id"]
    assert len(tree.cases.find_one({"_id": loan})["loan"]["repayments"]) == 1
