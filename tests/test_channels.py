"""External channels (issue 23, R-COM-1, 渠道报备): the first valid registration within the
project's window wins attribution; refused ones go to the manager with both sides; a visit in the
window confirms; a channel's person sees only his own registrations on every path."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from models import (Audit, ChannelCompany, ChannelConflict, ChannelMember, ChannelRegistration, Lead,
                    Notification, User, Visit)
from models.base import office_midnight_utc
from models.channels import (ChannelRefused, add_member, confirm_by_visit, expire_registrations,
                             register_customer, resolve_conflict, set_company_active)
from models.errors import RuleViolation
from models.reception import VISIT_RECORDED
from tests import factories as f
from tests.conftest import ON_POSTGRES, Auth, csrf_token, submission_key

TODAY = dt.date(2026, 11, 26)
PHONE = "13912345678"


def english(exc) -> str:
    """A refusal as an English reader reads it (the office's default is Chinese)."""
    from flask_babel import force_locale
    with force_locale("en"):
        return str(exc)


def refused_with(match: str):
    """pytest.raises(RuleViolation) whose English text contains `match`."""
    return _Refusal(match)


class _Refusal:
    def __init__(self, match):
        self.match, self.caught = match, None

    def __enter__(self):
        self._raises = pytest.raises(RuleViolation)
        self.caught = self._raises.__enter__()
        return self.caught

    def __exit__(self, *exc):
        result = self._raises.__exit__(*exc)
        assert self.match in english(self.caught.value), english(self.caught.value)
        return result


def _count(db, model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def floor(db, make_user):
    """A project (window 3 days), a manager, an agent, two channel companies with a person each."""
    s = db.session
    project = f.project(s, channel_window_days=3)
    people = {"manager": make_user("sales_manager", username="ch_manager"),
              "agent": make_user("agent", username="ch_agent"),
              "admin": make_user("admin", username="ch_admin")}
    for key, company_name in (("channel1", "甲渠道"), ("channel2", "乙渠道")):
        company = ChannelCompany(name=company_name)
        s.add(company)
        s.flush()
        people[f"{key}_company"] = company
        people[key] = add_member(s, people["admin"], company_id=company.id, username=f"ch_{key}",
                                 password="test-pass-123", display_name=key).user
    s.commit()
    return {"project": project, **people}


def _register(db, floor, who, phone=PHONE, name="王先生", today=TODAY):
    registration = register_customer(db.session, floor[who], project_id=floor["project"].id,
                                     customer_name=name, phone=phone, today=today)
    db.session.commit()
    return registration


def _visit(db, floor, day, phone=PHONE, lead=None, hour=10):
    """A visit row as the desk writes it, and the hooks it calls (models.reception.VISIT_RECORDED)."""
    visit = Visit(project_id=floor["project"].id, lead_id=lead.id if lead else None, phone=phone, kind="first",
                  channel="channel", registered_by_id=floor["agent"].id,
                  arrived_at=office_midnight_utc(day) + dt.timedelta(hours=hour))
    db.session.add(visit)
    db.session.flush()
    for hook in VISIT_RECORDED:
        hook(db.session, visit)
    db.session.commit()
    return visit


def test_r_com_1_confirm_by_visit_is_a_visit_recorded_hook():
    assert confirm_by_visit in VISIT_RECORDED


def test_r_com_1_a_registration_is_valid_from_its_day_through_the_windows_last_day(db, floor):
    """valid_until = today + channel_window_days - 1: a window of 3 days registered on the 26th
    ends on the 28th; a window of one day is the day itself."""
    registration = _register(db, floor, "channel1")
    assert (registration.registered_on, registration.valid_until, registration.status) == (
        TODAY, dt.date(2026, 11, 28), "valid")
    floor["project"].channel_window_days = 1
    db.session.commit()
    other = _register(db, floor, "channel1", phone="13900000002")
    assert other.valid_until == TODAY


def test_r_com_1_a_visit_on_the_last_day_confirms_the_registration(db, floor):
    registration = _register(db, floor, "channel1")
    lead = f.lead(db.session, project_=floor["project"], owner=floor["agent"], phone=PHONE)
    visit = _visit(db, floor, dt.date(2026, 11, 28), lead=lead, hour=23)  # 23:00 office time, the last day
    db.session.refresh(registration)
    assert (registration.status, registration.lead_id) == ("confirmed", lead.id)
    assert registration.confirmed_at is not None and visit.registration_id == registration.id
    # a second visit changes nothing; the channel's person was told once
    _visit(db, floor, dt.date(2026, 11, 28), lead=lead)
    assert _count(db, Notification, Notification.user_id == floor["channel1"].id,
                  Notification.kind == "channel_registration") == 1


def test_r_com_1_a_visit_the_day_after_the_window_does_not_confirm_and_the_registration_expires(db, floor):
    registration = _register(db, floor, "channel1")
    visit = _visit(db, floor, dt.date(2026, 11, 29), hour=0)  # 00:00 office time, the day after
    db.session.refresh(registration)
    assert registration.status == "expired" and visit.registration_id is None


def test_r_com_1_a_phone_already_a_customer_is_refused_with_a_conflict_and_the_manager_told(db, floor):
    lead = f.lead(db.session, project_=floor["project"], owner=floor["agent"], phone=PHONE)
    db.session.commit()
    with pytest.raises(ChannelRefused) as refused:
        _register(db, floor, "channel1")
    db.session.commit()  # the caller keeps the refusal (admin: run_domain keep_on)
    assert "sales manager will decide" in english(refused.value) and lead.name not in english(refused.value)
    registration = db.session.scalars(select(ChannelRegistration)).one()
    conflict = db.session.scalars(select(ChannelConflict)).one()
    assert registration.status == "refused"
    assert (conflict.registration_id, conflict.against_lead_id, conflict.against_registration_id,
            conflict.status) == (registration.id, lead.id, None, "open")
    assert _count(db, Notification, Notification.user_id == floor["manager"].id,
                  Notification.kind == "channel_conflict") == 1


def test_r_com_1_another_companys_live_registration_wins_and_the_later_one_is_refused(db, floor):
    first = _register(db, floor, "channel1")
    with pytest.raises(ChannelRefused):
        _register(db, floor, "channel2", name="王总")
    db.session.commit()
    conflict = db.session.scalars(select(ChannelConflict)).one()
    assert conflict.against_registration_id == first.id and conflict.registration.status == "refused"
    assert first.status == "valid"


def test_r_com_1_the_same_company_registering_the_same_live_phone_again_records_nothing(db, floor):
    _register(db, floor, "channel1")
    with refused_with("already registered this phone") as again:
        _register(db, floor, "channel1", name="王先生")
    assert not isinstance(again.value, ChannelRefused)
    db.session.rollback()
    assert _count(db, ChannelRegistration) == 1 and _count(db, ChannelConflict) == 0


def test_r_com_1_an_invalid_phone_and_a_missing_name_are_refused(db, floor):
    with refused_with("not a valid phone"):
        _register(db, floor, "channel1", phone="12345")
    with refused_with("name is required"):
        _register(db, floor, "channel1", name=" ")
    with pytest.raises(RuleViolation):  # the role: only a channel registers (channel.register)
        register_customer(db.session, floor["agent"], project_id=floor["project"].id, customer_name="x",
                          phone=PHONE, today=TODAY)


def test_r_com_1_expiry_is_set_based_idempotent_audited_and_in_the_daily_run(db, floor):
    from models.ladder import run_ladder
    kept = _register(db, floor, "channel1", phone="13900000003", today=TODAY + dt.timedelta(days=1))
    gone = _register(db, floor, "channel1")  # valid through the 28th
    assert expire_registrations(db.session, dt.date(2026, 11, 28)) == 0  # the last day is still valid
    counts = run_ladder(db.session, dt.date(2026, 11, 29))
    assert counts["channel_expired"] == 1
    assert run_ladder(db.session, dt.date(2026, 11, 29))["channel_expired"] == 0
    db.session.refresh(gone)
    db.session.refresh(kept)
    assert (gone.status, kept.status) == ("expired", "valid")
    assert _count(db, Audit, Audit.entity == "channel_registration", Audit.action == "channel_expire",
                  Audit.entity_id == str(gone.id)) == 1


def test_r_com_1_after_expiry_another_channel_may_register_the_phone(db, floor):
    _register(db, floor, "channel1")
    expire_registrations(db.session, dt.date(2026, 11, 29))
    db.session.commit()
    later = _register(db, floor, "channel2", today=dt.date(2026, 11, 29))
    assert later.status == "valid"


def test_r_com_1_the_manager_awards_the_later_registration_first_demoted_then_promoted(db, floor):
    first = _register(db, floor, "channel1")
    with pytest.raises(ChannelRefused) as refused:
        _register(db, floor, "channel2")
    db.session.commit()
    conflict_id, later_id = refused.value.conflict.id, refused.value.registration.id
    with refused_with("reason for the decision"):
        resolve_conflict(db.session, floor["manager"], conflict_id, "award", " ", today=TODAY)
    resolve_conflict(db.session, floor["manager"], conflict_id, "award", "乙渠道先带看", today=TODAY)
    db.session.commit()
    later = db.session.get(ChannelRegistration, later_id)
    db.session.refresh(first)
    assert (first.status, later.status) == ("refused", "valid")
    conflict = db.session.get(ChannelConflict, conflict_id)
    assert (conflict.status, conflict.reason, conflict.decided_by_id) == ("awarded", "乙渠道先带看", floor["manager"].id)
    # both channels' people are told, each about his own registration
    for who in ("channel1", "channel2"):
        assert _count(db, Notification, Notification.user_id == floor[who].id) == 1
    # a second decision records nothing
    with refused_with("already been decided"):
        resolve_conflict(db.session, floor["manager"], conflict_id, "keep", "再议", today=TODAY)
    db.session.rollback()
    # the later registration now holds the phone: a visit in its window confirms it
    _visit(db, floor, TODAY)
    db.session.refresh(later)
    assert later.status == "confirmed"


def test_r_com_1_the_manager_keeps_the_first_and_awarding_against_a_customer_attributes_it(db, floor):
    first = _register(db, floor, "channel1")
    with pytest.raises(ChannelRefused) as refused:
        _register(db, floor, "channel2")
    db.session.commit()
    resolve_conflict(db.session, floor["manager"], refused.value.conflict.id, "keep", "甲渠道在先")
    db.session.commit()
    db.session.refresh(first)
    assert first.status == "valid" and refused.value.registration.status == "refused"
    # a customer of the project: awarding confirms the channel's registration on that customer
    lead = f.lead(db.session, project_=floor["project"], owner=floor["agent"], phone="13900000009")
    db.session.commit()
    with pytest.raises(ChannelRefused) as against_lead:
        _register(db, floor, "channel2", phone="13900000009")
    db.session.commit()
    resolve_conflict(db.session, floor["manager"], against_lead.value.conflict.id, "award", "客户确认渠道带来")
    db.session.commit()
    awarded = db.session.get(ChannelRegistration, against_lead.value.registration.id)
    assert (awarded.status, awarded.lead_id) == ("confirmed", lead.id)
    assert db.session.get(Lead, lead.id).owner_id == floor["agent"].id  # attribution, not a change of owner


def test_r_com_1_a_deactivated_companys_people_can_neither_register_nor_sign_in(client, db, floor):
    auth = Auth(client)
    assert auth.login("ch_channel1").status_code == 302
    assert client.get("/admin/channel_registration/").status_code == 200
    set_company_active(db.session, floor["manager"], floor["channel1_company"].id, False)
    db.session.commit()
    # the open session ended, and signing in again is refused
    assert "/login" in client.get("/admin/channel_registration/").headers.get("Location", "")
    assert auth.login("ch_channel1").status_code == 200
    with refused_with("deactivated"):
        _register(db, floor, "channel1")
    db.session.rollback()
    set_company_active(db.session, floor["manager"], floor["channel1_company"].id, True)
    db.session.commit()
    assert auth.login("ch_channel1").status_code == 302


def test_r_com_1_the_registration_form_records_once_when_sent_twice(client, db, floor):
    Auth(client).login("ch_channel1")
    page = client.get("/admin/channel_registration/register/").get_data(as_text=True)
    form = {"csrf_token": csrf_token(client, "/admin/"), "submission_key": submission_key(page),
            "project": str(floor["project"].id), "customer_name": "赵女士", "phone": "139 1234 5678"}
    first = client.post("/admin/channel_registration/register/", data=form, follow_redirects=True)
    assert "2026" in first.get_data(as_text=True) or first.status_code == 200
    again = client.post("/admin/channel_registration/register/", data=form, follow_redirects=True)
    assert again.status_code == 200
    assert _count(db, ChannelRegistration) == 1
    registration = db.session.scalars(select(ChannelRegistration)).one()
    assert (registration.phone, registration.registered_by_id) == (PHONE, floor["channel1"].id)


def test_r_com_1_a_refused_registration_tells_the_channel_only_that_the_manager_will_decide(client, db, floor):
    lead = f.lead(db.session, project_=floor["project"], owner=floor["agent"], phone=PHONE, name="钱先生")
    db.session.commit()
    Auth(client).login("ch_channel2")
    page = client.get("/admin/channel_registration/register/").get_data(as_text=True)
    text = client.post("/admin/channel_registration/register/", data={
        "csrf_token": csrf_token(client, "/admin/"), "submission_key": submission_key(page),
        "project": str(floor["project"].id), "customer_name": "钱总", "phone": PHONE},
        follow_redirects=True).get_data(as_text=True)
    assert "经理裁定" in text or "manager will decide" in text
    assert lead.name not in text and floor["agent"].display_name not in text
    assert _count(db, ChannelConflict) == 1  # kept although refused


def test_r_com_1_the_conflict_page_shows_both_sides_and_the_manager_decides_there(client, db, floor):
    _register(db, floor, "channel1")
    with pytest.raises(ChannelRefused) as refused:
        _register(db, floor, "channel2", name="王总")
    db.session.commit()
    conflict_id = refused.value.conflict.id
    Auth(client).login("ch_manager")
    page = client.get(f"/admin/channel_conflict/details/?id={conflict_id}").get_data(as_text=True)
    for side in ("甲渠道", "乙渠道", "channel1", "channel2", "2026-11-28", PHONE):
        assert side in page, side
    token = csrf_token(client, "/admin/")
    response = client.post("/admin/channel_conflict/decide/", data={
        "csrf_token": token, "ids": str(conflict_id), "decision": "keep", "reason": "甲渠道在先"})
    assert response.status_code == 302, response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(ChannelConflict, conflict_id).status == "kept"
    # a second posting of the decision records nothing more
    client.post("/admin/channel_conflict/decide/", data={
        "csrf_token": token, "ids": str(conflict_id), "decision": "award", "reason": "改判"})
    db.session.expire_all()
    assert db.session.get(ChannelConflict, conflict_id).status == "kept"
    assert _count(db, Audit, Audit.entity == "channel_conflict", Audit.entity_id == str(conflict_id)) >= 1


def test_r_com_1_the_manager_adds_a_companys_person_from_the_grid(client, db, floor):
    Auth(client).login("ch_manager")
    response = client.post("/admin/channel_member/new/", data={
        "csrf_token": csrf_token(client, "/admin/"), "company": str(floor["channel2_company"].id),
        "existing": "0", "username": "ch_new", "display_name": "新人", "password": "test-pass-123"})
    assert response.status_code == 302
    user = db.session.scalars(select(User).where(User.username == "ch_new")).one()
    assert user.role_names == frozenset({"channel"})
    assert db.session.get(ChannelMember, user.id).company_id == floor["channel2_company"].id
    # one company per person
    with refused_with("already works"):
        add_member(db.session, floor["manager"], company_id=floor["channel1_company"].id, user_id=user.id)


def test_r_com_1_a_channel_user_sees_only_his_own_registrations_on_every_path(client, db, floor):
    """Two channel users of two companies: list, details, export, ajax, notifications, the home page
    and the menu show the second nothing of the first's registrations nor of the office."""
    mine = _register(db, floor, "channel2", phone="13900000005", name="孙女士")
    theirs = _register(db, floor, "channel1", name="李先生秘密")
    lead = f.lead(db.session, project_=floor["project"], owner=floor["agent"], phone="13900000006", name="周客户")
    db.session.commit()
    with pytest.raises(ChannelRefused):
        _register(db, floor, "channel1", phone="13900000006", name="周客户")
    db.session.commit()
    Auth(client).login("ch_channel2")
    listing = client.get("/admin/channel_registration/").get_data(as_text=True)
    assert "孙女士" in listing and "李先生秘密" not in listing and "周客户" not in listing
    searched = client.get("/admin/channel_registration/?search=李先生").get_data(as_text=True)
    assert "李先生秘密" not in searched
    assert client.get(f"/admin/channel_registration/details/?id={mine.id}").status_code == 200
    assert client.get(f"/admin/channel_registration/details/?id={theirs.id}").status_code == 404
    assert client.get("/admin/channel_registration/export/csv/").status_code == 403
    assert client.get("/admin/channel_registration/ajax/lookup/?name=project&query=a").status_code in (400, 404)
    for path in ("/admin/channel_conflict/", f"/admin/lead/details/?id={lead.id}", "/admin/lead/",
                 "/admin/channel_company/", "/admin/channel_member/", "/admin/project/", "/admin/audit/"):
        assert client.get(path).status_code == 403, path
    # a withdrawal of another's registration is refused like a missing one
    token = csrf_token(client, "/admin/")
    client.post("/admin/channel_registration/action/", data={"csrf_token": token, "action": "withdraw",
                                                             "rowid": str(theirs.id)})
    db.session.refresh(theirs)
    assert theirs.status == "valid"
    notes = client.get("/admin/notification/").get_data(as_text=True)
    assert "李先生秘密" not in notes and "周客户" not in notes
    home = client.get("/admin/").get_data(as_text=True)
    for secret in ("李先生秘密", "周客户", "渠道冲突", "/admin/lead/", "/admin/channel_conflict/",
                   "/admin/channel_company/", "/admin/subscription/"):
        assert secret not in home, secret
    assert "/admin/channel_registration/" in home
    # the other side: the first channel sees his own and not the second's
    Auth(client).logout()
    Auth(client).login("ch_channel1")
    listing = client.get("/admin/channel_registration/").get_data(as_text=True)
    assert "李先生秘密" in listing and "孙女士" not in listing


def test_r_com_1_every_action_the_channels_module_writes_reads_as_a_label():
    import re
    from pathlib import Path

    from admin.labels import AUDIT_ACTIONS
    source = (Path(__file__).resolve().parent.parent / "models" / "channels.py").read_text(encoding="utf-8")
    written = set(re.findall(r'action="([a-z_]+)"', source)) | set(re.findall(r'"(channel_[a-z_]+)"', source))
    written |= {f"channel_conflict_{d}" for d in ("keep", "award")}
    written -= {"channel_register_", "channel_conflict", "channel_registration", "channel_company",
                "channel_member", "channel_window_days", "channel_conflict_"}
    assert written and sorted(written - AUDIT_ACTIONS.keys()) == []


# --- races (PostgreSQL: concurrent transactions) --------------------------------------------------

needs_postgres = pytest.mark.skipif(not ON_POSTGRES, reason="a race needs PostgreSQL's concurrent transactions")


@needs_postgres
def test_r_com_1_channels_racing_for_one_phone_exactly_one_wins(app, db, make_user):
    from tests.support.race import race
    s = db.session
    project = f.project(s)
    admin = make_user("admin", username="race_admin")
    manager = make_user("sales_manager", username="race_manager")
    ids = []
    for n in range(6):
        company = ChannelCompany(name=f"竞速渠道{n}")
        s.add(company)
        s.flush()
        ids.append(add_member(s, admin, company_id=company.id, username=f"race_ch{n}", password="test-pass-123").user_id)
    s.commit()
    project_id = project.id

    def attempt(user_id):
        def register_as(session):
            try:
                register_customer(session, session.get(User, user_id), project_id=project_id,
                                  customer_name="抢单客户", phone=PHONE, today=TODAY)
                outcome = "valid"
            except ChannelRefused:
                outcome = "refused"
            session.commit()
            return outcome
        return register_as

    outcomes = race(*[attempt(i) for i in ids], app=app, join=60)
    assert sorted(outcomes) == ["refused"] * 5 + ["valid"]
    db.session.expire_all()
    winner = db.session.scalars(select(ChannelRegistration).where(ChannelRegistration.status == "valid")).one()
    conflicts = db.session.scalars(select(ChannelConflict)).all()
    assert len(conflicts) == 5 and {c.against_registration_id for c in conflicts} == {winner.id}
    assert _count(db, Notification, Notification.user_id == manager.id) == 5


@needs_postgres
def test_r_com_1_a_channel_registering_while_an_agent_registers_the_same_phone(app, db, make_user):
    """Whichever commits first, the outcome is one a serial order gives: the registration is
    refused against the customer, or it is valid and the customer exists beside it (the visit will
    confirm it). Never two customers, never two live registrations."""
    from models.leads import DuplicateLead, register_lead
    from tests.support.race import race
    s = db.session
    project = f.project(s)
    admin = make_user("admin", username="race2_admin")
    agent = make_user("agent", username="race2_agent")
    company = ChannelCompany(name="竞速渠道")
    s.add(company)
    s.flush()
    channel_id = add_member(s, admin, company_id=company.id, username="race2_ch", password="test-pass-123").user_id
    s.commit()
    project_id, agent_id = project.id, agent.id

    def rounds(phone):
        def channel(session):
            try:
                register_customer(session, session.get(User, channel_id), project_id=project_id,
                                  customer_name="同时客户", phone=phone, today=TODAY)
                outcome = "valid"
            except ChannelRefused:
                outcome = "refused"
            session.commit()
            return outcome

        def desk(session):
            try:
                register_lead(session, session.get(User, agent_id), project_id=project_id, name="同时客户",
                              phone=phone, source="walk_in", today=TODAY)
            except DuplicateLead:
                pass
            session.commit()
            return "lead"
        return channel, desk

    for n in range(4):
        phone = f"1391234560{n}"
        outcome, _ = race(*rounds(phone), app=app, join=60)
        db.session.expire_all()
        assert _count(db, Lead, Lead.phone == phone) == 1
        registration = db.session.scalars(select(ChannelRegistration).where(ChannelRegistration.phone == phone)).one()
        assert registration.status == outcome
        if outcome == "refused":
            conflict = db.session.scalars(select(ChannelConflict).where(
                ChannelConflict.registration_id == registration.id)).one()
            assert conflict.against_lead_id is not None


def test_r_com_1_a_visit_confirming_a_registration_gives_the_customers_deal_its_channel_commission(db, make_deal):
    """A customer registered by a channel, whose deal came before his visit was recorded: the visit
    confirms the registration (R-COM-1) and at once his deal's channel commission goes to that
    company (R-COM-2), not only at the next daily sweep."""
    from decimal import Decimal
    from models.commissions import CommissionLine, apply_rules, save_rule
    deal = make_deal(today=TODAY, staff={"control": ("sales_control", None), "finance": ("finance", None),
                                         "vp": ("vp", "vp1")})
    s, sub = db.session, deal["sub"]
    company = ChannelCompany(name="丙渠道")
    s.add(company)
    s.flush()
    lead = s.get(Lead, sub.lead_id)
    registration = ChannelRegistration(project_id=sub.project_id, company_id=company.id,
                                       registered_by_id=deal["agent"].id, customer_name=lead.name,
                                       phone=lead.phone, registered_on=TODAY - dt.timedelta(days=1),
                                       valid_until=TODAY + dt.timedelta(days=2), status="valid")
    s.add(registration)
    s.commit()
    save_rule(s, deal["vp"], sub.project_id, {"role": "channel", "basis": "fixed", "amount": "8000"})
    s.commit()
    apply_rules(s, sub.project_id, TODAY)  # what the rule's job does
    s.commit()
    assert _count(db, CommissionLine, CommissionLine.role == "channel") == 0  # not confirmed yet
    _visit(db, {"project": deal["project"], "agent": deal["agent"]}, TODAY, phone=lead.phone, lead=lead)
    s.refresh(registration)
    assert registration.status == "confirmed"
    paid = dict(s.execute(select(CommissionLine.payee_company_id, func.sum(CommissionLine.amount))
                          .where(CommissionLine.role == "channel").group_by(CommissionLine.payee_company_id)).all())
    assert paid == {company.id: Decimal("2400.00")}  # 30 % of 8,000 at subscription
