"""What the runner (platformkit.run) needs to start any training process."""
from platformkit import contract
from platformkit.run import Consumer, ServiceDescription

from . import service
from .api import BLUEPRINTS
from .view import apply_membership_batch

DESCRIPTION = ServiceDescription(
    name=service.SERVICE,
    summary="Courses, classes, enrolment, attendance, completion, certificates and "
            "dissemination sessions of the trade union's training work.",
    blueprints=BLUEPRINTS,
    indexes=service.INDEXES,
    # the change documents of courses and classes (store.py) and the dissemination sessions
    relay_routes={coll: contract.TRAINING_EVENTS
                  for coll in (f"{service.COURSES}_events", f"{service.CLASSES}_events", service.SESSIONS)},
    consumers=(
        # training's local view of units and members (platformkit.membership_view, plus the
        # member's unit ancestors)
        Consumer("membership-view", contract.TRAINING_MEMBERSHIP_VIEW, (contract.MEMBERSHIP_EVENTS,),
                 handler=lambda db: lambda records: apply_membership_batch(db, records)),
    ),
)
