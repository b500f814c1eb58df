"""Grid page cost: our base view's COUNT (func.count()) against Flask-Admin's stock count('*').

Flask-Admin's stock `get_count_query` sends '*' as a bound parameter: count(?) with '*',
which SQLite evaluates row by row. Prints the median time of each and the ratio.

    .venv/bin/python bench/grid_count.py [ROWS]          # SQLite in a temp dir
    DATABASE_URL=postgresql://… .venv/bin/python bench/grid_count.py [ROWS]   # a scratch database
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_admin.contrib.sqla import ModelView  # noqa: E402
from sqlalchemy import create_engine, insert, text  # noqa: E402

from app import create_app  # noqa: E402
from flask_login import login_user  # noqa: E402

from models import Lead, Project, Role, User, db  # noqa: E402

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
REPEAT = 15


def _median_ms(fn) -> float:
    fn()  # warm
    samples = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    from flask_migrate import upgrade

    base = os.environ.get("DATABASE_URL")
    scratch = None
    if base:
        from config import database_uri
        scratch = f"bench_{uuid.uuid4().hex[:8]}"
        admin_engine = create_engine(database_uri(base), isolation_level="AUTOCOMMIT")
        with admin_engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{scratch}"'))
        url = base.rsplit("/", 1)[0] + "/" + scratch
    else:
        url = f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "REDIS_URL": None})
    try:
        with app.app_context():
            upgrade()
            project = Project(code="B1", name="基准楼盘")
            user = User(username="bench", display_name="bench", password_hash="x",
                        roles=[db.session.get(Role, 1)])  # admin: sees every row
            db.session.add_all([project, user])
            db.session.commit()
            batch = 20_000
            for start in range(0, ROWS, batch):
                db.session.execute(insert(Lead), [
                    {"project_id": project.id, "name": f"客户{i}", "phone": f"1{i:010d}",
                     "source": "web", "registered_by_id": user.id, "owner_id": user.id}
                    for i in range(start, min(start + batch, ROWS))])
            db.session.commit()

            from admin.views import LeadView
            ours = LeadView(Lead, db, endpoint="bench_ours", url="/bench-ours")
            stock = ModelView(Lead, db, endpoint="bench_stock", url="/bench-stock")
            with app.test_request_context():
                login_user(user)
                ours_ms = _median_ms(lambda: ours.get_count_query().scalar())
                stock_ms = _median_ms(lambda: stock.get_count_query().scalar())
            backend = db.engine.dialect.name
    finally:
        if scratch:
            with admin_engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
    print(f"{'measure':40} {'ours ms':>9} {'stock ms':>9} {'ratio':>6}")
    print(f"{f'lead grid COUNT, {ROWS:,} rows, {backend}':40} {ours_ms:9.2f} {stock_ms:9.2f} "
          f"{stock_ms / ours_ms:6.1f}")


if __name__ == "__main__":
    main()
