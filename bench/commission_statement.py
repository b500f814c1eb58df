"""The month's commission statements of an office with 40,000 live deals (issue 23, R-COM-2).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/commission_statement.py [DEALS]

40,000 live deals of 100 agents, a quarter brought by 20 channel companies. The lines, COPY-filled
as the commission engine writes them: this month each deal's subscription stage (its agent), half
of them signed, the channel's line for a quarter, a clawback on 1 %; last month the down-payment
stage of every deal (so the month's filter has work to do): about 110,000 lines. Measured in the
same run: drawing the month's statements (one draft per payee: the first drawing inserts them,
a second one finds nothing changed), beside the peer, a bare SUM … GROUP BY payee over the same
lines; then approving the largest statement (its lines stamped). Target: the month's statements
≤ 2 s. PostgreSQL only (COPY).
"""
from __future__ import annotations

import datetime as dt
import sys
import time

from _office import after_copy, copy_rows as _copy, median_ms, once_ms, print_table, project_with_building, \
    scratch_app

DEALS = int(sys.argv[1]) if len(sys.argv) > 1 else 40_000
AGENTS = 100
COMPANIES = 20
MONTH = dt.date(2026, 11, 1)
LAST = dt.date(2026, 10, 1)
TODAY = dt.date(2026, 11, 30)


def _fill(db):
    from models.channels import ChannelCompany
    from models.users import create_user
    finance = create_user(db.session, "finance", "bench-pass-1", ["finance"]).id
    manager = create_user(db.session, "manager", "bench-pass-1", ["sales_manager"]).id
    vp = create_user(db.session, "vp", "bench-pass-1", ["vp"]).id
    agents = [create_user(db.session, f"agent{i}", "bench-pass-1", ["agent"]).id for i in range(AGENTS)]
    companies = []
    for i in range(COMPANIES):
        company = ChannelCompany(name=f"渠道{i}")
        db.session.add(company)
        db.session.flush()
        companies.append(company.id)
    db.session.commit()
    project_id, building_id = project_with_building(db, "C", "佣金")
    conn = db.session.connection().connection.driver_connection
    now = dt.datetime(2026, 11, 1)
    agent_of = {i: agents[i % AGENTS] for i in range(1, DEALS + 1)}
    _copy(conn, "unit", ["id", "building_id", "floor", "position", "number", "layout", "area", "list_price",
                         "status"],
          ((i, building_id, 1 + i // 1000, i % 1000, f"U{i}", "两室", 90, 1_000_000, "subscribed")
           for i in range(1, DEALS + 1)))
    _copy(conn, "lead", ["id", "project_id", "name", "phone", "source", "stage", "owner_id", "registered_by_id",
                         "registered_at", "last_activity_at", "needs", "notes", "wanted_layout", "wanted_area"],
          ((i, project_id, f"客户{i}", f"1{i:010d}", "web", "subscribed", agent_of[i], agent_of[i], now, now,
            "", "", "", "") for i in range(1, DEALS + 1)))
    _copy(conn, "subscription", ["id", "number", "project_id", "lead_id", "unit_id", "agent_id", "price", "deposit",
                                 "payment_method", "status", "subscribed_on", "created_at", "customer_name",
                                 "customer_id_number", "customer_address", "price_reason"],
          ((i, f"RG{i}", project_id, i, i, agent_of[i], 1_000_000, 100_000, "one_off", "active",
            MONTH + dt.timedelta(days=i % 28), now, f"客户{i}", "", "", "") for i in range(1, DEALS + 1)))

    def lines():
        n = 0
        for i in range(1, DEALS + 1):
            day = MONTH + dt.timedelta(days=i % 28)
            rows = [(agent_of[i], None, "agent", "subscribed", "earned", 1500, MONTH, day),
                    (agent_of[i], None, "agent", "down_payment", "earned", 1500, LAST, LAST + dt.timedelta(days=i % 28))]
            if i % 2 == 0:
                rows.append((agent_of[i], None, "agent", "signed", "earned", 2000, MONTH, day))
            if i % 4 == 0:
                rows.append((None, companies[(i // 4) % COMPANIES], "channel", "subscribed", "earned", 3000, MONTH, day))
            if i % 100 == 0:
                rows.append((agent_of[i], None, "agent", "subscribed", "clawback", -1500, MONTH, day))
            for user, company, role, stage, kind, amount, month, on in rows:
                n += 1
                yield (n, project_id, i, role, stage, user, company, kind, 1_000_000, amount, month, on, "", now)
    _copy(conn, "commission_line", ["id", "project_id", "subscription_id", "role", "stage", "payee_user_id",
                                    "payee_company_id", "kind", "base", "amount", "month", "earned_on", "reason",
                                    "created_at"], lines())
    db.session.commit()
    after_copy(db, ("unit", "lead", "subscription", "commission_line"))
    return project_id, finance, manager, vp


def main():
    with scratch_app():
        from sqlalchemy import func, select, text

        from models import User, db
        from models.commission_statements import approve_statement, draw_statements
        from models.commissions import CommissionLine, CommissionStatement
        if db.engine.dialect.name != "postgresql":
            sys.exit("bench/commission_statement.py needs PostgreSQL: set DATABASE_URL")
        start = time.perf_counter()
        project_id, finance_id, manager_id, vp_id = _fill(db)
        fill_s = time.perf_counter() - start
        lines = db.session.scalar(select(func.count()).select_from(CommissionLine))
        finance = db.session.get(User, finance_id)

        def peer_sum():
            db.session.execute(select(CommissionLine.payee_user_id, CommissionLine.payee_company_id,
                                      func.sum(CommissionLine.amount), func.count())
                               .where(CommissionLine.project_id == project_id, CommissionLine.month == MONTH)
                               .group_by(CommissionLine.payee_user_id, CommissionLine.payee_company_id)).all()

        peer = median_ms(peer_sum, repeat=10)
        drawn = {}

        def draw():
            drawn.update(draw_statements(db.session, finance, project_id, MONTH, TODAY))
            db.session.commit()
        first = once_ms(draw)
        created = drawn["created"]
        again = median_ms(draw, repeat=5)
        statements = db.session.scalar(select(func.count()).select_from(CommissionStatement))
        biggest = db.session.scalar(select(CommissionStatement.id).where(CommissionStatement.payee_user_id.isnot(None))
                                    .order_by(CommissionStatement.line_count.desc()).limit(1))
        st = db.session.get(CommissionStatement, biggest)
        approver = db.session.get(User, vp_id if st.needs_vp else manager_id)
        count = st.line_count

        def approve():
            approve_statement(db.session, approver, biggest)
            db.session.commit()
        approval = once_ms(approve)
        stamped = db.session.scalar(select(func.count()).select_from(CommissionLine)
                                    .where(CommissionLine.statement_id == biggest))
        db.session.execute(text("SELECT 1"))
    print(f"{DEALS:,} live deals, {lines:,} commission lines, {statements} statements of the month "
          f"({created} created by the first drawing), PostgreSQL (filled in {fill_s:.0f} s)")
    print_table([
        ("month's commission statements, first drawing (peer: bare SUM GROUP BY payee)", first, peer, "<= 2000 ms"),
        ("month's commission statements, drawn again (nothing changed)", again, peer, "<= 2000 ms"),
        (f"approve the largest statement ({count} lines stamped)", approval, None, "-"),
    ])
    assert (statements, created, stamped) == (AGENTS + COMPANIES, AGENTS + COMPANIES, count), (statements, created, stamped, count)


if __name__ == "__main__":
    main()
