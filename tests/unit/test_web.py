"""The app factory's contract on a tiny app (Flask test client; no network needed)."""
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from platformkit.auth import mint, require_in_scope
import pytest

from platformkit.web import Conflict, create_app, requires


class ThingIn(Schema):
    name = fields.String(required=True)
    size = fields.Integer(required=True)


def make_app():
    bp = Blueprint("things", __name__, url_prefix="/things")

    @bp.route("/<unit>", methods=["POST"])
    @requires("member.enter")
    @bp.arguments(ThingIn)
    @bp.response(201, ThingIn)
    def create(body, unit):
        require_in_scope(unit, ["root"], write=True)
        if body["name"] == "dup":
            raise Conflict("name taken", field="name")
        return body

    return create_app("things", [bp], ready=lambda: {"db": True, "kafka": False},
                      path_scope=lambda args: (args["unit"], ["root"]) if args.get("unit") != "ghost" else None)


def auth(unit="root", roles=("officer",)):
    return {"Authorization": "Bearer " + mint("t", unit, roles)}


def test_health_ready_metrics_openapi_docs():
    client = make_app().test_client()
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json["checks"] == {"db": True, "kafka": False}
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.") and "/api/v1/things/{unit}" in spec["paths"]
    assert client.get("/docs").status_code == 200
    client.post("/api/v1/things/x", json={})
    assert b"http_requests_total" in client.get("/metrics").data


def test_errors_are_json_and_name_the_field():
    client = make_app().test_client()
    r = client.post("/api/v1/things/root", json={"name": "a", "size": "big"}, headers=auth())
    assert r.status_code == 400 and "size" in r.json["errors"]
    r = client.post("/api/v1/things/root", json={"name": "a", "size": 1})
    assert r.status_code == 401
    r = client.post("/api/v1/things/root", json={"name": "a", "size": 1}, headers=auth(roles=("viewer",)))
    assert r.status_code == 403
    r = client.post("/api/v1/things/other", json={"name": "a", "size": 1}, headers=auth("commune"))
    assert r.status_code == 403
    r = client.post("/api/v1/things/root", json={"name": "dup", "size": 1}, headers=auth())
    assert r.status_code == 409 and r.json["errors"] == {"name": ["name taken"]}
    r = client.post("/api/v1/things/root", json={"name": "ok", "size": 1}, headers={**auth(), "X-Request-Id": "abc"})
    assert r.status_code == 201 and r.headers["X-Request-Id"] == "abc"
    r = client.post("/api/v1/things/root", data=b"\xff\xfe", headers={**auth(), "Content-Type": "application/json"})
    assert r.status_code == 400


def test_token_role_and_scope_are_checked_before_the_body_is_parsed():
    client = make_app().test_client()
    bad_body = {"name": 1}
    assert client.post("/api/v1/things/root", json=bad_body).status_code == 401
    r = client.post("/api/v1/things/root", json=bad_body, headers={"Authorization": "bearer " + mint("t", "root", ["viewer"])})
    assert r.status_code == 403  # the scheme is case-insensitive; the viewer role may not enter data
    r = client.post("/api/v1/things/other", json=bad_body, headers=auth("commune"))
    assert r.status_code == 403 and "other" not in r.json["message"]  # scope before validation, names nothing
    assert client.post("/api/v1/things/root", json=bad_body, headers=auth()).status_code == 400


def test_an_endpoint_without_a_declared_capability_is_not_served():
    bp = Blueprint("loose", __name__, url_prefix="/loose")

    @bp.route("", methods=["GET"])
    def loose():
        return {}

    with pytest.raises(RuntimeError, match="without a declared capability"):
        create_app("loose", [bp], ready=lambda: {})


def test_a_methodview_method_without_a_declared_capability_is_not_served():
    bp = Blueprint("loose", __name__, url_prefix="/loose")

    @bp.route("")
    class Loose(MethodView):
        @requires("read")
        def get(self):
            return {}

        def post(self):  # forgotten: the whole app must refuse to start, not serve it open
            return {}

    with pytest.raises(RuntimeError, match=r"without a declared capability.*loose\.Loose POST"):
        create_app("loose", [bp], ready=lambda: {})


def test_each_methodview_method_is_checked_with_its_own_capability_and_path_scope():
    bp = Blueprint("things", __name__, url_prefix="/things")
    served = []

    @bp.route("/<unit>")
    class Thing(MethodView):
        @requires("read")
        @bp.response(200, ThingIn)
        def get(self, unit):
            served.append(("GET", unit))
            return {"name": unit, "size": 0}

        @requires("member.enter")
        @bp.arguments(ThingIn)
        @bp.response(201, ThingIn)
        def post(self, body, unit):
            served.append(("POST", unit))
            return body

    client = create_app("things", [bp], ready=lambda: {},
                        path_scope=lambda args: (args["unit"], ["root"])).test_client()
    viewer = auth(roles=("viewer",))
    assert client.get("/api/v1/things/root").status_code == 401
    assert client.get("/api/v1/things/root", headers=viewer).status_code == 200
    assert client.post("/api/v1/things/root", json={"name": 1}, headers=viewer).status_code == 403  # before the body
    assert client.get("/api/v1/things/other", headers=auth("commune")).status_code == 403  # path scope
    assert client.post("/api/v1/things/root", json={"name": "a", "size": 1}, headers=auth()).status_code == 201
    assert served == [("GET", "root"), ("POST", "root")]
    ops = client.get("/openapi.json").json["paths"]["/api/v1/things/{unit}"]
    assert {"get", "post"} <= set(ops)


def test_every_answer_carries_the_api_security_headers():
    client = make_app().test_client()
    for resp in (client.get("/healthz"), client.post("/api/v1/things/root", json={}),
                 client.post("/api/v1/things/root", json={"name": "a", "size": 1}, headers=auth())):
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]


def test_heavy_reads_beyond_the_slots_are_refused_at_once_and_probes_still_answer(monkeypatch):
    import threading
    monkeypatch.setenv("HEAVY_READS_PER_WORKER", "1")
    release, entered = threading.Event(), threading.Event()
    bp = Blueprint("views", __name__, url_prefix="/views")

    @bp.route("/<unit>", methods=["GET"])
    @requires("read", heavy=True)
    def view(unit):
        entered.set()
        release.wait(10)
        return {"unit": unit}

    client = create_app("heavy", [bp], ready=lambda: {}).test_client()
    first: dict = {}
    holder = threading.Thread(target=lambda: first.setdefault("r", client.get("/api/v1/views/root", headers=auth())))
    holder.start()
    assert entered.wait(5)
    busy = client.get("/api/v1/views/root", headers=auth())
    assert busy.status_code == 503 and busy.json["code"] == "busy" and busy.headers["Retry-After"]
    assert client.get("/healthz").status_code == 200
    release.set()
    holder.join(5)
    assert first["r"].status_code == 200
    assert client.get("/api/v1/views/root", headers=auth()).status_code == 200  # the slot was given back


def test_every_refusal_of_platformkit_errors_answers_its_status_and_code():
    from platformkit import errors
    refusals = {
        "invalid": (errors.InvalidInput("size must be even", field="size"), 400, "invalid_input", "size must be even"),
        "unauth": (errors.Unauthenticated("token revoked"), 401, "unauthorized", "token revoked"),
        "forbidden": (errors.Forbidden("outside"), 403, "forbidden", "outside"),
        "missing": (errors.NotFound("unit u9 not found"), 404, "not_found", "unit u9 not found"),
        "doc": (errors.DocumentNotFound("u9"), 404, "not_found", "u9 not found"),
        "conflict": (errors.Conflict("taken"), 409, "conflict", "taken"),
        "exists": (errors.AlreadyExists("{'code': 'X'}"), 409, "conflict", "already exists: {'code': 'X'}"),
        "stale": (errors.StaleVersion("u9"), 412, "stale_version", "u9 was changed by someone else; reload it"),
        "large": (errors.TooLarge("too many rows"), 413, "too_large", "too many rows"),
        "rule": (errors.RuleViolated("a rule"), 422, "rule_violated", "a rule"),
    }
    bp = Blueprint("refusals", __name__, url_prefix="/refusals")

    @bp.route("/<name>", methods=["GET"])
    @requires("read")
    def refuse(name):
        raise refusals[name][0]

    client = create_app("refusals", [bp], ready=lambda: {}).test_client()
    for name, (exc, status, code, message) in refusals.items():
        r = client.get(f"/api/v1/refusals/{name}", headers=auth())
        assert (r.status_code, r.json["status"], r.json["code"], r.json["message"]) == (status, status, code, message)
        assert r.json.get("errors") == ({exc.field: [message]} if exc.field else None), name
        assert ("WWW-Authenticate" in r.headers) == (status == 401), name


def test_a_failed_store_preparation_does_not_stop_a_process_from_starting(monkeypatch, caplog):
    """The GIN indexes of the local store are speed, not correctness: an API whose psql is killed by
    a SIGTERM during boot must still start (and then stop cleanly), logging the failure."""
    from platformkit import mongo, store_prep

    class Coll:
        def create_index(self, *a, **k):
            return "ok"

    class Db(dict):
        name = "congdoan_x"

        def __getitem__(self, name):
            return Coll()

    def killed(*_a, **_k):
        raise store_prep.StorePrepError("psql failed (-15): ")
    monkeypatch.setattr(store_prep, "prepare", killed)
    with caplog.at_level("ERROR"):
        mongo.ensure_indexes(Db(), {"members": [("unit_id", {"name": "unit"})]})
    assert any("store preparation failed" in r.getMessage() for r in caplog.records)
