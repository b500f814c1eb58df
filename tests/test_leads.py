"""Leads: registration, duplicates, follow-ups, assignment, the pool, the question log (R-LEAD-1…6)."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, insert, select

from models import Audit, CustomerQuestion, FollowUp, Lead, LeadConflict, Notification
from models.leads import (DuplicateLead, answer_topic, ask_question, assign_leads, distribute_leads,
                          give_feedback, pool_stale_leads, record_follow_up, register_lead,
                          resolve_conflict)
from tests import factories as f
from tests.support.rules import raises_rule
from tests.conftest import Auth, submission_key

TODAY = dt.date(2026, 11, 26)


@pytest.fixture
def office(db, make_user):
    return f.lead_office(db.session, make_user)


def register(db, by, project, phone="13800138000", name="黄先生", source="walk_in", **kw):
    lead = register_lead(db.session, by, project_id=project.id, name=name, phone=phone,
                         source=source, today=TODAY, **kw)
    db.session.commit()
    return lead


def _count(db, model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


# --- R-LEAD-1: registration -------------------------------------------------------------------

def test_r_lead_1_an_agent_registers_an_enquiry_and_owns_it(db, office):
    lead = register(db, office["agent"], office["project"], phone="+86 138-0013 8000",
                    budget_wan=150, wanted_layout="三房", purpose="own_home")
    assert lead.phone == "13800138000"
    assert lead.owner_id == lead.registered_by_id == office["agent"].id
    assert lead.next_follow_up_on == TODAY + dt.timedelta(days=3)
    assert lead.stage == "new" and lead.budget_wan == 150
    audit = db.session.scalar(select(Audit).where(Audit.entity == "lead"))
    assert audit.action == "register" and audit.actor_id == office["agent"].id


def test_r_lead_1_a_landline_with_its_area_code_is_accepted(db, office):
    assert register(db, office["agent"], office["project"], phone="0731-8888 6666").phone == "073188886666"


def test_r_lead_1_a_lead_registered_by_the_manager_waits_in_the_pool(db, office):
    lead = register(db, office["manager"], office["project"])
    assert lead.owner_id is None and lead.registered_by_id == office["manager"].id


@pytest.mark.parametrize("field, value, message", [
    ("phone", "12345", "不是有效的电话号码"),
    ("phone", "138001380001", "不是有效的电话号码"),
    ("phone", "0731-123", "不是有效的电话号码"),
    ("name", "   ", "姓名"),
    ("source", "carrier_pigeon", "来源"),
])
def test_r_lead_1_bad_input_is_refused_in_the_users_language_and_nothing_is_saved(
        app, db, office, field, value, message):
    from flask_babel import force_locale
    kw = {"phone": "13800138000", "name": "黄先生", "source": "walk_in", field: value}
    with app.test_request_context(), raises_rule("R-LEAD-1") as refused:
        register(db, office["agent"], office["project"], **kw)
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        assert message in str(refused.value)
    db.session.rollback()
    assert _count(db, Lead) == 0


def test_r_lead_1_the_registration_form_shows_the_error_and_saves_nothing(client, db, office):
    Auth(client).login("li")
    token = Auth(client).csrf()
    response = client.post("/admin/lead/new/", data={
        "csrf_token": token, "project": office["project"].id, "name": "黄先生",
        "phone": "12345", "source": "walk_in"})
    assert response.status_code == 200
    assert "不是有效的电话号码" in response.get_data(as_text=True)
    assert _count(db, Lead) == 0


def test_r_lead_1_roles_without_leads_cannot_register(db, office, make_user):
    with raises_rule("R-ALL-1"):
        register(db, make_user("finance"), office["project"])


# --- R-LEAD-5: no duplicates ------------------------------------------------------------------

def test_r_lead_5_a_second_registration_is_a_conflict_not_a_second_lead(app, db, office):
    from flask_babel import force_locale
    first = register(db, office["agent"], office["project"], name="黄先生")
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        with pytest.raises(DuplicateLead) as refused:
            register(db, office["agent2"], office["project"], name="黄总", phone="138 0013 8000")
        message = str(refused.value)
    db.session.commit()  # the caller keeps the conflict
    assert "Li" in message and "已" in message  # who registered it, and when
    assert "黄先生" not in message and "13800138000" not in message  # never the customer's details
    assert _count(db, Lead) == 1
    conflict = db.session.scalar(select(LeadConflict))
    assert conflict.lead_id == first.id and conflict.attempted_by_id == office["agent2"].id
    assert conflict.status == "open" and conflict.attempted_name == "黄总"
    notes = db.session.scalars(select(Notification).where(Notification.kind == "lead_conflict")).all()
    assert [n.user_id for n in notes] == [office["manager"].id]


def test_r_lead_5_the_same_phone_in_another_project_is_another_customer(db, office):
    register(db, office["agent"], office["project"])
    other = f.project(db.session)
    register(db, office["agent2"], other)
    assert _count(db, Lead) == 2 and _count(db, LeadConflict) == 0


def test_r_lead_5_the_duplicate_is_explained_on_the_form(client, db, office):
    register(db, office["agent"], office["project"], name="黄先生")
    Auth(client).login("zhang")
    token = Auth(client).csrf()
    page = client.post("/admin/lead/new/", data={
        "csrf_token": token, "project": office["project"].id, "name": "黄总", "phone": "13800138000",
        "source": "walk_in"}).get_data(as_text=True)
    assert "已由 Li 于" in page and "黄先生" not in page
    assert _count(db, Lead) == 1 and _count(db, LeadConflict) == 1


def test_r_lead_5_two_agents_registering_one_phone_at_once_make_one_lead_and_one_conflict(
        app, db, office):
    """Both check, both insert: the database's unique key decides; the loser gets a conflict."""
    from models import User
    from tests.support.race import race
    project_id = office["project"].id

    def attempt(user_id, name):
        def register_as(session):
            try:
                register_lead(session, session.get(User, user_id), project_id=project_id, name=name,
                              phone="13800138000", source="walk_in", today=TODAY)
                outcome = "lead"
            except DuplicateLead:
                outcome = "conflict"
            session.commit()
            return outcome
        return register_as

    outcomes = race(*[attempt(office[k].id, k) for k in ("agent", "agent2")], app=app, join=30)
    assert sorted(outcomes) == ["conflict", "lead"]
    db.session.expire_all()
    assert _count(db, Lead) == 1 and _count(db, LeadConflict) == 1


def test_r_lead_5_the_manager_keeps_the_owner_or_transfers_the_lead(db, office):
    lead = register(db, office["agent"], office["project"])
    for _ in range(2):
        with pytest.raises(DuplicateLead):
            register(db, office["agent2"], office["project"])
        db.session.commit()
    keep, transfer = db.session.scalars(select(LeadConflict).order_by(LeadConflict.id)).all()
    resolve_conflict(db.session, office["manager"], keep.id, "keep")
    db.session.commit()
    assert db.session.get(Lead, lead.id).owner_id == office["agent"].id and keep.status == "kept"
    resolve_conflict(db.session, office["manager"], transfer.id, "transfer")
    db.session.commit()
    assert db.session.get(Lead, lead.id).owner_id == office["agent2"].id
    assert transfer.status == "transferred" and transfer.resolved_by_id == office["manager"].id
    with raises_rule("R-LEAD-5"):
        resolve_conflict(db.session, office["manager"], keep.id, "transfer")  # already decided


def test_r_lead_5_an_agent_cannot_decide_a_conflict(db, office):
    register(db, office["agent"], office["project"])
    with pytest.raises(DuplicateLead):
        register(db, office["agent2"], office["project"])
    db.session.commit()
    with raises_rule("R-ALL-1"):
        resolve_conflict(db.session, office["agent2"], db.session.scalar(select(LeadConflict.id)), "transfer")


def test_r_lead_5_the_manager_sees_open_conflicts_and_decides_in_the_grid(client, db, office):
    register(db, office["agent"], office["project"])
    with pytest.raises(DuplicateLead):
        register(db, office["agent2"], office["project"])
    db.session.commit()
    conflict_id = db.session.scalar(select(LeadConflict.id))
    Auth(client).login("wang")
    page = client.get("/admin/lead_conflict/?flt0_0=open").get_data(as_text=True)
    assert "Zhang" in page and "待处理" in page
    token = Auth(client).csrf()
    client.post("/admin/lead_conflict/action/", data={"csrf_token": token, "action": "transfer",
                                                      "rowid": conflict_id})
    db.session.expire_all()
    assert db.session.get(LeadConflict, conflict_id).status == "transferred"


# --- R-LEAD-3 / R-LEAD-4: follow-ups ----------------------------------------------------------

def test_r_lead_3_a_follow_up_sets_the_next_date_by_the_projects_cycle(db, office):
    lead = register(db, office["agent"], office["project"])
    record_follow_up(db.session, office["agent"], lead_id=lead.id, channel="phone",
                     content="约周六看房", today=TODAY)
    db.session.commit()
    assert lead.next_follow_up_on == TODAY + dt.timedelta(days=3) and lead.stage == "contacted"
    two_day = f.project(db.session, follow_up_days=2)
    other = register(db, office["agent"], two_day, phone="13900139000")
    record_follow_up(db.session, office["agent"], lead_id=other.id, channel="wechat",
                     content="发了户型图", today=TODAY)
    assert other.next_follow_up_on == TODAY + dt.timedelta(days=2)


def test_r_lead_4_a_visit_makes_an_intent_customer(db, office):
    lead = register(db, office["agent"], office["project"])
    record_follow_up(db.session, office["agent"], lead_id=lead.id, channel="visit",
                     content="到访看样板间", next_on=TODAY + dt.timedelta(days=2), today=TODAY)
    db.session.commit()
    assert lead.stage == "visited" and lead.next_follow_up_on == TODAY + dt.timedelta(days=2)


@pytest.mark.parametrize("kw, message", [
    ({"next_on": TODAY - dt.timedelta(days=1)}, "早于今天"),
    ({"content": "  "}, "跟进内容"),
    ({"channel": "fax"}, "跟进方式"),
])
def test_r_lead_3_bad_follow_ups_are_refused(app, db, office, kw, message):
    from flask_babel import force_locale
    lead = register(db, office["agent"], office["project"])
    args = {"lead_id": lead.id, "channel": "phone", "content": "回访", "today": TODAY, **kw}
    with raises_rule("R-LEAD-3") as refused:
        record_follow_up(db.session, office["agent"], **args)
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        assert message in str(refused.value)
    db.session.rollback()
    assert _count(db, FollowUp) == 0


def test_r_lead_3_an_agent_cannot_follow_up_another_agents_lead(db, office):
    lead = register(db, office["agent"], office["project"])
    with raises_rule("R-LEAD-5"):  # the customer belongs to the agent who registered them
        record_follow_up(db.session, office["agent2"], lead_id=lead.id, channel="phone",
                         content="抢客户", today=TODAY)


def test_r_lead_3_the_due_list_shows_an_agent_own_due_and_overdue_leads(client, db, office):
    today = dt.date.today()
    s = db.session
    due = f.lead(s, owner=office["agent"], name="今天到期", next_follow_up_on=today)
    late = f.lead(s, owner=office["agent"], name="逾期三天", next_follow_up_on=today - dt.timedelta(days=3))
    f.lead(s, owner=office["agent"], name="下周再跟", next_follow_up_on=today + dt.timedelta(days=7))
    f.lead(s, owner=office["agent"], name="已流失", stage="lost", next_follow_up_on=today)
    f.lead(s, owner=office["agent2"], name="别人的客户", next_follow_up_on=today)
    s.commit()
    Auth(client).login("li")
    page = client.get("/admin/follow_up_due/").get_data(as_text=True)
    assert "今天到期" in page and "逾期三天" in page
    assert "下周再跟" not in page and "已流失" not in page and "别人的客户" not in page
    assert due.id and late.id
    Auth(client).logout()
    Auth(client).login("wang")
    page = client.get("/admin/follow_up_due/").get_data(as_text=True)
    assert "今天到期" in page and "别人的客户" in page


def test_r_lead_4_the_managers_feedback_reaches_the_agent(client, db, office):
    lead = register(db, office["agent"], office["project"])
    follow_up = record_follow_up(db.session, office["agent"], lead_id=lead.id, channel="visit",
                                 content="到访", today=TODAY)
    db.session.commit()
    Auth(client).login("wang")
    token = Auth(client).csrf()
    client.post(f"/admin/follow_up/edit/?id={follow_up.id}", data={
        "csrf_token": token, "manager_feedback": "下次带上学区说明"})
    db.session.expire_all()
    follow_up = db.session.get(FollowUp, follow_up.id)
    assert follow_up.manager_feedback == "下次带上学区说明"
    assert follow_up.feedback_by_id == office["manager"].id and follow_up.content == "到访"
    note = db.session.scalar(select(Notification).where(Notification.user_id == office["agent"].id,
                                                        Notification.kind == "follow_up_feedback"))
    assert "学区" in note.text
    Auth(client).logout()
    Auth(client).login("li")
    assert "下次带上学区说明" in client.get("/admin/follow_up/").get_data(as_text=True)
    assert client.get(f"/admin/follow_up/edit/?id={follow_up.id}").status_code == 403
    with raises_rule("R-ALL-1"):
        give_feedback(db.session, office["agent"], follow_up.id, "自己给自己")


# --- R-LEAD-2: assignment ---------------------------------------------------------------------

def _bulk_leads(db, project, n, owner_id=None, registered_by=None):
    rows = [{"project_id": project.id, "name": f"客户{i}", "phone": f"1{i:010d}", "source": "web",
             "registered_by_id": registered_by, "owner_id": owner_id, "stage": "new"}
            for i in range(n)]
    db.session.execute(insert(Lead), rows)
    db.session.commit()
    return list(db.session.scalars(select(Lead.id).order_by(Lead.id)))


def test_r_lead_2_the_manager_assigns_selected_leads_to_one_agent(db, office):
    ids = _bulk_leads(db, office["project"], 5, registered_by=office["manager"].id)
    assert assign_leads(db.session, office["manager"], ids[:3], office["agent"].id) == 3
    db.session.commit()
    owners = dict(db.session.execute(select(Lead.id, Lead.owner_id)).all())
    assert [owners[i] for i in ids] == [office["agent"].id] * 3 + [None, None]
    rows = db.session.scalars(select(Audit).where(Audit.action == "assign")).all()
    assert len(rows) == 3 and rows[0].changes == {"owner_id": [None, office["agent"].id]}
    assert rows[0].actor_id == office["manager"].id


def test_r_lead_2_ten_thousand_leads_over_seven_equal_agents_give_1428_or_1429_each(
        db, office, make_user):
    agents = [make_user("agent", username=f"a{i}") for i in range(7)]
    ids = _bulk_leads(db, office["project"], 10_000, registered_by=office["manager"].id)
    spread = distribute_leads(db.session, office["manager"], ids, [a.id for a in agents])
    db.session.commit()
    assert sorted(set(spread.values())) == [1428, 1429] and sum(spread.values()) == 10_000
    per_agent = dict(db.session.execute(select(Lead.owner_id, func.count()).group_by(Lead.owner_id)).all())
    assert {per_agent[a.id] for a in agents} == {1428, 1429}
    assert _count(db, Audit, Audit.action == "assign") == 10_000  # an audit row per lead


def test_r_lead_2_spreading_evens_out_unequal_loads(db, office, make_user):
    heavy, light1, light2 = office["agent"], office["agent2"], make_user("agent", username="liu")
    _bulk_leads(db, office["project"], 5, owner_id=heavy.id, registered_by=heavy.id)
    new = [i for i in _bulk_leads_more(db, office, 7)]
    spread = distribute_leads(db.session, office["manager"], new, [heavy.id, light1.id, light2.id])
    assert spread.get(heavy.id, 0) == 0 and sorted([spread[light1.id], spread[light2.id]]) == [3, 4]


def _bulk_leads_more(db, office, n):
    rows = [{"project_id": office["project"].id, "name": f"新客户{i}", "phone": f"15{i:09d}",
             "source": "web", "registered_by_id": office["manager"].id, "stage": "new"} for i in range(n)]
    db.session.execute(insert(Lead), rows)
    db.session.commit()
    return list(db.session.scalars(select(Lead.id).where(Lead.owner_id.is_(None)).order_by(Lead.id)))


def test_r_lead_2_history_survives_reassignment(db, office):
    lead = register(db, office["agent"], office["project"])
    record_follow_up(db.session, office["agent"], lead_id=lead.id, channel="phone", content="首次回访",
                     today=TODAY)
    db.session.commit()
    assign_leads(db.session, office["manager"], [lead.id], office["agent2"].id)
    db.session.commit()
    follow_up = db.session.scalar(select(FollowUp))
    assert follow_up.agent_id == office["agent"].id  # what the first agent did stays theirs
    history = db.session.scalars(select(Audit.action).where(Audit.entity == "lead",
                                                            Audit.entity_id == str(lead.id))
                                 .order_by(Audit.id)).all()
    assert history[0] == "register" and history[-1] == "assign"


@pytest.mark.parametrize("case", ["unknown_lead", "not_an_agent", "agent_acts"])
def test_r_lead_2_a_bad_bulk_assignment_changes_none_of_the_leads(db, office, make_user, case):
    ids = _bulk_leads(db, office["project"], 3, registered_by=office["manager"].id)
    by, target, selected = office["manager"], office["agent"].id, ids
    if case == "unknown_lead":
        selected = ids + [999_999]
    elif case == "not_an_agent":
        target = make_user("finance").id
    else:
        by = office["agent"]
    with raises_rule("R-ALL-1" if case == "agent_acts" else "R-LEAD-2"):
        assign_leads(db.session, by, selected, target)
    db.session.rollback()
    assert _count(db, Lead, Lead.owner_id.is_not(None)) == 0


def test_r_lead_2_the_manager_assigns_from_the_grid(client, db, office):
    ids = _bulk_leads(db, office["project"], 4, registered_by=office["manager"].id)
    Auth(client).login("wang")
    token = Auth(client).csrf()
    page = client.post("/admin/lead/action/", data={"csrf_token": token, "action": "assign",
                                                    "rowid": ids}).get_data(as_text=True)
    assert "分配" in page and "Li" in page and "Zhang" in page
    response = client.post("/admin/lead/assign/", data={
        "csrf_token": token, "ids": ",".join(map(str, ids)), "mode": "even",
        "agent": [office["agent"].id, office["agent2"].id], "submission_key": submission_key(page)},
        follow_redirects=True)
    assert "4" in response.get_data(as_text=True)
    per_agent = dict(db.session.execute(select(Lead.owner_id, func.count()).group_by(Lead.owner_id)).all())
    assert per_agent == {office["agent"].id: 2, office["agent2"].id: 2}


def test_r_lead_2_an_agent_cannot_bulk_assign(client, db, office):
    ids = _bulk_leads(db, office["project"], 2, registered_by=office["manager"].id)
    Auth(client).login("li")
    token = Auth(client).csrf()
    assert client.post("/admin/lead/assign/", data={"csrf_token": token, "ids": ",".join(map(str, ids)),
                                                    "mode": "one", "agent": office["agent"].id}).status_code == 403
    assert _count(db, Lead, Lead.owner_id.is_not(None)) == 0


# --- Public pool --------------------------------------------------------------------------------

def test_idle_leads_return_to_the_public_pool_and_the_agent_is_told(app, db, office):
    s = db.session
    long_ago = dt.datetime(2026, 11, 1)  # 25 days before TODAY; the default limit is 15
    idle = f.lead(s, owner=office["agent"], name="久未跟进", last_activity_at=long_ago)
    f.lead(s, owner=office["agent"], name="刚跟进", last_activity_at=dt.datetime(2026, 11, 20))
    f.lead(s, owner=office["agent"], name="已流失", stage="lost", last_activity_at=long_ago)
    s.commit()
    assert pool_stale_leads(s, TODAY) == 1
    s.commit()
    s.expire_all()
    assert s.get(Lead, idle.id).owner_id is None and s.get(Lead, idle.id).pooled_at is not None
    note = s.scalar(select(Notification).where(Notification.kind == "lead_pooled"))
    assert note.user_id == office["agent"].id and "1" in note.text
    assert s.scalar(select(Audit).where(Audit.action == "pool")).changes == {
        "owner_id": [office["agent"].id, None]}
    assert pool_stale_leads(s, TODAY) == 0  # a second run the same day moves nothing


def test_the_pool_limit_is_a_project_setting(db, office):
    short = f.project(db.session, pool_after_days=3)
    lead = f.lead(db.session, owner=office["agent"], project_=short,
                  last_activity_at=dt.datetime(2026, 11, 21))
    db.session.commit()
    assert pool_stale_leads(db.session, TODAY) == 1
    assert lead.owner_id is None


def test_the_pool_command_runs_for_a_given_day(app, db, office):
    f.lead(db.session, owner=office["agent"], last_activity_at=dt.datetime(2026, 11, 1))
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["pool", "--today", "2026-11-26"])
    assert result.exit_code == 0 and "1 leads returned" in result.output


# --- R-LEAD-6: the question log ---------------------------------------------------------------

def test_r_lead_6_questions_are_grouped_answered_once_and_join_the_answer_sheet(client, db, office):
    p = office["project"].id
    for text, who in [("车位怎么卖？", "agent"), ("车位 怎么卖", "agent2"), ("物业费多少？", "agent")]:
        ask_question(db.session, office[who], project_id=p, question=text)
    db.session.commit()
    Auth(client).login("wang")
    page = client.get("/admin/question_group/").get_data(as_text=True)
    assert page.index("车位怎么卖") < page.index("物业费多少")  # most asked first
    assert ">2<" in page.replace(" ", "")
    token = Auth(client).csrf()
    client.post("/admin/question_group/answer/", data={
        "csrf_token": token, "project_id": p, "topic": "车位怎么卖", "answer": "地下车位12万起"})
    answered = db.session.scalars(select(CustomerQuestion).where(CustomerQuestion.answered_at.is_not(None))).all()
    assert len(answered) == 2
    assert _count(db, Notification, Notification.kind == "question_answered") == 2
    Auth(client).logout()
    Auth(client).login("zhang")
    sheet = client.get("/admin/answer_sheet/?search=车位").get_data(as_text=True)
    assert sheet.count("地下车位12万起") == 1  # one entry per group
    later = ask_question(db.session, office["agent2"], project_id=p, question="车位怎么卖?")
    assert later.answer == "地下车位12万起"  # already on the sheet: answered at once


def test_r_lead_6_only_managers_answer_and_agents_see_their_own_questions(client, db, office):
    ask_question(db.session, office["agent"], project_id=office["project"].id, question="学区是哪所？")
    ask_question(db.session, office["agent2"], project_id=office["project"].id, question="何时交房？")
    db.session.commit()
    with raises_rule("R-ALL-1"):
        answer_topic(db.session, office["agent"], project_id=office["project"].id, topic="学区是哪所",
                     answer="一中")
    with raises_rule("R-LEAD-6"):
        ask_question(db.session, office["agent"], project_id=office["project"].id, question="？？ ")
    Auth(client).login("li")
    page = client.get("/admin/customer_question/").get_data(as_text=True)
    assert "学区是哪所" in page and "何时交房" not in page
    assert client.get("/admin/question_group/").status_code == 403


# --- Scoping of identity numbers in forms -----------------------------------------------------

def test_an_agent_edits_a_lead_without_reading_its_id_number(client, db, office):
    lead = f.lead(db.session, owner=office["agent"], id_number="430102199001011238")
    db.session.commit()
    Auth(client).login("li")
    form = client.get(f"/admin/lead/edit/?id={lead.id}").get_data(as_text=True)
    assert "430102199001011238" not in form and "430***********1238" in form
    token = Auth(client).csrf()
    client.post(f"/admin/lead/edit/?id={lead.id}", data={
        "csrf_token": token, "project": lead.project_id, "name": "新名字", "phone": lead.phone,
        "source": "walk_in", "id_number": ""})
    db.session.expire_all()
    lead = db.session.get(Lead, lead.id)
    assert lead.name == "新名字" and lead.id_number == "430102199001011238"


def test_r_lead_5_the_agent_who_registered_again_never_sees_the_other_agents_customer(client, db, office):
    register(db, office["agent"], office["project"], name="黄先生", id_number="430102199001011238")
    with pytest.raises(DuplicateLead):
        register(db, office["agent2"], office["project"], name="黄总")
    db.session.commit()
    conflict_id = db.session.scalar(select(LeadConflict.id))
    Auth(client).login("zhang")
    for path in ("/admin/lead_conflict/", f"/admin/lead_conflict/details/?id={conflict_id}"):
        page = client.get(path).get_data(as_text=True)
        assert "Li" in page and "黄总" in page  # who holds it; what they typed themselves
        assert "黄先生" not in page and "8000" not in page and "430" not in page


def test_notifications_are_marked_read_only_by_their_owner(client, db, office):
    from models.notifications import notify
    notify(db.session, [office["agent"].id], "lead_assigned", "给李明的通知")
    notify(db.session, [office["agent2"].id], "lead_assigned", "给张丽的通知")
    db.session.commit()
    mine, theirs = db.session.scalars(select(Notification.id).order_by(Notification.id)).all()
    Auth(client).login("li")
    client.post("/admin/notification/action/", data={"csrf_token": Auth(client).csrf(), "action": "read",
                                                     "rowid": [mine, theirs]})
    db.session.expire_all()
    assert db.session.get(Notification, mine).read_at is not None
    assert db.session.get(Notification, theirs).read_at is None
