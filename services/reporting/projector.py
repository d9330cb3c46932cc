"""The reporting projector: consumes every domain topic and keeps the rolled-up views.

    python -m services.reporting.projector

Per batch (platformkit.consumer): decode -> project each event in offset order (pure) -> write
the journal of guarded increments -> commit offsets. Hierarchy changes split the batch: the facts
before them are flushed first, so a moved unit carries exactly what was counted under it.
Exactly-once effect: each rolled-up document remembers, per source partition, the last offset it
includes; redelivery after a crash adds nothing twice, and an interrupted flush is finished from
its journal before anything else happens.
"""
from __future__ import annotations

import logging
import time

from platformkit import config, contract, mongo, settings
from platformkit.consumer import ConsumerLoop, Record
from platformkit.logs import setup_logging
from platformkit.shutdown import exit_cleanly_until_running

from .generations import BaseGeneration, Generation, PlacedDelta, active_generation, partition_key
from .projection import Effects, projector_for

log = logging.getLogger(__name__)
SERVICE = "reporting"
SOURCE_TOPICS = contract.REPORTING_SOURCES
group_id = contract.projector_group


def db():
    return mongo.database(SERVICE)


def seen_key(env) -> str:
    return f"seen:{env.source}:{env.subject}"


def is_duplicate(env, seen: dict | None) -> bool:
    """Per aggregate: the last version applied and the envelope ids seen at that version (one
    command may raise several events with the same version)."""
    if not seen:
        return False
    return env.aggregateversion < seen["v"] or (env.aggregateversion == seen["v"] and env.id in seen["ids"])


def remember(env, seen: dict | None) -> dict:
    if seen and env.aggregateversion == seen["v"]:
        return {"v": seen["v"], "ids": seen["ids"] + [env.id]}
    return {"v": env.aggregateversion, "ids": [env.id]}


class ProjectorHandler:
    """The BatchHandler of platformkit.consumer for one generation of the views."""

    def __init__(self, generation: BaseGeneration):
        self.gen = generation
        self.gen.setup()
        self.gen.replay_journals()

    def __call__(self, records: list[Record]) -> dict[int, str]:
        try:
            return self._handle(records)
        except BaseException:
            # a write may or may not have happened: what this process remembers of the store is void
            self.forget_store()
            raise

    def forget_store(self) -> None:
        """Called when the batch failed and when the consumer's partitions change hands."""
        self.gen.drop_memory()

    def _handle(self, records: list[Record]) -> dict[int, str]:
        failures: dict[int, str] = {}
        state_keys: dict[int, str | None] = {}
        projectors = [projector_for(r.envelope) for r in records]  # each envelope dispatched once
        # An event that depends on no memory and changes nothing (a case requested, a class planned)
        # needs no duplicate check either: its redelivery changes nothing too. Projected here once.
        stateless: dict[int, Effects] = {}
        for i, r in enumerate(records):
            try:
                state_keys[i] = projectors[i].state_key(r.envelope)
                if state_keys[i] is None:
                    stateless[i] = projectors[i].project(r.envelope, None)
            except (KeyError, TypeError, ValueError) as exc:  # an event lacking its facts: dead letter
                failures[i] = f"{type(exc).__name__}: {exc}"
        inert = {i for i, fx in stateless.items() if fx.empty}
        keys = [k for k in state_keys.values() if k]
        keys += [seen_key(r.envelope) for i, r in enumerate(records) if i not in failures and i not in inert]
        states = self.gen.load_states(keys)
        changed: dict[str, dict] = {}
        pending_ops: list[dict] = []
        placed: list[PlacedDelta] = []

        def flush():
            ops = pending_ops + self.gen.fact_ops(placed)
            self.gen.run_journal(ops)
            pending_ops.clear()
            placed.clear()

        for i, rec in enumerate(records):
            if i in failures or i in inert:
                continue
            env = rec.envelope
            pkey = partition_key(rec.topic, rec.partition)
            skey = seen_key(env)
            seen = states.get(skey)
            if is_duplicate(env, seen):
                continue  # re-published by a relay after a crash: same envelope, new offset
            key = state_keys[i]
            try:
                fx: Effects = stateless[i] if i in stateless else projectors[i].project(env, states.get(key))
            except (KeyError, TypeError, ValueError) as exc:
                failures[i] = f"{type(exc).__name__}: {exc}"
                continue  # not remembered as seen: its replay from the dead letters is applied
            states[skey] = changed[skey] = remember(env, seen)
            for unit_id, ancestors in fx.unit_hints:
                pending_ops.extend(self.gen.provisional_ops(unit_id, ancestors))
            placed.extend(PlacedDelta(pkey, rec.offset, d) for d in fx.deltas)
            if fx.hierarchy is not None:
                flush()
                self.gen.run_journal(self.gen.hierarchy_ops(fx.hierarchy, pkey, rec.offset, env.aggregateversion))
            if fx.state_key and fx.new_state is not None:
                states[fx.state_key] = fx.new_state
                changed[fx.state_key] = fx.new_state
        flush()
        # Memory is saved after the counts: if we die in between, redelivery recomputes the same
        # deltas from the old memory and the offset guards drop them.
        self.gen.save_states(changed)
        return failures


def run_generation(number: int) -> bool:
    """Consume into generation `number` until stopped (False) or until another generation
    becomes active (True: the caller switches)."""
    gen = Generation(db(), number)
    handler = ProjectorHandler(gen)
    switched = {"flag": False}
    last_check = {"t": 0.0}

    def check_generation():
        if time.monotonic() - last_check["t"] > 2:
            last_check["t"] = time.monotonic()
            if active_generation(db()) != number:
                switched["flag"] = True
                loop.stop()

    loop = ConsumerLoop(group_id(number), [config.topic(t) for t in SOURCE_TOPICS], handler,
                        max_batch=settings.current().projector_batch,
                        on_idle=check_generation, after_batch=check_generation,
                        on_partitions_changed=handler.forget_store)
    loop.install_signal_handlers()
    loop.run()
    return switched["flag"]


def main() -> None:
    exit_cleanly_until_running()
    setup_logging()
    from platformkit.kafka_io import ensure_topics
    ensure_topics([config.topic(t) for t in SOURCE_TOPICS])
    while run_generation(active_generation(db())):
        log.info("a rebuilt generation became active; switching")


if __name__ == "__main__":
    main()
