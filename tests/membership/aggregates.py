"""The membership database with each unit, member and dues document's pending events as its
`outbox` (tests/support/aggregates.py)."""
from platformkit import mongo
from tests.support.aggregates import WithOutboxes


def db() -> WithOutboxes:
    return WithOutboxes(mongo.database("membership"), ("units", "members", "dues"))
