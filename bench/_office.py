"""Shared helpers of the benchmarks: a scratch database, timing, the table of figures."""
from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text  # noqa: E402


@contextlib.contextmanager
def scratch_app():
    """An app on a fresh, migrated database: PostgreSQL when DATABASE_URL is set, else SQLite."""
    from flask_migrate import upgrade

    from app import create_app
    from config import database_uri

    base = os.environ.get("DATABASE_URL")
    name = None
    if base:
        name = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(database_uri(base), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = base.rsplit("/", 1)[0] + "/" + name
    else:
        url = f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "REDIS_URL": None,
                      "PASSWORD_HASH_METHOD": "scrypt:1024:8:1", "WTF_CSRF_ENABLED": False,
                      "RUN_DAILY_JOBS": False})  # no ladder run on the first request
    try:
        with app.app_context():
            import logging
            logging.getLogger("alembic").setLevel(logging.WARNING)
            upgrade()
            yield app
    finally:
        if name:
            from models import db
            with app.app_context():
                db.engine.dispose()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def project_with_building(db, code: str, name: str, floors: int = 100) -> tuple[int, int]:
    """A project with one building "1栋", committed: their ids as plain ints (reading an expired
    attribute during a COPY would query the busy connection)."""
    from models import Building, Project
    project = Project(code=code, name=name)
    db.session.add(project)
    db.session.flush()
    building = Building(project_id=project.id, name="1栋", floors=floors)
    db.session.add(building)
    db.session.commit()
    return project.id, building.id


@contextlib.contextmanager
def gunicorn(db, name: str, **env_extra):
    """gunicorn with 4 workers on the scratch database `db` is on, on a free loopback port, ready
    (its sign-in page answers); yields its base URL and stops it after."""
    import signal
    import socket
    import subprocess

    import requests
    root = Path(__file__).resolve().parent.parent
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = str(db.engine.url.render_as_string(hide_password=False)).replace("postgresql+psycopg", "postgresql")
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": name, "SALESDESK_ENV": "development",
           "SALESDESK_INSTANCE_PATH": f"/tmp/salesdesk-{name}", **env_extra}
    server = subprocess.Popen([str(root / ".venv" / "bin" / "gunicorn"), "-w", "4", "-b", f"127.0.0.1:{port}",
                               "--log-level", "warning", "app:create_app()"], cwd=root, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                requests.get(base + "/login", timeout=2)
                break
            except requests.RequestException:
                time.sleep(0.2)
        yield base
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def copy_rows(conn, table, columns, rows):
    """COPY `rows` (an iterable of tuples) into `table` through a psycopg connection."""
    with conn.cursor() as cur, cur.copy(f'COPY "{table}" ({", ".join(columns)}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)


def after_copy(db, tables) -> None:
    """After COPY with explicit ids: move each table's id sequence past them; then VACUUM ANALYZE,
    what autovacuum does to freshly inserted tables soon after: statistics, and the visibility
    map that lets a deep page's ids come from the index alone (page 1,000 of the plan lines:
    22 ms → 3 ms)."""
    for table in tables:
        db.session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                f"(SELECT max(id) FROM {table}))"))
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        db.session.execute(text("ANALYZE"))
        db.session.commit()


def median_ms(fn, repeat: int = 20) -> float:
    fn()  # warm
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def once_ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def record(measure: str, ours: float, peer: float | None = None, target: str = "", unit: str = "ms") -> None:
    """Add a row to the combined table of `bench/all.py` (the file named by BENCH_TABLE), if any.
    `unit` is ms or s (less is better) or a rate such as docs/s (more is better)."""
    path = os.environ.get("BENCH_TABLE")
    if path:
        import json
        with open(path, "a") as out:
            out.write(json.dumps({"measure": measure, "ours": ours, "peer": peer, "target": target,
                                  "unit": unit}, ensure_ascii=False) + "\n")


def print_table(rows) -> None:
    """rows: (measure, ours_ms, peer_ms or None, target text)."""
    for measure, ours, peer, target in rows:
        record(measure, ours, peer, target)
    print(f"{'measure':58} {'ours':>10} {'peer':>10} {'ratio':>6}  target")
    for measure, ours, peer, target in rows:
        ratio = f"{peer / ours:6.1f}" if peer else "     -"
        peer_text = f"{peer:10.1f}" if peer else "         -"
        print(f"{measure:58} {ours:10.1f} {peer_text} {ratio}  {target}")
