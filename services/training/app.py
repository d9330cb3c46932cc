"""WSGI entry kept for `gunicorn 'services.training.app:create_app()'` and the tests; the description is
services/training/description.py, the runner platformkit.run (deploy/Procfile uses `platformkit.run:app("training")`)."""
from platformkit.run import app as _app


def create_app():
    return _app("training")
