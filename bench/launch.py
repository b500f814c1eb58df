"""Opening day under load (issue 24, "Load test"; R-LCH-2, R-LCH-3, R-SC-2): a launch of 1,000
units and 3,000 entrants on the large office (bench/big_office.py), its rows written in bulk
(INSERT … executemany, not through the screens), drawn by models.lottery and selecting as a
free-for-all (slot_size ≥ entrants). Then, on PostgreSQL + Redis, against gunicorn (4 sync
workers) and the live board's stream worker (gunicorn -k gevent, 1 worker):

1. free-for-all: 2,000 buyers choose at the same second among 500 units (4 per unit) through POST
   /admin/launch_select/choose from an asyncio keep-alive client in its own process (a kiosk
   session at sales control): units sold twice (query), 5xx, unanswered, p50/p99/max, choices/s;
2. the same with 2,000 viewers on the stream: delivery latency from the sale's answer to each
   viewer (the viewer reads the unit ids in each pushed change), the stream worker's RSS before
   and after, choices/s as a % of run 1;
3. the physical limits, in the same run: wrk on /favicon.ico of the same gunicorn, and pgbench
   with a single-row conditional UPDATE on a scratch table of the same database;
4. the draw: 10,000 entrants, timed, verified by scripts/verify_draw.py.

Prints a table with the target beside each figure (met or not). Figures, not asserts.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/7 \\
        .venv/bin/python bench/launch.py [SCALE of the large office, default 0.2] [CONNECTIONS, default 64]
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import requests

from _office import scratch_app

ROOT = Path(__file__).resolve().parent.parent
MODE = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1].startswith("--") else None
SCALE = float(sys.argv[1]) if len(sys.argv) > 1 and not MODE else 0.2
CONNECTIONS = int(sys.argv[2]) if len(sys.argv) > 2 and not MODE else 64
UNITS, ENTRANTS, BUYERS, CHOSEN_UNITS, VIEWERS, DRAW = 1000, 3000, 2000, 500, 2000, 10_000
AGENT = "salesdesk-bench"
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def resident_id(n: int) -> str:
    born = dt.date(1980, 1, 1) + dt.timedelta(days=n // 900)
    body = f"110101{born:%Y%m%d}{n % 900 + 100:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]


# --- the launch, in bulk -------------------------------------------------------------------------

def build_launch(db) -> dict:
    """A project of 4 buildings × 250 units, 3,000 leads and paid, eligible entrants (rows inserted
    in bulk), published and drawn (models.lottery), its selection started with every entrant in
    his slot (slot_size 3,000, 2 hours)."""
    from sqlalchemy import insert, select

    from models import Building, Lead, Project, Unit
    from models.base import utcnow
    from models.launches import Launch, LaunchBuilding, LaunchEntry
    from models.lottery import draw, hash_seed, new_seed, publish
    from models.payments import ensure_default_methods
    from models.selection import start_selection
    from models.users import create_user
    s = db.session
    agent = create_user(s, "launch_agent", "bench-pass-1", ["agent"], "置业顾问")
    control = create_user(s, "launch_control", "bench-pass-1", ["sales_control"], "销控")
    manager = create_user(s, "launch_manager", "bench-pass-1", ["sales_manager"], "经理")
    project = Project(code="KP24", name="开盘楼盘")
    s.add(project)
    s.flush()
    ensure_default_methods(s, project)
    buildings = [Building(project_id=project.id, name=f"{b + 1}栋", floors=25) for b in range(UNITS // 250)]
    s.add_all(buildings)
    s.flush()
    s.execute(insert(Unit), [{"building_id": buildings[u // 250].id, "floor": u % 250 // 10 + 1,
                              "position": u % 10 + 1, "number": f"{u % 250 // 10 + 1}{u % 10 + 1:02d}",
                              "layout": "三室两厅", "area": Decimal("120.00"), "list_price": Decimal("1500000.00"),
                              "status": "available"} for u in range(UNITS)])
    s.execute(insert(Lead), [{"project_id": project.id, "name": f"买家{i}", "phone": f"137{i:08d}",
                              "source": "walk_in", "owner_id": agent.id, "registered_by_id": agent.id}
                             for i in range(ENTRANTS)])
    lead_ids = list(s.scalars(select(Lead.id).where(Lead.project_id == project.id).order_by(Lead.id)))
    launch = Launch(project_id=project.id, name="首开", registration_opens_on=dt.date(2026, 11, 1),
                    registration_closes_on=dt.date(2026, 11, 20), selection_on=dt.date(2026, 11, 28),
                    intent_deposit=Decimal("50000.00"), card_valid_until=dt.date(2099, 1, 1), slot_minutes=120,
                    slot_size=ENTRANTS, groups_ordered=True, created_by_id=manager.id)
    s.add(launch)
    s.flush()
    s.add_all([LaunchBuilding(launch_id=launch.id, building_id=b.id) for b in buildings])
    s.execute(insert(LaunchEntry), [
        {"launch_id": launch.id, "number": f"K{i + 1:05d}", "lead_id": lead_id, "agent_id": agent.id,
         "name": f"买家{i}", "phone": f"137{i:08d}", "id_type": "resident_id", "id_number": resident_id(i),
         "address": "长沙市", "answers": {}, "eligible": True, "group_name": "first_home" if i % 3 else "other",
         "status": "paid", "selection_status": "waiting"} for i, lead_id in enumerate(lead_ids)])
    s.commit()
    seed = new_seed()
    publish(s, manager, launch.id, seed_hash=hash_seed(seed))
    s.commit()
    draw(s, manager, launch.id, seed)
    s.commit()
    start_selection(s, manager, launch.id, utcnow())
    s.commit()
    entries = list(s.scalars(select(LaunchEntry.id).where(LaunchEntry.launch_id == launch.id)
                             .order_by(LaunchEntry.position)))
    units = list(s.scalars(select(Unit.id).where(Unit.building_id.in_([b.id for b in buildings])).order_by(Unit.id)))
    return {"launch": launch.id, "project": project.id, "entries": entries, "units": units,
            "control": control.username, "lead": lead_ids[0], "manager": manager.id, "agent": agent.id}


# --- servers and sessions ------------------------------------------------------------------------

def _free_port() -> int:
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(db, name: str, args: list[str], env_extra: dict):
    port = _free_port()
    url = str(db.engine.url.render_as_string(hide_password=False)).replace("postgresql+psycopg", "postgresql")
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "launch-bench", "SALESDESK_ENV": "development",
           "SALESDESK_INSTANCE_PATH": f"/tmp/salesdesk-{name}", **env_extra}
    server = subprocess.Popen([str(ROOT / ".venv" / "bin" / "gunicorn"), *args, "-b", f"127.0.0.1:{port}",
                               "--log-level", "warning", "app:create_app()"], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            requests.get(base + "/login", timeout=2)
            break
        except requests.RequestException:
            time.sleep(0.2)
    return base, server


def stop(server) -> None:
    import signal
    server.send_signal(signal.SIGTERM)
    server.wait(30)


def sign_in(base: str, username: str) -> tuple[requests.Session, str, str]:
    """A signed-in session: (session, cookie header, the pages' CSRF token)."""
    http = requests.Session()
    http.headers["User-Agent"] = AGENT
    page = http.get(base + "/login", timeout=10).text
    token = (CSRF_META.search(page) or CSRF_FIELD.search(page)).group(1)
    answer = http.post(base + "/login", data={"username": username, "password": "bench-pass-1", "csrf_token": token},
                       timeout=30, allow_redirects=False)
    assert answer.status_code == 302, answer.status_code
    token = CSRF_META.search(http.get(base + "/admin/", timeout=30).text).group(1)
    return http, "; ".join(f"{c.name}={c.value}" for c in http.cookies), token


def rss_kb(pid: int) -> int:
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return sum(int(Path(f"/proc/{c}/status").read_text().split("VmRSS:")[1].split()[0]) for c in children)


# --- the load generator: its own process (python bench/launch.py --client …) ----------------------

async def _client(host, port, cookie, jobs, results):
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while jobs:
            unit, body = jobs.pop()
            request = (f"POST /admin/launch_select/choose HTTP/1.1\r\nHost: {host}:{port}\r\n"
                       f"Cookie: {cookie}\r\nUser-Agent: {AGENT}\r\nAccept: application/json\r\n"
                       f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n")
            start = time.perf_counter()
            try:
                writer.write(request.encode() + body)
                await writer.drain()
                status_line = await asyncio.wait_for(reader.readline(), 60)
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
                results.append((int(status_line.split()[1]), (time.perf_counter() - start) * 1000, unit, time.time()))
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, IndexError, ValueError):
                results.append((0, (time.perf_counter() - start) * 1000, unit, time.time()))  # unanswered
                close = True
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


async def _load(host, port, cookie, jobs, connections):
    results = []
    start = time.perf_counter()
    await asyncio.gather(*[_client(host, port, cookie, jobs, results) for _ in range(connections)])
    return results, time.perf_counter() - start


def client_main(spec_path: str, out_path: str) -> None:
    spec = json.load(open(spec_path))
    jobs = list(reversed([(u, b.encode()) for u, b in spec["jobs"]]))
    results, seconds = asyncio.run(_load(spec["host"], spec["port"], spec["cookie"], jobs, spec["connections"]))
    json.dump({"results": results, "seconds": seconds}, open(out_path, "w"))


def free_for_all(db, base, cookie, token, entries, units) -> dict:
    """len(entries) buyers choose the units (several per unit) at once, from a client process."""
    from sqlalchemy import text
    host, port = base.split("//")[1].split(":")
    jobs = [(units[i % len(units)], urlencode({"entry": e, "unit": units[i % len(units)], "csrf_token": token}))
            for i, e in enumerate(entries)]
    spec, out = tempfile.mktemp(suffix=".json"), tempfile.mktemp(suffix=".json")
    json.dump({"host": host, "port": int(port), "cookie": cookie, "jobs": jobs, "connections": CONNECTIONS},
              open(spec, "w"))
    subprocess.run([sys.executable, __file__, "--client", spec, out], check=True)
    data = json.load(open(out))
    os.unlink(spec)
    os.unlink(out)
    results = data["results"]
    codes: dict[int, int] = {}
    for status, *_ in results:
        codes[status] = codes.get(status, 0) + 1
    ms = sorted(r[1] for r in results if r[0])
    twice = db.session.execute(text(
        "SELECT count(*) FROM (SELECT unit_id FROM subscription WHERE status IN ('draft','confirmed','active',"
        "'contracted') GROUP BY unit_id HAVING count(*) > 1) t")).scalar()
    db.session.rollback()
    answered = sum(1 for r in results if r[0])
    return {"answered": answered, "asked": len(jobs), "seconds": data["seconds"], "rate": answered / data["seconds"],
            "codes": codes, "p50": ms[len(ms) // 2] if ms else 0, "p99": ms[max(int(len(ms) * 0.99) - 1, 0)] if ms else 0,
            "max": ms[-1] if ms else 0, "5xx": sum(n for c, n in codes.items() if c >= 500),
            "unanswered": len(jobs) - answered, "twice": twice,
            "won_at": {r[2]: r[3] for r in results if r[0] == 200}}


# --- the viewers: their own process (python bench/launch.py --viewers …) -------------------------

async def _viewer(host, port, path, cookie, arrivals, connected, failed, stop_event):
    cell = re.compile(rb"\[(\d+),\d+,")
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n"
                      f"User-Agent: {AGENT}\r\nCookie: {cookie}\r\n\r\n").encode())
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            failed.append(status.decode(errors="replace").strip())
            writer.close()
            return
        connected.append(1)
        while not stop_event.is_set():
            line = await reader.readline()
            if not line:
                break
            if line.startswith(b"data: ") and b'"cells"' in line:
                now = time.time()
                for unit in cell.findall(line):
                    arrivals.append((int(unit), now))
        writer.close()
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        failed.append(repr(exc))


async def _viewers(host, port, path, cookie, n, go_file, out):
    arrivals, connected, failed, stop_event = [], [], [], asyncio.Event()
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(_viewer(host, port, path, cookie, arrivals, connected, failed, stop_event)))
        if i % 100 == 99:
            await asyncio.sleep(0.2)
    for _ in range(600):
        if len(connected) + len(failed) >= n:
            break
        await asyncio.sleep(0.1)
    print(f"connected {len(connected)} failed {len(failed)}", flush=True)
    while not os.path.exists(go_file):  # the bench says when the choices are over
        await asyncio.sleep(0.2)
    await asyncio.sleep(3)  # the last deliveries
    stop_event.set()
    for task in tasks:
        task.cancel()
    first: dict[int, list[float]] = {}
    for unit, at in arrivals:
        first.setdefault(unit, []).append(at)
    json.dump({"connected": len(connected), "failed": len(failed), "failures": failed[:5],
               "arrivals": first}, open(out, "w"))


# --- the physical limits ------------------------------------------------------------------------

def wrk_bare(base: str, cookie: str) -> dict:
    out = subprocess.run(["wrk", "-t", "2", "-c", "16", "-d", "5s", "--latency", "-H", f"User-Agent: {AGENT}",
                          "-H", f"Cookie: {cookie}", base + "/favicon.ico"], capture_output=True, text=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return {"rps": float(rps.group(1)) if rps else 0.0, "raw": out}


def pgbench_update(db) -> dict:
    """pgbench -f: UPDATE one row of a scratch table WHERE id = :id AND status = 'available'."""
    from sqlalchemy import text
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_unit"))
        conn.execute(text("CREATE TABLE bench_unit (id int PRIMARY KEY, status text NOT NULL)"))
        conn.execute(text("INSERT INTO bench_unit SELECT g, 'available' FROM generate_series(1, 100000) g"))
        conn.execute(text("VACUUM ANALYZE bench_unit"))
    script = tempfile.mktemp(suffix=".sql")
    Path(script).write_text("\\set id random(1, 100000)\n"
                            "UPDATE bench_unit SET status = 'subscribed' WHERE id = :id AND status = 'available';\n")
    url = db.engine.url
    out = subprocess.run(["pgbench", "-n", "-c", "8", "-j", "2", "-T", "5", "-f", script, "-h", url.host or "127.0.0.1",
                          "-p", str(url.port or 5432), "-U", url.username or "postgres", url.database],
                         capture_output=True, text=True)
    os.unlink(script)
    tps = re.search(r"tps = ([\d.]+)", out.stdout)
    return {"tps": float(tps.group(1)) if tps else 0.0, "raw": out.stdout + out.stderr}


def the_draw(db, ids) -> dict:
    """10,000 entrants drawn (publish, then draw with its commit), verified by scripts/verify_draw.py."""
    from models import Launch, User
    from models.lottery import draw, hash_seed, new_seed, public_document, publish
    from sqlalchemy import insert

    from models import LaunchEntry
    s = db.session
    manager = s.get(User, ids["manager"])
    launch = Launch(project_id=ids["project"], name="万人摇号", registration_opens_on=dt.date(2026, 11, 1),
                    registration_closes_on=dt.date(2026, 11, 20), selection_on=dt.date(2026, 11, 28),
                    intent_deposit=Decimal("50000.00"), card_valid_until=dt.date(2099, 1, 1), groups_ordered=True,
                    created_by_id=manager.id)
    s.add(launch)
    s.flush()
    s.execute(insert(LaunchEntry), [
        {"launch_id": launch.id, "number": f"D{i:05d}", "lead_id": ids["lead"], "agent_id": ids["agent"],
         "name": "购房人", "phone": f"139{i:08d}", "id_type": "resident_id", "id_number": resident_id(i),
         "address": "", "answers": {}, "eligible": True, "group_name": "first_home" if i % 3 else "other",
         "status": "paid", "selection_status": "waiting"} for i in range(1, DRAW + 1)])
    s.commit()
    launch_id, seed = launch.id, new_seed()
    publish(s, manager, launch_id, seed_hash=hash_seed(seed))
    s.commit()
    started = time.perf_counter()
    draw(s, manager, launch_id, seed)
    s.commit()
    ms = (time.perf_counter() - started) * 1000
    doc = public_document(s, s.get(Launch, launch_id))
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as out:
        json.dump(doc, out, ensure_ascii=False)
    done = subprocess.run([sys.executable, "-I", str(ROOT / "scripts" / "verify_draw.py"), out.name],
                          capture_output=True, text=True)
    os.unlink(out.name)
    lines = done.stdout.strip().splitlines()
    return {"ms": ms, "verdict": lines[-1] if lines else done.stderr.strip()[-200:], "ok": done.returncode == 0}


# --- the run -------------------------------------------------------------------------------------

def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


def main() -> None:
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url or not os.environ.get("DATABASE_URL"):
        sys.exit("bench/launch.py needs DATABASE_URL (PostgreSQL) and REDIS_URL")
    loads = {}
    with scratch_app() as app:
        from big_office import build
        from models import db
        started = time.perf_counter()
        counts = build(db, SCALE)
        day = build_launch(db)
        setup_s = time.perf_counter() - started
        instance = f"launch-bench-{os.getpid()}"
        app.config.update(REDIS_URL=redis_url, SALESDESK_INSTANCE=instance)
        env = {"REDIS_URL": redis_url, "SALESDESK_INSTANCE": instance}
        entries, units = day["entries"], day["units"]
        base, server = serve(db, "launch-sync", ["-w", "4"], env)
        stream_base, stream = serve(db, "launch-stream", ["-k", "gevent", "-w", "1", "--worker-connections",
                                                          str(VIEWERS + 500)], env)
        try:
            http, cookie, token = sign_in(base, day["control"])
            # 1. free-for-all, no viewers: buyers 1–2,000 on units 1–500
            loads["free-for-all"] = os.getloadavg()
            ffa = free_for_all(db, base, cookie, token, entries[:BUYERS], units[:CHOSEN_UNITS])
            # 2. the same with 2,000 viewers: 2,000 still choosing (the 1,500 told "gone" and the
            #    1,000 who waited), on units 501–1,000
            from sqlalchemy import select

            from models.launches import LaunchEntry
            choosing = list(db.session.scalars(select(LaunchEntry.id).where(
                LaunchEntry.launch_id == day["launch"], LaunchEntry.selection_status == "choosing")
                .order_by(LaunchEntry.position).limit(BUYERS)))
            db.session.rollback()
            _, viewer_cookie, _ = sign_in(stream_base, day["control"])
            host, port = stream_base.split("//")[1].split(":")
            go, out = tempfile.mktemp(), tempfile.mktemp(suffix=".json")
            time.sleep(1)
            rss_idle = rss_kb(stream.pid)
            viewers = subprocess.Popen([sys.executable, __file__, "--viewers", host, port,
                                        f"/admin/board/stream?project={day['project']}", viewer_cookie, str(VIEWERS),
                                        go, out], stdout=subprocess.PIPE, text=True)
            connected_line = viewers.stdout.readline().strip()
            rss_connected = rss_kb(stream.pid)
            loads["with viewers"] = os.getloadavg()
            watched = free_for_all(db, base, cookie, token, choosing, units[CHOSEN_UNITS:])
            Path(go).touch()
            viewers.wait(300)
            rss_after = rss_kb(stream.pid)
            seen = json.load(open(out))
            os.unlink(out)
            os.unlink(go)
            latencies = [(at - watched["won_at"][int(u)]) * 1000 for u, times in seen["arrivals"].items()
                         if int(u) in watched["won_at"] for at in times]
            expected = seen["connected"] * len(watched["won_at"])
            # 3. the physical limits
            loads["limits"] = os.getloadavg()
            bare = wrk_bare(base, cookie)
        finally:
            stop(server)
            stop(stream)
        pg = pgbench_update(db)
        # 4. the draw
        loads["draw"] = os.getloadavg()
        drawn = the_draw(db, day)
        backend = db.engine.dialect.name
        del app

    def load(name):
        return "/".join(f"{x:.1f}" for x in loads[name])

    rows = [
        ("free-for-all: choices/s (answered: won or gone)", f"{ffa['rate']:.0f}", ">= 500", ffa["rate"] >= 500),
        ("free-for-all: all answered within (s)", f"{ffa['seconds']:.2f}", "<= 5", ffa["seconds"] <= 5),
        ("free-for-all: p50 / p99 / max answer (ms)", f"{ffa['p50']:.0f} / {ffa['p99']:.0f} / {ffa['max']:.0f}",
         "-", None),
        ("free-for-all: units sold twice", str(ffa["twice"]), "0", ffa["twice"] == 0),
        ("free-for-all: 5xx / unanswered", f"{ffa['5xx']} / {ffa['unanswered']}", "0 / 0",
         ffa["5xx"] == 0 and ffa["unanswered"] == 0),
        (f"with {VIEWERS} viewers: choices/s", f"{watched['rate']:.0f}", ">= 80 % of run 1",
         watched["rate"] >= 0.8 * ffa["rate"]),
        ("with viewers: % of the rate without", f"{100 * watched['rate'] / ffa['rate']:.0f} %", ">= 80 %",
         watched["rate"] >= 0.8 * ffa["rate"]),
        ("with viewers: all answered within (s)", f"{watched['seconds']:.2f}", "<= 5", watched["seconds"] <= 5),
        ("with viewers: p50 / p99 / max answer (ms)",
         f"{watched['p50']:.0f} / {watched['p99']:.0f} / {watched['max']:.0f}", "-", None),
        ("with viewers: sold twice / 5xx / unanswered",
         f"{watched['twice']} / {watched['5xx']} / {watched['unanswered']}", "0 / 0 / 0",
         watched["twice"] == 0 and watched["5xx"] == 0 and watched["unanswered"] == 0),
        ("delivery answer → viewer: p50 / p99 (ms)", f"{_pct(latencies, 0.5):.0f} / {_pct(latencies, 0.99):.0f}",
         "p99 <= 1000", bool(latencies) and _pct(latencies, 0.99) <= 1000),
        ("deliveries (of viewers × sales)", f"{len(latencies)} of {expected}", "all", len(latencies) >= expected),
        ("stream worker RSS idle / connected / after (MB)",
         f"{rss_idle / 1024:.0f} / {rss_connected / 1024:.0f} / {rss_after / 1024:.0f}", "flat",
         rss_after <= rss_connected * 1.1),
        ("limit: bare route (wrk /favicon.ico, same gunicorn) req/s", f"{bare['rps']:.0f}", "-", None),
        ("limit: pgbench single-row conditional UPDATE tps", f"{pg['tps']:.0f}", "-", None),
        (f"draw: {DRAW:,} entrants (ms)", f"{drawn['ms']:.0f}", "< 1000", drawn["ms"] < 1000),
        ("draw verified by scripts/verify_draw.py", drawn["verdict"][:40], "ok", drawn["ok"]),
    ]
    print(f"opening day on {backend}, {os.cpu_count()} cores; large office at scale {SCALE} "
          f"({counts['units']:,} units) + a launch of {UNITS:,} units, {ENTRANTS:,} entrants (set up in {setup_s:.0f} s); "
          f"gunicorn -w 4 sync + 1 gevent stream worker; client: asyncio, own process, {CONNECTIONS} connections")
    print("load average (1/5/15 min) at: " + "; ".join(f"{k} {load(k)}" for k in loads))
    print(f"status codes: free-for-all {ffa['codes']}; with viewers {watched['codes']}; viewers: {connected_line}")
    print(f"{'measure':62} {'figure':>22}  {'target':18} met")
    for measure, figure, target, met in rows:
        print(f"{measure:62} {figure:>22}  {target:18} {'-' if met is None else 'yes' if met else 'NO'}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        client_main(sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "--viewers":
        _, _, host, port, path, cookie, n, go_file, out = sys.argv
        asyncio.run(_viewers(host, int(port), path, cookie, int(n), go_file, out))
    else:
        main()
