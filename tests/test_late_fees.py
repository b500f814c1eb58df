"""Late fees (R-AFT-1): accrual by the daily run, collection of any charge, waivers, screens, PDF."""
from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings, strategies as st
from sqlalchemy import func, select

from models import Audit, Notification, Subscription
from models.charges import (Charge, LateFeeWaiver, accrue_late_fees, decide_waiver, late_fee, record_charge_payment,
                            request_waiver, set_late_fee_terms)
from models.ladder import decide_extension, request_extension, run_ladder
from models.payments import Instalment, Payment, open_line, overdue_on, record_payment, reverse_payment, signing_gate
from models.submissions import AlreadySubmitted, new_key
from tests import factories as f
from tests.support.race import race
from tests.support.rules import raises_rule

TODAY = f.TODAY
DUE = TODAY + dt.timedelta(days=7)  # the one-off deal's balance (950,000.00) is due 7 days after subscribing
AMOUNT = Decimal("950000.00")
D = dt.timedelta


@pytest.fixture(autouse=True)
def english(app):
    """Refusals are matched on their English text (the catalog is filled after the merge)."""
    from flask_babel import force_locale
    with app.app_context(), force_locale("en"):
        yield


@pytest.fixture
def deal(db, make_deal):
    deal = make_deal(price="1000000.00", method="one_off", today=TODAY,
                     staff={"control": ("sales_control", None), "finance": ("finance", None),
                            "manager": ("sales_manager", None), "manager2": ("sales_manager", None),
                            "vp": ("vp", None)})
    balance = db.session.scalar(select(Instalment).where(Instalment.subscription_id == deal["sub"].id,
                                                         Instalment.seq == 2))
    assert balance.due_on == DUE and balance.amount_due == AMOUNT
    return {**deal, "balance": balance, "balance_id": balance.id}


def _charge(db, deal):
    db.session.expire_all()
    return db.session.scalar(select(Charge).where(Charge.instalment_id == deal["balance_id"]))


def _accrue(db, day):
    n = accrue_late_fees(db.session, day)
    db.session.commit()
    return n


def _pay(db, deal, amount, paid_on, today=None):
    payment = record_payment(db.session, deal["finance"], deal["sub"].id, amount=amount, paid_on=paid_on,
                             channel="bank_transfer", instalment_id=deal["balance_id"], today=today or paid_on)
    db.session.commit()
    return payment


def _fee(days, amount=AMOUNT, rate="0.05", cap="5"):
    fee = (amount * Decimal(rate) * days / 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return min(fee, (amount * Decimal(cap) / 100).quantize(Decimal("0.01"), ROUND_HALF_UP))


# --- the definition -------------------------------------------------------------------------------

@pytest.mark.parametrize("day, days", [(0, 0), (1, 1), (2, 2), (30, 30)])
def test_r_aft_1_boundary_days_of_the_pure_fee(day, days):
    fee, counted = late_fee(AMOUNT, DUE, [], Decimal("0.05"), Decimal("5"), DUE + D(days=day))
    assert (fee, counted) == (_fee(days), days)


def test_r_aft_1_partial_payments_change_the_balance_from_the_next_day():
    # 3 days on 1000, paid 600 on day 3: then 2 days on 400, paid the rest on day 5.
    fee, days = late_fee(Decimal("1000"), DUE, [(DUE + D(days=3), Decimal("600")), (DUE + D(days=5), Decimal("400"))],
                         Decimal("1"), Decimal("100"), DUE + D(days=30))
    assert days == 5 and fee == Decimal("38.00")  # 1 % × (1000×3 + 400×2)


def test_r_aft_1_rounded_once_at_the_end_and_capped():
    # 0.0333 % × 100.01 × 3 days = 0.09991 → 0.10 (rounding each day would give 0.09)
    assert late_fee(Decimal("100.01"), DUE, [], Decimal("0.0333"), Decimal("5"), DUE + D(days=3))[0] == Decimal("0.10")
    fee, days = late_fee(AMOUNT, DUE, [], Decimal("0.05"), Decimal("5"), DUE + D(days=400))
    assert fee == Decimal("47500.00") and days == 400  # 5 % of the line, not 0.05 % × 400 days


@settings(max_examples=200, deadline=None)
@given(amount=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999999.99"), places=2),
       rate=st.decimals(min_value=Decimal("0"), max_value=Decimal("1"), places=4),
       cap=st.decimals(min_value=Decimal("0"), max_value=Decimal("100"), places=4),
       late=st.integers(min_value=0, max_value=800), paid=st.booleans(), after=st.integers(min_value=0, max_value=60))
def test_r_aft_1_property_fee_is_rate_times_overdue_amount_times_days_capped_to_the_fen(amount, rate, cap, late,
                                                                                       paid, after):
    """A single-payment (paid `late` days late) or unpaid line: rate × amount × days, capped, to the fen."""
    through = DUE + D(days=late + (after if paid else 0))
    payments = [(DUE + D(days=late), amount)] if paid else []
    fee, days = late_fee(amount, DUE, payments, rate, cap, through)
    assert days == late
    assert fee == min((rate * amount * late / 100).quantize(Decimal("0.01"), ROUND_HALF_UP),
                      (amount * cap / 100).quantize(Decimal("0.01"), ROUND_HALF_UP))


# --- the daily run --------------------------------------------------------------------------------

def test_r_aft_1_due_day_costs_nothing_day_after_one_day(db, deal):
    assert _accrue(db, DUE) == 0 and _charge(db, deal) is None
    _accrue(db, DUE + D(days=1))
    charge = _charge(db, deal)
    assert (charge.days, charge.amount, charge.accrued_through) == (1, _fee(1), DUE + D(days=1))
    assert charge.kind == "late_fee" and charge.rate_percent == Decimal("0.05")


def test_r_aft_1_an_extended_due_date_moves_the_start(db, deal):
    extension = request_extension(db.session, deal["agent"], deal["balance_id"], 5, "salary late")
    db.session.commit()
    decide_extension(db.session, deal["manager"], extension.id, True)
    db.session.commit()
    _accrue(db, DUE + D(days=5))
    assert _charge(db, deal) is None
    _accrue(db, DUE + D(days=7))
    assert _charge(db, deal).days == 2


def test_r_aft_1_idempotent_rerun_and_missed_days(db, deal):
    assert _accrue(db, DUE + D(days=3)) == 1
    assert _accrue(db, DUE + D(days=3)) == 0  # run twice the same day: nothing changes
    _accrue(db, DUE + D(days=10))  # days 4..9 were missed: counted all the same
    charge = _charge(db, deal)
    assert (charge.days, charge.amount) == (10, _fee(10))
    assert db.session.scalar(select(func.count()).select_from(Charge)) == 1
    assert db.session.scalar(select(func.count()).select_from(Audit).where(
        Audit.entity == "charge", Audit.action == "accrue_late_fee")) == 2


def test_r_aft_1_paid_late_then_final_and_a_back_dated_payment(db, deal):
    _accrue(db, DUE + D(days=2))
    _pay(db, deal, "950000", DUE + D(days=4), today=DUE + D(days=5))  # paid on day 4, recorded on day 5
    _accrue(db, DUE + D(days=6))
    assert (_charge(db, deal).days, _charge(db, deal).amount) == (4, _fee(4))
    _accrue(db, DUE + D(days=20))  # final: a paid line accrues no more
    assert (_charge(db, deal).days, _charge(db, deal).amount) == (4, _fee(4))


def test_r_aft_1_a_back_dated_payment_under_what_was_paid_keeps_amount_at_waived_plus_paid(db, deal):
    _accrue(db, DUE + D(days=10))
    charge = _charge(db, deal)
    record_charge_payment(db.session, deal["finance"], charge.id, amount=charge.amount, paid_on=DUE + D(days=10),
                          channel="pos", today=DUE + D(days=10))
    db.session.commit()
    # The money had come on day 2 (the bank's statement, back-dated): the fee is 2 days', already paid 10.
    _pay(db, deal, "950000", DUE + D(days=2), today=DUE + D(days=11))
    _accrue(db, DUE + D(days=11))
    charge = _charge(db, deal)
    assert charge.amount == charge.paid == _fee(10) and charge.days == 2 and charge.outstanding == 0
    assert charge.note


def test_r_aft_1_a_reversal_raises_the_fee_again(db, deal):
    payment = _pay(db, deal, "950000", DUE + D(days=1))
    _accrue(db, DUE + D(days=3))
    assert _charge(db, deal).days == 1
    reverse_payment(db.session, deal["finance"], payment.id, "bounced", today=DUE + D(days=3))
    db.session.commit()
    _accrue(db, DUE + D(days=6))
    # The reversed payment never arrived (R-PAY-1): it and its reversal drop out, every day counts.
    charge = _charge(db, deal)
    assert charge.days == 6 and charge.amount == _fee(6)


def test_r_aft_1_deal_terms_override_the_project(db, deal):
    set_late_fee_terms(db.session, deal["manager"], deal["sub"].id, "0.1", "1", "agreement art. 8")
    db.session.commit()
    _accrue(db, DUE + D(days=200))
    charge = _charge(db, deal)
    assert charge.rate_percent == Decimal("0.1") and charge.amount == _fee(200, rate="0.1", cap="1") == Decimal("9500.00")
    with raises_rule("R-ALL-1"):
        set_late_fee_terms(db.session, deal["agent"], deal["sub"].id, "0.1", "1", "x")


def test_r_aft_1_loan_lines_and_the_deposit_never_accrue(db, make_deal):
    deal = make_deal(price="1000000.00", method="commercial_mortgage", today=TODAY)
    lines = db.session.scalars(select(Instalment).where(Instalment.subscription_id == deal["sub"].id)).all()
    assert {l.kind for l in lines} & {"commercial_loan", "provident_fund_loan"}
    _accrue(db, TODAY + D(days=400))
    kinds = set(db.session.scalars(select(Instalment.kind).join(Charge, Charge.instalment_id == Instalment.id)))
    assert kinds and not kinds & {"deposit", "commercial_loan", "provident_fund_loan"}


def test_r_aft_1_the_daily_run_accrues_after_the_ladder_and_dry_run_writes_nothing(db, deal):
    counts = run_ladder(db.session, DUE + D(days=3), dry_run=True)
    assert counts["late_fee"] == 1 and _charge(db, deal) is None
    counts = run_ladder(db.session, DUE + D(days=3))
    assert counts["late_fee"] == 1 and _charge(db, deal).days == 3
    assert run_ladder(db.session, DUE + D(days=3))["late_fee"] == 0


def test_r_aft_1_a_paid_instalment_stays_paid_and_the_signing_gate_is_unchanged(db, deal):
    _accrue(db, DUE + D(days=5))
    _pay(db, deal, "950000", DUE + D(days=5))
    sub = db.session.get(Subscription, deal["sub"].id)
    gate = signing_gate(db.session, sub)
    _accrue(db, DUE + D(days=9))
    assert _charge(db, deal).outstanding > 0
    line = db.session.get(Instalment, deal["balance_id"])
    assert line.status == "paid" and line.amount_paid == line.amount_due
    assert not db.session.scalar(select(func.count()).select_from(Instalment).where(
        Instalment.id == line.id, open_line()))
    assert not db.session.scalar(select(func.count()).select_from(Instalment).where(
        Instalment.id == line.id, overdue_on(DUE + D(days=9))))
    assert signing_gate(db.session, db.session.get(Subscription, deal["sub"].id)) == gate


# --- collection --------------------------------------------------------------------------------------

def test_r_aft_1_payment_of_a_charge_and_its_reversal(db, deal):
    _accrue(db, DUE + D(days=10))
    charge = _charge(db, deal)
    with raises_rule("R-ALL-1"):
        record_charge_payment(db.session, deal["agent"], charge.id, amount="1", paid_on=DUE, channel="pos")
    with raises_rule("R-AFT-1"):
        record_charge_payment(db.session, deal["finance"], charge.id, amount=charge.amount + 1,
                              paid_on=DUE + D(days=10), channel="pos", today=DUE + D(days=10))
    db.session.rollback()
    key = new_key()
    payment = record_charge_payment(db.session, deal["finance"], charge.id, amount="1000", paid_on=DUE + D(days=10),
                                    channel="pos", key=key, today=DUE + D(days=10))
    db.session.commit()
    assert payment.charge_id == charge.id and payment.receipt_no and not payment.allocations
    with pytest.raises(AlreadySubmitted):
        record_charge_payment(db.session, deal["finance"], charge.id, amount="1000", paid_on=DUE + D(days=10),
                              channel="pos", key=key, today=DUE + D(days=10))
    db.session.rollback()
    assert _charge(db, deal).paid == Decimal("1000.00")
    line = db.session.get(Instalment, deal["balance_id"])
    assert line.amount_paid == 0  # the plan is untouched
    reversal = reverse_payment(db.session, deal["finance"], payment.id, "wrong deal", today=DUE + D(days=11))
    db.session.commit()
    assert reversal.charge_id == charge.id and reversal.amount == Decimal("-1000.00")
    assert _charge(db, deal).paid == 0


# --- waivers -----------------------------------------------------------------------------------------

def _waive(db, who, charge, amount, approve_by=None, approve=True):
    waiver = request_waiver(db.session, who, charge.id, amount, "good customer")
    db.session.commit()
    if approve_by is not None:
        decide_waiver(db.session, approve_by, waiver.id, approve)
        db.session.commit()
    return waiver


def test_r_aft_1_waiver_by_the_manager_within_the_limit(db, deal):
    _accrue(db, DUE + D(days=10))  # 4,750.00
    charge = _charge(db, deal)
    waiver = _waive(db, deal["agent"], charge, "1500", approve_by=deal["manager"])
    assert db.session.get(LateFeeWaiver, waiver.id).status == "approved"
    assert _charge(db, deal).waived == Decimal("1500.00")
    assert db.session.scalar(select(Notification).where(Notification.user_id == deal["agent"].id,
                                                        Notification.kind == "late_fee_waiver_decided"))


def test_r_aft_1_three_small_waivers_beyond_the_limit_in_total_need_the_vp(db, deal):
    _accrue(db, DUE + D(days=10))  # limit 2,000.00 per deal
    charge = _charge(db, deal)
    _waive(db, deal["agent"], charge, "800", approve_by=deal["manager"])
    _waive(db, deal["agent"], charge, "800", approve_by=deal["manager"])
    third = _waive(db, deal["agent"], charge, "800")
    assert db.session.get(LateFeeWaiver, third.id).needs_vp
    assert db.session.scalar(select(Notification).where(Notification.user_id == deal["vp"].id,
                                                        Notification.kind == "late_fee_waiver_requested"))
    with raises_rule("R-AFT-1", match="vice-president"):
        decide_waiver(db.session, deal["manager"], third.id, True)
    db.session.rollback()
    decide_waiver(db.session, deal["vp"], third.id, True)
    db.session.commit()
    assert _charge(db, deal).waived == Decimal("2400.00")


def test_r_aft_1_the_requester_never_decides_and_more_than_outstanding_is_refused(db, deal):
    _accrue(db, DUE + D(days=2))  # 950.00
    charge = _charge(db, deal)
    with raises_rule("R-AFT-1"):
        request_waiver(db.session, deal["manager"], charge.id, "950.01", "too much")
    db.session.rollback()
    waiver = _waive(db, deal["manager"], charge, "500")
    with raises_rule("R-AFT-1", match="someone else"):
        decide_waiver(db.session, deal["manager"], waiver.id, True)
    db.session.rollback()
    with raises_rule("R-AFT-1", match="already waiting"):
        request_waiver(db.session, deal["agent"], charge.id, "100", "again")
    db.session.rollback()
    # A payment comes in before the decision: the waiver is re-checked against what is outstanding now.
    record_charge_payment(db.session, deal["finance"], charge.id, amount="700", paid_on=DUE + D(days=2),
                          channel="pos", today=DUE + D(days=2))
    db.session.commit()
    with raises_rule("R-AFT-1", match="outstanding"):
        decide_waiver(db.session, deal["manager2"], waiver.id, True)
    db.session.rollback()


def test_r_aft_1_a_double_decision_decides_once(db, deal):
    _accrue(db, DUE + D(days=2))
    waiver = _waive(db, deal["agent"], _charge(db, deal), "100")
    decide_waiver(db.session, deal["manager"], waiver.id, True)
    db.session.commit()
    with raises_rule("R-AFT-1", match="already decided"):
        decide_waiver(db.session, deal["manager2"], waiver.id, True)
    db.session.rollback()
    assert _charge(db, deal).waived == Decimal("100.00")


def test_r_aft_1_waivers_only_on_late_fees(db, deal):
    from models.charges import add_charge
    charge = add_charge(db.session, db.session.get(Subscription, deal["sub"].id), "area_true_up", Decimal("100"))
    db.session.commit()
    with raises_rule("R-AFT-1", match="Only a late fee"):
        request_waiver(db.session, deal["manager"], charge.id, "10", "no")


@pytest.mark.postgres
def test_r_aft_1_a_charge_payment_racing_a_waiver_never_settles_more_than_the_amount(app, db, deal):
    from models import User
    for n in range(4):
        _accrue(db, DUE + D(days=2 + 3 * n))  # 950.00 more each time: both ask for all that is outstanding
        charge_id, outstanding = _charge(db, deal).id, _charge(db, deal).outstanding
        waiver_id = _waive(db, deal["agent"], db.session.get(Charge, charge_id), outstanding).id

        def pay(session):
            p = record_charge_payment(session, session.get(User, deal["finance"].id), charge_id, amount=outstanding,
                                      paid_on=DUE + D(days=2), channel="pos", today=DUE + D(days=2 + 3 * n))
            session.commit()
            return p.id

        def decide(session):
            w = decide_waiver(session, session.get(User, deal["vp"].id), waiver_id, True)  # any total
            session.commit()
            return w.status

        results = race(pay, decide, app=app, expected=(Exception,))
        charge = _charge(db, deal)
        assert charge.waived + charge.paid == charge.amount, results  # one of the two, never both
        assert sum(1 for r in results if not isinstance(r, Exception)) == 1, results
        waiver = db.session.get(LateFeeWaiver, waiver_id)
        if waiver.status == "requested":
            decide_waiver(db.session, deal["vp"], waiver_id, False)
            db.session.commit()


# --- documents ---------------------------------------------------------------------------------------

def _pdf_text(data: bytes, tmp_path, name: str) -> str:
    import subprocess
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(data)
    out = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout
    return "".join(out.split())


def test_r_aft_1_the_statement_shows_the_late_fee_per_line_and_the_total_owed(db, deal, tmp_path):
    import pdf
    from models.documents import document_context
    _accrue(db, DUE + D(days=10))  # 4,750.00 on line 2
    charge = _charge(db, deal)
    waiver = _waive(db, deal["agent"], charge, "750", approve_by=deal["manager"])
    assert waiver.status == "requested" or db.session.get(LateFeeWaiver, waiver.id).status == "approved"
    record_charge_payment(db.session, deal["finance"], charge.id, amount="1000", paid_on=DUE + D(days=10),
                          channel="pos", today=DUE + D(days=10))
    db.session.commit()
    text = _pdf_text(pdf.render("statement", document_context(db.session, "statement", deal["sub"].lead_id)),
                     tmp_path, "statement")
    assert "滞纳金" in text and "第2期" in text
    for figure in ("4,750.00", "750.00", "1,000.00", "3,000.00", "0.05%"):
        assert figure in text, figure
    assert "953,000.00" in text  # 950,000.00 of the plan + 3,000.00 of late fee still owed


def test_r_aft_1_the_receipt_of_a_late_fee_names_it(db, deal, tmp_path):
    import pdf
    from models.documents import document_context
    _accrue(db, DUE + D(days=10))
    payment = record_charge_payment(db.session, deal["finance"], _charge(db, deal).id, amount="1000",
                                    paid_on=DUE + D(days=10), channel="pos", today=DUE + D(days=10))
    db.session.commit()
    text = _pdf_text(pdf.render("receipt", document_context(db.session, "receipt", payment.id)), tmp_path, "receipt")
    assert "滞纳金（第2期逾期）" in text and payment.receipt_no in text and "1,000.00" in text


# --- screens -----------------------------------------------------------------------------------------

def _signed_in(app, user):
    from tests.conftest import Auth
    client = app.test_client()
    assert Auth(client).login(user.username).status_code == 302
    return client, Auth(client).csrf()


def test_r_aft_1_screens_grid_deal_section_pay_and_waive_through_the_client(app, db, deal, make_user):
    from models.base import office_today
    from models.money import format_money
    from tests.conftest import submission_key
    today = office_today()
    assert today > DUE + D(days=1), "the suite's deal is due before the real today"
    _accrue(db, today)
    charge = _charge(db, deal)
    owed = format_money(charge.amount)
    finance, token = _signed_in(app, deal["finance"])
    grid = finance.get("/admin/charge/").get_data(as_text=True)
    assert owed in grid and deal["sub"].number in grid and 'data-step="pay"' in grid
    assert owed in finance.get("/admin/instalment/").get_data(as_text=True)  # the plan grid's Late fee column
    page = finance.get(f"/admin/subscription/details/?id={deal['sub'].id}").get_data(as_text=True)
    assert 'id="deal-charges"' in page and 'data-step="pay"' in page and 'data-step="waive"' in page
    assert owed in finance.get("/admin/").get_data(as_text=True)  # finance's panel: late fees outstanding
    form = finance.post("/admin/charge/action/", data={"csrf_token": token, "action": "pay", "rowid": charge.id})
    key = submission_key(form.get_data(as_text=True))
    data = {"csrf_token": token, "ids": str(charge.id), "amount": "100.00", "paid_on": today.isoformat(),
            "channel": "pos", "bank_ref": "", "submission_key": key}
    assert finance.post("/admin/charge/pay/", data=data).status_code == 302
    finance.post("/admin/charge/pay/", data=data)  # a double click: recorded once
    assert db.session.scalar(select(func.count()).select_from(Payment).where(Payment.charge_id == charge.id)) == 1
    assert _charge(db, deal).paid == Decimal("100.00")

    agent, agent_token = _signed_in(app, deal["agent"])
    page = agent.get(f"/admin/subscription/details/?id={deal['sub'].id}").get_data(as_text=True)
    assert 'data-step="waive"' in page and 'data-step="pay"' not in page
    agent.post("/admin/charge/action/", data={"csrf_token": agent_token, "action": "waive", "rowid": charge.id})
    agent.post("/admin/charge/waive/", data={"csrf_token": agent_token, "ids": str(charge.id), "amount": "50",
                                             "reason": "customer in hospital"})
    waiver = db.session.scalar(select(LateFeeWaiver))
    assert waiver.amount == Decimal("50.00") and waiver.requested_by_id == deal["agent"].id
    other = make_user("agent")
    stranger, _ = _signed_in(app, other)
    assert deal["sub"].number not in stranger.get("/admin/charge/").get_data(as_text=True)  # scoped to the agent

    manager, manager_token = _signed_in(app, deal["manager"])
    home = manager.get("/admin/").get_data(as_text=True)
    assert "/admin/late_fee_waiver/?flt0_0=requested" in home
    assert 'data-step="approve"' in manager.get("/admin/late_fee_waiver/").get_data(as_text=True)
    manager.post("/admin/late_fee_waiver/action/", data={"csrf_token": manager_token, "action": "approve",
                                                         "rowid": waiver.id})
    db.session.expire_all()
    assert db.session.get(LateFeeWaiver, waiver.id).status == "approved"
    assert _charge(db, deal).waived == Decimal("50.00")
    vp, _ = _signed_in(app, deal["vp"])
    assert "/admin/late_fee_waiver/?flt0_0=requested" not in vp.get("/admin/").get_data(as_text=True)



# --- the set-based path (models.dialect.insert_rows / rows_as_json) ---------------------------------
# On PostgreSQL, from MANY_FROM rows, the charges, events and audit rows go as one JSON parameter;
# MANY_FROM = 1 sends these tests' few rows that way (on SQLite the path is the ordinary one).

@pytest.fixture
def many(monkeypatch):
    import models.dialect
    monkeypatch.setattr(models.dialect, "MANY_FROM", 1)


def test_r_aft_1_set_based_path_gives_the_same_charges_and_audit_rows(db, deal, many):
    assert _accrue(db, DUE + D(days=3)) == 1
    assert _accrue(db, DUE + D(days=3)) == 0  # idempotent
    charge = _charge(db, deal)
    assert (charge.days, charge.amount, charge.cap, charge.accrued_through, charge.due_on, charge.waived, charge.note) \
        == (3, _fee(3), _fee(10_000), DUE + D(days=3), DUE + D(days=3), 0, "")
    _accrue(db, DUE + D(days=10))
    charge = _charge(db, deal)
    assert (charge.days, charge.amount) == (10, _fee(10))
    created, changed = db.session.scalars(select(Audit).where(Audit.entity == "charge", Audit.action == "accrue_late_fee")
                                          .order_by(Audit.id)).all()
    assert created.entity_id == changed.entity_id == str(charge.id)
    assert created.changes == {"kind": [None, "late_fee"], "instalment_id": [None, deal["balance_id"]],
                               "amount": [None, str(_fee(3))], "days": [None, 3]}
    assert changed.changes == {"amount": [str(_fee(3)), str(_fee(10))], "days": [3, 10]}
    # The ladder's events and their audit rows took the same path.
    run_ladder(db.session, DUE + D(days=10))
    events = db.session.scalars(select(Audit).where(Audit.entity == "overdue_event")).all()
    assert {a.changes["level"][1] for a in events} >= {"warning", "lawyer_letter"}
    assert all(a.changes["instalment_id"] == [None, deal["balance_id"]] for a in events)


def test_r_aft_1_set_based_path_keeps_the_amount_at_waived_plus_paid(db, deal, many):
    _accrue(db, DUE + D(days=10))
    charge = _charge(db, deal)
    record_charge_payment(db.session, deal["finance"], charge.id, amount=charge.amount, paid_on=DUE + D(days=10),
                          channel="pos", today=DUE + D(days=10))
    db.session.commit()
    _pay(db, deal, "950000", DUE + D(days=2), today=DUE + D(days=11))
    _accrue(db, DUE + D(days=11))
    charge = _charge(db, deal)
    assert charge.amount == charge.paid == _fee(10) and charge.days == 2 and charge.outstanding == 0
    assert charge.note.startswith("A back-dated payment")


@pytest.mark.postgres
def test_r_aft_1_two_daily_runs_at_once_write_one_charge_on_the_set_based_path(app, db, deal, many):
    def accrue(session):
        n = accrue_late_fees(session, DUE + D(days=4))
        session.commit()
        return n

    results = race(accrue, accrue, app=app)
    assert sorted(results) == [0, 1] or results == [1, 1], results  # the loser skips (ON CONFLICT) or recomputes
    assert db.session.scalar(select(func.count()).select_from(Charge)) == 1
    assert (_charge(db, deal).days, _charge(db, deal).amount) == (4, _fee(4))
    assert db.session.scalar(select(func.count()).select_from(Audit).where(
        Audit.entity == "charge", Audit.action == "accrue_late_fee")) == 1


def test_r_aft_3_add_charges_writes_many_in_one_statement_audited_in_order(db, deal):
    """charges.add_charges (a true-up batch's charges): every row written, the ids in the rows'
    order, one audit row each named by the caller's audit_context."""
    from models.audit import audit_context
    from models.charges import add_charges
    sub = db.session.get(Subscription, deal["sub"].id)
    rows = [{"project_id": sub.project_id, "subscription_id": sub.id, "kind": "area_true_up",
             "amount": Decimal(n), "note": f"n{n}"} for n in range(1, 131)]  # ≥ MANY_FROM: the JSON path
    with audit_context(db.session, actor=deal["finance"], action="true_up_apply"):
        ids = add_charges(db.session, rows)
    db.session.commit()
    assert len(set(ids)) == 130
    assert [(db.session.get(Charge, i).amount, db.session.get(Charge, i).note) for i in ids] == \
        [(Decimal(n), f"n{n}") for n in range(1, 131)]
    audits = db.session.scalars(select(Audit).where(Audit.entity == "charge",
                                                    Audit.entity_id.in_([str(i) for i in ids]))).all()
    assert len(audits) == 130 and {a.action for a in audits} == {"true_up_apply"}
    assert {a.actor_id for a in audits} == {deal["finance"].id}
    assert {a.changes["amount"][1] for a in audits} == {f"{n}.00" for n in range(1, 131)}
    with pytest.raises(ValueError):
        add_charges(db.session, [{**rows[0], "kind": "gift"}])
