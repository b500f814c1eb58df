"""Issue 21, items 8 and 9: the change rate and the refunds due on the dashboards (R-CHG-1,
R-CHG-5), the settlement worklist's one figure of money held, and the demo's changed deals."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from models import Payment, Subscription
from models.changes import ChangeRequest
from models.money import format_money
from models.payments import Voucher, awaiting_settlement, money_held
from tests import factories as f


@pytest.fixture
def small_office(db, make_user):
    """Two projects ("XJ" with a hand-countable mix of deals, "HS" with two) and the people."""
    s = db.session
    people = {"agent": make_user("agent", username="li"), "finance": make_user("finance", username="zhao"),
              "manager": make_user("sales_manager", username="boss"), "vp": make_user("vp", username="wu")}
    xj = f.project(s, code="XJ", name="湘江壹号")
    hs = f.project(s, code="HS", name="湖山苑")
    f.project(s, code="KB", name="空白项目")  # no deals: not on the change-rate table
    s.commit()
    return {"xj": xj, "hs": hs, **people}


def _deal(s, office, project, status, *, paid=(), vouchers=(), checked=True):
    """A deal of `project` in `status` (confirmed by sales control unless `checked` is False),
    with payments of `paid` and refund vouchers of `vouchers` (amounts as strings)."""
    lead = f.lead(s, owner=office["agent"], project_=project)
    sub = f.subscription(s, office["agent"], lead_=lead,
                         checked_at=dt.datetime(2026, 11, 1, 2) if checked else None)
    line = f.instalment(s, sub, amount_due=Decimal("1000000.00"))  # its plan while a draft (the guard, R-CHG-2)
    sub.status = status
    s.flush()
    for amount in paid:
        f.payment(s, line, office["finance"], amount=Decimal(amount))
    for n, amount in enumerate(vouchers):
        s.add(Voucher(project_id=project.id, subscription_id=sub.id, number=f"TK-{sub.number}-{n}", kind="refund",
                      amount=Decimal(amount), issued_on=f.TODAY, channel="bank_transfer", reason="退款",
                      recorded_by_id=office["finance"].id))
    s.flush()
    return sub


def _change(s, office, sub, kind, status="approved", chain="sales_manager", step=0):
    s.add(ChangeRequest(subscription_id=sub.id, kind=kind, chain=chain, step=step, status=status, reason="客户申请",
                        requested_by_id=office["agent"].id, proposal={}))
    s.flush()


def test_r_chg_1_the_change_rate_per_project_equals_a_hand_count(app, db, small_office):
    from models.reports import change_rate, changes_waiting
    s, o = db.session, small_office
    xj = [_deal(s, o, o["xj"], status) for status in ("active", "active", "active", "contracted")]
    _deal(s, o, o["xj"], "forfeited", checked=False)  # only a sale is forfeited: counted
    _deal(s, o, o["xj"], "withdrawn")  # withdrawn after sales control confirmed it: was a sale
    for status in ("withdrawn", "expired", "draft"):  # never confirmed: not counted
        _deal(s, o, o["xj"], status, checked=False)
    # XJ: 6 deals that were a sale; approved: 2 swaps and 1 buyer change; rejected, withdrawn and
    # open requests are not changes made.
    _change(s, o, xj[0], "unit_swap")
    _change(s, o, xj[1], "unit_swap")
    _change(s, o, xj[1], "buyers")
    _change(s, o, xj[2], "price", status="rejected")
    _change(s, o, xj[3], "payment_method", status="withdrawn")
    _change(s, o, xj[0], "price", status="requested")  # waits for the manager
    _change(s, o, xj[2], "cancellation", status="requested", chain="sales_manager,vp", step=1)  # for the VP
    _change(s, o, xj[3], "buyers", status="sent_back")  # back with the agent
    # HS: an active deal and a cancelled one (退房, approved).
    hs_live = _deal(s, o, o["hs"], "active")
    hs_gone = _deal(s, o, o["hs"], "cancelled")
    _change(s, o, hs_gone, "cancellation", chain="sales_manager,vp", step=1)
    _change(s, o, hs_live, "unit_swap", status="requested")
    s.commit()

    rows = {row["name"]: row for row in change_rate(s)}
    assert set(rows) == {"湘江壹号", "湖山苑"}
    xj_row, hs_row = rows["湘江壹号"], rows["湖山苑"]
    assert (xj_row["deals"], xj_row["changes"], xj_row["rate"]) == (6, 3, 50.0)
    assert {k["kind"]: (k["changes"], k["rate"]) for k in xj_row["kinds"]} == {
        "unit_swap": (2, 33.3), "buyers": (1, 16.7), "payment_method": (0, 0.0), "price": (0, 0.0),
        "cancellation": (0, 0.0)}
    assert (hs_row["deals"], hs_row["changes"], hs_row["rate"]) == (2, 1, 50.0)
    assert {k["kind"]: k["changes"] for k in hs_row["kinds"]}["cancellation"] == 1

    waiting = changes_waiting(s)
    assert waiting["total"] == 4
    assert {(r["kind"], r["whose"]): r["count"] for r in waiting["rows"]} == {
        ("price", "sales_manager"): 1, ("cancellation", "vp"): 1, ("buyers", "requester"): 1,
        ("unit_swap", "sales_manager"): 1}


def _refunds_office(s, o):
    """Deals over with money held (and one live deal, and one settled): the hand count below."""
    _deal(s, o, o["xj"], "forfeited", paid=("50000", "100000"), vouchers=("100000",))  # holds 50,000.00
    _deal(s, o, o["xj"], "cancelled", paid=("80000.30", "0.20"))  # holds 80,000.50
    _deal(s, o, o["hs"], "rescinded", paid=("10000",))  # holds 10,000.00
    _deal(s, o, o["hs"], "withdrawn", paid=("20000.10",), vouchers=("20000.10",))  # settled: holds 0
    _deal(s, o, o["xj"], "active", paid=("300000",))  # live: its money is not to settle
    s.commit()


def test_r_chg_5_refunds_due_equal_a_hand_count_of_the_money_held_on_deals_that_are_over(app, db, small_office):
    from models.reports import refunds_due
    s, o = db.session, small_office
    _refunds_office(s, o)
    due = refunds_due(s)
    assert (due["count"], due["held"]) == (3, Decimal("140000.50"))
    assert {p["status"]: (p["count"], p["held"]) for p in due["by_status"]} == {
        "cancelled": (1, Decimal("80000.50")), "forfeited": (1, Decimal("50000.00")),
        "other": (1, Decimal("10000.00"))}
    # The figure the database keeps per deal is the payments less the vouchers, deal by deal.
    for sub in s.scalars(select(Subscription)):
        paid = s.scalar(select(func.coalesce(func.sum(Payment.amount), 0)).where(Payment.subscription_id == sub.id))
        settled = s.scalar(select(func.coalesce(func.sum(Voucher.amount), 0)).where(Voucher.subscription_id == sub.id))
        assert money_held(s, sub.id) == Decimal(paid) - Decimal(settled), sub.status


def test_r_chg_5_a_reversal_and_a_voucher_move_the_money_held_at_once_in_the_same_transaction(app, db, small_office):
    s, o = db.session, small_office
    sub = _deal(s, o, o["xj"], "forfeited", paid=("1000.10",))
    assert money_held(s, sub.id) == Decimal("1000.10")  # read before the commit: the insert's own figure
    s.commit()
    payment = s.scalar(select(Payment).where(Payment.subscription_id == sub.id))
    s.add(Payment(project_id=sub.project_id, subscription_id=sub.id, amount=Decimal("-0.10"), paid_on=f.TODAY,
                  channel="bank_transfer", reverses_id=payment.id, reason="冲正", recorded_by_id=o["finance"].id))
    s.add(Voucher(project_id=sub.project_id, subscription_id=sub.id, number="TK-X-1", kind="refund",
                  amount=Decimal("1000.00"), issued_on=f.TODAY, channel="bank_transfer", reason="退款",
                  recorded_by_id=o["finance"].id))
    s.flush()
    assert money_held(s, sub.id) == 0
    assert s.scalar(select(func.count()).select_from(Subscription).where(awaiting_settlement())) == 0
    s.rollback()
    assert money_held(s, sub.id) == Decimal("1000.10")  # rolled back with the rows


def test_r_chg_5_the_dashboards_refunds_due_are_the_settlement_worklists_total(app, db, client, auth, small_office):
    from models import reports
    s, o = db.session, small_office
    _refunds_office(s, o)
    reports._cache.clear()
    auth.login("zhao")
    worklist = client.get("/admin/settlement/").get_data(as_text=True)
    listed = [sub for sub in s.scalars(select(Subscription)) if sub.number in worklist]
    assert sorted(sub.status for sub in listed) == ["cancelled", "forfeited", "rescinded"]
    total = sum((money_held(s, sub.id) for sub in listed), Decimal("0"))
    assert total == Decimal("140000.50")
    for sub in listed:  # each row shows the figure the total adds up
        assert format_money(money_held(s, sub.id)) in worklist
    page = client.get("/admin/").get_data(as_text=True)
    finance = page[page.index('id="dash-finance"'):]
    assert f"3 · {format_money(total)}" in re.sub(r"\s+", " ", finance)
    auth.logout()
    reports._cache.clear()
    auth.login("boss")
    page = re.sub(r"\s+", " ", client.get("/admin/").get_data(as_text=True))
    manager = page[page.index('id="dash-manager"'):]
    assert f"3 · {format_money(total)}" in manager
    assert "dash-change-rate" in manager


def test_r_chg_1_the_demo_office_shows_a_swap_a_buyer_added_a_refunded_cancellation_a_rejection_and_one_pending(
        app, db):
    """Item 9, queried after `flask demo` (run twice: the second run adds nothing)."""
    from models import Audit, Unit
    from models.changes import DealBuyer
    runner = app.test_cli_runner()
    assert runner.invoke(args=["demo"]).exit_code == 0
    s = db.session
    # The changes demo's requests, one of each kind: the first of each (the commissions demo of issue 23
    # cancels another deal later, to show a clawback).
    changes = {c.kind: c for c in s.scalars(select(ChangeRequest).order_by(ChangeRequest.id.desc()))}
    assert len(changes) == 5
    # A deal swapped to another unit: applied, the deal on the new unit, the old one back on sale.
    swap = changes["unit_swap"]
    deal = s.get(Subscription, swap.subscription_id)
    assert swap.status == "approved" and swap.applied_at is not None
    assert deal.unit_id == swap.proposal["unit_id"] != swap.before["unit_id"]
    assert s.get(Unit, swap.before["unit_id"]).status == "available"
    assert s.get(Unit, deal.unit_id).status == "subscribed"
    # A buyer added: two current buyers, 50/50; the former single buyer kept, ended by the change.
    added = changes["buyers"]
    buyers = s.scalars(select(DealBuyer).where(DealBuyer.subscription_id == added.subscription_id)
                       .order_by(DealBuyer.id)).all()
    assert added.status == "approved" and added.applied_at is not None
    assert [(b.share, b.ended_by_change_id) for b in buyers] == [
        (Decimal("100.00"), added.id), (Decimal("50.00"), None), (Decimal("50.00"), None)]
    # A cancellation refunded: the deal cancelled, a refund voucher of everything paid, nothing held.
    cancel = changes["cancellation"]
    gone = s.get(Subscription, cancel.subscription_id)
    assert cancel.status == "approved" and gone.status == "cancelled"
    assert [step.role for step in cancel.steps] == ["sales_manager", "vp"]
    vouchers = s.scalars(select(Voucher).where(Voucher.subscription_id == gone.id)).all()
    assert [(v.kind, v.amount) for v in vouchers] == [("refund", Decimal("150000.00"))]
    assert money_held(s, gone.id) == 0
    assert s.get(Unit, gone.unit_id).status == "available"
    # A request rejected (with the manager's reason), and one waiting for the manager.
    rejected, pending = changes["price"], changes["payment_method"]
    assert rejected.status == "rejected" and rejected.decision_note
    assert pending.status == "requested" and pending.roles[pending.step] == "sales_manager"
    assert s.scalar(select(func.count()).select_from(Audit).where(Audit.action == "swap_unit")) >= 1
    before = s.scalar(select(func.count()).select_from(ChangeRequest))
    assert runner.invoke(args=["demo"]).exit_code == 0
    assert s.scalar(select(func.count()).select_from(ChangeRequest)) == before
