"""The opening day's choices under load (R-LCH-3, R-SC-2): N buyers in their slot choose among M
units at the same moment (several per unit) through POST /admin/launch_select/choose on a real
gunicorn (4 workers) on PostgreSQL; prints choices/s (answered: won or told "gone"), wins, p50/p99,
server errors and units sold twice (must be 0). Then, in-process, where a winning choice's time
goes (cProfile of the domain function, top entries).

The load generator is a small asyncio HTTP/1.1 client on keep-alive connections in this process
(far cheaper per request than `requests`), so most of the 2 cores go to the server.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/selection.py [N] [M] [CONNECTIONS]
"""
from __future__ import annotations

import asyncio
import cProfile
import datetime as dt
import io
import os
import pstats
import re
import statistics
import sys
import time
from decimal import Decimal
from urllib.parse import urlencode, urlsplit

import requests
from sqlalchemy import select

from _office import gunicorn, scratch_app

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
M = int(sys.argv[2]) if len(sys.argv) > 2 else 500
CONNECTIONS = int(sys.argv[3]) if len(sys.argv) > 3 else 64
PROFILED = 200  # winning choices profiled in-process
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def resident_id(n: int) -> str:
    born = dt.date(1980, 1, 1) + dt.timedelta(days=n // 900)
    body = f"110101{born:%Y%m%d}{n % 900 + 100:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]


def build_day(db, n_entries: int, n_units: int, code: str):
    """A project, one building of `n_units` units, a drawn launch with `n_entries` paid, eligible
    buyers (one agent), started at the present moment with every buyer choosing (a slot of all)."""
    from models import Building, Lead, Project, Unit
    from models.base import utcnow
    from models.launches import Launch, LaunchBuilding, LaunchEntry
    from models.payments import ensure_default_methods
    from models.selection import start_selection
    from models.users import create_user
    s = db.session
    agent = create_user(s, f"agent_{code}", "bench-pass-1", ["agent"], "置业顾问")
    control = create_user(s, f"control_{code}", "bench-pass-1", ["sales_control"], "销控")
    manager = create_user(s, f"manager_{code}", "bench-pass-1", ["sales_manager"], "经理")
    project = Project(code=code, name=f"开盘{code}")
    s.add(project)
    s.flush()
    ensure_default_methods(s, project)
    floors = max(n_units // 4, 1)
    building = Building(project_id=project.id, name="1栋", floors=floors)
    s.add(building)
    s.flush()
    s.add_all([Unit(building_id=building.id, floor=1 + i // 4, position=1 + i % 4, number=f"{1 + i // 4}{1 + i % 4:02d}",
                    layout="三室两厅", area=Decimal("120.00"), list_price=Decimal("1500000.00")) for i in range(n_units)])
    launch = Launch(project_id=project.id, name="首开", status="drawn", registration_opens_on=dt.date(2026, 11, 1),
                    registration_closes_on=dt.date(2026, 11, 2), selection_on=dt.date(2026, 11, 2),
                    intent_deposit=Decimal("50000.00"), card_valid_until=dt.date(2099, 1, 1), slot_minutes=120,
                    slot_size=n_entries, created_by_id=manager.id, seed_hash="0" * 64, seed="1" * 64)
    s.add(launch)
    s.flush()
    s.add(LaunchBuilding(launch_id=launch.id, building_id=building.id))
    leads = [Lead(project_id=project.id, name=f"买家{i}", phone=f"139{i:08d}", source="walk_in", owner_id=agent.id,
                  registered_by_id=agent.id) for i in range(n_entries)]
    s.add_all(leads)
    s.flush()
    s.add_all([LaunchEntry(launch_id=launch.id, number=f"K{i + 1:05d}", lead_id=lead.id, agent_id=agent.id,
                           name=lead.name, phone=lead.phone, id_type="resident_id", id_number=resident_id(i),
                           address="长沙市", eligible=True, status="paid", position=i + 1)
               for i, lead in enumerate(leads)])
    s.commit()
    start_selection(s, manager, launch.id, utcnow())
    s.commit()
    entries = list(s.scalars(select(LaunchEntry.id).where(LaunchEntry.launch_id == launch.id).order_by(LaunchEntry.id)))
    units = list(s.scalars(select(Unit.id).where(Unit.building_id == building.id).order_by(Unit.id)))
    return {"launch": launch.id, "entries": entries, "units": units, "control": control.username,
            "control_id": control.id}


async def _client(host, port, cookie, agent, jobs, results):
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while jobs:
            body = jobs.pop()
            request = (f"POST /admin/launch_select/choose HTTP/1.1\r\nHost: {host}:{port}\r\n"
                       f"Cookie: {cookie}\r\nUser-Agent: {agent}\r\nAccept: application/json\r\n"
                       f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n")
            start = time.perf_counter()
            writer.write(request.encode() + body)
            await writer.drain()
            status_line = await reader.readline()
            length, close = 0, False
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value.strip())
                elif name.lower() == "connection" and value.strip().lower() == "close":
                    close = True
            await reader.readexactly(length)
            results.append((int(status_line.split()[1]), (time.perf_counter() - start) * 1000))
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


async def _load(base, cookie, agent, bodies):
    parts = urlsplit(base)
    jobs, results = list(reversed(bodies)), []
    start = time.perf_counter()
    await asyncio.gather(*[_client(parts.hostname, parts.port, cookie, agent, jobs, results) for _ in range(CONNECTIONS)])
    return results, time.perf_counter() - start


def http_round(db, base, code, n, m):
    day = build_day(db, n, m, code)
    http = requests.Session()
    page = http.get(base + "/login", timeout=30).text
    http.post(base + "/login", data={"username": day["control"], "password": "bench-pass-1",
                                     "csrf_token": CSRF.search(page).group(1)}, timeout=30)
    token = CSRF.search(http.get(base + "/admin/", timeout=30).text).group(1)
    cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
    probe = http.post(base + "/admin/launch_select/choose", data={"entry": 0, "unit": 0, "csrf_token": token},
                      headers={"Accept": "application/json"}, allow_redirects=False, timeout=30)
    if probe.status_code != 403:  # a refusal as JSON: signed in, the token good
        sys.exit(f"the choice endpoint answers {probe.status_code} {probe.headers.get('Location')}: not signed in?")
    bodies = [urlencode({"entry": e, "unit": day["units"][i % m], "csrf_token": token}).encode()
              for i, e in enumerate(day["entries"])]
    results, seconds = asyncio.run(_load(base, cookie, http.headers["User-Agent"], bodies))
    codes: dict[int, int] = {}
    for status, _ in results:
        codes[status] = codes.get(status, 0) + 1
    ms = sorted(t for _, t in results)
    from sqlalchemy import text
    twice = db.session.execute(text(
        "SELECT count(*) FROM (SELECT unit_id FROM subscription WHERE status IN ('draft','confirmed','active',"
        "'contracted') GROUP BY unit_id HAVING count(*) > 1) t")).scalar()
    won = db.session.execute(text("SELECT count(*) FROM launch_entry WHERE launch_id = :l AND "
                                  "selection_status = 'chosen'"), {"l": day["launch"]}).scalar()
    db.session.rollback()
    return {"answered": len(results), "seconds": seconds, "rate": len(results) / seconds, "codes": codes,
            "p50": statistics.median(ms), "p99": ms[int(len(ms) * 0.99) - 1], "max": ms[-1],
            "won": won, "twice": twice}


def profile_in_process(db):
    """Where a winning choice's time goes: PROFILED choices, each its own unit, in this process."""
    from models import User
    from models.base import utcnow
    from models.selection import choose
    day = build_day(db, PROFILED, PROFILED, "PF")
    control = db.session.get(User, day["control_id"])
    half = PROFILED // 2
    pairs = list(zip(day["entries"], day["units"]))
    start = time.perf_counter()
    for entry, unit in pairs[:half]:  # timed, without the profiler
        choose(db.session, control, entry, unit, utcnow())
        db.session.commit()
    seconds = time.perf_counter() - start
    profile = cProfile.Profile()
    profile.enable()
    for entry, unit in pairs[half:]:
        choose(db.session, control, entry, unit, utcnow())
        db.session.commit()
    profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(28)
    return seconds / half * 1000, out.getvalue()


def bare_route(base):
    """The same server's /login page, sequentially, as the floor of one request's cost."""
    http = requests.Session()
    start = time.perf_counter()
    for _ in range(200):
        http.get(base + "/login", timeout=30)
    return (time.perf_counter() - start) / 200 * 1000


def main():
    if not os.environ.get("DATABASE_URL"):
        sys.exit("bench/selection.py needs DATABASE_URL (PostgreSQL)")
    with scratch_app() as app:
        from models import db
        per_choice_ms, profile = profile_in_process(db)
        with gunicorn(db, "selection-bench") as base:
            login_ms = bare_route(base)
            figures = http_round(db, base, "HB", N, M)
        print(f"selection bench: {N} buyers choosing {M} units at once, {CONNECTIONS} connections, "
              f"gunicorn 4 workers, PostgreSQL, {os.cpu_count()} cores")
        print(f"  answered        {figures['answered']} in {figures['seconds']:.2f} s "
              f"= {figures['rate']:.0f} choices/s (won or told 'gone')")
        print(f"  status codes    {figures['codes']}")
        print(f"  won             {figures['won']} (units: {M}); units sold twice: {figures['twice']}")
        print(f"  latency         p50 {figures['p50']:.0f} ms, p99 {figures['p99']:.0f} ms, max {figures['max']:.0f} ms")
        print(f"  sign-in page    {login_ms:.1f} ms sequential (the floor of one request here)")
        print(f"  in-process      {per_choice_ms:.1f} ms per winning choice (domain + commit, one session)")
        print(profile)
        del app


if __name__ == "__main__":
    main()
