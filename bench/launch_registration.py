"""Intent registration at scale (issue 24, R-LCH-1): a launch's registrations and deposits as the
screens make them, one transaction each (the launch row locked for the card's number).

    [DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test] .venv/bin/python bench/launch_registration.py [N]

N buyers (default 3,000) registered by one agent (each a new customer of the project: register_lead
inside), then N intent deposits received by finance (each a receipt from the project's sequence),
then the daily run's expiry over the launch (nothing to expire: every card paid) and the refunds due
after the card's expiry. Prints each step's median and total, and the rate.
"""
from __future__ import annotations

import datetime as dt
import statistics
import sys
import time

from _office import project_with_building, scratch_app

N = int(sys.argv[1]) if len(sys.argv) > 1 else 3_000
TODAY = dt.date(2026, 11, 26)
WEIGHTS = [2 ** (17 - i) % 11 for i in range(17)]


def id_number(n: int) -> str:
    """A resident ID number with a valid check digit (GB 11643), born on 7 March, in 110101."""
    body = f"110101{1950 + n // 1000 % 50:04d}0307{n % 1000:03d}"
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, WEIGHTS)) % 11]
    return body + check


def main() -> None:
    from models import db
    from models.launches import create_launch, expire_entries, record_intent_deposit, refunds_due, register_entry
    from models.users import create_user
    with scratch_app():
        manager = create_user(db.session, "manager", "bench-pass-1", ["sales_manager"])
        agent = create_user(db.session, "agent", "bench-pass-1", ["agent"])
        finance = create_user(db.session, "finance", "bench-pass-1", ["finance"])
        db.session.commit()
        project_id, building_id = project_with_building(db, "KP", "开盘")
        launch = create_launch(db.session, manager, project_id=project_id, name="一期开盘", building_ids=[building_id],
                               registration_opens_on=TODAY, registration_closes_on=TODAY, selection_on=TODAY,
                               intent_deposit="50000", card_valid_until=TODAY, questions=["持有本市购房资格"])
        db.session.commit()
        launch_id, agent_id, finance_id = launch.id, agent.id, finance.id
        from models import User
        times, ids = [], []
        start = time.perf_counter()
        for n in range(N):
            t = time.perf_counter()
            entry = register_entry(db.session, db.session.get(User, agent_id), launch_id=launch_id, name=f"客户{n}",
                                   phone=f"139{n:08d}", id_type="resident_id", id_number=id_number(n), address="长沙",
                                   answers={"持有本市购房资格": True}, first_home=n % 2 == 0, today=TODAY)
            db.session.commit()
            ids.append(entry.id)
            times.append((time.perf_counter() - t) * 1000)
        registering = time.perf_counter() - start
        deposits = []
        start = time.perf_counter()
        for entry_id in ids:
            t = time.perf_counter()
            record_intent_deposit(db.session, db.session.get(User, finance_id), entry_id, paid_on=TODAY, channel="pos",
                                  today=TODAY)
            db.session.commit()
            deposits.append((time.perf_counter() - t) * 1000)
        paying = time.perf_counter() - start
        t = time.perf_counter()
        expire_entries(db.session, TODAY + dt.timedelta(days=1))
        db.session.commit()
        expiry = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        due = refunds_due(db.session, launch_id, TODAY + dt.timedelta(days=1))
        listing = (time.perf_counter() - t) * 1000
        assert len(due) == N
        for measure, value in (
                ("registration (median, ms)", f"{statistics.median(times):.1f}"),
                ("registrations per second (one agent, in a row)", f"{N / registering:.0f}"),
                ("intent deposit (median, ms)", f"{statistics.median(deposits):.1f}"),
                ("deposits per second (one finance clerk, in a row)", f"{N / paying:.0f}"),
                (f"daily expiry over {N} paid cards (ms)", f"{expiry:.1f}"),
                (f"refunds due: {N} cards listed (ms)", f"{listing:.1f}")):
            print(f"{measure:58} {value:>10}")

if __name__ == "__main__":
    main()
