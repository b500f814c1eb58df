"""Contracts: no signing before the down payment, booking, the lawyer's entry (R-CON-1…4)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from models import Contract, Lead, RuleViolation, Subscription, Unit
from models.contracts import book_signing, sign_contract
from models.payments import signing_gate
from models.payments import record_payment, reverse_payment
from tests import factories as f
from tests.support.rules import raises_rule

TODAY = dt.date(2026, 11, 26)
AT = dt.datetime(2026, 12, 1, 10, 0)


@pytest.fixture
def deal(make_deal):
    """An active mortgage deal on 1,000,000.00: deposit 50,000 paid; down payment 250,000 open."""
    return make_deal(price="1000000.00", method="commercial_mortgage", today=TODAY,
                     staff={"control": ("sales_control", None), "finance": ("finance", None),
                            "lawyer": ("lawyer", "sun"), "manager": ("sales_manager", None)})


def pay(db, deal, amount):
    payment = record_payment(db.session, deal["finance"], deal["sub"].id, amount=amount, paid_on=TODAY,
                             channel="bank_transfer", today=TODAY)
    db.session.commit()
    return payment


def test_r_con_1_the_gate_is_the_deposit_and_down_payment_by_default(db, deal):
    assert signing_gate(db.session, deal["sub"]) == (Decimal("300000.00"), Decimal("50000.00"))


@pytest.mark.parametrize("paid, allowed", [("0", False), ("249999.99", False), ("250000", True)])
def test_r_con_1_booking_is_refused_while_the_down_payment_is_short(app, db, deal, paid, allowed):
    from flask_babel import force_locale
    if paid != "0":
        pay(db, deal, paid)
    if allowed:
        contract = book_signing(db.session, deal["agent"], deal["sub"].id, appointment_at=AT, today=TODAY)
        db.session.commit()
        assert contract.status == "booked" and "身份证" in contract.checklist
        assert contract.signing_due_on == TODAY + dt.timedelta(days=30)
        return
    with raises_rule("R-CON-1") as refused:
        book_signing(db.session, deal["agent"], deal["sub"].id, appointment_at=AT, today=TODAY)
    missing = Decimal("250000") - Decimal(paid)
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        assert f"¥{missing:,.2f}" in str(refused.value) and refused.value.rule == "R-CON-1"
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Contract)) == 0


def test_r_con_1_a_reversal_after_booking_blocks_the_signing(db, deal):
    payment = pay(db, deal, "250000")
    contract = book_signing(db.session, deal["agent"], deal["sub"].id, appointment_at=AT, today=TODAY)
    db.session.commit()
    reverse_payment(db.session, deal["finance"], payment.id, "银行退票", today=TODAY)
    db.session.commit()
    with raises_rule("R-CON-1") as refused:
        sign_contract(db.session, deal["lawyer"], contract.id, number="HT-001", signed_on=TODAY, today=TODAY)
    assert refused.value.rule == "R-CON-1"
    db.session.rollback()
    assert db.session.get(Contract, contract.id).status == "booked"
    assert db.session.get(Subscription, deal["sub"].id).status == "active"


def test_r_con_4_the_lawyer_signs_and_everything_moves_in_one_transaction(db, deal):
    pay(db, deal, "250000")
    contract = book_signing(db.session, deal["lawyer"], deal["sub"].id, appointment_at=AT, today=TODAY)
    db.session.commit()
    with raises_rule("R-ALL-1"):  # only the lawyer enters the contract
        sign_contract(db.session, deal["agent"], contract.id, number="HT-001", signed_on=TODAY, today=TODAY)
    db.session.rollback()
    sign_contract(db.session, deal["lawyer"], contract.id, number="HT-001", signed_on=TODAY, today=TODAY)
    db.session.commit()
    assert db.session.get(Contract, contract.id).status == "signed"
    assert db.session.get(Subscription, deal["sub"].id).status == "contracted"
    assert db.session.get(Unit, deal["unit"].id).status == "signed"
    assert db.session.get(Lead, deal["lead"].id).stage == "signed"


@pytest.mark.parametrize("kw", [
    {"signed_on": TODAY + dt.timedelta(days=1)},   # in the future
    {"signed_on": TODAY - dt.timedelta(days=1)},   # before the booking
    {"number": "   "},
    {"number": "HT-TAKEN"},                        # a duplicate number
])
def test_r_con_4_bad_contract_data_is_refused_and_nothing_is_written(db, deal, make_user, kw):
    pay(db, deal, "250000")
    contract = book_signing(db.session, deal["agent"], deal["sub"].id, appointment_at=AT, today=TODAY)
    taken = f.contract(db.session, f.subscription(db.session, make_user("agent")), number="HT-TAKEN",
                       status="signed", signed_on=TODAY)
    db.session.commit()
    args = {"number": "HT-001", "signed_on": TODAY, "today": TODAY, **kw}
    with raises_rule("R-CON-4"):
        sign_contract(db.session, deal["lawyer"], contract.id, **args)
    db.session.rollback()
    assert db.session.get(Contract, contract.id).status == "booked" and taken.id


@pytest.mark.parametrize("status", ["withdrawn", "forfeited"])
def test_r_con_4_a_withdrawn_or_forfeited_subscription_cannot_be_booked_or_signed(db, deal, status):
    # Paid in full and booked while live: the money check (R-CON-1) passes, so only the status
    # of the deal can refuse what follows.
    sub = deal["sub"]
    pay(db, deal, "250000")
    contract = book_signing(db.session, deal["agent"], sub.id, appointment_at=AT, today=TODAY)
    db.session.commit()
    db.session.get(Subscription, sub.id).status = status
    db.session.commit()
    with raises_rule("R-CON-2"):
        book_signing(db.session, deal["agent"], sub.id, appointment_at=AT, today=TODAY)
    db.session.rollback()
    with raises_rule("R-CON-4"):
        sign_contract(db.session, deal["lawyer"], contract.id, number="HT-X", signed_on=TODAY, today=TODAY)
    db.session.rollback()
    assert db.session.get(Contract, contract.id).status == "booked"


def test_r_con_2_another_agents_customer_cannot_be_booked(db, deal, make_user):
    pay(db, deal, "250000")
    with raises_rule("R-ALL-1"):  # not one of this agent's customers
        book_signing(db.session, make_user("agent"), deal["sub"].id, appointment_at=AT, today=TODAY)


@pytest.mark.postgres
def test_r_con_1_a_reversal_racing_the_signing_never_leaves_a_signed_short_deal(app, db, deal):
    from models import User
    from tests.support.race import race
    payment = pay(db, deal, "250000")
    contract = book_signing(db.session, deal["agent"], deal["sub"].id, appointment_at=AT, today=TODAY)
    db.session.commit()
    # Plain ids: the threads must not touch the test's own session or its objects.
    finance_id, lawyer_id, payment_id, contract_id = (deal["finance"].id, deal["lawyer"].id,
                                                      payment.id, contract.id)

    def reverse(session):
        reverse_payment(session, session.get(User, finance_id), payment_id, "退票", today=TODAY)
        session.commit()
        return "done"

    def sign(session):
        sign_contract(session, session.get(User, lawyer_id), contract_id, number="HT-RACE", signed_on=TODAY,
                      today=TODAY)
        session.commit()
        return "done"

    reversal, signing = race(reverse, sign, app=app, expected=RuleViolation)
    outcome = {name: "refused" if isinstance(result, RuleViolation) else result
               for name, result in (("reversal", reversal), ("signing", signing))}
    db.session.expire_all()
    signed = db.session.get(Contract, contract_id).status == "signed"
    required, paid = signing_gate(db.session, db.session.get(Subscription, deal["sub"].id))
    assert not (signed and paid < required), outcome
    # One of them wins, the other is refused with a reason: never both, never an error.
    assert sorted(outcome.values()) == ["done", "refused"], outcome


def test_r_con_1_after_signing_a_reversal_that_would_leave_the_down_payment_short_is_refused(db, deal):
    payment = pay(db, deal, "250000")
    extra = pay(db, deal, "1000")
    contract = book_signing(db.session, deal["agent"], deal["sub"].id, appointment_at=AT, today=TODAY)
    sign_contract(db.session, deal["lawyer"], contract.id, number="HT-9", signed_on=TODAY, today=TODAY)
    db.session.commit()
    reverse_payment(db.session, deal["finance"], extra.id, "多收退回", today=TODAY)  # still enough
    db.session.commit()
    with raises_rule("R-CON-1"):
        reverse_payment(db.session, deal["finance"], payment.id, "退票", today=TODAY)


def test_r_con_2_booking_and_signing_from_the_grids(client, db, deal):
    from models.base import office_today
    from tests.conftest import Auth
    pay(db, deal, "250000")
    auth = Auth(client)
    auth.login("li")
    token = auth.csrf()
    page = client.post("/admin/subscription/action/", data={"csrf_token": token, "action": "book",
                                                            "rowid": deal["sub"].id}).get_data(as_text=True)
    assert 'name="appointment_at"' in page
    response = client.post("/admin/subscription/book/", data={
        "csrf_token": token, "ids": deal["sub"].id, "kind": "sale", "appointment_at": "2099-12-01T10:00"},
        follow_redirects=True)
    assert "身份证原件" in response.get_data(as_text=True)  # the checklist, told at once
    contract_id = db.session.scalar(select(Contract.id))
    auth.logout()
    auth.login("sun")
    token = auth.csrf()
    client.post("/admin/contract/sign/", data={"csrf_token": token, "ids": contract_id,
                                                "number": "HT-2026-001", "signed_on": office_today().isoformat()})
    db.session.expire_all()
    assert db.session.get(Contract, contract_id).status == "signed"
    assert db.session.get(Subscription, deal["sub"].id).status == "contracted"


def _signed(db, deal, method_is_mortgage=True, today=TODAY):
    pay(db, deal, "250000")
    at = AT if today == TODAY else dt.datetime.combine(today + dt.timedelta(days=5), dt.time(10))
    contract = book_signing(db.session, deal["agent"], deal["sub"].id, appointment_at=at, today=today)
    sign_contract(db.session, deal["lawyer"], contract.id, number="HT-7", signed_on=today, today=today)
    db.session.commit()
    return contract


def test_r_con_6_signing_opens_the_procedures_and_the_lawyer_enters_their_progress(db, deal):
    from models import ContractStep, Notification
    from models.contracts import update_step
    contract = _signed(db, deal)
    steps = {s.kind: s for s in db.session.scalars(select(ContractStep).where(ContractStep.contract_id == contract.id))}
    assert set(steps) == {"online_filing", "notarisation", "mortgage", "registration"}
    assert steps["online_filing"].promised_on == TODAY + dt.timedelta(days=7)
    update_step(db.session, deal["lawyer"], steps["online_filing"].id, status="done", today=TODAY)
    update_step(db.session, deal["lawyer"], steps["mortgage"].id, status="in_progress",
                customer_action="银行流水近6个月", today=TODAY)
    db.session.commit()
    note = db.session.scalar(select(Notification).where(Notification.kind == "contract_step"))
    assert note.user_id == deal["agent"].id and "银行流水" in note.text
    with raises_rule("R-ALL-1"):  # only the lawyer enters the progress
        update_step(db.session, deal["agent"], steps["mortgage"].id, status="done", today=TODAY)
    with raises_rule("R-CON-6"):  # done in the future
        update_step(db.session, deal["lawyer"], steps["registration"].id, status="done",
                    done_on=TODAY + dt.timedelta(days=3), today=TODAY)
    db.session.rollback()
    for kind in ("notarisation", "mortgage", "registration"):
        update_step(db.session, deal["lawyer"], steps[kind].id, status="done", today=TODAY)
    db.session.commit()
    assert db.session.get(Contract, contract.id).status == "registered"


def _all_steps_done(db, deal, contract):
    """Every post-signing step done today, in the project's order (R-CON-6)."""
    from models import ContractStep
    from models.contracts import update_step
    steps = {s.kind: s for s in db.session.scalars(select(ContractStep).where(ContractStep.contract_id == contract.id))}
    for kind in ("online_filing", "notarisation", "mortgage", "registration"):
        if kind in steps:
            update_step(db.session, deal["lawyer"], steps[kind].id, status="done", today=TODAY)
    db.session.commit()


def test_r_con_6_agents_see_their_customers_steps_and_everyone_the_overdue_ones(client, db, deal, make_user):
    from models.base import office_today
    from tests.conftest import Auth
    # The pages judge "late" by the real office day: the contract is signed on it.
    _signed(db, deal, today=office_today())
    Auth(client).login("li")
    assert "HT-7" in client.get("/admin/contract_step/").get_data(as_text=True)
    Auth(client).logout()
    make_user("agent", username="zhang")
    Auth(client).login("zhang")
    assert "HT-7" not in client.get("/admin/contract_step/").get_data(as_text=True)
    Auth(client).logout()
    Auth(client).login("sun")
    assert "HT-7" not in client.get("/admin/contract_step_due/").get_data(as_text=True)  # nothing late yet


def test_r_con_7_the_archive_keeps_registered_originals_and_issues_stamped_copies(client, db, deal, make_user):
    from models import ArchiveRecord, ContractStep, StampedCopy
    from models.contracts import issue_stamped_copy, receive_original, update_step
    archivist = make_user("archive", username="zhou")
    contract = _signed(db, deal)
    with raises_rule("R-CON-7"):  # not registered yet
        receive_original(db.session, archivist, contract.id, received_on=TODAY, location="A-01", today=TODAY)
    db.session.rollback()
    _all_steps_done(db, deal, contract)
    with raises_rule("R-ALL-1"):  # only the archive
        receive_original(db.session, deal["lawyer"], contract.id, received_on=TODAY, location="A-01", today=TODAY)
    db.session.rollback()
    record = receive_original(db.session, archivist, contract.id, received_on=TODAY, location="档案柜A-01",
                              today=TODAY)
    db.session.commit()
    assert db.session.get(Contract, contract.id).status == "archived"
    issue_stamped_copy(db.session, archivist, record.id, to_user_id=deal["agent"].id, issued_on=TODAY,
                       note="客户办理落户", today=TODAY)
    issue_stamped_copy(db.session, archivist, record.id, to_user_id=deal["agent"].id, issued_on=TODAY,
                       today=TODAY)
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(StampedCopy)) == 2
    from tests.conftest import Auth
    Auth(client).login("zhou")
    page = client.get("/admin/archive_record/").get_data(as_text=True)
    assert "档案柜A-01" in page
    assert db.session.scalar(select(func.count()).select_from(ArchiveRecord)) == 1


def test_r_con_5_paid_but_not_signed_in_time_climbs_the_same_ladder(db, deal):
    from models import OverdueEvent
    from models.ladder import run_ladder
    pay(db, deal, "250000")  # the down payment is complete …
    # … and the loan line is not due for 60 days, so the payment ladder stays quiet.
    contract = book_signing(db.session, deal["agent"], deal["sub"].id, appointment_at=AT, today=TODAY)
    db.session.commit()
    due = contract.signing_due_on
    assert run_ladder(db.session, due + dt.timedelta(days=1))["signing_warning"] == 0
    assert run_ladder(db.session, due + dt.timedelta(days=2))["signing_warning"] == 1
    assert run_ladder(db.session, due + dt.timedelta(days=2))["signing_warning"] == 0  # once
    assert run_ladder(db.session, due + dt.timedelta(days=8))["signing_lawyer_letter"] == 1
    counts = run_ladder(db.session, due + dt.timedelta(days=15))
    assert counts["signing_forfeit"] == 1
    assert db.session.get(Subscription, deal["sub"].id).status == "forfeited"
    assert db.session.get(Unit, deal["unit"].id).status == "available"
    causes = set(db.session.scalars(select(OverdueEvent.cause)))
    assert causes == {"signing"}


def test_r_con_5_a_signed_contract_leaves_the_signing_ladder(db, deal):
    from models.ladder import run_ladder
    pay(db, deal, "250000")
    contract = book_signing(db.session, deal["agent"], deal["sub"].id, appointment_at=AT, today=TODAY)
    sign_contract(db.session, deal["lawyer"], contract.id, number="HT-5", signed_on=TODAY, today=TODAY)
    db.session.commit()
    counts = run_ladder(db.session, contract.signing_due_on + dt.timedelta(days=15))
    assert counts["signing_warning"] == counts["signing_forfeit"] == 0


def test_r_con_3_the_booking_lists_what_to_bring_and_tells_the_lawyer(db, deal):
    from models import Notification
    deal["project"].signing_checklist = "身份证原件\n户口簿\n契税款"
    pay(db, deal, "250000")
    contract = book_signing(db.session, deal["agent"], deal["sub"].id, appointment_at=AT, today=TODAY)
    db.session.commit()
    # The project's list, then what the deal's payment method (a commercial mortgage) adds (issue 19, item 12).
    assert contract.checklist.splitlines() == ["身份证原件", "户口簿", "契税款", "首期款收据", "收入证明",
                                               "近六个月银行流水", "银行卡（用于按揭还款）"]
    note = db.session.scalar(select(Notification).where(Notification.kind == "signing_booked"))
    assert note.user_id == deal["lawyer"].id and "2026-12-01 10:00" in note.text


@pytest.mark.parametrize("status", ["withdrawn", "forfeited"])
def test_r_con_4_a_withdrawn_or_forfeited_subscription_cannot_be_signed(db, deal, status):
    pay(db, deal, "250000")
    contract = book_signing(db.session, deal["agent"], deal["sub"].id, appointment_at=AT, today=TODAY)
    db.session.get(Subscription, deal["sub"].id).status = status
    db.session.commit()
    with raises_rule("R-CON-4"):
        sign_contract(db.session, deal["lawyer"], contract.id, number="HT-X", signed_on=TODAY, today=TODAY)


def test_r_con_3_the_appointment_reads_in_office_time(client, db, deal):
    from tests.conftest import Auth
    pay(db, deal, "250000")
    contract = book_signing(db.session, deal["agent"], deal["sub"].id, appointment_at=AT, today=TODAY)
    db.session.commit()
    assert contract.appointment_at == dt.datetime(2026, 12, 1, 2, 0)  # stored in UTC
    Auth(client).login("sun")
    assert "2026-12-01 10:00" in client.get("/admin/contract/").get_data(as_text=True)
