"""Org units against the real database: hierarchy, founding, move, merge, dissolve, committee, rating."""
import pytest

from platformkit import mongo

pytestmark = pytest.mark.integration


from tests.membership.aggregates import db  # noqa: E402 - aggregate documents with their outboxes


def test_hierarchy_queries(api, tree):
    kids = api.ok(api.get(f"/units/{tree['hcm']}/children"))
    assert {u["id"] for u in kids["items"]} == {tree["c1"], tree["c2"]}
    sub = api.ok(api.get(f"/units/{tree['hcm']}/subtree?kind=cdcs"))
    assert {u["id"] for u in sub["items"]} == {tree["s1"], tree["s2"], tree["s3"]}
    anc = api.ok(api.get(f"/units/{tree['s1']}/ancestors"))
    assert [u["code"] for u in anc] == ["TLD", "HCM", "HCM-SG"]
    # a commune official sees the chain only from its own unit down
    anc = api.ok(api.get(f"/units/{tree['s1']}/ancestors", as_unit=tree["c1"], roles=("viewer",)))
    assert [u["code"] for u in anc] == ["HCM-SG"]
    page1 = api.ok(api.get(f"/units/{tree['vn']}/subtree?limit=4"))
    page2 = api.ok(api.get(f"/units/{tree['vn']}/subtree?limit=4&after={page1['next_cursor']}"))
    page3 = api.ok(api.get(f"/units/{tree['vn']}/subtree?limit=4&after={page2['next_cursor']}"))
    ids = [u["id"] for p in (page1, page2, page3) for u in p["items"]]
    assert len(ids) == len(set(ids)) == 9 and page3["next_cursor"] is None


def test_founding_a_cdcs_records_method_and_decision(api, tree):
    s = api.ok(api.get(f"/units/{tree['s1']}"))
    assert s["founding"]["founding_member_count"] == 7 and s["founding"]["decision_no"] == "QĐ-HCM-SG-001"
    new_method = api.unit("Nghiệp đoàn xe ôm Bến Thành", "HCM-SG-NĐ1".replace("Đ", "D"), "cdcs", 4, tree["c1"],
                          sector="informal", founding={"method": "new_method", "founding_member_count": 5,
                                                       "founding_group": ["A", "B", "C"], "decision_no": "12/QĐ",
                                                       "decision_date": "2025-08-01"})
    outbox_types = [e["type"] for e in db().units.find_one({"_id": new_method["id"]})["outbox"]]
    assert outbox_types == ["membership.unit.created.v1", "membership.cdcs.founded.v1"]


@pytest.mark.parametrize("founding, field, status", [
    (None, "founding", 400),
    ({"method": "standard", "founding_member_count": 4, "founding_group": ["A", "B", "C"],
      "decision_no": "1", "decision_date": "2025-01-01"}, "founding.founding_member_count", 422),
    ({"method": "standard", "founding_member_count": 9, "founding_group": ["A", "B"],
      "decision_no": "1", "decision_date": "2025-01-01"}, "founding.founding_group", 422),
    ({"method": "whatever", "founding_member_count": 9, "founding_group": ["A", "B", "C"],
      "decision_no": "1", "decision_date": "2025-01-01"}, "founding", 400),
])
def test_founding_refusals_write_nothing(api, tree, founding, field, status):
    before = db().units.count_documents({})
    body = {"name": "X", "code": "X1", "kind": "cdcs", "level": 4, "parent_id": tree["c1"], "sector": "non_state",
            "founding": founding}
    if founding is None:
        del body["founding"]
    r = api.post("/units", body)
    assert r.status_code == status, r.get_json()
    assert field in str(r.get_json()["errors"])
    assert db().units.count_documents({}) == before


def test_unit_codes_are_unique_and_unknown_fields_refused(api, tree):
    r = api.post("/units", {"name": "Dup", "code": "HCM", "kind": "province", "level": 2, "parent_id": tree["vn"]})
    assert r.status_code == 409 and "code" in r.get_json()["errors"]
    r = api.post("/units", {"name": "X", "code": "X2", "kind": "province", "level": 2, "parent_id": tree["vn"],
                            "colour": "red"})
    assert r.status_code == 400 and "colour" in r.get_json()["errors"]
    r = api.post("/units", {"name": "X", "code": "X3", "kind": "province", "level": 2, "parent_id": tree["vn"],
                            "name2": {"$gt": ""}})
    assert r.status_code == 400
    r = api.post("/units", {"name": {"$gt": ""}, "code": "X4", "kind": "province", "level": 2, "parent_id": tree["vn"]})
    assert r.status_code == 400 and "name" in r.get_json()["errors"]


def test_only_the_platform_operator_creates_a_root(api, tree):
    r = api.post("/units", {"name": "Other", "code": "ROOT2", "kind": "central", "level": 1},
                 as_unit=tree["vn"], roles=("admin",))
    assert r.status_code == 403


def test_rename_with_stale_version_is_412_and_writes_nothing(api, tree):
    u = api.ok(api.get(f"/units/{tree['c1']}"))
    r = api.post(f"/units/{tree['c1']}/rename", {"name": "Công đoàn phường Bến Thành", "version": u["version"] + 5})
    assert r.status_code == 412
    assert api.ok(api.get(f"/units/{tree['c1']}"))["name"] == "Công đoàn phường Sài Gòn"
    renamed = api.ok(api.post(f"/units/{tree['c1']}/rename", {"name": "Công đoàn phường Bến Thành",
                                                             "version": u["version"]}))
    assert renamed["name"] == "Công đoàn phường Bến Thành" and renamed["version"] == u["version"] + 1


def test_move_a_commune_with_members_to_another_province(api, tree):
    m = api.ok(api.admit(tree["s3"]))
    before = db().units.find_one({"_id": tree["c2"]})["version"]
    moved = api.ok(api.post(f"/units/{tree['c2']}/move", {"parent_id": tree["hn"], "effective_date": "2025-07-01"}))
    assert moved["ancestors"] == [tree["vn"], tree["hn"]] and moved["version"] == before + 1
    # the subtree and the members follow
    assert api.ok(api.get(f"/units/{tree['s3']}"))["ancestors"] == [tree["vn"], tree["hn"], tree["c2"]]
    assert db().members.find_one({"_id": m["id"]})["unit_path"] == [tree["vn"], tree["hn"], tree["c2"], tree["s3"]]
    ev = db().units.find_one({"_id": tree["c2"]})["outbox"][-1]
    assert ev["type"] == "membership.unit.moved.v1"
    assert ev["data"]["old_ancestors"] == [tree["vn"], tree["hcm"]] and ev["data"]["ancestors"] == [tree["vn"], tree["hn"]]
    # HCM's official no longer reaches it; Hà Nội's does
    assert api.get(f"/members/{m['id']}", as_unit=tree["hcm"], roles=("viewer",)).status_code == 403
    assert api.get(f"/members/{m['id']}", as_unit=tree["hn"], roles=("viewer",)).status_code == 200


def test_move_refusals(api, tree):
    r = api.post(f"/units/{tree['hcm']}/move", {"parent_id": tree["c1"]})
    assert r.status_code == 422 and "parent_id" in r.get_json()["errors"]
    # a commune official cannot move its unit into another province's subtree
    r = api.post(f"/units/{tree['c1']}/move", {"parent_id": tree["hn"]}, as_unit=tree["hcm"], roles=("officer",))
    assert r.status_code == 403
    assert api.ok(api.get(f"/units/{tree['c1']}"))["parent_id"] == tree["hcm"]


def test_merge_moves_children_and_members_then_closes(api, tree):
    m1 = api.ok(api.admit(tree["s2"], cid="079190000011"))
    m2 = api.ok(api.admit(tree["s2"], name="Trần Văn Nam", cid="079190000012"))
    merged = api.ok(api.post(f"/units/{tree['s2']}/merge", {"into_unit_id": tree["s1"]}))
    assert merged["status"] == "merged" and merged["merged_into"] == tree["s1"]
    for m in (m1, m2):
        doc = db().members.find_one({"_id": m["id"]})
        assert doc["unit_id"] == tree["s1"]
        assert doc["outbox"][-1]["data"]["reason"] == "unit_merged"
    # commune-level merge: CĐCS move under the surviving commune
    r = api.ok(api.post(f"/units/{tree['c2']}/merge", {"into_unit_id": tree["c1"]}))
    assert r["status"] == "merged"
    assert api.ok(api.get(f"/units/{tree['s3']}"))["parent_id"] == tree["c1"]
    assert db().units.find_one({"_id": tree["c2"]})["outbox"][-1]["type"] == "membership.unit.merged.v1"


def test_dissolve_refused_while_members_remain_and_no_admission_after(api, tree):
    m = api.ok(api.admit(tree["s4"]))
    r = api.post(f"/units/{tree['s4']}/dissolve", {})
    assert r.status_code == 422
    api.ok(api.post(f"/members/{m['id']}/leave", {"reason": "resigned"}))
    assert api.ok(api.post(f"/units/{tree['s4']}/dissolve", {}))["status"] == "dissolved"
    before = db().members.count_documents({})
    r = api.admit(tree["s4"], cid="001190000099")
    assert r.status_code == 422 and "unit_id" in r.get_json()["errors"]
    assert db().members.count_documents({}) == before


def test_committee_consolidation(api, tree):
    a = api.ok(api.admit(tree["s1"], cid="079190000021"))
    b = api.ok(api.admit(tree["s1"], name="Võ Minh Tuấn", cid="079190000022"))
    for m in (a, b):
        api.ok(api.post(f"/members/{m['id']}/approve", {}, as_unit=tree["c1"], roles=("officer",)))
    r = api.put(f"/units/{tree['s1']}/committee", {"term": "2023-2028", "date": "2025-03-01",
                                                   "positions": [{"member_id": a["id"], "position": "vice_chair"}]})
    assert r.status_code == 422 and "positions" in r.get_json()["errors"]
    u = api.ok(api.put(f"/units/{tree['s1']}/committee", {"term": "2023-2028", "date": "2025-03-01", "positions": [
        {"member_id": a["id"], "position": "chair"}, {"member_id": b["id"], "position": "vice_chair"}]}))
    assert u["committee"]["positions"][0]["full_name"] == "Nguyễn Thị Hà"
    assert db().units.find_one({"_id": tree["s1"]})["outbox"][-1]["type"] == "membership.committee.consolidated.v1"


def test_rating_proposed_then_confirmed_by_the_level_above(api, tree):
    young = api.unit("CĐCS Mới", "HCM-SG-NEW", "cdcs", 4, tree["c1"], sector="non_state", effective="2025-06-01")
    r = api.post(f"/units/{young['id']}/ratings", {"year": 2025, "rating": "good"}, as_unit=young["id"], roles=("officer",))
    assert r.status_code == 422 and "year" in r.get_json()["errors"]
    api.ok(api.post(f"/units/{tree['s1']}/ratings", {"year": 2025, "rating": "excellent"},
                    as_unit=tree["s1"], roles=("officer",)))
    r = api.post(f"/units/{tree['s1']}/ratings/2025/confirm", {}, as_unit=tree["s1"], roles=("officer",))
    assert r.status_code == 422  # a CĐCS does not confirm its own rating
    u = api.ok(api.post(f"/units/{tree['s1']}/ratings/2025/confirm", {"rating": "good"},
                        as_unit=tree["c1"], roles=("officer",)))
    assert u["ratings"]["2025"] == {"rating": "good", "status": "confirmed", "proposed_by": tree["s1"],
                                    "confirmed_by": tree["c1"]}


def test_openapi_documents_every_endpoint_with_schemas_and_errors(api):
    spec = api.c.get("/openapi.json").get_json()
    assert len(spec["paths"]) >= 20
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method == "parameters":
                continue
            codes = set(op["responses"])
            assert {"401", "403"} <= codes, (method, path)
            assert any(c.startswith("2") for c in codes), (method, path)
            if method in ("post", "put", "patch"):
                assert "requestBody" in op, (method, path)
