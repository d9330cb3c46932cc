"""deploy/prometheus/alerts.yaml: the rules file's structure (schema), that every metric it reads is
one the platform exports (platformkit/metrics.py) or a known Prometheus/kube-state-metrics series,
that each operational concern has an alert, and `promtool check rules` and the unit tests in
alerts_test.yaml (promtool is built by deploy/prometheus/build.sh, which `make test` runs through
deploy/local/prereqs.sh; without it the test fails, it does not skip)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from .support import DEPLOY, ROOT, SCHEMAS

RULES_FILE = DEPLOY / "prometheus" / "alerts.yaml"
RULES = yaml.safe_load(RULES_FILE.read_text())
ALERTS = {r["alert"]: r for g in RULES["groups"] for r in g["rules"] if "alert" in r}
PROMTOOL_VERSION = "v0.316.0"  # keep in step with deploy/prometheus/build.sh
EXTERNAL = {"up", "kube_pod_container_status_ready", "kube_pod_owner", "kube_deployment_status_replicas_available"}
PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                "offset", "inf", "nan"}


def exported_metrics() -> set[str]:
    source = (ROOT / "platformkit" / "metrics.py").read_text()
    names: set[str] = set()
    for kind, name in re.findall(r"\b(Counter|Gauge|Histogram)\(\s*\"([a-z_:]+)\"", source):
        names.add(name)
        if kind == "Histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


def metrics_in(expr: str) -> set[str]:
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)           # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)                      # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)                     # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        rest = expr[m.end():].lstrip()
        if rest.startswith("(") or m.group(0).lower() in PROMQL_WORDS:
            continue  # a function or an operator
        names.add(m.group(0))
    return names


def test_rules_file_structure():
    schema = json.loads((SCHEMAS / "prometheus-rules.json").read_text())
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(RULES))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
    names = [r["alert"] for g in RULES["groups"] for r in g["rules"]]
    assert len(names) == len(set(names)), "alert names must be unique"
    for name, rule in ALERTS.items():
        assert rule["labels"]["severity"] in ("info", "warning", "critical"), name
        assert rule["annotations"].get("summary"), name
        assert rule["expr"].count("(") == rule["expr"].count(")"), name


def test_every_metric_read_by_an_alert_exists():
    known = exported_metrics() | EXTERNAL
    assert {"consumer_lag_seconds", "dead_letters_total", "outbox_pending_documents"} <= known
    for name, rule in ALERTS.items():
        unknown = metrics_in(rule["expr"]) - known
        assert not unknown, f"{name} reads {unknown}, which nothing exports"


@pytest.mark.parametrize("metric", ["consumer_lag_seconds", "outbox_pending_documents",
                                    "outbox_oldest_pending_age_seconds", "dead_letters_total",
                                    "http_requests_total", "up", "kube_pod_container_status_ready"])
def test_each_concern_has_an_alert(metric):
    assert any(metric in metrics_in(r["expr"]) for r in ALERTS.values()), f"no alert reads {metric}"


def test_five_xx_and_dead_letter_alerts_select_what_they_should():
    assert 'status=~"5.."' in ALERTS["Http5xxRateHigh"]["expr"]
    assert "increase(dead_letters_total" in ALERTS["DeadLettersAppearing"]["expr"]


NO_PROMTOOL = ("promtool not found: run deploy/local/prereqs.sh (or deploy/prometheus/build.sh), which builds it "
               f"from the Go module proxy into ~/.cache/congdoan/promtool-{PROMTOOL_VERSION} (~4 min the first "
               "time; `make test` does it), or put promtool on the PATH")


def promtool() -> str:
    cache = Path(os.environ.get("CONGDOAN_CACHE", Path.home() / ".cache" / "congdoan"))
    built = cache / f"promtool-{PROMTOOL_VERSION}" / "promtool"
    if built.is_file() and os.access(built, os.X_OK):
        return str(built)
    found = shutil.which("promtool")
    if not found:
        pytest.fail(NO_PROMTOOL, pytrace=False)
    return found


def test_promtool_checks_and_unit_tests():
    binary = promtool()
    for args in (["check", "rules", str(RULES_FILE)], ["test", "rules", str(RULES_FILE.with_name("alerts_test.yaml"))]):
        out = subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
