"""The commission engine at scale (issue 23, R-COM-2): an office of 40,000 live deals.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/commissions.py [DEALS]

DEALS active instalment deals (deposit paid; the down payment paid on half of them; a confirmed
channel registration on one in ten), three rules (agents 1 %, the manager 0.3 %, channels 0.5 %).
Measured: saving a rule as the screen does (save + commit + enqueue of jobs/commissions.py
apply_rules: the request's time), and that job run on its own (every deal of the project
recomputed, a commit per SWEEP_CHUNK: the first lines of all of them),
the daily sweep on consistent lines (the set-based candidates: none), one deal's recompute when
nothing changed (what every payment's hook costs at least) and `deal_commission` of one deal.
PostgreSQL only (COPY).
"""
from __future__ import annotations

import datetime as dt
import sys
import time

from _office import after_copy, copy_rows as _copy, median_ms, print_table, project_with_building, scratch_app

DEALS = int(sys.argv[1]) if len(sys.argv) > 1 else 40_000
TODAY = dt.date(2026, 11, 26)


def _fill(db):
    from sqlalchemy import text

    from models import ChannelCompany
    from models.users import create_user
    agent = create_user(db.session, "agent", "bench-pass-1", ["agent"])
    manager = create_user(db.session, "manager", "bench-pass-1", ["sales_manager"])
    vp = create_user(db.session, "vp", "bench-pass-1", ["vp"])
    company = ChannelCompany(name="渠道")
    db.session.add(company)
    db.session.commit()
    ids = agent.id, manager.id, vp.id, company.id
    project_id, building_id = project_with_building(db, "C", "佣金")
    conn = db.session.connection().connection.driver_connection
    now = dt.datetime(2026, 11, 1)
    _copy(conn, "unit", ["id", "building_id", "floor", "position", "number", "layout", "area", "list_price", "status"],
          ((i, building_id, 1 + i // 1000, i % 1000, f"U{i}", "两室", 90, 1_000_000, "subscribed")
           for i in range(1, DEALS + 1)))
    _copy(conn, "lead", ["id", "project_id", "name", "phone", "source", "stage", "owner_id", "registered_by_id",
                         "registered_at", "last_activity_at", "needs", "notes", "wanted_layout", "wanted_area"],
          ((i, project_id, f"客户{i}", f"1{i:010d}", "web", "subscribed", ids[0], ids[0], now, now, "", "", "", "")
           for i in range(1, DEALS + 1)))
    _copy(conn, "subscription", ["id", "number", "project_id", "lead_id", "unit_id", "agent_id", "price", "deposit",
                                 "payment_method", "status", "subscribed_on", "created_at", "customer_name",
                                 "customer_id_number", "customer_address", "price_reason"],
          ((i, f"RG{i}", project_id, i, i, ids[0], 1_000_000 + i, 50_000, "instalments", "active",
            TODAY - dt.timedelta(days=i % 300), now, f"客户{i}", "", "", "") for i in range(1, DEALS + 1)))

    def lines():
        n = 0
        for sub in range(1, DEALS + 1):
            for seq, kind, due in ((1, "deposit", 50_000), (2, "down_payment", 250_000 + sub), (3, "balance", 700_000)):
                n += 1
                paid = due if seq == 1 or (seq == 2 and sub % 2 == 0) else 0
                yield (n, sub, seq, kind, TODAY, due, paid, "paid" if paid else "pending", "")
    db.session.execute(text("SET LOCAL session_replication_role = replica"))  # the terms guard, as other benches
    _copy(conn, "instalment", ["id", "subscription_id", "seq", "kind", "due_on", "amount_due", "amount_paid",
                               "status", "agent_note"], lines())
    _copy(conn, "channel_registration", ["id", "project_id", "company_id", "registered_by_id", "customer_name", "phone",
                                         "registered_at", "registered_on", "valid_until", "status", "lead_id", "notes"],
          ((k, project_id, ids[3], ids[0], f"客户{i}", f"1{i:010d}", now, TODAY, TODAY, "confirmed", i, "")
           for k, i in enumerate(range(10, DEALS + 1, 10), 1)))
    db.session.commit()
    after_copy(db, ("unit", "lead", "subscription", "instalment", "channel_registration"))
    return project_id, ids


def main():
    with scratch_app():
        from models import CommissionLine, Subscription, db
        from rq import Queue

        from jobs.commissions import JOB_TIMEOUT
        from jobs.queue import get_connection
        from models.commissions import apply_rules, deal_commission, recompute_deal, save_rule, sweep_candidates
        from models.users import User
        from sqlalchemy import func, select
        if db.engine.dialect.name != "postgresql":
            sys.exit("bench/commissions.py needs PostgreSQL: set DATABASE_URL")
        start = time.perf_counter()
        project_id, (agent_id, manager_id, vp_id, company_id) = _fill(db)
        fill_s = time.perf_counter() - start
        vp = db.session.get(User, vp_id)
        save_rule(db.session, vp, project_id, {"role": "manager", "basis": "rate", "rate_percent": "0.3",
                                               "payee_user_id": manager_id})
        save_rule(db.session, vp, project_id, {"role": "channel", "basis": "rate", "rate_percent": "0.5"})
        db.session.commit()
        apply_rules(db.session, project_id, TODAY)  # their job (untimed): the manager's and channels' lines
        start = time.perf_counter()
        save_rule(db.session, vp, project_id, {"role": "agent", "basis": "rate", "rate_percent": "1"})
        db.session.commit()
        # The request only enqueues: an asynchronous queue (embedded Redis here), left for a worker.
        Queue("default", connection=get_connection(), is_async=True).enqueue(
            "jobs.commissions.apply_rules", project_id, TODAY.isoformat(), job_timeout=JOB_TIMEOUT)
        request_ms = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        apply_rules(db.session, project_id, TODAY)  # what the worker runs
        all_deals = (time.perf_counter() - start) * 1000
        lines = db.session.scalar(select(func.count()).select_from(CommissionLine))
        start = time.perf_counter()
        found = sweep_candidates(db.session)
        sweep = (time.perf_counter() - start) * 1000
        db.session.rollback()
        one = median_ms(lambda: (recompute_deal(db.session, DEALS // 2, TODAY), db.session.commit()))
        sub = db.session.get(Subscription, DEALS // 2)
        figure = median_ms(lambda: deal_commission(db.session, sub, TODAY))
    print(f"{DEALS:,} live deals, PostgreSQL (filled in {fill_s:.0f} s); {lines:,} lines; sweep found {len(found)}")
    print_table([
        ("commission: a rule saved by the screen (save, commit, enqueue) (ms)", request_ms, None, ""),
        ("commission: its job, every deal recomputed in chunks (ms)", all_deals, None, ""),
        ("commission: daily sweep, consistent lines (ms)", sweep, None, ""),
        ("commission: one deal's recompute, nothing to write (ms)", one, None, ""),
        ("commission: deal_commission of one deal (ms)", figure, None, ""),
    ])


if __name__ == "__main__":
    main()
