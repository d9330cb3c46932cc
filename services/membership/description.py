"""What the runner (platformkit.run) needs to start any membership process."""
from platformkit import contract
from platformkit.run import ServiceDescription

from . import service
from .api import members, units

DESCRIPTION = ServiceDescription(
    name=service.SERVICE,
    summary="Org hierarchy, CĐCS founding, members' lifecycle and dues.",
    blueprints=(units, members),
    indexes=service.INDEXES,
    # members' and units' stored paths follow a move that was interrupted half-way (idempotent)
    setup=(lambda db: service.repair_paths(),),
    path_scope=service.path_scope,
    relay_routes={coll: contract.MEMBERSHIP_EVENTS for coll in service.OUTBOX_COLLECTIONS},
)
