# Shared gunicorn settings; the bind address comes from the command line (-b).
# WEB_WORKERS / WEB_THREADS come from platformkit.settings like every other variable.
from platformkit.settings import current

workers = current().web_workers
threads = current().web_threads
worker_class = "gthread"
timeout = 60
graceful_timeout = 20
accesslog = None  # the app logs each request as JSON with its request id
preload_app = False  # Mongo clients and Kafka producers are created after the fork
