"""The overdue ladder and extensions (R-PAY-4, R-PAY-5, R-PAY-6, R-PAY-7)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from models import (Extension, Instalment, LeadArchive, Notification, OverdueEvent, RuleViolation,
                    Subscription, Unit)
from models.ladder import decide_extension, forecast, request_extension, run_ladder
from models.payments import record_payment
from tests import factories as f
from tests.support.rules import raises_rule

TODAY = dt.date(2026, 11, 26)
DUE = TODAY + dt.timedelta(days=7)  # one-off payment: the balance is due 7 days after subscribing


@pytest.fixture
def deal(db, make_deal):
    """An active one-off deal on 1,000,000.00: deposit paid, the balance due on DUE."""
    deal = make_deal(price="1000000.00", method="one_off", today=TODAY,
                     staff={"control": ("sales_control", None), "finance": ("finance", None),
                            "manager": ("sales_manager", None), "vp": ("vp", None)})
    balance = db.session.scalar(select(Instalment).where(Instalment.subscription_id == deal["sub"].id,
                                                         Instalment.seq == 2))
    assert balance.due_on == DUE and balance.amount_due == Decimal("950000.00")
    return {**deal, "balance": balance}


def _levels(db, instalment_id):
    return sorted(db.session.scalars(select(OverdueEvent.level).where(
        OverdueEvent.instalment_id == instalment_id)))


@pytest.mark.parametrize("day, levels, forfeited", [
    (1, [], False),
    (2, ["warning"], False),
    (7, ["warning"], False),
    (8, ["lawyer_letter", "warning"], False),
    (14, ["lawyer_letter", "warning"], False),
    (15, ["forfeit", "lawyer_letter", "warning"], True),
    (16, ["forfeit", "lawyer_letter", "warning"], True),
])
def test_r_pay_5_each_boundary_day_of_the_ladder(db, deal, day, levels, forfeited):
    run_ladder(db.session, DUE + dt.timedelta(days=day))
    db.session.expire_all()
    assert [l for l in _levels(db, deal["balance"].id) if l != "reminder"] == levels
    sub = db.session.get(Subscription, deal["sub"].id)
    assert (sub.status == "forfeited") is forfeited
    assert (db.session.get(Unit, deal["unit"].id).status == "available") is forfeited


def test_r_pay_5_a_forfeit_keeps_the_customers_records_apart_in_one_transaction(db, deal):
    run_ladder(db.session, DUE + dt.timedelta(days=15))
    kept = db.session.scalar(select(LeadArchive))
    assert kept.reason == "forfeit" and kept.subscription_id == deal["sub"].id
    assert kept.snapshot["customer"]["id_number"] == f.VALID_ID_NUMBER
    assert kept.snapshot["payments"][0]["amount"] == "50000.00"
    assert len(kept.snapshot["instalments"]) == 2
    assert db.session.get(Subscription, deal["sub"].id).lead.stage == "lost"
    note = db.session.scalar(select(Notification).where(Notification.kind == "ladder_forfeit"))
    assert note.user_id == deal["agent"].id


def test_r_pay_5_running_twice_for_one_day_writes_each_event_once(db, deal):
    first = run_ladder(db.session, DUE + dt.timedelta(days=15))
    second = run_ladder(db.session, DUE + dt.timedelta(days=15))
    assert first["forfeit"] == 1 and sum(second.values()) == 0
    assert db.session.scalar(select(func.count()).select_from(OverdueEvent)) == 3  # no reminder after the fact
    assert db.session.scalar(select(func.count()).select_from(LeadArchive)) == 1


def test_r_pay_5_a_run_after_missed_days_catches_up_each_level_once_in_order(db, deal):
    counts = run_ladder(db.session, DUE + dt.timedelta(days=20))
    assert (counts["warning"], counts["lawyer_letter"], counts["forfeit"]) == (1, 1, 1)
    events = db.session.scalars(select(OverdueEvent).where(OverdueEvent.level != "reminder")
                                .order_by(OverdueEvent.id)).all()
    assert [e.level for e in events] == ["warning", "lawyer_letter", "forfeit"]


def test_r_pay_4_the_agent_is_reminded_before_the_due_date(db, deal):
    assert run_ladder(db.session, DUE - dt.timedelta(days=4))["reminder"] == 0
    assert run_ladder(db.session, DUE - dt.timedelta(days=3))["reminder"] == 1
    assert run_ladder(db.session, DUE)["reminder"] == 0  # once per due date
    note = db.session.scalar(select(Notification).where(Notification.kind == "ladder_reminder"))
    assert note.user_id == deal["agent"].id and str(DUE) in note.text


def test_r_pay_5_a_payment_before_the_run_stops_escalation(db, deal):
    run_ladder(db.session, DUE + dt.timedelta(days=8))
    record_payment(db.session, deal["finance"], deal["sub"].id, amount="950000", paid_on=DUE + dt.timedelta(days=9),
                   channel="bank_transfer", today=DUE + dt.timedelta(days=9))
    db.session.commit()
    assert run_ladder(db.session, DUE + dt.timedelta(days=15))["forfeit"] == 0
    assert db.session.get(Subscription, deal["sub"].id).status == "active"


def test_r_pay_5_a_payment_after_the_forfeit_is_refused(db, deal):
    run_ladder(db.session, DUE + dt.timedelta(days=15))
    with raises_rule("R-PAY-1"):  # payments only on a live deal: this one the ladder forfeited
        record_payment(db.session, deal["finance"], deal["sub"].id, amount="950000",
                       paid_on=DUE + dt.timedelta(days=15), channel="pos", today=DUE + dt.timedelta(days=15))


@pytest.mark.postgres
def test_r_pay_5_a_payment_racing_the_forfeit_never_leaves_both(app, db, deal):
    """Payment and ladder released together: either paid and not forfeited, or forfeited and the
    payment refused — never a payment on a forfeited deal."""
    from models import User
    from tests.support.race import race
    day = DUE + dt.timedelta(days=15)
    # Plain ids: the threads must not touch the test's own session or its objects.
    finance_id, sub_id = deal["finance"].id, deal["sub"].id

    def pay(session):
        record_payment(session, session.get(User, finance_id), sub_id, amount="950000", paid_on=day,
                       channel="pos", today=day)
        session.commit()
        return "recorded"

    payment, ladder = race(pay, lambda session: run_ladder(session, day)["forfeit"], app=app,
                           expected=RuleViolation)
    outcome = {"payment": "refused" if isinstance(payment, RuleViolation) else payment, "forfeits": ladder}
    db.session.expire_all()
    status = db.session.get(Subscription, sub_id).status
    assert (outcome["payment"], outcome["forfeits"], status) in (
        ("recorded", 0, "active"), ("refused", 1, "forfeited"))


def test_r_pay_5_two_ladder_runs_at_once_write_each_event_once(app, db, deal):
    from tests.support.race import race
    day = DUE + dt.timedelta(days=15)
    results = race(*[lambda session: run_ladder(session, day)] * 2, app=app)
    assert sum(r["forfeit"] for r in results) == 1
    assert db.session.scalar(select(func.count()).select_from(OverdueEvent)) == 3
    assert db.session.scalar(select(func.count()).select_from(LeadArchive)) == 1


def test_r_pay_7_the_ladder_follows_the_projects_thresholds(db, deal):
    deal["project"].warning_day, deal["project"].lawyer_letter_day, deal["project"].forfeit_day = 3, 10, 20
    db.session.commit()
    assert run_ladder(db.session, DUE + dt.timedelta(days=2))["warning"] == 0
    counts = run_ladder(db.session, DUE + dt.timedelta(days=15))
    assert counts["warning"] == 1 and counts["lawyer_letter"] == 1 and counts["forfeit"] == 0


def test_a_dry_run_counts_and_writes_nothing(app, db, deal):
    counts = run_ladder(db.session, DUE + dt.timedelta(days=15), dry_run=True)
    assert counts["forfeit"] == 1 and counts["warning"] == 1
    assert db.session.scalar(select(func.count()).select_from(OverdueEvent)) == 0
    assert db.session.get(Subscription, deal["sub"].id).status == "active"
    result = app.test_cli_runner().invoke(args=["overdue", "--today", str(DUE + dt.timedelta(days=15)),
                                                "--dry-run"])
    assert result.exit_code == 0 and "forfeit 1" in result.output
    result = app.test_cli_runner().invoke(args=["overdue", "--today", str(DUE + dt.timedelta(days=15))])
    assert "forfeit 1" in result.output and "written" in result.output


def test_r_pay_5_the_forecast_shows_the_next_seven_days(db, deal):
    days = forecast(db.session, DUE + dt.timedelta(days=7))
    by_day = {d["on"]: d for d in days}
    assert len(days) == 7
    assert by_day[DUE + dt.timedelta(days=8)]["lawyer_letter"] == 1
    assert by_day[DUE + dt.timedelta(days=14)]["forfeit"] == 0
    assert forecast(db.session, DUE + dt.timedelta(days=8))[-1]["forfeit"] == 1  # day 15 is in view


def test_r_pay_5_the_forecast_follows_each_projects_own_days(db, deal):
    """The forecast counts every project in one query; each project's rungs stay its own."""
    project = deal["project"]
    project.warning_day, project.lawyer_letter_day, project.forfeit_day = 3, 10, 20
    f.project(db.session, code="QT")  # another project, nothing due
    db.session.commit()
    by_day = {d["on"]: d for d in forecast(db.session, DUE)}
    assert by_day[DUE + dt.timedelta(days=3)]["warning"] == 1
    assert by_day[DUE + dt.timedelta(days=2)]["warning"] == 0
    assert sum(d["lawyer_letter"] + d["forfeit"] for d in by_day.values()) == 0
    by_day = {d["on"]: d for d in forecast(db.session, DUE + dt.timedelta(days=14))}
    assert by_day[DUE + dt.timedelta(days=20)]["forfeit"] == 1
    assert by_day[DUE + dt.timedelta(days=15)]["forfeit"] == 0


# --- R-PAY-6: extensions ----------------------------------------------------------------------

@pytest.mark.parametrize("days, deciders", [
    (15, {"manager": True, "vp": True, "agent": False, "finance": False}),
    (16, {"manager": False, "vp": True, "agent": False, "finance": False}),
])
def test_r_pay_6_extensions_up_to_the_limit_by_the_manager_beyond_it_by_the_vp(db, deal, days, deciders):
    for who, allowed in deciders.items():
        extension = request_extension(db.session, deal["agent"], deal["balance"].id, days, "客户年底资金到位")
        db.session.commit()
        if allowed:
            decide_extension(db.session, deal[who], extension.id, False)  # rejected: try the next one
            db.session.commit()
        else:
            # Agents and finance lack the role; the manager is refused beyond the limit.
            with raises_rule("R-PAY-6" if who == "manager" else "R-ALL-1"):
                decide_extension(db.session, deal[who], extension.id, True)
            db.session.rollback()
            decide_extension(db.session, deal["vp"], extension.id, False)
            db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(Extension)) == len(deciders)


def test_r_pay_6_an_approved_extension_moves_the_due_date_the_ladder_counts_from(db, deal):
    extension = request_extension(db.session, deal["agent"], deal["balance"].id, 10, "贷款审批中")
    decide_extension(db.session, deal["manager"], extension.id, True)
    db.session.commit()
    assert db.session.get(Instalment, deal["balance"].id).extended_due_on == DUE + dt.timedelta(days=10)
    counts = run_ladder(db.session, DUE + dt.timedelta(days=15))  # day 5 of the new date
    assert counts["warning"] == 1 and counts["lawyer_letter"] == 0 and counts["forfeit"] == 0
    assert db.session.get(Subscription, deal["sub"].id).status == "active"
    assert db.session.get(Extension, extension.id).status == "approved"  # history stays


@pytest.mark.parametrize("days", [0, -3, "三天"])
def test_r_pay_6_extension_days_must_be_positive(db, deal, days):
    with raises_rule("R-PAY-6"):
        request_extension(db.session, deal["agent"], deal["balance"].id, days, "原因")


def test_r_pay_5_the_rung_of_a_late_line_follows_the_projects_days(db):
    """What the plan grid's late-days badge shows: the rung the ladder counts the line on."""
    from models.ladder import ladder_level
    project = f.project(db.session, warning_day=3, lawyer_letter_day=10, forfeit_day=20)
    assert [ladder_level(project, d) for d in (0, 2, 3, 9, 10, 19, 20, 99)] == [
        None, None, "warning", "warning", "lawyer_letter", "lawyer_letter", "forfeit", "forfeit"]


@pytest.mark.parametrize("row, outcome", [
    ({"level": "warning", "cause": "payment"}, "skipped"),      # the same event again: another run's
    ({"level": "lawyer_letter", "cause": "payment"}, "written"),  # a new level
    ({"level": "scolding", "cause": "payment"}, "refused"),      # a level no CHECK admits
    ({"level": "rescission", "cause": "payment", "on": None}, "refused"),  # NOT NULL
])
def test_r_pay_5_the_ladders_insert_skips_only_a_duplicate_on_both_databases(db, make_user, row, outcome):
    """The ladder writes its events with `ON CONFLICT DO NOTHING` on both databases: a row another
    run wrote is skipped, a wrong row is refused. SQLite's `INSERT OR IGNORE` (the old SQLite
    branch) dropped a CHECK or NOT NULL violation silently where PostgreSQL reported it."""
    from sqlalchemy.exc import IntegrityError

    from models.dialect import insert_ignoring_duplicates
    sub = f.subscription(db.session, make_user("agent"))
    line = f.instalment(db.session, sub)
    f.overdue_event(db.session, line, level="warning", cause="payment", due_on=line.due_on)
    db.session.commit()
    statement = insert_ignoring_duplicates(db.session, OverdueEvent, ["instalment_id", "due_on", "level", "cause"])
    values = {"instalment_id": line.id, "due_on": line.due_on, "on": line.due_on, **row}
    if outcome == "refused":
        with pytest.raises(IntegrityError):
            db.session.execute(statement.returning(OverdueEvent.id), [values])
        db.session.rollback()
        return
    written = db.session.execute(statement.returning(OverdueEvent.id), [values]).all()
    db.session.commit()
    assert len(written) == (1 if outcome == "written" else 0)
    assert db.session.scalar(select(func.count()).select_from(OverdueEvent)) == (2 if outcome == "written" else 1)
