"""Deal changes meet the after-contract features (issue 22 review, findings 2, 3, 7, 8): a unit swap
voids the old unit's true-up and its charge (R-AFT-3, R-CHG-2); a handed-over home is not cancelled
(R-AFT-4); a cancellation beyond ±3 % refunds the price paid with its interest (R-AFT-3, art. 20);
mortgage files follow a plan change (R-AFT-2, R-CHG-2). Through request_change / decide_change, the
path the change screens take."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from models import Charge, ChangeRequest, Subscription, TrueUp, Unit
from models.change_requests import decide_change, request_change
from models.charges import charges_owed, owed_on_deal, record_charge_payment
from models.handovers import hand_over_keys, owed_before_handover
from models.loans import Bank, LoanFile, open_loan_file
from models.payments import money_held, record_payment, record_voucher, settlement_proposal
from models.true_ups import apply_batch, compute_batch, may_cancel_by_true_up, true_up_of
from tests import factories as f
from tests.support.rules import raises_rule
from tests.test_handover import STAFF as HANDOVER_STAFF, _inspected, deal as handed_deal  # noqa: F401
from tests.test_true_up import TODAY, add_deal, office, survey, trued  # noqa: F401

D = Decimal


def _through_chain(db, change, people, today):
    """Every step of `change`'s chain approved by the person of its role; the last one applies it."""
    for role in change.chain.split(",")[change.step:]:
        decide_change(db.session, people[role], change.id, "approve", today=today)
        db.session.commit()
    db.session.expire_all()
    return db.session.get(ChangeRequest, change.id)


@pytest.fixture
def people(make_user, office):  # noqa: F811
    return {"sales_manager": office["manager"], "vp": make_user("vp"), "finance": office["finance"],
            "sales_control": office["control"]}


def _applied(db, trued):  # noqa: F811
    batch = compute_batch(db.session, trued["control"], trued["building"].id, TODAY, today=TODAY)
    apply_batch(db.session, trued["finance"], batch.id, today=TODAY)
    db.session.commit()


# --- 1. A unit swap and the old unit's true-up (R-AFT-3, R-CHG-2) ------------------------------------

def test_r_aft_3_r_chg_2_a_unit_swap_voids_the_old_units_true_up_and_its_charge(db, trued, people):  # noqa: F811
    _applied(db, trued)
    sub = trued["subs"]["beyond_up"]  # +4.2 %: a charge of 30,000.00, and the right to cancel
    charge = db.session.scalar(select(Charge).where(Charge.subscription_id == sub.id))
    record_charge_payment(db.session, trued["finance"], charge.id, amount="10000", paid_on=TODAY,
                          channel="bank_transfer", today=TODAY)
    db.session.commit()
    held = money_held(db.session, sub.id)
    old_unit_id = sub.unit_id
    assert may_cancel_by_true_up(db.session, sub.id) and owed_on_deal(db.session, sub.id) == D("20000.00")
    new_unit = f.unit(db.session, trued["building"], number="0801", area=D("100.00"), list_price=D("1000000.00"))
    db.session.commit()
    swap = request_change(db.session, trued["agent"], sub.id, "unit_swap", reason="换房",
                          proposal={"unit_id": new_unit.id}, today=TODAY)
    db.session.commit()
    assert _through_chain(db, swap, people, TODAY).applied_at is not None
    sub = db.session.get(Subscription, sub.id)
    assert sub.unit_id == new_unit.id
    old = db.session.scalar(select(TrueUp).where(TrueUp.subscription_id == sub.id))
    assert (old.unit_id, old.status) == (old_unit_id, "void")
    charge = db.session.get(Charge, charge.id)
    assert charge.void_at is not None and charge.outstanding == 0 and charge.paid == D("10000.00")
    # Nothing owed on it anywhere (the one definition), no right to cancel, no true-up in force.
    assert db.session.scalar(select(func.count()).select_from(Charge).where(
        charges_owed(), Charge.subscription_id == sub.id)) == 0
    assert owed_on_deal(db.session, sub.id) == 0
    assert not [label for label, _ in owed_before_handover(db.session, sub) if "true" in label.lower()
                or "补差" in label]
    assert true_up_of(db.session, sub.id) is None and not may_cancel_by_true_up(db.session, sub.id)
    with raises_rule("R-AFT-1"):  # a void charge takes no more money
        record_charge_payment(db.session, trued["finance"], charge.id, amount="1", paid_on=TODAY,
                              channel="bank_transfer", today=TODAY)
    db.session.rollback()
    # The 10,000.00 paid on it stays held on the deal.
    assert money_held(db.session, sub.id) == held
    # The new unit is trued up when its building is.
    survey(db, trued, db.session.get(Unit, new_unit.id), "101.00")
    batch = compute_batch(db.session, trued["control"], trued["building"].id, TODAY, today=TODAY)
    db.session.commit()
    assert [(t.subscription_id, t.unit_id) for t in batch.true_ups] == [(sub.id, new_unit.id)]
    assert true_up_of(db.session, sub.id).unit_id == new_unit.id


# --- 3. Interest on the price paid, beyond ±3 % (R-AFT-3, art. 20) -----------------------------------

def test_r_aft_3_beyond_3_percent_the_cancellation_refunds_the_price_paid_with_its_interest(db, trued, people):  # noqa: F811
    _applied(db, trued)
    sub = trued["subs"]["beyond_down"]  # −5 %: may cancel; 50,000.00 paid on TODAY (the deposit)
    paid_later = TODAY + dt.timedelta(days=100)
    record_payment(db.session, trued["finance"], sub.id, amount="100000", paid_on=paid_later,
                   channel="bank_transfer", today=paid_later)
    db.session.commit()
    approved_on = TODAY + dt.timedelta(days=365)
    # Interest at 3.00 % a year: 50,000 × 365 days + 100,000 × 265 days, × 3 % / 365
    # = (18,250,000 + 26,500,000) × 0.03 / 365 = 1,342,500 / 365 = 3,678.0821… → 3,678.08.
    cancel = request_change(db.session, trued["agent"], sub.id, "cancellation", reason="面积误差超3%退房",
                            proposal={"retain_deposit": True, "fee": "500"}, today=approved_on)
    db.session.commit()
    change = _through_chain(db, cancel, people, approved_on)
    assert change.proposal["refund"] == "153678.08" and change.proposal["interest"] == "3678.08"
    assert change.proposal["retained"] == "0.00"
    sub = db.session.get(Subscription, sub.id)
    assert sub.status == "cancelled" and money_held(db.session, sub.id) == D("150000.00")
    assert settlement_proposal(db.session, sub)["refund"] == D("153678.08")
    # Finance pays the refund with the interest, above the money held by exactly the interest.
    with raises_rule("R-CHG-5"):
        record_voucher(db.session, trued["finance"], sub.id, kind="refund", amount="153678.09",
                       issued_on=approved_on, reason="退房", channel="bank_transfer", today=approved_on)
    db.session.rollback()
    voucher = record_voucher(db.session, trued["finance"], sub.id, kind="refund", amount="153678.08",
                             issued_on=approved_on, reason="退房及利息", channel="bank_transfer", today=approved_on)
    db.session.commit()
    assert voucher.amount == D("153678.08")
    assert settlement_proposal(db.session, db.session.get(Subscription, sub.id))["refund"] == 0
    with raises_rule("R-CHG-5"):  # nothing more to refund
        record_voucher(db.session, trued["finance"], sub.id, kind="refund", amount="0.01",
                       issued_on=approved_on, reason="再退", channel="bank_transfer", today=approved_on)
    db.session.rollback()


def test_r_aft_3_within_3_percent_a_cancellation_has_no_interest(db, trued, people):  # noqa: F811
    _applied(db, trued)
    sub = trued["subs"]["down"]  # −2 %
    cancel = request_change(db.session, trued["agent"], sub.id, "cancellation", reason="退房",
                            proposal={"retain_deposit": False, "fee": "0"}, today=TODAY + dt.timedelta(days=365))
    db.session.commit()
    change = _through_chain(db, cancel, people, TODAY + dt.timedelta(days=365))
    assert change.proposal["refund"] == "50000.00" and "interest" not in change.proposal


def test_r_aft_3_the_notice_promises_the_price_paid_and_its_interest(app, db, trued, tmp_path):  # noqa: F811
    import subprocess

    import pdf
    from models.documents import document_context
    _applied(db, trued)
    true_up = db.session.scalar(select(TrueUp).where(TrueUp.subscription_id == trued["subs"]["beyond_down"].id))
    with app.test_request_context():
        data = pdf.render("true_up_notice", document_context(db.session, "true_up_notice", true_up.id, today=TODAY))
    path = tmp_path / "notice.pdf"
    path.write_bytes(data)
    text = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout
    text = "".join(text.split())
    assert "已付房价款及其利息" in text and "年利率3%" in text


# --- 2. A handed-over home is not cancelled (R-AFT-4) ------------------------------------------------

def test_r_aft_4_a_handed_over_home_is_not_cancelled_request_or_approval(app, db, handed_deal, make_user):  # noqa: F811
    deal = handed_deal
    people = {"sales_manager": deal["manager"], "vp": make_user("vp")}
    sub_id = deal["sub"].id
    cancel = request_change(db.session, deal["agent"], sub_id, "cancellation", reason="退房",
                            proposal={"retain_deposit": False, "fee": "0"})
    db.session.commit()
    handover = _inspected(db, deal)
    decide_change(db.session, people["sales_manager"], cancel.id, "approve")
    db.session.commit()
    hand_over_keys(db.session, deal["service"], handover.id, signed_by="买受人本人", keys_count=2)
    db.session.commit()
    # Handed over between the approvals: the last one is refused, nothing written.
    with raises_rule("R-AFT-4"):
        decide_change(db.session, people["vp"], cancel.id, "approve")
    db.session.rollback()
    db.session.expire_all()
    sub = db.session.get(Subscription, sub_id)
    assert sub.status == "contracted" and db.session.get(Unit, sub.unit_id).status == "signed"
    assert db.session.get(ChangeRequest, cancel.id).status == "requested"
    # And a new request is refused at once.
    decide_change(db.session, people["vp"], cancel.id, "reject", note="已交房")
    db.session.commit()
    with raises_rule("R-AFT-4"):
        request_change(db.session, deal["agent"], sub_id, "cancellation", reason="退房",
                       proposal={"retain_deposit": False, "fee": "0"})
    db.session.rollback()


# --- 4. Mortgage files follow a plan change (R-AFT-2, R-CHG-2) ---------------------------------------

@pytest.fixture
def mortgage(db, make_deal, make_user):
    deal = make_deal(price="1000000.00", method="commercial_mortgage", today=f.TODAY,
                     staff={"control": ("sales_control", None), "finance": ("finance", None),
                            "lawyer": ("lawyer", None), "manager": ("sales_manager", None)})
    record_payment(db.session, deal["finance"], deal["sub"].id, amount="250000", paid_on=f.TODAY,
                   channel="bank_transfer", today=f.TODAY)
    bank = Bank(name="中国建设银行长沙分行")
    db.session.add(bank)
    db.session.commit()
    file = open_loan_file(db.session, deal["lawyer"], deal["sub"].id, line_kind="commercial_loan", bank_id=bank.id,
                          loan_kind="commercial", today=f.TODAY)
    db.session.commit()
    deal.update(file=file, people={"sales_manager": deal["manager"], "vp": make_user("vp")})
    return deal


def _change(db, deal, kind, proposal):
    change = request_change(db.session, deal["agent"], deal["sub"].id, kind, reason="客户要求", proposal=proposal,
                            today=f.TODAY)
    db.session.commit()
    return _through_chain(db, change, deal["people"], f.TODAY)


def test_r_aft_2_r_chg_2_a_file_on_a_line_the_plan_change_removed_is_closed(db, mortgage):
    assert mortgage["file"].amount == D("700000.00")
    _change(db, mortgage, "payment_method", {"payment_method": "one_off"})
    file = db.session.get(LoanFile, mortgage["file"].id)
    assert file.status == "closed"
    from models import Audit
    assert db.session.scalar(select(Audit.id).where(Audit.entity == "loan_file", Audit.entity_id == str(file.id),
                                                    Audit.action == "change_payment_method"))


def test_r_aft_2_r_chg_2_a_file_whose_line_remains_follows_its_new_amount(db, mortgage):
    _change(db, mortgage, "price", {"price": "990000"})
    file = db.session.get(LoanFile, mortgage["file"].id)
    line = db.session.scalar(select(func.sum(Instalment_balance())).where(*_loan_line(mortgage)))
    assert file.status == "open" and file.amount == line and file.amount != D("700000.00")


def Instalment_balance():
    from models import Instalment
    return Instalment.amount_due - Instalment.amount_paid


def _loan_line(deal):
    from models import Instalment
    from models.payments import in_force
    return (Instalment.subscription_id == deal["sub"].id, Instalment.kind == "commercial_loan", in_force())
