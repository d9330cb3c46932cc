"""WSGI entry: `gunicorn 'services.welfare.app:create_app()'` (port 8003 by default)."""
from flask import Flask

from platformkit import mongo
from platformkit.kafka_io import kafka_ready
from platformkit.web import create_app as platform_app

from . import service
from .api import BLUEPRINTS


def create_app() -> Flask:
    # Indexes first: the unique Idempotency-Key indexes are what makes a retried POST safe.
    service.ensure_schema()
    return platform_app(
        service.SERVICE, BLUEPRINTS,
        ready=lambda: {"database": mongo.ping(service.database()), "kafka": kafka_ready()},
        description="Welfare programmes, support cases with level-above approval and budgets, "
                    "micro-loans with repayments. Money is whole đồng; dates are ISO 8601.",
        path_scope=service.path_scope)
