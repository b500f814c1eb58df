"""HTTP under load: gunicorn with 4 workers on PostgreSQL (the large office at SCALE), 50
simulated staff for DURATION seconds on loopback, mixing grid pages, board views and
subscriptions; prints requests/s, p50/p99 per kind, errors, and double-sold units (must be 0).

    DATABASE_URL=postgresql://… REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python bench/load.py [SCALE] [DURATION] [USERS]
"""
from __future__ import annotations

import os
import random
import re
import statistics
import sys
import threading
import time
from pathlib import Path

import requests

from _office import gunicorn, record, scratch_app

ROOT = Path(__file__).resolve().parent.parent
SCALE = float(sys.argv[1]) if len(sys.argv) > 1 else 0.2
DURATION = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
USERS = int(sys.argv[3]) if len(sys.argv) > 3 else 50
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|<meta name="csrf-token" content="([^"]+)"')
ID_NUMBER = "110101199003074573"


def _token(html: str) -> str:
    match = CSRF.search(html)
    return (match.group(1) or match.group(2)) if match else ""


class Staff(threading.Thread):
    """One person: signs in, then reads grids and the board and now and then subscribes a unit."""

    def __init__(self, base, username, leads_by_project, units_by_project, deadline, results, seed):
        super().__init__(daemon=True)
        self.base, self.username, self.deadline, self.results = base, username, deadline, results
        self.leads, self.units = leads_by_project, units_by_project
        self.rng = random.Random(seed)
        self.http = requests.Session()

    def _timed(self, kind, method, path, **kw):
        start = time.perf_counter()
        try:
            response = self.http.request(method, self.base + path, timeout=30, allow_redirects=False, **kw)
            ok = response.status_code < 500
        except requests.RequestException:
            response, ok = None, False
        self.results.append((kind, (time.perf_counter() - start) * 1000, ok))
        return response

    def run(self):
        page = self.http.get(self.base + "/login", timeout=30).text
        self.http.post(self.base + "/login", data={"username": self.username, "password": "bench-pass-1",
                                                   "csrf_token": _token(page)}, timeout=30)
        grids = ["/admin/lead/", "/admin/lead/?page=50", "/admin/instalment/", "/admin/payment/",
                 "/admin/subscription/", "/admin/unit/?page=20"]
        while time.time() < self.deadline:
            roll = self.rng.random()
            project = self.rng.choice(list(self.units))
            if roll < 0.6:
                self._timed("grid", "GET", self.rng.choice(grids))
            elif roll < 0.9:
                self._timed("board", "GET", f"/admin/board/?project={project}")
            elif self.leads.get((self.username, project)):
                unit = self.rng.choice(self.units[project])
                form = self._timed("subscribe", "GET", f"/admin/subscription/new/?unit_id={unit}")
                if form is None or form.status_code != 200:
                    continue
                self._timed("subscribe", "POST", f"/admin/subscription/new/?unit_id={unit}", data={
                    "csrf_token": _token(form.text), "unit_id": str(unit),
                    "lead_id": str(self.rng.choice(self.leads[(self.username, project)])),
                    "id_number": ID_NUMBER, "address": "长沙", "payment_method": "instalments",
                    "deposit": "50000", "subscribed_on": "2026-11-26"})


def main() -> None:
    with scratch_app():
        from sqlalchemy import func, select, text

        from big_office import build
        from models import Lead, User, db
        counts = build(db, SCALE)
        agents = [u for u in db.session.scalars(select(User).where(User.username.like("agent%")))]
        leads, units = {}, {}
        for lead_id, project_id, owner in db.session.execute(select(Lead.id, Lead.project_id, Lead.owner_id)
                                                             .where(Lead.stage.in_(("new", "contacted", "visited")))):
            owner_name = next((a.username for a in agents if a.id == owner), None)
            if owner_name:
                leads.setdefault((owner_name, project_id), []).append(lead_id)
        for unit_id, project_id in db.session.execute(text(
                "SELECT unit.id, building.project_id FROM unit JOIN building ON building.id = unit.building_id "
                "WHERE unit.status = 'available'")):
            units.setdefault(project_id, []).append(unit_id)
        with gunicorn(db, "load", REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")) as base:
            results: list = []
            deadline = time.time() + DURATION
            staff = [Staff(base, agents[i % len(agents)].username, leads, units, deadline, results, i)
                     for i in range(USERS)]
            started = time.time()
            for person in staff:
                person.start()
            for person in staff:
                person.join(DURATION + 60)
            elapsed = time.time() - started
        double_sold = db.session.scalar(text(
            "SELECT count(*) FROM (SELECT unit_id FROM subscription WHERE status IN "
            "('draft','confirmed','active','contracted') GROUP BY unit_id HAVING count(*) > 1) x"))
        new_subs = db.session.scalar(select(func.count()).select_from(text("subscription"))) - counts["subscriptions"]
    print(f"office at scale {SCALE}: {counts['units']:,} units, {counts['leads']:,} leads, "
          f"{counts['instalments']:,} instalments; gunicorn -w 4; {USERS} users for {DURATION:.0f} s")
    print(f"{'kind':10} {'requests':>9} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for kind in ("grid", "board", "subscribe", "all"):
        rows = [r for r in results if kind == "all" or r[0] == kind]
        if not rows:
            continue
        times = sorted(r[1] for r in rows)
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        print(f"{kind:10} {len(rows):9,} {len(rows) / elapsed:7.1f} {statistics.median(times):8.1f} "
              f"{p99:8.1f} {sum(1 for r in rows if not r[2]):7}")
    print(f"subscriptions made: {new_subs:,}; units sold twice: {double_sold}")
    everything = sorted(r[1] for r in results)
    errors = sum(1 for r in results if not r[2])
    record(f"HTTP, {USERS} users, gunicorn -w 4: p50", statistics.median(everything), None, "-")
    record(f"HTTP, {USERS} users: p99 ({errors} errors, {double_sold} sold twice)",
           everything[min(len(everything) - 1, int(len(everything) * 0.99))], None, "0 errors, 0 sold twice")
    record(f"HTTP, {USERS} users: throughput", len(results) / elapsed, None, "-", unit="req/s")


if __name__ == "__main__":
    main()
