"""Looking a member up by citizen ID or card number, and retried POSTs (Idempotency-Key), on the real
database."""
import threading

import pytest

from platformkit import mongo

pytestmark = pytest.mark.integration

CID = "079190000001"


from tests.membership.aggregates import db  # noqa: E402 - aggregate documents with their outboxes


def snapshot():
    return {name: sorted(db()[name].find({}), key=lambda d: d["_id"]) for name in ("units", "members", "dues")}


# ---------------------------------------------------------------- lookup
def test_lookup_by_citizen_id_and_card_number(api, tree):
    m = api.ok(api.admit(tree["s1"]))
    found = api.ok(api.get(f"/members/lookup?citizen_id={CID}", as_unit=tree["c1"], roles=("viewer",)))
    assert found["id"] == m["id"] and found["status"] == "admitted"
    api.ok(api.post(f"/members/{m['id']}/approve", {}, as_unit=tree["c1"]))
    card = api.ok(api.post(f"/members/{m['id']}/card", {}, as_unit=tree["c1"]))["member_number"]
    assert api.ok(api.get(f"/members/lookup?member_number={card}", as_unit=tree["s1"], roles=("viewer",)))["id"] == m["id"]
    # unknown: 404 naming the field, without echoing the number
    r = api.get("/members/lookup?citizen_id=079190999999")
    assert r.status_code == 404 and "citizen_id" in r.get_json()["errors"] and "079190999999" not in r.get_data(True)
    r = api.get("/members/lookup?member_number=HCM2599999999")
    assert r.status_code == 404 and "member_number" in r.get_json()["errors"]
    # outside the caller's subtree: 403 telling nothing about the member
    for unit in (tree["c2"], tree["hn"], tree["s2"]):
        for query in (f"citizen_id={CID}", f"member_number={card}"):
            r = api.get(f"/members/lookup?{query}", as_unit=unit, roles=("viewer",))
            body = r.get_data(as_text=True)
            assert r.status_code == 403 and r.get_json()["status"] == 403
            assert not any(x in body for x in ("Nguyễn", CID, card, m["id"], tree["s1"], "admitted", "active"))
    # exactly one of the two, well formed: 400 naming the field
    for query, field in (("", "citizen_id"), (f"citizen_id={CID}&member_number={card}", "citizen_id"),
                         ("citizen_id=12345", "citizen_id"), ("member_number=x'1", "member_number"),
                         ("citizen_id[$gt]=", "citizen_id")):  # unknown query parameters are ignored
        r = api.get(f"/members/lookup?{query}")
        assert r.status_code == 400 and field in r.get_json()["errors"]["query"], (query, r.get_json())


def test_lookup_of_a_person_with_former_records(api, tree):
    first = api.ok(api.admit(tree["s1"], admitted_on="2020-01-02"))
    api.ok(api.post(f"/members/{first['id']}/approve", {"on": "2020-02-01"}, as_unit=tree["c1"]))
    api.ok(api.post(f"/members/{first['id']}/leave", {"reason": "resigned", "on": "2022-05-01"}))
    # only a former record: that one
    assert api.ok(api.get(f"/members/lookup?citizen_id={CID}"))["id"] == first["id"]
    second = api.ok(api.admit(tree["s3"], admitted_on="2023-01-02"))
    api.ok(api.post(f"/members/{second['id']}/refuse", {"reason": "Không đủ điều kiện", "on": "2023-02-01"},
                    as_unit=tree["c2"]))
    # two former records: the one that ended last (the refusal of 2023)
    assert api.ok(api.get(f"/members/lookup?citizen_id={CID}"))["id"] == second["id"]
    third = api.ok(api.admit(tree["s4"]))
    # a current record: that one, whatever the former ones
    got = api.ok(api.get(f"/members/lookup?citizen_id={CID}", as_unit=tree["hn"], roles=("viewer",)))
    assert got["id"] == third["id"] and got["status"] == "admitted"
    # the HCM commune that held the first record does not see the person's current Hà Nội record
    assert api.get(f"/members/lookup?citizen_id={CID}", as_unit=tree["c1"], roles=("viewer",)).status_code == 403


# ---------------------------------------------------------------- Idempotency-Key
def unit_body(code):
    return {"name": f"Công đoàn phường {code}", "code": code, "kind": "commune", "level": 3, "effective_date": "2024-01-01"}


def test_a_retried_unit_creation_answers_the_first_unit_and_creates_nothing(api, tree):
    body = {**unit_body("HCM-Q1"), "parent_id": tree["hcm"]}
    key = {"Idempotency-Key": "tao-don-vi-q1"}
    first = api.post("/units", body, headers=key)
    assert first.status_code == 201
    before = snapshot()
    again = api.post("/units", body, headers=key)
    assert again.status_code == 201 and again.get_json() == first.get_json()
    assert snapshot() == before and db().units.count_documents({"code": "HCM-Q1"}) == 1
    # the same key for another request: 422 naming the header; another key: a new request (409, code taken)
    r = api.post("/units", {**body, "name": "Tên khác"}, headers=key)
    assert r.status_code == 422 and "Idempotency-Key" in r.get_json()["errors"]
    assert api.post("/units", body, headers={"Idempotency-Key": "another"}).status_code == 409
    # keys are the caller's: another subject's same key is its own request
    other = {"Authorization": "Bearer " + __import__("platformkit.auth", fromlist=["mint"]).mint("someone-else", "*", ["admin"])}
    r = api.c.post("/api/v1/units", json={**unit_body("HCM-Q3"), "parent_id": tree["hcm"]}, headers={**other, **key})
    assert r.status_code == 201 and r.get_json()["id"] != first.get_json()["id"]
    assert snapshot()["units"] != before["units"]
    # internal fields are never shown
    assert "idempotency" not in first.get_data(as_text=True)


def test_a_retried_admission_answers_the_first_member_and_admits_nobody(api, tree):
    key = {"Idempotency-Key": "ket-nap-ha-2025"}
    body = {"full_name": "Nguyễn Thị Hà", "citizen_id": CID, "date_of_birth": "1990-05-17", "gender": "female"}
    first = api.post(f"/units/{tree['s1']}/members", body, headers=key)
    assert first.status_code == 201
    before = snapshot()
    again = api.post(f"/units/{tree['s1']}/members", body, headers=key)
    assert again.status_code == 201 and again.get_json() == first.get_json()
    assert snapshot() == before and db().members.count_documents({}) == 1
    assert len(db().members.find_one({})["outbox"]) == 1  # one admitted event
    # without the key, the same admission is the duplicate it is
    assert api.post(f"/units/{tree['s1']}/members", body).status_code == 409
    # the same key on another CĐCS (another request): 422 naming the header
    r = api.post(f"/units/{tree['s2']}/members", body, headers=key)
    assert r.status_code == 422 and "Idempotency-Key" in r.get_json()["errors"]
    # a retry after the member changed answers the same member as it stands now (same id)
    api.ok(api.post(f"/members/{first.get_json()['id']}/approve", {}, as_unit=tree["c1"]))
    later = api.post(f"/units/{tree['s1']}/members", body, headers=key)
    assert later.status_code == 201 and later.get_json()["id"] == first.get_json()["id"]
    assert later.get_json()["status"] == "active" and db().members.count_documents({}) == 1


def test_racing_retries_with_one_key_admit_once(api, tree):
    from platformkit.auth import Caller
    from services.membership import commands, service
    from services.membership.stores import stores
    caller = Caller("racer", ("officer",), tree["s1"])
    cmd = {"full_name": "Lê Văn Đua", "citizen_id": "079190000321", "date_of_birth": __import__("datetime").date(1991, 1, 1),
           "gender": "male", "phone": None, "employer": None, "is_official": False, "admitted_on": None}
    got, errors = [], []

    def admit():
        try:
            command = commands.AdmitMember(unit_id=tree["s1"], idempotency_key="race", **cmd)
            got.append(service.admit(command, caller, stores())["_id"])
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)
    threads = [threading.Thread(target=admit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(got)) == 1 and len(got) == 4
    assert db().members.count_documents({"citizen_id": "079190000321"}) == 1


def test_a_retried_import_answers_the_first_report(api, tree):
    csv = ("full_name,citizen_id,date_of_birth,gender\nNguyễn Văn An,079190000201,1991-02-03,nam\n"
           "Sai Số,1234,1990-01-01,nam\n").encode()
    key = {"Idempotency-Key": "nhap-dot-1"}
    first = api.ok(api.upload(tree["s1"], "ds.csv", csv, headers=key))
    assert (first["admitted"], first["rejected"]) == (1, 1)
    before = snapshot()
    again = api.upload(tree["s1"], "ds.csv", csv, headers=key)
    assert again.status_code == 200 and again.get_json() == first and again.headers["Idempotent-Replayed"] == "true"
    assert snapshot() == before
    r = api.upload(tree["s1"], "ds.csv", csv + "Thêm Một,079190000203,1992-01-01,nữ\n".encode(), headers=key)
    assert r.status_code == 422 and "Idempotency-Key" in r.get_json()["errors"]
    # without a key, as before: the admitted row is reported as already admitted
    plain = api.ok(api.upload(tree["s1"], "ds.csv", csv))
    assert (plain["admitted"], plain["already_admitted"], plain["rejected"]) == (0, 1, 1)
    assert all(type(plain[k]) is int for k in ("admitted", "already_admitted", "rejected"))


def test_dues_are_naturally_idempotent(api, tree):
    m = api.ok(api.admit(tree["s1"]))
    api.ok(api.post(f"/members/{m['id']}/approve", {}, as_unit=tree["c1"]))
    body = {"month": "2025-07", "salary": 8_000_000, "paid": 40_000}
    first = api.ok(api.post(f"/members/{m['id']}/dues", body))
    before = snapshot()
    assert api.ok(api.post(f"/members/{m['id']}/dues", body)) == first
    assert snapshot() == before  # no second event
    corrected = api.ok(api.post(f"/members/{m['id']}/dues", {**body, "paid": 20_000}))
    assert corrected["paid"] == 20_000
    assert len(db().dues.find_one({"_id": f"{m['id']}:2025-07"})["outbox"]) == 2
