"""Shared by bench/http_bench.py and bench/freshness_bench.py: the run's own TOPIC_PREFIX/DB_PREFIX,
the machine line, a small JSON client of the APIs, a demo tree built through them, vegeta (built once
from the Go module proxy into ~/.cache/congdoan, like deploy/local/infra.sh caches FerretDB), CPU
quiet detection of the background processes, and the section appended to docs/benchmarks.md."""
from __future__ import annotations

import json
import os
import platform as pyplatform
import shutil
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("CONGDOAN_CACHE") or Path.home() / ".cache/congdoan")
VEGETA_VERSION = "v12.13.0"
VEGETA = CACHE / f"vegeta-{VEGETA_VERSION}" / "vegeta"
SERVICES = ("membership", "training", "welfare", "reporting")


def isolate(name: str) -> str:
    """This run's own topics and databases (set before anything reads the config)."""
    prefix = name + uuid.uuid4().hex[:6]
    os.environ["TOPIC_PREFIX"] = prefix + "."
    os.environ["DB_PREFIX"] = prefix + "_"
    from platformkit import settings
    settings.reload()  # the prefixes just set
    return prefix


def drop_databases(prefix: str) -> None:
    from platformkit import mongo
    client = mongo.client()
    for service in SERVICES:
        client.drop_database(f"{prefix}_{service}")


def delete_topics(prefix: str) -> None:
    """Best effort: the run's topics (and its consumers' dead-letter topics) are removed."""
    from kafka.admin import KafkaAdminClient

    from platformkit import config
    try:
        admin = KafkaAdminClient(bootstrap_servers=config.kafka_bootstrap(), request_timeout_ms=15000)
        try:
            mine = [t for t in admin.list_topics() if t.startswith(prefix + ".")]
            if mine:
                admin.delete_topics(mine)
        finally:
            admin.close()
    except Exception as exc:  # noqa: BLE001 - cleanup must not hide the results
        print(f"(could not delete topics {prefix}.*: {exc})", flush=True)


def machine_line() -> str:
    server = "MongoDB" if os.environ.get("MONGO_URL") else "FerretDB 1.24.2 (SQLite)"
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"Machine: {os.cpu_count()} cores, {mem:.0f} GiB, {pyplatform.python_implementation()} "
            f"{pyplatform.python_version()}; database: {server}; Kafka 3.9.1 (KRaft, 1 node).")


def append_results(lines: list[str]) -> None:
    out = ROOT / "docs" / "benchmarks.md"
    if not out.exists():
        out.write_text("# Benchmarks\n\nEach figure is printed beside a baseline measured in the same run (`make bench`).\n")
    with out.open("a") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    import math
    s = sorted(values)
    return s[max(0, min(len(s) - 1, math.ceil(q / 100 * len(s)) - 1))]


# ---------------------------------------------------------------- the APIs
class BenchError(RuntimeError):
    pass


class Api:
    def __init__(self, base: str):
        self.base = base.rstrip("/")
        self.session = requests.Session()

    def call(self, method: str, path: str, token: str, body: Any = None, timeout: float = 30) -> requests.Response:
        return self.session.request(method, f"{self.base}/api/v1{path}", json=body, timeout=timeout,
                                    headers={"Authorization": f"Bearer {token}"})

    def ok(self, method: str, path: str, token: str, body: Any = None, wait: float = 0.0) -> Any:
        """200/201 expected. With `wait`, retries (bounded) while the service has not yet received
        the unit or member concerned from Kafka (422/404 'not known'), or answers 409/412 'retry'."""
        deadline = time.monotonic() + wait
        while True:
            r = self.call(method, path, token, body)
            if r.status_code in (200, 201):
                return r.json()
            if time.monotonic() > deadline:
                raise BenchError(f"{method} {self.base}{path} -> {r.status_code} {r.text[:500]}")
            time.sleep(0.3)


def citizen_id(i: int, gender: str, born: int) -> str:
    g = (0 if gender == "male" else 1) + (2 if born >= 2000 else 0)
    return f"079{g}{born % 100:02d}{i % 10**6:06d}"


def admission(i: int, today: date | None = None) -> dict:
    """A distinct member: the i-th citizen ID of the run (i < 10**6)."""
    today = today or date.today()
    gender = "female" if i % 2 else "male"
    born = 1970 + i % 30
    return {"full_name": f"Nguyễn Văn Bench {i}", "citizen_id": citizen_id(i, gender, born),
            "date_of_birth": f"{born}-0{1 + i % 9}-1{i % 9}", "gender": gender,
            "phone": f"09{i % 10**8:08d}", "employer": "Công ty TNHH Đo Tải", "is_official": False,
            "admitted_on": today.isoformat()}


class Tree:
    """TLD > province BENCH > commune BENCH-C1 > CĐCS BENCH-C1-001, created through membership's API."""

    def __init__(self, membership: Api):
        from platformkit.auth import mint
        self.m = membership
        self.mint = mint
        self.operator = mint("bench-operator", "*", ["admin"])
        self.ids: dict[str, str] = {}

    def token(self, code: str, role: str = "officer") -> str:
        return self.mint(f"bench@{code}", self.ids[code], [role])

    def build(self) -> "Tree":
        today = date.today()
        self.ids["TLD"] = self.m.ok("POST", "/units", self.operator, {
            "name": "Tổng Liên đoàn Lao động Việt Nam", "code": "TLD", "kind": "central", "level": 1,
            "parent_id": None, "effective_date": "1929-07-28"})["id"]
        for code, name, kind, level, parent in (("BENCH", "LĐLĐ Tỉnh Đo Tải", "province", 2, "TLD"),
                                                ("BENCH-C1", "Công đoàn phường Đo Tải", "commune", 3, "BENCH")):
            self.ids[code] = self.m.ok("POST", "/units", self.token(parent, "admin"), {  # structure: admin
                "name": name, "code": code, "kind": kind, "level": level, "parent_id": self.ids[parent],
                "effective_date": "2025-07-01"})["id"]
        self.ids["BENCH-C1-001"] = self.m.ok("POST", "/units", self.token("BENCH-C1", "admin"), {
            "name": "CĐCS Công ty TNHH Đo Tải", "code": "BENCH-C1-001", "kind": "cdcs", "level": 4,
            "parent_id": self.ids["BENCH-C1"], "sector": "non_state", "effective_date": "2024-01-01",
            "founding": {"method": "standard", "founding_member_count": 10, "founding_group": ["Trần Thị Một", "Lê Văn Hai", "Phạm Thị Ba"],
                         "decision_no": "1/QĐ-BENCH", "decision_date": "2024-01-05"}})["id"]
        assert today.year >= 2025
        return self


# ---------------------------------------------------------------- vegeta
def vegeta() -> Path:
    """The vegeta binary, built once with `go install` from the Go module proxy into the cache."""
    if VEGETA.exists():
        return VEGETA
    if not shutil.which("go"):
        raise BenchError(f"go is needed to build vegeta {VEGETA_VERSION} into {VEGETA.parent}")
    print(f"[bench] building vegeta {VEGETA_VERSION} from the Go module proxy into {VEGETA.parent} (first time only)",
          flush=True)
    VEGETA.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["go", "install", f"github.com/tsenart/vegeta/v12@{VEGETA_VERSION}"], cwd=CACHE, check=True,
                   env={**os.environ, "GOBIN": str(VEGETA.parent), "GOTOOLCHAIN": "local"})
    return VEGETA


def target(method: str, url: str, token: str, body: Any = None) -> str:
    """One line of vegeta's JSON targets format; each request may carry its own body."""
    import base64
    t: dict[str, Any] = {"method": method, "url": url, "header": {"Authorization": [f"Bearer {token}"]}}
    if body is not None:
        t["header"]["Content-Type"] = ["application/json"]
        t["body"] = base64.b64encode(json.dumps(body, ensure_ascii=False).encode()).decode()
    return json.dumps(t)


def attack(targets: list[str], seconds: float, workers: int, work: Path, name: str, lazy: bool) -> dict:
    """Closed loop: `workers` connections each sending its next request as soon as the last is
    answered (-rate=0), for `seconds`. With lazy, each target is used once (the attack stops early
    when they run out); otherwise the targets are cycled. Returns vegeta's JSON report."""
    tfile, rfile = work / f"{name}.targets", work / f"{name}.bin"
    tfile.write_text("\n".join(targets) + "\n")
    cmd = [str(vegeta()), "attack", "-format=json", f"-targets={tfile}", "-rate=0", f"-workers={workers}",
           f"-max-workers={workers}", f"-duration={seconds}s", "-timeout=30s", f"-output={rfile}"]
    if lazy:
        cmd.append("-lazy")
    subprocess.run(cmd, check=True)
    rep = subprocess.run([str(vegeta()), "report", "-type=json", str(rfile)], check=True, capture_output=True,
                         text=True)
    return json.loads(rep.stdout)


# ---------------------------------------------------------------- quiet background
def _cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total


def cpu_cores(pids: list[int], window: float = 1.0) -> float:
    """CPU used by these processes over `window` seconds, in cores."""
    hz = os.sysconf("SC_CLK_TCK")
    a = _cpu_ticks(pids)
    time.sleep(window)
    return (_cpu_ticks(pids) - a) / hz / window


def wait_quiet(pids: list[int], idle: float, timeout: float = 120.0) -> float:
    """Wait until these processes use no more CPU than at rest (+0.1 core); returns seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cpu_cores(pids) <= idle + 0.1:
            break
    return time.monotonic() - t0


def now_utc() -> str:
    return f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M}"


def open_loop_posts(url: str, token: str, body_of, rate: float, count: int
                    ) -> tuple[float, list[tuple[float, float, int, str | None]]]:
    """POST `body_of(i)` to `url` for i in range(count) at `rate` per second, open loop (each at its
    own time, whatever the answers take: the load a queueing API sees), one session per thread.
    Returns (the start time, [(sent, answered, status, created id or None)])."""
    local = threading.local()
    writes: list[tuple[float, float, int, str | None]] = []
    lock = threading.Lock()

    def post(i: int, at: float) -> None:
        time.sleep(max(0.0, at - time.monotonic()))
        if not hasattr(local, "s"):
            local.s = requests.Session()
            local.s.headers["Authorization"] = f"Bearer {token}"
        sent = time.monotonic()
        try:
            res = local.s.post(url, json=body_of(i), timeout=30)
            status, created = res.status_code, (res.json().get("id") if res.status_code == 201 else None)
        except requests.RequestException:
            status, created = 0, None
        with lock:
            writes.append((sent, time.monotonic(), status, created))

    t0 = time.monotonic() + 0.2
    with ThreadPoolExecutor(64) as pool:
        for i in range(count):
            pool.submit(post, i, t0 + i / rate)
    return t0, writes
