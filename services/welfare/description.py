"""What the runner (platformkit.run) needs to start any welfare process."""
import logging

from platformkit import contract
from platformkit.consumer import Record
from platformkit.membership_view import handle_membership_batch
from platformkit.run import Consumer, ServiceDescription

from . import commands, service
from .api import BLUEPRINTS
from .stores import INDEXES, OUTBOX_COLLECTIONS, SERVICE, Stores, stores

log = logging.getLogger(__name__)


def membership_view_handler(db):
    """welfare's local view of units and members (beneficiaries must be known and not left; scope
    needs unit ancestors); welfare's own documents follow a unit's move."""
    welfare = Stores(db)

    def handle(records: list[Record]) -> dict[int, str]:
        failures = handle_membership_batch(db, records)
        for i, rec in enumerate(records):
            if i not in failures and rec.envelope.base_type == "membership.unit.moved":
                service.follow_unit_move(commands.FollowUnitMove(rec.envelope.data["unit_id"]), welfare)
        return failures
    return handle


DESCRIPTION = ServiceDescription(
    name=SERVICE,
    summary="Welfare programmes, support cases with level-above approval and budgets, "
            "micro-loans with repayments. Money is whole đồng; dates are ISO 8601.",
    blueprints=BLUEPRINTS,
    indexes=INDEXES,
    # programmes and cases stored before their scope (or a case's list periods) existed get it,
    # once (the lists ask for it)
    setup=(lambda db: service.backfill_scope(Stores(db)), lambda db: service.backfill_case_periods(
        Stores(db), lambda done, total: log.info("case list periods: %d of %d cases", done, total))),
    path_scope=lambda view_args: service.path_scope(view_args, stores()),
    # Kafka key = aggregate id, so one case's events stay in order
    relay_routes={coll: contract.WELFARE_EVENTS for coll in OUTBOX_COLLECTIONS},
    consumers=(Consumer("membership-view", contract.WELFARE_MEMBERSHIP_VIEW, (contract.MEMBERSHIP_EVENTS,),
                        handler=membership_view_handler),),
)
