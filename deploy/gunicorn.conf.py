# Shared gunicorn settings; the bind address comes from the command line (-b).
import os

workers = int(os.environ.get("WEB_WORKERS", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "gthread"
timeout = 60
graceful_timeout = 20
accesslog = None  # the app logs each request as JSON with its request id
preload_app = False  # Mongo clients and Kafka producers are created after the fork
