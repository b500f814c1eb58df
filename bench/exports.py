"""Finance exports and dashboards at scale (issue 8): 1,000,000 payments and 1,000,000 instalments.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/exports.py [PAYMENTS]

Each export runs in a fresh child process that writes the whole list to a file and reports its
wall time and its peak resident memory (ru_maxrss, the process's own, imports included). The peer
is Flask-Admin's stock export (a plain ModelView over the same table, export_max_rows=100,000,
CSV streamed, XLSX through tablib) on 100,000 rows, in the same run and the same way; its rate is
also scaled to 1,000,000 for the ratio. The dashboards are the home page of each role, served
through the test client (view, queries, template), server-side medians: "cold" computes the
figures anew in the request; "from the job" (with REDIS_URL) is a worker that has nothing in its
own memory and reads the office figures the refresh job (jobs/dashboards.py, every minute) kept
in Redis — how the manager's and finance's pages are served; "kept" serves them from the
process's minute. PostgreSQL only (COPY).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from _office import after_copy, copy_rows as _copy, median_ms, project_with_building, record, scratch_app

PAYMENTS = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else \
    int(os.environ.get("BENCH_PAYMENTS", 1_000_000))  # a child process gets the parent's size
PER_SUB = 10
PEER_ROWS = 100_000
TODAY = dt.date(2026, 11, 26)


def _fill(db):
    from sqlalchemy import text

    from models.users import create_user
    agents = [create_user(db.session, f"agent{i}", "bench-pass-1", ["agent"], f"顾问{i}") for i in range(20)]
    create_user(db.session, "finance", "bench-pass-1", ["finance"], "财务")
    for role in ("sales_manager", "lawyer"):
        create_user(db.session, role, "bench-pass-1", [role])
    project_id, building_id = project_with_building(db, "X", "湘江壹号")
    agent_ids = [a.id for a in agents]
    finance_id = db.session.execute(text("SELECT id FROM \"user\" WHERE username = 'finance'")).scalar()
    subs = PAYMENTS // PER_SUB
    conn = db.session.connection().connection.driver_connection
    now = dt.datetime(2026, 11, 1)
    _copy(conn, "unit", ["id", "building_id", "floor", "position", "number", "layout", "area", "list_price", "status"],
          ((i, building_id, 1 + i // 1000, i % 1000, f"U{i}", "两室", 90, 1_000_000, "subscribed")
           for i in range(1, subs + 1)))
    _copy(conn, "lead", ["id", "project_id", "name", "phone", "source", "stage", "owner_id", "registered_by_id",
                         "registered_at", "last_activity_at", "needs", "notes", "wanted_layout", "wanted_area"],
          ((i, project_id, f"客户{i}", f"1{i:010d}", "web", "subscribed", agent_ids[i % 20], agent_ids[i % 20],
            now, now, "", "", "", "") for i in range(1, subs + 1)))
    _copy(conn, "subscription", ["id", "number", "project_id", "lead_id", "unit_id", "agent_id", "price", "deposit",
                                 "payment_method", "status", "subscribed_on", "created_at", "customer_name",
                                 "customer_id_number", "customer_address", "price_reason"],
          ((i, f"RG{i}", project_id, i, i, agent_ids[i % 20], 1_000_000, 100_000, "instalments", "active",
            TODAY - dt.timedelta(days=400 - i % 300), now, f"客户{i}", "", "", "") for i in range(1, subs + 1)))

    def instalments():
        n = 0
        for sub in range(1, subs + 1):
            for seq in range(1, PER_SUB + 1):
                n += 1
                due = TODAY + dt.timedelta(days=(seq - 6) * 30 + sub % 30)
                paid = 100_000 if seq <= 4 or (seq == 5 and sub % 3) else 0
                yield (n, sub, seq, "instalment", due, 100_000, paid, "paid" if paid else "pending", "")
    _copy(conn, "instalment", ["id", "subscription_id", "seq", "kind", "due_on", "amount_due", "amount_paid",
                               "status", "agent_note"], instalments())
    channels = ("bank_transfer", "pos", "cash", "cheque", "loan_disbursement")

    def payments():
        n = 0
        for sub in range(1, subs + 1):
            for k in range(PER_SUB):
                n += 1
                yield (n, project_id, sub, (sub - 1) * PER_SUB + 1 + k % 4, 25_000 + k, TODAY - dt.timedelta(days=(n % 700)),
                       channels[n % 5], f"B{n}", f"SJ{n:08d}", None, "", finance_id, now)
    _copy(conn, "payment", ["id", "project_id", "subscription_id", "instalment_id", "amount", "paid_on", "channel",
                            "bank_ref", "receipt_no", "reverses_id", "reason", "recorded_by_id", "recorded_at"],
          payments())
    db.session.commit()
    after_copy(db, ("unit", "lead", "subscription", "instalment", "payment"))


def child(mode: str, url: str) -> None:
    """One export in this process; prints JSON with seconds, rows, bytes and peak memory."""
    from app import create_app
    from models import User, db
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "REDIS_URL": None,
                      "WTF_CSRF_ENABLED": False, "RUN_DAILY_JOBS": False})
    out = tempfile.NamedTemporaryFile(delete=False)
    with app.app_context():
        from sqlalchemy import select
        finance = db.session.scalar(select(User).where(User.username == "finance"))
        start = time.perf_counter()
        if mode in ("csv", "xlsx"):
            from models.exports import write_export
            rows = write_export(db.session, "payments", mode, {}, finance, out, today=TODAY)
        else:  # the stock Flask-Admin export of the same table
            from flask_admin import Admin
            from flask_admin.contrib.sqla import ModelView

            from models import Payment

            class Stock(ModelView):
                can_export = True
                export_max_rows = PEER_ROWS
                export_types = ["csv", "xlsx"]
            admin = Admin(name="stock", url="/stock", endpoint="stock")
            admin.add_view(Stock(Payment, db.session, endpoint="stock_payment"))
            admin.init_app(app)
            with app.test_client() as client:
                response = client.get(f"/stock/stock_payment/export/{mode.split('-')[1]}/")
                for piece in response.response:
                    out.write(piece if isinstance(piece, bytes) else piece.encode())
            rows = min(PEER_ROWS, PAYMENTS)
        seconds = time.perf_counter() - start
    out.close()
    size = os.path.getsize(out.name)
    os.unlink(out.name)
    print(json.dumps({"seconds": seconds, "rows": rows, "bytes": size,
                      "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def _run_child(mode: str, url: str) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", mode, url], capture_output=True, text=True,
                            timeout=1800, env={**os.environ, "BENCH_PAYMENTS": str(PAYMENTS)})
    if result.returncode:
        raise SystemExit(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    with scratch_app() as app:
        from models import db
        start = time.perf_counter()
        _fill(db)
        print(f"{PAYMENTS:,} payments and {PAYMENTS:,} instalments filled in {time.perf_counter() - start:.0f} s")
        url = app.config["SQLALCHEMY_DATABASE_URI"]
        db.session.remove()
        ours = {fmt: _run_child(fmt, url) for fmt in ("csv", "xlsx")}
        peer = {fmt: _run_child(f"stock-{fmt}", url) for fmt in ("csv", "xlsx")}
        print(f"\n{'export':44} {'rows':>10} {'seconds':>8} {'rows/s':>9} {'MiB peak':>9} {'MB file':>8}  target")
        targets = {"csv": "≤ 15 s, ≤ 200 MiB", "xlsx": "≤ 90 s, ≤ 200 MiB"}
        for fmt in ("csv", "xlsx"):
            for name, r, target in ((f"ours, {fmt.upper()}", ours[fmt], targets[fmt]),
                                    (f"stock Flask-Admin, {fmt.upper()}", peer[fmt], "-")):
                print(f"{name:44} {r['rows']:>10,} {r['seconds']:8.1f} {r['rows'] / r['seconds']:9,.0f} "
                      f"{r['peak_mib']:9.0f} {r['bytes'] / 1e6:8.1f}  {target}")
            speed = (ours[fmt]["rows"] / ours[fmt]["seconds"]) / (peer[fmt]["rows"] / peer[fmt]["seconds"])
            record(f"{fmt.upper()} export, {ours[fmt]['rows']:,} payments (peer: stock, rows/s)",
                   ours[fmt]["rows"] / ours[fmt]["seconds"], peer[fmt]["rows"] / peer[fmt]["seconds"],
                   targets[fmt], unit="rows/s")
            print(f"{'':44} rate ratio ours/stock: {speed:.1f}×; stock at 1,000,000 rows would take "
                  f"{peer[fmt]['seconds'] * 1_000_000 / peer[fmt]['rows']:.0f} s")

        app.config["WTF_CSRF_ENABLED"] = False
        app.config["REDIS_URL"] = os.environ.get("REDIS_URL")  # the shared figures, if there is Redis
        from jobs.dashboards import refresh_dashboards
        from models import reports as dashboard
        import cache
        from models.base import office_today
        print(f"\n{'dashboard (GET /admin/, server-side median of 10)':44} {'cold ms':>8} {'job ms':>8} "
              f"{'kept ms':>8}  target")
        for username in ("sales_manager", "agent0", "finance", "lawyer"):
            office = {"sales_manager": "manager", "finance": "finance"}.get(username)
            with app.test_client() as client:
                login = client.post("/login", data={"username": username, "password": "bench-pass-1"})
                assert login.status_code == 302, login.status_code

                def page():
                    response = client.get("/admin/")
                    assert response.status_code == 200, response.status_code

                def cold_page():
                    dashboard._cache.clear()  # the figures computed anew in the request
                    if office and app.config["REDIS_URL"]:
                        with app.app_context():
                            kept = cache.current()
                            kept.redis().delete(kept.namespaced(dashboard.SHARED_PREFIX + repr((office, office_today()))))
                    page()

                def from_job_page():
                    dashboard._cache.clear()  # a worker with nothing in memory: reads Redis
                    page()
                cold = median_ms(cold_page, repeat=5)
                from_job = None
                if office and app.config["REDIS_URL"]:
                    refresh_dashboards()
                    from_job = median_ms(from_job_page, repeat=10)
                kept = median_ms(page, repeat=10)
            print(f"{username:44} {cold:8.1f} {from_job or 0:8.1f} {kept:8.1f}  ≤ 200 ms")
            record(f"dashboard of {username}, computed anew", cold, None, "≤ 200 ms")
            if from_job is not None:
                record(f"dashboard of {username}, from the refresh job's figures", from_job, None, "≤ 200 ms")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        child(sys.argv[2], sys.argv[3])
    else:
        main()
