"""The training HTTP service: `gunicorn 'services.training.app:create_app()'` (port 8002)."""
from __future__ import annotations

import logging

from flask import Flask

from platformkit import mongo
from platformkit.kafka_io import kafka_ready
from platformkit.web import create_app as create_web_app

from . import service
from .api import BLUEPRINTS

log = logging.getLogger(__name__)


def _ready() -> dict[str, bool]:
    return {"db": mongo.ping(service.database()), "kafka": kafka_ready()}


def create_app() -> Flask:
    app = create_web_app("training", BLUEPRINTS, ready=_ready,
                         description="Courses, classes, enrolment, attendance, completion, certificates and "
                                     "dissemination sessions of the trade union's training work.")
    try:  # idempotent; a database not reachable yet must not stop the worker (readyz tells)
        service.ensure_indexes()
    except Exception:  # noqa: BLE001
        log.exception("could not ensure indexes at start; will serve and report not ready")
    return app
