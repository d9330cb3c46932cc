"""Flask app factory on flask-smorest: health, readiness, metrics, OpenAPI + docs, JSON errors,
request ids, JSON access logs. A service passes its blueprints and readiness checks."""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any, Callable, Iterable

import flask_smorest
from flask import Flask, Response, g, jsonify, request
from flask_smorest import Api
from marshmallow import Schema, ValidationError, fields
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
import pymongo
from pymongo.errors import ConnectionFailure, PyMongoError
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException

from . import messages_vi, metrics, permissions, settings
from .auth import check_key_policy, current_caller
from .errors import Contended, Forbidden, NotFound, Refusal, Unauthenticated
# the refusals API modules raise, importable from here as before (platformkit.errors is their home)
from .errors import Conflict, InvalidInput, RuleViolated, TooLarge  # noqa: F401
from .logs import setup_logging

log = logging.getLogger("http")


# The refusals live in platformkit.errors (no HTTP in them); these names stay for the callers that
# import them from here. DomainError is the base every refusal shares.
DomainError = Refusal
Missing = NotFound


class ApiError(Schema):
    """The JSON body of every error response (named so apart from flask-smorest's own Error)."""
    status = fields.Integer()
    code = fields.String()
    message = fields.String()
    errors = fields.Dict(metadata={"description": "field -> messages"})
    request_id = fields.String(allow_none=True)


class StrictSchema(Schema):
    """Input schemas: an unknown field is an error, so a typo never silently does nothing."""
    class Meta:
        unknown = "raise"


UNAVAILABLE = "the database is unavailable; retry after the Retry-After seconds"


def error_responses(bp, descriptions: dict[int, str], codes):
    """Document an endpoint's error answers; they all share the ApiError body. Every endpoint may
    answer 503 while the database is unreachable."""
    def deco(fn):
        for code in [*codes, 503]:
            fn = bp.alt_response(code, schema=ApiError, description=descriptions.get(code, UNAVAILABLE))(fn)
        return fn
    return deco


def wants_vietnamese() -> bool:
    """`Accept-Language: vi` (the dashboard sends it): error texts in Vietnamese; English otherwise."""
    try:
        return request.accept_languages.best_match(["en", "vi"], default="en") == "vi"
    except RuntimeError:  # outside a request
        return False


def first_field_error(errors: Any, path: str = "") -> tuple[str, str] | None:
    """(dotted field, first message) of a marshmallow error tree, for a message that names the field."""
    if isinstance(errors, dict):
        for key, value in errors.items():
            inner = "" if key in ("json", "query", "files", "form", "headers", "_schema") else str(key)
            found = first_field_error(value, f"{path}.{inner}".strip(".") if inner else path)
            if found:
                return found
    elif isinstance(errors, list) and errors:
        if all(isinstance(e, str) for e in errors):
            return path or "body", errors[0]
        return first_field_error(errors[0], path)
    elif isinstance(errors, str):
        return path or "body", errors
    return None


def error_body(status: int, code: str, message: str, errors: dict | None = None) -> Response:
    if wants_vietnamese():
        message, errors = messages_vi.translate(message), messages_vi.translate_errors(errors)
    body = {"status": status, "code": code, "message": message,
            "request_id": getattr(g, "request_id", None)}
    if errors:
        body["errors"] = errors
    resp = jsonify(body)
    resp.status_code = status
    if status != 401:
        resp.headers["Content-Language"] = "vi" if wants_vietnamese() else "en"
    return resp


def localised_items(answer: Any) -> Any:
    """A batch answer whose per-item `error` bodies (and an import's per-row `errors`) are in the
    caller's language (Accept-Language: vi), like every other error text."""
    if not wants_vietnamese() or not isinstance(answer, dict):
        return answer
    out = dict(answer)
    for key in ("results", "rows"):
        if isinstance(answer.get(key), list):
            out[key] = [_localised_item(item) for item in answer[key]]
    return out


def _localised_item(item: Any) -> Any:
    if not isinstance(item, dict):
        return item
    item = dict(item)
    if isinstance(item.get("error"), dict):
        error = dict(item["error"])
        error["message"] = messages_vi.translate(error.get("message"))
        if error.get("errors"):
            error["errors"] = messages_vi.translate_errors(error["errors"])
        item["error"] = error
    if isinstance(item.get("errors"), dict):
        item["errors"] = messages_vi.translate_errors(item["errors"])
    return item


def invalid_input_message(errors: Any) -> str:
    """One text for every 400, naming the (first) field like a rule refusal does."""
    found = first_field_error(errors)
    return f"invalid input in '{found[0]}': {found[1]}" if found else "invalid input"


class PlatformParser(FlaskParser):
    """webargs' parser, but a JSON body nested deeper than the decoder's recursion limit is an
    invalid JSON body (400), not a RecursionError (500)."""

    def _raw_load_json(self, req):
        try:
            return super()._raw_load_json(req)
        except RecursionError as exc:
            # a non-empty doc: webargs reads an empty one as "no body" (missing), not as invalid
            raise json.JSONDecodeError("JSON nested too deeply", "<request body>", 0) from exc


class Blueprint(flask_smorest.Blueprint):
    """The services' blueprint: flask-smorest's, parsing arguments with PlatformParser."""
    ARGUMENTS_PARSER = PlatformParser()


class PlatformApi(Api):
    """flask-smorest documents every undeclared status (the `default` response) with its own Error
    schema ({code: int, status: str}); our handlers answer ApiError, so the document says that."""
    ERROR_SCHEMA = ApiError


def request_cache() -> dict:
    """What this request has read already, for the handler to reuse (`{("unit", id): unit}`: the
    unit a path names, loaded for the scope check before the handler runs). Gone with the request."""
    if "reads" not in g:
        g.reads = {}
    return g.reads


def read_budget_seconds() -> float:
    return settings.current().read_time_limit_seconds


def heavy_reads_per_worker() -> int:
    """How many heavy reads one API process serves at once: by default two threads fewer than it
    has (WEB_THREADS), so that probes and light requests always find a free thread."""
    return settings.current().heavy_reads()


class HeavyReadSlots:
    """A per-process limit on concurrent heavy reads (views, drill-downs, exports). A request that
    finds no slot within a moment is answered 503 + Retry-After at once instead of queueing for a
    thread: eight slow drill-downs once held every gunicorn thread and /healthz waited 8.5 s."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sem: threading.BoundedSemaphore | None = None

    def acquire(self, wait_seconds: float = 0.2) -> bool:
        with self._lock:
            if self._sem is None:
                self._sem = threading.BoundedSemaphore(heavy_reads_per_worker())
        return self._sem.acquire(timeout=wait_seconds)

    def release(self) -> None:
        assert self._sem is not None
        self._sem.release()


class Busy(Exception):
    """Every heavy-read slot of this process is taken (HTTP 503 + Retry-After)."""


def requires(capability: str, heavy: bool = False):
    """Declare the capability (platformkit.permissions) an endpoint needs: on each HTTP method of a
    resource's MethodView (or right under the route decorator of a view function). The app checks
    the token and the capability before the endpoint parses any input; an /api/v1 endpoint (or a
    MethodView method) without a declaration makes the app refuse to start. `heavy`: the
    endpoint may read many documents; it runs only in one of the process's heavy-read slots."""
    if capability not in permissions.CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}")

    def deco(fn):
        fn.required_capability = capability
        fn.heavy_read = heavy
        return fn
    return deco


def declaration(view: Callable | None, method: str) -> "tuple[str | None, bool]":
    """(capability, heavy) that `requires` declared for one HTTP method of a registered view: the
    method of a MethodView's class, or the view function itself. HEAD is served by GET; Flask's
    automatic OPTIONS asks for a token as before, with the first declared method's capability."""
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        method = method.lower()
        if method == "head" and not hasattr(view_class, "head"):
            method = "get"
        view = getattr(view_class, method, None)
        if view is None and method == "options":
            view = next((getattr(view_class, m) for m in ("get", "post", "put", "patch", "delete")
                         if getattr(getattr(view_class, m, None), "required_capability", None)), None)
    return getattr(view, "required_capability", None), getattr(view, "heavy_read", False)


# Headers every API answer carries: JSON is never a page to frame, sniff or cache.
API_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# The Swagger UI at /docs loads its script and style from jsdelivr.
DOCS_CSP = ("default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https://cdn.jsdelivr.net; "
            "connect-src 'self'; frame-ancestors 'none'")


BEARER = {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}


PathScope = Callable[[dict], "tuple[str, list[str]] | None"]


def create_app(service: str, blueprints: Iterable[Blueprint], ready: Callable[[], dict[str, bool]],
               version: str = "1.0", description: str = "", path_scope: PathScope | None = None) -> Flask:
    """`path_scope(view_args)` names the unit (id, ancestors) a request's path points at, or None
    when it points at nothing known; the subtree is then checked before any input is parsed (the
    service layer checks again with what it loads, and checks units named in bodies)."""
    setup_logging()
    check_key_policy()  # outside local development, refuse to start with a key anyone could know
    # no Flask static route: it would shadow a service's own /static/ files (the dashboard's)
    app = Flask(service, static_folder=None)
    app.config.update(
        API_TITLE=f"{service} API",
        API_VERSION=version,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
        API_SPEC_OPTIONS={
            "info": {"description": description},
            "components": {"securitySchemes": BEARER},
            "security": [{"bearerAuth": []}],
        },
        MAX_CONTENT_LENGTH=20 * 1024 * 1024,
        JSON_AS_ASCII=False,
    )
    app.json.ensure_ascii = False
    api = PlatformApi(app)
    heavy_slots = HeavyReadSlots()
    for bp in blueprints:
        api.register_blueprint(bp, url_prefix=f"/api/v1{bp.url_prefix or ''}")
    undeclared = sorted(f"{rule.endpoint} {method}" for rule in app.url_map.iter_rules()
                        if rule.rule.startswith("/api/")
                        for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
                        if not declaration(app.view_functions[rule.endpoint], method)[0])
    if undeclared:  # fail closed: an endpoint nobody classified is not served
        raise RuntimeError(f"endpoints without a declared capability (platformkit.web.requires): {undeclared}")

    @app.before_request
    def _start():
        g.request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        g.started = time.monotonic()
        if request.method == "GET" and request.path.startswith("/api/"):
            # every read is bounded in time too: its database calls share one budget (pymongo
            # sends it as maxTimeMS and stops waiting when it is spent); 503 when it runs out
            g.read_budget = pymongo.timeout(read_budget_seconds())
            g.read_budget.__enter__()
        capability, heavy = declaration(app.view_functions.get(request.endpoint or ""), request.method)
        if capability:  # before any input is parsed: 401 without a valid token, 403 without the role
            caller = current_caller()
            if not permissions.allowed(caller, capability):
                raise Forbidden(f"the roles {sorted(caller.roles)} may not {capability.replace('.', ' ')}")
            target = path_scope(request.view_args or {}) if path_scope else None
            if target is not None and not caller.covers(*target):
                raise Forbidden("the unit is outside the caller's subtree")
            if heavy:
                if not heavy_slots.acquire():
                    raise Busy()
                g.heavy_slot = True

    @app.after_request
    def _finish(resp: Response):
        resp.headers["X-Request-Id"] = getattr(g, "request_id", "")
        for name, value in API_SECURITY_HEADERS.items():
            resp.headers.setdefault(name, value)
        if request.path.rstrip("/") == "/docs":
            resp.headers["Content-Security-Policy"] = DOCS_CSP
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        elapsed = time.monotonic() - getattr(g, "started", time.monotonic())
        metrics.REQUESTS.labels(service, endpoint, request.method, str(resp.status_code)).inc()
        metrics.REQUEST_SECONDS.labels(service, endpoint, request.method).observe(elapsed)
        if endpoint not in ("/healthz", "/metrics"):
            log.info("%s %s %s %.1fms", request.method, request.path, resp.status_code, elapsed * 1000,
                     extra={"request_id": g.get("request_id"), "service": service})
        return resp

    @app.teardown_request
    def _end_read_budget(_exc):
        if g.pop("heavy_slot", False):
            heavy_slots.release()
        budget = g.pop("read_budget", None)
        if budget is not None:
            budget.__exit__(None, None, None)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok", "service": service}

    @app.get("/readyz")
    def readyz():
        checks = ready()
        ok = all(checks.values())
        return jsonify({"ready": ok, "checks": checks}), (200 if ok else 503)

    @app.get("/metrics")
    def metrics_endpoint():
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)

    @app.errorhandler(Refusal)
    def _refused(exc: Refusal):
        # every refusal (platformkit.errors) answers its own status; one naming a field lists it
        errors = {exc.field: [exc.message]} if exc.field else None
        resp = error_body(exc.status, exc.code, exc.message, errors)
        if isinstance(exc, Unauthenticated):
            resp.headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, Contended):  # the aggregate was too busy (repository.py): try again
            resp.headers["Retry-After"] = "1"
        return resp

    @app.errorhandler(ValidationError)
    def _validation(exc: ValidationError):
        return error_body(400, "invalid_input", invalid_input_message(exc.messages), exc.messages)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        # flask-smorest/webargs put marshmallow messages in exc.data["messages"].
        data = getattr(exc, "data", None) or {}
        messages = data.get("messages")
        if isinstance(messages, dict) and len(messages) == 1 and isinstance(messages.get("json"), dict):
            messages = messages["json"]  # per-field messages; a body that is not JSON stays {"json": [...]}
        elif messages is not None and not isinstance(messages, dict):
            messages = {"_schema": messages}  # `errors` is always field -> messages (ApiError)
        status = exc.code or 500
        if status == 422 and messages:  # webargs says 422 for schema errors; we say 400
            status = 400
        code = "invalid_input" if status == 400 else (exc.name or "error").lower().replace(" ", "_")
        text = invalid_input_message(messages) if status == 400 and messages else (exc.description or exc.name)
        return error_body(status, code, text, messages)

    @app.errorhandler(Busy)
    def _busy(_exc: Busy):
        resp = error_body(503, "busy", "too many heavy reads at once on this server; retry shortly")
        resp.headers["Retry-After"] = "2"
        return resp

    @app.errorhandler(ConnectionFailure)
    def _database_unavailable(exc: ConnectionFailure):
        # The database is unreachable (restarting, failing over): the command was not acknowledged
        # and may be retried; 503 + Retry-After tells clients and load balancers so, a 500 would not.
        log.warning("database unavailable: %s", exc, extra={"request_id": g.get("request_id")})
        resp = error_body(503, "database_unavailable", "the database is unavailable; retry shortly")
        resp.headers["Retry-After"] = "2"
        return resp

    @app.errorhandler(PyMongoError)
    def _database_error(exc: PyMongoError):
        if exc.timeout:  # the read budget ran out (or the server gave up): retryable, not a bug
            log.warning("database call timed out: %s", exc, extra={"request_id": g.get("request_id")})
            resp = error_body(503, "timeout", "the request took longer than its time limit; retry shortly")
            resp.headers["Retry-After"] = "5"
            return resp
        log.exception("database error", extra={"request_id": g.get("request_id")})
        return error_body(500, "internal_error", "internal error; the request id is in the logs")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error", extra={"request_id": g.get("request_id")})
        return error_body(500, "internal_error", "internal error; the request id is in the logs")

    return app
