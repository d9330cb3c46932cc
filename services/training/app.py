"""The training HTTP service: `gunicorn 'services.training.app:create_app()'` (port 8002)."""
from __future__ import annotations

import logging

from flask import Flask

from kafka import KafkaAdminClient

from platformkit import config, mongo
from platformkit.web import create_app as create_web_app

from . import service
from .api import BLUEPRINTS

log = logging.getLogger(__name__)


def _kafka_ready(timeout_ms: int = 3000) -> bool:
    # platformkit.kafka_io.kafka_ready passes `api_version_auto_timeout_ms`, which kafka-python 3
    # rejects (KafkaConfigurationError), so it always says False; this is the same check without it.
    try:
        KafkaAdminClient(bootstrap_servers=config.kafka_bootstrap(), request_timeout_ms=timeout_ms).close()
        return True
    except Exception:  # noqa: BLE001 - readiness answers a yes/no question
        return False


def _ready() -> dict[str, bool]:
    return {"db": mongo.ping(service.database()), "kafka": _kafka_ready()}


def create_app() -> Flask:
    app = create_web_app("training", BLUEPRINTS, ready=_ready,
                         description="Courses, classes, enrolment, attendance, completion, certificates and "
                                     "dissemination sessions of the trade union's training work.")
    try:  # idempotent; a database not reachable yet must not stop the worker (readyz tells)
        service.ensure_indexes()
    except Exception:  # noqa: BLE001
        log.exception("could not ensure indexes at start; will serve and report not ready")
    return app
