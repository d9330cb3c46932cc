"""A consumer process used by the foundation tests. It records every delivery (so a test can see a
redelivery) and applies each envelope once, keyed by its id (the idempotent write). An envelope
whose data says {"poison": true} is rejected by the handler and must reach the dead-letter topic.
RECORDER_BROKEN=1 makes it a bad deploy: processing raises on every record (each is rejected).

    python -m tests.support.recording_consumer GROUP TOPIC
"""
import os
import sys

from pymongo import UpdateOne

from platformkit import config, mongo
from platformkit.consumer import ConsumerLoop, Record
from platformkit.logs import setup_logging


def main() -> None:
    setup_logging()
    group, topic = sys.argv[1], sys.argv[2]
    db = mongo.database("recorder")
    broken = os.environ.get("RECORDER_BROKEN") == "1"

    def check(record: Record) -> None:
        if broken:
            raise KeyError("the field this build expects")  # the bug of a bad deploy


    def handle(records: list[Record]) -> dict[int, str]:
        failures: dict[int, str] = {}
        db.deliveries.insert_many([{"event_id": r.envelope.id, "offset": r.offset,
                                    "partition": r.partition} for r in records])
        ops = []
        for i, r in enumerate(records):
            try:
                check(r)
            except KeyError as exc:
                failures[i] = f"KeyError: {exc}"
                continue
            if r.envelope.data.get("poison"):
                failures[i] = "poison pill: this handler cannot process it"
                continue
            ops.append(UpdateOne({"_id": r.envelope.id},
                                 {"$setOnInsert": {"type": r.envelope.type, "data": r.envelope.data,
                                                   "subject": r.envelope.subject}}, upsert=True))
        if ops:
            db.applied.bulk_write(ops, ordered=False)
        return failures

    loop = ConsumerLoop(group, [config.topic(topic)], handle, max_batch=50)
    loop.install_signal_handlers()
    loop.run()


if __name__ == "__main__":
    main()
