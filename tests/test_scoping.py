"""An agent reaches only own customers, by every path (R-LEAD-5, R-PAY-3)."""
from __future__ import annotations

import pytest

from models import Lead
from tests import factories as f
from tests.conftest import Auth


@pytest.fixture
def two_agents(db, make_user, client):
    li, zhang = make_user("agent", username="li"), make_user("agent", username="zhang")
    s = db.session
    project = f.project(s)
    mine = f.lead(s, owner=zhang, project_=project, name="张的客户甲")
    theirs = f.lead(s, owner=li, project_=project, name="李的客户乙", id_number="430102199001011234")
    their_sub = f.subscription(s, li, lead_=theirs)
    their_inst = f.instalment(s, their_sub)
    their_pay = f.payment(s, their_inst, make_user("finance"))
    their_follow_up = f.follow_up(s, theirs)
    s.commit()
    Auth(client).login("zhang")
    return {"mine": mine.id, "theirs": theirs.id, "sub": their_sub.id, "inst": their_inst.id,
            "pay": their_pay.id, "follow_up": their_follow_up.id}


def test_agent_list_shows_only_own_leads(client, two_agents):
    page = client.get("/admin/lead/").get_data(as_text=True)
    assert "张的客户甲" in page and "李的客户乙" not in page


def test_agent_cannot_open_another_agents_lead_by_url(client, two_agents):
    theirs = two_agents["theirs"]
    assert client.get(f"/admin/lead/details/?id={theirs}").status_code == 404
    assert client.get(f"/admin/lead/edit/?id={theirs}").status_code == 404
    assert client.get(f"/admin/lead/details/?id={two_agents['mine']}").status_code == 200


def test_agent_cannot_edit_another_agents_lead_by_post(client, two_agents, db):
    theirs = two_agents["theirs"]
    token = Auth(client).csrf()
    response = client.post(f"/admin/lead/edit/?id={theirs}",
                           data={"csrf_token": token, "name": "改掉", "phone": "13900000000",
                                 "source": "web"})
    assert response.status_code == 404
    db.session.expire_all()
    assert db.session.get(Lead, theirs).name == "李的客户乙"


def test_agent_cannot_delete_or_bulk_act_on_another_agents_lead(client, two_agents, db):
    theirs = two_agents["theirs"]
    token = Auth(client).csrf()
    assert client.post("/admin/lead/delete/", data={"csrf_token": token, "id": theirs}).status_code == 403
    assert client.post("/admin/lead/action/", data={"csrf_token": token, "action": "delete",
                                                    "rowid": theirs}).status_code == 403
    db.session.expire_all()
    assert db.session.get(Lead, theirs) is not None


def test_agent_cannot_reach_another_agents_lead_by_ajax(client, two_agents):
    token = Auth(client).csrf()
    response = client.post("/admin/lead/ajax/update/", data={
        "csrf_token": token, "list_form_pk": two_agents["theirs"], "name": "x"})
    assert response.status_code == 404
    lookup = client.get("/admin/follow_up/ajax/lookup/?name=lead&query=李")
    assert lookup.status_code == 404 and "李的客户乙" not in lookup.get_data(as_text=True)


def test_agent_cannot_open_another_agents_deal_rows(client, two_agents):
    for path in (f"/admin/subscription/details/?id={two_agents['sub']}",
                 f"/admin/instalment/details/?id={two_agents['inst']}",
                 f"/admin/payment/details/?id={two_agents['pay']}",
                 f"/admin/follow_up/details/?id={two_agents['follow_up']}",
                 f"/admin/follow_up_due/details/?id={two_agents['theirs']}"):
        assert client.get(path).status_code == 404, path


def test_agent_export_contains_only_own_leads(client, two_agents, db):
    from models import Project
    # Agents export their customers only where the project allows it (issue 18, item 7).
    db.session.query(Project).update({"agents_may_export_personal_data": True})
    db.session.commit()
    csv = client.get("/admin/lead/export/csv/").get_data(as_text=True)
    assert "张的客户甲" in csv and "李的客户乙" not in csv


def test_customer_picker_of_a_follow_up_lists_only_own_leads(client, two_agents):
    form = client.get("/admin/follow_up/new/").get_data(as_text=True)
    assert "张的客户甲" in form and "李的客户乙" not in form


def test_agent_cannot_add_a_follow_up_to_another_agents_lead(client, two_agents, db):
    from models import FollowUp
    token = Auth(client).csrf()
    client.post("/admin/follow_up/new/", data={"csrf_token": token, "lead": two_agents["theirs"],
                                               "channel": "phone", "content": "偷跟进"})
    assert db.session.query(FollowUp).filter_by(content="偷跟进").count() == 0


def test_list_count_matches_the_rows_the_agent_may_see(client, two_agents, app, db):
    from admin.leads import LeadView
    view = next(v for v in app.extensions["admin"][0]._views if isinstance(v, LeadView))
    with app.test_request_context():
        from flask_login import login_user
        from models import User
        login_user(db.session.query(User).filter_by(username="zhang").one())
        count_sql = str(view.get_count_query().statement.compile())
        assert "count(*)" in count_sql and "count(:" not in count_sql  # no bound '*' parameter
        assert view.get_count_query().scalar() == 1
        assert view.get_query().count() == 1


def test_manager_sees_every_agents_leads_and_full_id_numbers_are_masked_for_him(
        client, two_agents, login_as):
    Auth(client).logout()
    login_as("sales_manager")
    page = client.get("/admin/lead/").get_data(as_text=True)
    assert "张的客户甲" in page and "李的客户乙" in page
    details = client.get(f"/admin/lead/details/?id={two_agents['theirs']}").get_data(as_text=True)
    assert "430***********1234" in details and "430102199001011234" not in details


def test_admin_reads_full_id_numbers(client, two_agents, login_as):
    Auth(client).logout()
    login_as("admin")
    details = client.get(f"/admin/lead/details/?id={two_agents['theirs']}").get_data(as_text=True)
    assert "430102199001011234" in details


def test_an_ajax_customer_lookup_is_scoped_like_the_grid(app, db, two_agents):
    """Flask-Admin's stock lookup ignores get_query; our base view's loader does not."""
    from flask_login import login_user

    from admin.leads import FollowUpView
    from models import FollowUp, User

    class LookupView(FollowUpView):
        form_ajax_refs = {"lead": {"fields": ["name"]}}

    view = LookupView(FollowUp, db, endpoint="lookup_probe", url="/lookup-probe")
    loader = view._form_ajax_refs["lead"]
    with app.test_request_context():
        login_user(db.session.query(User).filter_by(username="zhang").one())
        names = [lead.name for lead in loader.get_list("客户")]
        assert names == ["张的客户甲"]
        assert loader.get_one(two_agents["theirs"]) is None
        assert loader.get_one(two_agents["mine"]).name == "张的客户甲"


def test_refusals_are_pages_in_the_users_language(client, two_agents):
    missing = client.get(f"/admin/lead/details/?id={two_agents['theirs']}")
    assert missing.status_code == 404 and "不存在" in missing.get_data(as_text=True)
    forbidden = client.get("/admin/audit/")
    assert forbidden.status_code == 403 and "不允许" in forbidden.get_data(as_text=True)


def test_someone_not_logged_in_is_scoped_to_no_rows():
    from flask_login import AnonymousUserMixin
    from sqlalchemy import false

    from models.permissions import scope_filter
    assert str(scope_filter(Lead, AnonymousUserMixin())) == str(false())
