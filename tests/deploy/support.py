"""Readers of the deploy/ tree shared by the deployment tests (offline, no cluster, no Docker)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
BASE = K8S / "base"
OVERLAYS = sorted(p for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").exists())
SCHEMAS = Path(__file__).resolve().parent / "schemas"
KUSTOMIZE_VERSION = os.environ.get("KUSTOMIZE_VERSION", "v5.8.1")  # keep in step with deploy/k8s/build.sh
# The Kubernetes versions the manifests must be valid for (schemas bundled by kubernetes-validate).
K8S_VERSIONS = ("1.30.0", "1.34.0")
WORKER_COMPONENTS = ("relay", "consumer", "projector")


def read_procfile(path: Path) -> dict[str, str]:
    """NAME: COMMAND lines, as deploy/local/platform.sh reads them."""
    kinds: dict[str, str] = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([a-z0-9-]+):\s*(.+)$", line)
        if m:
            kinds[m.group(1)] = m.group(2)
    return kinds


def procfile() -> dict[str, str]:
    return read_procfile(DEPLOY / "Procfile")


def jobfile() -> dict[str, str]:
    return read_procfile(DEPLOY / "Jobfile")


def component(kind: str) -> str:
    """membership-api -> api, training-consumer -> consumer, reporting-projector -> projector."""
    return kind.rsplit("-", 1)[1]


def api_port(command: str) -> int:
    """The default port of a Procfile gunicorn line: -b 127.0.0.1:${X_PORT:-8001}."""
    m = re.search(r"-b\s+\S*:\$\{[A-Z_]+_PORT:-(\d+)\}", command)
    assert m, f"no -b HOST:${{NAME_PORT:-PORT}} in {command!r}"
    return int(m.group(1))


def load_yaml_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def kustomization(directory: Path) -> dict:
    return yaml.safe_load((directory / "kustomization.yaml").read_text())


def base_resources() -> list[dict]:
    """Every document of the files the base kustomization lists (as written, before kustomize)."""
    docs: list[dict] = []
    for name in kustomization(BASE)["resources"]:
        docs += load_yaml_docs(BASE / name)
    return docs


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d.get("kind") == kind}


def config_literals(kust: dict, name: str = "congdoan-config") -> dict[str, str]:
    for gen in kust.get("configMapGenerator", []):
        if gen["name"] == name:
            return dict(lit.split("=", 1) for lit in gen.get("literals", []))
    return {}


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


@lru_cache(maxsize=None)
def kustomize_bin() -> str:
    """deploy/k8s/build.sh's binary, else one on the PATH; without either the calling test FAILS
    (not skips) with NO_KUSTOMIZE: `make test` builds it through deploy/local/prereqs.sh."""
    cache = Path(os.environ.get("CONGDOAN_CACHE", Path.home() / ".cache" / "congdoan"))
    built = cache / f"kustomize-{KUSTOMIZE_VERSION}" / "kustomize"
    if built.is_file() and os.access(built, os.X_OK):
        return str(built)
    found = shutil.which("kustomize")
    if not found:
        pytest.fail(NO_KUSTOMIZE, pytrace=False)
    return found


@lru_cache(maxsize=None)
def kustomize_build(directory: Path) -> tuple[dict, ...]:
    binary = kustomize_bin()
    assert binary
    out = subprocess.run([binary, "build", str(directory)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"kustomize build {directory} failed:\n{out.stderr}"
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d is not None)


NO_KUSTOMIZE = ("kustomize not found: run deploy/local/prereqs.sh (or deploy/k8s/build.sh), which builds it "
                "from the Go module proxy into ~/.cache/congdoan (`make test` does it), or put kustomize on the PATH")
