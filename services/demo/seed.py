"""Seed a demo province through the real HTTP APIs of the four services (never their databases).

    python -m services.demo seed [--if-empty] [--members 300] [--seed 1]
                                 [--base-url-membership URL] [--base-url-training URL]
                                 [--base-url-welfare URL] [--base-url-reporting URL]

Base URLs default to $MEMBERSHIP_URL / $TRAINING_URL / $WELFARE_URL / $REPORTING_URL, else
http://127.0.0.1:8001 .. 8004. Tokens are minted with platformkit.auth (TOKEN_SECRET must be the
services' one). Every choice comes from random.Random(seed), so two runs build the same province
(ids differ: the services assign them).

Training, welfare and reporting learn about units and members only from membership's events
(Kafka): before acting on a unit or a member there, the seeder polls their API (bounded) until the
unit or member is known.

The calendar is the current year up to today: every date is <= today, spread over
1 January .. min(today, 20 November).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Callable

from platformkit import settings
from platformkit.auth import mint
from services.membership.domain import dues_due
from synthetic.names import person

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_URLS = {"membership": ("MEMBERSHIP_URL", "http://127.0.0.1:8001"),
                "training": ("TRAINING_URL", "http://127.0.0.1:8002"),
                "welfare": ("WELFARE_URL", "http://127.0.0.1:8003"),
                "reporting": ("REPORTING_URL", "http://127.0.0.1:8004")}


_T0 = time.monotonic()


def say(msg: str) -> None:
    print(f"[demo] {msg}  [{time.monotonic() - _T0:.0f}s]", flush=True)


class SeedError(RuntimeError):
    pass


# ---------------------------------------------------------------- HTTP
@dataclass
class Resp:
    method: str
    url: str
    status: int
    body: Any

    def describe(self) -> str:
        return f"{self.method} {self.url} -> {self.status} {json.dumps(self.body, ensure_ascii=False)[:800]}"

    @property
    def message(self) -> str:
        return str(self.body.get("message", "")) if isinstance(self.body, dict) else str(self.body)


class Api:
    """A tiny JSON client (stdlib only) for one service under /api/v1."""

    def __init__(self, name: str, base: str, timeout: float = 30.0):
        self.name, self.base, self.timeout = name, base.rstrip("/"), timeout
        self.calls = 0
        self.stale_retries: dict[str, int] = {}  # path -> 412s retried
        self.retry_log: list[str] = []

    def call(self, method: str, path: str, token: str, body: Any = None, headers: dict | None = None) -> Resp:
        url = f"{self.base}/api/v1{path}"
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        hdrs = {"Authorization": f"Bearer {token}", "Accept": "application/json", **(headers or {})}
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
        self.calls += 1
        for attempt in range(5):
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as r:
                    return Resp(method, url, r.status, _json(r.read()))
            except urllib.error.HTTPError as e:
                return Resp(method, url, e.code, _json(e.read()))
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                if attempt == 4:
                    raise SeedError(f"{self.name} unreachable: {method} {url}: {e}") from e
                time.sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")

    def ok(self, method: str, path: str, token: str, body: Any = None, headers: dict | None = None,
           what: str = "") -> Any:
        """One command; 200/201 expected. A 412 on a command that pinned no `version` is the
        service's own bookkeeping (the outbox relay marking events published writes the same
        document): reload-and-retry, as the API says. If that left a welfare step claimed
        ("already being approved/disbursed"), the claim's lease (30 s) must pass first."""
        deadline = time.monotonic() + 60
        attempt = 0
        while True:
            r = self.call(method, path, token, body, headers)
            if r.status in (200, 201):
                return r.body
            unpinned = not (isinstance(body, dict) and "version" in body)
            stale = r.status == 412 and unpinned
            held = r.status == 409 and (("already being" in r.message and self.stale_retries.get(path))
                                        or "retry" in r.message)
            if not (stale or held) or time.monotonic() > deadline:
                raise SeedError(f"{what or self.name}: {r.describe()}")
            if held and not attempt:
                self.retry_log.append(r.describe())
            if stale:
                self.stale_retries[path] = self.stale_retries.get(path, 0) + 1
                self.retry_log.append(r.describe())
            attempt += 1
            time.sleep(min(0.2 * attempt, 3.0))

    def when_known(self, method: str, path: str, token: str, body: Any = None, headers: dict | None = None,
                   what: str = "", timeout: float = 90.0) -> Any:
        """Retry while the service has not yet received (from Kafka) the unit or member concerned,
        or a busy lock asks for a retry; anything else is an error."""
        deadline = time.monotonic() + timeout
        delay = 0.2
        while True:
            r = self.call(method, path, token, body, headers)
            if r.status in (200, 201):
                return r.body
            if r.status == 412 and not (isinstance(body, dict) and "version" in body):
                self.stale_retries[path] = self.stale_retries.get(path, 0) + 1
                self.retry_log.append(r.describe())
                time.sleep(0.2)
                continue
            if not _transient(r) or time.monotonic() > deadline:
                why = "timed out waiting: " if _transient(r) else ""
                raise SeedError(f"{why}{what or self.name}: {r.describe()}")
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return raw.decode(errors="replace")


def _transient(r: Resp) -> bool:
    msg = r.message.lower()
    if r.status == 404 and ("not known" in msg or "unknown" in msg):
        return True  # reporting: unit not known to reporting (yet)
    if r.status == 422 and any(s in msg for s in ("not known", "unknown here", "not an active member yet",
                                                  "not yet received")):
        return True
    return r.status in (409, 503) and "retry" in msg


# ---------------------------------------------------------------- the demo province
HCM_COMMUNES = [("Công đoàn phường Sài Gòn", "HCM-SG"), ("Công đoàn phường Bến Thành", "HCM-BT"),
                ("Công đoàn xã Bình Chánh", "HCM-BC")]
HN_COMMUNES = [("Công đoàn phường Ba Đình", "HN-BD")]
# (commune, name, code, sector, founded: ISO date or fraction of this year, method, weight, employer)
CDCS = [
    ("HCM-SG", "CĐCS Công ty TNHH May mặc Sài Gòn Xanh", "HCM-SG-001", "non_state", "2023-01-01", "standard", 5,
     "Công ty TNHH May mặc Sài Gòn Xanh"),
    ("HCM-SG", "CĐCS Trường THPT Trưng Vương", "HCM-SG-002", "public_admin", "2022-09-01", "standard", 2,
     "Trường THPT Trưng Vương"),
    ("HCM-SG", "CĐCS Công ty CP Dịch vụ Du lịch Bến Nghé", "HCM-SG-003", "non_state", 0.20, "new_method", 2,
     "Công ty CP Dịch vụ Du lịch Bến Nghé"),
    ("HCM-BT", "CĐCS Ban Quản lý Chợ Bến Thành", "HCM-BT-001", "public_admin", "2021-05-01", "standard", 2,
     "Ban Quản lý Chợ Bến Thành"),
    ("HCM-BT", "CĐCS Khách sạn Rex Sài Gòn", "HCM-BT-002", "state_enterprise", "2023-01-01", "standard", 3,
     "Tổng Công ty Du lịch Sài Gòn - Khách sạn Rex"),
    ("HCM-BC", "CĐCS Công ty TNHH Điện tử Bình Chánh", "HCM-BC-001", "non_state", "2023-01-01", "standard", 5,
     "Công ty TNHH Điện tử Bình Chánh"),
    ("HCM-BC", "CĐCS Hợp tác xã Nông nghiệp Tân Nhựt", "HCM-BC-002", "cooperative", 0.35, "new_method", 1,
     "Hợp tác xã Nông nghiệp Tân Nhựt"),
    ("HCM-BC", "Nghiệp đoàn Lao động tự do xã Bình Chánh", "HCM-BC-003", "informal", 0.50, "new_method", 1,
     None),
    ("HN-BD", "CĐCS Bệnh viện Đa khoa Ba Đình", "HN-BD-001", "public_admin", "2022-01-01", "standard", 2,
     "Bệnh viện Đa khoa Ba Đình"),
]
CCCD_PROVINCES = ["079", "079", "079", "001", "075", "080", "083", "086", "089", "052", "038", "040", "036"]
RATING_WEIGHTS = [("excellent", 3), ("good", 5), ("completed", 2)]


@dataclass
class Member:
    id: str
    cdcs: str           # CĐCS code
    name: str
    gender: str
    official: bool
    admitted_on: date
    approved_on: date | None = None
    status: str = "admitted"
    transferred: bool = False


@dataclass
class Options:
    members: int = 300
    seed: int = 1
    if_empty: bool = False
    urls: dict[str, str] = field(default_factory=dict)
    wait: float = 90.0
    var_dir: Path | None = None
    today: date | None = None


class Seeder:
    def __init__(self, opts: Options):
        self.o = opts
        self.rng = random.Random(opts.seed)
        self.today = opts.today or date.today()
        self.year = self.today.year
        self.jan1 = date(self.year, 1, 1)
        self.end = min(self.today, date(self.year, 11, 20))
        self.m = Api("membership", opts.urls["membership"])
        self.t = Api("training", opts.urls["training"])
        self.w = Api("welfare", opts.urls["welfare"])
        self.r = Api("reporting", opts.urls["reporting"])
        self.units: dict[str, str] = {}        # code -> id
        self.unit_names: dict[str, str] = {}   # code -> name
        self.members: list[Member] = []
        self._tokens: dict[str, str] = {}
        self.operator = mint("demo-operator", "*", ["admin"])
        self.cids: set[str] = set()

    # ------------------------------------------------------------ helpers
    def at(self, frac: float) -> date:
        """A date this year, `frac` of the way from 1 January to min(today, 20 November)."""
        span = max((self.end - self.jan1).days, 0)
        return self.jan1 + timedelta(days=int(round(frac * span)))

    def clamp(self, d: date) -> date:
        return min(d, self.today)

    def tok(self, code: str, roles=("officer",)) -> str:
        key = f"{code}|{','.join(roles)}"
        if key not in self._tokens:
            self._tokens[key] = mint(f"demo@{code}", self.units[code], list(roles))
        return self._tokens[key]

    def commune_of(self, cdcs_code: str) -> str:
        return cdcs_code.rsplit("-", 1)[0]

    def province_of(self, code: str) -> str:
        return code.split("-", 1)[0]

    # ------------------------------------------------------------ units
    def create_unit(self, name, code, kind, level, parent, effective: date, sector=None, founding=None) -> str:
        body = {"name": name, "code": code, "kind": kind, "level": level,
                "parent_id": self.units[parent] if parent else None, "effective_date": effective.isoformat()}
        if sector:
            body["sector"] = sector
        if founding:
            body["founding"] = founding
        token = self.operator if parent is None else self.tok(parent, ("admin",))  # structure: admin role
        unit = self.m.ok("POST", "/units", token, body, what=f"create unit {code}")
        self.units[code], self.unit_names[code] = unit["id"], name
        return unit["id"]

    def build_tree(self) -> bool:
        """False when the root already exists (already seeded)."""
        r = self.m.call("POST", "/units", self.operator, {
            "name": "Tổng Liên đoàn Lao động Việt Nam", "code": "TLD", "kind": "central", "level": 1,
            "parent_id": None, "effective_date": "1929-07-28"})
        if r.status == 409:
            return False
        if r.status != 201:
            raise SeedError(f"create the root unit: {r.describe()}")
        self.units["TLD"], self.unit_names["TLD"] = r.body["id"], r.body["name"]
        founded = date(1975, 5, 30)
        self.create_unit("LĐLĐ Thành phố Hồ Chí Minh", "HCM", "province", 2, "TLD", founded)
        self.create_unit("LĐLĐ Thành phố Hà Nội", "HN", "province", 2, "TLD", date(1955, 10, 10))
        communes_from = self.clamp(date(2025, 7, 1))  # the two-level local government (1 July 2025)
        for prov, communes in (("HCM", HCM_COMMUNES), ("HN", HN_COMMUNES)):
            for name, code in communes:
                self.create_unit(name, code, "commune", 3, prov, communes_from)
        self.cdcs_info: dict[str, dict] = {}
        for commune, name, code, sector, founded, method, weight, employer in CDCS:
            eff = date.fromisoformat(founded) if isinstance(founded, str) else self.at(founded)
            group = [person(self.rng)[0] for _ in range(self.rng.randint(3, 5))]
            founding = {"method": method, "founding_member_count": self.rng.randint(8, 40),
                        "founding_group": group, "decision_no": f"{self.rng.randint(10, 299)}/QĐ-{commune}",
                        "decision_date": self.clamp(eff + timedelta(days=self.rng.randint(3, 20))).isoformat()}
            self.create_unit(name, code, "cdcs", 4, commune, eff, sector, founding)
            self.cdcs_info[code] = {"effective": eff, "weight": weight, "employer": employer, "sector": sector,
                                    "method": method}
        say(f"{len(self.units)} units created (1 central, 2 provinces, {len(HCM_COMMUNES) + len(HN_COMMUNES)} "
            f"communes, {len(CDCS)} CĐCS; {sum(1 for c in CDCS if c[5] == 'new_method')} by the new method)")
        return True

    # ------------------------------------------------------------ members
    def citizen_id(self, dob: date, gender: str) -> str:
        while True:
            g = (0 if gender == "male" else 1) + (2 if dob.year >= 2000 else 0)
            cid = f"{self.rng.choice(CCCD_PROVINCES)}{g}{dob.year % 100:02d}{self.rng.randrange(10**6):06d}"
            if cid not in self.cids:
                self.cids.add(cid)
                return cid

    def plan_members(self) -> list[tuple[str, dict, bool]]:
        """(cdcs code, admission body, stays awaiting approval) in admission order."""
        codes = [c[2] for c in CDCS]
        weights = [self.cdcs_info[c]["weight"] for c in codes]
        n = self.o.members
        per = {c: 4 for c in codes}  # every CĐCS gets a committee: a chair, a vice chair and members
        for c in self.rng.choices(codes, weights, k=max(n - 4 * len(codes), 0)):
            per[c] += 1
        plan = []
        late = self.at(0.85)
        for code in codes:
            eff = self.cdcs_info[code]["effective"]
            for i in range(per[code]):
                name, gender = person(self.rng)
                dob = date(self.rng.randint(1968, 2004), self.rng.randint(1, 12), self.rng.randint(1, 28))
                if eff.year < self.year and self.rng.random() < 0.45:
                    start = max(eff, date(self.year - 5, 1, 1))
                    admitted = start + timedelta(days=self.rng.randrange(max((date(self.year - 1, 12, 20) - start).days, 1)))
                    pending = False
                else:
                    start = max(eff + timedelta(days=3), self.jan1)
                    admitted = self.clamp(start + timedelta(days=self.rng.randrange(max((late - start).days, 1))))
                    pending = self.rng.random() < 0.08 and i >= 4
                if admitted.year - dob.year < 18:
                    dob = dob.replace(year=admitted.year - 20)
                official = i < 4 or self.rng.random() < 0.06
                employer = self.cdcs_info[code]["employer"]
                body = {"full_name": name, "citizen_id": self.citizen_id(dob, gender),
                        "date_of_birth": dob.isoformat(), "gender": gender,
                        "phone": f"09{self.rng.randrange(10**8):08d}", "employer": employer,
                        "is_official": official, "admitted_on": admitted.isoformat()}
                plan.append((code, body, pending))
        plan.sort(key=lambda p: p[1]["admitted_on"])
        return plan

    def admit_and_approve(self) -> None:
        plan = self.plan_members()
        total = len(plan)
        pending_ids = set()
        for i, (code, body, pending) in enumerate(plan, 1):
            m = self.m.ok("POST", f"/units/{self.units[code]}/members", self.tok(code), body,
                          what=f"admit {body['full_name']}")
            self.members.append(Member(m["id"], code, body["full_name"], body["gender"], body["is_official"],
                                       date.fromisoformat(body["admitted_on"])))
            if pending:
                pending_ids.add(m["id"])
            if i % 20 == 0 or i == total:
                say(f"{i}/{total} members admitted")
        # approval by the commune (the level above the CĐCS), a few days after the admission
        to_approve = [m for m in self.members if m.id not in pending_ids]
        for i, member in enumerate(to_approve, 1):
            on = self.clamp(member.admitted_on + timedelta(days=self.rng.randint(3, 20)))
            self.m.ok("POST", f"/members/{member.id}/approve", self.tok(self.commune_of(member.cdcs)),
                      {"on": on.isoformat()}, what=f"approve {member.id}")
            member.approved_on, member.status = on, "active"
            if i % 20 == 0 or i == len(to_approve):
                say(f"{i}/{len(to_approve)} members approved by their commune ({len(pending_ids)} still awaiting)")

    def active(self, where: Callable[[Member], bool] = lambda m: True) -> list[Member]:
        return [m for m in self.members if m.status == "active" and where(m)]

    def cards(self) -> None:
        chosen = [m for m in self.active() if self.rng.random() < 0.4]
        for m in chosen:
            on = self.clamp(m.approved_on + timedelta(days=self.rng.randint(10, 40)))
            self.m.ok("POST", f"/members/{m.id}/card", self.tok(self.province_of(m.cdcs)), {"on": on.isoformat()},
                      what=f"card for {m.id}")
        say(f"{len(chosen)} union cards issued")

    def dues(self) -> None:
        months = sorted({self.at(0.78).strftime("%Y-%m"), self.at(0.9).strftime("%Y-%m")})
        n = 0
        for month in months:
            for m in self.active(lambda m: m.approved_on.strftime("%Y-%m") <= month):
                salary = self.rng.choice([4_960_000, 5_310_000, 6_200_000, 7_500_000, 9_800_000, 12_000_000,
                                          15_500_000, 21_000_000])
                body = {"month": month, "salary": salary}
                if self.rng.random() < 0.03:
                    body["on_social_insurance_benefits"] = True
                # one recording per member-month: the amount collected is the due amount of the rule
                # in force (computed by membership's own pure rule), except for the ~10% not yet paid
                due = dues_due(date(int(month[:4]), int(month[5:]), 1), salary,
                               body.get("on_social_insurance_benefits", False), 0)[0]
                if due and self.rng.random() < 0.9:
                    body["paid"] = due
                res = self.m.ok("POST", f"/members/{m.id}/dues", self.tok(m.cdcs), body, what=f"dues {m.id}")
                if res["due"] != due:
                    raise SeedError(f"dues of {m.id} {month}: membership computed {res['due']}, expected {due}")
                n += 1
        say(f"dues recorded for {n} member-months ({', '.join(months)})")

    def transfers_and_leaving(self) -> None:
        moves = [("HCM-SG-001", "HCM-BC-001"), ("HCM-BT-002", "HCM-SG-001"), ("HCM-BC-001", "HCM-BT-001")]
        done = []
        for frm, to in moves:
            pool = self.active(lambda m: m.cdcs == frm and not m.official and not m.transferred)
            if not pool:
                continue
            m = self.rng.choice(pool)
            on = self.clamp(max(self.at(0.95), m.approved_on))
            self.m.ok("POST", f"/members/{m.id}/transfer", self.tok("HCM"),
                      {"to_unit_id": self.units[to], "on": on.isoformat()}, what=f"transfer {m.id}")
            m.cdcs, m.transferred = to, True
            done.append(f"{frm}->{to}")
        say(f"{len(done)} members transferred across communes ({', '.join(done)})")
        leaving = [("resigned", 2), ("removed", 1), ("deceased", 1)]
        n = 0
        for reason, count in leaving:
            for _ in range(count):
                pool = self.active(lambda m: not m.official and not m.transferred)
                m = self.rng.choice(pool)
                on = self.clamp(max(self.at(self.rng.uniform(0.8, 0.97)), m.approved_on))
                self.m.ok("POST", f"/members/{m.id}/leave", self.tok(m.cdcs), {"reason": reason, "on": on.isoformat()},
                          what=f"leave {m.id}")
                m.status = "left"
                n += 1
        say(f"{n} members left (resigned, removed from the rolls, deceased)")

    def committees_and_ratings(self) -> None:
        consolidated = []
        for code in [c[2] for c in CDCS][::2]:
            officials = self.active(lambda m: m.cdcs == code and m.official)
            if len(officials) < 3:
                continue
            positions = [{"member_id": officials[0].id, "position": "chair"},
                         {"member_id": officials[1].id, "position": "vice_chair"}]
            positions += [{"member_id": m.id, "position": "member"} for m in officials[2:5]]
            on = self.at(self.rng.uniform(0.4, 0.7))
            self.m.ok("PUT", f"/units/{self.units[code]}/committee", self.tok(self.commune_of(code)),
                      {"term": f"{self.year}-{self.year + 5}", "date": on.isoformat(), "positions": positions},
                      what=f"committee {code}")
            consolidated.append(code)
        say(f"committees consolidated: {', '.join(consolidated)}")
        cutoff = date(self.year, 11, 30)
        rated = []
        for code, info in self.cdcs_info.items():
            eff = info["effective"]
            if (cutoff.year - eff.year) * 12 + (cutoff.month - eff.month) - (cutoff.day < eff.day) < 12:
                continue
            ratings, weights = zip(*RATING_WEIGHTS)
            proposed = self.rng.choices(ratings, weights)[0]
            uid = self.units[code]
            self.m.ok("POST", f"/units/{uid}/ratings", self.tok(code), {"year": self.year, "rating": proposed},
                      what=f"propose rating {code}")
            body = {}
            if proposed == "excellent" and self.rng.random() < 0.3:
                body["rating"] = "good"  # the commune lowers it
            self.m.ok("POST", f"/units/{uid}/ratings/{self.year}/confirm", self.tok(self.commune_of(code)), body,
                      what=f"confirm rating {code}")
            rated.append(f"{code}={body.get('rating', proposed)}")
        say(f"{self.year} ratings proposed and confirmed by the commune: {', '.join(rated)}")

    # ------------------------------------------------------------ training
    def training(self) -> None:
        Y = self.year
        course = self.t.when_known("POST", "/courses", self.tok("HCM"), {
            "code": f"HCM-NVCD-{Y}", "name": "Bồi dưỡng nghiệp vụ công tác công đoàn cho cán bộ công đoàn cơ sở",
            "topic": "union_work", "audience": "officials", "format": "in_person", "duration_days": 2,
            "owner_unit_id": self.units["HCM"]}, what="register course", timeout=self.o.wait)
        say(f"course {course['code']} registered by HCM")
        for commune, frac in (("HCM-SG", 0.72), ("HCM-BC", 0.76)):
            start = self.at(frac)
            days = [start, start + timedelta(days=1)]
            if days[1] > self.today:
                days = [self.today - timedelta(days=1), self.today]
            token = self.tok(commune)
            cls = self.t.when_known("POST", "/classes", token, {
                "course_id": course["id"], "code": f"{commune}-NVCD-{Y}-01",
                "name": f"Lớp bồi dưỡng cán bộ công đoàn cơ sở - {self.unit_names[commune]}",
                "organising_unit_id": self.units[commune], "start_date": days[0].isoformat(),
                "days": [d.isoformat() for d in days], "capacity": 40,
                "location": f"Hội trường {self.unit_names[commune]}"}, what=f"plan class {commune}",
                timeout=self.o.wait)
            cid = cls["id"]
            self.t.ok("POST", f"/classes/{cid}/open", token, what="open class")
            officials = self.active(lambda m: self.commune_of(m.cdcs) == commune and m.official and not m.transferred)
            enrolled = []
            for m in officials[:40]:
                self.t.when_known("POST", f"/classes/{cid}/enrolments", token,
                                  {"member_id": m.id, "on": self.clamp(days[0] - timedelta(days=7)).isoformat()},
                                  what=f"enrol {m.id}", timeout=self.o.wait)
                enrolled.append(m)
            self.t.ok("POST", f"/classes/{cid}/start", token, what="start class")
            absent = enrolled[-1] if len(enrolled) > 3 else None
            self.t.ok("POST", f"/classes/{cid}/attendance", token,
                      {"date": days[0].isoformat(), "present": [m.id for m in enrolled]}, what="attendance 1")
            self.t.ok("POST", f"/classes/{cid}/attendance", token,
                      {"date": days[1].isoformat(), "present": [m.id for m in enrolled if m is not absent]},
                      what="attendance 2")
            certs = 0
            for i, m in enumerate(enrolled):
                score = round(self.rng.uniform(6.0, 9.8), 1)
                if i == len(enrolled) - 2 and len(enrolled) > 4:
                    score = 4.5  # fails on the score
                res = self.t.ok("POST", f"/classes/{cid}/enrolments/{m.id}/completion", token,
                                {"score": score, "on": days[1].isoformat()}, what=f"completion {m.id}")
                certs += res["status"] == "completed"
            self.t.ok("POST", f"/classes/{cid}/close", token, {"on": self.clamp(days[1] + timedelta(days=1)).isoformat()},
                      what="close class")
            say(f"class {cls['code']}: {len(enrolled)} officials enrolled, {certs} certificates, closed")
        # the members reached, by id: each counts once per session, and once a year in the shares
        hcm = self.active(lambda m: m.cdcs.startswith("HCM-"))
        reached = [m.id for m in hcm if self.rng.random() < 0.8][:2000]
        session = self.t.when_known("POST", "/dissemination-sessions", self.tok("HCM"), {
            "organising_unit_id": self.units["HCM"],
            "topic": "Quán triệt Nghị quyết Đại hội XIII Công đoàn Việt Nam",
            "document_ref": "NQ Đại hội XIII CĐVN", "held_on": self.at(0.6).isoformat(), "format": "blended",
            "audience": "members", "member_ids": reached}, what="dissemination", timeout=self.o.wait,
            headers={"Idempotency-Key": f"demo-dissemination-{self.year}"})
        say(f"dissemination session recorded: {session['members_identified']} members reached in "
            f"{session['cdcs_reached']} CĐCS")

    # ------------------------------------------------------------ welfare
    def welfare(self) -> None:
        Y = self.year
        prov = self.tok("HCM")
        n_tet = max(3, len(self.members) // 10)
        programmes = {}
        for key, name, kind, budget, sources in (
                ("tet", f"Tết Sum vầy {Y}", "tet_gift", max(n_tet * 1_000_000, 50_000_000), ["union_fund", "employer"]),
                ("hardship", f"Thăm hỏi, trợ cấp đoàn viên khó khăn {Y}", "hardship_visit", 100_000_000,
                 ["union_fund", "sponsor"]),
                ("loan", f"Quỹ Trợ vốn công nhân lao động {Y}", "micro_loan", 300_000_000, ["union_fund"])):
            programmes[key] = self.w.when_known("POST", "/programmes", prov, {
                "name": name, "kind": kind, "unit_id": self.units["HCM"], "year": Y, "budget": budget,
                "funding_sources": sources}, what=f"programme {kind}", timeout=self.o.wait)
        say(f"3 welfare programmes of LĐLĐ HCM: {', '.join(p['name'] for p in programmes.values())}")
        stable = lambda m: (self.province_of(m.cdcs) == "HCM" and not m.transferred  # noqa: E731
                            and m.admitted_on < date(Y, 1, 1))
        pool = self.active(stable)
        self.rng.shuffle(pool)
        disbursed = 0
        amount_total = 0

        def case(m: Member, prog: dict, body: dict, requested: date) -> dict:
            return self.w.when_known("POST", "/cases", self.tok(m.cdcs), {
                "programme_id": prog["id"], "member_id": m.id, "requested_on": requested.isoformat(), **body},
                what=f"case for {m.id}", timeout=self.o.wait)

        # Commands go phase by phase (all requests, then all decisions, then all payments) so the
        # outbox relay has published a case's last event before the next command on it.
        plan = []  # (member, case, decider token, decided on, payer token, reject reason or None)
        for m in pool[:n_tet]:  # Tết Sum vầy: requested by the CĐCS, approved and handed over by the commune
            c = case(m, programmes["tet"], {"hardship_type": "tet", "amount": 1_000_000, "form": "gift",
                                            "funding": [{"source": "union_fund", "amount": 600_000},
                                                        {"source": "employer", "amount": 400_000}]}, self.at(0.02))
            commune = self.tok(self.commune_of(m.cdcs))
            plan.append((m, c, commune, self.at(0.03), commune, None))
        hardship = pool[n_tet:n_tet + 6]  # hardship visits: small ones decided by the commune, larger by HCM
        for i, m in enumerate(hardship):
            kind = self.rng.choice(["illness", "accident", "bereavement", "poverty"])
            amount = self.rng.choice([1_000_000, 2_000_000, 3_000_000, 5_000_000])
            requested = self.at(self.rng.uniform(0.2, 0.7))
            c = case(m, programmes["hardship"], {"hardship_type": kind, "amount": amount, "form": "cash",
                                                 "funding": [{"source": "union_fund", "amount": amount}]}, requested)
            decider = self.tok("HCM") if amount >= 3_000_000 else self.tok(self.commune_of(m.cdcs))
            reason = "Không thuộc đối tượng hỗ trợ của chương trình" if i == len(hardship) - 1 else None
            plan.append((m, c, decider, self.clamp(requested + timedelta(days=3)), self.tok(self.commune_of(m.cdcs)),
                         reason))
        borrower = pool[n_tet + 6] if len(pool) > n_tet + 6 else pool[-1]  # one micro-loan, decided by HCM
        requested = self.at(0.3)
        loan_case = case(borrower, programmes["loan"], {
            "hardship_type": "job_loss", "amount": 20_000_000, "form": "cash",
            "funding": [{"source": "union_fund", "amount": 20_000_000}], "loan": {"term_months": 12}}, requested)
        plan.append((borrower, loan_case, prov, self.clamp(requested + timedelta(days=5)), prov, None))
        for m, c, decider, decided, _, reason in plan:
            if reason:
                self.w.ok("POST", f"/cases/{c['id']}/reject", decider,
                          {"reason": reason, "rejected_on": decided.isoformat()}, what="reject case")
            else:
                self.w.ok("POST", f"/cases/{c['id']}/approve", decider, {"approved_on": decided.isoformat()},
                          what=f"approve case of {m.id}")
        for m, c, _, decided, payer, reason in plan:
            if reason:
                continue
            self.w.ok("POST", f"/cases/{c['id']}/disburse", payer,
                      {"disbursed_on": self.clamp(decided + timedelta(days=4)).isoformat()},
                      {"Idempotency-Key": f"demo-pay-{c['id']}"}, what=f"disburse case of {m.id}")
            disbursed += 1
            amount_total += c["amount"]
        paid_out = self.clamp(requested + timedelta(days=5) + timedelta(days=4))
        c = loan_case
        loan = self.w.ok("GET", f"/loans/{c['id']}?as_of={paid_out.isoformat()}", prov, what="loan position")
        instalment = loan.get("next_due_amount") or 20_000_000 // 12
        paid_on = self.clamp(date.fromisoformat(loan["next_due_on"])) if loan.get("next_due_on") else paid_out
        self.w.ok("POST", f"/loans/{c['id']}/repayments", self.tok(self.commune_of(borrower.cdcs)),
                  {"amount": instalment, "paid_on": paid_on.isoformat()},
                  {"Idempotency-Key": f"demo-repay-{c['id']}-1"}, what="loan repayment")
        say(f"welfare: {disbursed} cases disbursed ({amount_total:,} đồng), 1 rejected, "
            f"1 micro-loan of 20,000,000 đồng with a repayment of {instalment:,}")

    # ------------------------------------------------------------ reporting
    def targets(self) -> None:
        Y = self.year
        prov = self.tok("HCM")
        self.r.when_known("GET", f"/views/{self.units['HCM']}?period={Y}", prov, what="reporting knows HCM",
                          timeout=self.o.wait)
        for _, code in HCM_COMMUNES:
            admitted = sum(1 for m in self.members if self.commune_of(m.cdcs) == code and m.admitted_on.year == Y
                           and not m.transferred)
            for indicator, value in (
                    ("members.admitted", max(5, round(admitted * self.rng.uniform(0.85, 1.3)))),
                    ("officials.trained_pct", 70),
                    ("welfare.cases", max(3, len(self.members) // 25)),
                    ("training.members_reached", max(10, round(len(self.members) / 3.5))),
                    ("training.members_reached_pct", 95), ("training.cdcs_reached_pct", 95)):
                self.r.when_known("PUT", f"/targets/{self.units[code]}", prov,
                                  {"year": Y, "indicator": indicator, "value": value},
                                  what=f"target {indicator} for {code}", timeout=self.o.wait)
        say(f"{Y} targets assigned by LĐLĐ HCM to its {len(HCM_COMMUNES)} communes")

    # ------------------------------------------------------------ periodic reports
    def periodic_reports(self) -> None:
        """The half-year report of this year (cut-off 31 May) in every state: in the first HCM commune
        every CĐCS report approved, the commune's own submitted and approved by the province; in the
        second, one CĐCS report each approved, submitted, returned, reopened, saved as a draft, and
        the rest missing (docs/periodic-reports.md)."""
        Y = self.year
        if self.today < date(Y, 6, 1):
            say(f"periodic reports: the {Y} half-year has not reached its cut-off (31 May) yet; none seeded")
            return
        period, cutoff = f"{Y}-H1", date(Y, 5, 31)

        def report(code: str, step: str, token_of: str, body: dict, what: str) -> None:
            path = f"/periodic/{self.units[code]}/{period}/report" + ("" if step == "save" else f"/{step}")
            self.r.when_known("PUT" if step == "save" else "POST", path, self.tok(token_of), body, what=what,
                              timeout=self.o.wait)

        def entered() -> dict:
            workforce = self.rng.randint(40, 900)
            with_union = self.rng.randint(0, 3)
            return {"initiatives": self.rng.randint(0, 12), "workforce": workforce,
                    "workforce_members": int(workforce * self.rng.uniform(0.55, 0.97)),
                    "enterprises_with_union": with_union, "enterprises_without_union": self.rng.randint(0, 4),
                    "cla_signed": self.rng.randint(0, with_union), "emulation_titles": self.rng.randint(0, 5),
                    "commendations": self.rng.randint(0, 9)}

        communes = [code for _, code in HCM_COMMUNES]
        kids = {c: [code for commune, _, code, *_ in CDCS if commune == c and self.cdcs_info[code]["effective"] <= cutoff]
                for c in communes}
        self.r.when_known("GET", f"/periodic/{self.units['HCM']}/{period}/status", self.tok("HCM"),
                          what="reporting knows HCM", timeout=self.o.wait)
        first = communes[0]
        for code in kids[first]:
            report(code, "submit", code, {"entered": entered()}, f"{period} report of {code}")
            report(code, "approve", first, {}, f"approve {code}")
        report(first, "submit", first, {"entered": {"initiatives": self.rng.randint(0, 3)}}, f"{period} report of {first}")
        report(first, "approve", "HCM", {}, f"approve {first}")
        # the other communes' CĐCS, one state each (what is left over stays missing)
        rest = [(c, code) for c in communes[1:] for code in kids[c]]
        plan = ["submitted", "reopened", "returned", "draft"]
        for (commune, code), state in zip(rest, plan):
            if state == "draft":
                report(code, "save", code, {"entered": entered()}, f"draft of {code}")
                continue
            report(code, "submit", code, {"entered": entered()}, f"{period} report of {code}")
            if state == "reopened":
                report(code, "approve", commune, {}, f"approve {code}")
                report(code, "reopen", commune, {"reason": "Bổ sung sáng kiến được công nhận sau ngày duyệt"},
                       f"reopen {code}")
            if state == "returned":
                report(code, "return", commune, {"reason": "Số CNVCLĐ chưa khớp với báo cáo của doanh nghiệp"},
                       f"return {code}")
        states = ", ".join(f"{code} {state}" for (_, code), state in zip(rest, plan))
        say(f"periodic reports {period}: {first} and its {len(kids[first])} CĐCS approved; {states}; "
            f"the other communes' reports missing")

    # ------------------------------------------------------------ all
    def run(self) -> int:
        t0 = time.monotonic()
        say(f"seeding the demo province for {self.year} (seed {self.o.seed}, {self.o.members} members) "
            f"via {self.m.base}, {self.t.base}, {self.w.base}, {self.r.base}")
        if not self.build_tree():
            if self.o.if_empty:
                say("membership already has the root unit TLD: already seeded, nothing to do")
                return 0
            say("membership already has a root unit coded TLD: already seeded (use --if-empty, "
                "or a fresh DB_PREFIX/TOPIC_PREFIX)")
            return 3
        self.admit_and_approve()
        self.cards()
        self.dues()
        self.transfers_and_leaving()
        self.committees_and_ratings()
        self.training()
        self.welfare()
        self.targets()
        self.periodic_reports()
        token = mint("demo-admin@HCM", self.units["HCM"], ["admin"], ttl_seconds=7 * 86400)  # the longest lifetime tokens may have
        var = self.o.var_dir or Path(settings.current().congdoan_var or ROOT / "var")
        var.mkdir(parents=True, exist_ok=True)
        (var / "demo-token.txt").write_text(token + "\n")
        calls = self.m.calls + self.t.calls + self.w.calls + self.r.calls
        for api in (self.m, self.t, self.w, self.r):
            if api.retry_log:
                say(f"note: {api.name} answered 412 to {len(api.retry_log)} unpinned command(s), retried; "
                    f"first: {api.retry_log[0]}")
        say(f"done in {time.monotonic() - t0:.0f}s ({calls} HTTP calls)")
        say(f"province-admin token (7 days) written to {var / 'demo-token.txt'}")
        say("units: " + json.dumps(self.units, ensure_ascii=False))
        print(f"{self.r.base}/dashboard#token={token}", flush=True)
        return 0


def parse_args(argv: list[str]) -> tuple[str, Options]:
    p = argparse.ArgumentParser(prog="python -m services.demo", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("seed", help="build the demo province through the HTTP APIs")
    s.add_argument("--if-empty", action="store_true", help="do nothing when membership already has the root TLD")
    s.add_argument("--members", type=int, default=300, help="number of members (default 300)")
    s.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    s.add_argument("--wait", type=float, default=90.0,
                   help="seconds to wait for a service to receive a unit or member from Kafka (default 90)")
    for svc, (env, default) in DEFAULT_URLS.items():
        s.add_argument(f"--base-url-{svc}", default=getattr(settings.current(), env.lower()),
                       help=f"default ${env} or {default}")
    a = p.parse_args(argv)
    if a.members < 40:
        p.error("--members must be at least 40 (every CĐCS needs a committee and the classes officials)")
    urls = {svc: getattr(a, f"base_url_{svc}") for svc in DEFAULT_URLS}
    return a.command, Options(members=a.members, seed=a.seed, if_empty=a.if_empty, urls=urls, wait=a.wait)


def main(argv: list[str] | None = None) -> int:
    command, opts = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return Seeder(opts).run()
    except SeedError as exc:
        say(f"FAILED: {exc}")
        return 1
