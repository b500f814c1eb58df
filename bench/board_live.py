"""The live board (issue 24, item 4): the ordinary board before and after, and N viewers on the
stream while units change. PostgreSQL + Redis, the large office at SCALE (a project of 2,500 units).

  1. The board page of today (a checkout of REV, default the commit before the live board, served
     by its own gunicorn on the same database) vs now: bytes of the first load (raw, and gzipped as
     the proxy or the app sends them), server time per view (in-process, median), views/s with
     `wrk` (4 sync workers; CONNECTIONS connections for SECONDS each).
  2. VIEWERS viewers on /admin/board/stream, served by one gevent gunicorn worker (the production
     set-up, docs/live-board.md), from bench/sse_viewers.py in its own process (asyncio, raw
     sockets); CHANGES unit changes (sales control withholds and puts back units, through the
     domain functions, committed here) — delivery latency from the commit's start to each viewer
     (p50/p99, delivered/expected), the stream worker's RSS before the viewers, with them, after the
     changes.

    scripts/setup --bench   # installs wrk; gevent comes with requirements/app.txt
    DATABASE_URL=postgresql://… REDIS_URL=redis://127.0.0.1:6379/6 \\
        .venv/bin/python bench/board_live.py [SCALE] [SECONDS] [CONNECTIONS] [VIEWERS] [CHANGES] [REV]
"""
from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from _office import record, scratch_app

ROOT = Path(__file__).resolve().parent.parent
SCALE = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
SECONDS = int(sys.argv[2]) if len(sys.argv) > 2 else 10
CONNECTIONS = int(sys.argv[3]) if len(sys.argv) > 3 else 10
VIEWERS = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
CHANGES = int(sys.argv[5]) if len(sys.argv) > 5 else 20
REV = sys.argv[6] if len(sys.argv) > 6 else "e22dae7"  # main before the live board
AGENT = "salesdesk-bench"
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serve(db, root: Path, name: str, args: list[str], **env_extra):
    """gunicorn from `root` on the scratch database; yields (base URL, process)."""
    port = _free_port()
    url = str(db.engine.url.render_as_string(hide_password=False)).replace("postgresql+psycopg", "postgresql")
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "board-live-bench", "SALESDESK_ENV": "development",
           "SALESDESK_INSTANCE_PATH": f"/tmp/salesdesk-{name}", **env_extra}
    server = subprocess.Popen([str(ROOT / ".venv" / "bin" / "gunicorn"), *args, "-b", f"127.0.0.1:{port}",
                               "--log-level", "warning", "app:create_app()"], cwd=root, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                requests.get(base + "/login", timeout=2)
                break
            except requests.RequestException:
                time.sleep(0.2)
        yield base, server
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def sign_in(base: str) -> str:
    http = requests.Session()
    http.headers["User-Agent"] = AGENT
    page = http.get(base + "/login", timeout=10).text
    answer = http.post(base + "/login", data={"username": "admin", "password": "bench-pass-1",
                                             "csrf_token": CSRF.search(page).group(1)},
                       timeout=30, allow_redirects=False)
    assert answer.status_code == 302, answer.status_code
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies)


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(number) * UNITS[unit]


def wrk(url: str, cookie: str, *headers: str) -> dict:
    command = ["wrk", "-t", "2", "-c", str(CONNECTIONS), "-d", f"{SECONDS}s", "--latency", "--timeout", "10s",
               "-H", f"User-Agent: {AGENT}", "-H", f"Cookie: {cookie}"]
    for header in headers:
        command += ["-H", header]
    out = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.MULTILINE))
    if "50" not in latency:
        sys.exit(f"wrk measured nothing on {url}:\n{out}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": _ms(latency["50"]), "p99": _ms(latency["99"]), "bad": int(bad.group(1)) if bad else 0}


def fetched(base, cookie, path, gz=False, etag=None) -> requests.Response:
    headers = {"Cookie": cookie, "User-Agent": AGENT, "Accept-Encoding": "gzip" if gz else "identity"}
    if etag:
        headers["If-None-Match"] = etag
    return requests.get(base + path, headers=headers, timeout=60, stream=True)


def wire_bytes(response) -> int:
    return len(response.raw.read(decode_content=False))


def median_ms(fn, n=50) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def rss_kb(pid: int) -> int:
    """RSS of a gunicorn master's workers (kB)."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return sum(int(Path(f"/proc/{c}/status").read_text().split("VmRSS:")[1].split()[0]) for c in children)


def before_checkout(rev: str) -> Path:
    target = Path(tempfile.mkdtemp(prefix="board-before-"))
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    (target / ".venv").symlink_to(ROOT / ".venv")
    subprocess.run([str(ROOT / ".venv" / "bin" / "pybabel"), "compile", "-d", str(target / "translations")],
                   check=True, capture_output=True)
    return target


def main() -> None:
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: run scripts/setup --bench")
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url or not os.environ.get("DATABASE_URL"):
        sys.exit("set DATABASE_URL (PostgreSQL) and REDIS_URL")
    with scratch_app() as app:
        from big_office import build
        from models import Building, Project, Unit, User, db, live
        from models.board import board
        from models.inventory import set_withheld
        from sqlalchemy import func, select
        counts = build(db, SCALE)
        instance = f"board-live-bench-{os.getpid()}"
        app.config.update(REDIS_URL=redis_url, SALESDESK_INSTANCE=instance)
        project_id, n_units = db.session.execute(
            select(Project.id, func.count(Unit.id)).join(Building, Building.project_id == Project.id)
            .join(Unit, Unit.building_id == Building.id).group_by(Project.id).order_by(func.count(Unit.id).desc())
        ).first()
        admin = db.session.scalar(select(User).where(User.username == "admin"))
        results, figures = {}, {}

        # 1. in-process server time per view -------------------------------------------------
        figures["board() (today's core, 2 queries + rows)"] = median_ms(
            lambda: (db.session.rollback(), board(db.session, project_id)), 20)
        live.kept_state(db.session, project_id)
        figures["kept_state (cached state)"] = median_ms(lambda: live.kept_state(db.session, project_id), 200)
        figures["board_state (computed, cache miss)"] = median_ms(
            lambda: (db.session.rollback(), live.board_state(db.session, project_id)), 20)
        db.session.rollback()

        old = before_checkout(REV)
        env = {"REDIS_URL": redis_url, "SALESDESK_INSTANCE": instance}
        page = f"/admin/board/?project={project_id}"
        state = f"/admin/board/state?project={project_id}"
        with serve(db, old, "board-before", ["-w", "4"], **env) as (base, _):
            cookie = sign_in(base)
            html = fetched(base, cookie, page).content
            results["before: board page (HTML)"] = wrk(base + page, cookie)
            figures["before: first load raw KB"] = len(html) / 1024
            figures["before: first load gzipped KB"] = len(gzip.compress(html, 6)) / 1024
        shutil.rmtree(old, ignore_errors=True)
        with serve(db, ROOT, "board-after", ["-w", "4"], **env) as (base, _):
            cookie = sign_in(base)
            shell = fetched(base, cookie, page).content
            script = fetched(base, cookie, "/static/liveboard.js").content
            first = fetched(base, cookie, state, gz=True)
            etag, state_gz = first.headers["ETag"], wire_bytes(first)
            raw = len(fetched(base, cookie, state).content)
            figures["after: first load raw KB (page + liveboard.js + state)"] = (len(shell) + len(script) + raw) / 1024
            figures["after: first load gzipped KB"] = (len(gzip.compress(shell, 6)) + len(gzip.compress(script, 6))
                                                     + state_gz) / 1024
            figures["after: state alone, gzipped KB"] = state_gz / 1024
            results["after: board page (shell)"] = wrk(base + page, cookie)
            results["after: state (200, gzip)"] = wrk(base + state, cookie, "Accept-Encoding: gzip")
            results["after: state (304, ETag)"] = wrk(base + state, cookie, f"If-None-Match: {etag}")
            results["physical limit: /favicon.ico"] = wrk(base + "/favicon.ico", cookie)

        # 2. viewers on the stream -----------------------------------------------------------------
        stream_env = {**env}
        gevent_path = os.environ.get("GEVENT_PATH")  # gevent installed apart (else from the venv)
        if gevent_path:
            stream_env["PYTHONPATH"] = gevent_path
        with serve(db, ROOT, "board-stream", ["-k", "gevent", "-w", "1", "--worker-connections", str(VIEWERS + 500)],
                   **stream_env) as (base, server):
            cookie = sign_in(base)
            time.sleep(1)
            rss_idle = rss_kb(server.pid)
            out = tempfile.mktemp(suffix=".json")
            port = base.rsplit(":", 1)[1]
            listen_seconds = CHANGES * 0.25 + 5
            viewers = subprocess.Popen([sys.executable, str(ROOT / "bench" / "sse_viewers.py"), "127.0.0.1", port,
                                        f"/admin/board/stream?project={project_id}", cookie, str(VIEWERS),
                                        str(listen_seconds), out], stdout=subprocess.PIPE, text=True)
            line = viewers.stdout.readline().strip()
            rss_connected = rss_kb(server.pid)
            unit_ids = list(db.session.scalars(select(Unit.id).join(Building).where(
                Building.project_id == project_id, Unit.status == "available").limit(CHANGES)))
            started: dict[int, float] = {}
            hub = live.hub()
            for unit_id in unit_ids:
                t0 = time.time()
                set_withheld(db.session, admin, unit_id, True)
                db.session.commit()
                started[hub.version(project_id)[1]] = t0
                time.sleep(0.25)
            viewers.wait(listen_seconds + 120)
            rss_after = rss_kb(server.pid)
            data = json.load(open(out))
            os.unlink(out)
            for unit_id in unit_ids:  # the office as it was
                set_withheld(db.session, admin, unit_id, False)
                db.session.commit()
        latencies = [(t - started[int(v)]) * 1000 for v, times in data["arrivals"].items() if int(v) in started
                     for t in times]
        latencies.sort()
        expected = data["connected"] * len(started)

    print(f"office at scale {SCALE}: {counts['units']:,} units; project {project_id}: {n_units:,} units; "
          f"wrk -c {CONNECTIONS} for {SECONDS} s, gunicorn -w 4 (sync); before = {REV}")
    for name, value in figures.items():
        print(f"{name:58} {value:10.2f}")
    print(f"{'':58} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8}  bad")
    for name, r in results.items():
        print(f"{name:58} {r['rps']:10.1f} {r['p50']:8.1f} {r['p99']:8.1f}  {r['bad']}")
    print(f"viewers: {line}; {len(started)} changes, {len(latencies)} of {expected} deliveries")
    if latencies:
        p50 = latencies[len(latencies) // 2]
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(f"delivery latency commit → viewer: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms")
        record("live board: delivery to each viewer, p99", p99, None, "<= 1000 ms")
    print(f"stream worker RSS: idle {rss_idle / 1024:.1f} MB, {data['connected']} viewers {rss_connected / 1024:.1f} MB, "
          f"after the changes {rss_after / 1024:.1f} MB")
    record("ordinary board: server time per view (cached state)", figures["kept_state (cached state)"], None, "<= 10 ms")


if __name__ == "__main__":
    main()
