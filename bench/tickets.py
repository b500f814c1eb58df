"""After-sales tickets and surveys (issue 22, R-SVC-1/2) on a scratch office of 50,000 tickets (a
fifth still open or resolved, a tenth of them overdue) and 20,000 surveys over a year, each
figure beside a peer measured in the same run:

- opening a ticket (models.tickets.open_ticket: its gap-free number, the due date, the people
  told) and its commit. Peer: a dated note on a ticket (one append-only row) and its commit —
  the cost of one audited row written and committed.
- the overdue count (models.tickets.tickets_overdue: the worklist's and the home page's).
  Peer: count(*) of the whole ticket table.
- the month's satisfaction results (models.tickets.survey_results: per agent and project,
  averages, satisfied %, lowest comments). Peer: reading the month's survey rows alone.

    [DATABASE_URL=postgresql://…] .venv/bin/python bench/tickets.py [SCALE]
"""
from __future__ import annotations

import datetime as dt
import random
import sys

from _office import median_ms, print_table, project_with_building, scratch_app

SCALE = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
TICKETS = int(50_000 * SCALE)
SURVEYS = int(20_000 * SCALE)
TODAY = dt.date(2026, 11, 26)


def _office(db):
    """A project, its customer service, three agents with a customer and a deal each, and the
    tickets and surveys, inserted set-based. Returns (service user, lead id, deal id)."""
    from sqlalchemy import insert, select, text

    from models import Lead, Subscription, Unit
    from models.tickets import Survey, Ticket
    from models.users import create_user
    project_id, building_id = project_with_building(db, "BT", "压测楼盘")
    service = create_user(db.session, "kefu", "bench-pass", ["customer_service"], "客服")
    agents = [create_user(db.session, f"agent{n}", "bench-pass", ["agent"], f"顾问{n}") for n in range(3)]
    db.session.commit()
    deals, leads = [], []
    for n, agent in enumerate(agents):
        lead = Lead(project_id=project_id, name=f"客户{n}", phone=f"1380000000{n}", source="walk_in",
                    owner_id=agent.id, registered_by_id=agent.id)
        unit = Unit(building_id=building_id, floor=1, position=n + 1, number=f"10{n}", layout="三室",
                    area=120, list_price=1_000_000)
        db.session.add_all([lead, unit])
        db.session.flush()
        sub = Subscription(number=f"RG-B{n}", project_id=project_id, lead_id=lead.id, unit_id=unit.id,
                           agent_id=agent.id, price=1_000_000, deposit=50_000, payment_method="one_off",
                           status="contracted", subscribed_on=TODAY - dt.timedelta(days=200))
        db.session.add(sub)
        db.session.flush()
        deals.append(sub)
        leads.append(lead)
    db.session.commit()
    rng = random.Random(22)
    rows = []
    for n in range(TICKETS):
        opened = TODAY - dt.timedelta(days=rng.randint(0, 365))
        state = rng.random()
        status = "closed" if state < 0.8 else ("resolved" if state < 0.85 else rng.choice(("open", "in_progress")))
        closed = status == "closed"
        rows.append({"number": f"SH-BT-{n + 1:06d}", "project_id": project_id, "lead_id": leads[n % 3].id,
                     "subscription_id": deals[n % 3].id, "category": "quality", "source": "phone",
                     "department": "engineering", "status": status, "title": "渗水", "opened_on": opened,
                     "due_on": opened + dt.timedelta(days=7), "opened_by_id": service.id,
                     "resolved_on": opened if status in ("resolved", "closed") else None,
                     "feedback_on": opened if closed else None, "feedback": "已告知" if closed else "",
                     "closed_on": opened if closed else None})
    for start in range(0, len(rows), 5000):
        db.session.execute(insert(Ticket), rows[start:start + 5000])
    db.session.execute(text(
        f"INSERT INTO ticket_counter (project_id, last_no) VALUES ({project_id}, {TICKETS})"))
    surveys = []
    ticket_ids = list(db.session.scalars(select(Ticket.id).where(
        Ticket.status == "closed").order_by(Ticket.id).limit(SURVEYS)))
    for n, ticket_id in enumerate(ticket_ids):
        surveys.append({"project_id": project_id, "subscription_id": deals[n % 3].id, "agent_id": agents[n % 3].id,
                        "occasion": "ticket", "ticket_id": ticket_id, "overall": rng.choice((1, 2, 3, 4, 4, 5, 5)),
                        "service": rng.randint(1, 5), "quality": rng.randint(1, 5),
                        "comment": "等待太久" if n % 17 == 0 else "", "recorded_on":
                        TODAY - dt.timedelta(days=rng.randint(0, 365)), "recorded_by_id": service.id})
    for start in range(0, len(surveys), 5000):
        db.session.execute(insert(Survey), surveys[start:start + 5000])
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    return service.id, leads[0].id, deals[0].id


def main():
    with scratch_app() as app:
        from sqlalchemy import func, select

        from models import User, db
        from models.tickets import Survey, Ticket, add_note, open_ticket, survey_results, tickets_overdue
        service_id, lead_id, deal_id = _office(db)
        service = db.session.get(User, service_id)
        opened = []

        def open_one():
            ticket = open_ticket(db.session, service, lead_id=lead_id, subscription_id=deal_id, category="quality",
                                 source="phone", department="engineering", title="压测", today=TODAY)
            db.session.commit()
            opened.append(ticket.id)

        def note_one():
            add_note(db.session, service, opened[0], "压测备注")
            db.session.commit()

        first, nxt = dt.date(2026, 11, 1), dt.date(2026, 12, 1)
        rows = [
            ("open a ticket, committed", median_ms(open_one), median_ms(note_one),
             "peer: one note (an audited row) committed"),
            (f"overdue count of {TICKETS:,} tickets", median_ms(lambda: db.session.scalar(
                select(func.count()).select_from(Ticket).where(tickets_overdue(TODAY)))),
             median_ms(lambda: db.session.scalar(select(func.count()).select_from(Ticket))),
             "peer: count(*) of the table"),
            ("satisfaction results of a month", median_ms(lambda: survey_results(db.session, month=TODAY)),
             median_ms(lambda: db.session.scalars(select(Survey).where(
                 Survey.recorded_on >= first, Survey.recorded_on < nxt)).all()),
             "peer: reading the month's surveys"),
        ]
        print(f"{db.engine.dialect.name}; {TICKETS:,} tickets, {SURVEYS:,} surveys")
        print_table(rows)
        assert app


if __name__ == "__main__":
    main()
