"""`python -m services.welfare.consumer`: keeps welfare's local view of units and members from
membership.events (beneficiaries must be known and not left; scope needs unit ancestors).
Consumer group `welfare-membership-view`; dead letters go to its .dlq topic."""

from platformkit import config
from platformkit.consumer import ConsumerLoop, Record
from platformkit.kafka_io import ensure_topics
from platformkit.logs import setup_logging
from platformkit.membership_view import handle_membership_batch
from platformkit.shutdown import exit_cleanly_until_running

from . import service

GROUP = "welfare-membership-view"
TOPIC = "membership.events"


def make_handler(db):
    def handle(records: list[Record]) -> dict[int, str]:
        failures = handle_membership_batch(db, records)
        for i, rec in enumerate(records):
            if i not in failures and rec.envelope.base_type == "membership.unit.moved":
                # welfare's own documents carry ancestors too: follow the move
                service.refresh_ancestors_after_move(db, rec.envelope.data["unit_id"])
        return failures
    return handle


def main() -> None:
    exit_cleanly_until_running()
    setup_logging()
    db = service.database()
    service.ensure_schema(db)
    topic = config.topic(TOPIC)
    ensure_topics([topic])
    loop = ConsumerLoop(GROUP, [topic], make_handler(db))
    loop.install_signal_handlers()
    loop.run()


if __name__ == "__main__":
    main()
