"""Prometheus metrics shared by every process kind. Each process serves its own registry
(a process that is not an HTTP service exposes them with `serve_metrics(port)`)."""
from prometheus_client import Counter, Gauge, Histogram, start_http_server

REQUESTS = Counter("http_requests_total", "HTTP requests", ["service", "endpoint", "method", "status"])
REQUEST_SECONDS = Histogram("http_request_duration_seconds", "HTTP request latency",
                            ["service", "endpoint", "method"])
OUTBOX_PENDING = Gauge("outbox_pending_documents", "Aggregates with unpublished events", ["service"])
OUTBOX_OLDEST_SECONDS = Gauge("outbox_oldest_pending_age_seconds", "Age of the oldest unpublished event",
                              ["service"])
OUTBOX_PUBLISHED = Counter("outbox_published_events_total", "Events published by the relay", ["service"])
CONSUMER_RECORDS = Counter("consumer_records_total", "Records consumed", ["group"])
CONSUMER_BATCH = Histogram("consumer_batch_size", "Records per batch", ["group"],
                           buckets=(1, 10, 50, 100, 250, 500, 1000, 2000))
CONSUMER_BATCH_SECONDS = Histogram("consumer_batch_write_seconds", "Time to process+commit a batch", ["group"])
CONSUMER_LAG_SECONDS = Gauge("consumer_lag_seconds", "Age of the last record processed", ["group"])
CONSUMER_LAG_RECORDS = Gauge("consumer_lag_records", "Records behind the partitions' high watermarks", ["group"])
CONSUMER_RETRIES = Counter("consumer_batch_retries_total", "Batches retried after an error", ["group"])
DEAD_LETTERS = Counter("dead_letters_total", "Records sent to the dead-letter topic", ["group"])


def serve_metrics(port: int) -> None:
    """Expose this process's metrics (relays, consumers, the projector). METRICS_ADDR=0.0.0.0 in
    containers so that Prometheus can scrape them; loopback by default."""
    from .settings import current
    if port:
        start_http_server(port, addr=current().metrics_addr)
