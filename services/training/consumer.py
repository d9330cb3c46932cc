"""`python -m services.training.consumer`: keeps training's local view of units and members from
membership.events (consumer group `training-membership-view`)."""
from __future__ import annotations


from platformkit import config, mongo
from platformkit.consumer import ConsumerLoop
from platformkit.kafka_io import ensure_topics
from platformkit.logs import setup_logging
from platformkit.membership_view import INDEXES
from platformkit.shutdown import exit_cleanly_until_running

from .view import apply_membership_batch

GROUP = "training-membership-view"
SERVICE = "training"


def main() -> None:
    exit_cleanly_until_running()
    setup_logging()
    db = mongo.database(SERVICE)
    mongo.ensure_indexes(db, INDEXES)
    topic = config.topic("membership.events")
    # Subscribing to a topic that does not exist yet works, but creating it avoids a slow first
    # metadata round; idempotent.
    ensure_topics([topic])
    loop = ConsumerLoop(GROUP, [topic], lambda records: apply_membership_batch(db, records))
    loop.install_signal_handlers()
    loop.run()


if __name__ == "__main__":
    main()
