"""End to end: every process kind of deploy/Procfile runs as a real process (gunicorn APIs, outbox
relays, consumers, the reporting projector) on free ports with the test's own topics and databases;
the demo seeder drives them through HTTP only; then the reporting views must equal an independent
recount of every raw event on the three topics, at every level of the hierarchy."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import date

import pytest
import requests

from platformkit import config
from platformkit.auth import mint
from platformkit.envelope import decode
from tests.reporting.recount import COMPARED, recount
from tests.support.infra import ROOT, read_topic, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

TOPICS = ("membership.events", "training.events", "welfare.events")
MEMBERS = 60


def all_events() -> list:
    """Every envelope of the three topics, deduplicated by envelope id (delivery is at least once)."""
    seen, out = set(), []
    for t in TOPICS:
        for msg in read_topic(config.topic(t), timeout=15):
            env = decode(msg.value)
            if env.id not in seen:
                seen.add(env.id)
                out.append(env)
    return out


def test_every_process_kind_seeded_and_reported_exactly(platform, isolated):
    t0 = time.monotonic()
    year = date.today().year
    assert set(platform.kinds) >= {"membership-api", "membership-relay", "training-api", "training-relay",
                                   "training-consumer", "welfare-api", "welfare-relay", "welfare-consumer",
                                   "reporting-api", "reporting-projector", "reporting-relay"}
    assert not platform.dead(), platform.tail()

    # ---- seed through the HTTP APIs, as a user would
    var = isolated["tmp"] / "var"
    cmd = [sys.executable, "-m", "services.demo", "seed", "--members", str(MEMBERS), "--wait", "60"]
    for svc in ("membership", "training", "welfare", "reporting"):
        cmd += [f"--base-url-{svc}", platform.url(svc)]
    seeded = subprocess.run(cmd, env={**platform.env, "CONGDOAN_VAR": str(var)}, cwd=ROOT, capture_output=True,
                            text=True, timeout=150)
    print(seeded.stdout)
    assert seeded.returncode == 0, f"seeder failed:\n{seeded.stdout}\n{seeded.stderr}\n{platform.tail()}"
    assert f"{platform.url('reporting')}/dashboard#token=" in seeded.stdout
    assert "members admitted" in seeded.stdout
    assert (var / "demo-token.txt").read_text().strip()
    t_seed = time.monotonic() - t0
    # a second run with --if-empty does nothing
    again = subprocess.run(cmd + ["--if-empty"], env={**platform.env, "CONGDOAN_VAR": str(var)}, cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stdout + again.stderr

    # ---- the raw events, and reporting caught up with them
    operator = {"Authorization": "Bearer " + mint("e2e", "*", ["admin"])}
    base = platform.url("reporting") + "/api/v1"
    first, last = f"{year}-01", f"{year}-12"

    def view(unit_id: str, indicators=COMPARED) -> dict[str, dict]:
        r = requests.get(f"{base}/views/{unit_id}", params={"period": str(year), "indicators": ",".join(indicators)},
                         headers=operator, timeout=10)
        assert r.status_code == 200, (unit_id, r.status_code, r.text)
        return {row["indicator"]: row for row in r.json()["rows"]}

    def actuals(unit_id: str) -> dict[str, float]:
        return {k: row["actual"] for k, row in view(unit_id).items()}

    state = {}

    def caught_up():
        envs = all_events()
        units = {e.data["code"]: e.data["unit_id"] for e in envs if e.type == "membership.unit.created.v1"}
        expected = recount(envs, first, last)
        mismatches = {}
        for code, uid in units.items():
            r = requests.get(f"{base}/views/{uid}", params={"period": str(year), "indicators": ",".join(COMPARED)},
                             headers=operator, timeout=10)
            if r.status_code != 200:
                mismatches[code] = r.status_code
                continue
            got = {row["indicator"]: row["actual"] for row in r.json()["rows"]}
            want = {k: expected.get(uid, {}).get(k, 0) for k in COMPARED}
            diff = {k: (got.get(k), want[k]) for k in COMPARED if got.get(k) != want[k]}
            if diff:
                mismatches[code] = diff
        state.update(envs=envs, units=units, expected=expected, mismatches=mismatches)
        # stable: no event arrived while we compared
        return not mismatches and len(all_events()) == len(envs)

    try:
        wait_until(caught_up, timeout=90, interval=1.0, message="reporting views equal to the recount")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; mismatches (got, want): "
                             f"{json.dumps(state.get('mismatches'), ensure_ascii=False)}\n{platform.tail(8)}") from None
    envs, units, expected = state["envs"], state["units"], state["expected"]
    types = Counter(e.type for e in envs)

    # every level: VN, both provinces, each commune, each CĐCS
    assert {"TLD", "HCM", "HN", "HCM-SG", "HCM-BT", "HCM-BC"} <= set(units)
    assert sum(1 for e in envs if e.type == "membership.unit.created.v1" and e.data["kind"] == "cdcs") >= 6
    for code, uid in units.items():
        want = {k: expected.get(uid, {}).get(k, 0) for k in COMPARED}
        assert actuals(uid) == want, code
    vn = actuals(units["TLD"])
    assert types["membership.member.admitted.v1"] == MEMBERS
    assert vn["members.admitted"] > 0 and vn["members.active"] > 0 and vn["cdcs.founded_new_method"] > 0
    assert vn["committees.consolidated"] > 0 and vn["cdcs.rated"] > 0 and vn["dues.collected"] > 0
    assert vn["members.left"] > 0 and vn["loans.outstanding"] > 0 and vn["training.members_reached"] > 0

    # attainment: a commune against its own target; the province (no own target) against the sum
    hcm = units["HCM"]
    communes = [units[c] for c in ("HCM-SG", "HCM-BT", "HCM-BC")]
    r = requests.get(f"{base}/targets/{hcm}", params={"year": year}, headers=operator, timeout=10)
    assert r.status_code == 200, r.text
    targets = defaultdict(dict)
    assert r.json()["next_cursor"] is None  # a province's districts fit in one page
    for t in r.json()["items"]:
        targets[t["unit"]][t["indicator"]] = t["value"]
    assert not targets.get(hcm), "the province was given no target of its own"
    for indicator in ("members.admitted", "welfare.cases", "training.members_reached"):
        for uid in communes:
            row = view(uid, [indicator])[indicator]
            assert row["target"] == targets[uid][indicator], (uid, indicator)
            assert row["attainment_pct"] == round(100 * row["actual"] / row["target"], 2), (uid, row)
        row = view(hcm, [indicator])[indicator]
        total = sum(targets[uid][indicator] for uid in communes)
        assert row["target"] == total, (indicator, row)
        assert row["actual"] == sum(view(uid, [indicator])[indicator]["actual"] for uid in communes)
        assert row["attainment_pct"] == round(100 * row["actual"] / total, 2), (indicator, row)
    for uid in communes:  # a ratio's target is the commune's own; the province's is not summed
        row = view(uid, ["officials.trained_pct"])["officials.trained_pct"]
        assert row["target"] == targets[uid]["officials.trained_pct"]
        if row["actual"] is not None:
            assert row["attainment_pct"] == round(100 * row["actual"] / row["target"], 2)
    assert view(hcm, ["officials.trained_pct"])["officials.trained_pct"]["target"] is None

    # transfers across communes: out of one commune, into the other
    transfers = [e.data for e in envs if e.type == "membership.member.transferred.v1"]
    across = [d for d in transfers if d["from_ancestors"][-1] != d["ancestors"][-1]]
    assert across, "the seeder transfers members across communes"
    out_by, in_by = Counter(d["from_ancestors"][-1] for d in across), Counter(d["ancestors"][-1] for d in across)
    for commune in set(out_by) | set(in_by):
        got = actuals(commune)
        assert got["members.transferred_out"] == out_by[commune], commune
        assert got["members.transferred_in"] == in_by[commune], commune
    for d in across:
        assert actuals(d["from_unit_id"])["members.transferred_out"] >= 1
        assert actuals(d["unit_id"])["members.transferred_in"] >= 1

    # a completed class shows certificates where it was organised
    closed = [e.data for e in envs if e.type == "training.class.closed.v1"]
    assert closed and any(d["certificates_issued"] > 0 for d in closed)
    for d in closed:
        got = actuals(d["organising_unit_id"])
        assert got["training.classes_held"] >= 1
        if d["certificates_issued"]:
            assert got["training.certificates"] > 0, d["class_code"]
    assert vn["training.certificates"] == types["training.certificate.issued.v1"] > 0

    # welfare amount = the sum of the amounts disbursed
    disbursed = [e.data for e in envs if e.type == "welfare.case.disbursed.v1"]
    assert disbursed and types["welfare.loan.repaid.v1"] >= 1 and types["welfare.case.rejected.v1"] >= 1
    assert actuals(hcm)["welfare.amount"] == sum(d["amount"] for d in disbursed)
    assert vn["welfare.amount"] == sum(d["amount"] for d in disbursed)
    assert vn["welfare.cases"] == len(disbursed)

    # periodic reports: the demo's half-year in every state, each step published on reporting.events
    if date.today() >= date(year, 6, 1):
        period = f"{year}-H1"
        tree = requests.get(f"{base}/periodic/{hcm}/{period}/status", headers=operator, timeout=10).json()
        statuses = Counter()
        for commune in tree["children"]:
            statuses[commune["status"]] += 1
            sub = requests.get(f"{base}/periodic/{commune['unit']['id']}/{period}/status", headers=operator,
                               timeout=10).json()
            statuses.update(c["status"] for c in sub["children"])
        assert {"approved", "submitted", "returned", "draft", "missing"} <= set(statuses), statuses
        assert tree["rates"]["expected"] == sum(statuses.values()) and tree["rates"]["approved"] == statuses["approved"]
        wanted = {"reporting.report.submitted.v1", "reporting.report.approved.v1", "reporting.report.returned.v1",
                  "reporting.report.reopened.v1", "reporting.report.saved.v1"}

        def published():
            kinds = {decode(m.value).type for m in read_topic(config.topic("reporting.events"), timeout=5)}
            return wanted <= kinds
        wait_until(published, 60, message="every kind of report step published by the reporting relay")

    assert not platform.dead(), platform.tail()
    print(f"\n[e2e] seeded in {t_seed:.0f}s, {len(envs)} events, total {time.monotonic() - t0:.0f}s")
