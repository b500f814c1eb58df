"""Payment plans, payments and reversals (R-PAY-1, R-PAY-2, R-PAY-3)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, select

from models import Instalment, Payment, PaymentAllocation
from models.payments import (generate_plan, note_on_instalment, plan_lines, record_payment,
                             reverse_payment, validate_method_lines)
from tests import factories as f
from tests.support.rules import raises_rule
from tests.conftest import Auth

TODAY = dt.date(2026, 11, 26)


@pytest.fixture
def deal(make_deal):
    """An active subscription (deposit in) on a unit of 1,500,000.00, commercial mortgage."""
    return make_deal(price="1500000.00", method="commercial_mortgage", today=TODAY,
                     staff={"control": ("sales_control", "chen"), "finance": ("finance", "zhao"),
                            "manager": ("sales_manager", None), "vp": ("vp", None)})


def _lines(db, sub_id):
    return db.session.scalars(select(Instalment).where(Instalment.subscription_id == sub_id)
                              .order_by(Instalment.seq)).all()


# --- R-PAY-2: plans ---------------------------------------------------------------------------

def test_r_pay_2_the_plan_comes_with_the_subscription_and_sums_to_the_price(db, deal):
    lines = _lines(db, deal["sub"].id)
    assert [(l.kind, l.due_on, l.amount_due) for l in lines] == [
        ("deposit", TODAY, Decimal("50000.00")),
        ("down_payment", TODAY + dt.timedelta(days=15), Decimal("400000.00")),  # 30 % less the deposit
        ("commercial_loan", TODAY + dt.timedelta(days=60), Decimal("1050000.00")),
    ]
    assert lines[0].status == "paid" and lines[0].amount_paid == Decimal("50000.00")


class _Line:
    def __init__(self, kind="balance", percent=None, fixed_amount=None, due_offset_days=7, due_on=None):
        self.kind, self.percent, self.fixed_amount = kind, percent, fixed_amount
        self.due_offset_days, self.due_on = due_offset_days, due_on


@settings(max_examples=300, deadline=None)
@given(price=st.decimals(min_value=Decimal("100000"), max_value=Decimal("99999999.99"), places=2),
       deposit=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("20000"), places=2),
       cuts=st.lists(st.integers(min_value=1, max_value=9999), min_size=1, max_size=6))
def test_r_pay_2_plans_of_awkward_prices_round_to_the_fen_and_sum_to_the_price(price, deposit, cuts):
    # Percentages with up to two decimals that add up to exactly 100 %.
    weights = [Decimal(c) for c in cuts]
    percents = [(w * 100 / sum(weights)).quantize(Decimal("0.01")) for w in weights]
    percents[-1] += Decimal("100") - sum(percents)
    if any(p <= 0 for p in percents) or percents[0] * price / 100 <= deposit:
        return
    lines = [_Line("instalment", percent=p, due_offset_days=10 * i) for i, p in enumerate(percents)]
    plan = plan_lines(price, deposit, TODAY, TODAY, lines)
    assert sum(a for _, _, a in plan) == price
    assert all(a > 0 and a == a.quantize(Decimal("0.01")) for _, _, a in plan)
    assert plan[0] == ("deposit", TODAY, deposit)


@pytest.mark.parametrize("lines, message", [
    ([_Line(percent=Decimal("60")), _Line(percent=Decimal("30"))], "90"),
    ([_Line(percent=Decimal("70")), _Line(percent=Decimal("40"))], "110"),
    ([], "至少"),
    ([_Line(percent=Decimal("100"), fixed_amount=Decimal("5"))], "百分比"),
    ([_Line(percent=Decimal("100"), due_offset_days=-3)], "负"),
])
def test_r_pay_2_a_method_whose_lines_do_not_sum_to_100_percent_is_refused(app, lines, message):
    from flask_babel import force_locale
    with raises_rule("R-PAY-2") as refused:
        validate_method_lines(lines)
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        assert message in str(refused.value), str(refused.value)


def test_r_pay_7_each_project_has_its_own_methods(db, deal):
    from models import PaymentMethodTemplate
    other = f.project(db.session)
    method = db.session.scalar(select(PaymentMethodTemplate).where(
        PaymentMethodTemplate.project_id == other.id, PaymentMethodTemplate.code == "one_off"))
    method.lines[0].due_offset_days = 30
    db.session.commit()
    first = db.session.scalar(select(PaymentMethodTemplate).where(
        PaymentMethodTemplate.project_id == deal["project"].id, PaymentMethodTemplate.code == "one_off"))
    assert first.lines[0].due_offset_days == 7


def test_r_pay_2_the_plan_is_regenerated_only_while_nothing_is_paid(db, deal):
    with raises_rule("R-PAY-2"):
        generate_plan(db.session, deal["sub"])  # the deposit is paid


# --- R-PAY-1: payments ------------------------------------------------------------------------

def test_r_pay_1_a_payment_goes_to_the_oldest_open_instalments(db, deal):
    payment = record_payment(db.session, deal["finance"], deal["sub"].id, amount="450000.00",
                             paid_on=TODAY, channel="bank_transfer", bank_ref="ICBC-9", today=TODAY)
    db.session.commit()
    lines = _lines(db, deal["sub"].id)
    assert [l.status for l in lines] == ["paid", "paid", "partly_paid"]
    assert lines[2].amount_paid == Decimal("50000.00")
    assert payment.receipt_no == "SJ-XJ-000002"  # the deposit had 000001
    allocations = db.session.scalars(select(PaymentAllocation.amount).where(
        PaymentAllocation.payment_id == payment.id)).all()
    assert sorted(allocations) == [Decimal("50000.00"), Decimal("400000.00")]


def test_r_pay_1_balances_are_the_sums_of_the_allocations(db, deal):
    record_payment(db.session, deal["finance"], deal["sub"].id, amount="123456.78", paid_on=TODAY,
                   channel="pos", today=TODAY)
    db.session.commit()
    for line in _lines(db, deal["sub"].id):
        allocated = db.session.scalar(select(func.coalesce(func.sum(PaymentAllocation.amount), 0)).where(
            PaymentAllocation.instalment_id == line.id))
        assert line.amount_paid == Decimal(allocated)


def test_r_pay_1_a_payment_to_a_chosen_instalment(db, deal):
    loan = _lines(db, deal["sub"].id)[2]
    record_payment(db.session, deal["finance"], deal["sub"].id, amount="1000", paid_on=TODAY,
                   channel="loan_disbursement", instalment_id=loan.id, today=TODAY)
    assert [l.status for l in _lines(db, deal["sub"].id)] == ["paid", "pending", "partly_paid"]


@pytest.mark.parametrize("kw, message", [
    ({"amount": "-5"}, "大于零"),
    ({"amount": "0"}, "大于零"),
    ({"amount": "五万"}, "金额"),
    ({"amount": "1450000.01"}, "1,450,000.00"),  # over the balance, which is shown
    ({"paid_on": TODAY - dt.timedelta(days=1)}, "日期"),
    ({"paid_on": TODAY + dt.timedelta(days=1)}, "日期"),
    ({"bank_ref": "DUP"}, "DUP"),
])
def test_r_pay_1_bad_payments_are_refused_clearly_and_nothing_is_written(app, db, deal, kw, message):
    from flask_babel import force_locale
    if kw.get("bank_ref") == "DUP":
        record_payment(db.session, deal["finance"], deal["sub"].id, amount="10", paid_on=TODAY,
                       channel="pos", bank_ref="DUP", today=TODAY)
        db.session.commit()
    before = db.session.scalar(select(func.count()).select_from(Payment))
    args = {"amount": "1000", "paid_on": TODAY, "channel": "pos", "today": TODAY, **kw}
    with raises_rule("R-PAY-1") as refused:
        record_payment(db.session, deal["finance"], deal["sub"].id, **args)
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        assert message in str(refused.value), str(refused.value)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Payment)) == before


def test_r_pay_1_only_finance_records_payments(db, deal):
    for who in ("agent", "manager", "control"):
        with raises_rule("R-ALL-1"):
            record_payment(db.session, deal[who], deal["sub"].id, amount="1000", paid_on=TODAY,
                           channel="pos", today=TODAY)


def test_r_pay_1_a_reversal_restores_the_balance_and_keeps_the_original(db, deal):
    payment = record_payment(db.session, deal["finance"], deal["sub"].id, amount="450000.00",
                             paid_on=TODAY, channel="pos", today=TODAY)
    db.session.commit()
    reversal = reverse_payment(db.session, deal["finance"], payment.id, "银行退票", today=TODAY)
    db.session.commit()
    assert reversal.amount == Decimal("-450000.00") and reversal.reverses_id == payment.id
    assert db.session.get(Payment, payment.id).amount == Decimal("450000.00")  # kept as it was
    assert [l.status for l in _lines(db, deal["sub"].id)] == ["paid", "pending", "pending"]
    with raises_rule("R-PAY-1"):
        reverse_payment(db.session, deal["finance"], payment.id, "再冲一次", today=TODAY)
    db.session.rollback()
    with raises_rule("R-PAY-1"):
        reverse_payment(db.session, deal["finance"], reversal.id, "冲红字", today=TODAY)


def test_r_pay_1_nothing_deletes_a_payment(client, db, deal, login_as):
    payment_id = db.session.scalar(select(Payment.id))
    db.session.delete(db.session.get(Payment, payment_id))
    with raises_rule("R-ALL-2"):  # nothing is lost
        db.session.flush()
    db.session.rollback()
    for role in ("admin", "finance"):
        login_as(role)
        token = Auth(client).csrf()
        assert client.post("/admin/payment/delete/", data={"csrf_token": token, "id": payment_id}).status_code == 403
        response = client.post("/admin/payment/action/", data={"csrf_token": token, "action": "delete",
                                                               "rowid": payment_id})
        assert response.status_code in (302, 403)
        Auth(client).logout()
    db.session.expire_all()
    assert db.session.get(Payment, payment_id) is not None


# --- R-PAY-3 / R-PAY-8: agents read their customers' plans and record what customers say -------

def test_r_pay_3_agents_see_their_own_customers_plans_and_payments_only(client, db, deal, make_user):
    other = make_user("agent", username="zhang")
    Auth(client).login("li")
    assert deal["sub"].number in client.get("/admin/instalment/").get_data(as_text=True)
    assert "SJ-XJ-000001" in client.get("/admin/payment/").get_data(as_text=True)
    assert client.get("/admin/payment/new/").status_code == 403
    Auth(client).logout()
    Auth(client).login("zhang")
    assert deal["sub"].number not in client.get("/admin/instalment/").get_data(as_text=True)
    assert "SJ-XJ-000001" not in client.get("/admin/payment/").get_data(as_text=True)
    assert other


def test_r_pay_8_the_agent_records_what_the_customer_said(db, deal, make_user):
    line = _lines(db, deal["sub"].id)[1]
    note_on_instalment(db.session, deal["agent"], line.id, "客户说月底前付首付", today=TODAY)
    db.session.commit()
    assert "客户说月底前付首付" in db.session.get(Instalment, line.id).agent_note
    with raises_rule("R-PAY-3"):
        note_on_instalment(db.session, make_user("agent"), line.id, "不是我的客户", today=TODAY)


# --- R-PAY-1: allocation, property-based --------------------------------------------------------

@pytest.fixture
def staff(db, make_user):
    return {"agent": make_user("agent", username="pa"), "control": make_user("sales_control", username="pc"),
            "finance": make_user("finance", username="pf")}


def _fresh_deal(db, staff, price):
    from models.deals import confirm_subscription, subscribe
    from models.payments import record_deposit
    project = f.project(db.session)
    unit = f.unit(db.session, f.building(db.session, project), list_price=price)
    lead = f.lead(db.session, owner=staff["agent"], project_=project)
    sub = subscribe(db.session, staff["agent"], unit_id=unit.id, lead_id=lead.id, payment_method="instalments",
                    deposit="50000", id_number=f.VALID_ID_NUMBER, address="长沙", subscribed_on=TODAY,
                    today=TODAY)
    confirm_subscription(db.session, staff["control"], sub.id)
    record_deposit(db.session, staff["finance"], sub.id, amount="50000", paid_on=TODAY, channel="pos",
                   today=TODAY)
    db.session.commit()
    return sub


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(price=st.decimals(min_value=Decimal("300000"), max_value=Decimal("9999999.99"), places=2),
       steps=st.lists(st.tuples(st.sampled_from(["pay", "pay", "pay", "reverse", "overpay"]),
                                st.floats(min_value=0.0001, max_value=1.0)), min_size=1, max_size=8))
def test_r_pay_1_any_sequence_of_payments_and_reversals_keeps_every_balance_exact(db, staff, price, steps):
    """Whatever is paid and reversed, in whatever order: each line holds between nothing and its
    amount, each payment is allocated exactly, the lines' paid amounts are the net payments, and
    without reversals the money fills the oldest lines first. A payment above the balance is
    refused and writes nothing."""
    sub = _fresh_deal(db, staff, price)
    reversed_any = False
    for action, fraction in steps:
        lines = _lines(db, sub.id)
        balance = sum(l.amount_due - l.amount_paid for l in lines)
        live = db.session.scalars(select(Payment).where(
            Payment.subscription_id == sub.id, Payment.reverses_id.is_(None),
            ~Payment.id.in_(select(Payment.reverses_id).where(Payment.reverses_id.is_not(None))))).all()
        if action == "pay" and balance > 0:
            amount = max(Decimal("0.01"), (balance * Decimal(str(fraction))).quantize(Decimal("0.01")))
            record_payment(db.session, staff["finance"], sub.id, amount=str(min(amount, balance)),
                           paid_on=TODAY, channel="cash", today=TODAY)
        elif action == "reverse" and live:
            chosen = live[int(fraction * len(live)) % len(live)]
            reverse_payment(db.session, staff["finance"], chosen.id, "更正", today=TODAY)
            reversed_any = True
        elif action == "overpay":
            with raises_rule("R-PAY-1"):
                record_payment(db.session, staff["finance"], sub.id, amount=str(balance + Decimal("0.01")),
                               paid_on=TODAY, channel="cash", today=TODAY)
            db.session.rollback()
        db.session.commit()
        lines = _lines(db, sub.id)
        assert all(Decimal("0") <= l.amount_paid <= l.amount_due for l in lines)
        assert all(l.status == ("paid" if l.amount_paid == l.amount_due else "partly_paid" if l.amount_paid
                                else "pending") for l in lines)
        payments = db.session.scalars(select(Payment).where(Payment.subscription_id == sub.id)).all()
        assert sum(l.amount_paid for l in lines) == sum(p.amount for p in payments)
        for payment in payments:
            allocated = db.session.scalar(select(func.sum(PaymentAllocation.amount)).where(
                PaymentAllocation.payment_id == payment.id))
            assert allocated == payment.amount
        if not reversed_any:  # oldest first: no line has money while an older one is short
            paid = [l.amount_paid > 0 for l in lines]
            full = [l.amount_paid == l.amount_due for l in lines]
            assert all(full[i] for i in range(len(lines)) if any(paid[i + 1:]))
