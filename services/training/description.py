"""What the runner (platformkit.run) needs to start any training process."""
from platformkit import contract
from platformkit.run import Consumer, ServiceDescription

from .api import BLUEPRINTS
from .stores import CLASSES, COURSES, INDEXES, SERVICE, SESSIONS, stores
from .view import apply_membership_batch

DESCRIPTION = ServiceDescription(
    name=SERVICE,
    summary="Courses, classes, enrolment, attendance, completion, certificates and "
            "dissemination sessions of the trade union's training work.",
    blueprints=BLUEPRINTS,
    indexes=INDEXES,
    # the change documents of courses and classes (stores.py) and the dissemination sessions
    relay_routes={coll: contract.TRAINING_EVENTS for coll in (f"{COURSES}_events", f"{CLASSES}_events", SESSIONS)},
    consumers=(
        # training's local view of units and members (platformkit.membership_view, plus the
        # member's unit ancestors). The runner prepared `db`, the database `stores()` is on.
        Consumer("membership-view", contract.TRAINING_MEMBERSHIP_VIEW, (contract.MEMBERSHIP_EVENTS,),
                 handler=lambda _db: lambda records: apply_membership_batch(records, stores())),
    ),
)
