"""Members' lifecycle against the real database, with every refusal writing nothing."""
import io

import pytest
from openpyxl import Workbook

from platformkit import mongo

pytestmark = pytest.mark.integration


from tests.membership.aggregates import db  # noqa: E402 - aggregate documents with their outboxes


def snapshot():
    """What a refused command must leave unchanged: every member document, outbox included."""
    return sorted(db().members.find({}), key=lambda d: d["_id"])


def test_whole_lifecycle_with_its_events(api, tree):
    m = api.ok(api.admit(tree["s1"], is_official=True))
    assert m["status"] == "admitted" and m["full_name"] == "Nguyễn Thị Hà"
    # a CĐCS cannot approve its own admission: the level above does
    r = api.post(f"/members/{m['id']}/approve", {}, as_unit=tree["s1"], roles=("officer",))
    assert r.status_code == 422
    m = api.ok(api.post(f"/members/{m['id']}/approve", {"version": m["version"]}, as_unit=tree["c1"], roles=("officer",)))
    assert m["status"] == "active"
    m = api.ok(api.post(f"/members/{m['id']}/card", {}))
    assert m["member_number"].startswith("HCM")
    r = api.post(f"/members/{m['id']}/card", {})
    assert r.status_code == 409
    m = api.ok(api.post(f"/members/{m['id']}/transfer", {"to_unit_id": tree["s4"]}))  # across provinces
    assert m["unit_id"] == tree["s4"]
    m = api.ok(api.post(f"/members/{m['id']}/leave", {"reason": "resigned", "on": "2025-09-01"}))
    assert m["status"] == "left" and m["left_reason"] == "resigned"
    m = api.ok(api.post(f"/members/{m['id']}/reinstate", {}))
    assert m["status"] == "active"
    doc = db().members.find_one({"_id": m["id"]})
    types = [e["type"].split(".")[2] for e in doc["outbox"]]
    assert types == ["admitted", "approved", "card_issued", "transferred", "left", "reinstated"]
    assert [e["aggregateversion"] for e in doc["outbox"]] == [1, 2, 3, 4, 5, 6]
    transferred = doc["outbox"][3]["data"]
    assert transferred["from_ancestors"] == [tree["vn"], tree["hcm"], tree["c1"]]
    assert transferred["ancestors"] == [tree["vn"], tree["hn"], tree["c3"]]
    assert all(e["data"]["is_official"] is True for e in doc["outbox"])


@pytest.mark.parametrize("field, value", [
    ("citizen_id", "12345"), ("citizen_id", "07919000000X"), ("date_of_birth", "17/05/1990"),
    ("gender", "unknown"), ("full_name", ""), ("citizen_id", {"$gt": ""}),
])
def test_invalid_admission_is_400_naming_the_field_and_writes_nothing(api, tree, field, value):
    before = snapshot()
    r = api.admit(tree["s1"], **{field: value}) if field != "full_name" else api.admit(tree["s1"], name=value)
    assert r.status_code == 400 and field in r.get_json()["errors"], r.get_json()
    assert snapshot() == before


def test_duplicate_active_citizen_id_is_409_and_allowed_again_after_leaving(api, tree):
    first = api.ok(api.admit(tree["s1"]))
    before = snapshot()
    r = api.admit(tree["s3"], name="Người khác")
    assert r.status_code == 409 and "citizen_id" in r.get_json()["errors"]
    assert snapshot() == before
    api.ok(api.post(f"/members/{first['id']}/leave", {"reason": "resigned"}))
    again = api.ok(api.admit(tree["s3"]))  # the same person joins another CĐCS later
    # ... so the first record cannot be reinstated while the second is active
    r = api.post(f"/members/{first['id']}/reinstate", {})
    assert r.status_code == 409
    assert api.ok(api.get(f"/members/{again['id']}"))["status"] == "admitted"


def test_refusals_write_nothing(api, tree):
    m = api.ok(api.admit(tree["s1"]))
    before = snapshot()
    r = api.post(f"/members/{m['id']}/transfer", {"to_unit_id": tree["s1"]})
    assert r.status_code == 422 and "to_unit_id" in r.get_json()["errors"]
    r = api.post(f"/members/{m['id']}/transfer", {"to_unit_id": tree["c2"]})  # not a CĐCS
    assert r.status_code == 422
    r = api.post(f"/members/{m['id']}/transfer", {"to_unit_id": "u-nope"})
    assert r.status_code == 404
    r = api.patch(f"/members/{m['id']}", {"phone": "0909000111", "version": m["version"] + 1})
    assert r.status_code == 412
    r = api.post(f"/members/{m['id']}/leave", {"reason": "moved away"})
    assert r.status_code == 400 and "reason" in r.get_json()["errors"]
    r = api.post(f"/members/{m['id']}/card", {})  # not approved yet
    assert r.status_code == 422
    # a caller outside the subtree: another commune, another province
    for unit in (tree["c2"], tree["hn"], tree["s2"]):
        assert api.get(f"/members/{m['id']}", as_unit=unit, roles=("viewer",)).status_code == 403
        assert api.post(f"/members/{m['id']}/leave", {"reason": "resigned"}, as_unit=unit,
                        roles=("officer",)).status_code == 403
        assert api.admit(tree["s1"], cid="079190000777", **{}).status_code == 201 if unit is None else True
    r = api.post(f"/units/{tree['s1']}/members", {"full_name": "X", "citizen_id": "079190000555",
                                                  "date_of_birth": "1990-01-01", "gender": "male"},
                 as_unit=tree["c2"], roles=("officer",))
    assert r.status_code == 403
    # a viewer cannot write even inside its subtree
    r = api.post(f"/members/{m['id']}/leave", {"reason": "resigned"}, as_unit=tree["c1"], roles=("viewer",))
    assert r.status_code == 403
    # no token at all
    assert api.c.get(f"/api/v1/members/{m['id']}").status_code == 401
    assert snapshot() == before


def test_stale_version_on_profile_update(api, tree):
    m = api.ok(api.admit(tree["s1"]))
    updated = api.ok(api.patch(f"/members/{m['id']}", {"full_name": "Nguyễn Thị Thu Hà", "version": m["version"]}))
    assert updated["version"] == m["version"] + 1
    r = api.patch(f"/members/{m['id']}", {"phone": "0911111111", "version": m["version"]})
    assert r.status_code == 412
    assert db().members.find_one({"_id": m["id"]})["phone"] == "0901234567"


def test_search_without_diacritics_and_cursor_pages(api, tree):
    names = ["Nguyễn Thị Hà", "Nguyễn Thị Hải", "Trần Thị Hà", "Lê Văn Đức", "Nguyễn Thị Hà"]
    for i, name in enumerate(names):
        api.ok(api.admit(tree["s1"] if i % 2 else tree["s3"], name=name, cid=f"0791900001{i:02d}"))
    found = api.ok(api.get(f"/units/{tree['hcm']}/members?q=nguyen thi ha"))
    assert sorted(m["full_name"] for m in found["items"]) == ["Nguyễn Thị Hà", "Nguyễn Thị Hà"]
    assert [m["full_name"] for m in api.ok(api.get(f"/units/{tree['hcm']}/members?q=duc"))["items"]] == ["Lê Văn Đức"]
    # the commune sees only its own CĐCS's members
    c1 = api.ok(api.get(f"/units/{tree['c1']}/members", as_unit=tree["c1"], roles=("viewer",)))
    assert len(c1["items"]) == 2
    seen, cursor = [], None
    while True:
        page = api.ok(api.get(f"/units/{tree['hcm']}/members?limit=2" + (f"&after={cursor}" if cursor else "")))
        seen += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 5


def test_dues_follow_the_rule_in_force(api, tree):
    m = api.ok(api.admit(tree["s1"]))
    api.ok(api.post(f"/members/{m['id']}/approve", {}, as_unit=tree["c1"]))
    june = api.ok(api.post(f"/members/{m['id']}/dues", {"month": "2025-06", "salary": 8_000_000, "paid": 80_000}))
    july = api.ok(api.post(f"/members/{m['id']}/dues", {"month": "2025-07", "salary": 8_000_000, "paid": 40_000}))
    assert (june["due"], june["rate_permille"]) == (80_000, 10)
    assert (july["due"], july["rate_permille"]) == (40_000, 5)
    again = api.ok(api.post(f"/members/{m['id']}/dues", {"month": "2025-07", "salary": 8_000_000, "paid": 40_000,
                                                        "on_social_insurance_benefits": True}))
    assert again["due"] == 0 and again["exempt_reason"] == "on_social_insurance_benefits"
    assert [d["month"] for d in api.ok(api.get(f"/members/{m['id']}/dues"))] == ["2025-06", "2025-07"]
    r = api.post(f"/members/{m['id']}/dues", {"month": "2025-13", "salary": 1})
    assert r.status_code == 400 and "month" in r.get_json()["errors"]
    assert db().dues.find_one({"_id": f"{m['id']}:2025-07"})["outbox"][-1]["aggregateversion"] == 2


CSV = """full_name,citizen_id,date_of_birth,gender,phone,employer,is_official
Nguyễn Văn An,079190000201,1991-02-03,nam,0901000001,May Việt,có
Trần Thị Bích,079190000202,1993-04-05,nữ,,May Việt,
Sai Số CCCD,1234,1990-01-01,nam,,,
Quá Trẻ,079190000204,2015-01-01,nữ,,,
Lê Văn Cường,79190000205,1988-08-08,nam,,,
"""


def upload(api, unit_id, name, content):
    return api.c.post(f"/api/v1/units/{unit_id}/members/import",
                      data={"file": (io.BytesIO(content), name)},
                      headers=__import__("tests.membership.conftest", fromlist=["bearer"]).bearer("*", ("admin",)),
                      content_type="multipart/form-data")


def test_csv_import_reports_per_row_and_rerun_admits_nobody_twice(api, tree):
    report = api.ok(upload(api, tree["s1"], "members.csv", CSV.encode("utf-8")))
    assert (report["admitted"], report["rejected"], report["already_admitted"]) == (3, 2, 0)
    by_row = {r["row"]: r for r in report["rows"]}
    assert "citizen_id" in by_row[4]["errors"] and "date_of_birth" in by_row[5]["errors"]
    assert by_row[6]["status"] == "admitted"  # leading zero restored
    assert db().members.count_documents({"unit_id": tree["s1"]}) == 3
    again = api.ok(upload(api, tree["s1"], "members.csv", CSV.encode("utf-8")))
    assert (again["admitted"], again["already_admitted"], again["rejected"]) == (0, 3, 2)
    assert db().members.count_documents({"unit_id": tree["s1"]}) == 3
    an = db().members.find_one({"citizen_id": "079190000201"})
    assert an["gender"] == "male" and an["is_official"] is True and an["full_name"] == "Nguyễn Văn An"


def test_xlsx_import(api, tree):
    wb = Workbook()
    ws = wb.active
    ws.append(["full_name", "citizen_id", "date_of_birth", "gender"])
    ws.append(["Phạm Thị Dung", "079190000301", __import__("datetime").datetime(1995, 1, 2), "nữ"])
    ws.append(["Không Ngày Sinh", "079190000302", None, "nam"])
    buf = io.BytesIO()
    wb.save(buf)
    report = api.ok(upload(api, tree["s3"], "danh-sach.xlsx", buf.getvalue()))
    assert (report["admitted"], report["rejected"]) == (1, 1)
    assert db().members.find_one({"citizen_id": "079190000301"})["date_of_birth"] == "1995-01-02"
    r = upload(api, tree["s3"], "notes.txt", b"hello")
    assert r.status_code == 400 and "file" in r.get_json()["errors"]


def test_implausible_dates_and_months_are_400_naming_the_field(api, tree):
    m = api.ok(api.admit(tree["s1"]))
    api.ok(api.post(f"/members/{m['id']}/approve", {}, as_unit=tree["c1"], roles=("officer",)))
    before = snapshot()
    for month in ("0000-01", "9999-12", "1899-12"):
        r = api.post(f"/members/{m['id']}/dues", {"month": month, "salary": 8_000_000, "paid": 80_000})
        assert r.status_code == 400 and "month" in r.get_json()["errors"], (month, r.get_json())
    r = api.admit(tree["s1"], cid="079190000777", date_of_birth="9999-12-31")
    assert r.status_code == 400 and "date_of_birth" in r.get_json()["errors"]
    r = api.patch(f"/members/{m['id']}", {"date_of_birth": "0001-01-01"})
    assert r.status_code == 400 and "date_of_birth" in r.get_json()["errors"]
    r = api.post(f"/members/{m['id']}/leave", {"reason": "resigned", "on": "9999-12-31"})
    assert r.status_code == 400 and "on" in r.get_json()["errors"]
    assert snapshot() == before


def test_an_import_beyond_its_row_limit_is_413_and_admits_nobody(api, tree):
    from services.membership.service import IMPORT_MAX_ROWS
    rows = "".join(f"Người Thứ {i},0791{i:08d},1990-01-01,nữ\n" for i in range(IMPORT_MAX_ROWS + 1))
    before = snapshot()
    r = upload(api, tree["s1"], "nhieu.csv", ("full_name,citizen_id,date_of_birth,gender\n" + rows).encode())
    assert r.status_code == 413 and "file" in r.get_json()["errors"], r.get_json()
    assert snapshot() == before
