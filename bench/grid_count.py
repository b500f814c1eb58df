"""Grid page cost: our base view's COUNT (func.count()) against Flask-Admin's stock count('*').

Flask-Admin's stock `get_count_query` sends '*' as a bound parameter: count(?) with '*',
which SQLite evaluates row by row. Prints the median time of each and the ratio.

    .venv/bin/python bench/grid_count.py [ROWS]          # SQLite in a temp dir
    DATABASE_URL=postgresql://… .venv/bin/python bench/grid_count.py [ROWS]   # a scratch database
"""
from __future__ import annotations

import sys

from _office import median_ms, print_table, scratch_app

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000


def main() -> None:
    with scratch_app() as app:
        from flask_admin.contrib.sqla import ModelView
        from flask_login import login_user
        from sqlalchemy import insert

        from admin.leads import LeadView
        from models import Lead, Project, Role, User, db

        project = Project(code="B1", name="基准楼盘")
        user = User(username="bench", display_name="bench", password_hash="x",
                    roles=[db.session.get(Role, 1)])  # admin: sees every row
        db.session.add_all([project, user])
        db.session.commit()
        for start in range(0, ROWS, 20_000):
            db.session.execute(insert(Lead), [
                {"project_id": project.id, "name": f"客户{i}", "phone": f"1{i:010d}",
                 "source": "web", "registered_by_id": user.id, "owner_id": user.id}
                for i in range(start, min(start + 20_000, ROWS))])
        db.session.commit()
        ours = LeadView(Lead, db, endpoint="bench_ours", url="/bench-ours")
        stock = ModelView(Lead, db, endpoint="bench_stock", url="/bench-stock")
        with app.test_request_context():
            login_user(user)
            ours_ms = median_ms(lambda: ours.get_count_query().scalar())
            stock_ms = median_ms(lambda: stock.get_count_query().scalar())
        backend = db.engine.dialect.name
    print_table([(f"lead grid COUNT, {ROWS:,} rows, {backend} (stock ModelView as peer)",
                  ours_ms, stock_ms, "-")])


if __name__ == "__main__":
    main()
