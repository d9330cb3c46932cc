"""SIGTERM before a long-running process is ready.

Relays, consumers and the projector install their own SIGTERM handler (finish the batch, commit,
close) once their loop exists. Before that (imports, index creation, connecting) the default action
would kill the process with -15, which an orchestrator reports as a crash. Calling
`exit_cleanly_until_running()` first thing makes an early SIGTERM a clean exit 0: nothing has been
read or written yet, so there is nothing to finish."""
from __future__ import annotations

import signal
import sys


def _exit(_signum, _frame) -> None:
    sys.exit(0)


def exit_cleanly_until_running() -> None:
    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, _exit)
