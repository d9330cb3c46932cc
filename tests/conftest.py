"""Shared fixtures. Integration tests need the real broker and database: `make test` starts them
(deploy/local/infra.sh up); if they are not reachable here, the session starts them itself."""
from __future__ import annotations

import os
import socket
import subprocess

import pytest

# Tests run as local development: the services accept the development signing key only there
# (tests/unit/test_key_policy.py covers the refusal elsewhere). Child processes inherit it.
os.environ.setdefault("PLATFORM_ENV", "local")
# Every event any test (or a process it starts) commits is checked against the contract's data
# fields (platformkit/contract.py EVENT_DATA): a missing field fails the command, hence the test.
os.environ.setdefault("CONTRACT_CHECK", "1")

from platformkit import config, mongo, settings
from tests.support.infra import ROOT, Proc, unique_prefix


def _reloading(method):
    def changed_environment(self, *args, **kwargs):
        result = method(self, *args, **kwargs)
        settings.reload()
        return result
    return changed_environment


# platformkit.settings reads the environment once per process (and again on reload()); tests change
# it through monkeypatch, so every monkeypatch change of the environment, and its undo, re-reads it.
for _name in ("setenv", "delenv", "undo"):
    setattr(pytest.MonkeyPatch, _name, _reloading(getattr(pytest.MonkeyPatch, _name)))


def _port_open(hostport: str) -> bool:
    host, port = hostport.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def infra():
    kafka = config.kafka_bootstrap()[0]
    if not _port_open(kafka) or (not os.environ.get("MONGO_URL") and
                                 not _port_open("127.0.0.1:" + settings.current().db_port)):
        subprocess.run([str(ROOT / "deploy/local/infra.sh"), "up"], check=True)
    if not os.environ.get("FERRETDB_POSTGRESQL_URL"):
        # The local store's PostgreSQL, when it runs (what `make test` sets): platformkit/store_prep.py.
        for line in subprocess.run([str(ROOT / "deploy/local/infra.sh"), "env"], check=True,
                                   capture_output=True, text=True).stdout.splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            os.environ[name] = value
    return {"kafka": kafka, "mongo": config.mongo_url()}


@pytest.fixture
def isolated(infra, monkeypatch, tmp_path):
    """A fresh topic prefix and database prefix for one test: its own topics, its own databases.
    Child processes inherit them through the environment."""
    prefix = unique_prefix()
    monkeypatch.setenv("TOPIC_PREFIX", prefix + ".")
    monkeypatch.setenv("DB_PREFIX", prefix + "_")
    monkeypatch.setenv("TOPIC_PARTITIONS", "3")
    yield {"prefix": prefix, "tmp": tmp_path}
    # Drop by name: listDatabases on FerretDB opens every database file, which is slow and can
    # block behind another process's write.
    client = mongo.client()
    for service in ("membership", "training", "welfare", "reporting", "things", "recorder"):
        client.drop_database(f"{prefix}_{service}")


@pytest.fixture
def procs(isolated):
    """Start real processes; every one is stopped at the end of the test."""
    started: list[Proc] = []

    def start(args: list[str], name: str, extra_env: dict[str, str] | None = None) -> Proc:
        proc = Proc(args, {}, name, isolated["tmp"])
        proc.start(extra_env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
