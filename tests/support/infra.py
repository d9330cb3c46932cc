"""Test helpers that talk to the real broker and database, and run real processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable

from kafka import KafkaConsumer, TopicPartition

ROOT = Path(__file__).resolve().parents[2]


def wait_until(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.2,
               message: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def unique_prefix() -> str:
    return "t" + uuid.uuid4().hex[:10]


class Proc:
    """A real child process (python -m module ...) with the test's environment."""

    def __init__(self, args: list[str], env: dict[str, str], name: str, log_dir: Path):
        self.args, self.env, self.name = args, env, name
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen | None = None

    def start(self, extra_env: dict[str, str] | None = None) -> "Proc":
        env = {**os.environ, **self.env, **(extra_env or {})}
        self.log = open(self.log_path, "ab")
        self.popen = subprocess.Popen([sys.executable, *self.args], env=env, cwd=ROOT,
                                      stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_exit(self, timeout: float = 60) -> int:
        assert self.popen is not None
        return self.popen.wait(timeout)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            self.popen.send_signal(sig)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def read_topic(topic: str, min_count: int = 0, timeout: float = 30.0, bootstrap: str | None = None):
    """Every message of a topic from the beginning (no consumer group), waiting for min_count."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap or os.environ.get("KAFKA_BOOTSTRAP_SERVERS",
                                                                           "127.0.0.1:9092"),
                             enable_auto_commit=False, group_id=None)
    try:
        deadline = time.monotonic() + timeout
        partitions = None
        while partitions is None:
            partitions = consumer.partitions_for_topic(topic) or None
            if partitions is None:
                if time.monotonic() > deadline:
                    return []
                time.sleep(0.3)
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        messages = []
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=300).values():
                messages.extend(batch)
            ends = consumer.end_offsets(tps)
            at_end = all(consumer.position(tp) >= ends[tp] for tp in tps)
            if at_end and len(messages) >= min_count:
                break
        return messages
    finally:
        consumer.close()


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gunicorn_args(app: str, port: int, workers: int = 1) -> list[str]:
    return ["-m", "gunicorn", "-c", str(ROOT / "deploy/gunicorn.conf.py"), "-w", str(workers),
            "-b", f"127.0.0.1:{port}", app]


def wait_http(url: str, timeout: float = 30.0) -> None:
    import requests

    def up():
        try:
            return requests.get(url, timeout=1).status_code == 200
        except requests.RequestException:
            return False
    wait_until(up, timeout, message=url)
