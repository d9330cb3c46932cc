"""Fuzzing the HTTP surface of every service, in-process (Flask/WSGI, no socket), on the test's own
databases (`isolated`):

1. schemathesis walks each service's /openapi.json, positive and negative examples per operation,
   deterministic (hypothesis `derandomize=True`, no example database, no shrinking), and checks
   that no answer is a 5xx, that every answer matches its documented schema and status codes.
   The databases hold real resources of every kind (tests/support/seed_all.py: two provinces'
   units and members, courses, classes in each status, enrolments, a certificate, a session,
   programmes, cases in each status, a micro-loan, targets; training, welfare and reporting fed
   membership's real events), and most generated ids, in the path, the query and the body, are
   replaced by real ones (`realise`), so requests reach the state rules (transitions from every
   status, with valid and invalid bodies) and not only validation and 404; operations that end a
   resource's life run last (`stage`). The answers per service by class (2xx, 400, 401/403, 404,
   409/412/422, 5xx) are printed at the end (`-s`; FUZZ_DETAIL=1: per operation and status);
   FUZZ_REAL_IDS=0 runs the old blind fuzzing (no seed besides three membership writes) for
   comparison, FUZZ_EXAMPLES=n more examples per operation and mode (default 10).
2. Hostile bodies on the main write endpoints: a Mongo operator object in every string field,
   wrong types, an unknown `$` key, a JSON array, an empty body, invalid UTF-8 and a body over
   MAX_CONTENT_LENGTH. Each answers 4xx with the JSON error body (naming the field where there is
   one) and nothing is written.

Budget: the whole file runs in well under two minutes on a 2-core machine."""
from __future__ import annotations

import collections
import copy
import importlib
import json
import os
from types import SimpleNamespace
from typing import Any, Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from platformkit import mongo
from platformkit.auth import mint
from tests.support.seed_all import SEEDERS, bearer, seed_membership as seed_all_membership

pytestmark = pytest.mark.integration

APPS = {
    "membership": "services.membership.app",
    "training": "services.training.app",
    "welfare": "services.welfare.app",
    "reporting": "services.reporting.app",
}
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
_N = int(os.environ.get("FUZZ_EXAMPLES", "10"))  # per operation and mode; raise it for a longer hunt
EXAMPLES = {GenerationMode.POSITIVE: _N, GenerationMode.NEGATIVE: _N}
MAX_BODY = 20 * 1024 * 1024  # platformkit.web sets MAX_CONTENT_LENGTH to this


def admin_headers() -> dict[str, str]:
    return {"Authorization": "Bearer " + mint("fuzzer", "*", ["admin"])}


def make_app(service: str):
    return importlib.import_module(APPS[service]).create_app()


def document_counts(service: str) -> dict[str, int]:
    db = mongo.database(service)
    return {name: db[name].count_documents({}) for name in sorted(db.list_collection_names())}


# ---------------------------------------------------------------- seed data (cheap: three writes)
ROOT = {"name": "Tổng Liên đoàn Lao động Việt Nam", "code": "FUZZ-ROOT", "kind": "central", "level": 1,
        "effective_date": "2020-01-01"}
FOUNDING = {"method": "standard", "founding_member_count": 7, "founding_group": ["Lê Văn An", "Phạm Thị Bình", "Hoàng Công"],
            "decision_no": "QĐ-01", "decision_date": "2020-01-01"}
MEMBER = {"full_name": "Nguyễn Thị Hà", "citizen_id": "079190000001", "date_of_birth": "1990-05-17",
          "gender": "female", "phone": "0901234567", "employer": "Công ty TNHH May Việt"}


def seed_membership(client) -> dict[str, str]:
    """A root unit, a CĐCS under it and one admitted member, so that generated requests with these
    ids reach real documents."""
    headers = admin_headers()

    def post(path, body):
        resp = client.post("/api/v1" + path, json=body, headers=headers)
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()["id"]

    root = post("/units", ROOT)
    cdcs = post("/units", {"name": "CĐCS Công ty May Việt", "code": "FUZZ-CDCS", "kind": "cdcs", "level": 2,
                           "parent_id": root, "sector": "non_state", "effective_date": "2020-01-01",
                           "founding": FOUNDING})
    member = post(f"/units/{cdcs}/members", MEMBER)
    return {"root": root, "cdcs": cdcs, "member": member}


# ---------------------------------------------------------------- 1. schemathesis
REAL_IDS = os.environ.get("FUZZ_REAL_IDS", "1") != "0"

# Which pool of real values a parameter or body field of this name draws from.
POOL_OF = {
    "unit_id": "unit", "parent_id": "unit", "into_unit_id": "unit", "to_unit_id": "unit",
    "organising_unit_id": "unit", "owner_unit_id": "unit",
    "member_id": "member", "present": "member",
    "course_id": "course", "class_id": "class", "number": "certificate", "session_id": "session",
    "programme_id": "programme", "case_id": "case",
    "year": "year", "period": "period", "indicators": "indicators", "first": "month", "last": "month",
    "date": "day", "on": "day", "held_on": "day", "requested_on": "day", "approved_on": "day",
    "rejected_on": "day", "disbursed_on": "day", "paid_on": "day", "as_of": "day", "effective_date": "day",
    "date_of_birth": "day", "decision_date": "day", "start_date": "day", "admitted_on": "day", "month": "month",
}


def pools(s) -> dict[str, list]:
    """The real values of the seed `s`, by pool. Ids of resources the service does not have (e.g.
    courses in welfare) are left out: a generated value is then kept."""
    # hypothesis favours the first items of a pool: the ones most requests can succeed on
    out = {
        "unit": [s.ca, s.sa, s.pa, s.sa2, s.ca2, s.vn, s.sm, s.sd, s.smv, s.pb, s.cb, s.sb],
        "member": [s.ma, s.m_transfer, s.m_leave, s.m_admitted, s.mb],
        "year": [2024, 2025],
        # the edges last: the longest allowed span, one month more, and ranges far out of bounds
        "period": ["2025", "2025-07", "2025-Q1", "2025-H1", "2025-SY", "2025-01..2025-06", "2016-01..2025-12",
                   "2016-01..2026-01", "0001-01..9999-12", "1900-SY", "2100-H2"],
        "indicators": ["members.active", "members.admitted,members.active", "members.female_pct,dues.collected"],
        "month": ["2025-01", "2025-06", "2025-12", "2016-01", "1900-01", "2100-12", "0000-01", "9999-12", "1899-12"],
        "day": ["2025-10-06", "2025-03-02", "2025-10-07", "2025-02-10", "2025-12-31",  # class days first
                "1900-01-01", "2100-12-31", "1899-12-31", "0001-01-01", "9999-12-31", "2101-01-01"],
    }
    optional = {"course": ["course", "course_retire"],
                "class": ["k_run", "k_start", "k_enrol", "k_plan", "k_close", "k_withdraw", "k_done", "k_cancel"],
                "certificate": ["certificate"], "session": ["session"],
                "programme": ["programme", "loan_programme"],
                "case": ["case_approve", "case_reject", "case_disburse", "loan"]}
    for pool, names in optional.items():
        if hasattr(s, names[0]):
            out[pool] = [getattr(s, name) for name in names]
    return out


def realise(case, draw, real: dict[str, list], positive: bool) -> None:
    """Replaces, in place, most generated ids (path, query, body at any depth) by real ones, and
    drops most generated optimistic-lock `version`s (a random one only ever meets 412). Negative
    examples keep more of their generated values, and a value of the wrong type is never replaced
    (the invalid part of a negative example stays invalid)."""
    share = 8 if positive else 5  # in tenths

    def chance(tenths: int) -> bool:
        return draw(st.integers(0, 9)) < tenths

    def swap(key: str, value: Any) -> Any:
        pool = real.get(POOL_OF.get(key, ""))
        if pool:
            if key == "present" and isinstance(value, list) and value and chance(share):
                return [draw(st.sampled_from(pool)) for _ in value]
            if type(value) is type(pool[0]) and chance(share):
                return draw(st.sampled_from(pool))
        return walk(value)

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            out = {k: swap(k, v) for k, v in value.items()}
            if positive and isinstance(out.get("version"), int) and chance(7):
                del out["version"]
            if (positive and isinstance(out.get("amount"), int) and isinstance(out.get("funding"), list)
                    and chance(6)):  # welfare: the funding shares add up to the amount
                out["funding"] = [{"source": "union_fund", "amount": out["amount"]}]
            return out
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    if case.path_parameters:
        case.path_parameters = {k: swap(k, v) for k, v in case.path_parameters.items()}
    if case.query:
        case.query = {k: swap(k, v) for k, v in case.query.items()}
    if isinstance(case.body, (dict, list)) and case.media_type == "application/json":
        case.body = walk(case.body)


# The order operations are fuzzed in (with real ids): reads, creations and work on a resource in its
# current state first, then transitions that move it on, then those that end its useful life (or
# take a member out of a class or unit), so that the seeded classes, courses, cases, members and units
# are still in the states the other operations need when their turn comes (the document's own order
# has `start` before `enrolments` and `close` before `attendance`).
FORWARD = {"open", "start", "approve", "disburse"}
TERMINAL = {"retire", "close", "cancel", "withdraw", "reject", "dissolve", "merge", "move", "transfer", "leave"}


def stage(operation) -> int:
    last = operation.path.rstrip("/").rsplit("/", 1)[-1]
    return 2 if last in TERMINAL else 1 if last in FORWARD else 0


def fuzz(app, path_parameters: dict[str, str] | None = None, real: dict[str, list] | None = None,
         tally: collections.Counter | None = None, headers: dict[str, str] | None = None) -> tuple[int, list[str]]:
    """Every operation of the app's /openapi.json, positive then negative examples. With `real`
    (pools of real values), generated ids are replaced by real ones (`realise`); without it,
    positive examples use `path_parameters` where the operation has such a parameter. Counts the
    answers by class in `tally`. Returns (operations run, failures)."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    headers = headers or admin_headers()
    failures: list[str] = []
    operations = 0
    ordered = [result.ok() for result in schema.get_all_operations()]
    if real:
        ordered.sort(key=stage)
    for operation in ordered:
        operations += 1
        names = {p.name for p in operation.path_parameters}
        known = {k: v for k, v in (path_parameters or {}).items() if k in names}
        succeeded = False
        for mode, examples in EXAMPLES.items():
            strategy = operation.as_strategy(generation_mode=mode,
                                             path_parameters=known if (mode.is_positive and known) else None)

            @given(case=strategy, data=st.data())
            @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def run(case, data):
                nonlocal succeeded
                if real:
                    realise(case, data.draw, real, mode.is_positive)
                response = case.call(headers=headers)
                if tally is not None:
                    tally[status_class(response.status_code)] += 1
                    tally[(operation.label, response.status_code)] += 1
                    succeeded = succeeded or 200 <= response.status_code < 300
                try:
                    case.validate_response(response, checks=CHECKS, headers=headers)
                except (Exception, FailureGroup) as exc:  # noqa: BLE001 - collect all, report at the end
                    failures.append(f"{operation.label} [{mode.value}] {type(exc).__name__}: {exc}"[:3000])

            run()
        if tally is not None:
            tally["operations"] += 1
            tally["operations with a 2xx"] += succeeded
    return operations, failures


def status_class(status: int) -> str:
    """400: refused by validation; 401/403: by authentication or scope; 404: no such resource;
    409/412/422: by a state or business rule, on a real resource."""
    for label, codes in (("400", {400}), ("401/403", {401, 403}), ("404", {404}), ("409/412/422", {409, 412, 422})):
        if status in codes:
            return label
    return "other 4xx" if 400 <= status < 500 else f"{status // 100}xx"


CLASSES = ["2xx", "400", "401/403", "404", "409/412/422", "other 4xx", "5xx"]
COLUMNS = ["requests", *CLASSES, "operations with a 2xx"]
TALLIES: dict[str, collections.Counter] = {}


@pytest.fixture(scope="module")
def tallies():
    """The answers of the fuzzing by service, printed as a table when the module ends (`-s`)."""
    yield TALLIES
    if TALLIES:
        title = "real ids" if REAL_IDS else "blind ids (FUZZ_REAL_IDS=0)"
        rows = [f"\nOpenAPI fuzzing, {title}: answers per service",
                f"{'service':<11}" + "".join(f"{c:>{max(10, len(c) + 2)}}" for c in COLUMNS)]
        for service, tally in TALLIES.items():
            tally["requests"] = sum(tally[c] for c in (*CLASSES, "3xx", "1xx"))
            cells = [f"{tally[c]}" + (f"/{tally['operations']}" if c.startswith("operations") else "") for c in COLUMNS]
            rows.append(f"{service:<11}" + "".join(f"{v:>{max(10, len(c) + 2)}}" for v, c in zip(cells, COLUMNS)))
        if os.environ.get("FUZZ_DETAIL"):  # every operation's answers by status code
            for service, tally in TALLIES.items():
                by_op: dict[str, dict[int, int]] = collections.defaultdict(dict)
                for key, n in tally.items():
                    if isinstance(key, tuple):
                        by_op[key[0]][key[1]] = n
                rows += [f"{service} {op}: {dict(sorted(codes.items()))}" for op, codes in by_op.items()]
        print("\n".join(rows))


def seed_for_fuzzing(service: str):
    """The app, with real resources of every kind in its database, the pools of their ids, and the
    token to fuzz with: membership's is the platform operator's (`*`, who alone creates units at any
    level); the others' is an admin and officer of the central unit (VN), whose scope is everything
    and who, unlike `*`, is a union level that may decide (e.g. approve a welfare case)."""
    s = SimpleNamespace()
    seed_all_membership(s)
    app = SEEDERS[service](s)
    if service == "membership":  # a rating to confirm, a member who left (to reinstate)
        for path, body in ((f"/units/{s.sa}/ratings", {"year": 2024, "rating": "good"}),
                           (f"/members/{s.m_leave}/leave", {"reason": "resigned", "on": "2025-06-30"})):
            resp = app.test_client().post("/api/v1" + path, json=body, headers=admin_headers())
            assert resp.status_code == 200, resp.get_json()
    return app, pools(s), admin_headers() if service == "membership" else bearer(s.vn)


@pytest.mark.parametrize("service", list(APPS))
def test_openapi_fuzz(isolated, tallies, service):
    tally = tallies.setdefault(service, collections.Counter())
    if REAL_IDS:
        app, real, headers = seed_for_fuzzing(service)
        operations, failures = fuzz(app, real=real, tally=tally, headers=headers)
    else:
        app = make_app(service)
        params = None
        if service == "membership":
            seeded = seed_membership(app.test_client())
            params = {"unit_id": seeded["cdcs"], "member_id": seeded["member"]}
        operations, failures = fuzz(app, params, tally=tally)
    assert operations >= 5, f"{service}: only {operations} operations in /openapi.json"
    assert not failures, f"{len(failures)} failures:\n\n" + "\n\n".join(failures)


# ---------------------------------------------------------------- 2. hostile bodies
OPERATOR = {"$gt": ""}

# (service, method, path; {unit}/{cdcs} are filled in from the seed) -> a body the schema accepts
ENDPOINTS = {
    "membership units": ("membership", "POST", "/api/v1/units",
                         {"name": "CĐCS Trường THPT", "code": "FUZZ-2", "kind": "cdcs", "level": 2,
                          "parent_id": "{root}", "sector": "public_admin", "effective_date": "2021-02-03",
                          "founding": FOUNDING}),
    "membership members": ("membership", "POST", "/api/v1/units/{cdcs}/members",
                           {**MEMBER, "citizen_id": "079190000002", "is_official": True,
                            "admitted_on": "2024-01-02"}),
    "training courses": ("training", "POST", "/api/v1/courses",
                         {"code": "ATVSLD-2D", "name": "An toàn, vệ sinh lao động", "description": "Hai ngày",
                          "topic": "osh", "audience": "full_time_officials", "format": "in_person",
                          "duration_days": 2, "min_attendance_percent": 80, "owner_unit_id": "HCM"}),
    "training classes": ("training", "POST", "/api/v1/classes",
                         {"course_id": "c-1", "code": "P1-ATVS-2025-01", "name": "Lớp 1",
                          "organising_unit_id": "P1", "start_date": "2025-10-06",
                          "days": ["2025-10-06", "2025-10-07"], "capacity": 30, "format": "in_person",
                          "location": "Hà Nội"}),
    "welfare programmes": ("welfare", "POST", "/api/v1/programmes",
                           {"name": "Thăm hỏi đoàn viên khó khăn 2025", "kind": "hardship_visit",
                            "unit_id": "prov", "year": 2025, "budget": 10_000_000,
                            "funding_sources": ["union_fund"], "description": "Quỹ"}),
    "welfare cases": ("welfare", "POST", "/api/v1/cases",
                      {"programme_id": "p-1", "member_id": "m-1", "hardship_type": "illness",
                       "amount": 2_000_000, "form": "cash", "requested_on": "2025-03-01", "note": "ốm",
                       "funding": [{"source": "union_fund", "amount": 2_000_000}], "loan": {"term_months": 12}}),
    "reporting targets": ("reporting", "PUT", "/api/v1/targets/{root}",
                          {"year": 2025, "indicator": "members.admitted", "value": 1000.0}),
}


def leaves(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """(path, value) for every node below the body (objects, lists and scalars)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key), item
            yield from leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*path, index), item
            yield from leaves(item, (*path, index))


def replaced(body: dict, path: tuple, new: Any) -> dict:
    out = copy.deepcopy(body)
    target = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return out


def field_variants(body: dict) -> Iterator[tuple[str, tuple, Any]]:
    """(label, path of the field, body) for each hostile value in each field."""
    for path, value in leaves(body):
        if isinstance(value, str):
            yield "operator for a string", path, replaced(body, path, OPERATOR)
            yield "number for a string", path, replaced(body, path, 12345)
            yield "list for a string", path, replaced(body, path, ["x"])
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield "operator for a number", path, replaced(body, path, OPERATOR)
            yield "string for a number", path, replaced(body, path, "12")
            yield "non-numeric string for a number", path, replaced(body, path, "twelve")
        elif isinstance(value, dict):
            yield "list for an object", path, replaced(body, path, [value])
            yield "string for an object", path, replaced(body, path, "x")
        elif isinstance(value, list):
            yield "operator for a list", path, replaced(body, path, OPERATOR)
    yield "unknown $ key", ("$where",), {**body, "$where": "sleep(1000)"}
    yield "operator as a key", ("$set",), {**body, "$set": {"status": "active"}}


def names(errors: Any, path: tuple) -> bool:
    """True when the error body's `errors` names the field at `path` (marshmallow nests them; list
    indexes come back as strings, and an error on the whole list stays on the list)."""
    node = errors
    for depth, step in enumerate(path):
        if not isinstance(node, dict):
            return depth > 0
        key = str(step)
        if key not in node:
            return depth > 0 and isinstance(step, int)
        node = node[key]
    return True


def check_error(resp, expect: tuple[int, ...] = (400,)) -> dict:
    assert resp.status_code in expect, (resp.status_code, resp.get_data()[:500])
    assert resp.mimetype == "application/json", resp.mimetype
    err = resp.get_json()
    assert err["status"] == resp.status_code and isinstance(err["code"], str) and err["message"], err
    assert isinstance(err.get("errors", {}), dict), err
    return err


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_hostile_bodies_are_refused_and_write_nothing(isolated, endpoint):
    service, method, path, body = ENDPOINTS[endpoint]
    app = make_app(service)
    client = app.test_client()
    ids = seed_membership(client) if service == "membership" else {"root": "u-root", "cdcs": "u-cdcs"}
    path = path.format(**ids)
    body = json.loads(json.dumps(body).replace('"{root}"', json.dumps(ids["root"])))
    headers = admin_headers()

    def send(data: bytes | None = None, content_type: str | None = "application/json", **kw):
        return client.open(path, method=method, data=data, content_type=content_type, headers=headers, **kw)

    before = document_counts(service)
    problems: list[str] = []

    def expect(label: str, resp, field_path: tuple | None = None, statuses: tuple[int, ...] = (400,)):
        try:
            err = check_error(resp, statuses)
            if field_path is not None:
                assert names(err.get("errors"), field_path), f"errors do not name {field_path}: {err}"
        except AssertionError as exc:
            problems.append(f"{label} {field_path or ''}: {exc}")

    for label, field_path, variant in field_variants(body):
        if label == "string for a number" and isinstance(_at(body, field_path), float):
            continue  # a Float field takes "12" as 12.0 (marshmallow); the non-numeric string is tried
        expect(label, send(json.dumps(variant).encode()), field_path)

    expect("JSON array", send(json.dumps([body]).encode()))
    expect("JSON string", send(b'"just a string"'))
    expect("JSON null", send(b"null"))
    expect("empty body", send(b""))
    expect("empty body, no content type", send(b"", content_type=None))
    expect("truncated JSON", send(json.dumps(body).encode()[:-5]), ("json",))
    expect("invalid UTF-8", send(b'{"name": "\xff\xfe\xfd", "code": "\xc3\x28"}'), ("json",))
    expect("deep nesting", send(b'{"a": ' * 5000 + b"1" + b"}" * 5000), ("json",))
    oversized = json.dumps({**body, "note": "a" * (MAX_BODY + 1024)}).encode()
    expect("oversized body", send(oversized), statuses=(413,))

    after = document_counts(service)
    assert after == before, f"writes happened: {before} -> {after}"
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


def _at(body: Any, path: tuple) -> Any:
    for step in path:
        body = body[step]
    return body


# ---------------------------------------------------------------- regressions the fuzzing found
HUGE = "99999999999999999999"  # > 2**63: BSON cannot carry it, so it must never reach a query


@pytest.mark.parametrize("service, path", [
    ("training", f"/api/v1/courses?limit={HUGE}"),
    ("welfare", f"/api/v1/programmes?limit={HUGE}"),
    ("welfare", f"/api/v1/programmes?year={HUGE}"),
    ("welfare", f"/api/v1/cases?limit={HUGE}"),
    ("welfare", f"/api/v1/loans?limit={HUGE}"),
])
def test_integers_beyond_int64_in_a_query_are_invalid_input(isolated, service, path):
    resp = make_app(service).test_client().get(path, headers=admin_headers())
    err = check_error(resp)
    assert set(err["errors"]["query"]) & {"limit", "year"}, err


def test_error_bodies_keep_errors_an_object(isolated):
    """A body that is not JSON (or is nested past the decoder's limit) says so under `json`."""
    client = make_app("reporting").test_client()
    for data in (b"\x00", b"[" * 100_000 + b"]" * 100_000):
        resp = client.put("/api/v1/targets/u-1", data=data, content_type="application/json",
                          headers=admin_headers())
        assert check_error(resp)["errors"] == {"json": ["Invalid JSON body."]}, data[:20]
