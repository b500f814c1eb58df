"""Sales control at scale (issue 4): the board of a 5,000-unit project, subscriptions per second.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/sales_control.py

The board is measured as the data (two queries) and as the full page request through the test
client (view, queries, template), server-side medians. Subscriptions run through subscribe()
with real commits: without contention (distinct units, 1 and 4 threads) and with 20 threads
released together on one unit, round after round; every round must sell its unit exactly once.
"""
from __future__ import annotations

import random
import threading
import time
from decimal import Decimal

from _office import median_ms, print_table, scratch_app

BUILDINGS, FLOORS, POSITIONS = 10, 25, 20  # 5,000 units
ID_NUMBER = "110101199003074573"


def _fill(db):
    from sqlalchemy import insert, select

    from models import Building, Lead, Project, Unit
    from models.users import create_user
    agents = [create_user(db.session, f"agent{i}", "bench-pass-1", ["agent"]) for i in range(20)]
    create_user(db.session, "control", "bench-pass-1", ["sales_control"])
    project = Project(code="BIG", name="大盘")
    db.session.add(project)
    db.session.flush()
    from models.payments import ensure_default_methods
    ensure_default_methods(db.session, project)  # a project sells with its own methods (R-PAY-7)
    leads = []
    for i, agent in enumerate(agents):
        for k in range(100):
            leads.append({"project_id": project.id, "name": f"客户{i}-{k}", "phone": f"13{i:02d}{k:07d}",
                          "source": "web", "stage": "visited", "owner_id": agent.id,
                          "registered_by_id": agent.id})
    db.session.execute(insert(Lead), leads)
    rng = random.Random(5)
    for b in range(BUILDINGS):
        building = Building(project_id=project.id, name=f"{b + 1}栋", floors=FLOORS)
        db.session.add(building)
        db.session.flush()
        rows = []
        for floor in range(1, FLOORS + 1):
            for pos in range(1, POSITIONS + 1):
                status = rng.choices(["available", "subscribed", "signed", "withheld"], [6, 2, 2, 1])[0]
                rows.append({"building_id": building.id, "floor": floor, "position": pos,
                             "number": f"{floor}{pos:02d}", "layout": rng.choice(["两室", "三室", "四室"]),
                             "area": Decimal("98.50"), "list_price": Decimal("1200000"), "status": status})
        db.session.execute(insert(Unit), rows)
    db.session.commit()
    lead_ids = {a.id: list(db.session.scalars(select(Lead.id).where(Lead.owner_id == a.id)))
                for a in agents}
    free = list(db.session.scalars(select(Unit.id).where(Unit.status == "available").order_by(Unit.id)))
    return project, agents, lead_ids, free


def _run(app, jobs, threads):
    """jobs: (unit id, lead id, agent id); returns (seconds, outcomes)."""
    from models import RuleViolation, User, db
    from models.deals import subscribe
    outcomes, lock = [], threading.Lock()
    chunks = [jobs[i::threads] for i in range(threads)]
    barrier = threading.Barrier(threads)

    def work(chunk):
        with app.app_context():
            barrier.wait()
            for unit_id, lead_id, agent_id in chunk:
                try:
                    subscribe(db.session, db.session.get(User, agent_id), unit_id=unit_id, lead_id=lead_id,
                              payment_method="one_off", deposit="50000", id_number=ID_NUMBER,
                              address="长沙")
                    db.session.commit()
                    result = "ok"
                except RuleViolation:
                    db.session.rollback()
                    result = "conflict"
                except Exception as exc:
                    db.session.rollback()
                    result = f"error {type(exc).__name__}"
                with lock:
                    outcomes.append(result)
            db.session.remove()

    workers = [threading.Thread(target=work, args=(c,)) for c in chunks]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - start, outcomes


def main():
    with scratch_app() as app:
        from models import Subscription, db
        from models.board import board
        project, agents, lead_ids, free = _fill(db)
        if db.engine.dialect.name == "postgresql":
            db.session.execute(__import__("sqlalchemy").text("ANALYZE"))
            db.session.commit()
        board_data = median_ms(lambda: board(db.session, project.id), repeat=10)
        client = app.test_client()
        client.post("/login", data={"username": "control", "password": "bench-pass-1"})
        page = client.get(f"/admin/board/?project={project.id}")
        assert page.status_code == 200 and page.get_data(as_text=True).count('class="cell ') == 5000
        board_page = median_ms(lambda: client.get(f"/admin/board/?project={project.id}"), repeat=10)
        one_building = median_ms(lambda: client.get(f"/admin/board/?project={project.id}&building=1"),
                                 repeat=10)

        a = [ag.id for ag in agents]
        lead_iter = {agent: iter(ids) for agent, ids in lead_ids.items()}
        serial = [(free.pop(), next(lead_iter[a[0]]), a[0]) for _ in range(50)]
        t_serial, out_serial = _run(app, serial, 1)
        parallel = [(free.pop(), next(lead_iter[a[i % 4]]), a[i % 4]) for i in range(100)]
        t_par, out_par = _run(app, parallel, 4)
        rounds, contended_time, sold_twice, errors = 10, 0.0, 0, 0
        for _ in range(rounds):
            unit = free.pop()
            jobs = [(unit, next(lead_iter[a[i]]), a[i]) for i in range(20)]
            seconds, outcomes = _run(app, jobs, 20)
            contended_time += seconds
            sold_twice += max(0, outcomes.count("ok") - 1)
            errors += sum(o.startswith("error") for o in outcomes)
            assert outcomes.count("ok") == 1, outcomes
        live = db.session.scalar(__import__("sqlalchemy").select(__import__("sqlalchemy").func.count())
                                 .select_from(Subscription))
        backend = db.engine.dialect.name
    print(f"5,000-unit project on {backend}")
    print_table([
        ("board data (2 queries), whole project", board_data, None, "-"),
        ("board page, whole project (5,000 cells)", board_page, None, "<= 100 ms"),
        ("board page, one building (500 cells)", one_building, None, "-"),
    ])
    print(f"subscriptions, no contention, 1 thread:  {len(serial) / t_serial:7.1f}/s "
          f"({out_serial.count('ok')} ok)")
    print(f"subscriptions, no contention, 4 threads: {len(parallel) / t_par:7.1f}/s "
          f"({out_par.count('ok')} ok)")
    print(f"20-way contention on one unit, {rounds} rounds: {rounds * 20 / contended_time:7.1f} attempts/s, "
          f"{rounds / contended_time:5.1f} sales/s, sold twice: {sold_twice}, errors: {errors}, "
          f"subscriptions written: {live}")


if __name__ == "__main__":
    main()
