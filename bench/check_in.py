"""The desk's phone check-in (issue 23, R-RCP-2, R-COM-1) among 200,000 customers and 100,000
channel registrations.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/check_in.py [CUSTOMERS]

One project with CUSTOMERS leads (every fifth protected by a first visit, every tenth in the pool) and
CUSTOMERS / 2 live registrations by two channels (half of them of phones that are customers too).
Measured in the same run: models.reception.check_phone (the answer the desk reads: the customer's
owner and protection, the live registration's channel) for a phone that is a customer, one that is
registered only, one that is new; the peer: the bare unique-key lookup of the lead by
(project, phone). Target: ≤ 20 ms. PostgreSQL only (COPY).
"""
from __future__ import annotations

import datetime as dt
import itertools
import sys
import time

from _office import after_copy, copy_rows as _copy, median_ms, print_table, scratch_app

CUSTOMERS = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
REGISTRATIONS = CUSTOMERS // 2
TODAY = dt.date(2026, 12, 1)


def _phone(i: int) -> str:
    return f"138{i:08d}"


def _fill(db):
    from models import Project
    from models.channels import ChannelCompany
    from models.users import create_user
    agent = create_user(db.session, "agent", "bench-pass-1", ["agent"])
    manager = create_user(db.session, "manager", "bench-pass-1", ["sales_manager"])
    channel = create_user(db.session, "channel", "bench-pass-1", ["channel"])
    project = Project(code="CI", name="到访登记")
    companies = [ChannelCompany(name="远航渠道"), ChannelCompany(name="启明渠道")]
    db.session.add_all([project, *companies])
    db.session.commit()
    ids = (agent.id, manager.id, channel.id, project.id, [c.id for c in companies])
    agent_id, _, channel_id, project_id, company_ids = ids
    conn = db.session.connection().connection.driver_connection
    now = dt.datetime(2026, 11, 20)
    _copy(conn, "lead", ["id", "project_id", "name", "phone", "source", "stage", "owner_id", "registered_by_id",
                         "registered_at", "last_activity_at", "protected_until", "needs", "notes", "wanted_layout",
                         "wanted_area"],
          ((i, project_id, f"客户{i}", _phone(i), "walk_in", "visited", None if i % 10 == 0 else agent_id, agent_id,
            now, now, TODAY + dt.timedelta(days=i % 40 - 10) if i % 5 == 0 else None, "", "", "", "")
           for i in range(1, CUSTOMERS + 1)))
    # half the registrations are of customers' phones, half of phones nobody else has
    first = CUSTOMERS - REGISTRATIONS // 2 + 1
    _copy(conn, "channel_registration", ["id", "project_id", "company_id", "registered_by_id", "customer_name",
                                         "phone", "registered_at", "registered_on", "valid_until", "status"],
          ((k, project_id, company_ids[k % 2], channel_id, f"渠道客户{k}", _phone(first + k - 1), now,
            TODAY - dt.timedelta(days=5), TODAY + dt.timedelta(days=25), "valid")
           for k in range(1, REGISTRATIONS + 1)))
    db.session.commit()
    after_copy(db, ("lead", "channel_registration"))
    return ids


def main():
    with scratch_app():
        from sqlalchemy import select

        from models import Lead, User, db
        from models.reception import check_phone
        if db.engine.dialect.name != "postgresql":
            sys.exit("bench/check_in.py needs PostgreSQL: set DATABASE_URL")
        start = time.perf_counter()
        _, manager_id, _, project_id, _ = _fill(db)
        fill_s = time.perf_counter() - start
        manager = db.session.get(User, manager_id)
        last = CUSTOMERS + REGISTRATIONS // 2
        customers = itertools.cycle([_phone(i) for i in range(7, CUSTOMERS // 2, 997)])
        registered = itertools.cycle([_phone(i) for i in range(CUSTOMERS + 1, last, 101)])
        new = itertools.cycle([_phone(i) for i in range(last + 1, last + 500)])
        both = itertools.cycle([_phone(i) for i in range(CUSTOMERS - REGISTRATIONS // 2 + 1, CUSTOMERS, 101)])

        def ask(phones):
            return lambda: check_phone(db.session, manager, project_id, next(phones), today=TODAY)
        answer = check_phone(db.session, manager, project_id, next(both), today=TODAY)
        assert answer["status"] != "new" and answer["channel"], answer
        peer_phones = itertools.cycle([_phone(i) for i in range(7, CUSTOMERS // 2, 997)])
        peer = median_ms(lambda: db.session.scalar(select(Lead.id).where(Lead.project_id == project_id,
                                                                         Lead.phone == next(peer_phones))), 200)
        rows = [
            ("check-in: a customer's phone (peer: the lead's unique-key lookup)", median_ms(ask(customers), 200),
             peer, "<= 20 ms"),
            ("check-in: a customer registered by a channel", median_ms(ask(both), 200), peer, "<= 20 ms"),
            ("check-in: a phone registered by a channel only", median_ms(ask(registered), 200), peer, "<= 20 ms"),
            ("check-in: a new phone", median_ms(ask(new), 200), peer, "<= 20 ms"),
        ]
    print(f"{CUSTOMERS:,} customers, {REGISTRATIONS:,} live registrations, PostgreSQL (filled in {fill_s:.0f} s)")
    print_table(rows)


if __name__ == "__main__":
    main()
