"""Handover (issue 22, R-AFT-4), each figure beside a peer measured in the same run:

- the notices of DEALS signed, fully paid deals as one batch (models.handovers.notify_handovers:
  per deal the lock, what is owed — open lines and charges —, the handover, its 11 inspection
  items and its queued notice), with its commit. Peer: the same deals' subscription agreements
  requested as one batch (models.documents.request_documents), with its commit.
- the handover with its keys (record_inspection, then hand_over_keys: the lock, what is owed
  again, the deal and the unit marked, the record queued), median over 20 handovers, with their
  commits. Peer: a payment recorded on a deal (models.payments.record_payment), with its commit.
- the "ready for handover" worklist's first page through the test client as the manager (each
  row shows what it still owes). Peer: the subscription grid's first page.

    [DATABASE_URL=postgresql://…] .venv/bin/python bench/handover.py [DEALS]
"""
from __future__ import annotations

import datetime as dt
import sys
import time
from decimal import Decimal

from _office import median_ms, print_table, project_with_building, scratch_app

DEALS = int(sys.argv[1]) if len(sys.argv) > 1 else 200
ID_NUMBER = "110101199003074573"


def _office(db, today):
    from sqlalchemy import select

    from models import Instalment, Lead, Project, Unit
    from models.contracts import book_signing, sign_contract
    from models.deals import confirm_subscription, subscribe
    from models.payments import ensure_default_methods, open_line, record_deposit, record_payment
    from models.users import create_user
    people = {name: create_user(db.session, name, "bench-pass-1", [role], name) for name, role in (
        ("agent", "agent"), ("control", "sales_control"), ("finance", "finance"), ("lawyer", "lawyer"),
        ("manager", "sales_manager"), ("service", "customer_service"))}
    project_id, building_id = project_with_building(db, "HB", "交房楼盘", floors=DEALS + 60)
    project = db.session.get(Project, project_id)
    ensure_default_methods(db.session, project)
    project.handover_starts_on, project.handover_ends_on = today - dt.timedelta(days=5), today + dt.timedelta(days=60)
    day = today - dt.timedelta(days=40)
    subs = []
    for n in range(DEALS + 60):
        unit = Unit(building_id=building_id, floor=n + 1, position=1, number=f"{n + 1:03d}01", layout="三室两厅",
                    area=Decimal("100"), list_price=Decimal("1000000"), status="available")
        lead = Lead(project_id=project_id, name=f"客户{n}", phone=f"139{n:08d}", owner_id=people["agent"].id,
                    stage="visited", source="walk_in", registered_by_id=people["agent"].id)
        db.session.add_all([unit, lead])
        db.session.flush()
        sub = subscribe(db.session, people["agent"], unit_id=unit.id, lead_id=lead.id, payment_method="one_off",
                        deposit="50000", id_number=ID_NUMBER, address="长沙", subscribed_on=day, today=day)
        confirm_subscription(db.session, people["control"], sub.id)
        record_deposit(db.session, people["finance"], sub.id, amount="50000", paid_on=day, channel="pos", today=day)
        if n < DEALS + 20:
            for line in db.session.scalars(select(Instalment).where(Instalment.subscription_id == sub.id, open_line())):
                record_payment(db.session, people["finance"], sub.id, amount=line.amount_due - line.amount_paid,
                               paid_on=day, channel="pos", instalment_id=line.id, today=day)
            contract = book_signing(db.session, people["agent"], sub.id,
                                    appointment_at=dt.datetime.combine(day + dt.timedelta(days=2), dt.time(10)), today=day)
            sign_contract(db.session, people["lawyer"], contract.id, number=f"HT{n}", signed_on=day + dt.timedelta(days=2),
                          today=day + dt.timedelta(days=2))
        db.session.commit()
        subs.append(sub.id)
    return people, subs


def main():
    with scratch_app() as app:
        from models import User, db
        from models.base import office_today
        from models.documents import request_documents
        from models.handovers import hand_over_keys, notify_handovers, record_inspection
        from models.payments import record_payment
        today = office_today()
        start = time.perf_counter()
        people, subs = _office(db, today)
        print(f"office: {len(subs)} deals ({DEALS + 20} signed and paid) in {time.perf_counter() - start:.1f} s")
        batch, spare, unpaid = subs[:DEALS], subs[DEALS:DEALS + 20], subs[DEALS + 20:]

        t0 = time.perf_counter()
        created, refused = notify_handovers(db.session, people["manager"], batch, today=today)
        db.session.commit()
        notices = (time.perf_counter() - t0) * 1000
        assert len(created) == DEALS and not refused
        t0 = time.perf_counter()
        request_documents(db.session, people["manager"], "subscription_agreement", batch)
        db.session.commit()
        agreements = (time.perf_counter() - t0) * 1000

        created, _ = notify_handovers(db.session, people["service"], spare, today=today)
        db.session.commit()
        ids = iter([h.id for h in created])
        service = db.session.get(User, people["service"].id)

        def keys():
            handover_id = next(ids)
            from models.handovers import Handover
            items = db.session.get(Handover, handover_id).items
            record_inspection(db.session, service, handover_id, {i.id: (True, "") for i in items}, today=today)
            db.session.commit()
            hand_over_keys(db.session, service, handover_id, signed_by="业主", keys_count=2, today=today)
            db.session.commit()

        handover_ms = median_ms(keys, repeat=19)
        payments = iter(unpaid * 10)
        finance = db.session.get(User, people["finance"].id)

        def pay():
            record_payment(db.session, finance, next(payments), amount="1000", paid_on=today, channel="pos", today=today)
            db.session.commit()

        payment_ms = median_ms(pay, repeat=19)

        client = app.test_client()
        client.post("/login", data={"username": "manager", "password": "bench-pass-1"})

        def page(url):
            return lambda: client.get(url).status_code == 200 or (_ for _ in ()).throw(AssertionError(url))

        ready_ms = median_ms(page("/admin/handover_ready/"), repeat=10)
        grid_ms = median_ms(page("/admin/subscription/"), repeat=10)
        print_table([
            (f"notices to {DEALS} deals, one batch (+commit)", notices, agreements,
             f"peer: {DEALS} agreements requested"),
            ("inspection + keys of one handover (+2 commits), median", handover_ms, payment_ms,
             "peer: one payment recorded"),
            ("ready-for-handover worklist, first page (HTTP)", ready_ms, grid_ms, "peer: subscription grid"),
        ])
        print(f"per notice: {notices / DEALS:.1f} ms; per agreement requested: {agreements / DEALS:.1f} ms")


if __name__ == "__main__":
    main()
