"""Grid pages on the large office (bench/big_office.py), ours against a stock Flask-Admin
ModelView over the same table, measured server-side (the whole request: query, count, page).

    DATABASE_URL=postgresql://… .venv/bin/python bench/grids.py [SCALE]
"""
from __future__ import annotations

import sys
import time
from statistics import median

from _office import median_ms, print_table, scratch_app

SCALE = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0

# (measure, our path, the stock view's path, target)
PAGES = [
    ("leads, first page", "/admin/lead/", "/stock/lead/", "<= 15 ms, >= 3x"),
    ("leads, page 1,000", "/admin/lead/?page=999", "/stock/lead/?page=999", "<= 15 ms, >= 3x"),
    ("leads, sorted by name, page 1,000", "/admin/lead/?sort=1&page=999", "/stock/lead/?sort=1&page=999", "<= 15 ms, >= 3x"),
    ("units, first page", "/admin/unit/", "/stock/unit/", "<= 15 ms, >= 3x"),
    ("units, page 1,000", "/admin/unit/?page=999", "/stock/unit/?page=999", "<= 15 ms, >= 3x"),
    ("instalments, first page", "/admin/instalment/", "/stock/instalment/", "<= 15 ms, >= 3x"),
    ("instalments, page 1,000", "/admin/instalment/?page=999", "/stock/instalment/?page=999", "<= 15 ms, >= 3x"),
    ("payments, first page", "/admin/payment/", "/stock/payment/", "<= 15 ms, >= 3x"),
    ("payments, page 1,000", "/admin/payment/?page=999", "/stock/payment/?page=999", "<= 15 ms, >= 3x"),
    ("leads, search by phone", "/admin/lead/?search=13000012345", "/stock/lead/?search=13000012345", "<= 10 ms"),
    ("leads, search by name", "/admin/lead/?search=王伟", "/stock/lead/?search=王伟", "<= 50 ms"),
]


def sql_ms(client, path) -> float:
    """The time the page's queries took in the database driver, in ms."""
    from sqlalchemy import event

    from models import db
    spent, started = [0.0], {}

    def before(conn, *args):
        started[id(conn)] = time.perf_counter()

    def after(conn, *args):
        spent[0] += time.perf_counter() - started.pop(id(conn))
    event.listen(db.engine, "before_cursor_execute", before)
    event.listen(db.engine, "after_cursor_execute", after)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", before)
        event.remove(db.engine, "after_cursor_execute", after)
    return spent[0] * 1000


def main() -> None:
    with scratch_app() as app:
        from flask_admin.contrib.sqla import ModelView

        from big_office import build
        from models import Instalment, Lead, Payment, Unit, db

        counts = build(db, SCALE)
        admin = app.extensions["admin"][0]
        for model, searchable in ((Lead, ("name", "phone")), (Unit, ("number",)), (Instalment, ()), (Payment, ("receipt_no",))):
            stock = type(f"Stock{model.__name__}", (ModelView,), {"column_searchable_list": searchable,
                                                                   "page_size": 30})
            admin.add_view(stock(model, db, endpoint=f"stock_{model.__tablename__}",
                                 url=f"/stock/{model.__tablename__}"))
        client = app.test_client()
        assert client.post("/login", data={"username": "manager", "password": "bench-pass-1"}).status_code == 302
        rows = []
        for measure, ours, peer, target in PAGES:
            for path in (ours, peer):
                response = client.get(path)
                assert response.status_code == 200, (path, response.status_code)
            rows.append((measure, median_ms(lambda: client.get(ours), repeat=9),
                         median_ms(lambda: client.get(peer), repeat=5), target))
            if "search" in measure:  # the database's part of the same page: its queries alone
                rows.append((f"{measure}: its queries", median(sql_ms(client, ours) for _ in range(9)),
                             median(sql_ms(client, peer) for _ in range(5)), "-"))
        # Money owed now (models.deals.overdue_on): the plan grid's overdue filter, which reads
        # each line's deal since issue 17 (dead deals' lines are owed by nobody).
        view = next(v for v in admin._views if getattr(v, "endpoint", "") == "instalment")
        index = next(i for i, flt in enumerate(view._filters) if type(flt).__name__ == "OverdueFilter")
        overdue = f"/admin/instalment/?flt0_{index}=1"
        assert client.get(overdue).status_code == 200
        rows.append(("instalments overdue now, first page", median_ms(lambda: client.get(overdue), repeat=9),
                     None, "-"))
        rows.append(("instalments overdue now: its queries", median(sql_ms(client, overdue) for _ in range(9)),
                     None, "-"))
        board = "/admin/board/?project=1"
        rows.append((f"board of a project ({counts['units'] // 20:,} units)", median_ms(lambda: client.get(board), repeat=9),
                     None, "<= 100 ms (5,000 units)"))
        rows.append(("manager's dashboard", median_ms(lambda: client.get("/admin/"), repeat=9), None, "<= 200 ms"))
    print(", ".join(f"{k} {v:,.0f}" for k, v in counts.items()))
    print_table(rows)


if __name__ == "__main__":
    main()
