"""Handover (交房, R-AFT-4): only when everything owed is settled — the plan, late fees, the
true-up — and the refusal says what and how much; notices once per deal, in the project's
period; appointments in the office's time; the inspection's failures become defect tickets; the
keys signed for, once, the deal and the unit then reading handed over; the screens and PDFs."""
from __future__ import annotations

import datetime as dt
import subprocess
from decimal import Decimal

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

import pdf
from models import Document, Notification, Payment, Subscription, Ticket, Unit
from models.base import office_local, office_to_utc, office_today
from models.charges import Charge
from models.contracts import book_signing, sign_contract
from models.documents import document_context
from models.handovers import (Handover, HandoverItem, book_handover, hand_over_keys, handover_refusal,
                              notify_handovers, owed_before_handover, record_inspection)
from models.payments import Instalment, open_line, record_payment, reverse_payment
from models.submissions import AlreadySubmitted
from tests.conftest import submission_key
from tests.support.rules import raises_rule

T = office_today()
STAFF = {"control": ("sales_control", None), "finance": ("finance", None), "lawyer": ("lawyer", None),
         "manager": ("sales_manager", "boss"), "service": ("customer_service", "service"),
         "other": ("agent", "zhou")}


def _pay_open_lines(db, deal, sub, skip=("commercial_loan",)):
    for line in db.session.scalars(select(Instalment).where(Instalment.subscription_id == sub.id, open_line())
                                   .order_by(Instalment.seq)).all():
        if line.kind not in skip:
            record_payment(db.session, deal["finance"], sub.id, amount=line.amount_due - line.amount_paid,
                           paid_on=T - dt.timedelta(days=25), channel="bank_transfer", instalment_id=line.id,
                           today=T - dt.timedelta(days=25))
    db.session.commit()


def _sign(db, deal, sub):
    contract = book_signing(db.session, deal["agent"], sub.id, appointment_at=dt.datetime.combine(
        T - dt.timedelta(days=20), dt.time(10)), today=T - dt.timedelta(days=24))
    sign_contract(db.session, deal["lawyer"], contract.id, number=f"HT-{sub.id}", signed_on=T - dt.timedelta(days=20),
                  bank="建设银行" if sub.payment_method == "commercial_mortgage" else None, today=T - dt.timedelta(days=20))
    _surveyed(db, sub.unit)


def _surveyed(db, unit, area=None):
    """The unit surveyed (R-AFT-3) — as built unless `area` says otherwise: no true-up to settle."""
    unit.surveyed_area, unit.surveyed_on = unit.area if area is None else Decimal(area), T - dt.timedelta(days=15)
    db.session.commit()


def _period(db, project, starts=-5, ends=60):
    project.handover_starts_on, project.handover_ends_on = T + dt.timedelta(days=starts), T + dt.timedelta(days=ends)
    db.session.commit()


@pytest.fixture
def deal(make_deal, db):
    """A one-off deal on 1,000,000.00 of agent "li", paid in full and signed; the project's
    handover period from 5 days ago to 60 days ahead."""
    deal = make_deal(price="1000000.00", method="one_off", today=T - dt.timedelta(days=30), staff=STAFF)
    _pay_open_lines(db, deal, deal["sub"])
    _sign(db, deal, deal["sub"])
    _period(db, deal["project"])
    return deal


@pytest.fixture
def owing(make_deal, db, deal):
    """In the same project, a mortgage deal of "li" on 1,000,000.00 signed with its down payment
    paid: its loan line (700,000.00) still open."""
    from tests import factories as f
    unit = f.unit(db.session, f.building(db.session, deal["project"], name="9栋"), list_price=Decimal("1000000"))
    db.session.commit()
    office = {k: deal[k] for k in ("agent", "control", "finance", "project")}
    sub = make_deal(office=office, unit=unit, customer="欠款客户", method="commercial_mortgage",
                    subscribed_on=T - dt.timedelta(days=30))
    _pay_open_lines(db, deal, sub)
    _sign(db, deal, sub)
    return {**deal, "sub": sub, "unit": unit}


def _notified(db, deal) -> Handover:
    created, refused = notify_handovers(db.session, deal["service"], [deal["sub"].id], today=T)
    db.session.commit()
    assert refused == [] and len(created) == 1
    return created[0]


def _inspected(db, deal, failed=()) -> Handover:
    handover = _notified(db, deal)
    results = {i.id: (i.item not in failed, "有问题" if i.item in failed else "") for i in handover.items}
    record_inspection(db.session, deal["service"], handover.id, results, today=T)
    db.session.commit()
    return handover


def _count(db, model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


# --- what is owed -------------------------------------------------------------------------------------

def test_r_aft_4_an_open_plan_line_refuses_the_handover_and_says_what_and_how_much(app, db, owing):
    sub = owing["sub"]
    assert [a for _, a in owed_before_handover(db.session, sub)] == [Decimal("700000.00")]
    with force_locale("en"):
        why = handover_refusal(db.session, sub)
        assert why.rule == "R-AFT-4"
        assert "¥700,000.00" in str(why) and "total ¥700,000.00" in str(why)
    created, refused = notify_handovers(db.session, owing["manager"], [sub.id], today=T)
    assert created == [] and len(refused) == 1 and "¥700,000.00" in str(refused[0][1])
    assert _count(db, Handover) == 0


def test_r_aft_4_a_charge_outstanding_refuses_the_handover_line_by_line_with_the_total(app, db, deal):
    sub = deal["sub"]
    assert handover_refusal(db.session, sub) is None
    db.session.add(Charge(project_id=sub.project_id, subscription_id=sub.id, kind="area_true_up",
                          amount=Decimal("1234.56"), paid=Decimal("234.56")))
    line = db.session.scalar(select(Instalment).where(Instalment.subscription_id == sub.id).limit(1))
    db.session.add(Charge(project_id=sub.project_id, subscription_id=sub.id, kind="late_fee", instalment_id=line.id,
                          amount=Decimal("50.00"), waived=Decimal("50.00")))  # waived in full: owes nothing
    db.session.commit()
    assert [a for _, a in owed_before_handover(db.session, sub)] == [Decimal("1000.00")]
    with force_locale("en"):
        message = str(handover_refusal(db.session, sub))
    assert "Area true-up ¥1,000.00" in message and "total ¥1,000.00" in message and "Late fee" not in message
    with force_locale("zh_Hans_CN"):
        assert "¥1,000.00" in str(handover_refusal(db.session, sub))


def test_r_aft_4_a_deal_not_signed_is_refused(app, db, make_deal):
    deal = make_deal(price="1000000.00", method="one_off", today=T - dt.timedelta(days=30), staff=STAFF)
    _period(db, deal["project"])
    with force_locale("en"):
        assert "sale contract is signed" in str(handover_refusal(db.session, deal["sub"]))


# --- notices ------------------------------------------------------------------------------------------

def test_r_aft_4_notices_go_to_settled_deals_once_with_the_checklist_and_a_batch(app, db, owing):
    deal = {**owing, "sub": db.session.scalar(select(Subscription).where(Subscription.payment_method == "one_off"))}
    subs = [deal["sub"].id, owing["sub"].id]
    created, refused = notify_handovers(db.session, deal["manager"], subs, today=T)
    db.session.commit()
    assert [h.subscription_id for h in created] == [deal["sub"].id]
    assert [s.id for s, _ in refused] == [owing["sub"].id]
    handover = created[0]
    lines = [x.strip() for x in deal["project"].handover_checklist.splitlines() if x.strip()]
    assert [i.item for i in handover.items] == lines and handover.status == "notified"
    notices = db.session.scalars(select(Document).where(Document.kind == "handover_notice")).all()
    assert [d.subject_id for d in notices] == [handover.id] and notices[0].owner_id == deal["agent"].id
    again, refused = notify_handovers(db.session, deal["manager"], [deal["sub"].id], today=T)
    db.session.commit()
    with force_locale("en"):
        assert again == [] and "sent already" in str(refused[0][1])
    assert _count(db, Handover) == 1


def test_r_aft_4_several_notices_make_one_batch(app, db, deal, make_deal):
    from tests import factories as f
    second_unit = f.unit(db.session, f.building(db.session, deal["project"], name="8栋"), list_price=Decimal("800000"))
    db.session.commit()
    office = {k: deal[k] for k in ("agent", "control", "finance", "project")}
    second = make_deal(office=office, unit=second_unit, customer="钱二", subscribed_on=T - dt.timedelta(days=30))
    _pay_open_lines(db, deal, second)
    _sign(db, deal, second)
    created, _ = notify_handovers(db.session, deal["service"], [deal["sub"].id, second.id], today=T)
    db.session.commit()
    docs = db.session.scalars(select(Document).where(Document.kind == "handover_notice")).all()
    assert len(created) == 2 and len(docs) == 2 and docs[0].batch_id is not None and docs[0].batch_id == docs[1].batch_id


def test_r_aft_4_no_handover_period_no_notice_and_after_the_period_neither(app, db, deal):
    deal["project"].handover_starts_on = deal["project"].handover_ends_on = None
    db.session.commit()
    created, refused = notify_handovers(db.session, deal["manager"], [deal["sub"].id], today=T)
    with force_locale("en"):
        assert created == [] and "handover period" in str(refused[0][1])
    _period(db, deal["project"], starts=-30, ends=-1)
    created, refused = notify_handovers(db.session, deal["manager"], [deal["sub"].id], today=T)
    with force_locale("en"):
        assert created == [] and "ended" in str(refused[0][1])


def test_r_aft_4_only_the_manager_and_customer_service_send_notices(app, db, deal):
    from models import RuleViolation
    for who in ("agent", "finance", "lawyer"):
        with pytest.raises(RuleViolation):
            notify_handovers(db.session, deal[who], [deal["sub"].id], today=T)
        db.session.rollback()


# --- appointments -----------------------------------------------------------------------------------------

def test_r_aft_4_booking_is_in_the_office_zone_within_the_period_and_not_in_the_past(app, db, deal):
    handover = _notified(db, deal)
    at = dt.datetime.combine(T + dt.timedelta(days=2), dt.time(10, 30))
    book_handover(db.session, deal["service"], handover.id, at, today=T)
    db.session.commit()
    db.session.refresh(handover)
    assert handover.status == "booked" and handover.appointment_at == office_to_utc(at)
    assert office_local(handover.appointment_at).replace(tzinfo=None) == at
    # the agent is told, since customer service booked it
    note = db.session.scalar(select(Notification).where(Notification.user_id == deal["agent"].id,
                                                        Notification.kind == "handover_booked"))
    assert note is not None and at.strftime("%Y-%m-%d %H:%M") in str(note.params)
    with force_locale("en"), raises_rule("R-AFT-4", match="past"):
        book_handover(db.session, deal["service"], handover.id, at - dt.timedelta(days=3), today=T)
    db.session.rollback()
    # earlier the same day than now (09:00 office time, the booking at 08:00) is the past too
    with force_locale("en"), raises_rule("R-AFT-4", match="past"):
        book_handover(db.session, deal["service"], handover.id, dt.datetime.combine(T, dt.time(8)), today=T,
                      now=office_to_utc(dt.datetime.combine(T, dt.time(9))))
    db.session.rollback()
    with force_locale("en"), raises_rule("R-AFT-4", match="handover period"):
        book_handover(db.session, deal["service"], handover.id, at + dt.timedelta(days=90), today=T)
    db.session.rollback()
    # rebooking moves it; the deal's own agent may, another agent may not
    later = at + dt.timedelta(days=1)
    book_handover(db.session, deal["agent"], handover.id, later, today=T)
    db.session.commit()
    assert db.session.get(Handover, handover.id).appointment_at == office_to_utc(later)
    with force_locale("en"), raises_rule("R-AFT-4", match="agent"):
        book_handover(db.session, deal["other"], handover.id, later, today=T)
    db.session.rollback()


def test_r_aft_4_no_rebooking_once_inspected(app, db, deal):
    handover = _inspected(db, deal)
    with force_locale("en"), raises_rule("R-AFT-4", match="until the inspection"):
        book_handover(db.session, deal["service"], handover.id, dt.datetime.combine(T + dt.timedelta(days=1),
                                                                                     dt.time(10)), today=T)
    db.session.rollback()


# --- inspection ----------------------------------------------------------------------------------------------

def test_r_aft_4_failed_items_open_defect_tickets_kept_by_their_items(app, db, deal):
    handover = _inspected(db, deal, failed=("窗户及玻璃", "卫生间防水"))
    assert handover.status == "inspected" and handover.inspected_on == T
    failed = [i for i in handover.items if i.passed is False]
    assert [i.item for i in failed] == ["窗户及玻璃", "卫生间防水"]
    tickets = db.session.scalars(select(Ticket).where(Ticket.handover_id == handover.id).order_by(Ticket.id)).all()
    assert [t.id for t in tickets] == [i.ticket_id for i in failed]
    assert {(t.category, t.source, t.department, t.status) for t in tickets} == {("defect", "handover", "engineering", "open")}
    assert tickets[0].location == "窗户及玻璃" and tickets[0].lead_id == deal["sub"].lead_id
    assert all(i.passed and i.ticket_id is None for i in handover.items if i not in failed)


def test_r_aft_4_every_item_needs_a_result_and_an_inspection_is_recorded_once(app, db, deal):
    handover = _notified(db, deal)
    with force_locale("en"), raises_rule("R-AFT-4", match="every item"):
        record_inspection(db.session, deal["service"], handover.id, {handover.items[0].id: (True, "")}, today=T)
    db.session.rollback()
    results = {i.id: (True, "") for i in handover.items}
    record_inspection(db.session, deal["service"], handover.id, results, today=T)
    db.session.commit()
    with force_locale("en"), raises_rule("R-AFT-4", match="already"):
        record_inspection(db.session, deal["service"], handover.id, results, today=T)
    db.session.rollback()


# --- keys ----------------------------------------------------------------------------------------------------

def test_r_aft_4_keys_handed_over_show_on_the_deal_and_the_unit_and_queue_the_record(app, db, deal):
    handover = _inspected(db, deal, failed=("地面",))
    done, record = hand_over_keys(db.session, deal["service"], handover.id, signed_by="买受人本人", keys_count=3,
                                  meter_readings="水表 12\n电表 235", today=T)
    db.session.commit()
    db.session.expire_all()
    handover = db.session.get(Handover, handover.id)
    assert (handover.status, handover.keys_handed_on, handover.keys_count, handover.signed_by) == \
        ("handed_over", T, 3, "买受人本人")
    assert db.session.get(Subscription, deal["sub"].id).handed_over_on == T
    unit = db.session.get(Unit, deal["unit"].id)
    assert unit.handed_over_on == T and unit.status == "signed"
    assert record.kind == "handover_record" and record.subject_id == handover.id


def test_r_aft_4_keys_wait_for_the_inspection_and_a_signature(app, db, deal):
    handover = _notified(db, deal)
    with force_locale("en"), raises_rule("R-AFT-4", match="Inspect"):
        hand_over_keys(db.session, deal["service"], handover.id, signed_by="x", keys_count=1, today=T)
    db.session.rollback()
    results = {i.id: (True, "") for i in handover.items}
    record_inspection(db.session, deal["service"], handover.id, results, today=T)
    db.session.commit()
    with force_locale("en"), raises_rule("R-AFT-4", match="signed"):
        hand_over_keys(db.session, deal["service"], handover.id, signed_by="  ", keys_count=1, today=T)
    db.session.rollback()
    with force_locale("en"), raises_rule("R-AFT-4", match="at least one"):
        hand_over_keys(db.session, deal["service"], handover.id, signed_by="x", keys_count=0, today=T)
    db.session.rollback()


def test_r_aft_4_a_payment_reversed_after_the_notice_refuses_the_keys_saying_what_is_owed(app, db, deal, make_deal):
    from tests import factories as f
    unit = f.unit(db.session, f.building(db.session, deal["project"], name="7栋"), list_price=Decimal("1000000"))
    db.session.commit()
    office = {k: deal[k] for k in ("agent", "control", "finance", "project")}
    sub = make_deal(office=office, unit=unit, customer="分期客户", method="instalments",
                    subscribed_on=T - dt.timedelta(days=30))
    _pay_open_lines(db, deal, sub)
    _sign(db, deal, sub)
    handover = _inspected(db, {**deal, "sub": sub})
    last = db.session.scalar(select(Payment).where(Payment.subscription_id == sub.id).order_by(Payment.id.desc()))
    assert last.amount == Decimal("200000.00")  # the last line of the plan (20 %), paid after the signing gate
    reverse_payment(db.session, deal["finance"], last.id, "银行退票", today=T)
    db.session.commit()
    with force_locale("en"), raises_rule("R-AFT-4", match="¥200,000.00; total ¥200,000.00"):
        hand_over_keys(db.session, deal["service"], handover.id, signed_by="x", keys_count=2, today=T)
    db.session.rollback()
    assert db.session.get(Handover, handover.id).status == "inspected"
    assert db.session.get(Subscription, sub.id).handed_over_on is None


def test_r_aft_4_the_same_keys_form_sent_twice_hands_over_once(app, db, deal):
    handover = _inspected(db, deal)
    key = "k" * 32
    hand_over_keys(db.session, deal["service"], handover.id, signed_by="x", keys_count=2, key=key, today=T)
    db.session.commit()
    with pytest.raises(AlreadySubmitted):
        hand_over_keys(db.session, deal["service"], handover.id, signed_by="x", keys_count=2, key=key, today=T)
    db.session.rollback()
    assert _count(db, Document, Document.kind == "handover_record") == 1


@pytest.mark.postgres
def test_r_aft_4_two_people_handing_over_the_same_keys_at_once_hand_over_once(app, db, deal):
    from models import User
    from tests.support.race import race
    handover = _inspected(db, deal)
    service_id, handover_id = deal["service"].id, handover.id

    def keys(session):
        hand_over_keys(session, session.get(User, service_id), handover_id, signed_by="x", keys_count=2, today=T)
        session.commit()
        return "done"

    results = race(keys, keys, app=app, expected=(Exception,))
    assert results.count("done") == 1, results
    assert _count(db, Document, Document.kind == "handover_record") == 1


# --- screens ---------------------------------------------------------------------------------------------------

def _post(client, auth, view, action, row_id, page="/admin/"):
    return client.post(f"/admin/{view}/action/", data={"csrf_token": auth.csrf(page), "action": action,
                                                      "rowid": row_id, "url": f"/admin/{view}/"},
                       follow_redirects=True)


def _english(client, auth):
    client.post("/language", data={"lang": "en", "next": "/admin/", "csrf_token": auth.csrf()})


def test_r_aft_4_screens_ready_list_notice_batch_action_and_refusals(app, db, client, auth, owing):
    deal = {"sub": db.session.scalar(select(Subscription).where(Subscription.payment_method == "one_off"))}
    auth.login("service")
    _english(client, auth)
    page = client.get("/admin/handover_ready/").get_data(as_text=True)
    assert deal["sub"].number in page and owing["sub"].number in page and "¥700,000.00" in page
    done = client.post("/admin/handover_ready/action/", data={
        "csrf_token": auth.csrf(), "action": "notify", "rowid": [deal["sub"].id, owing["sub"].id],
        "url": "/admin/handover_ready/"}, follow_redirects=True).get_data(as_text=True)
    assert "1 handover notice(s) sent" in done and owing["sub"].number in done and "¥700,000.00" in done
    assert _count(db, Handover) == 1
    page = client.get("/admin/handover_ready/").get_data(as_text=True)
    assert deal["sub"].number not in page and owing["sub"].number in page


def test_r_aft_4_screens_book_inspect_and_hand_over_through_the_grid(app, db, client, auth, deal):
    handover = _notified(db, deal)
    auth.login("service")
    _english(client, auth)
    grid = client.get("/admin/handover/").get_data(as_text=True)
    assert deal["sub"].number in grid and 'data-step="book"' in grid and 'data-step="inspect"' in grid
    form = _post(client, auth, "handover", "book", handover.id).get_data(as_text=True)
    assert 'name="appointment_at"' in form
    at = dt.datetime.combine(T + dt.timedelta(days=3), dt.time(14, 0))
    client.post("/admin/handover/book/", data={"csrf_token": auth.csrf(), "ids": str(handover.id),
                                               "appointment_at": at.strftime("%Y-%m-%dT%H:%M")})
    db.session.expire_all()
    assert db.session.get(Handover, handover.id).appointment_at == office_to_utc(at)
    grid = client.get("/admin/handover/").get_data(as_text=True)
    assert at.strftime("%Y-%m-%d %H:%M") in grid  # shown in the office's time
    form = _post(client, auth, "handover", "inspect", handover.id).get_data(as_text=True)
    items = db.session.scalars(select(HandoverItem).where(HandoverItem.handover_id == handover.id)
                               .order_by(HandoverItem.seq)).all()
    assert f'name="item_{items[0].id}"' in form
    data = {"csrf_token": auth.csrf(), "ids": str(handover.id), f"item_{items[1].id}": "fail",
            f"note_{items[1].id}": "玻璃划痕", **{f"item_{i.id}": "pass" for i in items if i is not items[1]}}
    done = client.post("/admin/handover/inspect/", data=data, follow_redirects=True).get_data(as_text=True)
    assert "1 defect(s)" in done
    ticket = db.session.scalar(select(Ticket).where(Ticket.handover_id == handover.id))
    details = client.get(f"/admin/handover/details/?id={handover.id}").get_data(as_text=True)
    assert ticket.number in details and "玻璃划痕" in details and items[0].item in details
    form = _post(client, auth, "handover", "keys", handover.id).get_data(as_text=True)
    key = submission_key(form)
    keys = {"csrf_token": auth.csrf(), "ids": str(handover.id), "submission_key": key, "signed_by": "钱先生",
            "keys_count": "3", "meter_readings": "水表 1", "on": T.isoformat()}
    client.post("/admin/handover/keys/", data=keys, follow_redirects=True)
    again = client.post("/admin/handover/keys/", data=keys, follow_redirects=True).get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Handover, handover.id).status == "handed_over"
    assert _count(db, Document, Document.kind == "handover_record") == 1 and "alert" in again
    deal_page = client.get(f"/admin/subscription/details/?id={deal['sub'].id}").get_data(as_text=True)
    assert 'class="handed-over"' in deal_page and T.isoformat() in deal_page
    deals = client.get("/admin/subscription/").get_data(as_text=True)
    assert "status-handed_over" in deals


def test_r_aft_4_screens_scope_agents_to_their_deals_and_hide_steps_they_may_not_take(app, db, client, auth, deal):
    handover = _notified(db, deal)
    auth.login("zhou")  # another agent
    assert deal["sub"].number not in client.get("/admin/handover/").get_data(as_text=True)
    assert client.get(f"/admin/handover/details/?id={handover.id}").status_code in (302, 404) or \
        deal["sub"].number not in client.get(f"/admin/handover/details/?id={handover.id}").get_data(as_text=True)
    auth.logout()
    auth.login("li")  # the deal's agent: may book, not inspect nor hand over
    grid = client.get("/admin/handover/").get_data(as_text=True)
    assert deal["sub"].number in grid and 'data-step="book"' in grid and 'data-step="inspect"' not in grid
    assert client.get("/admin/handover_ready/").status_code == 403
    refused = client.post("/admin/handover/inspect/", data={"csrf_token": auth.csrf(), "ids": str(handover.id)})
    assert refused.status_code == 403


def test_r_aft_4_the_owed_money_shows_on_the_deal_page(app, db, client, auth, owing):
    auth.login("service")
    _english(client, auth)
    page = client.get(f"/admin/subscription/details/?id={owing['sub'].id}").get_data(as_text=True)
    assert 'id="deal-handover"' in page and "¥700,000.00" in page


def test_r_aft_4_customer_service_sees_the_handovers_booked_today_on_the_home_page(app, db, client, auth, deal):
    from models import User
    from models.worklists import waiting_for
    handover = _notified(db, deal)
    late = dt.datetime.combine(T, dt.time(23, 0))
    book_handover(db.session, deal["service"], handover.id, late, today=T,
                  now=office_to_utc(dt.datetime.combine(T, dt.time(0, 1))))
    db.session.commit()
    with force_locale("en"):
        items = {str(i["label"]): i for i in waiting_for(db.session, db.session.get(User, deal["service"].id))}
    assert items["Handovers booked today"]["count"] == 1
    auth.login("service")
    grid = client.get(items["Handovers booked today"]["link"]).get_data(as_text=True)
    assert deal["sub"].number in grid


# --- PDFs ----------------------------------------------------------------------------------------------------

def _text(data: bytes, tmp_path, name) -> str:
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(data)
    subprocess.run(["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "1", path, tmp_path / name], check=True)
    assert (tmp_path / f"{name}-1.png").stat().st_size > 5000  # a page with ink on it
    return subprocess.run(["pdftotext", path, "-"], check=True, capture_output=True, text=True).stdout


def test_r_aft_4_the_notice_and_the_record_read_what_they_must(app, db, deal, tmp_path):
    handover = _inspected(db, deal, failed=("卫生间防水",))
    notice = _text(pdf.render("handover_notice", document_context(db.session, "handover_notice", handover.id)),
                   tmp_path, "notice")
    for words in ("交房通知书", deal["sub"].number, "交房期", "身份证件原件", "买卖合同", "收据", "预约方式",
                  deal["project"].name):
        assert words in notice, words
    hand_over_keys(db.session, deal["service"], handover.id, signed_by="签收人甲", keys_count=4,
                   meter_readings="水表 00012\n电表 00235", today=T)
    db.session.commit()
    ticket = db.session.scalar(select(Ticket).where(Ticket.handover_id == handover.id))
    record = _text(pdf.render("handover_record", document_context(db.session, "handover_record", handover.id)),
                   tmp_path, "record")
    for words in ("房屋交接记录", "签收人甲", "4把", "水表 00012", "卫生间防水", "不合格", ticket.number, "遗留问题",
                  "买受人（签收钥匙）"):
        assert words in record, words


# --- the area true-up before the handover (R-AFT-3 → R-AFT-4) ----------------------------------------

def test_r_aft_4_no_surveyed_area_no_notice_and_no_keys(app, db, deal):
    sub, unit = deal["sub"], deal["sub"].unit
    unit.surveyed_area = None
    db.session.commit()
    with force_locale("en"):
        created, refused = notify_handovers(db.session, deal["service"], [sub.id], today=T)
        assert created == [] and "no surveyed area" in str(refused[0][1])
    db.session.rollback()
    _surveyed(db, unit)
    handover = _inspected(db, deal)
    unit.surveyed_area = None  # the survey withdrawn after the notice: the keys wait for it
    db.session.commit()
    with force_locale("en"), raises_rule("R-AFT-4", match="no surveyed area"):
        hand_over_keys(db.session, deal["service"], handover.id, signed_by="x", keys_count=2, today=T)
    db.session.rollback()
    assert db.session.get(Handover, handover.id).status == "inspected"


def test_r_aft_4_the_true_up_is_computed_applied_and_settled_before_the_notice(app, db, deal):
    from models.true_ups import apply_batch, compute_batch
    sub = deal["sub"]
    _surveyed(db, sub.unit, area=sub.unit.area * Decimal("1.02"))  # 2 % larger: the buyer owes the difference
    with force_locale("en"):
        assert "compute and apply the area true-up" in str(handover_refusal(db.session, sub))
        batch = compute_batch(db.session, deal["control"], sub.unit.building_id, today=T)
        db.session.commit()
        assert "computed but not applied" in str(handover_refusal(db.session, sub))
        created, refused = notify_handovers(db.session, deal["service"], [sub.id], today=T)
        assert created == [] and "computed but not applied" in str(refused[0][1])
        db.session.rollback()
        apply_batch(db.session, deal["finance"], batch.id, today=T)
        db.session.commit()
        assert "Area true-up ¥20,000.00" in str(handover_refusal(db.session, sub))  # the bill, before the keys


def test_r_aft_4_the_notice_is_not_rendered_while_money_is_owed_and_says_what(app, db, deal):
    handover = _notified(db, deal)
    document_context(db.session, "handover_notice", handover.id)  # settled: it renders
    sub = deal["sub"]
    line = db.session.scalar(select(Instalment).where(Instalment.subscription_id == sub.id).limit(1))
    db.session.add(Charge(project_id=sub.project_id, subscription_id=sub.id, kind="late_fee", instalment_id=line.id,
                          amount=Decimal("321.00")))  # billed after the notice went out
    db.session.commit()
    with force_locale("en"), raises_rule("R-AFT-4", match="Late fee ¥321.00; total ¥321.00"):
        document_context(db.session, "handover_notice", handover.id)
