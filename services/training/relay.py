"""`python -m services.training.relay`: publishes training's outboxes to training.events (Kafka
key = aggregate id): the change documents of courses and classes (store.py) and the dissemination
session documents."""
from platformkit.relay import run_relay

ROUTES = {"courses_events": "training.events", "classes_events": "training.events",
          "dissemination_sessions": "training.events"}


def main() -> None:
    run_relay("training", ROUTES)


if __name__ == "__main__":
    main()
