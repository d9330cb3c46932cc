"""Parts of the fault matrix: a private broker and database (so that killing them disturbs no
other test), every process kind of deploy/Procfile under a small supervisor that restarts what
dies (as Kubernetes or systemd would), and a load driver that records every write the platform
acknowledged."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import requests

from platformkit.auth import mint
from synthetic.names import person
from tests.support.infra import ROOT, free_port, wait_http, wait_until
from tests.support.platform import PORT_VAR, procfile

INFRA = str(ROOT / "deploy/local/infra.sh")


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


class PrivateInfra:
    """deploy/local/infra.sh on its own ports and data folder."""

    def __init__(self, var: Path):
        self.var = var
        self.ports = {"KAFKA_PORT": free_port(), "KAFKA_CONTROLLER_PORT": free_port(), "DB_PORT": free_port(),
                      "PG_PORT": free_port()}  # FerretDB's own PostgreSQL cluster
        self.external_db = bool(os.environ.get("MONGO_URL"))
        self.env = {**os.environ, "CONGDOAN_VAR": str(var), **{k: str(v) for k, v in self.ports.items()}}

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.ports['KAFKA_PORT']}"

    @property
    def mongo_url(self) -> str:
        return os.environ["MONGO_URL"] if self.external_db else f"mongodb://127.0.0.1:{self.ports['DB_PORT']}"

    def client_env(self) -> dict[str, str]:
        env = {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "DB_PORT": str(self.ports["DB_PORT"])}
        # store_prep must prepare THIS FerretDB's PostgreSQL (if it runs on one), not the shared store's
        out = subprocess.run([INFRA, "env"], env=self.env, check=True, capture_output=True, text=True).stdout
        env["FERRETDB_POSTGRESQL_URL"] = out.strip().partition("=")[2]
        return env

    def up(self) -> None:
        subprocess.run([INFRA, "up"], env=self.env, check=True, stdout=subprocess.DEVNULL, timeout=240)

    def down(self) -> None:
        subprocess.run([INFRA, "down"], env=self.env, check=False, stdout=subprocess.DEVNULL, timeout=120)

    def pid(self, part: str) -> int:
        return int((self.var / f"{'kafka' if part == 'broker' else 'db'}.pid").read_text())

    def fault(self, part: str, sig: int, outage: float) -> dict:
        """Signal the broker or the database, leave it down for `outage` seconds, start it again."""
        pid = self.pid(part)
        t0 = time.monotonic()
        os.kill(pid, sig)
        gone = _wait_gone(pid, 60)
        assert gone, f"{part} (pid {pid}) still running 60 s after {signal.Signals(sig).name}"
        time.sleep(outage)
        self.up()
        return {"down_s": round(time.monotonic() - t0, 1)}


@dataclass
class Supervised:
    name: str
    command: str
    popen: subprocess.Popen | None = None
    restarts: int = 0
    exits: list[int] = field(default_factory=list)
    held: bool = False   # True while a fault is being applied: the supervisor leaves it alone
    started_at: float = 0.0


class Platform:
    """Every process kind of deploy/Procfile, each in its own process group, restarted when it dies."""

    def __init__(self, tmp: Path, env: dict[str, str], workers: int = 2):
        self.tmp = tmp
        self.kinds = procfile()
        self.ports = {var: free_port() for cmd in self.kinds.values() for var, _ in PORT_VAR.findall(cmd)}
        venv_bin = str(Path(sys.executable).parent)
        self.env = {**os.environ, **env, **{k: str(v) for k, v in self.ports.items()},
                    "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
                    "WEB_WORKERS": str(workers), "WEB_THREADS": "4", "PYTHONUNBUFFERED": "1"}
        self.procs = {name: Supervised(name, cmd) for name, cmd in self.kinds.items()}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, daemon=True)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service.upper() + '_PORT']}"

    def _spawn(self, p: Supervised) -> None:
        log = open(self.tmp / f"{p.name}.log", "ab")
        p.popen = subprocess.Popen(["bash", "-c", f"exec {p.command}"], env=self.env, cwd=ROOT, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        p.started_at = time.monotonic()

    def start(self) -> None:
        for p in self.procs.values():
            self._spawn(p)
        self._thread.start()
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 90) -> None:
        for var in self.ports:
            wait_http(f"http://127.0.0.1:{self.ports[var]}/healthz", timeout)

    def _supervise(self) -> None:
        while not self._stop.wait(0.3):
            with self._lock:
                for p in self.procs.values():
                    if not p.held and p.popen is not None and p.popen.poll() is not None:
                        p.exits.append(p.popen.returncode)
                        p.restarts += 1
                        self._spawn(p)

    def fault(self, name: str, sig: int, outage: float) -> dict:
        """Signal a whole process kind (its process group), wait for it to exit, keep it down for
        `outage` seconds, start it again. Returns the exit status seen."""
        p = self.procs[name]
        if sig == signal.SIGTERM:
            # A SIGTERM while Python is still importing its modules gets the default action (-15);
            # what is tested is the shutdown of a process that has started.
            time.sleep(max(0.0, p.started_at + 3.0 - time.monotonic()))
        with self._lock:
            p.held = True
        try:
            os.killpg(p.popen.pid, sig)
            try:
                code = p.popen.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(p.popen.pid, signal.SIGKILL)
                code = p.popen.wait(10)
                raise AssertionError(f"{name} did not exit within 60 s of {signal.Signals(sig).name}")
            _wait_gone_group(p.popen.pid, 30)
            time.sleep(outage)
            with self._lock:
                self._spawn(p)
        finally:
            p.held = False
        return {"exit": code}

    def kill_worker(self, name: str) -> dict:
        """SIGKILL one gunicorn worker: the master must fork a new one and keep serving."""
        master = self.procs[name].popen.pid
        workers = _children(master)
        assert workers, f"{name}: gunicorn master {master} has no workers"
        victim = random.Random(master).choice(workers)
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: victim not in _children(master) and len(_children(master)) >= len(workers), 30,
                   message=f"{name}: a new worker replacing {victim}")
        return {"worker": victim}

    def dead(self) -> list[str]:
        return [n for n, p in self.procs.items() if p.popen is None or p.popen.poll() is not None]

    def tail(self, lines: int = 15) -> str:
        out = []
        for name in self.procs:
            path = self.tmp / f"{name}.log"
            text = path.read_text(errors="replace").splitlines() if path.exists() else []
            out.append(f"--- {name}\n" + "\n".join(text[-lines:]))
        return "\n".join(out)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for p in self.procs.values():
            if p.popen is not None and p.popen.poll() is None:
                try:
                    os.killpg(p.popen.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 15
        for p in self.procs.values():
            if p.popen is None:
                continue
            try:
                p.popen.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(p.popen.pid, signal.SIGKILL)
                p.popen.wait(10)


def _children(pid: int) -> list[int]:
    try:
        out = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(x) for x in out]


def _wait_gone_group(pgid: int, timeout: float) -> None:
    """Every process of the group has exited (gunicorn workers after their master)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(pgid, signal.SIGKILL)


# ---------------------------------------------------------------- load
@dataclass
class Acked:
    """Writes the platform acknowledged (2xx), by kind: these must never be lost."""
    admitted: dict[str, str] = field(default_factory=dict)     # member id -> CĐCS id
    approved: set[str] = field(default_factory=set)
    sessions: dict[str, int] = field(default_factory=dict)     # dissemination id -> members reached
    cases: set[str] = field(default_factory=set)
    case_approved: set[str] = field(default_factory=set)
    disbursed: dict[str, int] = field(default_factory=dict)    # case id -> amount
    # member id -> versions of its acknowledged profile changes (a second writer on the same members)
    profiles: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    refused: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # "service status" -> count
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))   # "service ExcName" -> count


class Load:
    """Three writers (membership, training, welfare) through the HTTP APIs at a steady pace."""

    def __init__(self, plat: Platform, units: dict[str, str], programme: str, pause: float = 0.05):
        self.plat, self.units, self.programme, self.pause = plat, units, programme, pause
        self.acked = Acked()
        self.rng = random.Random(11)
        self.today = date.today().isoformat()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        # a dissemination session is one request, an admission two and a case three: the training
        # writer waits longer so that the three services see similar write rates
        self._threads = [threading.Thread(target=self._run, args=(f, pace), daemon=True)
                         for f, pace in ((self._membership, pause), (self._training, 3 * pause + 0.1),
                                         (self._welfare, pause), (self._contender, pause))]
        self._tokens = {code: mint(f"load@{code}", uid, ["officer"]) for code, uid in units.items()}
        self.cdcs = [c for c in units if c.count("-") == 2]

    def commune(self, cdcs: str) -> str:
        return cdcs.rsplit("-", 1)[0]

    def _post(self, service: str, path: str, token_of: str, body: dict, headers: dict | None = None,
              method: str = "post"):
        """The answer's JSON on 2xx, else None (counted as refused or failed: not acknowledged)."""
        try:
            r = requests.request(method, f"{self.plat.url(service)}/api/v1{path}", json=body, timeout=20,
                                 headers={"Authorization": "Bearer " + self._tokens[token_of], **(headers or {})})
        except requests.RequestException as exc:
            with self._lock:
                self.acked.errors[f"{service} {type(exc).__name__}"] += 1
            return None
        if r.status_code in (200, 201):
            return r.json()
        with self._lock:
            self.acked.refused[f"{service} {r.status_code}"] += 1
        return None

    def _membership(self) -> None:
        cdcs = self.rng.choice(self.cdcs)
        name, gender = person(self.rng)
        body = {"full_name": name, "citizen_id": f"079{self.rng.randrange(10**9):09d}", "date_of_birth": "1990-05-17",
                "gender": gender, "is_official": self.rng.random() < 0.2, "admitted_on": self.today}
        m = self._post("membership", f"/units/{self.units[cdcs]}/members", cdcs, body)
        if m is None:
            return
        with self._lock:
            self.acked.admitted[m["id"]] = self.units[cdcs]
        if self._post("membership", f"/members/{m['id']}/approve", self.commune(cdcs), {"on": self.today}) is not None:
            with self._lock:
                self.acked.approved.add(m["id"])

    def _contender(self) -> None:
        """A second writer on the SAME members as the membership writer: profile changes sent
        without a version, racing its approvals, the relay publishing both and the faults. Neither
        an approval nor a profile change it acknowledged may be lost (issue #13: FerretDB applies
        updates as read-change-write with no re-check, so two writers of one member are the case
        that lost an approval before the repository)."""
        with self._lock:
            recent = list(self.acked.admitted.items())[-4:]
        if not recent:
            time.sleep(0.3)
            return
        member, unit = self.rng.choice(recent)
        cdcs = next(c for c, uid in self.units.items() if uid == unit)
        answer = self._post("membership", f"/members/{member}", cdcs,
                            {"phone": f"09{self.rng.randrange(10**8):08d}"}, method="patch")
        if answer is not None:
            with self._lock:
                self.acked.profiles[member].append(answer["version"])

    def _training(self) -> None:
        cdcs = self.rng.choice(self.cdcs)
        reached = self.rng.randint(5, 60)
        s = self._post("training", "/dissemination-sessions", self.commune(cdcs), {
            "organising_unit_id": self.units[self.commune(cdcs)], "topic": "Nghị quyết Đại hội XIII Công đoàn Việt Nam",
            "held_on": self.today, "reached": [{"unit_id": self.units[cdcs], "members_reached": reached}]})
        if s is not None:
            with self._lock:
                self.acked.sessions[s["id"]] = reached

    def _welfare(self) -> None:
        with self._lock:
            pool = sorted(self.acked.approved)
        if not pool:
            time.sleep(0.3)
            return
        member = self.rng.choice(pool)
        cdcs = next(c for c, uid in self.units.items() if uid == self.acked.admitted[member])
        amount = self.rng.choice([500_000, 1_000_000, 2_000_000])
        case = self._post("welfare", "/cases", cdcs, {
            "programme_id": self.programme, "member_id": member, "requested_on": self.today,
            "hardship_type": "illness", "amount": amount, "form": "cash",
            "funding": [{"source": "union_fund", "amount": amount}]})
        if case is None:
            return
        with self._lock:
            self.acked.cases.add(case["id"])
        commune = self.commune(cdcs)
        if self._post("welfare", f"/cases/{case['id']}/approve", commune, {"approved_on": self.today}) is None:
            return
        with self._lock:
            self.acked.case_approved.add(case["id"])
        paid = self._post("welfare", f"/cases/{case['id']}/disburse", commune, {"disbursed_on": self.today},
                          {"Idempotency-Key": f"fault-{case['id']}"})
        if paid is not None:
            with self._lock:
                self.acked.disbursed[case["id"]] = amount

    def _run(self, step, pause: float) -> None:
        while not self._stop.is_set():
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - a load step must never stop the load
                with self._lock:
                    self.acked.errors[f"{step.__name__} {type(exc).__name__}"] += 1
            time.sleep(pause)

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)

    def counts(self) -> dict[str, int]:
        with self._lock:
            a = self.acked
            return {"admitted": len(a.admitted), "approved": len(a.approved), "sessions": len(a.sessions),
                    "cases": len(a.cases), "disbursed": len(a.disbursed),
                    "profiles": sum(len(v) for v in a.profiles.values())}

