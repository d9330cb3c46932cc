"""WSGI entry kept for `gunicorn 'services.reporting.app:create_app()'` and the tests; the description is
services/reporting/description.py, the runner platformkit.run (deploy/Procfile uses `platformkit.run:app("reporting")`)."""
from platformkit.run import app as _app


def create_app():
    return _app("reporting")
