"""`python -m services.reporting.periodic.relay`: publishes the outbox of the periodic reports'
step documents (store.py) to reporting.events (Kafka key = the report id)."""
from platformkit.relay import run_relay

ROUTES = {"periodic_steps": "reporting.events"}


def main() -> None:
    run_relay("reporting", ROUTES)


if __name__ == "__main__":
    main()
