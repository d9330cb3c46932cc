"""What the runner (platformkit.run) needs to start any training process."""
import logging

from platformkit import contract
from platformkit.run import Consumer, ServiceDescription

from . import service
from .api import BLUEPRINTS
from .stores import CLASSES, COURSES, INDEXES, SERVICE, SESSIONS, Stores, stores
from .view import apply_membership_batch

log = logging.getLogger(__name__)

DESCRIPTION = ServiceDescription(
    name=SERVICE,
    summary="Courses, classes, enrolment, attendance, completion, certificates and "
            "dissemination sessions of the trade union's training work.",
    blueprints=BLUEPRINTS,
    indexes=INDEXES,
    # classes stored before their list periods existed get them, once (the class list asks for them)
    setup=(lambda db: service.backfill_class_periods(
        Stores(db), lambda done, total: log.info("class list periods: %d of %d classes", done, total)),),
    # the change documents of courses and classes (stores.py) and the dissemination sessions
    relay_routes={coll: contract.TRAINING_EVENTS for coll in (f"{COURSES}_events", f"{CLASSES}_events", SESSIONS)},
    consumers=(
        # training's local view of units and members (platformkit.membership_view, plus the
        # member's unit ancestors). The runner prepared `db`, the database `stores()` is on.
        Consumer("membership-view", contract.TRAINING_MEMBERSHIP_VIEW, (contract.MEMBERSHIP_EVENTS,),
                 handler=lambda _db: lambda records: apply_membership_batch(records, stores())),
    ),
)
