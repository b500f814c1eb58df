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
from jobs.documents import enqueue_documents, render_document
from models import Document
from models.base import utcnow
from models.change_requests import decide_change, request_change, resubmit_change, withdraw_change
from models.changes import DealBuyer
from models.document_contexts import change_plan_no
from models.documents import document_context, request_addendum, request_documents
from models.timeline import deal_timeline
from tests import factories as f
from tests.support.rules import raises_rule
from tests.test_documents import run_jobs

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


# --- set-up: changes through the real path (models.change_requests, models.change_apply) --------

PROPOSALS = {
    "buyers": lambda deal: {"buyers": [
        {"name": deal["sub"].customer_name, "id_type": "resident_id", "id_number": f.VALID_ID_NUMBER,
         "phone": deal["lead"].phone, "share": "50"},
        {"name": "李四", "id_type": "resident_id", "id_number": SECOND_ID, "phone": "13900000002", "share": "50"}]},
    "payment_method": lambda deal: {"payment_method": "commercial_mortgage"},
    "price": lambda deal: {"price": "1450000.00"},
    "cancellation": lambda deal: {"retain_deposit": False, "fee": "1000.00"},
}
REASONS = {"unit_swap": "客户要求换到低楼层", "buyers": "增加配偶为权益人", "payment_method": "客户改为按揭",
           "price": "开发商批准的价格调整", "cancellation": "客户家庭原因退房"}


def ask(db, deal, kind):
    """The agent's request of a change of `kind` (a swap to unit 1501, 1,400,000, of the same building)."""
    if kind == "unit_swap":
        target = f.unit(db.session, deal["unit"].building, number="1501", floor=15, area=Decimal("98.50"),
                        list_price=Decimal("1400000.00"))
        db.session.commit()
        proposal = {"unit_id": target.id}
    else:
        proposal = PROPOSALS[kind](deal)
    change = request_change(db.session, deal["agent"], deal["sub"].id, kind, reason=REASONS[kind],
                            proposal=proposal, today=TODAY)
    db.session.commit()
    return change


def decide(db, user, change, decision="approve", note=""):
    change = decide_change(db.session, user, change.id, decision, note=note, today=TODAY)
    db.session.commit()
    return change


def approved_change(db, deal, kind):
    """A change of `kind` requested by the agent and approved by every step of its chain (the
    manager; the vice-president after them for a cancellation): applied to the deal."""
    change = ask(db, deal, kind)
    for role in change.roles:
        change = decide(db, deal["manager" if role == "sales_manager" else "vp"], change)
    assert change.status == "approved" and change.applied_at is not None
    return change


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
    assert sum(line["amount_due"] for line in context["plan"]) == Decimal("1400000.00")  # the new price
    assert sum(line["amount_paid"] for line in context["plan"]) == Decimal("50000.00")  # the money carried over
    assert context["carried_over"] == Decimal("50000.00")


def test_r_chg_1_no_addendum_for_a_request_not_approved(app, db, deal):
    change = ask(db, deal, "price")
    steps = [lambda c: c, lambda c: decide(db, deal["manager"], c, "send_back", "价格依据不足"),
             lambda c: withdraw_change(db.session, deal["agent"], c.id, reason="客户放弃")]
    for step in steps:  # requested, sent back, withdrawn — and a rejected one
        change = step(change)
        db.session.commit()
        with raises_rule("R-CHG-1"):
            request_addendum(db.session, deal["manager"], change)
        with raises_rule("R-CHG-1"):
            request_documents(db.session, deal["agent"], "addendum", [change.id])
        with raises_rule("R-CHG-1"):
            document_context(db.session, "addendum", change.id, today=TODAY)
        db.session.rollback()
    rejected = decide(db, deal["manager"], ask(db, deal, "payment_method"), "reject", "不符合按揭条件")
    with raises_rule("R-CHG-1"):
        request_addendum(db.session, deal["manager"], rejected)
    db.session.rollback()
    assert db.session.scalar(select(Document.id).where(Document.kind == "addendum")) is None


def test_r_chg_3_the_addendum_is_requested_once_and_rendered_by_the_worker(app, db, deal, tmp_path):
    change = ask(db, deal, "buyers")
    change = decide_change(db.session, deal["manager"], change.id, "approve", today=TODAY)
    document = request_addendum(db.session, deal["manager"], change)  # the approver, in the decision's transaction
    assert request_addendum(db.session, deal["manager"], change).id == document.id  # once per change
    db.session.commit()
    assert (document.kind, document.subject_id, document.owner_id, document.status) == (
        "addendum", change.id, deal["agent"].id, "queued")
    enqueue_documents(db.session, [document])
    run_jobs(app)
    db.session.expire_all()
    document = db.session.get(Document, document.id)
    assert document.status == "done", document.error
    text = _text(document.content, tmp_path)
    assert "李四" in text and SECOND_ID in text
    assert document.file.startswith("补充协议-") and f"BG-{change.id:06d}" in document.title
    assert db.session.scalar(select(func.count()).select_from(Document).where(Document.kind == "addendum")) == 1


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
    old_unit = str(deal["unit"])
    change = ask(db, deal, "unit_swap")
    change = decide(db, deal["manager"], change, "send_back", "请附客户书面申请")
    change = resubmit_change(db.session, deal["agent"], change.id, reason="客户书面申请换到低楼层",
                             proposal=change.proposal, today=TODAY)
    db.session.commit()
    change = decide(db, deal["manager"], change)
    number = f"BG-{change.id:06d}"
    with force_locale("en"):
        steps = [s for s in deal_timeline(db.session, deal["sub"].id) if number in s.title + s.detail
                 or s.title == "Payment plan regenerated"]
    told = [(s.action, f"{s.title}: {s.detail}", s.who) for s in steps]
    # the last approval requests the change's addendum in the same transaction: the history says so
    assert [action for action, _, _ in told] == ["request_change", "send_back_change", "resubmit_change",
                                                 "approve_change", "swap_unit", "swap_unit", "request_document"], told
    assert told[-1][1].startswith("Document requested: Addendum · ") and number in told[-1][1], told[-1]
    told = told[:-1]
    request, sent_back, resubmitted, approved, applied, plan = told
    assert request[1] == (f"Unit swap request {number}: {old_unit} → {deal['unit'].building.name}-1501 "
                          "(requested by Li: 客户要求换到低楼层)") and request[2] == "Li"
    assert sent_back[1] == f"Change sent back: {number} · Sales manager Manager sent back: 请附客户书面申请"
    assert "客户书面申请换到低楼层" in resubmitted[1]
    assert approved[1] == f"Change approved: {number} · Sales manager Manager approved"
    assert "¥1,500,000.00 → ¥1,400,000.00" not in applied[1]  # the units tell a swap; the money follows
    assert applied[1].endswith("the plan regenerated, ¥50,000.00 carried over") and applied[2] == "Manager"
    assert plan[1].startswith("Payment plan regenerated: 1. Deposit ¥50,000.00")


def test_r_chg_2_the_history_does_not_show_replaced_lines_as_owed(app, db, deal):
    approved_change(db, deal, "price")
    with force_locale("en"):
        plan = next(s for s in deal_timeline(db.session, deal["sub"].id) if s.action == "generate_plan")
    assert plan.detail.count("Replaced by a change") == plan.detail.count(" due ")


def test_r_chg_4_the_history_of_a_cancellation_tells_the_refund_and_the_deal_page_shows_it(app, db, deal, client, auth):
    change = approved_change(db, deal, "cancellation")
    number = f"BG-{change.id:06d}"
    with force_locale("en"):
        steps = deal_timeline(db.session, deal["sub"].id)
    told = [(s.action, s.detail) for s in steps if number in s.detail or number in s.title]
    assert [action for action, _ in told] == ["request_change", "approve_change", "approve_change", "cancel_deal",
                                              "request_document"]  # the addendum, with the last approval
    told = told[:-1]
    assert told[-1][1] == f"{number} · refund ¥49,000.00, retained ¥1,000.00, fee ¥1,000.00"
    assert [s.title for s in steps if s.action == "approve_change"] == ["Step approved: on to the next approver",
                                                                        "Change approved"]
    assert "Sales manager Manager approved" in told[1][1] and "Vice-president Vp approved" in told[2][1]
    auth.login("li")  # the deal's page, in the office's language
    page = client.get(f"/admin/subscription/details/?id={deal['sub'].id}").get_data(as_text=True)
    timeline = page[page.index('id="timeline"'):]
    assert 'data-action="cancel_deal"' in timeline and "退款 ¥49,000.00" in timeline and number in timeline


def test_r_chg_2_an_addendum_whose_plan_a_later_change_replaced_says_so(app, db, deal, tmp_path):
    price = approved_change(db, deal, "price")
    approved_change(db, deal, "payment_method")
    context = document_context(db.session, "addendum", price.id, today=TODAY)
    assert context["plan_replaced"] and sum(line["amount_due"] for line in context["plan"]) == Decimal("1450000.00")
    text = _text(pdf.render("addendum", context), tmp_path)
    assert "已被其后的变更替换" in text and "¥1,500,000.00" in text and "¥1,450,000.00" in text
