"""WSGI entry kept for `gunicorn 'services.membership.app:create_app()'` and the tests; the description is
services/membership/description.py, the runner platformkit.run (deploy/Procfile uses `platformkit.run:app("membership")`)."""
from platformkit.run import app as _app


def create_app():
    return _app("membership")
