"""Channels at scale (issue 23, R-COM-1): a registration, a refused one, a confirming visit's hook,
the channel's own grid and the day's expiry, among 200,000 customers and 100,000 registrations.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/channels.py [REGISTRATIONS]

Each registration is the whole domain call and its commit (rolled-back ones for the refusals would
not measure the conflict's insert and the manager's notification).
"""
from __future__ import annotations

import datetime as dt
import itertools
import sys

from _office import median_ms, once_ms, print_table, scratch_app

REGISTRATIONS = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
LEADS = 2 * REGISTRATIONS
TODAY = dt.date(2026, 11, 26)


def _fill(db):
    from sqlalchemy import insert

    from models import ChannelCompany, ChannelRegistration, Lead, Project
    from models.channels import add_member
    from models.users import create_user
    admin = create_user(db.session, "admin", "bench-pass-1", ["admin"])
    create_user(db.session, "manager", "bench-pass-1", ["sales_manager"])
    projects = [Project(code=f"P{i:02d}", name=f"楼盘{i}", channel_window_days=30) for i in range(1, 5)]
    companies = [ChannelCompany(name=f"渠道{i}") for i in range(20)]
    db.session.add_all([*projects, *companies])
    db.session.flush()
    people = [add_member(db.session, admin, company_id=c.id, username=f"ch{i}", password="bench-pass-1").user
              for i, c in enumerate(companies)]
    db.session.commit()
    rows = []
    for i in range(LEADS):
        rows.append({"project_id": projects[i % 4].id, "name": f"客户{i}", "phone": f"13{i:09d}",
                     "source": "web", "stage": "new", "registered_by_id": admin.id})
        if len(rows) == 20_000:
            db.session.execute(insert(Lead), rows)
            rows = []
    if rows:
        db.session.execute(insert(Lead), rows)
    statuses = ("valid", "confirmed", "expired", "refused", "withdrawn")
    for i in range(REGISTRATIONS):
        person = i % len(people)
        day = TODAY - dt.timedelta(days=i % 60)
        rows.append({"project_id": projects[i % 4].id, "company_id": companies[person].id,
                     "registered_by_id": people[person].id, "customer_name": f"报备{i}",
                     "phone": f"15{i:09d}", "registered_on": day, "valid_until": day + dt.timedelta(days=29),
                     "status": statuses[i % 5] if i % 5 else ("valid" if i % 60 < 30 else "expired")})
        if len(rows) == 20_000:
            db.session.execute(insert(ChannelRegistration), rows)
            rows = []
    if rows:
        db.session.execute(insert(ChannelRegistration), rows)
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        db.session.execute(__import__("sqlalchemy").text("ANALYZE"))
        db.session.commit()
    return projects, people


def main():
    with scratch_app() as app:
        from models import User, db
        from models.channels import ChannelRefused, expire_registrations, register_customer
        projects, people = _fill(db)
        backend = db.engine.dialect.name
        project_id = projects[0].id
        people = [db.session.get(User, p.id) for p in people]
        fresh = (f"18{n:09d}" for n in itertools.count())

        def register():
            register_customer(db.session, people[0], project_id=project_id, customer_name="新客户",
                              phone=next(fresh), today=TODAY)
            db.session.commit()

        taken = (f"13{n:09d}" for n in itertools.count(0, 4))  # customers of project 1

        def refused():
            try:
                register_customer(db.session, people[1], project_id=project_id, customer_name="重复",
                                  phone=next(taken), today=TODAY)
            except ChannelRefused:
                db.session.commit()

        client = app.test_client()
        client.post("/login", data={"username": "ch3", "password": "bench-pass-1"})
        page = client.get("/admin/channel_registration/")
        assert page.status_code == 200 and "报备" in page.get_data(as_text=True), page.status_code
        registration = median_ms(register)
        refusal = median_ms(refused)
        grid = median_ms(lambda: client.get("/admin/channel_registration/"))
        expiry = once_ms(lambda: (expire_registrations(db.session, TODAY + dt.timedelta(days=1)), db.session.commit()))
    print(f"{LEADS:,} customers, {REGISTRATIONS:,} registrations on {backend}; medians of 20")
    print_table([
        ("channel registration (valid), with its commit", registration, None, "-"),
        ("channel registration refused: conflict + manager told", refusal, None, "-"),
        ("a channel user's registration grid (scoped), first page", grid, None, "-"),
        ("the day's expiry of the registrations whose window ended", expiry, None, "-"),
    ])


if __name__ == "__main__":
    main()
