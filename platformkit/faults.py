"""Fault injection for the crash tests: FAULT_POINT=<name> makes the process SIGKILL itself the
FAULT_AFTER-th time (default 1st) it reaches that point. Unset in production: a dict lookup."""
import os
import signal

from . import settings

_hits: dict[str, int] = {}


def crash_point(name: str) -> None:
    if settings.current().fault_point != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= settings.current().fault_after:
        os.kill(os.getpid(), signal.SIGKILL)
