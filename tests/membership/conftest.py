"""Membership tests run the real app (Flask test client, no socket) against the real database."""
import pytest

from platformkit.auth import mint


def bearer(unit: str, roles=("officer",)) -> dict:
    return {"Authorization": "Bearer " + mint("tester", unit, list(roles))}


class Api:
    def __init__(self, client):
        self.c = client

    def post(self, path, body=None, as_unit="*", roles=("admin",), headers=None, **kw):
        return self.c.post("/api/v1" + path, json=body, headers={**bearer(as_unit, roles), **(headers or {})}, **kw)

    def get(self, path, as_unit="*", roles=("admin",), **kw):
        return self.c.get("/api/v1" + path, headers=bearer(as_unit, roles), **kw)

    def put(self, path, body, as_unit="*", roles=("admin",)):
        return self.c.put("/api/v1" + path, json=body, headers=bearer(as_unit, roles))

    def patch(self, path, body, as_unit="*", roles=("admin",)):
        return self.c.patch("/api/v1" + path, json=body, headers=bearer(as_unit, roles))

    def upload(self, unit_id, name, content, as_unit="*", roles=("admin",), headers=None):
        import io
        return self.c.post(f"/api/v1/units/{unit_id}/members/import", data={"file": (io.BytesIO(content), name)},
                           headers={**bearer(as_unit, roles), **(headers or {})}, content_type="multipart/form-data")

    def ok(self, resp, status=(200, 201)):
        assert resp.status_code in ((status,) if isinstance(status, int) else status), resp.get_json()
        return resp.get_json()

    def unit(self, name, code, kind, level, parent=None, sector=None, founding=None, effective="2020-01-01"):
        body = {"name": name, "code": code, "kind": kind, "level": level, "parent_id": parent,
                "effective_date": effective}
        if sector:
            body["sector"] = sector
        if kind == "cdcs":
            body["founding"] = founding or {"method": "standard", "founding_member_count": 7,
                                            "founding_group": ["Lê Văn An", "Phạm Thị Bình", "Hoàng Công"],
                                            "decision_no": f"QĐ-{code}", "decision_date": effective}
        return self.ok(self.post("/units", body))

    def admit(self, unit_id, name="Nguyễn Thị Hà", cid="079190000001", **extra):
        body = {"full_name": name, "citizen_id": cid, "date_of_birth": "1990-05-17", "gender": "female",
                "phone": "0901234567", "employer": "Công ty TNHH May Việt", **extra}
        return self.post(f"/units/{unit_id}/members", body)


@pytest.fixture
def api(isolated):
    from services.membership.app import create_app
    return Api(create_app().test_client())


@pytest.fixture
def tree(api):
    """Vietnam > HCM province > two commune unions > CĐCS; and Hà Nội with one commune."""
    vn = api.unit("Tổng Liên đoàn Lao động Việt Nam", "TLD", "central", 1)
    hcm = api.unit("LĐLĐ Thành phố Hồ Chí Minh", "HCM", "province", 2, vn["id"])
    hn = api.unit("LĐLĐ Thành phố Hà Nội", "HN", "province", 2, vn["id"])
    c1 = api.unit("Công đoàn phường Sài Gòn", "HCM-SG", "commune", 3, hcm["id"])
    c2 = api.unit("Công đoàn xã Bình Chánh", "HCM-BC", "commune", 3, hcm["id"])
    c3 = api.unit("Công đoàn phường Ba Đình", "HN-BD", "commune", 3, hn["id"])
    s1 = api.unit("CĐCS Công ty May Việt", "HCM-SG-001", "cdcs", 4, c1["id"], sector="non_state")
    s2 = api.unit("CĐCS Trường THPT Lê Quý Đôn", "HCM-SG-002", "cdcs", 4, c1["id"], sector="public_admin")
    s3 = api.unit("CĐCS Công ty Điện tử Bình Chánh", "HCM-BC-001", "cdcs", 4, c2["id"], sector="non_state")
    s4 = api.unit("CĐCS Bệnh viện Ba Đình", "HN-BD-001", "cdcs", 4, c3["id"], sector="public_admin")
    return {k: v["id"] for k, v in dict(vn=vn, hcm=hcm, hn=hn, c1=c1, c2=c2, c3=c3, s1=s1, s2=s2, s3=s3, s4=s4).items()}
