"""Rules that cannot be bypassed, and money that somebody chases (issue 17): extensions limited in
total, decisions that happen once, audit rows for every status change, the roles in one table,
signed deals on the ladder, drafts that expire, forfeits that tell the truth, the lawyer and the
VP told, the follow-up cycle, the post-signing order, and buttons that ask the rule.
(R-PAY-4…6, R-PAY-8, R-CON-5, R-CON-6, R-LEAD-3, R-SUB-1/2, R-PRICE-2, R-ALL-1, R-ALL-2)"""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from models import (Audit, Contract, ContractStep, Extension, Instalment, Lead, Notification, OverdueEvent,
                    PriceApproval, Subscription, Unit)
from models.contracts import book_signing, sign_contract, update_step
from models.deals import confirm_subscription, decide_price, subscribe, withdraw_subscription
from models.payments import record_deposit
from models.ladder import decide_extension, request_extension, request_signing_extension, run_ladder
from models.payments import record_payment
from models.worklists import handle_event, letters_to_send, rescissions_to_decide, waiting_for
from tests import factories as f
from tests.conftest import Auth
from tests.support.rules import raises_rule

TODAY = f.TODAY
DUE = TODAY + dt.timedelta(days=7)  # one-off: the balance is due 7 days after subscribing


@pytest.fixture
def deal(db, make_deal):
    """An active one-off deal on 1,000,000.00 (balance 950,000.00 due on DUE) and the staff."""
    deal = make_deal(price="1000000.00", method="one_off", today=TODAY,
                     staff={"control": ("sales_control", "chen"), "finance": ("finance", "zhao"),
                            "manager": ("sales_manager", "boss"), "vp": ("vp", "wu"),
                            "lawyer": ("lawyer", "sun")})
    balance = db.session.scalar(select(Instalment).where(Instalment.subscription_id == deal["sub"].id,
                                                         Instalment.seq == 2))
    return {**deal, "balance": balance}


def _extend(db, deal, days, by="manager", approve=True):
    extension = request_extension(db.session, deal["agent"], deal["balance"].id, days, "客户资金周转")
    db.session.commit()
    decide_extension(db.session, deal[by], extension.id, approve)
    db.session.commit()
    return extension


def _beyond_the_manager(db, deal, extension_id, *, approve, match=None):
    """The manager's approval of the extension is refused (R-PAY-6: beyond their limit in total);
    the VP then decides it (`approve`)."""
    with raises_rule("R-PAY-6", match=match):
        decide_extension(db.session, deal["manager"], extension_id, True)
    db.session.rollback()
    decide_extension(db.session, deal["vp"], extension_id, approve)
    db.session.commit()


def _paid_and_booked(db, deal):
    """The balance paid in full and the signing booked for 15:00 today; returns the contract
    (not committed)."""
    record_payment(db.session, deal["finance"], deal["sub"].id, amount="950000", paid_on=TODAY,
                   channel="bank_transfer", today=TODAY)
    return book_signing(db.session, deal["agent"], deal["sub"].id, today=TODAY,
                        appointment_at=dt.datetime.combine(TODAY, dt.time(15)))


def _refused_without_a_reason(db, by, event_id, decision, today):
    """R-PAY-5: `by`'s decision on a ladder event is refused without its reason."""
    with raises_rule("R-PAY-5"):
        handle_event(db.session, by, event_id, decision, "", today=today)
    db.session.rollback()


def _signed(db, deal, method_days=None):
    """Sign the deal's sale contract after paying what signing needs (the deposit suffices for
    one-off? no: everything) — here the balance's down payment share is paid in full."""
    contract = _paid_and_booked(db, deal)
    sign_contract(db.session, deal["lawyer"], contract.id, number="HT-1", signed_on=TODAY, today=TODAY)
    db.session.commit()
    return contract


# --- 5. R-PAY-6 holds in total ------------------------------------------------------------------------

def test_r_pay_6_the_managers_limit_holds_in_total_not_per_request(db, deal):
    """15 + 15 + 15 days by the manager was 45 days without the VP: the limit counts every
    extension of the line."""
    _extend(db, deal, 15)
    second = request_extension(db.session, deal["agent"], deal["balance"].id, 15, "再延期")
    db.session.commit()
    _beyond_the_manager(db, deal, second.id, approve=True, match="30")  # only the VP
    assert db.session.get(Instalment, deal["balance"].id).extended_due_on == DUE + dt.timedelta(days=30)
    # Split small: 1 more day is still beyond the manager.
    third = request_extension(db.session, deal["agent"], deal["balance"].id, 1, "最后一天")
    db.session.commit()
    _beyond_the_manager(db, deal, third.id, approve=False)  # a rejected request does not count


def test_r_pay_6_a_rejected_extension_does_not_count_toward_the_limit(db, deal):
    _extend(db, deal, 15, approve=False)
    _extend(db, deal, 15)  # the manager may: nothing was granted before
    assert db.session.get(Instalment, deal["balance"].id).extended_due_on == DUE + dt.timedelta(days=15)


def test_r_con_5_the_signing_date_is_extended_within_the_same_limit_in_total(db, deal):
    contract = _paid_and_booked(db, deal)
    db.session.commit()
    due = contract.signing_due_on
    first = request_signing_extension(db.session, deal["agent"], contract.id, 10, "客户出差")
    db.session.commit()
    decide_extension(db.session, deal["manager"], first.id, True)
    db.session.commit()
    assert db.session.get(Contract, contract.id).signing_due_on == due + dt.timedelta(days=10)
    second = request_signing_extension(db.session, deal["lawyer"], contract.id, 10, "银行面签排期")
    db.session.commit()
    _beyond_the_manager(db, deal, second.id, approve=True)
    assert db.session.get(Contract, contract.id).signing_due_on == due + dt.timedelta(days=20)
    # The signing ladder counts from the new date: nothing late yet at the old one.
    assert run_ladder(db.session, due + dt.timedelta(days=15))["signing_forfeit"] == 0


def test_r_pay_6_one_request_waits_per_line_at_a_time(db, deal):
    request_extension(db.session, deal["agent"], deal["balance"].id, 3, "原因")
    db.session.commit()
    with raises_rule("R-PAY-6"):
        request_extension(db.session, deal["manager"], deal["balance"].id, 3, "原因")
    db.session.rollback()
    from sqlalchemy.exc import IntegrityError
    with pytest.raises(IntegrityError):  # the database itself refuses a second waiting request
        db.session.add(Extension(subscription_id=deal["sub"].id, instalment_id=deal["balance"].id, days=3,
                                 reason="x", requested_by_id=deal["agent"].id))
        db.session.flush()
    db.session.rollback()


# --- 6. / 7. Decisions happen once, and only on live deals -----------------------------------------

def test_r_pay_6_a_second_decision_is_told_it_was_already_decided(db, deal):
    extension = request_extension(db.session, deal["agent"], deal["balance"].id, 3, "原因")
    db.session.commit()
    decide_extension(db.session, deal["manager"], extension.id, True)
    db.session.commit()
    with raises_rule("R-PAY-6", match="Boss"):
        decide_extension(db.session, deal["vp"], extension.id, False)
    db.session.rollback()
    assert db.session.get(Instalment, deal["balance"].id).extended_due_on == DUE + dt.timedelta(days=3)
    decisions = db.session.scalar(select(func.count()).select_from(Audit).where(
        Audit.entity == "extension", Audit.action.in_(("approve_extension", "reject_extension"))))
    assert decisions == 1


def test_r_pay_6_an_extension_of_a_forfeited_deal_cannot_be_approved(db, deal):
    extension = request_extension(db.session, deal["agent"], deal["balance"].id, 5, "原因")
    db.session.commit()
    run_ladder(db.session, DUE + dt.timedelta(days=15))  # forfeited: the waiting request is closed
    assert db.session.get(Extension, extension.id).status == "rejected"
    with raises_rule("R-PAY-6"):
        decide_extension(db.session, deal["manager"], extension.id, True)
    db.session.rollback()
    assert db.session.get(Instalment, deal["balance"].id).extended_due_on is None
    told = db.session.scalar(select(Notification).where(Notification.kind == "request_closed"))
    assert told.user_id == deal["agent"].id and "挞定" in told.text


def _race(app, first, second, rounds):
    """Run `first` and `second` (each given its own session) at the same instant, `rounds` times;
    returns their outcomes per round."""
    from tests.support.race import race

    def committed(work, n):
        def run(session):
            outcome = work(session, n)
            session.commit()
            return outcome
        return run

    results = []
    for n in range(rounds):
        # Any exception: the loser's refusal is the point.
        a, b = race(committed(first, n), committed(second, n), app=app, expected=Exception)
        results.append({"a": a, "b": b})
    return results


@pytest.mark.postgres
def test_r_pay_6_manager_and_vp_deciding_at_once_record_exactly_one_decision(app, db, deal):
    """Seen: both told it worked, an approval and a rejection both audited, a 3-day request moving
    the due date 6 days. Now exactly one decision wins; the other is told."""
    from models import User
    manager_id, vp_id, line_id = deal["manager"].id, deal["vp"].id, deal["balance"].id
    ids = []
    for _ in range(10):
        extension = request_extension(db.session, deal["agent"], line_id, 3, "原因")
        db.session.commit()
        ids.append(extension.id)
        results = _race(app, lambda s, n: decide_extension(s, s.get(User, manager_id), ids[-1], True).status,
                        lambda s, n: decide_extension(s, s.get(User, vp_id), ids[-1], False).status, 1)
        [outcome] = results
        won = [v for v in outcome.values() if isinstance(v, str)]
        lost = [v for v in outcome.values() if not isinstance(v, str)]
        assert len(won) == 1 and len(lost) == 1 and getattr(lost[0], "rule", None) == "R-PAY-6", outcome
    db.session.expire_all()
    approved = db.session.scalars(select(Extension).where(Extension.status == "approved")).all()
    line = db.session.get(Instalment, line_id)
    assert (line.extended_due_on or line.due_on) == DUE + dt.timedelta(days=3 * len(approved))
    decisions = db.session.scalar(select(func.count()).select_from(Audit).where(
        Audit.entity == "extension", Audit.action.in_(("approve_extension", "reject_extension"))))
    assert decisions == 10


@pytest.mark.postgres
def test_r_pay_6_an_approval_racing_the_forfeit_never_leaves_both(app, db, make_user):
    """Seen: approved on a forfeited deal in 24 of 24 races. Under the deal's lock it is either
    approved and not forfeited, or forfeited and refused."""
    from models import User
    from tests.factories import active_deal
    outcomes = []
    for n in range(8):
        people = active_deal(db.session, make_user, price="1000000.00", payment_method="one_off", today=TODAY,
                             staff={"control": ("sales_control", None), "finance": ("finance", None),
                                    "manager": ("sales_manager", None)}) if n == 0 else None
        if n == 0:
            manager_id, agent = people["manager"].id, people["agent"]
        else:  # the next deal in the same project
            people = _another_deal(db, agent, n)
        line = db.session.scalar(select(Instalment).where(Instalment.subscription_id == people["sub"].id,
                                                          Instalment.seq == 2))
        extension = request_extension(db.session, agent, line.id, 5, "原因")
        db.session.commit()
        ext_id, sub_id = extension.id, people["sub"].id
        [outcome] = _race(app, lambda s, k: decide_extension(s, s.get(User, manager_id), ext_id, True).status,
                          lambda s, k: run_ladder(s, DUE + dt.timedelta(days=15))["forfeit"], 1)
        db.session.expire_all()
        status = db.session.get(Subscription, sub_id).status
        outcomes.append((outcome["a"] if isinstance(outcome["a"], str) else "refused", status))
    assert all(o in (("approved", "active"), ("refused", "forfeited")) for o in outcomes), outcomes


def _another_deal(db, agent, n):
    """A deal like the fixture's on a new unit of the same project, through the real steps."""
    from models import Project, User
    s = db.session
    project = s.scalar(select(Project).where(Project.code == "XJ"))
    unit = f.unit(s, f.building(s, project, name=f"race{n}栋"), list_price=Decimal("1000000.00"))
    lead = f.lead(s, owner=agent, project_=project)
    control = s.scalar(select(User).join(User.roles).where(User.roles.any(name="sales_control")))
    finance = s.scalar(select(User).join(User.roles).where(User.roles.any(name="finance")))
    s.commit()
    sub = subscribe(s, agent, unit_id=unit.id, lead_id=lead.id, payment_method="one_off", deposit="50000",
                    id_number=f.VALID_ID_NUMBER, address="长沙", subscribed_on=TODAY, today=TODAY)
    confirm_subscription(s, control, sub.id)
    record_deposit(s, finance, sub.id, amount="50000", paid_on=TODAY, channel="pos", today=TODAY)
    s.commit()
    return {"sub": sub}


@pytest.mark.postgres
def test_r_price_2_two_price_decisions_at_once_record_one(app, db, deal, make_user):
    from models import User
    s = db.session
    lead = f.lead(s, owner=deal["agent"], project_=deal["project"])
    unit = f.unit(s, f.building(s, deal["project"], name="E9栋"), list_price=Decimal("1000000.00"))
    second_vp = make_user("vp", username="vp2")
    s.commit()
    sub = subscribe(s, deal["agent"], unit_id=unit.id, lead_id=lead.id, payment_method="one_off", deposit="50000",
                    id_number=f.VALID_ID_NUMBER, address="长沙", price="990000", price_reason="老业主",
                    today=TODAY)
    s.commit()
    approval_id, vp_ids = s.scalar(select(PriceApproval.id).where(PriceApproval.subscription_id == sub.id)), \
        (deal["vp"].id, second_vp.id)
    [outcome] = _race(app, lambda x, n: decide_price(x, x.get(User, vp_ids[0]), approval_id, True).status,
                      lambda x, n: decide_price(x, x.get(User, vp_ids[1]), approval_id, False).status, 1)
    assert sorted(type(v).__name__ for v in outcome.values()) == ["RuleViolation", "str"], outcome
    assert s.scalar(select(func.count()).select_from(Audit).where(
        Audit.entity == "price_approval", Audit.action.in_(("approve_price", "reject_price")))) == 1


# --- 8. Every status change has its audit row ---------------------------------------------------------

STATUS_COLUMNS = {"subscription": "status", "unit": "status", "price_approval": "status", "extension": "status",
                  "instalment": "status", "contract": "status", "contract_step": "status",
                  "lead_conflict": "status", "lead": "stage"}


def _last_audited(db, entity, column):
    """{row id: the last value of `column` the audit trail recorded for it}."""
    seen = {}
    for audit in db.session.scalars(select(Audit).where(Audit.entity == entity).order_by(Audit.id)):
        value = (audit.changes or {}).get(column)
        if isinstance(value, list) and len(value) == 2:
            seen[audit.entity_id] = value[1]
        elif isinstance(value, str):  # an inserted row: its values
            seen[audit.entity_id] = value
    return seen


def test_r_all_2_every_status_change_writes_its_audit_row(db, deal, make_user):
    """Withdrawal rejected open price approvals by a bulk UPDATE with no audit row and no decider.
    After every kind of change here, each row's status is the last one its audit trail recorded."""
    from models import Project
    s = db.session
    project = s.get(Project, deal["project"].id)
    building = f.building(s, project, name="E8栋")
    units = [f.unit(s, building, list_price=Decimal("1000000.00")) for _ in range(3)]
    leads = [f.lead(s, owner=deal["agent"], project_=project) for _ in range(3)]
    s.commit()

    def draft(n, **kw):
        return subscribe(s, deal["agent"], unit_id=units[n].id, lead_id=leads[n].id, payment_method="one_off",
                         deposit="50000", id_number=f.VALID_ID_NUMBER, address="长沙", today=TODAY, **kw)
    withdrawn = draft(0, price="990000", price_reason="老业主")  # a price request waits
    s.commit()
    withdraw_subscription(s, deal["agent"], withdrawn.id, "客户放弃")
    expiring = draft(1, price="980000", price_reason="团购")
    request_extension(s, deal["agent"], deal["balance"].id, 3, "原因")  # waits when the deal is forfeited
    s.commit()
    run_ladder(s, DUE + dt.timedelta(days=15))  # expires the draft, forfeits the deal
    assert s.get(Subscription, expiring.id).status == "expired"
    assert s.get(Subscription, deal["sub"].id).status == "forfeited"
    closed = s.scalars(select(PriceApproval)).all()
    assert {p.status for p in closed} == {"rejected"} and all(p.decided_at for p in closed)
    assert s.scalar(select(PriceApproval.decided_by_id).where(PriceApproval.subscription_id == withdrawn.id)) \
        == deal["agent"].id
    for entity, column in STATUS_COLUMNS.items():
        from models import db as _db
        table = _db.metadata.tables[entity]
        audited = _last_audited(db, entity, column)
        for row_id, value in s.execute(select(table.c.id, table.c[column])):
            assert audited.get(str(row_id)) == value, (entity, row_id, value, audited.get(str(row_id)))


# --- 9. Who may: one table ------------------------------------------------------------------------------

def test_r_all_1_extension_decisions_holds_and_releases_are_in_the_permission_table(db, deal, make_user):
    from models.inventory import hold_unit, release_hold
    from models.permissions import OPERATIONS
    assert {"extension.decide", "extension.decide_beyond_limit", "unit.hold", "unit.release",
            "unit.release_any"} <= set(OPERATIONS)
    extension = request_extension(db.session, deal["agent"], deal["balance"].id, 3, "原因")
    db.session.commit()
    for who in ("finance", "control", "agent", "lawyer"):  # straight to the domain, not through a page
        with raises_rule("R-ALL-1"):
            decide_extension(db.session, deal[who], extension.id, True)
        db.session.rollback()
    unit = f.unit(db.session, f.building(db.session, deal["project"], name="E7栋"))
    lead = f.lead(db.session, owner=deal["agent"], project_=deal["project"])
    db.session.commit()
    with raises_rule("R-ALL-1"):
        hold_unit(db.session, deal["finance"], unit_id=unit.id, lead_id=lead.id)
    db.session.rollback()
    hold_unit(db.session, deal["agent"], unit_id=unit.id, lead_id=lead.id)
    db.session.commit()
    other = make_user("agent", username="zhang")
    with raises_rule("R-ALL-1"):
        release_hold(db.session, other, unit.id)  # another agent's hold
    db.session.rollback()
    release_hold(db.session, deal["control"], unit.id)  # sales control may release any
    db.session.commit()


# --- 10. Signed deals climb the ladder; never forfeited -----------------------------------------------

@pytest.fixture
def signed(db, make_user):
    """A signed instalment deal: deposit and 30 % down payment in, three lines still to come."""
    d = f.active_deal(db.session, make_user, price="1000000.00", payment_method="instalments", today=TODAY,
                      staff={"control": ("sales_control", None), "finance": ("finance", None),
                             "manager": ("sales_manager", "boss"), "lawyer": ("lawyer", "sun"), "vp": ("vp", "wu")})
    lines = db.session.scalars(select(Instalment).where(Instalment.subscription_id == d["sub"].id)
                               .order_by(Instalment.seq)).all()
    record_payment(db.session, d["finance"], d["sub"].id, amount=str(lines[1].amount_due), paid_on=TODAY,
                   channel="bank_transfer", today=TODAY)
    contract = book_signing(db.session, d["agent"], d["sub"].id, today=TODAY,
                            appointment_at=dt.datetime.combine(TODAY, dt.time(15)))
    sign_contract(db.session, d["lawyer"], contract.id, number="HT-9", signed_on=TODAY, today=TODAY)
    db.session.commit()
    return {**d, "next": lines[2], "contract": contract}


def test_r_pay_4_a_signed_deal_climbs_to_the_lawyers_letter_and_goes_to_rescission_never_forfeited(db, signed):
    due = signed["next"].due_on
    assert run_ladder(db.session, due - dt.timedelta(days=3))["reminder"] == 1
    assert run_ladder(db.session, due + dt.timedelta(days=2))["warning"] == 1
    counts = run_ladder(db.session, due + dt.timedelta(days=8))
    assert counts["lawyer_letter"] == 1
    told = db.session.scalar(select(Notification).where(Notification.kind == "lawyer_letter_due"))
    assert told.user_id == signed["lawyer"].id  # R-PAY-5: the lawyer is prompted
    counts = run_ladder(db.session, due + dt.timedelta(days=15))
    assert counts["forfeit"] == 0 and counts["rescission"] == 1
    sub = db.session.get(Subscription, signed["sub"].id)
    assert sub.status == "contracted" and db.session.get(Unit, signed["unit"].id).status == "signed"
    [case] = db.session.scalars(select(OverdueEvent).where(rescissions_to_decide())).all()
    deciders = set(db.session.scalars(select(Notification.user_id).where(Notification.kind == "rescission_due")))
    assert {signed["manager"].id, signed["lawyer"].id, signed["vp"].id} <= deciders
    _refused_without_a_reason(db, signed["manager"], case.id, "continue", due + dt.timedelta(days=15))
    with raises_rule("R-ALL-1"):
        handle_event(db.session, signed["finance"], case.id, "rescind", "x", today=due + dt.timedelta(days=15))
    db.session.rollback()
    handle_event(db.session, signed["manager"], case.id, "continue", "客户承诺月底前付清",
                 today=due + dt.timedelta(days=15))
    db.session.commit()
    with raises_rule("R-PAY-5", match="Boss"):  # the lawyer deciding at the same time is told
        handle_event(db.session, signed["lawyer"], case.id, "rescind", "律师意见", today=due + dt.timedelta(days=15))
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(OverdueEvent).where(rescissions_to_decide())) == 0
    assert run_ladder(db.session, due + dt.timedelta(days=16))["rescission"] == 0  # once per due date


def test_r_pay_5_the_lawyer_gets_a_worklist_of_letters_and_marks_them_sent(client, db, signed):
    due = signed["next"].due_on
    run_ladder(db.session, due + dt.timedelta(days=8))
    [letter] = db.session.scalars(select(OverdueEvent).where(letters_to_send())).all()
    auth = Auth(client)
    auth.login("sun")
    home = client.get("/admin/").get_data(as_text=True)
    assert "等待您处理" in home and "待发律师函" in home
    page = client.get("/admin/lawyer_letter_due/").get_data(as_text=True)
    assert signed["sub"].number in page
    token = auth.csrf("/admin/lawyer_letter_due/")
    form = client.post("/admin/lawyer_letter_due/action/", data={"csrf_token": token, "action": "handle",
                                                                 "rowid": letter.id}).get_data(as_text=True)
    assert "已发出" in form
    data = {"csrf_token": token, "ids": str(letter.id), "outcome": "sent", "note": "EMS 1234"}
    client.post("/admin/lawyer_letter_due/handle/", data=data)
    again = client.post("/admin/lawyer_letter_due/handle/", data=data, follow_redirects=True)
    assert "已处理过" in again.get_data(as_text=True)  # a double click is told, nothing changes
    assert signed["sub"].number not in client.get("/admin/lawyer_letter_due/").get_data(as_text=True)
    event = db.session.get(OverdueEvent, letter.id)
    db.session.refresh(event)
    assert (event.outcome, event.handled_by_id, event.handling_note) == ("sent", signed["lawyer"].id, "EMS 1234")


# --- 11. Drafts expire; sell-through counts live deals ------------------------------------------------

def test_r_sub_2_a_subscription_without_its_deposit_expires_after_the_due_date_and_grace(app, db, deal):
    s = db.session
    unit = f.unit(s, f.building(s, deal["project"], name="E6栋"), list_price=Decimal("1000000.00"))
    lead = f.lead(s, owner=deal["agent"], project_=deal["project"], stage="visited")
    s.commit()
    draft = subscribe(s, deal["agent"], unit_id=unit.id, lead_id=lead.id, payment_method="one_off",
                      deposit="50000", id_number=f.VALID_ID_NUMBER, address="长沙", price="990000",
                      price_reason="团购", deposit_due_on=TODAY + dt.timedelta(days=2), today=TODAY)
    s.commit()
    runner = app.test_cli_runner()
    assert "expired 0" in runner.invoke(args=["overdue", "--today", str(TODAY + dt.timedelta(days=3))]).output
    assert s.get(Subscription, draft.id).status == "draft"  # due + 1 day of grace: still held
    result = runner.invoke(args=["overdue", "--today", str(TODAY + dt.timedelta(days=4))])
    assert result.exit_code == 0 and "expired 1" in result.output
    s.expire_all()
    assert s.get(Subscription, draft.id).status == "expired"
    assert s.get(Unit, unit.id).status == "available"
    assert s.get(Lead, lead.id).stage == "visited" and s.get(Lead, lead.id).owner_id == deal["agent"].id
    assert s.scalar(select(PriceApproval.status).where(PriceApproval.subscription_id == draft.id)) == "rejected"
    assert s.scalar(select(Audit.id).where(Audit.entity == "subscription", Audit.entity_id == str(draft.id),
                                           Audit.action == "expire"))
    told = s.scalar(select(Notification).where(Notification.kind == "subscription_expired"))
    assert told.user_id == deal["agent"].id and draft.number in told.text


# --- 12. A forfeit tells the real cause, to everyone who must act ----------------------------------------

def test_r_con_5_a_forfeit_for_late_signing_tells_the_real_cause_to_agent_manager_and_finance(db, deal):
    """A fully paid customer forfeited for not signing was told "逾期 15 天未付款", and nobody else."""
    contract = _paid_and_booked(db, deal)
    db.session.commit()
    assert run_ladder(db.session, contract.signing_due_on + dt.timedelta(days=15))["signing_forfeit"] == 1
    notes = db.session.scalars(select(Notification).where(Notification.kind.in_(("ladder_forfeit", "settlement_due")))).all()
    by_user = {n.user_id: n.text for n in notes}
    assert {deal["agent"].id, deal["manager"].id, deal["finance"].id} <= set(by_user)
    assert all("未付" not in m and "签约" in m for m in by_user.values()), by_user
    assert "¥1,000,000.00" in by_user[deal["finance"].id]  # the money held, for the settlement worklist


# --- 14. Whoever must decide is told, and sees it on the home page ---------------------------------------

def test_r_price_2_the_vp_is_told_of_a_price_request_and_sees_it_waiting(client, db, deal):
    s = db.session
    unit = f.unit(s, f.building(s, deal["project"], name="E5栋"), list_price=Decimal("1000000.00"))
    lead = f.lead(s, owner=deal["agent"], project_=deal["project"])
    s.commit()
    sub = subscribe(s, deal["agent"], unit_id=unit.id, lead_id=lead.id, payment_method="one_off", deposit="50000",
                    id_number=f.VALID_ID_NUMBER, address="长沙", price="980000", price_reason="团购", today=TODAY)
    s.commit()
    told = s.scalar(select(Notification).where(Notification.kind == "price_requested"))
    assert told.user_id == deal["vp"].id and sub.number in told.text
    assert [w["count"] for w in waiting_for(s, deal["vp"])] == [1]
    Auth(client).login("wu")
    home = client.get("/admin/").get_data(as_text=True)
    assert "等待您处理" in home and "待审批的低于表价价格" in home


def test_r_pay_6_the_vp_is_told_of_an_extension_beyond_the_managers_limit(db, deal):
    within = request_extension(db.session, deal["agent"], deal["balance"].id, 10, "原因")
    db.session.commit()
    told = db.session.scalars(select(Notification.user_id).where(Notification.kind == "extension_requested")).all()
    assert told == [deal["manager"].id]  # within the limit: the manager's to decide
    assert [w["count"] for w in waiting_for(db.session, deal["manager"])] == [1]
    assert waiting_for(db.session, deal["vp"]) == []
    decide_extension(db.session, deal["manager"], within.id, True)
    request_extension(db.session, deal["agent"], deal["balance"].id, 10, "原因")  # 20 in total
    db.session.commit()
    told = db.session.scalars(select(Notification).where(Notification.kind == "extension_requested")
                              .order_by(Notification.id.desc())).first()
    assert told.user_id == deal["vp"].id and "副总" in told.text
    assert [w["count"] for w in waiting_for(db.session, deal["vp"])] == [1]
    assert waiting_for(db.session, deal["manager"]) == []  # beyond the manager: not waiting for him


# --- 15. The follow-up cycle ------------------------------------------------------------------------------

def test_r_lead_3_the_next_follow_up_may_not_exceed_the_cycle_unless_the_manager_pauses(db, make_user):
    from models.leads import pause_follow_up, pool_stale_leads, record_follow_up
    s = db.session
    agent, manager = make_user("agent"), make_user("sales_manager")
    lead = f.lead(s, owner=agent)
    s.commit()
    with raises_rule("R-LEAD-3", match=str(TODAY + dt.timedelta(days=3))):
        record_follow_up(s, agent, lead_id=lead.id, channel="phone", content="电话",
                         next_on=TODAY + dt.timedelta(days=19), today=TODAY)
    s.rollback()
    follow_up = record_follow_up(s, agent, lead_id=lead.id, channel="phone", content="电话", today=TODAY)
    assert follow_up.next_on == TODAY + dt.timedelta(days=3)
    with raises_rule("R-ALL-1"):
        pause_follow_up(s, agent, lead.id, TODAY + dt.timedelta(days=30), "出国", today=TODAY)
    s.rollback()
    with raises_rule("R-LEAD-3"):
        pause_follow_up(s, manager, lead.id, TODAY + dt.timedelta(days=30), "", today=TODAY)
    s.rollback()
    pause_follow_up(s, manager, lead.id, TODAY + dt.timedelta(days=30), "客户出国一个月", today=TODAY)
    s.commit()
    record_follow_up(s, agent, lead_id=lead.id, channel="wechat", content="微信", today=TODAY,
                     next_on=TODAY + dt.timedelta(days=30))  # within the pause
    lead.last_activity_at = dt.datetime(2026, 1, 1)
    s.commit()
    assert pool_stale_leads(s, TODAY + dt.timedelta(days=1)) == 0  # paused: not back to the pool
    assert pool_stale_leads(s, TODAY + dt.timedelta(days=31)) == 1


# --- 16. Post-signing steps in order ------------------------------------------------------------------------

def test_r_con_6_post_signing_steps_follow_the_projects_order_and_the_words_are_right(app, db, signed):
    from flask_babel import force_locale

    from models.labels import choice_label
    steps = {s.kind: s for s in db.session.scalars(select(ContractStep).where(
        ContractStep.contract_id == signed["contract"].id))}
    lawyer = signed["lawyer"]
    with raises_rule("R-CON-6"):  # title registration on the signing day, nothing else started
        update_step(db.session, lawyer, steps["registration"].id, status="done", today=TODAY)
    db.session.rollback()
    with raises_rule("R-CON-6"):
        update_step(db.session, lawyer, steps["notarisation"].id, status="in_progress", today=TODAY)
    db.session.rollback()
    update_step(db.session, lawyer, steps["online_filing"].id, status="done", today=TODAY)
    update_step(db.session, lawyer, steps["notarisation"].id, status="done", today=TODAY)
    db.session.commit()
    with raises_rule("R-CON-6"):  # online filing cannot be reopened once notarisation started
        update_step(db.session, lawyer, steps["online_filing"].id, status="in_progress", today=TODAY)
    db.session.rollback()
    update_step(db.session, lawyer, steps["registration"].id, status="done", today=TODAY)  # no mortgage here
    db.session.commit()
    contract = db.session.get(Contract, signed["contract"].id)
    assert contract.status == "registered"
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        assert str(choice_label("contract", "status", "registered")) == "已办产权登记"  # not 已备案


def test_r_con_6_a_projects_own_order_is_checked_when_saved(db):
    from models.contracts import validate_step_prerequisites
    with raises_rule("R-CON-6"):
        validate_step_prerequisites({"notarisation": ["registration"], "registration": ["notarisation"]})
    with raises_rule("R-CON-6"):
        validate_step_prerequisites({"notarisation": ["payment"]})
    assert validate_step_prerequisites({"registration": ["online_filing"]})


# --- 17. Buttons ask the rule ----------------------------------------------------------------------------

def _buttons(html):
    return re.findall(r'<button[^>]*data-step="([a-z_]+)"[^>]*?( disabled)?>', html)


def test_buttons_ask_the_domains_why_not(client, db, deal, make_user):
    s = db.session
    unit = f.unit(s, f.building(s, deal["project"], name="E4栋"), list_price=Decimal("1000000.00"))
    lead = f.lead(s, owner=deal["agent"], project_=deal["project"])
    s.commit()
    waiting = subscribe(s, deal["agent"], unit_id=unit.id, lead_id=lead.id, payment_method="one_off",
                        deposit="50000", id_number=f.VALID_ID_NUMBER, address="长沙", price="980000",
                        price_reason="团购", today=TODAY)
    s.commit()
    auth = Auth(client)
    auth.login("chen")
    page = client.get(f"/admin/subscription/details/?id={waiting.id}").get_data(as_text=True)
    assert ("confirm", " disabled") in _buttons(page) and "副总" in page  # 销控审核 waits for the VP
    auth.logout()
    # 预约签约 says what is missing before anything is sent.
    auth.login("li")
    page = client.get(f"/admin/subscription/details/?id={deal['sub'].id}").get_data(as_text=True)
    assert ("book", " disabled") in _buttons(page) and "¥950,000.00" in page
    # Another agent sees no hold, subscribe or release on a unit held for li's customer.
    from models.inventory import hold_unit
    held = f.unit(s, f.building(s, deal["project"], name="E3栋"))
    hold_unit(s, deal["agent"], unit_id=held.id, lead_id=lead.id)
    s.commit()
    card = client.get(f"/admin/board/unit/{held.id}").get_data(as_text=True)
    assert "认购此房源" in card and "取消保留" in card
    auth.logout()
    make_user("agent", username="zhang")
    auth.login("zhang")
    card = client.get(f"/admin/board/unit/{held.id}").get_data(as_text=True)
    assert "认购此房源" not in card and "取消保留" not in card and "为该客户保留" not in card


def test_a_rollback_after_a_subscription_leaves_nothing_on_sqlite_too(db, deal):
    """A savepoint opened before any write committed on SQLite when released (pysqlite): the
    caller's rollback then left the subscription and the taken unit behind."""
    s = db.session
    unit = f.unit(s, f.building(s, deal["project"], name="E2栋"))
    lead = f.lead(s, owner=deal["agent"], project_=deal["project"])
    s.commit()
    subscribe(s, deal["agent"], unit_id=unit.id, lead_id=lead.id, payment_method="one_off", deposit="50000",
              id_number=f.VALID_ID_NUMBER, address="长沙", today=TODAY)
    s.rollback()
    assert s.get(Unit, unit.id).status == "available"
    assert s.scalar(select(func.count()).select_from(Subscription).where(Subscription.unit_id == unit.id)) == 0


# --- What the hostile review found (each a test that failed before its fix) --------------------------

def test_r_pay_6_a_decision_re_checks_under_the_lock_that_the_deal_is_live(db, deal):
    """A deal that ended without its requests being closed (a path not yet written) still cannot
    have an extension approved: the decision reads the deal's status under its lock."""
    from sqlalchemy import update
    extension = request_extension(db.session, deal["agent"], deal["balance"].id, 5, "原因")
    db.session.commit()
    db.session.execute(update(Subscription).where(Subscription.id == deal["sub"].id).values(status="forfeited"))
    db.session.commit()
    with raises_rule("R-PAY-6", match="已挞定"):
        decide_extension(db.session, deal["manager"], extension.id, True)
    db.session.rollback()
    assert db.session.get(Instalment, deal["balance"].id).extended_due_on is None


def test_r_sub_2_an_approved_extension_of_the_deposit_keeps_the_subscription_alive(db, deal):
    s = db.session
    unit = f.unit(s, f.building(s, deal["project"], name="E10栋"), list_price=Decimal("1000000.00"))
    lead = f.lead(s, owner=deal["agent"], project_=deal["project"])
    s.commit()
    sub = subscribe(s, deal["agent"], unit_id=unit.id, lead_id=lead.id, payment_method="one_off", deposit="50000",
                    id_number=f.VALID_ID_NUMBER, address="长沙", deposit_due_on=TODAY + dt.timedelta(days=2),
                    today=TODAY)
    confirm_subscription(s, deal["control"], sub.id)
    s.commit()
    line = s.scalar(select(Instalment).where(Instalment.subscription_id == sub.id, Instalment.kind == "deposit"))
    extension = request_extension(s, deal["agent"], line.id, 10, "客户定金周转")
    s.commit()
    decide_extension(s, deal["manager"], extension.id, True)
    s.commit()
    assert run_ladder(s, TODAY + dt.timedelta(days=5))["expired"] == 0  # the agent was told: new date +12
    assert s.get(Subscription, sub.id).status == "confirmed"
    assert run_ladder(s, TODAY + dt.timedelta(days=14))["expired"] == 1  # 12 + a day of grace, then no more


def test_r_con_5_booking_again_moves_the_appointment_never_the_date_signing_is_due(db, deal):
    """A second booking opened a second contract with a new due date and a new extension budget,
    while the first still drove the ladder: a fully paid customer was forfeited."""
    first = _paid_and_booked(db, deal)
    db.session.commit()
    due = first.signing_due_on
    later = TODAY + dt.timedelta(days=10)
    again = book_signing(db.session, deal["agent"], deal["sub"].id, today=later,
                         appointment_at=dt.datetime.combine(later + dt.timedelta(days=2), dt.time(10)))
    db.session.commit()
    assert again.id == first.id and db.session.get(Contract, first.id).signing_due_on == due
    assert db.session.scalar(select(func.count()).select_from(Contract)) == 1
    from sqlalchemy.exc import IntegrityError
    with pytest.raises(IntegrityError):  # the database keeps one booking per deal and kind
        f.contract(db.session, deal["sub"], status="booked")
    db.session.rollback()


def test_r_pay_5_a_rescission_decided_ends_the_deal_and_its_money_goes_to_settlement(db, signed):
    from models import LeadArchive
    from models.payments import awaiting_settlement, money_held, record_voucher, settlement_proposal
    due = signed["next"].due_on
    day = due + dt.timedelta(days=15)
    run_ladder(db.session, day)
    [case] = db.session.scalars(select(OverdueEvent).where(rescissions_to_decide())).all()
    handle_event(db.session, signed["vp"], case.id, "rescind", "客户书面表示无力继续付款", today=day)
    db.session.commit()
    sub = db.session.get(Subscription, signed["sub"].id)
    assert sub.status == "rescinded" and sub.rescinded_at is not None
    assert db.session.get(Contract, signed["contract"].id).status == "rescinded"
    assert db.session.get(Unit, signed["unit"].id).status == "available"
    assert db.session.scalar(select(LeadArchive.reason).where(LeadArchive.subscription_id == sub.id)) == "rescission"
    assert run_ladder(db.session, day + dt.timedelta(days=60))["warning"] == 0  # nobody chases a dead deal
    held = money_held(db.session, sub.id)
    assert held == Decimal("300000.00") and settlement_proposal(db.session, sub)["retain"] == Decimal("50000.00")
    assert db.session.scalar(select(func.count()).select_from(Subscription).where(awaiting_settlement())) == 1
    told = db.session.scalar(select(Notification).where(Notification.kind == "settlement_due"))
    assert told.user_id == signed["finance"].id and "解约" in told.text
    with raises_rule("R-CHG-5", match="50,000.00"):  # the agreement retains the deposit, no more
        record_voucher(db.session, signed["finance"], sub.id, kind="retained", amount="300000", issued_on=day,
                       reason="全部没收", today=day)
    db.session.rollback()
    with raises_rule("R-CON-6"):  # its procedures stopped
        step = db.session.scalar(select(ContractStep).where(ContractStep.contract_id == signed["contract"].id))
        update_step(db.session, signed["lawyer"], step.id, status="in_progress", today=day)
    db.session.rollback()


def test_r_pay_5_a_letter_still_owed_is_not_dropped_without_a_reason(db, signed):
    due = signed["next"].due_on
    run_ladder(db.session, due + dt.timedelta(days=8))
    [letter] = db.session.scalars(select(OverdueEvent).where(letters_to_send())).all()
    _refused_without_a_reason(db, signed["lawyer"], letter.id, "not_needed", due + dt.timedelta(days=8))
    handle_event(db.session, signed["lawyer"], letter.id, "not_needed", "客户当面承诺三日内付清，经理同意暂缓",
                 today=due + dt.timedelta(days=8))
    db.session.commit()
