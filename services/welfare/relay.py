"""`python -m services.welfare.relay`: publishes the change documents of programmes and cases
(platformkit/repository.py) to welfare.events (Kafka key = aggregate id, so one case's events stay in order)."""
from platformkit import config
from platformkit.kafka_io import ensure_topics
from platformkit.shutdown import exit_cleanly_until_running
from platformkit.relay import run_relay

from .service import RELAY_ROUTES, SERVICE

TOPIC = "welfare.events"


def main() -> None:
    exit_cleanly_until_running()
    ensure_topics([config.topic(TOPIC)])
    run_relay(SERVICE, RELAY_ROUTES)


if __name__ == "__main__":
    main()
