"""Every environment variable the platform reads, in one table, read once.

`current()` is the snapshot every module uses (`settings.current().topic_prefix`); it is taken on
first use, and again by `reload()`: the runner (platformkit.run) reloads at the start of every
process, so a process sees the environment it was started with. Tests that change the environment
through pytest's monkeypatch get a fresh snapshot automatically (tests/conftest.py); code that sets
os.environ itself (bench/) calls `reload()`.

No other module reads os.environ (tests/unit/test_settings.py fails when one does, and when a
variable of this table is missing from docs/operations.md, where each one is described with its
default). A value that does not parse stops the start with a message naming the variable.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Callable


class SettingsError(ValueError):
    """A variable whose value does not parse (the message names it)."""


@dataclass(frozen=True)
class Var:
    name: str
    default: str
    parse: Callable[[str], Any]
    doc: str

    @property
    def attr(self) -> str:
        return self.name.lower()


def _int(raw: str) -> int:
    return int(raw)


def _opt_int(raw: str) -> int | None:
    return int(raw) if raw.strip() else None


def _float(raw: str) -> float:
    return float(raw)


def _str(raw: str) -> str:
    return raw


def _lower(raw: str) -> str:
    return raw.strip().lower()


def _flag(raw: str) -> bool:
    if raw.strip().lower() not in ("0", "1", "true", "false", "yes", "no", ""):
        raise ValueError(raw)
    return raw.strip().lower() in ("1", "true", "yes")


def _list(raw: str) -> list[str]:
    return [p.strip() for p in raw.split(",") if p.strip()]


VARIABLES: tuple[Var, ...] = (
    # ---- where the broker and the database are
    Var("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092", _list, "Kafka brokers, comma separated"),
    Var("MONGO_URL", "", _str, "MongoDB/FerretDB connection string; empty: mongodb://127.0.0.1:$DB_PORT"),
    Var("DB_PORT", "27017", _str, "port of the local database when MONGO_URL is empty"),
    Var("MONGO_SOCKET_TIMEOUT_MS", "30000", _int, "a database request waiting longer fails (API 503, consumer retry)"),
    Var("FERRETDB_POSTGRESQL_URL", "", _str, "the local store's PostgreSQL (deploy/local/infra.sh env): GIN indexes for FerretDB's pushed-down filters; empty: none (MongoDB)"),
    Var("DB_PREFIX", "congdoan_", _str, "database name prefix: <prefix><service>"),
    Var("TOPIC_PREFIX", "", _str, "prefix of every topic and consumer group (tests, side-by-side demos); empty in production"),
    Var("TOPIC_PARTITIONS", "6", _int, "partitions of the topics the platform creates"),
    # ---- tokens
    Var("PLATFORM_ENV", "production", _lower, "`local` allows the development signing key"),
    Var("TOKEN_SECRET", "", _str, "the key that signs and checks tokens (>= 32 bytes outside local development)"),
    Var("TOKEN_SECRET_PREVIOUS", "", _str, "the previous key, still accepted during a rotation"),
    Var("TOKEN_MAX_TTL_SECONDS", "604800", _str, "longest token lifetime accepted (checked by platformkit.auth)"),
    Var("TOKEN_REVOCATION_FILE", "", _str, "file of revoked token ids and subjects, re-read when it changes"),
    # ---- HTTP processes
    Var("WEB_WORKERS", "2", _int, "gunicorn worker processes per API process"),
    Var("WEB_THREADS", "4", _int, "threads per gunicorn worker"),
    Var("HEAVY_READS_PER_WORKER", "", _opt_int, "heavy reads served at once per worker; empty: WEB_THREADS - 2 (at least 1)"),
    Var("READ_TIME_LIMIT_SECONDS", "10", _float, "time budget of a heavy read before it answers 503"),
    Var("CONTRACT_CHECK", "0", _flag, "1: refuse to commit an event lacking a data field of platformkit/contract.py EVENT_DATA (on in tests)"),
    Var("REPOSITORY_RETRY_SECONDS", "10", _float, "how long a command with no version keeps deciding again after losing the race to commit (then 503 busy)"),
    # ---- relays, consumers, the projector
    Var("METRICS_PORT", "0", _int, "port of the /metrics endpoint of relays and consumers; 0: none"),
    Var("METRICS_ADDR", "127.0.0.1", _str, "address the metrics endpoint listens on (0.0.0.0 in containers)"),
    Var("CONSUMER_BATCH", "100", _int, "records per consumer batch"),
    Var("STOP_GRACE_SECONDS", "20", _float, "a stopping consumer blocked longer than this exits (nothing in flight)"),
    Var("DEAD_LETTER_MAX_CONSECUTIVE", "100", _int, "a consumer stops (exit 3) after this many dead letters in a row; 0: no limit"),
    Var("DEAD_LETTER_MAX_RATIO", "0.5", _float, "... or when more than this share of its last DEAD_LETTER_WINDOW records were dead-lettered; 0: no limit"),
    Var("DEAD_LETTER_WINDOW", "1000", _int, "records over which DEAD_LETTER_MAX_RATIO is measured"),
    Var("PROJECTOR_BATCH", "1000", _int, "records per batch of the reporting projector"),
    Var("REPORTING_AGG_BUCKETS", "32", _int, "collections the reporting unit-month documents are spread over"),
    Var("REPORTING_STATE_BUCKETS", "64", _int, "collections the projector's per-aggregate states are spread over"),
    Var("LOG_LEVEL", "", _str, "log level (INFO by default; the rebuild logs WARNING)"),
    # ---- crash tests only
    Var("FAULT_POINT", "", _str, "crash tests: the named point where the process SIGKILLs itself"),
    Var("FAULT_AFTER", "1", _int, "crash tests: at which passage of FAULT_POINT"),
    # ---- the demo (python -m services.demo) and the local runner
    Var("CONGDOAN_VAR", "", _str, "directory of local state (logs, pids, demo token); empty: ./var"),
    Var("MEMBERSHIP_URL", "http://127.0.0.1:8001", _str, "the demo's membership API"),
    Var("TRAINING_URL", "http://127.0.0.1:8002", _str, "the demo's training API"),
    Var("WELFARE_URL", "http://127.0.0.1:8003", _str, "the demo's welfare API"),
    Var("REPORTING_URL", "http://127.0.0.1:8004", _str, "the demo's reporting API"),
)
BY_NAME = {v.name: v for v in VARIABLES}


class Settings:
    """A parsed snapshot: one attribute per variable, lower-cased (`s.topic_prefix`)."""

    def __init__(self, environ: dict[str, str] | os._Environ | None = None):
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for var in VARIABLES:
            raw = env.get(var.name) or var.default  # empty is unset (compose passes `X: ""`)
            try:
                values[var.attr] = var.parse(raw)
            except ValueError:
                raise SettingsError(f"{var.name}={raw!r} is not valid: {var.doc}") from None
        self.__dict__.update(values)
        self.raw = {var.name: env.get(var.name) or var.default for var in VARIABLES}

    def __getattr__(self, name: str) -> Any:  # only reached for names not in the table
        raise AttributeError(f"no setting {name!r}: declare it in platformkit/settings.py VARIABLES")

    # derived values, so that the rule lives next to the variables
    @property
    def mongo_uri(self) -> str:
        return self.mongo_url or f"mongodb://127.0.0.1:{self.db_port}"

    def heavy_reads(self) -> int:
        default = max(1, self.web_threads - 2)
        return max(1, self.heavy_reads_per_worker if self.heavy_reads_per_worker is not None else default)


_lock = threading.Lock()
_current: Settings | None = None


def current() -> Settings:
    global _current
    snapshot = _current
    if snapshot is None:
        with _lock:
            if _current is None:
                _current = Settings()
            snapshot = _current
    return snapshot


def reload() -> Settings:
    """Read the environment again (process start; tests after changing it)."""
    global _current
    with _lock:
        _current = Settings()
        return _current
