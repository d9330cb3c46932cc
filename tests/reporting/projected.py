"""A small synthetic province published to real Kafka and projected by the real projector process,
once per test module: `projected_province` is a context manager a module-scoped fixture wraps.

The function-scoped `isolated` fixture of tests/conftest.py cannot serve a module, so this sets
the same environment (unique TOPIC_PREFIX / DB_PREFIX) itself, with pytest.MonkeyPatch.context(),
for as long as the module's tests run; child processes (the projector, gunicorn) inherit it."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from platformkit import config, mongo
from platformkit.kafka_io import EventPublisher, ensure_topics
from services.reporting import views
from services.reporting.periods import parse
from services.reporting.store import Generation, active_generation
from synthetic.province import Province
from tests.reporting.recount import COMPARED, recount
from tests.support.infra import Proc, unique_prefix, wait_until

SOURCES = ("membership.events", "training.events", "welfare.events")
PROJECTOR = ["-m", "platformkit.run", "consumer", "reporting", "projector"]


@dataclass
class Projected:
    province: Province
    envs: list
    prefix: str
    log_dir: Path
    _recounts: dict = field(default_factory=dict)

    def recount(self, period: str = "2025") -> dict[str, dict[str, int]]:
        if period not in self._recounts:
            p = parse(period)
            self._recounts[period] = recount(self.envs, p.first, p.last)
        return self._recounts[period]

    def units(self) -> list[str]:
        return sorted({e.data["unit_id"] for e in self.envs if e.type == "membership.unit.created.v1"})

    def expected(self, unit: str, period: str = "2025") -> dict[str, int]:
        got = self.recount(period).get(unit, {})
        return {k: got.get(k, 0) for k in COMPARED}


def figures(unit: str, period: str) -> dict[str, int]:
    db = mongo.database("reporting")
    gen = Generation(db, active_generation(db))
    sums = views.period_sums(gen, [unit], parse(period))[unit]
    return {k: sums.get(k, 0) for k in COMPARED}


@contextmanager
def projected_province(log_dir: Path, seed: int = 21, communes: int = 2, cdcs: int = 6, members: int = 300,
                       extra: Callable[[Province], list] | None = None):
    """`extra`: more events after the province's own (made from the province once its stream ran),
    projected and recounted with them."""
    prefix = unique_prefix()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TOPIC_PREFIX", prefix + ".")
        mp.setenv("DB_PREFIX", prefix + "_")
        mp.setenv("TOPIC_PARTITIONS", "3")
        province = Province(seed=seed, communes=communes, cdcs=cdcs, members=members)
        envs = list(province.events())
        if extra is not None:
            envs += extra(province)
        ensure_topics([config.topic(t) for t in SOURCES], partitions=3)
        publisher = EventPublisher()
        try:
            by_topic: dict[str, list] = {}
            for e in envs:
                by_topic.setdefault(config.topic(f"{e.source}.events"), []).append(e)
            for topic, evs in by_topic.items():
                for i in range(0, len(evs), 2000):
                    publisher.publish(topic, evs[i:i + 2000])
        finally:
            publisher.close()
        projector = Proc(PROJECTOR, {}, "projector", log_dir).start()
        done = Projected(province, envs, prefix, log_dir)
        try:
            # every unit, not only the province: the rolled-up documents of the levels are
            # written one after the other
            wait_until(lambda: all(figures(u, "2025") == done.expected(u, "2025") for u in done.units()), 120,
                       interval=0.5, message="projector caught up at every level")
            yield done
        finally:
            projector.kill()
            client = mongo.client()
            for service in ("membership", "training", "welfare", "reporting"):
                client.drop_database(f"{prefix}_{service}")
