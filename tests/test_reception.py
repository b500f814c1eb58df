"""Issue 23 (items 1, 2): the reception rotation and the visit register (R-RCP-1, R-RCP-2, R-LEAD-5).

The domain through models.reception; the desk screen through the HTTP client with CSRF; the races
on PostgreSQL with threads, separate sessions and a barrier (tests/support/race.py)."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from models import Lead, RuleViolation, User
from models.base import office_today
from models.leads import pool_stale_leads, register_lead
from models.reception import (RotationEntry, RotationEvent, Visit, check_phone, finish_reception, make_up_turn,
                              move, next_free, receive, rotation_fairness, skip_turn)
from models.submissions import AlreadySubmitted, new_key
from tests import factories as f
from tests.conftest import Auth

TODAY = office_today()  # the desk's pages read the office's today, as in production


@pytest.fixture
def floor(db, make_user):
    """A project, its manager, four agents signed in in order (a1 first) and a front-desk agent."""
    s = db.session
    project = f.project(s, protection_days=30)
    manager = make_user("sales_manager", username="floor_mgr")
    agents = [make_user("agent", username=f"floor_a{i}") for i in range(1, 5)]
    for agent in agents:
        move(s, agent, project.id, "sign_in", today=TODAY)
    s.commit()
    return {"project": project, "manager": manager, "agents": agents, "s": s}


def _receive(floor, phone, by=None, **kw):
    s = floor["s"]
    kw.setdefault("channel", "walk_in")
    kw.setdefault("name", "来访客户")
    visit = receive(s, by or floor["manager"], project_id=floor["project"].id, phone=phone, key=new_key(),
                    today=TODAY, **kw)
    s.commit()
    return visit


def _entry(floor, agent):
    return floor["s"].scalar(select(RotationEntry).where(RotationEntry.agent_id == agent.id,
                                                         RotationEntry.day == TODAY))


def test_r_rcp_1_a_new_visitor_goes_to_the_next_free_agent_who_moves_to_the_back(floor):
    a1, a2 = floor["agents"][:2]
    assert next_free(floor["s"], floor["project"].id, TODAY).agent_id == a1.id
    visit = _receive(floor, "13900000001")
    assert (visit.received_by_id, visit.kind, visit.in_turn) == (a1.id, "first", True)
    entry = _entry(floor, a1)
    assert (entry.status, entry.receptions) == ("receiving", 1)
    assert next_free(floor["s"], floor["project"].id, TODAY).agent_id == a2.id
    lead = floor["s"].get(Lead, visit.lead_id)
    assert (lead.owner_id, lead.source, lead.stage) == (a1.id, "walk_in", "visited")
    assert lead.protected_until == TODAY + dt.timedelta(days=30)  # R-RCP-2: the first visit protects
    finish_reception(floor["s"], a1, visit.id, today=TODAY)
    floor["s"].commit()
    assert _entry(floor, a1).status == "free" and visit.ended_at is not None
    order = [next_free(floor["s"], floor["project"].id, TODAY).agent_id]
    assert order == [a2.id]  # a1 is at the back now


def test_r_rcp_1_a_returning_visitor_goes_to_his_owner_without_using_a_turn(floor):
    a1, a2, a3 = floor["agents"][:3]
    first = _receive(floor, "13900000002")  # a1's customer now
    finish_reception(floor["s"], a1, first.id, today=TODAY)
    floor["s"].commit()
    seq = _entry(floor, a1).queue_seq
    again = _receive(floor, "139 0000 0002", channel="phone_call")
    assert (again.received_by_id, again.kind, again.on_behalf_of_id, again.in_turn) == (a1.id, "return", None, False)
    assert _entry(floor, a1).queue_seq == seq and _entry(floor, a1).receptions == 1  # no turn consumed
    assert floor["s"].scalar(select(RotationEvent.kind).where(RotationEvent.visit_id == again.id)) == "owner_return"


def test_r_rcp_1_an_owner_not_free_means_a_reception_on_his_behalf_with_a_reason_and_no_change_of_owner(floor):
    a1, a2 = floor["agents"][:2]
    first = _receive(floor, "13900000003")  # a1 receiving it, so not free
    with pytest.raises(RuleViolation, match="reason|原因"):
        _receive(floor, "13900000003")
    floor["s"].rollback()
    seq = _entry(floor, a2).queue_seq
    visit = _receive(floor, "13900000003", reason="原顾问正在接待")
    assert (visit.received_by_id, visit.on_behalf_of_id, visit.kind) == (a2.id, a1.id, "return")
    assert floor["s"].get(Lead, first.lead_id).owner_id == a1.id  # R-LEAD-5: still a1's customer
    assert _entry(floor, a2).queue_seq == seq and _entry(floor, a2).receptions == 0  # no turn consumed
    event = floor["s"].scalar(select(RotationEvent).where(RotationEvent.visit_id == visit.id))
    assert (event.kind, event.reason) == ("on_behalf", "原顾问正在接待")


def test_r_rcp_1_a_skipped_agent_goes_to_the_back_and_a_make_up_turn_puts_him_in_front(floor):
    a1, a2 = floor["agents"][:2]
    s = floor["s"]
    with pytest.raises(RuleViolation):
        skip_turn(s, a1, floor["project"].id, "", today=TODAY)  # a reason is required
    s.rollback()
    with pytest.raises(RuleViolation):
        skip_turn(s, a2, floor["project"].id, "接电话", today=TODAY)  # not his turn to give away
    s.rollback()
    skip_turn(s, a1, floor["project"].id, "在接电话", today=TODAY)
    s.commit()
    assert _entry(floor, a1).skipped == 1 and next_free(s, floor["project"].id, TODAY).agent_id == a2.id
    with pytest.raises(RuleViolation):
        make_up_turn(s, a1, floor["project"].id, a1.id, "补位", today=TODAY)  # the manager's decision
    s.rollback()
    make_up_turn(s, floor["manager"], floor["project"].id, a1.id, "刚才被跳过", today=TODAY)
    s.commit()
    assert next_free(s, floor["project"].id, TODAY).agent_id == a1.id


def test_r_rcp_1_out_of_turn_is_the_managers_with_a_reason_and_the_agent_whose_turn_it_was_keeps_it(floor):
    a1, a2, a3 = floor["agents"][:3]
    s = floor["s"]
    with pytest.raises(RuleViolation):
        _receive(floor, "13900000004", by=a3, mode="out_of_turn", agent_id=a3.id, reason="熟人")
    s.rollback()
    with pytest.raises(RuleViolation):
        _receive(floor, "13900000004", agent_id=a3.id)  # not his turn, and no exception asked
    s.rollback()
    visit = _receive(floor, "13900000004", mode="out_of_turn", agent_id=a3.id, reason="客户指定会粤语的顾问")
    assert visit.received_by_id == a3.id and not visit.in_turn
    event = s.scalar(select(RotationEvent).where(RotationEvent.visit_id == visit.id))
    assert (event.kind, event.turn_of_id) == ("out_of_turn", a1.id)
    assert next_free(s, floor["project"].id, TODAY).agent_id == a1.id  # a1 keeps his place
    fair = {r["agent_id"]: r for r in rotation_fairness(s, floor["project"].id, TODAY, TODAY)}
    assert fair[a3.id]["out_of_turn"] == 1 and fair[a3.id]["receptions"] == 1 and fair[a1.id]["receptions"] == 0


def test_r_rcp_1_moves_sign_in_break_back_and_out_and_refuses_them_while_receiving(floor):
    a1, a2 = floor["agents"][:2]
    s = floor["s"]
    move(s, a1, floor["project"].id, "break", today=TODAY)
    s.commit()
    assert next_free(s, floor["project"].id, TODAY).agent_id == a2.id
    move(s, a1, floor["project"].id, "back", today=TODAY)
    s.commit()
    assert _entry(floor, a1).queue_seq > _entry(floor, a2).queue_seq  # back: at the back of the queue
    with pytest.raises(RuleViolation):
        move(s, a1, floor["project"].id, "sign_out", agent_id=a2.id, today=TODAY)  # not his colleague's
    s.rollback()
    _receive(floor, "13900000005")  # a2 receives
    with pytest.raises(RuleViolation):
        move(s, a2, floor["project"].id, "sign_out", today=TODAY)
    s.rollback()
    move(s, floor["manager"], floor["project"].id, "sign_out", agent_id=a1.id, today=TODAY)
    s.commit()
    assert _entry(floor, a1).status == "out"


def test_r_rcp_1_nobody_free_is_told_and_nothing_is_recorded(floor):
    s = floor["s"]
    for i in range(4):
        _receive(floor, f"1390000010{i}")
    with pytest.raises(RuleViolation, match="free|空闲"):
        _receive(floor, "13900000199")
    s.rollback()
    assert s.scalar(select(func.count()).select_from(Visit)) == 4
    assert s.scalar(select(func.count()).select_from(Lead).where(Lead.phone == "13900000199")) == 0


def test_r_rcp_1_one_reception_form_sent_twice_receives_once(floor):
    s = floor["s"]
    key = new_key()
    receive(s, floor["manager"], project_id=floor["project"].id, phone="13900000006", channel="web", name="网客",
            key=key, today=TODAY)
    s.commit()
    with pytest.raises(AlreadySubmitted):
        receive(s, floor["manager"], project_id=floor["project"].id, phone="13900000006", channel="web",
                name="网客", key=key, today=TODAY)
    s.rollback()
    assert s.scalar(select(func.count()).select_from(Visit)) == 1
    assert sum(e.receptions for e in s.scalars(select(RotationEntry))) == 1


def test_r_rcp_2_every_visit_runs_the_visit_recorded_hooks(floor, monkeypatch):
    from models import reception
    seen = []
    monkeypatch.setattr(reception, "VISIT_RECORDED", [lambda session, visit: seen.append((visit.id, visit.channel))])
    visit = _receive(floor, "13900000007", channel="channel", party_size=3)
    assert seen == [(visit.id, "channel")] and visit.party_size == 3
    assert floor["s"].get(Lead, visit.lead_id).source == "channel"


def test_r_rcp_2_check_phone_answers_new_protected_expired_pool_and_the_channel_that_registered_it(floor):
    from models.channels import ChannelCompany, ChannelRegistration
    s, project, mgr = floor["s"], floor["project"], floor["manager"]
    a1 = floor["agents"][0]
    assert check_phone(s, mgr, project.id, "13900000008", today=TODAY)["status"] == "new"
    _receive(floor, "13900000008")
    answer = check_phone(s, mgr, project.id, "13900000008", today=TODAY)
    assert (answer["status"], answer["owner"], answer["until"]) == ("protected", a1.display_name,
                                                                    (TODAY + dt.timedelta(days=30)).isoformat())
    later = TODAY + dt.timedelta(days=31)
    assert check_phone(s, mgr, project.id, "13900000008", today=later)["status"] == "expired"
    f.lead(s, owner=None, project_=project, phone="13900000009", registered_by=mgr)
    company = ChannelCompany(name="远航渠道")
    s.add(company)
    s.flush()
    s.add(ChannelRegistration(project_id=project.id, company_id=company.id, registered_by_id=mgr.id,
                              customer_name="渠道客户", phone="13900000009", registered_on=TODAY,
                              valid_until=TODAY + dt.timedelta(days=30)))
    s.commit()
    answer = check_phone(s, mgr, project.id, "139-0000-0009", today=TODAY)
    assert (answer["status"], answer["channel"], answer["channel_until"]) == (
        "pool", "远航渠道", (TODAY + dt.timedelta(days=30)).isoformat())
    assert "渠道客户" not in repr(answer)  # nothing else of the customer


def test_r_rcp_2_a_running_protection_keeps_the_customer_from_the_pool_and_its_end_lets_him_go(floor):
    s, project = floor["s"], floor["project"]
    project.pool_after_days, project.protection_days = 7, 20
    s.commit()
    visit = _receive(floor, "13900000010")
    lead = s.get(Lead, visit.lead_id)
    lead.last_activity_at = lead.last_activity_at - dt.timedelta(days=10)  # no follow-up since the visit
    s.commit()
    assert pool_stale_leads(s, today=TODAY + dt.timedelta(days=10)) == 0  # protected until day 20
    s.commit()
    assert s.get(Lead, lead.id).owner_id == floor["agents"][0].id
    assert pool_stale_leads(s, today=TODAY + dt.timedelta(days=21)) == 1  # expired: the pool rules
    s.commit()
    assert s.get(Lead, lead.id).owner_id is None


def test_r_rcp_1_a_pooled_customer_who_walks_in_goes_by_the_rotation(floor):
    s, project, mgr = floor["s"], floor["project"], floor["manager"]
    pooled = f.lead(s, owner=None, project_=project, phone="13900000011", registered_by=mgr)
    s.commit()
    visit = _receive(floor, "13900000011")
    assert visit.received_by_id == floor["agents"][0].id and visit.kind == "first"
    assert s.get(Lead, pooled.id).owner_id == floor["agents"][0].id


def test_r_lead_5_register_lead_for_the_desk_keeps_one_customer_per_phone(floor):
    from models.leads import DuplicateLead
    s, project, mgr = floor["s"], floor["project"], floor["manager"]
    a2 = floor["agents"][1]
    lead = register_lead(s, mgr, project_id=project.id, name="甲", phone="13900000012", source="walk_in",
                         owner_id=a2.id, today=TODAY)
    s.commit()
    assert lead.owner_id == a2.id
    with pytest.raises(DuplicateLead):
        register_lead(s, mgr, project_id=project.id, name="乙", phone="13900000012", source="walk_in",
                      owner_id=a2.id, today=TODAY)
    s.rollback()


# --- PostgreSQL: two desks at the same moment --------------------------------------------------------

def _race_receptions(app, floor, phones):
    from tests.support.race import race
    project_id, manager_id = floor["project"].id, floor["manager"].id

    def desk(phone):
        def run(session):
            visit = receive(session, session.get(User, manager_id), project_id=project_id, phone=phone,
                            channel="walk_in", name="同时到访", key=new_key(), today=TODAY)
            session.commit()
            return visit.received_by_id
        return run
    return race(*[desk(p) for p in phones], app=app, expected=RuleViolation)


@pytest.mark.postgres
def test_r_rcp_1_four_desks_at_once_give_four_visitors_four_distinct_agents(app, floor):
    results = _race_receptions(app, floor, [f"1370000000{i}" for i in range(4)])
    assert sorted(results) == sorted(a.id for a in floor["agents"])


@pytest.mark.postgres
def test_r_rcp_1_eight_desks_at_once_with_four_agents_four_receive_and_four_are_told_nobody_is_free(app, floor):
    results = _race_receptions(app, floor, [f"1370000001{i}" for i in range(8)])
    received = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, RuleViolation)]
    assert sorted(received) == sorted(a.id for a in floor["agents"]) and len(refused) == 4
    s = floor["s"]
    s.expire_all()
    assert s.scalar(select(func.count()).select_from(Visit)) == 4
    assert [e.receptions for e in s.scalars(select(RotationEntry).order_by(RotationEntry.id))] == [1, 1, 1, 1]


@pytest.mark.postgres
def test_r_rcp_1_a_skip_and_a_reception_at_the_same_moment_never_skip_an_agent_twice(app, floor):
    """A desk receives while the manager skips the next turn: whatever the order, one agent receives
    and one other is skipped; nobody both, nobody twice."""
    from tests.support.race import race
    project_id, manager_id = floor["project"].id, floor["manager"].id

    def desk(session):
        visit = receive(session, session.get(User, manager_id), project_id=project_id, phone="13700000099",
                        channel="walk_in", name="客", key=new_key(), today=TODAY)
        session.commit()
        return visit.received_by_id

    def skip(session):
        entry = skip_turn(session, session.get(User, manager_id), project_id, "在接电话", today=TODAY)
        session.commit()
        return entry.agent_id
    received, skipped = race(desk, skip, app=app)
    assert received != skipped and {received, skipped} == {a.id for a in floor["agents"][:2]}


# --- the desk through HTTP, as a browser uses it (CSRF, the form's one-time key) ---------------------

_KEY = re.compile(r'name="submission_key" value="([^"]+)"')


def test_r_rcp_1_the_desk_screen_signs_in_checks_a_phone_receives_and_finishes_over_http(app, client, floor):
    project, s = floor["project"], floor["s"]
    agent = floor["agents"][0]
    auth = Auth(client)
    assert auth.login("floor_a1").status_code == 302
    page = client.get(f"/admin/rotation/?project={project.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and agent.display_name in html and "rotation.js" in html
    assert "rotation-turn" in html  # the next free agent is marked
    token = auth.csrf()
    answer = client.get(f"/admin/rotation/check?project={project.id}&phone=13911112222").get_json()
    assert answer["status"] == "new" and "owner_id" not in answer
    assert client.get(f"/admin/rotation/check?project={project.id}&phone=12").status_code == 400
    # without the CSRF token nothing is received
    key = _KEY.search(client.get(f"/admin/rotation/?project={project.id}").get_data(as_text=True)).group(1)
    data = {"project": str(project.id), "phone": "13911112222", "name": "王先生", "channel": "fair",
            "party_size": "2", "mode": "turn", "submission_key": key}
    assert client.post("/admin/rotation/receive", data=data).status_code in (303, 400)
    assert s.scalar(select(func.count()).select_from(Visit)) == 0
    done = client.post("/admin/rotation/receive", data={**data, "csrf_token": token}, follow_redirects=True)
    again = client.post("/admin/rotation/receive", data={**data, "csrf_token": token}, follow_redirects=True)
    assert agent.display_name in done.get_data(as_text=True)
    assert "已提交" in again.get_data(as_text=True)  # a double click receives once
    visits = list(s.scalars(select(Visit)))
    assert [(v.received_by_id, v.channel, v.party_size) for v in visits] == [(agent.id, "fair", 2)]
    panel = client.get(f"/admin/rotation/panel?project={project.id}").get_data(as_text=True)
    assert "visit_id" in panel  # the reception in progress, with its finish button
    client.post("/admin/rotation/finish", data={"project": str(project.id), "visit_id": str(visits[0].id),
                                                 "csrf_token": token})
    s.expire_all()
    assert s.get(Visit, visits[0].id).ended_at is not None and _entry(floor, agent).status == "free"
    answer = client.get(f"/admin/rotation/check?project={project.id}&phone=13911112222").get_json()
    assert answer["status"] == "protected" and answer["owner"] == agent.display_name
    client.post("/admin/rotation/move", data={"project": str(project.id), "move": "break", "csrf_token": token})
    s.expire_all()
    assert _entry(floor, agent).status == "break"


def test_r_rcp_2_an_agent_sees_only_the_visits_he_received_or_whose_customer_is_his(app, client, floor):
    a1, a2 = floor["agents"][:2]
    mine = _receive(floor, "13922220001")  # a1
    theirs = _receive(floor, "13922220002")  # a2
    behalf = _receive(floor, "13922220001", reason="原顾问在接待")  # a3 for a1
    auth = Auth(client)
    auth.login("floor_a1")
    grid = client.get("/admin/visit/").get_data(as_text=True)
    assert "13922220001" in grid and "13922220002" not in grid  # his visits only, on the grid too
    assert client.get(f"/admin/visit/details/?id={theirs.id}").status_code in (302, 404)
    assert client.get(f"/admin/visit/details/?id={behalf.id}").status_code == 200  # on his behalf
    assert client.get(f"/admin/visit/details/?id={mine.id}").status_code == 200
    assert client.get("/admin/rotation_event/").status_code == 403  # the manager's day
    assert client.get("/admin/visit/export/csv/").status_code == 403
    auth.logout()
    auth.login("floor_a2")
    assert client.get(f"/admin/visit/details/?id={mine.id}").status_code in (302, 404)
    assert a2.id == theirs.received_by_id


def test_r_rcp_1_the_managers_day_marks_the_exceptions(app, client, floor):
    s = floor["s"]
    skip_turn(s, floor["manager"], floor["project"].id, "去卫生间", today=TODAY)
    s.commit()
    Auth(client).login("floor_mgr")
    html = client.get("/admin/rotation_event/").get_data(as_text=True)
    assert "rotation-exception" in html and "去卫生间" in html
    assert f'id="rotation-day-{floor["project"].id}"' in html  # today's figures per agent above the events
    assert client.get("/admin/rotation_event/export/csv/").status_code == 200


def test_r_rcp_1_the_demo_day_has_every_channel_and_every_exception(app, db):
    """The demo office's rotation (demo._rotation_demo): a dozen visits from every channel, a skip,
    an out-of-turn reception, a make-up turn, an on-behalf return and one reception in progress."""
    from models.reception import VISIT_CHANNELS
    assert app.test_cli_runner().invoke(args=["demo"]).exit_code == 0
    s = db.session
    visits = list(s.scalars(select(Visit)))
    assert len(visits) >= 12 and {v.channel for v in visits} == set(VISIT_CHANNELS)
    kinds = set(s.scalars(select(RotationEvent.kind)))
    assert {"skip", "out_of_turn", "make_up", "on_behalf", "owner_return", "assign"} <= kinds
    assert sum(v.ended_at is None for v in visits) == 1
    assert app.test_cli_runner().invoke(args=["demo"]).exit_code == 0  # idempotent
    assert s.scalar(select(func.count()).select_from(Visit)) == len(visits)


def test_r_all_2_every_action_the_rotation_writes_reads_as_a_label():
    """The audit trail names each action models/reception.py writes by its label (admin/labels.py)."""
    from pathlib import Path

    from admin.labels import AUDIT_ACTIONS
    from models.reception import _MOVE_ACTIONS
    source = (Path(__file__).resolve().parent.parent / "models" / "reception.py").read_text(encoding="utf-8")
    written = set(re.findall(r'action="([a-z_]+)"', source)) | set(_MOVE_ACTIONS.values())
    assert {"reception", "rotation_skip"} <= written and sorted(written - AUDIT_ACTIONS.keys()) == []


# --- the review of issue 23: holes found after the merge ---------------------------------------------

def test_r_rcp_1_a_first_visit_registered_beforehand_by_an_agent_still_goes_by_the_rotation(floor):
    """An agent cannot take a walk-in out of turn by registering the visitor's phone first: a FIRST
    visit goes to the next free agent; the lead's owner stays, and the clash is a conflict the
    manager decides (R-LEAD-5) — never a silent owner_return."""
    from models.leads import LeadConflict
    s, project = floor["s"], floor["project"]
    a1, a2, a3, a4 = floor["agents"]
    lead = register_lead(s, a4, project_id=project.id, name="抢客", phone="13900000301", source="phone_call",
                         today=TODAY)
    s.commit()
    assert lead.owner_id == a4.id
    visit = _receive(floor, "13900000301")
    assert (visit.kind, visit.received_by_id, visit.in_turn) == ("first", a1.id, True)
    event = s.scalar(select(RotationEvent).where(RotationEvent.visit_id == visit.id))
    assert event.kind == "assign"
    assert _entry(floor, a1).receptions == 1 and _entry(floor, a4).receptions == 0
    assert next_free(s, project.id, TODAY).agent_id == a2.id
    conflict = s.scalar(select(LeadConflict).where(LeadConflict.lead_id == lead.id))
    assert (conflict.attempted_by_id, conflict.status) == (a1.id, "open")
    assert s.get(Lead, lead.id).owner_id == a4.id  # the manager decides, not the desk
    # the owner's own turn: no conflict
    f.lead(s, owner=a2, project_=project, phone="13900000302", registered_by=a2)
    s.commit()
    visit = _receive(floor, "13900000302")
    assert (visit.received_by_id, visit.kind) == (a2.id, "first")
    assert s.scalar(select(func.count()).select_from(LeadConflict)) == 1


def test_r_lead_5_a_returning_customer_whose_owner_is_free_goes_to_his_owner_not_to_a_colleague(floor):
    s = floor["s"]
    a1, a2, a3 = floor["agents"][:3]
    first = _receive(floor, "13900000303")  # a1's customer
    finish_reception(s, a1, first.id, today=TODAY)
    s.commit()
    with pytest.raises(RuleViolation):  # a1 is free: a3 cannot take him, whatever the reason
        _receive(floor, "13900000303", agent_id=a3.id, reason="我也认识他")
    s.rollback()
    # a1 busy: the next free agent receives on his behalf; only the manager names another agent
    _receive(floor, "13900000304")  # a2 receives a new visitor
    again = _receive(floor, "13900000303", channel="phone_call")
    assert again.received_by_id == a1.id  # the owner
    turn = next_free(s, floor["project"].id, TODAY).agent_id
    assert turn == a3.id
    with pytest.raises(RuleViolation):
        _receive(floor, "13900000303", by=a3, agent_id=floor["agents"][3].id, reason="原顾问在接待")
    s.rollback()
    behalf = _receive(floor, "13900000303", by=a3, reason="原顾问在接待")
    assert (behalf.received_by_id, behalf.on_behalf_of_id) == (a3.id, a1.id)


def test_r_rcp_1_the_fairness_table_for_all_projects_lists_every_agent(floor):
    _receive(floor, "13900000305")
    fair = {r["agent_id"]: r for r in rotation_fairness(floor["s"], None, TODAY, TODAY)}
    assert fair[floor["agents"][0].id]["receptions"] == 1 and len(fair) == 4


def test_r_rcp_1_the_next_agent_who_takes_a_break_or_signs_out_has_his_turn_recorded_as_skipped(floor):
    s, project = floor["s"], floor["project"]
    a1, a2, a3 = floor["agents"][:3]
    move(s, a1, project.id, "break", reason="去洗手间", today=TODAY)
    s.commit()
    event = s.scalar(select(RotationEvent).where(RotationEvent.kind == "skip"))
    assert (event.agent_id, event.turn_of_id, event.reason) == (a1.id, a1.id, "去洗手间")
    assert _entry(floor, a1).skipped == 1
    move(s, a2, project.id, "sign_out", today=TODAY)  # no reason given: still recorded
    s.commit()
    assert _entry(floor, a2).skipped == 1
    assert s.scalar(select(func.count()).select_from(RotationEvent).where(RotationEvent.kind == "skip")) == 2
    move(s, a1, project.id, "back", today=TODAY)  # a1 is at the back: a3 is next
    s.commit()
    move(s, a1, project.id, "break", today=TODAY)  # not his turn: a plain break
    s.commit()
    assert _entry(floor, a1).skipped == 1


def test_r_rcp_1_a_reception_past_midnight_frees_its_own_days_entry(floor):
    s, project = floor["s"], floor["project"]
    yesterday = TODAY - dt.timedelta(days=1)
    a1 = floor["agents"][0]
    move(s, a1, project.id, "sign_in", today=yesterday)
    s.commit()
    visit = receive(s, floor["manager"], project_id=project.id, phone="13900000306", channel="walk_in",
                    name="夜客", key=new_key(), today=yesterday)
    s.commit()
    finish_reception(s, a1, visit.id)  # after midnight: the office's today is another day
    s.commit()
    entry = s.scalar(select(RotationEntry).where(RotationEntry.agent_id == a1.id, RotationEntry.day == yesterday))
    assert entry.status == "free"
    assert s.scalar(select(RotationEvent.day).where(RotationEvent.visit_id == visit.id,
                                                    RotationEvent.kind == "finish")) == yesterday


def test_r_rcp_2_the_visit_export_names_its_columns_for_visits_and_says_yes_or_no(app, client, floor):
    _receive(floor, "13900000307")
    Auth(client).login("floor_mgr")
    csv = client.get("/admin/visit/export/csv/").get_data(as_text=True)
    head, row = csv.splitlines()[:2]
    assert "移除日期" not in head and "跟进方式" not in head
    assert "来访渠道" in head and "True" not in row and "是" in row
