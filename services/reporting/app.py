"""WSGI entrypoint: gunicorn 'services.reporting.app:create_app()'. Also serves the dashboard."""
from pathlib import Path

from flask import send_from_directory

from platformkit import mongo
from platformkit.kafka_io import kafka_ready
from platformkit.web import create_app as platform_app

from . import service
from .api import catalogue, targets, views

STATIC = Path(__file__).parent / "static"


def create_app():
    app = platform_app("reporting", [views, targets, catalogue],
                       ready=lambda: {"database": mongo.ping(service.db()), "kafka": kafka_ready()},
                       description="Attainment views rolled up the org hierarchy, built from every service's events.")
    service.setup()

    @app.get("/dashboard")
    def dashboard():
        return send_from_directory(STATIC, "dashboard.html")

    @app.get("/static/<path:name>")
    def static_files(name):
        return send_from_directory(STATIC, name)

    return app
