"""What the runner (platformkit.run) needs to start any membership process."""
import argparse
import time
from datetime import date

from platformkit import contract
from platformkit.run import ServiceDescription
from platformkit.web import request_cache

from . import service
from .stores import INDEXES, OUTBOX_COLLECTIONS, Stores, stores
from .api import members, units

def _apply_due(argv: list[str]) -> None:
    """`python -m platformkit.run job membership apply-due [--on DATE] [--every SECONDS]`: apply the
    scheduled unit changes whose date has come. A job, not part of the relay: the relay is the
    shared plumbing that only publishes change documents and never writes an aggregate
    (platformkit/repository.py); this step writes units through the service's handlers. Run it
    once a day after midnight in Vietnam (cron), or as a small long-running process with
    `--every` (compose); two copies at once are safe (service.apply_due)."""
    import logging
    parser = argparse.ArgumentParser(prog="python -m platformkit.run job membership apply-due")
    parser.add_argument("--on", type=date.fromisoformat, help="apply changes dated this day or earlier (default: today in Vietnam)")
    parser.add_argument("--every", type=float, help="repeat every SECONDS (default: run once)")
    args = parser.parse_args(argv)
    log = logging.getLogger("membership.apply-due")
    while True:
        applied = service.apply_due(args.on, stores())
        log.info("applied %d scheduled changes", len(applied), extra={"service": service.SERVICE})
        if not args.every:
            return
        time.sleep(args.every)


DESCRIPTION = ServiceDescription(
    name=service.SERVICE,
    summary="Org hierarchy, CĐCS founding, members' lifecycle and dues.",
    blueprints=(units, members),
    indexes=INDEXES,
    # members' and units' stored paths follow a move that was interrupted half-way (idempotent);
    # members stored before their name terms existed get them, once (the name search asks them)
    setup=(lambda db: service.repair_paths(Stores(db)), lambda db: service.backfill_name_terms(Stores(db))),
    path_scope=lambda view_args: service.path_scope(view_args, stores(), cache=request_cache()),
    jobs={"apply-due": _apply_due},
    relay_routes={coll: contract.MEMBERSHIP_EVENTS for coll in OUTBOX_COLLECTIONS},
)
