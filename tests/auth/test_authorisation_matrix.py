"""The authorisation matrix: every operation of every service, aimed at one subtree's resources with
a token for ANOTHER subtree, is refused and writes nothing.

    VN (central, platform) > A (province) > A commune > A CĐCS (+ spare CĐCS and a second commune)
                           > B (province) > B commune > B CĐCS

Per service, in-process (Flask test client) on the test's own databases (`isolated`):

1. The operations are read from the app's own /openapi.json and must equal, exactly, the keys of
   that service's CASES table below: an endpoint added later without a case fails here. Every
   Flask route outside the document must be one of PUBLIC (listed with the reason it needs no
   token), so an undocumented route fails too.
2. Real resources of every kind in subtree A are created through the APIs (units, members, dues,
   courses, classes in each status, enrolments, a certificate, a dissemination session,
   programmes, cases in each status, a disbursed micro-loan, targets). Training and welfare read
   units and members from their local view, reporting from its own hierarchy: they get the
   membership events exactly as membership wrote them (its outbox), through the same handlers
   their Kafka consumers run (training's view, welfare's consumer handler, reporting's projector).
   The seeding lives in tests/support/seed_all.py (the OpenAPI fuzzing uses it too).
3. For each operation, in table order:
   - B: the request (valid path, query and body, naming A's resources) with an admin+officer token
     for province B: 403 with the JSON error body (list operations: 403, or 200 with none of A's
     items), and the response never contains A's names or citizen IDs;
   - the same request with no token and with an A-scoped token signed by a wrong key: 401, also
     with unknown ids in the path (no 404 before authentication: existence is not public);
   - every document of every collection of the service's database, outbox fields included, is
     identical before and after those refused requests;
   - the positive control: the same request with a token for province A (admin+officer) gets the
     expected 2xx, so the refusal above was about scope and nothing else.

No case accepts 404 for B: no service hides the existence of another subtree's resources from a
valid token, they all answer 403 (and an unknown id 404, which tells nothing about A).
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

import jwt
import pytest

from platformkit import mongo
from platformkit.web import declaration
from tests.support.seed_all import SEEDERS, bearer, founding, seed_membership

pytestmark = pytest.mark.integration

# Routes outside /openapi.json that answer without a token, and why that is right. Any other route
# that is not an operation of the document fails test (1).
PUBLIC = {
    "/healthz": "liveness probe (platform contract): says only that the process runs",
    "/readyz": "readiness probe: up/down of the database and Kafka, no business data",
    "/metrics": "Prometheus scrape: request and event counters, no business data",
    "/openapi.json": "the API description itself",
    "/docs": "Swagger UI for the description (static page)",
    "/static/<path:filename>": "Flask's static files (the app's own static folder)",
    "/dashboard": "reporting: the dashboard's HTML shell; its data comes from the API with the user's token",
    "/static/<path:name>": "reporting: the dashboard's script and style files",
}
WRONG_KEY = "not-the-platform-secret-0123456789abcdef"


# ---------------------------------------------------------------- cases
@dataclass
class Case:
    """How to call one operation against subtree A. Callables take the seed namespace `s`."""
    path: Callable[[Any], dict] = lambda s: {}          # path parameters
    body: Callable[[Any], Any] | None = None             # JSON body
    query: Callable[[Any], dict] | None = None
    files: Callable[[Any], dict] | None = None           # multipart upload (fresh streams per call)
    kind: str = "scoped"  # scoped: B gets 403 | list: B gets 403 or a list without A's items
    #                       caller: answers about the caller only (B gets 200, nothing of A)
    ok: tuple[int, ...] = (200,)                          # positive control with an A token
    as_unit: str = "pa"                                   # the A unit whose token is the positive control
    expect_in: Callable[[Any], str] | None = None         # A's item that A's answer must contain
    b_queries: Callable[[Any], list[dict]] | None = None  # lists: further B queries (e.g. no filter)


MEMBERSHIP = {
    ("POST", "/api/v1/units"): Case(
        body=lambda s: {"name": "CĐCS Công ty Mới A", "code": "A-NEW", "kind": "cdcs", "level": 4,
                        "parent_id": s.ca, "sector": "non_state", "effective_date": "2020-01-01",
                        "founding": founding("A-NEW")}, ok=(201,)),
    ("GET", "/api/v1/units/{unit_id}"): Case(path=lambda s: {"unit_id": s.sa}),
    ("GET", "/api/v1/units/{unit_id}/children"): Case(path=lambda s: {"unit_id": s.pa}, expect_in=lambda s: s.ca),
    ("GET", "/api/v1/units/{unit_id}/subtree"): Case(path=lambda s: {"unit_id": s.pa}, expect_in=lambda s: s.sa),
    ("GET", "/api/v1/units/{unit_id}/ancestors"): Case(path=lambda s: {"unit_id": s.sa}),
    ("POST", "/api/v1/units/{unit_id}/rename"): Case(
        path=lambda s: {"unit_id": s.sa}, body=lambda s: {"name": "CĐCS Công ty May Ánh Dương A (đổi tên)"}),
    ("POST", "/api/v1/units/{unit_id}/move"): Case(
        path=lambda s: {"unit_id": s.smv}, body=lambda s: {"parent_id": s.ca2}),
    ("POST", "/api/v1/units/{unit_id}/merge"): Case(
        path=lambda s: {"unit_id": s.sm}, body=lambda s: {"into_unit_id": s.sa2}),
    ("POST", "/api/v1/units/{unit_id}/dissolve"): Case(path=lambda s: {"unit_id": s.sd}, body=lambda s: {}),
    ("PUT", "/api/v1/units/{unit_id}/committee"): Case(
        path=lambda s: {"unit_id": s.sa},
        body=lambda s: {"term": "2023-2028", "date": "2023-06-01",
                        "positions": [{"member_id": s.ma, "position": "chair"}]}),
    ("POST", "/api/v1/units/{unit_id}/ratings"): Case(
        path=lambda s: {"unit_id": s.sa}, body=lambda s: {"year": 2024, "rating": "good"}),
    ("POST", "/api/v1/units/{unit_id}/ratings/{year}/confirm"): Case(
        path=lambda s: {"unit_id": s.sa, "year": 2024}, body=lambda s: {}),
    # Batches: B's items naming A's resources are each refused (a 403 in the item's result, the
    # request itself 200 with none of A's ids); A's own items pass.
    ("POST", "/api/v1/units/ratings"): Case(
        kind="list", expect_in=lambda s: s.sa2,
        body=lambda s: {"items": [{"unit_id": s.sa2, "year": 2024, "rating": "good", "action": "propose"}]}),
    ("POST", "/api/v1/units/{unit_id}/members"): Case(
        path=lambda s: {"unit_id": s.sa},
        body=lambda s: {"full_name": "Đỗ Thị Mới A", "citizen_id": "079190000101", "date_of_birth": "1991-02-03",
                        "gender": "female", "employer": "Công ty May Ánh Dương"}, ok=(201,)),
    ("GET", "/api/v1/units/{unit_id}/members"): Case(path=lambda s: {"unit_id": s.sa}, expect_in=lambda s: s.ma),
    ("POST", "/api/v1/units/{unit_id}/members/import"): Case(
        path=lambda s: {"unit_id": s.sa},
        files=lambda s: {"file": (io.BytesIO("full_name,citizen_id,date_of_birth,gender\n"
                                             "Vũ Văn Nhập A,079190000102,1992-04-05,nam\n".encode()), "doan-vien.csv")}),
    ("GET", "/api/v1/members/{member_id}"): Case(path=lambda s: {"member_id": s.ma}),
    ("GET", "/api/v1/members/lookup"): Case(query=lambda s: {"citizen_id": "079190000001"}, expect_in=lambda s: s.ma),
    ("POST", "/api/v1/members/approvals"): Case(
        kind="list", body=lambda s: {"items": [{"member_id": s.m_batch, "decision": "approve"}]},
        expect_in=lambda s: s.m_batch),
    ("POST", "/api/v1/members/cards"): Case(
        kind="list", body=lambda s: {"items": [{"member_id": s.m_card}]}, expect_in=lambda s: s.m_card),
    ("POST", "/api/v1/members/{member_id}/refuse"): Case(
        path=lambda s: {"member_id": s.m_refuse}, body=lambda s: {"reason": "Chưa đủ điều kiện"}),
    ("PATCH", "/api/v1/members/{member_id}"): Case(
        path=lambda s: {"member_id": s.ma}, body=lambda s: {"phone": "0907654321"}),
    ("POST", "/api/v1/members/{member_id}/approve"): Case(path=lambda s: {"member_id": s.m_admitted}, body=lambda s: {}),
    ("POST", "/api/v1/members/{member_id}/card"): Case(path=lambda s: {"member_id": s.ma}, body=lambda s: {}),
    # The member's current unit is scope-checked on the path; the destination decides whether it
    # moves now (inside the caller's subtree, as here) or becomes a request the receiving side
    # decides (tests/auth/test_hierarchy_rules.py: another subtree's officer gets a request).
    ("POST", "/api/v1/members/{member_id}/transfer"): Case(
        path=lambda s: {"member_id": s.m_transfer}, body=lambda s: {"to_unit_id": s.sa2}),
    ("POST", "/api/v1/members/{member_id}/transfer-request/cancel"): Case(
        path=lambda s: {"member_id": s.m_outgoing}, body=lambda s: {}),
    # Requests from B into A: only A (the receiving side) accepts or refuses; B, the sender, is 403.
    ("GET", "/api/v1/units/{unit_id}/transfer-requests"): Case(
        path=lambda s: {"unit_id": s.sa}, expect_in=lambda s: s.m_incoming),
    ("POST", "/api/v1/units/{unit_id}/transfer-requests/{member_id}/accept"): Case(
        path=lambda s: {"unit_id": s.sa, "member_id": s.m_incoming}, body=lambda s: {}),
    ("POST", "/api/v1/units/{unit_id}/transfer-requests/{member_id}/refuse"): Case(
        path=lambda s: {"unit_id": s.sa, "member_id": s.m_incoming2}, body=lambda s: {"reason": "Không đủ chỉ tiêu"}),
    ("POST", "/api/v1/units/{unit_id}/scheduled-changes/{change_id}/cancel"): Case(
        path=lambda s: {"unit_id": s.sa2, "change_id": s.change_sa2}, body=lambda s: {}),
    ("POST", "/api/v1/members/{member_id}/leave"): Case(
        path=lambda s: {"member_id": s.m_leave}, body=lambda s: {"reason": "resigned"}),
    ("POST", "/api/v1/members/{member_id}/reinstate"): Case(path=lambda s: {"member_id": s.m_leave}, body=lambda s: {}),
    ("POST", "/api/v1/members/{member_id}/dues"): Case(
        path=lambda s: {"member_id": s.ma}, body=lambda s: {"month": "2025-07", "salary": 10_000_000, "paid": 100_000}),
    ("GET", "/api/v1/members/{member_id}/dues"): Case(path=lambda s: {"member_id": s.ma}),
}

TRAINING = {
    ("POST", "/api/v1/courses"): Case(
        body=lambda s: {"code": "A-KNDP", "name": "Kỹ năng đối thoại tỉnh A", "topic": "collective_bargaining",
                        "audience": "cdcs_chairs", "duration_days": 1, "owner_unit_id": s.pa}, ok=(201,)),
    ("GET", "/api/v1/courses"): Case(
        kind="list", query=lambda s: {"unit_id": s.pa}, expect_in=lambda s: s.course,
        b_queries=lambda s: [{}, {"topic": "osh"}]),
    ("GET", "/api/v1/courses/{course_id}"): Case(path=lambda s: {"course_id": s.course}),
    ("POST", "/api/v1/courses/{course_id}/retire"): Case(path=lambda s: {"course_id": s.course_retire}),
    ("POST", "/api/v1/classes"): Case(
        body=lambda s: {"course_id": s.course, "code": "A-ATVS-NEW", "name": "Lớp ATVSLĐ mới tỉnh A",
                        "organising_unit_id": s.ca, "start_date": "2025-11-03", "capacity": 20}, ok=(201,)),
    ("GET", "/api/v1/classes"): Case(
        kind="list", query=lambda s: {"unit_id": s.ca}, expect_in=lambda s: s.k_done,
        b_queries=lambda s: [{}, {"course_id": s.course}]),
    ("GET", "/api/v1/classes/{class_id}"): Case(path=lambda s: {"class_id": s.k_done}),
    ("POST", "/api/v1/classes/{class_id}/open"): Case(path=lambda s: {"class_id": s.k_plan}),
    ("POST", "/api/v1/classes/{class_id}/start"): Case(path=lambda s: {"class_id": s.k_start}),
    ("POST", "/api/v1/classes/{class_id}/close"): Case(path=lambda s: {"class_id": s.k_close}, body=lambda s: {}),
    ("POST", "/api/v1/classes/{class_id}/cancel"): Case(
        path=lambda s: {"class_id": s.k_cancel}, body=lambda s: {"reason": "thiếu giảng viên"}),
    ("POST", "/api/v1/classes/{class_id}/enrolments"): Case(
        path=lambda s: {"class_id": s.k_enrol}, body=lambda s: {"member_id": s.ma}, ok=(201,)),
    ("GET", "/api/v1/classes/{class_id}/enrolments"): Case(path=lambda s: {"class_id": s.k_done}),
    ("POST", "/api/v1/classes/{class_id}/enrolments/{member_id}/withdraw"): Case(
        path=lambda s: {"class_id": s.k_withdraw, "member_id": s.ma}, body=lambda s: {"reason": "bận sản xuất"}),
    # A member's history: filtered by what the caller may see, so B gets an empty list.
    ("GET", "/api/v1/enrolments"): Case(kind="list", query=lambda s: {"member_id": s.ma}, expect_in=lambda s: s.k_done),
    ("POST", "/api/v1/classes/{class_id}/attendance"): Case(
        path=lambda s: {"class_id": s.k_run}, body=lambda s: {"date": "2025-10-06", "present": [s.ma]}),
    ("POST", "/api/v1/classes/{class_id}/enrolments/{member_id}/completion"): Case(
        path=lambda s: {"class_id": s.k_run, "member_id": s.ma}, body=lambda s: {"score": 8.5}),
    ("GET", "/api/v1/certificates/{number}"): Case(path=lambda s: {"number": s.certificate}),
    ("GET", "/api/v1/classes/{class_id}/certificates"): Case(path=lambda s: {"class_id": s.k_done}),
    ("POST", "/api/v1/dissemination-sessions"): Case(
        body=lambda s: {"organising_unit_id": s.pa, "topic": "Nghị quyết Đại hội Công đoàn tỉnh A",
                        "held_on": "2025-09-10", "member_ids": [s.ma],
                        "reached": [{"unit_id": s.sa, "members_reached": 12}]}, ok=(201,)),
    ("GET", "/api/v1/dissemination-sessions"): Case(
        kind="list", query=lambda s: {"unit_id": s.pa}, expect_in=lambda s: s.session, b_queries=lambda s: [{}]),
    ("GET", "/api/v1/dissemination-sessions/{session_id}"): Case(path=lambda s: {"session_id": s.session}),
}

WELFARE = {
    ("POST", "/api/v1/programmes"): Case(
        body=lambda s: {"name": "Tết Sum vầy tỉnh A 2026", "kind": "tet_gift", "unit_id": s.pa, "year": 2026,
                        "budget": 50_000_000, "funding_sources": ["union_fund"]}, ok=(201,)),
    # Lists are the caller's subtree AND the filter: B asking for A's unit gets an empty page.
    ("GET", "/api/v1/programmes"): Case(
        kind="list", query=lambda s: {"unit_id": s.pa}, expect_in=lambda s: s.programme, b_queries=lambda s: [{}]),
    ("GET", "/api/v1/programmes/{programme_id}"): Case(path=lambda s: {"programme_id": s.programme}),
    ("POST", "/api/v1/cases"): Case(
        body=lambda s: {"programme_id": s.programme, "member_id": s.ma, "hardship_type": "illness",
                        "amount": 1_000_000, "form": "cash", "funding": [{"source": "union_fund", "amount": 1_000_000}],
                        "note": "Ốm dài ngày (A)"}, ok=(201,)),
    ("GET", "/api/v1/cases"): Case(
        kind="list", query=lambda s: {"unit_id": s.sa}, expect_in=lambda s: s.case_approve,
        b_queries=lambda s: [{}, {"member_id": s.ma}, {"programme_id": s.programme}]),
    ("GET", "/api/v1/cases/{case_id}"): Case(path=lambda s: {"case_id": s.case_approve}),
    ("POST", "/api/v1/cases/{case_id}/approve"): Case(path=lambda s: {"case_id": s.case_approve}, body=lambda s: {}),
    ("POST", "/api/v1/cases/{case_id}/reject"): Case(
        path=lambda s: {"case_id": s.case_reject}, body=lambda s: {"reason": "không đủ điều kiện"}),
    ("POST", "/api/v1/cases/{case_id}/disburse"): Case(path=lambda s: {"case_id": s.case_disburse}, body=lambda s: {}),
    ("GET", "/api/v1/loans"): Case(
        kind="list", query=lambda s: {"unit_id": s.sa}, expect_in=lambda s: s.loan,
        b_queries=lambda s: [{}, {"member_id": s.ma}]),
    ("GET", "/api/v1/loans/{case_id}"): Case(path=lambda s: {"case_id": s.loan}),
    ("POST", "/api/v1/loans/{case_id}/repayments"): Case(
        path=lambda s: {"case_id": s.loan}, body=lambda s: {"amount": 500_000}, ok=(201,)),
}

PERIOD = {"period": "2025"}
REPORTING = {
    ("GET", "/api/v1/views/{unit_id}"): Case(path=lambda s: {"unit_id": s.ca}, query=lambda s: PERIOD),
    ("GET", "/api/v1/views/{unit_id}/children"): Case(path=lambda s: {"unit_id": s.pa}, query=lambda s: PERIOD),
    ("GET", "/api/v1/views/{unit_id}/series"): Case(
        path=lambda s: {"unit_id": s.ca},
        query=lambda s: {"indicator": "members.admitted", "first": "2025-01", "last": "2025-12"}),
    ("GET", "/api/v1/views/{unit_id}/ratings"): Case(path=lambda s: {"unit_id": s.pa}, query=lambda s: {"year": 2024}),
    ("GET", "/api/v1/views/{unit_id}/export.csv"): Case(path=lambda s: {"unit_id": s.pa}, query=lambda s: PERIOD),
    ("GET", "/api/v1/views/{unit_id}/export.xlsx"): Case(path=lambda s: {"unit_id": s.pa}, query=lambda s: PERIOD),
    ("PUT", "/api/v1/targets/{unit_id}"): Case(
        path=lambda s: {"unit_id": s.ca}, body=lambda s: {"year": 2025, "indicator": "members.admitted", "value": 120}),
    ("GET", "/api/v1/targets/{unit_id}"): Case(path=lambda s: {"unit_id": s.ca}, query=lambda s: {"year": 2025}),
    # Not about any unit: the catalogue is the same for every authenticated caller, /me describes
    # the caller's own token. B must get its own answer, with nothing of A in it.
    ("GET", "/api/v1/indicators"): Case(kind="caller"),
    ("GET", "/api/v1/me"): Case(kind="caller"),
    # periodic reports (seeded: sa2's 2025-H1 submitted, sa's 2025-SY approved); a unit submits its
    # own report, the level above decides: the positive controls use those units' tokens
    ("GET", "/api/v1/periodic/{unit_id}/{period}/report"): Case(path=lambda s: {"unit_id": s.sa, "period": "2025-H1"}),
    ("PUT", "/api/v1/periodic/{unit_id}/{period}/report"): Case(
        path=lambda s: {"unit_id": s.sa, "period": "2025-H1"}, body=lambda s: {"entered": {"initiatives": 3}},
        as_unit="sa"),
    ("POST", "/api/v1/periodic/{unit_id}/{period}/report/submit"): Case(
        path=lambda s: {"unit_id": s.sa, "period": "2025-H1"}, body=lambda s: {"entered": {"initiatives": 3}},
        as_unit="sa"),
    ("POST", "/api/v1/periodic/{unit_id}/{period}/report/approve"): Case(
        path=lambda s: {"unit_id": s.sa2, "period": "2025-H1"}, body=lambda s: {}, as_unit="ca"),
    ("POST", "/api/v1/periodic/{unit_id}/{period}/report/return"): Case(
        path=lambda s: {"unit_id": s.sa, "period": "2025-H1"}, body=lambda s: {"reason": "Thiếu số liệu"},
        as_unit="ca"),
    ("POST", "/api/v1/periodic/{unit_id}/{period}/report/reopen"): Case(
        path=lambda s: {"unit_id": s.sa, "period": "2025-SY"}, body=lambda s: {"reason": "Sai số lao động"},
        as_unit="ca"),
    ("GET", "/api/v1/periodic/{unit_id}/{period}/report/history"): Case(
        path=lambda s: {"unit_id": s.sa, "period": "2025-SY"}),
    ("GET", "/api/v1/periodic/{unit_id}/{period}/report/export.csv"): Case(
        path=lambda s: {"unit_id": s.sa2, "period": "2025-H1"}),
    ("GET", "/api/v1/periodic/{unit_id}/{period}/report/export.xlsx"): Case(
        path=lambda s: {"unit_id": s.sa2, "period": "2025-H1"}),
    ("GET", "/api/v1/periodic/{unit_id}/{period}/status"): Case(
        path=lambda s: {"unit_id": s.pa, "period": "2025-H1"}, expect_in=lambda s: s.ca),
    ("GET", "/api/v1/periodic/{unit_id}/{period}/completeness"): Case(
        path=lambda s: {"unit_id": s.pa, "period": "2025-H1"}),
    ("GET", "/api/v1/periodic/{unit_id}/entered"): Case(path=lambda s: {"unit_id": s.ca}, query=lambda s: {"period": "2025-H1"}),
    ("GET", "/api/v1/periodic/settings/{unit_id}"): Case(path=lambda s: {"unit_id": s.pa}),
    ("PUT", "/api/v1/periodic/settings/{unit_id}"): Case(
        path=lambda s: {"unit_id": s.pa}, body=lambda s: {"due_days": {"half_year": {"4": 7, "3": 12}}}),
}

CASES = {"membership": MEMBERSHIP, "training": TRAINING, "welfare": WELFARE, "reporting": REPORTING}


# ---------------------------------------------------------------- plumbing
def wrongly_signed(unit: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": f"forger@{unit}", "unit": unit, "roles": ["admin", "officer"], "iat": now, "exp": now + 3600}
    return {"Authorization": "Bearer " + jwt.encode(claims, WRONG_KEY, algorithm="HS256")}



def documented_operations(client) -> set[tuple[str, str]]:
    spec = client.get("/openapi.json").get_json()
    ops = set()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("get", "put", "post", "patch", "delete", "head", "options", "trace"):
                # no operation may opt out of the document's bearer requirement
                assert op.get("security", spec.get("security")), f"{method.upper()} {path} declares no security"
                ops.add((method.upper(), path))
    assert spec.get("security") == [{"bearerAuth": []}], spec.get("security")
    return ops


def undocumented_routes(app, documented: set[tuple[str, str]]) -> list[str]:
    """Flask routes that are neither an operation of /openapi.json nor a listed PUBLIC route."""
    paths = {p for _, p in documented}
    out = []
    for rule in app.url_map.iter_rules():
        templ = rule.rule
        for conv in ("int:", "string:", "path:", "float:", "uuid:"):
            templ = templ.replace("<" + conv, "<")
        templ = templ.replace("<", "{").replace(">", "}")
        if templ not in paths and rule.rule not in PUBLIC:
            out.append(rule.rule)
    return out


def snapshot(service: str) -> dict[str, list[dict]]:
    """Every document of every collection of the service's database (outbox fields included)."""
    db = mongo.database(service)
    return {name: list(db[name].find().sort("_id", 1)) for name in sorted(db.list_collection_names())}


def differences(before: dict, after: dict) -> list[str]:
    out = []
    for name in sorted(set(before) | set(after)):
        b, a = before.get(name, []), after.get(name, [])
        if b != a:
            bi, ai = {repr(d["_id"]): d for d in b}, {repr(d["_id"]): d for d in a}
            changed = [k for k in bi.keys() & ai.keys() if bi[k] != ai[k]]
            out.append(f"{name}: +{sorted(ai.keys() - bi.keys())} -{sorted(bi.keys() - ai.keys())} changed {changed}")
    return out


def send(client, method: str, url: str, case: Case, s, headers: dict, query: dict | None = None):
    kw: dict[str, Any] = {"headers": headers}
    if query:
        kw["query_string"] = query
    if case.files is not None:
        kw["data"] = case.files(s)
        kw["content_type"] = "multipart/form-data"
    elif case.body is not None:
        kw["json"] = case.body(s)
    return client.open(url, method=method, **kw)


def text_of(resp) -> str:
    if resp.mimetype and ("json" in resp.mimetype or resp.mimetype.startswith("text/")):
        return resp.get_data(as_text=True)
    if "spreadsheet" in (resp.mimetype or ""):
        from openpyxl import load_workbook
        sheet = load_workbook(io.BytesIO(resp.get_data()), read_only=True).active
        return "\n".join(" ".join(str(c) for c in row if c is not None) for row in sheet.iter_rows(values_only=True))
    return resp.get_data(as_text=True)


def run_matrix(service: str, app, s) -> list[str]:
    """Runs every case of the service; returns the problems found (empty: all refused as they must)."""
    client = app.test_client()
    cases = CASES[service]
    documented = documented_operations(client)
    missing, stale = sorted(documented - set(cases)), sorted(set(cases) - documented)
    assert not missing and not stale, (f"{service}: operations without a case: {missing}; "
                                       f"cases for operations no longer documented: {stale}")
    extra_routes = undocumented_routes(app, documented)
    assert not extra_routes, f"{service}: routes neither in /openapi.json nor listed in PUBLIC: {extra_routes}"

    intruder = bearer(s.pb, subject="intruder@B")
    problems: list[str] = []
    for (method, template), case in cases.items():
        label = f"{service} {method} {template}"
        url = template.format(**case.path(s))
        query = case.query(s) if case.query else None
        before = snapshot(service)

        # -- B: refused, or (lists) nothing of A; never A's names
        b_queries = [query] + (case.b_queries(s) if case.b_queries else [])
        for q in b_queries:
            resp = send(client, method, url, case, s, intruder, q)
            body = text_of(resp)
            leaked = [x for x in s.secrets if x in body]
            if leaked:
                problems.append(f"{label} ?{q} [B]: answer contains A's {leaked}: {body[:300]}")
            if case.kind == "scoped" or (case.kind == "list" and resp.status_code == 403):
                err = resp.get_json(silent=True) or {}
                if resp.status_code != 403 or err.get("status") != 403 or not err.get("message"):
                    problems.append(f"{label} ?{q} [B]: {resp.status_code}, want 403: {body[:300]}")
            else:  # list or caller: a 200 answer about B only
                ids = [x for x in s.a_ids if x in body]
                if resp.status_code != 200 or ids:
                    problems.append(f"{label} ?{q} [B]: {resp.status_code}, A's ids {ids}: {body[:300]}")

        # -- no token, and a token for A signed by another key: 401, for A's ids and for unknown
        #    ones alike (without a valid token nobody learns whether an id exists)
        unknown = template.format(**{k: v if isinstance(v, int) else f"no-such-{k}" for k, v in case.path(s).items()})
        for target in dict.fromkeys([url, unknown]):
            for name, headers in (("no token", {}), ("wrong key", wrongly_signed(s.pa))):
                resp = send(client, method, target, case, s, headers, query)
                err = resp.get_json(silent=True) or {}
                if resp.status_code != 401 or err.get("status") != 401:
                    problems.append(f"{label} {target} [{name}]: {resp.status_code}, want 401: {text_of(resp)[:300]}")

        written = differences(before, snapshot(service))
        if written:
            problems.append(f"{label}: refused requests wrote: {written}")

        # -- positive control: the same request for A's own token passes
        resp = send(client, method, url, case, s, bearer(getattr(s, case.as_unit)), query)
        if resp.status_code not in case.ok:
            problems.append(f"{label} [A, control]: {resp.status_code}, want {case.ok}: {text_of(resp)[:400]}")
        elif case.expect_in and case.expect_in(s) not in text_of(resp):
            problems.append(f"{label} [A, control]: the answer lacks A's {case.expect_in(s)}")
    return problems


# ---------------------------------------------------------------- tests
@pytest.mark.parametrize("service", list(CASES))
def test_a_token_for_another_subtree_is_refused_everywhere(isolated, service):
    s = SimpleNamespace()
    seed_membership(s)
    app = SEEDERS[service](s)
    problems = run_matrix(service, app, s)
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


# ---------------------------------------------------------------- roles x operations
ROLE_TOKENS = ("viewer", "service", "officer", "admin")


def capability_of(app, method: str, template: str) -> str:
    """The capability the operation declares (platformkit.web.requires), found through Flask's router."""
    for rule in app.url_map.iter_rules():
        templ = rule.rule
        for conv in ("int:", "string:", "path:"):
            templ = templ.replace("<" + conv, "<")
        if templ.replace("<", "{").replace(">", "}") == template and method in rule.methods:
            return declaration(app.view_functions[rule.endpoint], method)[0]
    raise AssertionError(f"no route for {method} {template}")


def run_role_matrix(service: str, app, s) -> tuple[list[str], dict[str, int]]:
    """Every operation x every role of platformkit.permissions, with a token INSIDE subtree A (the
    province): a role that lacks the operation's capability gets 403 and writes nothing; a read
    by any role passes. Returns (problems, counts)."""
    from platformkit import permissions
    client = app.test_client()
    problems: list[str] = []
    counts = {"refused": 0, "read": 0}
    for (method, template), case in CASES[service].items():
        capability = capability_of(app, method, template)
        url = template.format(**case.path(s))
        query = case.query(s) if case.query else None
        for role in ROLE_TOKENS:
            held = role in permissions.holders(capability)
            if held and method != "GET":
                continue  # writes by holders: the positive controls of the subtree matrix above
            before = snapshot(service)
            resp = send(client, method, url, case, s, bearer(getattr(s, case.as_unit), (role,)), query)
            label = f"{service} {method} {template} as {role} ({capability})"
            if not held:
                counts["refused"] += 1
                if resp.status_code != 403:
                    problems.append(f"{label}: {resp.status_code}, want 403: {text_of(resp)[:200]}")
                written = differences(before, snapshot(service))
                if written:
                    problems.append(f"{label}: refused request wrote {written}")
            else:
                counts["read"] += 1
                if resp.status_code not in case.ok:
                    problems.append(f"{label}: {resp.status_code}, want {case.ok}: {text_of(resp)[:200]}")
    return problems, counts


@pytest.mark.parametrize("service", list(CASES))
def test_each_role_can_do_exactly_what_the_permission_table_says(isolated, service):
    s = SimpleNamespace()
    seed_membership(s)
    app = SEEDERS[service](s)
    problems, counts = run_role_matrix(service, app, s)
    assert counts["refused"] > 0 and counts["read"] > 0, counts
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)
