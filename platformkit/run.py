"""One runner for every process of every service, from the service's description.

    gunicorn ... 'platformkit.run:app("membership")'      # the api kind: the WSGI app factory
    python -m platformkit.run api membership [--bind HOST:PORT] # the same, gunicorn started for you
    python -m platformkit.run relay membership                  # publishes the outbox (relay_routes)
    python -m platformkit.run consumer training [membership-view]
    python -m platformkit.run consumer reporting projector
    python -m platformkit.run job reporting rebuild [--no-swap ...]
    python -m platformkit.run topics                            # creates every contract topic
    python -m platformkit.run describe [service]                # what the descriptions say

A service describes itself once, in `services/<name>/description.py` (DESCRIPTION): its name, HTTP
blueprints, indexes and setup steps, readiness checks, path scope, relay routes (collection ->
contract topic), consumers (group, topics, handler) and one-off jobs. Every process kind starts the
same way: settings reloaded from the environment, logging, clean exit on SIGTERM before the loop
runs, then the kind's work. deploy/Procfile names these commands.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

# Only the standard library at import: `python -m platformkit.run` installs its SIGTERM handler
# before anything slow is imported (see main).

log = logging.getLogger(__name__)

SERVICES = ("membership", "training", "welfare", "reporting")
PROCESS_KINDS = ("api", "relay", "consumer", "job")

Step = Callable[[Any], None]  # a setup step, given the service's database


def _database_ready(db) -> bool:
    from . import mongo
    return mongo.ping(db)


def _kafka_ready(_db) -> bool:
    from .kafka_io import kafka_ready
    return kafka_ready()


# One key per dependency, the same in every service: {"database": ..., "kafka": ...}.
DEFAULT_CHECKS: dict[str, Callable[[Any], bool]] = {"database": _database_ready, "kafka": _kafka_ready}


@dataclass(frozen=True)
class Consumer:
    """A consumer process of a service. `handler(db)` builds the BatchHandler of
    platformkit.consumer for the service's database; a consumer with its own loop (the reporting
    projector switching generations) gives `main` instead and sets itself up."""
    name: str
    group: str = ""
    topics: tuple[str, ...] = ()
    handler: Callable[[Any], Callable] | None = None
    main: Callable[[], None] | None = None


@dataclass(frozen=True)
class ServiceDescription:
    name: str
    summary: str  # the OpenAPI description
    blueprints: Sequence[Any] = ()
    indexes: dict[str, list] = field(default_factory=dict)
    setup: tuple[Step, ...] = ()  # after the indexes, before serving or consuming; idempotent
    path_scope: Callable | None = None
    checks: dict[str, Callable[[Any], bool]] = field(default_factory=lambda: dict(DEFAULT_CHECKS))
    relay_routes: dict[str, str] = field(default_factory=dict)  # outbox collection -> contract topic
    consumers: tuple[Consumer, ...] = ()
    extend_app: Callable[[Any], None] | None = None  # extra routes outside the API (the dashboard)
    jobs: dict[str, Callable[[list[str]], Any]] = field(default_factory=dict)  # name -> main(argv)

    def database(self):
        from . import mongo
        return mongo.database(self.name)

    def prepare(self, db=None) -> None:
        """Indexes, then the setup steps: what every process that uses the database needs first."""
        from . import mongo
        db = self.database() if db is None else db
        mongo.ensure_indexes(db, self.indexes)
        for step in self.setup:
            step(db)

    def consumer(self, name: str | None) -> Consumer:
        if name is None:
            if len(self.consumers) != 1:
                raise SystemExit(f"{self.name} has consumers {[c.name for c in self.consumers]}: name one")
            return self.consumers[0]
        for c in self.consumers:
            if c.name == name:
                return c
        raise SystemExit(f"{self.name} has no consumer {name!r}; it has {[c.name for c in self.consumers]}")


def describe(service: str) -> ServiceDescription:
    if service not in SERVICES:
        raise SystemExit(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    return importlib.import_module(f"services.{service}.description").DESCRIPTION


# ---------------------------------------------------------------------------- the process kinds
def app(service: str):
    """The api kind: the WSGI application of `service` (gunicorn calls this in each worker)."""
    from . import settings
    from .web import create_app
    settings.reload()
    d = describe(service)
    web = create_app(d.name, list(d.blueprints), description=d.summary, path_scope=d.path_scope,
                     ready=lambda: {name: check(d.database()) for name, check in d.checks.items()})
    # Indexes first: the unique Idempotency-Key indexes are what makes a retried POST safe; a
    # database not reachable makes the worker fail to boot (and the orchestrator retry).
    d.prepare()
    if d.extend_app:
        d.extend_app(web)
    return web


def _start_worker() -> None:
    from .logs import setup_logging
    from . import settings
    from .shutdown import exit_cleanly_until_running
    exit_cleanly_until_running()
    settings.reload()
    setup_logging()


def run_relay(service: str) -> None:
    _start_worker()  # before importing the service: an orchestrator may stop us while we import
    from . import contract
    from .relay import run_relay as relay
    d = describe(service)
    if not d.relay_routes:
        raise SystemExit(f"{service} publishes no events (no relay_routes)")
    contract.ensure(sorted(set(d.relay_routes.values())))
    relay(d.name, d.relay_routes)


def run_consumer(service: str, name: str | None = None) -> None:
    _start_worker()  # before importing the service: an orchestrator may stop us while we import
    from . import contract
    from .consumer import ConsumerLoop
    d = describe(service)
    c = d.consumer(name)
    if c.main is not None:
        c.main()
        return
    db = d.database()
    d.prepare(db)
    # Subscribing to a topic that does not exist yet works, but creating it avoids a slow first
    # metadata round; idempotent.
    contract.ensure(c.topics)
    loop = ConsumerLoop(c.group, contract.topics(c.topics), c.handler(db))
    loop.install_signal_handlers()
    loop.run()


PREPARE = "prepare"  # the job every service has: ServiceDescription.prepare


def run_job(service: str, job: str, argv: list[str]) -> Any:
    from .shutdown import exit_cleanly_until_running
    from . import settings
    exit_cleanly_until_running()  # the job installs its own handlers once it runs
    d = describe(service)
    if job == PREPARE:
        # the indexes and setup steps every process runs first, on their own: a one-off backfill
        # of a large store (welfare's case periods, 129,280 cases at 2.5M members, ~20 min) runs
        # here before the new version's API workers start (they then find it done: mongo.run_once)
        from .logs import setup_logging
        settings.reload()
        setup_logging()
        d.prepare()
        return 0
    if job not in d.jobs:
        raise SystemExit(f"{service} has no job {job!r}; it has {sorted([PREPARE, *d.jobs])}")
    settings.reload()
    return d.jobs[job](argv)


def create_topics() -> None:
    from . import contract, settings
    from .logs import setup_logging
    settings.reload()
    setup_logging()
    print("topics ready:", ", ".join(contract.ensure_all()))


def serve_api(service: str, bind: str | None) -> None:
    """`run api <service>` outside gunicorn's command line: exec gunicorn with the shared config."""
    describe(service)  # fail early on a wrong name
    conf = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "deploy", "gunicorn.conf.py")
    args = [sys.executable, "-m", "gunicorn", "-c", conf, "-b", bind or "127.0.0.1:8000", f'platformkit.run:app("{service}")']
    os.execv(sys.executable, args)


def _describe_lines(services: Iterable[str]) -> list[str]:
    lines = []
    for s in services:
        d = describe(s)
        lines.append(f"{d.name}: api ({len(d.blueprints)} blueprints, readiness {sorted(d.checks)})")
        if d.relay_routes:
            lines.append(f"  relay: {d.relay_routes}")
        for c in d.consumers:
            lines.append(f"  consumer {c.name}: " + (f"group {c.group} on {list(c.topics)}" if c.main is None
                                                       else "its own loop"))
        for j in d.jobs:
            lines.append(f"  job {j}")
    return lines


def main(argv: list[str] | None = None) -> None:
    from .shutdown import exit_cleanly_until_running
    # First thing: a SIGTERM while we parse and import (seconds on a busy node) is a clean exit 0,
    # not a -15 an orchestrator reports as a crash; each kind installs its own handler once it runs.
    exit_cleanly_until_running()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m platformkit.run", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    a = sub.add_parser("api", help="serve the HTTP API with gunicorn")
    a.add_argument("service", choices=SERVICES)
    a.add_argument("--bind", help="HOST:PORT (default 127.0.0.1:8000)")
    r = sub.add_parser("relay", help="publish the service's outbox")
    r.add_argument("service", choices=SERVICES)
    c = sub.add_parser("consumer", help="run one of the service's consumers")
    c.add_argument("service", choices=SERVICES)
    c.add_argument("consumer", nargs="?", help="its name (optional when the service has one)")
    # no -h of its own: `job reporting rebuild --help` is the job's help
    j = sub.add_parser("job", add_help=False, help="run a one-off job of the service (further arguments go to the job)")
    j.add_argument("service", choices=SERVICES)
    j.add_argument("job")
    sub.add_parser("topics", help="create every topic of the contract (idempotent)")
    dsc = sub.add_parser("describe", help="print what the service descriptions declare")
    dsc.add_argument("service", nargs="?", choices=SERVICES)
    args, rest = parser.parse_known_args(argv)
    if rest and args.kind != "job":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.kind == "api":
        serve_api(args.service, args.bind)
    elif args.kind == "relay":
        run_relay(args.service)
    elif args.kind == "consumer":
        run_consumer(args.service, args.consumer)
    elif args.kind == "job":
        run_job(args.service, args.job, rest)
    elif args.kind == "topics":
        create_topics()
    else:
        print("\n".join(_describe_lines([args.service] if args.service else SERVICES)))


if __name__ == "__main__":
    main()
