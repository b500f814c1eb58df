"""A building's area true-up (issue 22, R-AFT-3): 500 units, each with a live deal (deposit in), their
surveyed areas entered; then, timed, the batch computed (models.true_ups.compute_batch: one read
of the deals, one TrueUp per deal) and applied by finance (apply_batch: a charge per buyer who
pays, in one transaction), each with its commit. Target: compute + apply ≤ 2 s.

Peer, in the same run on the same database: the price-list import of 500 units of a new building
(models.inventory.import_price_list, its set-based sibling: every row checked, then written, with
its commit), and 500 plain rows inserted into a small table by one executemany.

    [DATABASE_URL=postgresql://…] .venv/bin/python bench/true_up.py [UNITS]
"""
from __future__ import annotations

import datetime as dt
import random
import sys
from decimal import Decimal

from _office import once_ms, print_table, scratch_app

UNITS = int(sys.argv[1]) if len(sys.argv) > 1 else 500
TODAY = dt.date(2026, 11, 26)
ID_NUMBER = "110101199003074573"


def _building_of_deals(db):
    """A project, a building of UNITS units and a live (active) deal on each, through subscribe,
    confirm and the deposit; the surveyed areas entered (±6 %). Returns the people and the building."""
    from sqlalchemy import insert, select

    from models import Building, Lead, Project, Unit
    from models.deals import confirm_subscription, subscribe
    from models.payments import ensure_default_methods, record_deposit
    from models.users import create_user
    agent = create_user(db.session, "agent", "bench-pass-1", ["agent"])
    control = create_user(db.session, "control", "bench-pass-1", ["sales_control"])
    finance = create_user(db.session, "finance", "bench-pass-1", ["finance"])
    project = Project(code="TU", name="补差盘")
    db.session.add(project)
    db.session.flush()
    ensure_default_methods(db.session, project)
    building = Building(project_id=project.id, name="1栋", floors=UNITS // 10 + 1)
    db.session.add(building)
    db.session.flush()
    db.session.execute(insert(Unit), [{"building_id": building.id, "floor": 1 + i // 10, "position": 1 + i % 10,
                                       "number": f"{1 + i // 10}{1 + i % 10:02d}", "layout": "三室",
                                       "area": Decimal("98.50") + i % 7, "list_price": Decimal("1200000")}
                                      for i in range(UNITS)])
    db.session.execute(insert(Lead), [{"project_id": project.id, "name": f"客户{i}", "phone": f"139{i:08d}",
                                       "source": "web", "stage": "visited", "owner_id": agent.id,
                                       "registered_by_id": agent.id} for i in range(UNITS)])
    db.session.commit()
    units = db.session.scalars(select(Unit).where(Unit.building_id == building.id).order_by(Unit.id)).all()
    leads = db.session.scalars(select(Lead.id).where(Lead.project_id == project.id).order_by(Lead.id)).all()
    day = TODAY - dt.timedelta(days=10)
    for unit, lead_id in zip(units, leads):
        sub = subscribe(db.session, agent, unit_id=unit.id, lead_id=lead_id, payment_method="one_off", deposit="50000",
                        id_number=ID_NUMBER, address="长沙", subscribed_on=day, today=day)
        confirm_subscription(db.session, control, sub.id)
        record_deposit(db.session, finance, sub.id, amount="50000", paid_on=day, channel="pos", today=day)
    rng = random.Random(22)
    for unit in units:
        unit.surveyed_area = (unit.area * (1 + Decimal(rng.randint(-600, 600)) / 10000)).quantize(Decimal("0.01"))
        unit.surveyed_on = TODAY
    db.session.commit()
    return control, finance, building.id, project


def main() -> None:
    with scratch_app() as app, app.test_request_context():
        from sqlalchemy import Column, Integer, MetaData, String, Table, func, select

        from models import Charge, TrueUp, db
        from models.inventory import import_price_list
        from models.true_ups import apply_batch, compute_batch
        from models.users import create_user
        control, finance, building_id, project = _building_of_deals(db)
        batch = {}

        def compute():
            batch["id"] = compute_batch(db.session, control, building_id, TODAY, today=TODAY).id
            db.session.commit()

        def apply():
            apply_batch(db.session, finance, batch["id"], today=TODAY)
            db.session.commit()

        compute_ms = once_ms(compute)
        apply_ms = once_ms(apply)
        assert db.session.scalar(select(func.count()).select_from(TrueUp)) == UNITS
        charges = db.session.scalar(select(func.count()).select_from(Charge))
        importer = create_user(db.session, "importer", "bench-pass-1", ["sales_control"])
        rows = [{"project": project.code, "building": "2栋", "floor": str(1 + i // 10), "unit": f"{1 + i // 10}{1 + i % 10:02d}",
                 "layout": "三室", "area": "98.50", "total_price": "1200000", "_line": i + 2} for i in range(UNITS)]

        def price_list():
            import_price_list(db.session, importer, rows)
            db.session.commit()

        import_ms = once_ms(price_list)
        plain = Table("bench_plain_rows", MetaData(), Column("id", Integer, primary_key=True), Column("v", String(20)))
        plain.create(db.engine)

        def plain_rows():
            db.session.execute(plain.insert(), [{"v": f"row{i}"} for i in range(UNITS)])
            db.session.commit()

        plain_ms = once_ms(plain_rows)
        print(f"{db.engine.dialect.name}: {UNITS} deals, {charges} charges made")
        print_table([
            (f"true-up: compute a building's batch ({UNITS} deals)", compute_ms, import_ms, ""),
            (f"true-up: apply it ({charges} charges)", apply_ms, import_ms, ""),
            (f"true-up: compute + apply ({UNITS} deals)", compute_ms + apply_ms, import_ms, "≤ 2000 ms"),
            (f"peer: price-list import, {UNITS} units", import_ms, None, ""),
            (f"peer: {UNITS} plain rows, one executemany", plain_ms, None, ""),
        ])


if __name__ == "__main__":
    main()
