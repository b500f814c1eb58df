"""Mortgage ageing (R-AFT-2): models.loans.ageing — files in progress per bank and stage, with
count, amount, average and longest days in stage and the stuck count, in one grouped query — on
40,000 live files (and 10,000 disbursed or closed), beside the peer: the same grouping with no
work (count per bank and stage over the same live rows, no days, no project, no stuck test).
Target ≤ 100 ms on PostgreSQL.

    DATABASE_URL=postgresql://… .venv/bin/python bench/loan_ageing.py     # a scratch database
    .venv/bin/python bench/loan_ageing.py                                 # SQLite in a temp dir
"""
from __future__ import annotations

import datetime as dt

from _office import after_copy, copy_rows as _copy, median_ms, print_table, project_with_building, scratch_app

LIVE, DONE = 40_000, 10_000
SUBS = (LIVE + DONE) // 2  # two loan lines (commercial and provident fund) per deal
TODAY = dt.date(2026, 11, 26)
STAGES = ("collecting", "documents_complete", "bank_interview", "approved", "mortgage_registered")


def _fill(db):
    from sqlalchemy import insert

    from models.loans import Bank, LoanFile
    from models.users import create_user
    agent = create_user(db.session, "agent", "bench-pass-1", ["agent"])
    project_id, building_id = project_with_building(db, "M", "按揭盘")
    agent_id = agent.id
    now = dt.datetime(2026, 11, 1)
    if db.engine.dialect.name == "postgresql":
        conn = db.session.connection().connection.driver_connection
        _copy(conn, "unit", ["id", "building_id", "floor", "position", "number", "layout", "area", "list_price",
                             "status"],
              ((i, building_id, 1 + i // 1000, i % 1000, f"U{i}", "两室", 90, 1_000_000, "signed")
               for i in range(1, SUBS + 1)))
        _copy(conn, "lead", ["id", "project_id", "name", "phone", "source", "stage", "owner_id", "registered_by_id",
                             "registered_at", "last_activity_at", "needs", "notes", "wanted_layout", "wanted_area"],
              ((i, project_id, f"客户{i}", f"1{i:010d}", "web", "signed", agent_id, agent_id, now, now,
                "", "", "", "") for i in range(1, SUBS + 1)))
        _copy(conn, "subscription", ["id", "number", "project_id", "lead_id", "unit_id", "agent_id", "price",
                                     "deposit", "payment_method", "status", "subscribed_on", "created_at",
                                     "customer_name", "customer_id_number", "customer_address", "price_reason"],
              ((i, f"RG{i}", project_id, i, i, agent_id, 1_000_000, 100_000, "commercial_mortgage", "contracted",
                TODAY - dt.timedelta(days=200), now, f"客户{i}", "", "", "") for i in range(1, SUBS + 1)))
    else:
        db.session.execute(insert(Bank.__table__.metadata.tables["unit"]), [
            {"id": i, "building_id": building_id, "floor": 1 + i // 1000, "position": i % 1000, "number": f"U{i}",
             "layout": "两室", "area": 90, "list_price": 1_000_000, "status": "signed"} for i in range(1, SUBS + 1)])
        db.session.execute(insert(Bank.__table__.metadata.tables["lead"]), [
            {"id": i, "project_id": project_id, "name": f"客户{i}", "phone": f"1{i:010d}", "source": "web",
             "stage": "signed", "owner_id": agent_id, "registered_by_id": agent_id, "registered_at": now,
             "last_activity_at": now} for i in range(1, SUBS + 1)])
        db.session.execute(insert(Bank.__table__.metadata.tables["subscription"]), [
            {"id": i, "number": f"RG{i}", "project_id": project_id, "lead_id": i, "unit_id": i, "agent_id": agent_id,
             "price": 1_000_000, "deposit": 100_000, "payment_method": "commercial_mortgage", "status": "contracted",
             "subscribed_on": TODAY - dt.timedelta(days=200), "created_at": now, "customer_name": f"客户{i}",
             "customer_id_number": "", "customer_address": "", "price_reason": ""} for i in range(1, SUBS + 1)])
    banks = [Bank(name=f"银行{n}") for n in range(8)]
    db.session.add_all(banks)
    db.session.commit()
    bank_ids = [b.id for b in banks]
    rows = []
    n = 0
    for sub in range(1, SUBS + 1):
        for kind in ("commercial_loan", "provident_fund_loan"):
            n += 1
            live = n <= LIVE
            stage = STAGES[n % len(STAGES)] if live else "disbursed"
            status = "open" if live else ("disbursed" if n % 2 else "closed")
            if status == "closed":
                stage = STAGES[n % len(STAGES)]
            rows.append({"id": n, "project_id": project_id, "subscription_id": sub, "line_kind": kind,
                         "bank_id": bank_ids[n % len(bank_ids)], "loan_kind": "combined", "amount": 350_000,
                         "stage": stage, "stage_since": TODAY - dt.timedelta(days=n % 60), "status": status,
                         "missing": "", "opened_by_id": agent_id, "created_at": now})
    for start in range(0, len(rows), 10_000):
        db.session.execute(insert(LoanFile), rows[start:start + 10_000])
    db.session.commit()
    after_copy(db, ["unit", "lead", "subscription", "loan_file"])
    return project_id


def main() -> None:
    with scratch_app() as app:
        from sqlalchemy import func, select

        from models import db
        from models.loans import LoanFile, ageing, stuck
        with app.app_context():
            _fill(db)
            result = ageing(db.session, TODAY)
            assert sum(r["count"] for r in result) == LIVE, result
            n_stuck = db.session.scalar(select(func.count()).select_from(LoanFile).where(stuck(db.session, TODAY)))
            assert sum(r["stuck"] for r in result) == n_stuck
            ours = median_ms(lambda: ageing(db.session, TODAY))
            peer = median_ms(lambda: db.session.execute(
                select(LoanFile.bank_id, LoanFile.stage, func.count()).where(LoanFile.status == "open")
                .group_by(LoanFile.bank_id, LoanFile.stage)).all())
            stuck_ms = median_ms(lambda: db.session.scalar(
                select(func.count()).select_from(LoanFile).where(stuck(db.session, TODAY))))
            backend = db.engine.dialect.name
    print_table([
        (f"mortgage ageing, {LIVE:,} live + {DONE:,} done files, {backend} (bare count per bank×stage as peer)",
         ours, peer, "≤ 100 ms"),
        (f"stuck files count (home page), {backend} (same peer)", stuck_ms, peer, "-")])


if __name__ == "__main__":
    main()
