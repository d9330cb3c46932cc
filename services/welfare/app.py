"""WSGI entry kept for `gunicorn 'services.welfare.app:create_app()'` and the tests; the description is
services/welfare/description.py, the runner platformkit.run (deploy/Procfile uses `platformkit.run:app("welfare")`)."""
from platformkit.run import app as _app


def create_app():
    return _app("welfare")
