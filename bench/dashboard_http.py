"""The dashboard over HTTP: gunicorn with 4 workers on the large office (at SCALE), `wrk` (a load
generator in C, so the client does not eat the server's CPU) with CONNECTIONS connections for
SECONDS each, signed in as the sales manager, on GET /admin/:

  1. with no refresh job (each web worker computes the office panels when its copy is missing
     or older than a minute, while the users wait);
  2. with the refresh job's figures in Redis (what production serves);
and beside them the physical limit of the same server: GET /favicon.ico (no database, no
template). Prints requests/s and p50/p99 for each.

    scripts/setup --bench    # installs wrk
    DATABASE_URL=postgresql://… REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python bench/dashboard_http.py [SCALE] [SECONDS] [CONNECTIONS]
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import requests

from _office import gunicorn, record, scratch_app

ROOT = Path(__file__).resolve().parent.parent
SCALE = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
SECONDS = int(sys.argv[2]) if len(sys.argv) > 2 else 30
CONNECTIONS = int(sys.argv[3]) if len(sys.argv) > 3 else 10
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(number) * UNITS[unit]


AGENT = "salesdesk-bench"  # the sign-in and wrk send the same: the session is bound to it (Flask-Login "strong")


def wrk(url: str, cookie: str | None) -> dict:
    """Run wrk on `url`; its requests/s, p50 and p99 (ms), and non-2xx/3xx answers."""
    command = ["wrk", "-t", "2", "-c", str(CONNECTIONS), "-d", f"{SECONDS}s", "--latency", "--timeout", "10s",
               "-H", f"User-Agent: {AGENT}"]
    if cookie:
        command += ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.MULTILINE))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": _ms(latency["50"]), "p99": _ms(latency["99"]),
            "bad": int(bad.group(1)) if bad else 0, "socket_errors": errors.group(1) if errors else ""}


def forget_shared_panels() -> None:
    """Remove the office panels kept in Redis (the web workers' own copies live a minute)."""
    import cache
    from models import reports
    from models.base import office_today
    kept = cache.current()
    kept.redis().delete(*[kept.namespaced(reports.SHARED_PREFIX + repr((name, office_today())))
                          for name in reports.OFFICE_PANELS])


def main() -> None:
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: run scripts/setup --bench")
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        sys.exit("set REDIS_URL: the refresh job's figures are kept in Redis")
    with scratch_app() as app:
        from big_office import build
        from models import db
        counts = build(db, SCALE)
        instance = f"dashboard-bench-{os.getpid()}"  # the web workers' and this process's Redis names agree
        app.config.update(REDIS_URL=redis_url, SALESDESK_INSTANCE=instance)
        results = {}
        with gunicorn(db, "dashboard-bench", REDIS_URL=redis_url, SALESDESK_INSTANCE=instance) as base:
            http = requests.Session()
            http.headers["User-Agent"] = AGENT
            page = http.get(base + "/login", timeout=10).text
            answer = http.post(base + "/login", data={"username": "manager", "password": "bench-pass-1",
                                                     "csrf_token": CSRF.search(page).group(1)},
                               timeout=30, allow_redirects=False)
            assert answer.status_code == 302, answer.status_code
            cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
            home = requests.get(base + "/admin/", headers={"Cookie": cookie, "User-Agent": AGENT}, timeout=60,
                                allow_redirects=False)
            assert home.status_code == 200 and "dash-as-of" in home.text, home.status_code  # the dashboard, not a redirect
            forget_shared_panels()  # what the sign-in's page kept: the first run starts with nothing
            results["computed by the web workers (no refresh job)"] = wrk(base + "/admin/", cookie)
            from models import reports
            from models.base import office_today
            reports.refresh_office_panels(db.session, office_today())  # what the refresh job does
            db.session.rollback()
            results["from the refresh job's figures"] = wrk(base + "/admin/", cookie)
            results["physical limit: /favicon.ico"] = wrk(base + "/favicon.ico", None)
    print(f"office at scale {SCALE}: {counts['units']:,} units, {counts['instalments']:,} plan lines; "
          f"wrk -c {CONNECTIONS} for {SECONDS} s each, gunicorn -w 4, as the sales manager on GET /admin/")
    print(f"{'':48} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  bad")
    for name, figures in results.items():
        print(f"{name:48} {figures['rps']:8.1f} {figures['p50']:8.1f} {figures['p99']:8.1f}  "
              f"{figures['bad']} {figures['socket_errors']}")
    limit = results["physical limit: /favicon.ico"]["rps"]
    for name, target in (("computed by the web workers (no refresh job)", "p99 <= 200 ms"),
                         ("from the refresh job's figures", "p99 <= 200 ms")):
        record(f"dashboard over HTTP, {name}: p99", results[name]["p99"], None, target)
        record(f"dashboard over HTTP, {name}: req/s (peer: /favicon.ico)", results[name]["rps"], limit, "-", "req/s")


if __name__ == "__main__":
    main()
