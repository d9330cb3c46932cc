"""Where one request's time goes in the store: requests sent in-process through a service's Flask
app (no gunicorn, no network), every store command timed by pymongo's command monitoring.

    DB_PREFIX=pv500000s7_ TOPIC_PREFIX=pv500000s7. PLATFORM_ENV=local \\
        .venv/bin/python -m bench.store_profile admit 20 [--cdcs u-hcm-x002-s00002]

Kinds: admit (admissions of distinct people into the CĐCS), page (its first page of 50 members),
cases (welfare's case list at the province), classes (training's class list at the province).
Prints the time per request and the store commands by total time (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import time
from collections import defaultdict

from pymongo import monitoring


class Timings(monitoring.CommandListener):
    def __init__(self):
        self.by: dict[tuple[str, str], list] = defaultdict(lambda: [0, 0.0])

    def started(self, event):
        pass

    def succeeded(self, event):
        s = self.by[(event.command_name, event.database_name)]
        s[0] += 1
        s[1] += event.duration_micros / 1000

    def failed(self, event):
        s = self.by[(event.command_name + " (failed)", event.database_name)]
        s[0] += 1
        s[1] += event.duration_micros / 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=["admit", "page", "cases", "classes"])
    p.add_argument("n", type=int)
    p.add_argument("--cdcs", default="u-hcm-x000-s00000")
    p.add_argument("--province", default="u-hcm")
    a = p.parse_args()
    timings = Timings()
    monitoring.register(timings)
    from platformkit.auth import mint
    from platformkit.run import app
    service = {"admit": "membership", "page": "membership", "cases": "welfare", "classes": "training"}[a.kind]
    client = app(service).test_client()
    unit = a.cdcs if service == "membership" else a.province
    headers = {"Authorization": f"Bearer {mint('store-profile', unit, ['officer'])}"}
    run = int(time.time()) % 10_000

    def request(i: int):
        if a.kind == "admit":
            return client.post(f"/api/v1/units/{a.cdcs}/members", headers=headers, json={
                "full_name": f"Nguyễn Văn Hồ Sơ {i}", "citizen_id": f"09{run:04d}{i:06d}", "date_of_birth": "1990-01-01",
                "gender": "male", "phone": None, "employer": None, "is_official": False})
        path = {"page": f"/api/v1/units/{a.cdcs}/members?limit=50", "cases": "/api/v1/cases?limit=50",
                "classes": "/api/v1/classes?limit=50"}[a.kind]
        return client.get(path, headers=headers)
    request(-1)  # the first request creates the indexes and connections: not counted
    timings.by.clear()
    codes: dict[int, int] = defaultdict(int)
    t = time.perf_counter()
    for i in range(a.n):
        codes[request(i).status_code] += 1
    ms = (time.perf_counter() - t) * 1000 / a.n
    print(f"{a.kind}: {a.n} requests, {ms:.1f} ms each, status {dict(codes)}")
    for (name, db), (k, total) in sorted(timings.by.items(), key=lambda kv: -kv[1][1])[:8]:
        print(f"  {name:24} {db:28} {k / a.n:5.1f} per request, {total / k:8.1f} ms each, {total / a.n:8.1f} ms per request")


if __name__ == "__main__":
    main()
