"""Every process kind of deploy/Procfile as a real process (gunicorn APIs, outbox relays,
consumers, the reporting projector) on free ports, with the caller's TOPIC_PREFIX / DB_PREFIX
(taken from os.environ when the Platform is created). Used by tests/e2e and by bench/."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.infra import ROOT, free_port, wait_http

PORT_VAR = re.compile(r"\$\{([A-Z_]+_PORT):-(\d+)\}")


def procfile() -> dict[str, str]:
    """NAME -> COMMAND, one per process kind."""
    kinds = {}
    for line in (ROOT / "deploy/Procfile").read_text().splitlines():
        m = re.match(r"^([a-z0-9][a-z0-9-]*):\s*(.+)$", line)
        if m:
            kinds[m[1]] = m[2]
    return kinds


class Platform:
    """`env` overrides the defaults (1 gunicorn worker x 4 threads per API)."""

    def __init__(self, tmp: Path, env: dict[str, str] | None = None):
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        self.kinds = procfile()
        self.ports = {var: free_port() for cmd in self.kinds.values() for var, _ in PORT_VAR.findall(cmd)}
        venv_bin = str(Path(sys.executable).parent)
        self.env = {**os.environ, **{k: str(v) for k, v in self.ports.items()},
                    "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
                    "WEB_WORKERS": "1", "WEB_THREADS": "4", "PYTHONUNBUFFERED": "1", **(env or {})}

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service.upper() + '_PORT']}"

    def start(self) -> None:
        for name, cmd in self.kinds.items():
            self.logs[name] = self.tmp / f"{name}.log"
            log = open(self.logs[name], "ab")
            # like deploy/local/platform.sh: `bash -c "exec COMMAND"`, in its own process group
            self.procs[name] = subprocess.Popen(["bash", "-c", f"exec {cmd}"], env=self.env, cwd=ROOT,
                                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        for var in self.ports:
            wait_http(f"http://127.0.0.1:{self.ports[var]}/healthz", timeout=60)

    def dead(self) -> list[str]:
        return [n for n, p in self.procs.items() if p.poll() is not None]

    def tail(self, lines: int = 25) -> str:
        out = []
        for name, path in self.logs.items():
            text = path.read_text(errors="replace").splitlines() if path.exists() else []
            state = "running" if self.procs[name].poll() is None else f"exited {self.procs[name].returncode}"
            out.append(f"--- {name} ({state})\n" + "\n".join(text[-lines:]))
        return "\n".join(out)

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in self.procs.values():
            try:
                p.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
