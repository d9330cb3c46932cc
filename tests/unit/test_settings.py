"""platformkit/settings.py is the only reader of the environment, and docs/operations.md lists every
variable it reads with its default."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from platformkit import settings

ROOT = Path(__file__).resolve().parents[2]
CODE = [*(p for d in ("platformkit", "services") for p in (ROOT / d).rglob("*.py")),
        ROOT / "deploy" / "gunicorn.conf.py"]
ENV_READ = re.compile(r"\bos\.environ\b|\bos\.getenv\b|\bgetenv\(|\benviron\.get\(|from os import .*environ")
SETTING_USE = re.compile(r"current\(\)\.([a-z_]+)")
DOC = (ROOT / "docs" / "operations.md").read_text()


def env_reads(text: str) -> list[int]:
    return [n for n, line in enumerate(text.splitlines(), 1) if ENV_READ.search(line)]


def test_only_the_settings_module_reads_the_environment():
    offenders = [f"{p.relative_to(ROOT)}:{n}" for p in CODE if p != ROOT / "platformkit" / "settings.py"
                 for n in env_reads(p.read_text())]
    assert not offenders, "read environment variables through platformkit.settings: " + ", ".join(offenders)


def test_the_check_sees_an_environment_read():
    assert env_reads('import os\nx = os.environ.get("X")\ny = os.getenv("Y")\nz = 1\n') == [2, 3]


def test_every_setting_used_is_declared():
    declared = {v.attr for v in settings.VARIABLES} | {n for n in dir(settings.Settings) if not n.startswith("_")}
    used = {(p.relative_to(ROOT), m) for p in CODE for m in SETTING_USE.findall(p.read_text())}
    unknown = sorted(f"{p}: {name}" for p, name in used if name not in declared)
    assert not unknown, "declare these in platformkit/settings.py VARIABLES: " + ", ".join(unknown)
    assert used, "the scan found no use of the settings at all"


@pytest.mark.parametrize("var", settings.VARIABLES, ids=lambda v: v.name)
def test_every_variable_is_documented_with_its_default(var):
    default = f"`{var.default}`" if var.default else "(empty)"
    assert f"| `{var.name}` | {default} |" in DOC, f"docs/operations.md ## Environment: add {var.name}"


def test_defaults_parse_and_bad_values_name_the_variable():
    s = settings.Settings({})
    assert s.topic_partitions == 6 and s.kafka_bootstrap_servers == ["127.0.0.1:9092"]
    assert s.mongo_uri == "mongodb://127.0.0.1:27017"
    assert settings.Settings({"DB_PORT": "27018"}).mongo_uri == "mongodb://127.0.0.1:27018"
    assert settings.Settings({"TOPIC_PARTITIONS": ""}).topic_partitions == 6, "empty is unset"
    with pytest.raises(settings.SettingsError, match="TOPIC_PARTITIONS"):
        settings.Settings({"TOPIC_PARTITIONS": "six"})
    assert settings.Settings({"WEB_THREADS": "8"}).heavy_reads() == 6
    assert settings.Settings({"WEB_THREADS": "8", "HEAVY_READS_PER_WORKER": "2"}).heavy_reads() == 2


def test_read_once_until_reloaded(monkeypatch):
    monkeypatch.setenv("PROJECTOR_BATCH", "7")  # tests/conftest.py reloads on every monkeypatch change
    assert settings.current().projector_batch == 7
    import os
    os.environ["PROJECTOR_BATCH"] = "8"  # behind the settings' back: not seen until reload()
    try:
        assert settings.current().projector_batch == 7
        assert settings.reload().projector_batch == 8
    finally:
        monkeypatch.setenv("PROJECTOR_BATCH", "7")
