"""Officers read Vietnamese: with Accept-Language: vi every error text is Vietnamese, field named,
in one-item answers and in a batch's per-item results alike (real app, real database)."""
from tests.membership.conftest import bearer


def test_errors_in_vietnamese_on_request_and_english_by_default(api, tree):
    c = api.c
    commune = {**bearer(tree["c1"], ("officer",)), "Accept-Language": "vi"}
    body = {"full_name": "Lê Thị Thu", "citizen_id": "12345", "date_of_birth": "1990-01-01", "gender": "female"}
    r = c.post(f"/api/v1/units/{tree['s1']}/members", json=body, headers=commune)
    assert r.status_code == 400 and r.headers["Content-Language"] == "vi"
    vi_text = r.get_json()["errors"]["citizen_id"][0]
    assert "CCCD" in vi_text and vi_text != "citizen ID (CCCD) must be exactly 12 digits"
    assert r.get_json()["message"].startswith("dữ liệu không hợp lệ ở trường 'citizen_id'")
    english = c.post(f"/api/v1/units/{tree['s1']}/members", json=body, headers=bearer(tree["c1"], ("officer",)))
    assert english.get_json()["message"].startswith("invalid input in 'citizen_id'")

    m = api.ok(api.admit(tree["s1"]))
    batch = {"items": [{"member_id": m["id"], "decision": "approve"}, {"member_id": "m-nope", "decision": "approve"}]}
    r = c.post("/api/v1/members/approvals", json=batch, headers=commune)
    results = r.get_json()["results"]
    assert [x["status"] for x in results] == [200, 404]
    assert results[1]["error"]["message"] != "member m-nope not found" and "m-nope" in results[1]["error"]["message"]
