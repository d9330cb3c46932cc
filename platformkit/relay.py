"""Entrypoint of an outbox relay process:

    python -m platformkit.relay --service membership --route members=membership.events ...

Each service ships a module that calls `run_relay` with its own routes."""
from __future__ import annotations

import argparse

from . import contract, mongo, settings
from .logs import setup_logging
from .metrics import serve_metrics
from .outbox import OutboxRelay
from .shutdown import exit_cleanly_until_running


def run_relay(service: str, routes: dict[str, str]) -> None:
    exit_cleanly_until_running()
    setup_logging()
    serve_metrics(settings.current().metrics_port)
    topics = {coll: contract.topic(t) for coll, t in routes.items()}
    OutboxRelay(service, mongo.database(service), topics).run()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--service", required=True)
    parser.add_argument("--route", action="append", required=True, help="collection=topic")
    args = parser.parse_args()
    run_relay(args.service, dict(r.split("=", 1) for r in args.route))


if __name__ == "__main__":
    main()
