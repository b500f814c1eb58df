"""Deals that change (issue 21) on the large office (bench/big_office.py), each beside a peer
measured in the same run:

- a unit swap (换房, R-CHG-2), server-side: the domain calls an agent and the manager make —
  request_change, then decide_change("approve"), which applies it (new unit taken, old unit back
  on sale, the plan regenerated with every payment carried); median of 20 swaps of different
  deals, the calls alone and with their two commits. Peer: a plain subscription
  (models.deals.subscribe) of a new customer on the same office, alone and with its commit.
- finance's settlement worklist (R-CHG-5) on 100,000 deals (60,000 of them over, all still
  holding money: the large office settles none): the grid's first page and its count, the whole
  request through the test client as finance. Peer: the plain subscription grid's first page.
  Beside it, the count the worklist took before issue 21's kept figure (two correlated sums per
  dead deal), and the dashboard's refunds due (models.reports.refunds_due).

    DATABASE_URL=postgresql://… .venv/bin/python bench/changes.py [SCALE]
"""
from __future__ import annotations

import statistics
import sys
import time

from _office import median_ms, print_table, scratch_app

SCALE = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
SWAPS = 20
OLD_COUNT = ("SELECT count(*) FROM subscription WHERE status IN ('forfeited', 'withdrawn', 'expired', 'rescinded', "
             "'cancelled') AND (SELECT coalesce(sum(amount), 0) FROM payment WHERE payment.subscription_id = "
             "subscription.id) - (SELECT coalesce(sum(amount), 0) FROM voucher WHERE voucher.subscription_id = "
             "subscription.id) > 0")


def _swap_candidates(db, n: int) -> list[tuple[int, int]]:
    """(deal, unit to move to) pairs: live deals whose new unit is available in the same project,
    priced at least what the deal asks (so what was paid is covered), one unit per deal."""
    from sqlalchemy import select

    from models import Building, Subscription, Unit
    pairs, used = [], set()
    deals = db.session.execute(select(Subscription.id, Subscription.project_id, Subscription.price)
                               .where(Subscription.status == "active").order_by(Subscription.id).limit(20 * n)).all()
    for sub_id, project_id, price in deals:
        unit_id = db.session.scalar(
            select(Unit.id).join(Building, Building.id == Unit.building_id)
            .where(Building.project_id == project_id, Unit.status == "available", Unit.list_price >= price,
                   Unit.id.notin_(used or {0})).order_by(Unit.id).limit(1))
        if unit_id is not None:
            pairs.append((sub_id, unit_id))
            used.add(unit_id)
        if len(pairs) == n:
            break
    return pairs


def _subscription_candidates(db, n: int) -> list[tuple[int, int, int]]:
    """(agent, lead, unit) triples for plain subscriptions: a customer of the agent with no deal,
    in the project of an available unit not used by the swaps."""
    from sqlalchemy import select

    from models import Building, Lead, Subscription, Unit
    triples, used = [], set()
    leads = db.session.execute(
        select(Lead.id, Lead.owner_id, Lead.project_id)
        .where(Lead.owner_id.isnot(None), Lead.stage.in_(("contacted", "visited")),
               ~select(Subscription.id).where(Subscription.lead_id == Lead.id).exists())
        .order_by(Lead.id.desc()).limit(20 * n)).all()
    for lead_id, agent_id, project_id in leads:
        unit_id = db.session.scalar(
            select(Unit.id).join(Building, Building.id == Unit.building_id)
            .where(Building.project_id == project_id, Unit.status == "available", Unit.id.notin_(used or {0}))
            .order_by(Unit.id.desc()).limit(1))
        if unit_id is not None:
            triples.append((agent_id, lead_id, unit_id))
            used.add(unit_id)
        if len(triples) == n:
            break
    return triples


def swaps(db) -> dict[str, list[float]]:
    """SWAPS + 1 swaps and as many plain subscriptions (the first of each warms), in ms each: the
    domain calls alone ("swap", "subscribe") and with their commits ("… committed": a swap is two
    transactions, the agent's request and the manager's approval; a subscription one)."""
    from big_office import TODAY
    from models import Subscription, User
    from models.change_requests import decide_change, request_change
    from models.deals import subscribe

    manager = db.session.query(User).filter_by(username="manager").one()
    pairs = _swap_candidates(db, SWAPS + 1)
    triples = _subscription_candidates(db, SWAPS + 1)
    assert len(pairs) == SWAPS + 1 and len(triples) == SWAPS + 1, (len(pairs), len(triples))
    times = {"swap": [], "swap committed": [], "subscribe": [], "subscribe committed": []}

    def timed(fn):
        started = time.perf_counter()
        result = fn()
        called = time.perf_counter()
        db.session.commit()
        return result, (called - started) * 1000, (time.perf_counter() - started) * 1000

    for (sub_id, unit_id), (agent_id, lead_id, new_unit) in zip(pairs, triples):
        agent = db.session.get(User, db.session.get(Subscription, sub_id).agent_id)
        db.session.commit()
        change, asked, asked_committed = timed(lambda: request_change(
            db.session, agent, sub_id, "unit_swap", reason="客户换房（测试）", proposal={"unit_id": unit_id}, today=TODAY))
        decided, approved, approved_committed = timed(lambda: decide_change(
            db.session, manager, change.id, "approve", today=TODAY))
        assert decided.status == "approved" and decided.applied_at is not None
        assert db.session.get(Subscription, sub_id).unit_id == unit_id
        times["swap"].append(asked + approved)
        times["swap committed"].append(asked_committed + approved_committed)

        agent = db.session.get(User, agent_id)
        db.session.commit()
        _, called, committed = timed(lambda: subscribe(
            db.session, agent, unit_id=new_unit, lead_id=lead_id, payment_method="instalments", deposit="50000",
            id_number="110101199003074573", address="长沙", subscribed_on=TODAY, today=TODAY))
        times["subscribe"].append(called)
        times["subscribe committed"].append(committed)
    return {name: values[1:] for name, values in times.items()}


def _worklist_queries_ms(client, path) -> float:
    """The time the grid's own two queries of the worklist took during one page (its rows and its
    count: the statements that filter on the money held), without the per-row formatters'."""
    from sqlalchemy import event

    from models import db
    spent, started = [0.0], {}

    def before(conn, cursor, statement, *args):
        started[id(conn)] = (time.perf_counter(), "held >" in statement)

    def after(conn, *args):
        at, ours = started.pop(id(conn))
        if ours:
            spent[0] += time.perf_counter() - at
    event.listen(db.engine, "before_cursor_execute", before)
    event.listen(db.engine, "after_cursor_execute", after)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", before)
        event.remove(db.engine, "after_cursor_execute", after)
    return spent[0] * 1000


def worklist(app, db, counts) -> list[tuple]:
    """The settlement worklist's rows of the table (see the module's docstring)."""
    from sqlalchemy import text

    from grids import sql_ms
    from models.reports import refunds_due
    rows = []
    client = app.test_client()
    assert client.post("/login", data={"username": "finance", "password": "bench-pass-1"}).status_code == 302
    page, plain = "/admin/settlement/", "/admin/subscription/"
    for path in (page, plain):
        assert client.get(path).status_code == 200, path
    waiting = refunds_due(db.session)
    db.session.commit()
    rows.append((f"settlement worklist, first page + count ({waiting['count']:,} deals of "
                 f"{counts['subscriptions']:,}); peer: subscription grid",
                 median_ms(lambda: client.get(page), repeat=20),
                 median_ms(lambda: client.get(plain), repeat=20), "<= 50 ms"))
    rows.append(("settlement worklist: its queries; peer: subscription grid's",
                 statistics.median(sql_ms(client, page) for _ in range(20)),
                 statistics.median(sql_ms(client, plain) for _ in range(20)), "-"))
    rows.append(("settlement worklist: the grid's page and count queries alone",
                 statistics.median(_worklist_queries_ms(client, page) for _ in range(20)), None, "-"))

    def old_count():
        db.session.execute(text(OLD_COUNT)).scalar()
        db.session.commit()
    rows.append(("worklist count by two sums per dead deal (before issue 21)", median_ms(old_count, repeat=5),
                 None, "-"))

    def refunds():
        refunds_due(db.session)
        db.session.commit()
    rows.append(("dashboard's refunds due (the worklist's total)", median_ms(refunds, repeat=20), None, "-"))
    return rows


def main() -> None:
    with scratch_app() as app:
        from big_office import build
        from models import db

        counts = build(db, SCALE)
        rows = worklist(app, db, counts)
        times = {name: statistics.median(values) for name, values in swaps(db).items()}
        rows.append((f"unit swap: request, approve, apply (median of {SWAPS}); peer: a subscription",
                     times["swap"], times["subscribe"], "<= 50 ms"))
        rows.append(("the same with their commits (swap: 2 transactions; subscription: 1)",
                     times["swap committed"], times["subscribe committed"], "-"))
    print(", ".join(f"{k} {v:,.0f}" for k, v in counts.items()))
    print_table(rows)


if __name__ == "__main__":
    main()
