"""Late fees across a change and a reversal (R-AFT-1 with R-CHG-2 and R-PAY-1): one fee per overdue
sum when a change replaces the plan — the late fee goes on with the line that replaces its line, or
lapses when no line does — and a reversed payment, with its reversal, counts on no day."""
from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import pytest
from sqlalchemy import func, select

from models import Audit
from models.change_requests import decide_change, request_change
from models.charges import (Charge, accrue_late_fees, charges_owed, owed_on_deal, record_charge_payment,
                            request_waiver)
from models.deals import Subscription
from models.handovers import owed_before_handover
from models.payments import Instalment, in_force, record_payment, reverse_payment
from tests import factories as f
from tests.support.rules import raises_rule

TODAY = f.TODAY
D = dt.timedelta
STAFF = {"control": ("sales_control", None), "finance": ("finance", None), "manager": ("sales_manager", None),
         "vp": ("vp", None)}


@pytest.fixture(autouse=True)
def english(app):
    """Refusals and notes are matched on their English text (the catalog is filled after the merge)."""
    from flask_babel import force_locale
    with app.app_context(), force_locale("en"):
        yield


@pytest.fixture
def late(db, make_deal):
    """An instalments deal on 1,000,000.00 (deposit 50,000 paid): down payment 250,000.00 due on
    day 15, instalments due on days 90 and 180, the balance on day 365."""
    deal = make_deal(price="1000000.00", method="instalments", today=TODAY, staff=STAFF)
    return deal


def _fee(amount, days, rate="0.05", cap="5"):
    fee = (Decimal(amount) * Decimal(rate) * days / 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return min(fee, (Decimal(amount) * Decimal(cap) / 100).quantize(Decimal("0.01"), ROUND_HALF_UP))


def _accrue(db, day):
    accrue_late_fees(db.session, day)
    db.session.commit()
    db.session.expire_all()


def _line(db, sub_id, kind, replaced=False):
    return db.session.scalar(select(Instalment).where(
        Instalment.subscription_id == sub_id, Instalment.kind == kind,
        (Instalment.status == "replaced") if replaced else in_force()).order_by(Instalment.seq))


def _late_fees(db, sub_id):
    db.session.expire_all()
    return db.session.scalars(select(Charge).where(Charge.subscription_id == sub_id, Charge.kind == "late_fee")
                              .order_by(Charge.id)).all()


def _change(db, deal, kind, proposal, today, deciders=("manager",)):
    """A change asked by the agent and approved along its chain: the last approval applies it."""
    change = request_change(db.session, deal["agent"], deal["sub"].id, kind, reason="客户要求", proposal=proposal,
                            today=today)
    db.session.commit()
    for who in deciders:
        decide_change(db.session, deal[who], change.id, "approve", today=today)
        db.session.commit()
    db.session.expire_all()
    assert db.session.get(Subscription, deal["sub"].id).plan_no == 2
    return change


def _signed_in(app, user):
    from tests.conftest import Auth
    client = app.test_client()
    assert Auth(client).login(user.username).status_code == 302
    return client


# --- R-CHG-2: a change replaces the plan of a late deal ---------------------------------------------

def test_r_aft_1_r_chg_2_a_method_change_on_a_late_deal_gives_one_late_fee_for_the_right_days(app, db, late):
    """The reviewer's scenario: the down payment is 5 days late and part of its fee paid; a change of
    payment method replaces the plan (its down payment due the same day). The fee goes on with the new
    line — one charge, what was paid on it kept — and ten days later it counts 15 days, not 15 + 5."""
    sub_id = late["sub"].id
    due = TODAY + D(days=15)
    _accrue(db, due + D(days=5))
    [charge] = _late_fees(db, sub_id)
    old_line = _line(db, sub_id, "down_payment")
    assert (charge.instalment_id, charge.days, charge.amount) == (old_line.id, 5, _fee("250000", 5))
    record_charge_payment(db.session, late["finance"], charge.id, amount="100", paid_on=due + D(days=5),
                          channel="pos", today=due + D(days=5))
    db.session.commit()

    _change(db, late, "payment_method", {"payment_method": "commercial_mortgage"}, due + D(days=5))
    new_line = _line(db, sub_id, "down_payment")
    assert new_line.id != old_line.id and new_line.due_on == due
    [carried] = _late_fees(db, sub_id)
    assert carried.id == charge.id and carried.instalment_id == new_line.id
    assert (carried.days, carried.amount, carried.paid, carried.outstanding) == (
        5, _fee("250000", 5), Decimal("100.00"), _fee("250000", 5) - 100)
    assert db.session.scalar(select(func.count()).select_from(Audit).where(
        Audit.entity == "charge", Audit.entity_id == str(charge.id), Audit.action == "carry_late_fee"))

    _accrue(db, due + D(days=15))
    [charge] = _late_fees(db, sub_id)
    assert (charge.instalment_id, charge.days, charge.amount) == (new_line.id, 15, _fee("250000", 15))
    owed = _fee("250000", 15) - 100
    assert owed_on_deal(db.session, sub_id) == owed
    assert db.session.scalar(select(func.count()).select_from(Charge).where(charges_owed())) == 1
    sub = db.session.get(Subscription, sub_id)
    # The open lines (the down payment, the loan) and the one late fee.
    assert [a for _, a in owed_before_handover(db.session, sub)] == [Decimal("250000.00"), Decimal("700000.00"), owed]
    finance = _signed_in(app, late["finance"])
    page = finance.get(f"/admin/subscription/details/?id={sub_id}").get_data(as_text=True)
    assert 'id="deal-charges"' in page and page.count('data-step="pay"') == 1


def test_r_aft_1_r_chg_2_a_price_change_carries_the_fee_at_the_new_lines_amount(db, late):
    """A lower price: the new down payment due the same day is smaller; the fee, recomputed on the new
    line by the one definition (its amount, the money carried over with its dates), counts the same
    days once."""
    sub_id = late["sub"].id
    due = TODAY + D(days=15)
    _accrue(db, due + D(days=3))
    _change(db, late, "price", {"price": "990000.00"}, due + D(days=3), deciders=("manager", "vp"))
    new_line = _line(db, sub_id, "down_payment")
    assert new_line.amount_due != Decimal("250000.00")
    [charge] = _late_fees(db, sub_id)
    assert (charge.instalment_id, charge.days, charge.amount) == (new_line.id, 3, _fee(new_line.amount_due, 3))
    _accrue(db, due + D(days=10))
    [charge] = _late_fees(db, sub_id)
    assert (charge.instalment_id, charge.days, charge.amount) == (new_line.id, 10, _fee(new_line.amount_due, 10))
    assert charge.cap == _fee(new_line.amount_due, 10 ** 6)


def test_r_aft_1_r_chg_2_a_late_fee_no_line_carries_lapses_and_is_owed_no_more(app, db, late):
    """The instalment due on day 90 is late; a change to a mortgage leaves no line of the new plan
    accruing late fees due that day (the loan's money is the bank's): its late fee lapses — nothing
    is owed on it, nowhere (the deal page, handover, the owed filter), it cannot be paid or waived."""
    sub_id = late["sub"].id
    due = TODAY + D(days=15)
    record_payment(db.session, late["finance"], sub_id, amount="250000", paid_on=due, channel="bank_transfer",
                   today=due)
    db.session.commit()
    instalment_due = TODAY + D(days=90)
    _accrue(db, instalment_due + D(days=4))
    [charge] = _late_fees(db, sub_id)
    assert charge.days == 4 and charge.outstanding == _fee("300000", 4)

    _change(db, late, "payment_method", {"payment_method": "commercial_mortgage"}, instalment_due + D(days=4))
    [charge] = _late_fees(db, sub_id)
    assert charge.lapsed and charge.instalment.status == "replaced" and charge.outstanding == 0
    assert charge.amount == _fee("300000", 4) and "no line of the new plan" in charge.note
    assert db.session.scalar(select(func.count()).select_from(Audit).where(
        Audit.entity == "charge", Audit.entity_id == str(charge.id), Audit.action == "lapse_late_fee"))
    assert owed_on_deal(db.session, sub_id) == 0
    assert not db.session.scalar(select(func.count()).select_from(Charge).where(charges_owed()))
    sub = db.session.get(Subscription, sub_id)
    late_fee_label = "Late fee"
    assert not [label for label, _ in owed_before_handover(db.session, sub) if label == late_fee_label]
    with raises_rule("R-CHG-2", match="nothing is owed"):
        record_charge_payment(db.session, late["finance"], charge.id, amount="1", paid_on=instalment_due + D(days=4),
                              channel="pos", today=instalment_due + D(days=4))
    db.session.rollback()
    with raises_rule("R-CHG-2", match="nothing is owed"):
        request_waiver(db.session, late["agent"], charge.id, "1", "x")
    db.session.rollback()
    _accrue(db, instalment_due + D(days=30))  # no line of the new plan is late with a fee: nothing new
    assert [c.id for c in _late_fees(db, sub_id)] == [charge.id] and _late_fees(db, sub_id)[0].outstanding == 0
    finance = _signed_in(app, late["finance"])
    page = finance.get(f"/admin/subscription/details/?id={sub_id}").get_data(as_text=True)
    assert 'id="deal-charges"' in page and 'data-step="pay"' not in page


# --- R-PAY-1: a reversal corrects a payment ---------------------------------------------------------

def test_r_aft_1_r_pay_1_a_reversed_payment_and_its_reversal_drop_out_of_the_fee(db, make_deal):
    """The reviewer's numbers: ¥1,000 due on day 0, paid on day 0, the payment reversed on day 20 (the
    money never came): on day 22 the fee is for 22 days (¥11.00), as if never paid — not 2 days. Paid
    again on day 25: 25 days."""
    deal = make_deal(price="51000.00", method="one_off", today=TODAY, staff=STAFF)  # deposit 50,000: balance 1,000
    sub_id = deal["sub"].id
    line = _line(db, sub_id, "balance")
    due = line.due_on
    assert line.amount_due == Decimal("1000.00")
    payment = record_payment(db.session, deal["finance"], sub_id, amount="1000", paid_on=due, channel="bank_transfer",
                             instalment_id=line.id, today=due)
    db.session.commit()
    _accrue(db, due + D(days=10))
    assert _late_fees(db, sub_id) == []  # paid on its due date: no fee
    reverse_payment(db.session, deal["finance"], payment.id, "cheque bounced", today=due + D(days=20))
    db.session.commit()
    _accrue(db, due + D(days=22))
    [charge] = _late_fees(db, sub_id)
    assert (charge.days, charge.amount) == (22, Decimal("11.00"))
    record_payment(db.session, deal["finance"], sub_id, amount="1000", paid_on=due + D(days=25),
                   channel="bank_transfer", instalment_id=line.id, today=due + D(days=25))
    db.session.commit()
    _accrue(db, due + D(days=40))
    [charge] = _late_fees(db, sub_id)
    assert (charge.days, charge.amount) == (25, Decimal("12.50"))
