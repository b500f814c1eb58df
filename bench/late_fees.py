"""Late fees in the daily run at scale (issue 22, R-AFT-1): 1,000,000 instalments, 10,000 late.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/late_fees.py [INSTALMENTS]

100,000 active subscriptions × 10 instalments; 10,000 lines of 10,000 subscriptions are two days
late, half of them partly paid yesterday (a payment and its allocation each); the rest are paid or
not yet due. Measured in the same run on the same data: the daily run WITH the accrual (the
ladder's levels, then the late fees), the ladder WITHOUT it (the peer: what the daily run cost
before issue 22), the accrual alone the next day (every charge updated) and once more that day
(nothing to change). Target: the whole daily run ≤ 5 s. PostgreSQL only (COPY).
"""
from __future__ import annotations

import datetime as dt
import sys
import time

from _office import after_copy, copy_rows as _copy, print_table, project_with_building, scratch_app

INSTALMENTS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
PER_SUB = 10
LATE = 10_000
TODAY = dt.date(2026, 11, 26)


def _fill(db):
    from models.users import create_user
    agent = create_user(db.session, "agent", "bench-pass-1", ["agent"])
    finance = create_user(db.session, "finance", "bench-pass-1", ["finance"])
    project_id, building_id = project_with_building(db, "F", "滞纳金")
    agent_id, finance_id = agent.id, finance.id
    subs = INSTALMENTS // PER_SUB
    conn = db.session.connection().connection.driver_connection
    now = dt.datetime(2026, 11, 1)
    _copy(conn, "unit", ["id", "building_id", "floor", "position", "number", "layout", "area", "list_price",
                         "status"],
          ((i, building_id, 1 + i // 1000, i % 1000, f"U{i}", "两室", 90, 1_000_000, "subscribed")
           for i in range(1, subs + 1)))
    _copy(conn, "lead", ["id", "project_id", "name", "phone", "source", "stage", "owner_id", "registered_by_id",
                         "registered_at", "last_activity_at", "needs", "notes", "wanted_layout", "wanted_area"],
          ((i, project_id, f"客户{i}", f"1{i:010d}", "web", "subscribed", agent_id, agent_id, now, now,
            "", "", "", "") for i in range(1, subs + 1)))
    _copy(conn, "subscription", ["id", "number", "project_id", "lead_id", "unit_id", "agent_id", "price", "deposit",
                                 "payment_method", "status", "subscribed_on", "created_at", "customer_name",
                                 "customer_id_number", "customer_address", "price_reason"],
          ((i, f"RG{i}", project_id, i, i, agent_id, 1_000_000, 100_000, "instalments", "active",
            TODAY - dt.timedelta(days=400), now, f"客户{i}", "", "", "") for i in range(1, subs + 1)))
    late_line = {}

    def instalments():
        n = 0
        for sub in range(1, subs + 1):
            for seq in range(1, PER_SUB + 1):
                n += 1
                late = sub <= LATE and seq == 2
                if seq == 1 or (seq == 2 and not late):
                    status, paid, due = "paid", 100_000, TODAY - dt.timedelta(days=300)
                elif late:
                    late_line[sub] = n
                    partly = sub % 2 == 0
                    status, paid, due = ("partly_paid" if partly else "pending"), (50_000 if partly else 0), \
                        TODAY - dt.timedelta(days=2)
                else:
                    status, paid, due = "pending", 0, TODAY + dt.timedelta(days=30 * seq)
                yield (n, sub, seq, "instalment", due, 100_000, paid, status, "")
    # The guard of migration d21a00000001 lets a live deal's lines come only from an approved change;
    # the scratch database's superuser turns triggers off for these (as bench/big_office.py does).
    from sqlalchemy import text
    db.session.execute(text("SET LOCAL session_replication_role = replica"))
    _copy(conn, "instalment", ["id", "subscription_id", "seq", "kind", "due_on", "amount_due", "amount_paid",
                               "status", "agent_note"], instalments())
    db.session.execute(text("SET LOCAL session_replication_role = origin"))  # the payments keep `held`
    partly = [sub for sub in range(2, LATE + 1, 2)]
    _copy(conn, "payment", ["id", "project_id", "subscription_id", "instalment_id", "amount", "paid_on", "channel",
                            "receipt_no", "reason", "recorded_by_id", "recorded_at"],
          ((k, project_id, sub, late_line[sub], 50_000, TODAY - dt.timedelta(days=1), "bank_transfer",
            f"SJ-F-{k:06d}", "", finance_id, now) for k, sub in enumerate(partly, 1)))
    _copy(conn, "payment_allocation", ["id", "payment_id", "instalment_id", "amount"],
          ((k, k, late_line[sub], 50_000) for k, sub in enumerate(partly, 1)))
    db.session.commit()
    after_copy(db, ("unit", "lead", "subscription", "instalment", "payment", "payment_allocation"))


def main():
    with scratch_app():
        from sqlalchemy import delete, func, select, text

        import models.ladder as ladder
        from models import Audit, Charge, OverdueEvent, db
        from models.charges import accrue_late_fees
        if db.engine.dialect.name != "postgresql":
            sys.exit("bench/late_fees.py needs PostgreSQL: set DATABASE_URL")
        start = time.perf_counter()
        _fill(db)
        fill_s = time.perf_counter() - start
        # The peer: the same daily run without the accrual (as before issue 22), on the same data.
        ladder.accrue_late_fees = lambda session, today, dry_run=False: 0
        start = time.perf_counter()
        ladder.run_ladder(db.session, TODAY)
        peer = (time.perf_counter() - start) * 1000
        ladder.accrue_late_fees = accrue_late_fees
        db.session.execute(text("SET LOCAL session_replication_role = replica"))  # scratch: audit rows may go
        db.session.execute(delete(OverdueEvent))
        db.session.execute(delete(Audit).where(Audit.entity == "overdue_event"))
        db.session.commit()
        start = time.perf_counter()
        counts = ladder.run_ladder(db.session, TODAY)
        ours = (time.perf_counter() - start) * 1000
        charges = db.session.scalar(select(func.count()).select_from(Charge))
        start = time.perf_counter()
        updated = accrue_late_fees(db.session, TODAY + dt.timedelta(days=1))
        db.session.commit()
        alone = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        again = accrue_late_fees(db.session, TODAY + dt.timedelta(days=1))
        db.session.commit()
        twice = (time.perf_counter() - start) * 1000
    print(f"{INSTALMENTS:,} instalments, {LATE:,} late (half partly paid), PostgreSQL (filled in {fill_s:.0f} s)")
    print(f"daily run: {dict(counts)}; {charges:,} charges; next day {updated:,} updated, then {again} more")
    print_table([
        ("daily run with late fees (peer: the ladder without them)", ours, peer, "<= 5000 ms"),
        ("late-fee accrual alone, next day (every charge changes)", alone, None, "-"),
        ("late-fee accrual, second run the same day", twice, None, "-"),
    ])
    assert charges == LATE and updated == LATE and again == 0


if __name__ == "__main__":
    main()
