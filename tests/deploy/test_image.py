"""The container image without a Docker engine: the Dockerfile's shape, the entrypoint's lookup of
deploy/Procfile, and the image's file layout (rebuilt from the Dockerfile's COPY lines) actually
serving every API through the entrypoint."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .support import DEPLOY, ROOT, api_port, component, jobfile, procfile

DOCKERFILE = (DEPLOY / "Dockerfile").read_text()
ENTRYPOINT = DEPLOY / "entrypoint.sh"


def final_stage() -> str:
    return DOCKERFILE.split("\nFROM ")[-1]


def runtime_copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of the final stage's COPY lines that read the build context."""
    copies = []
    for line in final_stage().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            parts = line.split()[1:]
            copies.append((parts[:-1], parts[-1]))
    return copies


def test_dockerfile_shape():
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", DOCKERFILE, re.M)
    assert "pip install ." in DOCKERFILE and "COPY pyproject.toml" in DOCKERFILE
    stage = final_stage()
    user = re.findall(r"^USER (\S+)$", stage, re.M)
    assert user and not user[-1].startswith(("0", "root")), "the image must not run as root"
    assert re.search(r'^ENTRYPOINT \["/app/deploy/entrypoint.sh"\]$', stage, re.M)
    assert re.search(r"^WORKDIR /app$", stage, re.M), "Procfile commands use paths relative to /app"
    sources = {s for srcs, _ in runtime_copies() for s in srcs}
    assert {"deploy/Procfile", "deploy/Jobfile", "deploy/entrypoint.sh", "deploy/gunicorn.conf.py",
            "platformkit", "services"} <= sources
    assert "BIND_HOST=0.0.0.0" in stage and "METRICS_PORT=9100" in stage


def test_dockerignore_lets_every_copied_file_in():
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].removesuffix("/**") for line in ignore if line.startswith("!")}
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            for src in line.split()[1:-1]:
                assert src in allowed, f"{src} is copied but excluded by Dockerfile.dockerignore"


def test_entrypoint_is_posix_sh_and_executable():
    assert os.access(ENTRYPOINT, os.X_OK), "git must keep deploy/entrypoint.sh executable"
    assert ENTRYPOINT.read_text().startswith("#!/bin/sh\n"), "python:3.11-slim has no bash guarantee: keep it sh"
    subprocess.run(["sh", "-n", str(ENTRYPOINT)], check=True)


def run_entrypoint(*args: str, procfile_text: str | None = None, tmp_path: Path | None = None,
                   env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    if procfile_text is not None:
        p = tmp_path / "Procfile"
        p.write_text(procfile_text)
        full_env["PROCFILE"] = str(p)
        full_env["JOBFILE"] = str(tmp_path / "Jobfile")
        (tmp_path / "Jobfile").write_text("job-one: echo job $JOB_ARG\n")
    return subprocess.run([str(ENTRYPOINT), *args], capture_output=True, text=True, env=full_env, timeout=30)


def test_entrypoint_lists_every_procfile_kind_and_job():
    out = run_entrypoint("list")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [*procfile(), *jobfile()]


def test_entrypoint_runs_the_procfile_command(tmp_path):
    text = ("demo-api: echo gunicorn -b 127.0.0.1:${DEMO_PORT:-8009} 'app:create_app()'\n"
            "demo-relay: echo relay\n")
    out = run_entrypoint("demo-api", procfile_text=text, tmp_path=tmp_path, env={"BIND_HOST": "0.0.0.0"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "gunicorn -b 0.0.0.0:8009 app:create_app()"
    out = run_entrypoint("demo-api", procfile_text=text, tmp_path=tmp_path, env={"BIND_HOST": "127.0.0.2", "DEMO_PORT": "7"})
    assert out.stdout.strip() == "gunicorn -b 127.0.0.2:7 app:create_app()"
    out = run_entrypoint("demo-relay", "--extra", "two words", procfile_text=text, tmp_path=tmp_path)
    assert out.stdout.strip() == "relay --extra two words"
    out = run_entrypoint("job-one", procfile_text=text, tmp_path=tmp_path, env={"JOB_ARG": "x"})
    assert out.stdout.strip() == "job x"
    out = run_entrypoint("no-such-kind", procfile_text=text, tmp_path=tmp_path)
    assert out.returncode == 64 and "demo-api" in out.stderr
    out = run_entrypoint(sys.executable, "-c", "print('raw')", procfile_text=text, tmp_path=tmp_path)
    assert out.stdout.strip() == "raw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_image_layout_serves_every_api(tmp_path):
    """Lay out /app as the Dockerfile does, then start every API through the entrypoint (as the
    container would, on loopback here) and wait for GET /healthz: proves the image holds every file
    the Procfile commands need. The venv of this checkout stands in for /opt/venv."""
    app = tmp_path / "app"
    for sources, dest in runtime_copies():
        target = app / dest.removeprefix("/app/").removeprefix("/app")
        for src in sources:
            path = ROOT / src
            if path.is_dir():
                shutil.copytree(path, target / path.name if dest.endswith("/") else target,
                                ignore=shutil.ignore_patterns("__pycache__"))
            else:
                (target if dest.endswith("/") else target.parent).mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target / path.name if dest.endswith("/") else target)
    apis = {k: v for k, v in procfile().items() if component(k) == "api"}
    assert apis
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PROCFILE", "JOBFILE")}
    env.update(PATH=f"{Path(sys.executable).parent}:{env['PATH']}", PYTHONPATH=str(app), BIND_HOST="127.0.0.1",
               WEB_WORKERS="1", WEB_THREADS="2", XDG_RUNTIME_DIR=str(tmp_path), PYTHONDONTWRITEBYTECODE="1")
    procs, ports = {}, {}
    for kind, command in apis.items():
        var = re.search(r"\$\{([A-Z_]+_PORT):-\d+\}", command).group(1)
        ports[kind] = free_port()
        log = open(tmp_path / f"{kind}.log", "wb")
        procs[kind] = subprocess.Popen([str(app / "deploy" / "entrypoint.sh"), kind], cwd=app,
                                       env={**env, var: str(ports[kind])}, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        assert api_port(command) in (8001, 8002, 8003, 8004)
    try:
        pending = set(apis)
        deadline = time.monotonic() + 30
        while pending and time.monotonic() < deadline:
            for kind in list(pending):
                assert procs[kind].poll() is None, (tmp_path / f"{kind}.log").read_text()[-3000:]
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{ports[kind]}/healthz", timeout=2) as r:
                        if r.status == 200:
                            pending.discard(kind)
                except OSError:
                    pass
            time.sleep(0.2)
        assert not pending, {k: (tmp_path / f"{k}.log").read_text()[-2000:] for k in pending}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
