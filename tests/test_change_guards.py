"""The walk-arounds of the terms guard (issue 21, after an outside review), closed in the database
itself (migrations d21a00000001 and d21c00000001), on whichever database the suite runs:

- a live deal's status toggled to draft (unguarded) and back, its terms rewritten meanwhile (R-CHG-1);
- its plan lines rewritten, added or deleted by raw SQL (R-CHG-2);
- `subscription.held` written by raw SQL, emptying finance's settlement worklist (R-CHG-5).

Each refusal is shown beside the legitimate path that still writes the same thing."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError

from models import Instalment, Subscription
from models.change_requests import chain_for, decide_change, request_change
from models.changes import ChangeRequest
from models.payments import awaiting_settlement, generate_plan, record_payment
from tests import factories as f

TODAY = f.TODAY
STAFF = {"control": ("sales_control", "chen"), "finance": ("finance", "zhao"), "manager": ("sales_manager", "boss"),
         "vp": ("vp", "vp")}
DEAD = ("forfeited", "withdrawn", "expired", "rescinded", "cancelled")


@pytest.fixture
def deal(make_deal):
    return make_deal(staff=STAFF)


def _raw(db, sql, **params):
    db.session.execute(text(sql), params)
    db.session.flush()


def _refused(db, rule, sql, **params):
    with pytest.raises(IntegrityError, match=rule):
        _raw(db, sql, **params)
    db.session.rollback()


def _status(db, sub_id):
    db.session.expire_all()
    return db.session.get(Subscription, sub_id).status


def _lines(db, sub_id):
    db.session.expire_all()
    return db.session.execute(select(Instalment.plan_no, Instalment.seq, Instalment.kind, Instalment.due_on,
                                     Instalment.amount_due).where(Instalment.subscription_id == sub_id)
                              .order_by(Instalment.plan_no, Instalment.seq)).all()


# --- 1. status toggling (R-CHG-1) -------------------------------------------------------------------

def test_r_chg_1_a_live_deal_never_goes_back_to_draft_so_its_terms_cannot_be_rewritten_there(db, deal):
    sub_id = deal["sub"].id
    for live in ("confirmed", "active", "contracted"):
        if live != "active":
            _raw(db, "UPDATE subscription SET status = :s WHERE id = :id", s=live, id=sub_id)  # live to live
        _refused(db, "R-CHG-1", "UPDATE subscription SET status = 'draft' WHERE id = :id", id=sub_id)
    # The reviewer's whole walk-around, in one transaction: it stops at its first step.
    with pytest.raises(IntegrityError, match="R-CHG-1"):
        _raw(db, "UPDATE subscription SET status = 'draft' WHERE id = :id", id=sub_id)
        _raw(db, "UPDATE subscription SET price = 1, customer_name = '别人' WHERE id = :id", id=sub_id)
        _raw(db, "UPDATE subscription SET status = 'active' WHERE id = :id", id=sub_id)
    db.session.rollback()
    sub = db.session.get(Subscription, sub_id)
    assert (sub.status, sub.price, sub.customer_name) == ("active", Decimal("1000000.00"), deal["sub"].customer_name)


@pytest.mark.parametrize("dead", DEAD)
def test_r_chg_1_a_deal_that_is_over_never_changes_status_again(db, deal, dead):
    sub_id = deal["sub"].id
    _raw(db, "UPDATE subscription SET status = :s WHERE id = :id", s=dead, id=sub_id)  # a way out (live to dead)
    db.session.commit()
    for again in ("draft", "confirmed", "active", "contracted", *[d for d in DEAD if d != dead]):
        _refused(db, "R-CHG-1", "UPDATE subscription SET status = :s WHERE id = :id", s=again, id=sub_id)
    _raw(db, "UPDATE subscription SET status = :s WHERE id = :id", s=dead, id=sub_id)  # the same status: no move
    db.session.rollback()
    assert _status(db, sub_id) == dead


def test_r_chg_1_a_draft_still_moves_forward_and_out(db, deal, make_deal):
    office = {**deal, "control": deal["control"]}
    units = [f.unit(db.session, f.building(db.session, deal["project"], name=f"{n}栋"),
                    list_price=Decimal("800000.00")) for n in range(3)]
    db.session.commit()
    drafts = [make_deal(office=office, unit=u, customer=f"客户{n}", subscribed_on=TODAY, stage="draft")
              for n, u in enumerate(units)]
    for sub, after in zip(drafts, ("confirmed", "withdrawn", "expired")):
        _raw(db, "UPDATE subscription SET status = :s WHERE id = :id", s=after, id=sub.id)
    db.session.commit()
    assert [_status(db, s.id) for s in drafts] == ["confirmed", "withdrawn", "expired"]


# --- 2. plan lines (R-CHG-2) ------------------------------------------------------------------------

@pytest.mark.parametrize("assignment", ["amount_due = 1", "amount_due = amount_due + 1", "due_on = '2030-01-01'",
                                        "kind = 'balance'", "seq = seq + 100", "plan_no = plan_no + 1",
                                        "subscription_id = subscription_id"])
def test_r_chg_2_a_plan_lines_amount_date_kind_and_place_cannot_be_rewritten(db, deal, assignment):
    sub_id = deal["sub"].id
    before = _lines(db, sub_id)
    if assignment == "subscription_id = subscription_id":  # moved to another deal, even a draft one
        other = f.subscription(db.session, deal["agent"])
        db.session.commit()
        assignment = f"subscription_id = {other.id}"
    _refused(db, "R-CHG-2", f"UPDATE instalment SET {assignment} WHERE subscription_id = :id", id=sub_id)
    assert _lines(db, sub_id) == before


def test_r_chg_2_a_drafts_lines_are_not_rewritten_either(db, make_user):
    line = f.instalment(db.session, f.subscription(db.session, make_user("agent")))
    db.session.commit()
    _refused(db, "R-CHG-2", "UPDATE instalment SET amount_due = 1 WHERE id = :id", id=line.id)


def test_r_chg_2_the_columns_payments_extensions_and_notes_write_still_move(db, deal):
    sub_id = deal["sub"].id
    line = db.session.scalar(select(Instalment).where(Instalment.subscription_id == sub_id, Instalment.seq == 2))
    _raw(db, "UPDATE instalment SET amount_paid = 1, status = 'partly_paid', extended_due_on = :d, "
             "agent_note = '客户下周到账' WHERE id = :id", id=line.id, d=TODAY + dt.timedelta(days=30))
    _raw(db, "UPDATE instalment SET amount_due = amount_due, due_on = due_on WHERE id = :id", id=line.id)  # unchanged
    db.session.rollback()
    # and the product's own path: a payment moves amount_paid and status
    record_payment(db.session, deal["finance"], sub_id, amount="1000", paid_on=TODAY, channel="pos", today=TODAY)
    db.session.commit()
    assert db.session.get(Instalment, line.id).amount_paid == Decimal("1000.00")


def _line_sql(plan_no="(SELECT plan_no FROM subscription WHERE id = :id)"):
    return ("INSERT INTO instalment (subscription_id, plan_no, seq, kind, due_on, amount_due, amount_paid, status, "
            f"agent_note) VALUES (:id, {plan_no}, 99, 'balance', '2027-01-01', 1, 0, 'pending', '')")


def test_r_chg_2_a_line_is_never_added_to_or_deleted_from_a_live_deal_behind_the_systems_back(db, deal):
    sub_id = deal["sub"].id
    before = _lines(db, sub_id)
    _refused(db, "R-CHG-2", _line_sql(), id=sub_id)
    unpaid = db.session.scalar(select(Instalment.id).where(Instalment.subscription_id == sub_id,
                                                           Instalment.amount_paid == 0).limit(1))
    _refused(db, "R-CHG-2", "DELETE FROM instalment WHERE id = :id", id=unpaid)
    # Naming a change that is not an approved, unapplied one of this deal does not help.
    change = request_change(db.session, deal["agent"], sub_id, "price", reason="老客户优惠",
                            proposal={"price": "990000.00"}, today=TODAY)
    db.session.commit()
    _raw(db, "UPDATE subscription SET last_change_id = :c WHERE id = :id", c=change.id, id=sub_id)  # not a term
    with pytest.raises(IntegrityError, match="R-CHG-2"):
        _raw(db, _line_sql(), id=sub_id)
    db.session.rollback()
    assert _lines(db, sub_id) == before


def test_r_chg_2_an_approved_change_adds_lines_to_its_new_plan_only_while_it_is_applied(db, deal):
    sub_id = deal["sub"].id
    change = request_change(db.session, deal["agent"], sub_id, "price", reason="老客户优惠",
                            proposal={"price": "990000.00"}, today=TODAY)
    db.session.execute(update(ChangeRequest).where(ChangeRequest.id == change.id).values(status="approved"))
    _raw(db, "UPDATE subscription SET plan_no = plan_no + 1, last_change_id = :c WHERE id = :id", c=change.id,
         id=sub_id)
    with pytest.raises(IntegrityError, match="R-CHG-2"):  # not into the plan it replaces
        with db.session.begin_nested():
            _raw(db, _line_sql("1"), id=sub_id)
    _raw(db, _line_sql(), id=sub_id)  # the licence: its new plan
    db.session.execute(update(ChangeRequest).where(ChangeRequest.id == change.id).values(applied_at=dt.datetime.now()))
    db.session.flush()
    with pytest.raises(IntegrityError, match="R-CHG-2"):  # applied: the licence is spent
        with db.session.begin_nested():
            _raw(db, _line_sql().replace("99", "98"), id=sub_id)
    db.session.rollback()


def test_r_chg_2_the_product_paths_still_write_plans_a_drafts_first_plan_and_a_changes_new_one(db, deal, make_deal):
    unit = f.unit(db.session, f.building(db.session, deal["project"], name="9栋"), list_price=Decimal("800000.00"))
    db.session.commit()
    draft = make_deal(office=deal, unit=unit, customer="新客户", subscribed_on=TODAY, stage="draft")
    first = _lines(db, draft.id)
    assert first
    generate_plan(db.session, db.session.get(Subscription, draft.id))  # deleted and made again: nothing paid
    db.session.commit()
    assert _lines(db, draft.id) == first
    sub_id = deal["sub"].id
    change = request_change(db.session, deal["agent"], sub_id, "price", reason="老客户优惠",
                            proposal={"price": "990000.00"}, today=TODAY)
    for step in chain_for(db.session, deal["sub"], "price", {"price": "990000.00"}):  # the manager, then the vp
        decide_change(db.session, deal[{"sales_manager": "manager"}.get(step, step)], change.id, "approve",
                      today=TODAY)
        db.session.commit()
    db.session.expire_all()
    sub = db.session.get(Subscription, sub_id)
    assert (sub.price, sub.plan_no) == (Decimal("990000.00"), 2)
    assert sum(line.amount_due for line in sub.instalments) == Decimal("990000.00")
    assert db.session.get(ChangeRequest, change.id).applied_at is not None


# --- 3. the money held (R-CHG-5) --------------------------------------------------------------------

def test_r_chg_5_held_is_never_written_by_raw_sql_so_the_settlement_worklist_cannot_be_emptied(db, deal):
    sub_id = deal["sub"].id
    _raw(db, "UPDATE subscription SET status = 'cancelled' WHERE id = :id", id=sub_id)  # over, holding the deposit
    db.session.commit()
    listed = db.session.scalar(select(func.count()).select_from(Subscription).where(awaiting_settlement()))
    assert listed == 1 and db.session.get(Subscription, sub_id).held == Decimal("50000.00")
    for figure in ("0", "-1", "49999.99", "50000.01", "held + 1"):
        _refused(db, "R-CHG-5", f"UPDATE subscription SET held = {figure} WHERE id = :id", id=sub_id)
    _refused(db, "R-CHG-5", "UPDATE subscription SET held = 0")  # the whole table at once
    assert db.session.scalar(select(func.count()).select_from(Subscription).where(awaiting_settlement())) == 1
    assert db.session.get(Subscription, sub_id).held == Decimal("50000.00")


def test_r_chg_5_a_deal_is_made_holding_nothing(db, make_user):
    with pytest.raises(IntegrityError, match="R-CHG-5"):
        f.subscription(db.session, make_user("agent"), held=Decimal("100.00"))
    db.session.rollback()


def test_r_chg_5_a_payment_still_moves_held_through_its_trigger(db, deal):
    sub_id = deal["sub"].id
    record_payment(db.session, deal["finance"], sub_id, amount="1234.56", paid_on=TODAY, channel="pos", today=TODAY)
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Subscription, sub_id).held == Decimal("51234.56")


def test_r_chg_2_a_line_in_force_is_not_hidden_as_replaced_nor_a_replaced_one_brought_back(db, deal):
    sub_id = deal["sub"].id
    before = _lines(db, sub_id)
    _refused(db, "R-CHG-2", "UPDATE instalment SET status = 'replaced', amount_paid = 0 WHERE subscription_id = :id "
                            "AND amount_paid = 0", id=sub_id)
    assert _lines(db, sub_id) == before
    change = request_change(db.session, deal["agent"], sub_id, "payment_method", reason="改分期",
                            proposal={"payment_method": "instalments"}, today=TODAY)
    for step in chain_for(db.session, deal["sub"], "payment_method", {"payment_method": "instalments"}):
        decide_change(db.session, deal[{"sales_manager": "manager"}.get(step, step)], change.id, "approve",
                      today=TODAY)
        db.session.commit()
    assert db.session.get(Subscription, sub_id).plan_no == 2  # the product's path replaced plan 1
    _refused(db, "R-CHG-2", "UPDATE instalment SET status = 'pending' WHERE subscription_id = :id AND plan_no = 1",
             id=sub_id)
