"""Leads at scale (issue 3): grid page, phone lookup, bulk assignment — figures in milliseconds.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/leads.py [LEADS]

Server-side medians: the grid is a full request through the test client (view, queries,
template); the peer of the bulk assignment is a per-row ORM loop measured in the same run.
"""
from __future__ import annotations

import random
import sys

from _office import median_ms, once_ms, print_table, scratch_app

LEADS = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
ASSIGN = 10_000


def _fill(db, n):
    from sqlalchemy import insert

    from models import Project
    from models.users import create_user
    manager = create_user(db.session, "manager", "bench-pass-1", ["sales_manager"])
    agents = [create_user(db.session, f"agent{i}", "bench-pass-1", ["agent"]) for i in range(1, 8)]
    projects = [Project(code=f"P{i:02d}", name=f"楼盘{i}") for i in range(1, 5)]
    db.session.add_all(projects)
    db.session.commit()
    rng = random.Random(3)
    stages = ["new", "contacted", "visited", "lost"]
    rows = []
    for i in range(n):
        rows.append({"project_id": projects[i % 4].id, "name": f"客户{i}", "phone": f"13{i:09d}",
                     "source": "web", "stage": stages[rng.randrange(4)], "registered_by_id": manager.id,
                     "owner_id": agents[i % 7].id if i % 10 else None})
        if len(rows) == 20_000:
            db.session.execute(insert(__import__("models").Lead), rows)
            rows = []
    if rows:
        db.session.execute(insert(__import__("models").Lead), rows)
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        db.session.execute(__import__("sqlalchemy").text("ANALYZE"))
        db.session.commit()
    return manager, agents


def main():
    with scratch_app() as app:
        from sqlalchemy import select

        from models import Lead, User, db
        from models.leads import distribute_leads
        from models.identity import normalise_phone
        manager, agents = _fill(db, LEADS)
        backend = db.engine.dialect.name
        client = app.test_client()
        client.post("/login", data={"username": "manager", "password": "bench-pass-1"})
        agent_client = app.test_client()
        agent_client.post("/login", data={"username": "agent3", "password": "bench-pass-1"})
        for c, url in ((client, "/admin/lead/?flt0_2=visited"), (client, "/admin/lead/"),
                       (agent_client, "/admin/lead/?flt0_2=visited")):
            page = c.get(url)  # measure real pages, not error pages
            assert page.status_code == 200 and "客户登记" in page.get_data(as_text=True), page.status_code
        grid = median_ms(lambda: client.get("/admin/lead/?flt0_2=visited"))
        grid_first = median_ms(lambda: client.get("/admin/lead/"))
        grid_agent = median_ms(lambda: agent_client.get("/admin/lead/?flt0_2=visited"))
        phones = [f"13{random.Random(i).randrange(LEADS):09d}" for i in range(50)]
        it = iter(phones * 10)
        phone = median_ms(lambda: db.session.execute(
            select(Lead.id, Lead.owner_id, Lead.registered_at)
            .where(Lead.phone == normalise_phone(next(it)))).all())

        pool = list(db.session.scalars(select(Lead.id).where(Lead.owner_id.is_(None))
                                       .order_by(Lead.id).limit(2 * ASSIGN)))
        ours_ids, naive_ids = pool[:ASSIGN], pool[ASSIGN:2 * ASSIGN]
        agent_ids = [a.id for a in agents]
        by = db.session.get(User, manager.id)

        def ours():
            distribute_leads(db.session, by, ours_ids, agent_ids)
            db.session.commit()

        def naive():  # the per-row way: load each lead, set its owner, flush (audited by the ORM)
            for k, lead_id in enumerate(naive_ids):
                lead = db.session.get(Lead, lead_id)
                lead.owner_id = agent_ids[k % len(agent_ids)]
                db.session.flush()
            db.session.commit()

        assign_ours = once_ms(ours)
        assign_naive = once_ms(naive)
    print(f"{LEADS:,} leads on {backend}; server-side medians of 20 requests")
    print_table([
        ("lead grid, first page, manager", grid_first, None, "-"),
        ("lead grid, first page, one filter (stage), manager", grid, None, "<= 30 ms"),
        ("lead grid, first page, one filter, agent (scoped)", grid_agent, None, "<= 30 ms"),
        ("lookup by phone", phone, None, "<= 10 ms"),
        (f"bulk assignment of {ASSIGN:,} leads (per-row ORM loop as peer)", assign_ours, assign_naive,
         "<= 2000 ms"),
    ])


if __name__ == "__main__":
    main()
