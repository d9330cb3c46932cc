"""WSGI entrypoint: gunicorn 'services.membership.app:create_app()'."""
from platformkit import mongo
from platformkit.kafka_io import kafka_ready
from platformkit.web import create_app as platform_app

from . import service
from .api import members, units


def create_app():
    app = platform_app("membership", [units, members],
                       ready=lambda: {"database": mongo.ping(service.db()), "kafka": kafka_ready()},
                       description="Org hierarchy, CĐCS founding, members' lifecycle and dues.",
                       path_scope=service.path_scope)
    service.setup()
    service.repair_paths()
    return app
