"""Flask app factory on flask-smorest: health, readiness, metrics, OpenAPI + docs, JSON errors,
request ids, JSON access logs. A service passes its blueprints and readiness checks."""
from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Callable, Iterable

import flask_smorest
from flask import Flask, Response, g, jsonify, request
from flask_smorest import Api
from marshmallow import Schema, ValidationError, fields
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pymongo.errors import ConnectionFailure
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException

from . import metrics
from .auth import Forbidden, Unauthorized
from .logs import setup_logging
from .outbox import AlreadyExists, NotFound, StaleVersion

log = logging.getLogger("http")


class DomainError(Exception):
    """Base for refusals the domain raises; `status` is the HTTP status that tells the truth."""
    status = 422
    code = "rule_violated"

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(DomainError):
    status, code = 400, "invalid_input"


class Missing(DomainError):
    status, code = 404, "not_found"


class Conflict(DomainError):
    status, code = 409, "conflict"


class RuleViolated(DomainError):
    status, code = 422, "rule_violated"


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


def error_body(status: int, code: str, message: str, errors: dict | None = None) -> Response:
    body = {"status": status, "code": code, "message": message,
            "request_id": getattr(g, "request_id", None)}
    if errors:
        body["errors"] = errors
    resp = jsonify(body)
    resp.status_code = status
    return resp


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


BEARER = {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}


def create_app(service: str, blueprints: Iterable[Blueprint], ready: Callable[[], dict[str, bool]],
               version: str = "1.0", description: str = "") -> Flask:
    setup_logging()
    app = Flask(service)
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
    for bp in blueprints:
        api.register_blueprint(bp, url_prefix=f"/api/v1{bp.url_prefix or ''}")

    @app.before_request
    def _start():
        g.request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        g.started = time.monotonic()

    @app.after_request
    def _finish(resp: Response):
        resp.headers["X-Request-Id"] = getattr(g, "request_id", "")
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        elapsed = time.monotonic() - getattr(g, "started", time.monotonic())
        metrics.REQUESTS.labels(service, endpoint, request.method, str(resp.status_code)).inc()
        metrics.REQUEST_SECONDS.labels(service, endpoint, request.method).observe(elapsed)
        if endpoint not in ("/healthz", "/metrics"):
            log.info("%s %s %s %.1fms", request.method, request.path, resp.status_code, elapsed * 1000,
                     extra={"request_id": g.get("request_id"), "service": service})
        return resp

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

    @app.errorhandler(DomainError)
    def _domain(exc: DomainError):
        errors = {exc.field: [exc.message]} if exc.field else None
        return error_body(exc.status, exc.code, exc.message, errors)

    @app.errorhandler(Unauthorized)
    def _unauth(exc):
        resp = error_body(401, "unauthorized", str(exc))
        resp.headers["WWW-Authenticate"] = "Bearer"
        return resp

    @app.errorhandler(Forbidden)
    def _forbidden(exc):
        return error_body(403, "forbidden", str(exc))

    @app.errorhandler(StaleVersion)
    def _stale(exc):
        return error_body(412, "stale_version", f"{exc} was changed by someone else; reload it")

    @app.errorhandler(NotFound)
    def _nf(exc):
        return error_body(404, "not_found", f"{exc} not found")

    @app.errorhandler(AlreadyExists)
    def _exists(exc):
        return error_body(409, "conflict", f"already exists: {exc}")

    @app.errorhandler(ValidationError)
    def _validation(exc: ValidationError):
        return error_body(400, "invalid_input", "invalid input", exc.messages)

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
        return error_body(status, code, exc.description or exc.name, messages)

    @app.errorhandler(ConnectionFailure)
    def _database_unavailable(exc: ConnectionFailure):
        # The database is unreachable (restarting, failing over): the command was not acknowledged
        # and may be retried; 503 + Retry-After tells clients and load balancers so, a 500 would not.
        log.warning("database unavailable: %s", exc, extra={"request_id": g.get("request_id")})
        resp = error_body(503, "database_unavailable", "the database is unavailable; retry shortly")
        resp.headers["Retry-After"] = "2"
        return resp

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error", extra={"request_id": g.get("request_id")})
        return error_body(500, "internal_error", "internal error; the request id is in the logs")

    return app
