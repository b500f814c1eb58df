"""The addendum (补充协议) of an approved change, the buyers on the documents, and the deal's
history of its changes (R-CHG-1…4).

The PDFs are checked as text (pdftotext) and, for the fonts, by test_documents.py's checks, which
the addendum shares (same stylesheet, same renderer)."""
from __future__ import annotations

import datetime as dt
import subprocess
from decimal import Decimal

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

import pdf
from jobs.documents import render_document
from models import Document, Instalment, Unit
from models.audit import audit_context
from models.base import utcnow
from models.changes import ChangeRequest, ChangeStep, DealBuyer
from models.document_contexts import change_plan_no
from models.documents import document_context, request_addendum, request_documents
from models.timeline import deal_timeline
from tests import factories as f
from tests.support.rules import raises_rule

TODAY = dt.date(2026, 11, 26)
SECOND_ID = "11010519491231002X"  # a second valid resident ID number


@pytest.fixture
def deal(make_deal):
    """An active instalments deal of agent "li" (price 1,500,000, deposit 50,000 paid), with the
    manager, the vice-president and another agent "zhao"."""
    return make_deal(price="1500000.00", method="instalments", today=TODAY,
                     staff={"control": ("sales_control", None), "finance": ("finance", "finance"),
                            "manager": ("sales_manager", "manager"), "vp": ("vp", "vp"),
                            "other": ("agent", "zhao")})


def _text(data: bytes, tmp_path, name="doc") -> str:
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", path, "-"], check=True, capture_output=True, text=True).stdout


def _buyers_now(db, sub):
    return db.session.scalars(select(DealBuyer).where(DealBuyer.subscription_id == sub.id,
                                                      DealBuyer.ended_by_change_id.is_(None))
                              .order_by(DealBuyer.seq)).all()


# --- set-up: an approved, applied change, as models.change_requests / change_apply leave it ------

def _request(db, deal, kind, proposal, *, before=None, difference=None, reason="客户要求"):
    with audit_context(db.session, actor=deal["agent"], action="request_change"):
        return _add_request(db, deal, kind, proposal, before, difference, reason)


def _add_request(db, deal, kind, proposal, before, difference, reason):
    change = ChangeRequest(subscription_id=deal["sub"].id, kind=kind,
                           chain="sales_manager,vp" if kind == "cancellation" else "sales_manager",
                           proposal=proposal, before=before or {}, difference=difference or {},
                           reason=reason, requested_by_id=deal["agent"].id)
    db.session.add(change)
    db.session.flush()
    return change


def _approve(db, deal, change):
    with audit_context(db.session, actor=deal["manager"], action="approve_change"):
        _add_steps(db, deal, change)


def _add_steps(db, deal, change):
    for seq, role in enumerate(change.roles):
        db.session.add(ChangeStep(change_request_id=change.id, round=change.round, seq=seq, role=role,
                                  decision="approved", decided_by_id=deal["manager" if role == "sales_manager" else "vp"].id))
    change.status, change.step = "approved", len(change.roles)
    change.decided_by_id, change.decided_at = deal["manager"].id, utcnow()
    db.session.flush()


def _new_plan(db, sub, change, price):
    """The deal's next plan at `price`, the paid money carried over (as models.change_apply does)."""
    old = db.session.scalars(select(Instalment).where(Instalment.subscription_id == sub.id,
                                                      Instalment.plan_no == sub.plan_no)).all()
    paid = sum((line.amount_paid for line in old), Decimal("0"))
    for line in old:
        line.amount_paid, line.status = Decimal("0"), "replaced"
    plan_no = sub.plan_no + 1
    db.session.add_all([
        Instalment(subscription_id=sub.id, plan_no=plan_no, seq=1, kind="deposit", due_on=TODAY,
                   amount_due=Decimal("50000.00"), amount_paid=paid, status="paid"),
        Instalment(subscription_id=sub.id, plan_no=plan_no, seq=2, kind="down_payment",
                   due_on=TODAY + dt.timedelta(days=30), amount_due=Decimal(price) - Decimal("50000.00"))])
    sub.plan_no, sub.price, sub.last_change_id = plan_no, Decimal(price), change.id


def approved_change(db, deal, kind):
    """An approved and applied change of `kind` on the deal, with its steps and audit rows."""
    sub = deal["sub"]
    if not _buyers_now(db, sub):  # the agreement's customer, whole (models.changes.add_first_buyer)
        db.session.add(DealBuyer(subscription_id=sub.id, seq=1, name=sub.customer_name, id_number=sub.customer_id_number,
                                 phone=deal["lead"].phone, share=Decimal("100")))
    if kind == "unit_swap":
        target = f.unit(db.session, deal["unit"].building, number="1501", floor=15, area=Decimal("98.50"),
                        list_price=Decimal("1400000.00"))
        change = _request(db, deal, kind, {"unit_id": target.id},
                          before={"unit_id": deal["unit"].id, "price": "1500000.00"},
                          difference={"price": ["1500000.00", "1400000.00"], "paid": "50000.00",
                                      "due": ["1450000.00", "1350000.00"]}, reason="客户要求换到低楼层")
    elif kind == "buyers":
        first = _buyers_now(db, sub)[0]
        change = _request(db, deal, kind, {"buyers": [
            {"name": first.name, "id_type": "resident_id", "id_number": first.id_number, "phone": first.phone,
             "share": "50.00"},
            {"name": "李四", "id_type": "resident_id", "id_number": SECOND_ID, "phone": "13900000002",
             "share": "50.00"}]}, reason="增加配偶为权益人")
    elif kind == "payment_method":
        change = _request(db, deal, kind, {"payment_method": "commercial_mortgage"},
                          before={"payment_method": "instalments", "price": "1500000.00"},
                          difference={"price": ["1500000.00", "1500000.00"], "paid": "50000.00",
                                      "due": ["1450000.00", "1450000.00"],
                                      "payment_method": ["instalments", "commercial_mortgage"]})
    elif kind == "price":
        change = _request(db, deal, kind, {"price": "1450000.00"}, before={"price": "1500000.00"},
                          difference={"price": ["1500000.00", "1450000.00"], "paid": "50000.00",
                                      "due": ["1450000.00", "1400000.00"]}, reason="开发商批准的价格调整")
    else:
        change = _request(db, deal, kind, {"retain_deposit": False, "fee": "1000.00", "refund": "49000.00",
                                           "retained": "1000.00"},
                          before={"status": "active", "paid": "50000.00"},
                          difference={"paid": "50000.00", "refund": "49000.00", "retained": "1000.00",
                                      "fee": "1000.00"}, reason="客户家庭原因退房")
    _approve(db, deal, change)
    action = {"unit_swap": "swap_unit", "buyers": "change_buyers", "payment_method": "change_payment_method",
              "price": "change_price", "cancellation": "cancel_deal"}[kind]
    with audit_context(db.session, actor=deal["manager"], action=action):
        _apply(db, deal, change, kind)
    with audit_context(db.session, actor=deal["manager"], action="approve_change"):
        change.applied_at = utcnow()
        db.session.flush()
    db.session.commit()
    return change


def _apply(db, deal, change, kind):
    sub = deal["sub"]
    if kind == "unit_swap":
        target = db.session.get(Unit, change.proposal["unit_id"])
        deal["unit"].status, target.status = "available", "subscribed"
        db.session.flush()
        sub.unit_id = target.id
        _new_plan(db, sub, change, "1400000.00")
    elif kind == "buyers":
        now = utcnow()
        for buyer in _buyers_now(db, sub):
            buyer.ended_by_change_id, buyer.ended_at = change.id, now
        db.session.flush()
        for seq, row in enumerate(change.proposal["buyers"], start=1):
            db.session.add(DealBuyer(subscription_id=sub.id, seq=seq, name=row["name"], id_number=row["id_number"],
                                     phone=row["phone"], share=Decimal(row["share"]), added_by_change_id=change.id))
        sub.last_change_id = change.id
    elif kind == "payment_method":
        sub.payment_method = "commercial_mortgage"
        _new_plan(db, sub, change, "1500000.00")
    elif kind == "price":
        _new_plan(db, sub, change, "1450000.00")
    else:
        sub.status, sub.cancelled_at, sub.last_change_id = "cancelled", utcnow(), change.id
        deal["unit"].status = "available"
    db.session.flush()


# --- 1. the addendum ---------------------------------------------------------------------------

EXPECTED = {
    "unit_swap": ["换房", "1501", "98.50", "¥1,500,000.00", "¥1,400,000.00",
                  "变更后付款计划", "¥1,350,000.00", "¥50,000.00"],
    "buyers": ["更名", "李四", SECOND_ID, "50%", "100%", "变更前买受人", "变更后买受人"],
    "payment_method": ["分期付款", "商业按揭", "变更后付款计划"],
    "price": ["¥1,500,000.00", "¥1,450,000.00", "变更后付款计划", "¥1,400,000.00"],
    "cancellation": ["退房", "¥50,000.00", "¥49,000.00", "¥1,000.00", "应退还买受人"],
}


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_r_chg_3_the_addendum_of_each_kind_shows_before_after_and_every_buyer(app, db, deal, kind, tmp_path):
    change = approved_change(db, deal, kind)
    context = document_context(db.session, "addendum", change.id, today=TODAY)
    assert context["change"]["number"] == f"BG-{change.id:06d}"
    assert context["deal"]["number"] == deal["sub"].number
    assert [a["name"] for a in context["approvals"]] == [s.decided_by.display_name for s in change.steps]
    assert context["terms"], "every kind changes at least one term"
    text = _text(pdf.render("addendum", context), tmp_path, kind)
    assert "补充协议" in text and deal["sub"].number in text and f"BG-{change.id:06d}" in text
    for buyer in _buyers_now(db, deal["sub"]):  # every buyer after the change, ID in full as the agreement has it
        assert buyer.name in text and buyer.id_number in text
    assert "销售经理" in text and "Manager" in text  # the approval: role and the approver's name
    for words in EXPECTED[kind]:
        assert words in text, (kind, words)


def test_r_chg_2_the_addendum_of_a_swap_reads_units_and_the_new_plan(app, db, deal):
    old_unit = deal["unit"]
    change = approved_change(db, deal, "unit_swap")
    context = document_context(db.session, "addendum", change.id, today=TODAY)
    terms = {t["key"]: (t["before"], t["after"]) for t in context["terms"]}
    assert terms["unit"] == (f"{old_unit.building.name}-{old_unit.number}", f"{old_unit.building.name}-1501")
    assert terms["area"] == (f"{old_unit.area} ㎡", "98.50 ㎡")
    assert terms["price"] == ("¥1,500,000.00", "¥1,400,000.00")
    assert change_plan_no(db.session, change) == 2
    assert [line["amount_due"] for line in context["plan"]] == [Decimal("50000.00"), Decimal("1350000.00")]
    assert context["carried_over"] == Decimal("50000.00")


def test_r_chg_1_no_addendum_for_a_request_not_approved(app, db, deal):
    change = _request(db, deal, "price", {"price": "1450000.00"}, reason="客户要求")
    db.session.commit()
    for status in ("requested", "sent_back", "rejected", "withdrawn"):
        change.status = status
        db.session.commit()
        with raises_rule("R-CHG-1"):
            request_addendum(db.session, deal["manager"], change)
        with raises_rule("R-CHG-1"):
            request_documents(db.session, deal["agent"], "addendum", [change.id])
        with raises_rule("R-CHG-1"):
            document_context(db.session, "addendum", change.id, today=TODAY)
        db.session.rollback()
    assert db.session.scalar(select(Document.id).where(Document.kind == "addendum")) is None


def test_r_chg_3_the_addendum_is_requested_once_and_rendered_by_the_worker(app, db, deal, tmp_path):
    change = approved_change(db, deal, "buyers")
    document = request_addendum(db.session, deal["manager"], change)  # the approver, in the decision's transaction
    assert request_addendum(db.session, deal["manager"], change).id == document.id  # once per change
    db.session.commit()
    assert (document.kind, document.subject_id, document.owner_id) == ("addendum", change.id, deal["agent"].id)
    assert render_document(db.session, document.id) == "done"
    db.session.refresh(document)
    text = _text(document.content, tmp_path)
    assert "李四" in text and SECOND_ID in text
    assert document.file.startswith("补充协议-") and f"BG-{change.id:06d}" in document.title


def test_r_chg_1_an_agent_of_another_deal_cannot_request_or_download_the_addendum(app, db, deal, client, auth):
    change = approved_change(db, deal, "price")
    with raises_rule("R-ALL-1"):
        request_documents(db.session, deal["other"], "addendum", [change.id])
    with raises_rule("R-ALL-1"):
        request_addendum(db.session, deal["other"], change)
    db.session.rollback()
    document = request_addendum(db.session, deal["agent"], change)  # the deal's own agent may
    db.session.commit()
    assert render_document(db.session, document.id) == "done"
    auth.login("li")
    assert client.get(f"/admin/document/download/{document.id}").status_code == 200
    auth.logout()
    auth.login("zhao")
    response = client.post("/admin/document/request/", data={"csrf_token": auth.csrf(), "kind": "addendum",
                                                            "subject_id": str(change.id)})
    assert response.status_code in (302, 403)
    assert db.session.scalar(select(func.count()).select_from(Document).where(Document.kind == "addendum")) == 1
    assert client.get(f"/admin/document/download/{document.id}").status_code == 404
    assert f"/admin/document/download/{document.id}" not in client.get("/admin/document/").get_data(as_text=True)


# --- 2. buyers on the agreement and the signing booking -------------------------------------------

def test_r_chg_3_the_agreement_and_the_booking_list_two_buyers_after_a_buyer_change(app, db, deal, tmp_path):
    sub = deal["sub"]
    first = sub.customer_name
    one = _text(pdf.render("subscription_agreement", document_context(db.session, "subscription_agreement", sub.id,
                                                                      today=TODAY)), tmp_path, "one")
    assert first in one and "李四" not in one and "产权份额" not in one  # one buyer reads as before
    approved_change(db, deal, "buyers")
    context = document_context(db.session, "subscription_agreement", sub.id, today=TODAY)
    assert [(b["name"], b["share"]) for b in context["deal"]["buyers"]] == [(first, Decimal("50.00")),
                                                                            ("李四", Decimal("50.00"))]
    two = _text(pdf.render("subscription_agreement", context), tmp_path, "two")
    for words in (first, "李四", SECOND_ID, "产权份额", "50%"):
        assert words in two, words
    booking = f.contract(db.session, sub, appointment_at=utcnow(), booked_on=TODAY,
                         signing_due_on=TODAY + dt.timedelta(days=10))
    db.session.commit()
    text = _text(pdf.render("signing_booking", document_context(db.session, "signing_booking", booking.id,
                                                                today=TODAY)), tmp_path, "booking")
    for words in (first, "李四", SECOND_ID, "50%"):
        assert words in text, words


def test_r_chg_2_the_agreement_shows_the_plan_in_force_not_the_replaced_one(app, db, deal):
    approved_change(db, deal, "price")
    context = document_context(db.session, "subscription_agreement", deal["sub"].id, today=TODAY)
    assert sum(line["amount_due"] for line in context["lines"]) == Decimal("1450000.00")
    assert all(line["status"] != "Replaced by a change" for line in context["lines"])


# --- 3. the deal's history ----------------------------------------------------------------------------

def test_r_chg_1_the_timeline_shows_request_steps_and_application_in_order(app, db, deal):
    change = approved_change(db, deal, "unit_swap")
    with force_locale("en"):
        steps = deal_timeline(db.session, deal["sub"].id)
    actions = [s.action for s in steps]
    assert actions.index("approve_change") > actions.index("subscribe")
    texts = [f"{s.title} {s.detail}" for s in steps]
    number = f"BG-{change.id:06d}"
    request = next(t for t in texts if number in t and "requested by" in t)
    assert "1501" in request and "客户要求换到低楼层" in request
    approved = next(t for t in texts if "approved" in t and number in t)
    applied = next(t for t in texts if "carried over" in t)
    assert texts.index(request) < texts.index(approved) <= texts.index(applied)
    assert "¥50,000.00 carried over" in applied


def test_r_chg_2_the_history_does_not_show_replaced_lines_as_owed(app, db, deal):
    approved_change(db, deal, "price")
    with force_locale("en"):
        plan = next(s for s in deal_timeline(db.session, deal["sub"].id) if s.action == "generate_plan")
    assert plan.detail.count("Replaced by a change") == plan.detail.count(" due ")
