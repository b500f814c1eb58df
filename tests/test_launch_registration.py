"""Opening day, intent registration (issue 24, R-LCH-1, 认筹): a launch of a project's buildings,
buyers registered with identity, phone and eligibility answers, the intent deposit received with a
receipt from the project's one receipt sequence, refunded by a voucher or converted into the deposit
of the deal chosen on the day — each once; registrations never paid expire; cards past their expiry
are refunds due."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from models import Audit, IntentPayment, Launch, LaunchEntry, Lead, Notification, Payment, Subscription
from models.errors import PermissionDenied, RuleViolation
from models.launches import (convert_intent_deposit, create_launch, entry_may_choose, expire_entries,
                             record_intent_deposit, refund_intent_deposit, refunds_due, register_entry,
                             update_launch)
from models.submissions import AlreadySubmitted, new_key
from tests import factories as f
from tests.conftest import ON_POSTGRES

TODAY = dt.date(2026, 11, 26)
PHONE = "13912345678"
ID_NUMBER = f.VALID_ID_NUMBER  # 110101199003074573
ID_NUMBER_2 = "11010119900307803X"
QUESTION = "持有本市购房资格"


def english(exc) -> str:
    from flask_babel import force_locale
    with force_locale("en"):
        return str(exc)


def refused(match: str, exc_type=RuleViolation):
    return _Refusal(match, exc_type)


class _Refusal:
    def __init__(self, match, exc_type):
        self.match, self.exc_type = match, exc_type

    def __enter__(self):
        self._raises = pytest.raises(self.exc_type)
        self.caught = self._raises.__enter__()
        return self.caught

    def __exit__(self, *exc):
        result = self._raises.__exit__(*exc)
        assert self.match in english(self.caught.value), english(self.caught.value)
        return result


def _count(db, model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def launch_fields(office, **kw):
    fields = dict(name="一期开盘", building_ids=[office["building"].id],
                  registration_opens_on=TODAY - dt.timedelta(days=5), registration_closes_on=TODAY + dt.timedelta(days=5),
                  selection_on=TODAY + dt.timedelta(days=7), intent_deposit="50000",
                  card_valid_until=TODAY + dt.timedelta(days=30), questions=f"{QUESTION}\n无不良征信记录\n",
                  groups_ordered=True, slot_minutes=5, slot_size=10, missed_rule="requeue")
    fields.update(kw)
    return fields


@pytest.fixture
def office(db, make_user):
    s = db.session
    project = f.project(s, code="KP")
    building = f.building(s, project)
    units = [f.unit(s, building) for _ in range(3)]
    other = f.building(s, project)
    people = {"manager": make_user("sales_manager", username="kp_manager"),
              "agent": make_user("agent", username="kp_agent"), "agent2": make_user("agent", username="kp_agent2"),
              "finance": make_user("finance", username="kp_finance"),
              "control": make_user("sales_control", username="kp_control")}
    s.commit()
    office = {"project": project, "building": building, "other": other, "units": units, **people}
    office["launch"] = create_launch(s, people["manager"], project_id=project.id, **launch_fields(office))
    s.commit()
    return office


def _register(db, office, who="agent", phone=PHONE, id_number=ID_NUMBER, answers=None, first_home=True,
              today=TODAY, name="王先生", **kw):
    entry = register_entry(db.session, office[who], launch_id=office["launch"].id, name=name, phone=phone,
                           id_type="resident_id", id_number=id_number, address="长沙市岳麓区",
                           answers=answers if answers is not None else {QUESTION: True, "无不良征信记录": "yes"},
                           first_home=first_home, today=today, **kw)
    db.session.commit()
    return entry


def _paid(db, office, **kw):
    entry = _register(db, office, **kw)
    record_intent_deposit(db.session, office["finance"], entry.id, paid_on=TODAY, channel="pos", today=TODAY)
    db.session.commit()
    return entry


# --- the launch (R-LCH-1) -------------------------------------------------------------------------

def test_r_lch_1_a_launch_keeps_its_buildings_dates_deposit_and_questions(db, office):
    launch = office["launch"]
    assert launch.status == "registration" and launch.intent_deposit == Decimal("50000.00")
    assert launch.questions == [QUESTION, "无不良征信记录"]
    assert [b.id for b in launch.buildings] == [office["building"].id]
    assert _count(db, Audit, Audit.entity == "launch", Audit.action == "launch_create") == 1


@pytest.mark.parametrize("change, match", [
    ({"registration_closes_on": TODAY - dt.timedelta(days=9)}, "dates must follow each other"),
    ({"card_valid_until": TODAY}, "dates must follow each other"),
    ({"intent_deposit": "0"}, "The intent deposit must be more than zero"),
    ({"building_ids": []}, "Choose the buildings"),
    ({"name": " "}, "Name the launch"),
    ({"slot_minutes": 0}, "A slot lasts"),
    ({"missed_rule": "forgive"}, "misses his slot"),
])
def test_r_lch_1_a_launch_with_bad_settings_is_refused(db, office, change, match):
    with refused(match):
        create_launch(db.session, office["manager"], project_id=office["project"].id,
                      **launch_fields(office, **{"building_ids": [office["other"].id], **change}))


def test_r_lch_1_a_building_is_in_one_open_launch_and_of_the_launch_s_project(db, office):
    with refused("already offered at the launch 一期开盘"):
        create_launch(db.session, office["manager"], project_id=office["project"].id, **launch_fields(office))
    db.session.rollback()
    elsewhere = f.building(db.session, f.project(db.session))
    db.session.commit()
    with refused("buildings of its own project only"):
        create_launch(db.session, office["manager"], project_id=office["project"].id,
                      **launch_fields(office, building_ids=[elsewhere.id]))
    db.session.rollback()
    office["launch"].status = "closed"  # a closed launch frees its buildings
    db.session.commit()
    again = create_launch(db.session, office["manager"], project_id=office["project"].id, **launch_fields(office))
    assert again.id != office["launch"].id


def test_r_lch_1_only_the_manager_or_admin_manages_launches(db, office):
    for who in ("agent", "finance", "control"):
        with pytest.raises(PermissionDenied):
            create_launch(db.session, office[who], project_id=office["project"].id,
                          **launch_fields(office, building_ids=[office["other"].id]))


def test_r_lch_1_a_launch_is_edited_while_registration_is_open_then_only_its_selection_settings(db, office):
    launch = office["launch"]
    update_launch(db.session, office["manager"], launch.id, building_ids=[office["building"].id, office["other"].id],
                  questions=[QUESTION])
    db.session.commit()
    assert len(launch.buildings) == 2 and launch.questions == [QUESTION]
    launch.status = "published"
    db.session.commit()
    with refused("only the selection's settings"):
        update_launch(db.session, office["manager"], launch.id, intent_deposit="60000")
    db.session.rollback()
    update_launch(db.session, office["manager"], launch.id, slot_minutes=8, slot_size=20, missed_rule="out")
    db.session.commit()
    assert (launch.slot_minutes, launch.slot_size, launch.missed_rule) == (8, 20, "out")
    launch.status = "selecting"
    db.session.commit()
    with refused("can no longer be edited"):
        update_launch(db.session, office["manager"], launch.id, slot_minutes=9)


# --- registration (R-LCH-1) -----------------------------------------------------------------------

def test_r_lch_1_registration_numbers_cards_and_registers_the_customer_for_his_agent(db, office):
    first = _register(db, office)
    second = _register(db, office, phone="13912345679", id_number=ID_NUMBER_2, first_home=False,
                       answers={QUESTION: True, "无不良征信记录": False})
    launch_id = office["launch"].id
    assert (first.number, second.number) == (f"RC{launch_id:02d}-0001", f"RC{launch_id:02d}-0002")
    assert first.eligible and first.group_name == "first_home" and first.status == "registered"
    # a "no" is recorded, not refused: the office sees why the buyer is not eligible
    assert not second.eligible and second.answers == {QUESTION: True, "无不良征信记录": False}
    lead = db.session.get(Lead, first.lead_id)
    assert lead.phone == PHONE and lead.owner_id == office["agent"].id and first.agent_id == office["agent"].id
    assert _count(db, Audit, Audit.entity == "launch_entry", Audit.action == "launch_register") == 2


def test_r_lch_1_the_phone_is_read_as_people_type_it_and_an_existing_customer_is_reused(db, office):
    lead = f.lead(db.session, owner=office["agent"], project_=office["project"], phone=PHONE)
    db.session.commit()
    entry = _register(db, office, phone="+86 139-1234-5678")
    assert entry.phone == PHONE and entry.lead_id == lead.id
    assert _count(db, Lead, Lead.phone == PHONE) == 1


def test_r_lch_1_every_question_is_answered_and_the_document_is_valid(db, office):
    with refused("Answer every eligibility question"):
        _register(db, office, answers={QUESTION: True})
    db.session.rollback()
    with refused("not a valid phone number"):
        _register(db, office, phone="12345")
    db.session.rollback()
    with pytest.raises(RuleViolation):
        _register(db, office, id_number="110101199003074574")  # a wrong check digit
    db.session.rollback()
    assert _count(db, LaunchEntry) == 0


def test_r_lch_1_registration_only_while_the_launch_takes_registrations(db, office):
    with refused("Registration for 一期开盘 is open from"):
        _register(db, office, today=TODAY + dt.timedelta(days=6))
    db.session.rollback()
    office["launch"].status = "published"
    db.session.commit()
    with refused("Registration for 一期开盘 is open from"):
        _register(db, office)


def test_r_lch_1_one_registration_per_phone_and_per_document_while_it_counts(db, office):
    entry = _register(db, office)
    with refused(f"This phone is already registered at this launch (card {entry.number})"):
        _register(db, office, id_number=ID_NUMBER_2)
    db.session.rollback()
    with refused(f"This identity document is already registered at this launch (card {entry.number})"):
        _register(db, office, phone="13912345679")
    db.session.rollback()
    entry.status = "expired"  # no longer counts: the phone and the document are free again
    db.session.commit()
    again = _register(db, office)
    assert again.number.endswith("-0002")


def test_r_lch_1_a_race_of_one_phone_is_decided_by_the_unique_index(db, office, monkeypatch):
    """Both checks passed before either wrote (as two transactions at the same moment): the
    partial unique index refuses the second insert, told as the same refusal, no card number lost."""
    import models.launches as launches
    first = _register(db, office)
    real, calls = launches.counting_entry, []

    def blind_once(*args):
        calls.append(args)
        return None if len(calls) == 1 else real(*args)

    monkeypatch.setattr(launches, "counting_entry", blind_once)
    with refused(f"This phone is already registered at this launch (card {first.number})"):
        _register(db, office, id_number=ID_NUMBER_2)
    db.session.rollback()
    monkeypatch.undo()
    assert _count(db, LaunchEntry) == 1
    assert _register(db, office, phone="13912345679", id_number=ID_NUMBER_2).number.endswith("-0002")


def test_r_lch_1_an_agent_registers_only_his_own_customers_the_manager_anyone(db, office):
    lead = f.lead(db.session, owner=office["agent2"], project_=office["project"], phone=PHONE,
                  protected_until=TODAY + dt.timedelta(days=3))
    db.session.commit()
    with refused(f"Customer of {office['agent2'].display_name}, protected until "
                 f"{(TODAY + dt.timedelta(days=3)).isoformat()}. Only his agent or the sales manager"):
        _register(db, office)
    db.session.rollback()
    entry = _register(db, office, who="manager")
    assert entry.lead_id == lead.id and entry.agent_id == office["agent2"].id  # the owner's row
    for who in ("finance", "control"):
        with pytest.raises(PermissionDenied):
            _register(db, office, who=who, phone="13912345679", id_number=ID_NUMBER_2)


def test_r_lch_1_a_registration_form_sent_twice_registers_once(db, office):
    key = new_key()
    entry = _register(db, office, key=key)
    with pytest.raises(AlreadySubmitted) as caught:
        _register(db, office, key=key)
    assert caught.value.result == entry.number
    db.session.rollback()
    assert _count(db, LaunchEntry) == 1


# --- the deposit (R-LCH-1) ------------------------------------------------------------------------

def test_r_lch_1_the_deposit_continues_the_project_s_receipt_sequence_without_a_gap(db, office, make_deal):
    people = {"agent": office["agent"], "control": office["control"], "finance": office["finance"]}
    make_deal(office={**people, "project": office["project"]}, unit=office["units"][0], subscribed_on=TODAY)
    entry = _register(db, office)
    row = record_intent_deposit(db.session, office["finance"], entry.id, paid_on=TODAY, channel="pos", today=TODAY)
    db.session.commit()
    assert row.kind == "deposit" and row.amount == Decimal("50000.00") and row.number == "SJ-KP-000002"
    assert db.session.scalars(select(Payment.receipt_no)).all() == ["SJ-KP-000001"]
    assert entry.status == "paid"
    assert _count(db, Audit, Audit.entity == "launch_entry", Audit.action == "intent_deposit") == 1


def test_r_lch_1_the_deposit_is_received_once(db, office):
    entry = _paid(db, office)
    with refused("was already received (receipt SJ-KP-000001)"):
        record_intent_deposit(db.session, office["finance"], entry.id, paid_on=TODAY, channel="pos", today=TODAY)
    db.session.rollback()
    key = new_key()
    other = _register(db, office, phone="13912345679", id_number=ID_NUMBER_2)
    record_intent_deposit(db.session, office["finance"], other.id, paid_on=TODAY, channel="cash", key=key, today=TODAY)
    db.session.commit()
    with pytest.raises(AlreadySubmitted) as caught:
        record_intent_deposit(db.session, office["finance"], other.id, paid_on=TODAY, channel="cash", key=key,
                              today=TODAY)
    assert "SJ-KP-000002" in caught.value.result
    db.session.rollback()
    assert _count(db, IntentPayment) == 2


def test_r_lch_1_the_deposit_is_the_launch_s_amount_finance_s_and_dated_sensibly(db, office):
    entry = _register(db, office)
    with refused("The intent deposit of this launch is ¥50,000.00"):
        record_intent_deposit(db.session, office["finance"], entry.id, amount="20000", paid_on=TODAY,
                              channel="pos", today=TODAY)
    db.session.rollback()
    with refused("cannot be in the future"):
        record_intent_deposit(db.session, office["finance"], entry.id, paid_on=TODAY + dt.timedelta(days=1),
                              channel="pos", today=TODAY)
    db.session.rollback()
    with pytest.raises(PermissionDenied):
        record_intent_deposit(db.session, office["agent"], entry.id, paid_on=TODAY, channel="pos", today=TODAY)
    db.session.rollback()
    assert db.session.get(LaunchEntry, entry.id).status == "registered"


# --- refunds (R-LCH-1) ----------------------------------------------------------------------------

def test_r_lch_1_a_refund_takes_a_voucher_number_tells_the_agent_and_happens_once(db, office):
    entry = _paid(db, office)
    row = refund_intent_deposit(db.session, office["finance"], entry.id, paid_on=TODAY, channel="bank_transfer",
                                reason="客户放弃", today=TODAY)
    db.session.commit()
    assert row.kind == "refund" and row.number == "TK-KP-000001" and row.amount == Decimal("50000.00")
    assert entry.status == "refunded"
    note = db.session.scalars(select(Notification).where(Notification.user_id == office["agent"].id)).one()
    assert entry.number in note.message and "TK-KP-000001" in note.message
    with refused("was already refunded (voucher TK-KP-000001)"):
        refund_intent_deposit(db.session, office["finance"], entry.id, paid_on=TODAY, channel="bank_transfer",
                              reason="再退一次", today=TODAY)
    db.session.rollback()
    assert _count(db, IntentPayment, IntentPayment.kind == "refund") == 1


def test_r_lch_1_no_refund_of_an_unpaid_card_nor_without_a_reason(db, office):
    entry = _register(db, office)
    with refused("Only a received intent deposit is refunded"):
        refund_intent_deposit(db.session, office["finance"], entry.id, paid_on=TODAY, channel="cash", reason="x",
                              today=TODAY)
    db.session.rollback()
    paid = _paid(db, office, phone="13912345679", id_number=ID_NUMBER_2)
    with refused("Give the reason"):
        refund_intent_deposit(db.session, office["finance"], paid.id, paid_on=TODAY, channel="cash", reason=" ",
                              today=TODAY)


def test_r_lch_2_no_refund_while_the_published_list_is_frozen(db, office):
    entry = _paid(db, office)
    office["launch"].status = "published"
    db.session.commit()
    with refused("published and frozen until the draw"):
        refund_intent_deposit(db.session, office["finance"], entry.id, paid_on=TODAY, channel="cash", reason="x",
                              today=TODAY)
    db.session.rollback()
    office["launch"].status = "drawn"
    db.session.commit()
    refund_intent_deposit(db.session, office["finance"], entry.id, paid_on=TODAY, channel="cash", reason="x",
                          today=TODAY)
    db.session.commit()
    assert entry.status == "refunded"


# --- conversion into the chosen deal's deposit (R-LCH-1) ------------------------------------------

def _chosen(db, office, entry, unit, stage="confirmed"):
    """The selection's part (models.selection, helper C): the buyer's choice is a subscription made
    by models.deals.subscribe, set on the entry."""
    from models.deals import confirm_subscription, subscribe
    sub = subscribe(db.session, office["agent"], unit_id=unit.id, lead_id=entry.lead_id, payment_method="one_off",
                    deposit="50000", id_number=ID_NUMBER, address="长沙", subscribed_on=TODAY, today=TODAY)
    if stage == "confirmed":
        confirm_subscription(db.session, office["control"], sub.id)
    entry.subscription_id = sub.id
    entry.chosen_at = dt.datetime(2026, 11, 26, 2, 0)
    db.session.commit()
    return sub


def test_r_lch_1_conversion_pays_the_deal_s_deposit_once_and_makes_it_active(db, office):
    entry = _paid(db, office)
    sub = _chosen(db, office, entry, office["units"][0])
    with refused("convert the intent deposit into its deposit instead"):  # the deal holds the unit
        refund_intent_deposit(db.session, office["finance"], entry.id, paid_on=TODAY, channel="cash", reason="x",
                              today=TODAY)
    db.session.rollback()
    row = convert_intent_deposit(db.session, office["finance"], entry.id, today=TODAY)
    db.session.commit()
    db.session.expire_all()
    payment = db.session.scalars(select(Payment).where(Payment.subscription_id == sub.id)).one()
    assert (row.kind, row.amount, row.subscription_id) == ("conversion", Decimal("50000.00"), sub.id)
    assert row.number == payment.receipt_no == "SJ-KP-000002"  # the deposit's receipt was 000001
    assert payment.channel == "other" and entry.number in payment.reason and "SJ-KP-000001" in payment.reason
    assert db.session.get(Subscription, sub.id).status == "active"
    assert db.session.get(LaunchEntry, entry.id).status == "converted"
    with refused("was already converted"):
        convert_intent_deposit(db.session, office["finance"], entry.id, today=TODAY)
    db.session.rollback()
    with refused("converted whole into the deal's deposit"):
        refund_intent_deposit(db.session, office["finance"], entry.id, paid_on=TODAY, channel="cash", reason="x",
                              today=TODAY)
    db.session.rollback()
    assert _count(db, Payment) == 1 and _count(db, IntentPayment) == 2


def test_r_lch_1_conversion_is_capped_at_the_deposit_due_and_the_rest_refunded(db, office):
    update_launch(db.session, office["manager"], office["launch"].id, intent_deposit="80000")
    db.session.commit()
    entry = _paid(db, office)
    _chosen(db, office, entry, office["units"][1])
    row = convert_intent_deposit(db.session, office["finance"], entry.id, today=TODAY)
    db.session.commit()
    assert row.amount == Decimal("50000.00")
    rest = refund_intent_deposit(db.session, office["finance"], entry.id, paid_on=TODAY, channel="bank_transfer",
                                 reason="认筹金多于定金", today=TODAY)
    db.session.commit()
    assert rest.amount == Decimal("30000.00") and db.session.get(LaunchEntry, entry.id).status == "converted"


def test_r_lch_1_conversion_needs_a_live_chosen_deal_and_a_valid_card(db, office):
    entry = _paid(db, office)
    with refused("has not chosen a unit"):
        convert_intent_deposit(db.session, office["finance"], entry.id, today=TODAY)
    db.session.rollback()
    _chosen(db, office, entry, office["units"][2], stage="draft")
    with refused("converted once sales control has confirmed it"):
        convert_intent_deposit(db.session, office["finance"], entry.id, today=TODAY)
    db.session.rollback()
    entry = db.session.get(LaunchEntry, entry.id)
    entry.chosen_at = dt.datetime(2027, 1, 1, 2, 0)  # after the card's expiry (TODAY + 30)
    db.session.commit()
    with refused("expired on"):
        convert_intent_deposit(db.session, office["finance"], entry.id, today=dt.date(2027, 1, 1))
    db.session.rollback()
    with pytest.raises(PermissionDenied):
        convert_intent_deposit(db.session, office["agent"], entry.id, today=TODAY)


# --- expiry (R-LCH-1) -----------------------------------------------------------------------------

def test_r_lch_1_unpaid_registrations_expire_after_registration_closes_in_the_daily_run(db, office):
    from models.ladder import run_ladder
    unpaid = _register(db, office)
    paid = _paid(db, office, phone="13912345679", id_number=ID_NUMBER_2)
    closes = office["launch"].registration_closes_on
    assert expire_entries(db.session, closes) == 0
    counts = run_ladder(db.session, closes + dt.timedelta(days=1))
    assert counts["intent_expired"] == 1
    db.session.expire_all()
    assert db.session.get(LaunchEntry, unpaid.id).status == "expired"
    assert db.session.get(LaunchEntry, paid.id).status == "paid"
    assert expire_entries(db.session, closes + dt.timedelta(days=1)) == 0  # idempotent
    assert _count(db, Audit, Audit.entity == "launch_entry", Audit.action == "intent_expire") == 1


def test_r_lch_1_paid_cards_past_their_expiry_are_refunds_due_and_may_no_longer_choose(db, office):
    paid = _paid(db, office)
    not_eligible = _paid(db, office, phone="13912345679", id_number=ID_NUMBER_2,
                         answers={QUESTION: False, "无不良征信记录": True})
    valid_until = office["launch"].card_valid_until
    assert entry_may_choose(paid, valid_until) and not entry_may_choose(not_eligible, valid_until)
    assert not entry_may_choose(paid, valid_until + dt.timedelta(days=1))
    assert refunds_due(db.session, office["launch"].id, valid_until) == []
    due = refunds_due(db.session, office["launch"].id, valid_until + dt.timedelta(days=1))
    assert [e.id for e in due] == [paid.id, not_eligible.id]


# --- races (PostgreSQL) ---------------------------------------------------------------------------

needs_postgres = pytest.mark.skipif(not ON_POSTGRES, reason="a race needs PostgreSQL's concurrent transactions")


@needs_postgres
def test_r_lch_1_two_registrations_of_one_phone_at_the_same_moment_make_one_card(app, db, office):
    from models import User
    from tests.support.race import race
    launch_id, agent_id = office["launch"].id, office["agent"].id

    def attempt(id_number):
        def register_as(session):
            entry = register_entry(session, session.get(User, agent_id), launch_id=launch_id, name="王先生",
                                   phone=PHONE, id_type="resident_id", id_number=id_number, address="长沙",
                                   answers={QUESTION: True, "无不良征信记录": True}, today=TODAY)
            session.commit()
            return entry.number
        return register_as

    outcomes = race(attempt(ID_NUMBER), attempt(ID_NUMBER_2), app=app, expected=(RuleViolation,))
    assert sum(isinstance(o, str) for o in outcomes) == 1
    assert _count(db, LaunchEntry) == 1 and _count(db, Lead) == 1


@needs_postgres
def test_r_lch_1_ten_deposits_of_one_card_at_once_record_one_receipt(app, db, office):
    from models import User
    from tests.support.race import race
    entry = _register(db, office)
    entry_id, finance_id = entry.id, office["finance"].id

    def attempt(session):
        row = record_intent_deposit(session, session.get(User, finance_id), entry_id, paid_on=TODAY, channel="pos",
                                    today=TODAY)
        session.commit()
        return row.number

    outcomes = race(*[attempt] * 10, app=app, expected=(RuleViolation,))
    assert sum(isinstance(o, str) for o in outcomes) == 1
    assert _count(db, IntentPayment) == 1


# --- the card (认筹卡, R-LCH-1) ---------------------------------------------------------------------

def test_r_lch_1_the_card_renders_with_the_phone_and_id_number_masked(app, db, office, tmp_path):
    import subprocess

    from models.documents import document_context, request_documents
    from pdf import render
    entry = _paid(db, office)
    batch, documents = request_documents(db.session, office["agent"], "intent_card", [entry.id])
    db.session.commit()
    assert batch is None and documents[0].owner_id == office["agent"].id
    context = document_context(db.session, "intent_card", entry.id, today=TODAY)
    data = render("intent_card", context)
    pdf = tmp_path / "card.pdf"
    pdf.write_bytes(data)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "认筹卡" in text and entry.number in text and "SJ-KP-000001" in text
    assert "139****5678" in text and "110***********4573" in text
    assert PHONE not in text and ID_NUMBER not in text
    other = _register(db, office, who="agent2", phone="13912345679", id_number=ID_NUMBER_2)
    with refused("not one you may see"):  # an agent: his own customers' cards only
        request_documents(db.session, office["agent"], "intent_card", [other.id])


# --- the screens (R-LCH-1, R-ALL-1) ---------------------------------------------------------------

def _signed_in(app, user):
    from tests.conftest import Auth, csrf_token
    client = app.test_client()
    assert Auth(client).login(user.username).status_code == 302
    return client, csrf_token(client, "/admin/")


def _open_today(db, office):
    from models.base import office_today
    today = office_today()
    launch = office["launch"]
    launch.registration_opens_on, launch.registration_closes_on = today - dt.timedelta(days=1), today + dt.timedelta(days=5)
    launch.selection_on, launch.card_valid_until = today + dt.timedelta(days=7), today + dt.timedelta(days=30)
    db.session.commit()
    return today


def test_r_lch_1_an_agent_registers_a_buyer_on_the_registration_page_and_finance_takes_the_deposit(app, db, office):
    from tests.conftest import submission_key
    today = _open_today(db, office)
    agent, token = _signed_in(app, office["agent"])
    page = agent.get(f"/admin/launch_entry/register/?launch_id={office['launch'].id}").get_data(as_text=True)
    assert QUESTION in page and "answer_1" in page
    data = {"csrf_token": token, "launch_id": office["launch"].id, "name": "王先生", "phone": "139 1234 5678",
            "id_type": "resident_id", "id_number": ID_NUMBER, "address": "长沙", "first_home": "y",
            "answer_0": "yes", "answer_1": "no", "submission_key": submission_key(page)}
    response = agent.post(f"/admin/launch_entry/register/?launch_id={office['launch'].id}", data=data)
    assert response.status_code == 302
    agent.post(f"/admin/launch_entry/register/?launch_id={office['launch'].id}", data=data)  # sent twice
    entry = db.session.scalars(select(LaunchEntry)).one()
    assert entry.phone == PHONE and entry.group_name == "first_home" and not entry.eligible
    assert entry.answers == {QUESTION: True, "无不良征信记录": False}
    details = agent.get(f"/admin/launch_entry/details/?id={entry.id}").get_data(as_text=True)
    assert PHONE in details and ID_NUMBER not in details and "110***********4573" in details  # agents: ID masked
    assert 'data-step="deposit"' not in details  # finance's step

    finance, finance_token = _signed_in(app, office["finance"])
    details = finance.get(f"/admin/launch_entry/details/?id={entry.id}").get_data(as_text=True)
    assert 'data-step="deposit"' in details and 'data-step="refund"' not in details
    form = finance.post("/admin/launch_entry/action/", data={"csrf_token": finance_token, "action": "deposit",
                                                             "rowid": entry.id})
    step = {"csrf_token": finance_token, "ids": str(entry.id), "paid_on": today.isoformat(), "channel": "pos",
            "submission_key": submission_key(form.get_data(as_text=True))}
    response = finance.post("/admin/launch_entry/deposit/", data=step)
    assert response.status_code == 302, response.get_data(as_text=True)[-3000:]
    assert "SJ-KP-000001" in finance.get("/admin/launch_entry/").get_data(as_text=True)  # the flash says it
    finance.post("/admin/launch_entry/deposit/", data=step)  # a double click: received once
    assert _count(db, IntentPayment) == 1
    db.session.expire_all()
    assert db.session.get(LaunchEntry, entry.id).status == "paid"
    ledger = finance.get("/admin/intent_payment/").get_data(as_text=True)
    assert "SJ-KP-000001" in ledger and entry.number in ledger
    csv = finance.get("/admin/intent_payment/export/csv/").get_data(as_text=True)
    assert "SJ-KP-000001" in csv


def test_r_all_1_an_agent_sees_only_his_own_registrations_and_cards(app, db, office):
    mine = _register(db, office)
    theirs = _register(db, office, who="agent2", phone="13912345679", id_number=ID_NUMBER_2, name="李女士")
    agent, token = _signed_in(app, office["agent"])
    grid = agent.get("/admin/launch_entry/").get_data(as_text=True)
    assert mine.number in grid and theirs.number not in grid
    assert agent.get(f"/admin/launch_entry/details/?id={theirs.id}").status_code in (302, 404)
    agent.post("/admin/document/request/", data={"csrf_token": token, "kind": "intent_card", "subject_id": theirs.id})
    from models import Document
    assert _count(db, Document, Document.kind == "intent_card") == 0
    vp = office["manager"]  # the manager sees every row, with the phone whole and the ID masked
    manager, _ = _signed_in(app, vp)
    grid = manager.get("/admin/launch_entry/").get_data(as_text=True)
    assert mine.number in grid and theirs.number in grid and ID_NUMBER_2 not in grid


def test_r_lch_1_the_manager_makes_a_launch_on_its_form(app, db, office):
    manager, token = _signed_in(app, office["manager"])
    page = manager.get("/admin/launch/new/").get_data(as_text=True)
    assert "registration_opens_on" in page
    data = {"csrf_token": token, "project": office["project"].id, "name": "二期开盘", "buildings": office["other"].id,
            "registration_opens_on": "2026-12-01", "registration_closes_on": "2026-12-10", "selection_on": "2026-12-12",
            "intent_deposit": "30,000", "card_valid_until": "2027-01-12", "questions": "持有本市购房资格\n\n",
            "slot_minutes": "6", "slot_size": "12", "missed_rule": "out"}
    assert manager.post("/admin/launch/new/", data=data).status_code == 302
    launch = db.session.scalars(select(Launch).where(Launch.name == "二期开盘")).one()
    assert launch.intent_deposit == Decimal("30000.00") and launch.questions == ["持有本市购房资格"]
    assert [b.id for b in launch.buildings] == [office["other"].id] and launch.missed_rule == "out"
    manager.post("/admin/launch/new/", data={**data, "name": "三期"})  # the same building again: refused
    assert _count(db, Launch, Launch.name == "三期") == 0
    edit = manager.get(f"/admin/launch/edit/?id={launch.id}").get_data(as_text=True)
    assert "持有本市购房资格" in edit


def test_r_lch_1_finance_refunds_and_converts_from_the_registration_and_the_grid_lists_refunds_due(app, db, office):
    from tests.conftest import submission_key
    today = _open_today(db, office)
    kept = _register(db, office, today=today)
    gone = _register(db, office, phone="13912345679", id_number=ID_NUMBER_2, today=today)
    for entry in (kept, gone):
        record_intent_deposit(db.session, office["finance"], entry.id, paid_on=today, channel="pos", today=today)
    db.session.commit()
    sub = _chosen(db, office, kept, office["units"][0])
    finance, token = _signed_in(app, office["finance"])
    page = finance.get(f"/admin/launch_entry/details/?id={kept.id}").get_data(as_text=True)
    assert 'data-step="convert"' in page
    form = finance.post("/admin/launch_entry/action/", data={"csrf_token": token, "action": "convert", "rowid": kept.id})
    step = {"csrf_token": token, "ids": str(kept.id), "submission_key": submission_key(form.get_data(as_text=True))}
    assert finance.post("/admin/launch_entry/convert/", data=step).status_code == 302
    finance.post("/admin/launch_entry/convert/", data=step)  # sent twice: converted once
    form = finance.post("/admin/launch_entry/action/", data={"csrf_token": token, "action": "refund", "rowid": gone.id})
    step = {"csrf_token": token, "ids": str(gone.id), "paid_on": today.isoformat(), "channel": "bank_transfer",
            "reason": "客户放弃", "submission_key": submission_key(form.get_data(as_text=True))}
    assert finance.post("/admin/launch_entry/refund/", data=step).status_code == 302
    db.session.expire_all()
    assert db.session.get(LaunchEntry, kept.id).status == "converted"
    assert db.session.get(LaunchEntry, gone.id).status == "refunded"
    assert db.session.get(Subscription, sub.id).status == "active"
    assert _count(db, IntentPayment, IntentPayment.kind == "conversion") == 1
    assert _count(db, IntentPayment, IntentPayment.kind == "refund") == 1

    third = _register(db, office, phone="13912345670", id_number="110101199003071719", today=today)
    record_intent_deposit(db.session, office["finance"], third.id, paid_on=today, channel="pos", today=today)
    office["launch"].card_valid_until = today - dt.timedelta(days=1)  # the card expired yesterday
    office["launch"].selection_on = office["launch"].registration_closes_on = today - dt.timedelta(days=1)
    office["launch"].registration_opens_on = today - dt.timedelta(days=2)
    db.session.commit()
    view = next(v for v in app.extensions["admin"][0]._views if getattr(v, "endpoint", "") == "launch_entry")
    index = next(i for i, flt in enumerate(view._filters) if flt.__class__.__name__ == "RefundDueFilter")
    finance.get("/admin/")  # the steps' messages shown
    grid = finance.get(f"/admin/launch_entry/?flt0_{index}=1").get_data(as_text=True)
    assert third.number in grid and kept.number not in grid and gone.number not in grid
    launch_filter = next(i for i, flt in enumerate(view._filters) if getattr(flt, "column", None) is not None
                         and flt.column.key == "name" and flt.column.table.name == "launch")
    both = finance.get(f"/admin/launch_entry/?flt0_{index}=1&flt1_{launch_filter}=一期").get_data(as_text=True)
    assert third.number in both and kept.number not in both  # with the launch's filter too


def test_r_lch_1_a_smaller_intent_deposit_pays_part_of_the_deposit_and_finance_takes_the_rest(db, office):
    from models.payments import record_deposit
    update_launch(db.session, office["manager"], office["launch"].id, intent_deposit="20000")
    db.session.commit()
    entry = _paid(db, office)
    sub = _chosen(db, office, entry, office["units"][0])
    assert convert_intent_deposit(db.session, office["finance"], entry.id, today=TODAY).amount == Decimal("20000.00")
    db.session.commit()
    assert db.session.get(Subscription, sub.id).status == "confirmed"  # the deposit is not paid whole yet
    with refused("¥20,000.00 is paid already: ¥30,000.00 is still due"):
        record_deposit(db.session, office["finance"], sub.id, amount="50000", paid_on=TODAY, channel="pos", today=TODAY)
    db.session.rollback()
    record_deposit(db.session, office["finance"], sub.id, amount="30000", paid_on=TODAY, channel="pos", today=TODAY)
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Subscription, sub.id).status == "active"
    assert db.session.scalars(select(Payment.receipt_no).order_by(Payment.id)).all() == ["SJ-KP-000002", "SJ-KP-000003"]
