"""Issue 19, items 9, 10 and 12: recording a follow-up from where the customer is shown, finding
follow-ups, bulk assignment that keeps the selection and spreads over the chosen agents, and the
signing checklist that follows the deal's payment method (R-LEAD-2, R-LEAD-3, R-CON-3)."""
from __future__ import annotations

import datetime as dt
import html
import re
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from sqlalchemy import func, select

from models import Audit, FollowUp, Lead, Notification
from models.base import office_today
from tests import factories as f
from tests.conftest import Auth, submission_key


@pytest.fixture
def office(db, make_user):
    return {**f.lead_office(db.session, make_user), "vp": make_user("vp", username="zhao")}


def _links(page: str, name: str) -> list[str]:
    """The addresses of the link buttons `name` on a page, as the browser would follow them."""
    return [html.unescape(m) for m in re.findall(rf'data-link="{name}" href="([^"]+)"', page)]


# --- item 9: "record follow-up" where the customer is shown ----------------------------------------

def test_issue19_9_r_lead_3_the_due_list_has_a_record_follow_up_button_on_each_row(client, db, office):
    today = office_today()
    mine = f.lead(db.session, owner=office["agent"], project_=office["project"], name="今天到期",
                  next_follow_up_on=today)
    late = f.lead(db.session, owner=office["agent"], project_=office["project"], name="逾期两天",
                  next_follow_up_on=today - dt.timedelta(days=2))
    db.session.commit()
    Auth(client).login("li")
    page = client.get("/admin/follow_up_due/?page=0").get_data(as_text=True)
    links = _links(page, "follow_up")
    assert "记录跟进" in page and len(links) == 2
    targets = {parse_qs(urlparse(link).query)["lead_id"][0] for link in links}
    assert targets == {str(mine.id), str(late.id)}
    assert all(urlparse(link).path == "/admin/follow_up/new/" for link in links)
    assert all(parse_qs(urlparse(link).query)["url"] == ["/admin/follow_up_due/?page=0"] for link in links)


def test_issue19_9_r_lead_3_the_customer_page_has_the_button_and_the_form_comes_prefilled(client, db, office):
    lead = f.lead(db.session, owner=office["agent"], project_=office["project"], name="黄先生",
                  next_follow_up_on=office_today())
    db.session.commit()
    Auth(client).login("li")
    details = f"/admin/lead/details/?id={lead.id}"
    (link,) = _links(client.get(details).get_data(as_text=True), "follow_up")
    form = client.get(link).get_data(as_text=True)
    # The customer is chosen already, and is the only choice of this form.
    assert re.search(rf'<option selected value="{lead.id}">|<option value="{lead.id}" selected', form)
    assert len(re.findall(r"<option [^>]*value=\"\d+\"", re.search(
        r'<select[^>]*id="lead".*?</select>', form, re.S).group(0))) == 1
    # Saved, it returns to the customer's page, and the follow-up is recorded by the domain.
    response = client.post(link, data={"csrf_token": Auth(client).csrf(), "lead": lead.id,
                                       "channel": "phone", "content": "约周六看样板间", "outcome": "",
                                       "next_on": "", "submission_key": submission_key(form)})
    assert response.status_code == 302 and response.headers["Location"].endswith(details)
    follow_up = db.session.scalar(select(FollowUp))
    assert (follow_up.lead_id, follow_up.agent_id, follow_up.content) == (lead.id, office["agent"].id, "约周六看样板间")


def test_issue19_9_r_lead_5_an_agent_cannot_record_on_another_agents_customer(client, db, office):
    theirs = f.lead(db.session, owner=office["agent2"], project_=office["project"], name="别人的客户",
                    next_follow_up_on=office_today())
    mine = f.lead(db.session, owner=office["agent"], project_=office["project"], name="自己的客户",
                  next_follow_up_on=office_today())
    db.session.commit()
    Auth(client).login("li")
    due = client.get("/admin/follow_up_due/").get_data(as_text=True)
    assert [parse_qs(urlparse(link).query)["lead_id"] for link in _links(due, "follow_up")] == [[str(mine.id)]]
    # The address typed by hand with the other agent's customer: refused like a missing one.
    assert client.get(f"/admin/follow_up/new/?lead_id={theirs.id}").status_code == 404
    assert client.get("/admin/follow_up/new/?lead_id=abc").status_code == 404
    response = client.post(f"/admin/follow_up/new/?lead_id={theirs.id}", data={
        "csrf_token": Auth(client).csrf(), "lead": theirs.id, "channel": "phone", "content": "抢客户"})
    assert response.status_code == 404
    # Nor by posting the other customer's id through the prefilled form of one's own.
    response = client.post(f"/admin/follow_up/new/?lead_id={mine.id}", data={
        "csrf_token": Auth(client).csrf(), "lead": theirs.id, "channel": "phone", "content": "抢客户"})
    assert response.status_code == 200 and db.session.scalar(select(func.count()).select_from(FollowUp)) == 0


def test_issue19_9_the_button_shows_only_to_those_who_record_follow_ups(client, db, office):
    lead = f.lead(db.session, owner=office["agent"], project_=office["project"], next_follow_up_on=office_today())
    db.session.commit()
    Auth(client).login("wang")  # the manager: on every customer
    assert len(_links(client.get("/admin/follow_up_due/").get_data(as_text=True), "follow_up")) == 1
    assert _links(client.get(f"/admin/lead/details/?id={lead.id}").get_data(as_text=True), "follow_up")
    Auth(client).logout()
    Auth(client).login("zhao")  # the vice-president reads the due list but records nothing
    page = client.get("/admin/follow_up_due/").get_data(as_text=True)
    assert lead.name in page and not _links(page, "follow_up")
    assert client.get(f"/admin/follow_up/new/?lead_id={lead.id}").status_code == 403



@pytest.mark.parametrize("back", ["http:/evil.example/x", "https:/evil.example", "http://localhost/admin/lead/",
                                  "//evil.example", "javascript:alert(1)"])
def test_issue19_9_the_follow_up_form_returns_only_to_a_path_on_this_site(client, db, office, back):
    """The way back (`url=`) of the prefilled form: "http:/evil.example" passed Flask-Admin's check
    and went out as "http:///evil.example", which a browser opens as http://evil.example/."""
    lead = f.lead(db.session, owner=office["agent"], project_=office["project"], next_follow_up_on=office_today())
    db.session.commit()
    Auth(client).login("li")
    link = f"/admin/follow_up/new/?lead_id={lead.id}&" + urlencode({"url": back})
    form = client.get(link).get_data(as_text=True)
    assert f'href="{html.escape(back)}"' not in form  # nor the Cancel link
    response = client.post(link, data={"csrf_token": Auth(client).csrf(), "lead": lead.id, "channel": "phone",
                                       "content": "回访", "outcome": "", "next_on": "",
                                       "submission_key": submission_key(form)})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/follow_up/"
    assert db.session.scalar(select(func.count()).select_from(FollowUp)) == 1

@pytest.mark.parametrize("back", ["http:/evil.example/x", "//evil.example", "http://localhost/admin/"])
def test_issue19_9_the_cancel_links_of_step_and_assignment_forms_stay_on_this_site(client, db, office, back, make_user):
    """The deal-step forms (deposit…) and the bulk assignment are drawn from a grid's action with
    the grid's way back (`url=`): their Cancel link goes there only when it is a path of this site."""
    sub = f.subscription(db.session, office["agent"])
    lead = f.lead(db.session, owner=None, project_=office["project"], registered_by=office["manager"])
    make_user("finance", username="qian")
    db.session.commit()
    Auth(client).login("qian")
    page = client.post("/admin/subscription/action/", data={
        "csrf_token": Auth(client).csrf(), "action": "deposit", "rowid": [str(sub.id)], "url": back}
    ).get_data(as_text=True)
    assert "submission_key" in page and f'href="{html.escape(back)}"' not in page
    assert 'href="/admin/subscription/"' in page  # the grid instead
    Auth(client).logout()
    Auth(client).login("wang")
    page = client.post("/admin/lead/action/", data={
        "csrf_token": Auth(client).csrf(), "action": "assign", "rowid": [str(lead.id)], "url": back}
    ).get_data(as_text=True)
    assert 'name="agent"' in page and f'href="{html.escape(back)}"' not in page
    assert 'href="/admin/lead/"' in page


def test_issue19_9_r_lead_3_the_same_follow_up_form_sent_twice_records_once(client, db, office):
    """A double click or a browser retry of the follow-up form: the form's one-time key is taken by
    the first send; the second is told it was recorded and records nothing; a form without its key
    (older than the rule, or not ours) records nothing either."""
    lead = f.lead(db.session, owner=office["agent"], project_=office["project"], next_follow_up_on=office_today())
    db.session.commit()
    Auth(client).login("li")
    link = f"/admin/follow_up/new/?lead_id={lead.id}"
    form = client.get(link).get_data(as_text=True)
    data = {"csrf_token": Auth(client).csrf(), "lead": lead.id, "channel": "phone", "content": "约了周末",
            "outcome": "", "next_on": "", "submission_key": submission_key(form)}
    assert client.post(link, data=data).status_code == 302
    again = client.post(link, data=data)
    assert again.status_code == 200 and "已提交" in again.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(FollowUp)) == 1
    # A second form opened afterwards has its own key and records a second follow-up.
    data["submission_key"] = submission_key(client.get(link).get_data(as_text=True))
    assert data["submission_key"] != submission_key(form)
    assert client.post(link, data=data).status_code == 302
    assert db.session.scalar(select(func.count()).select_from(FollowUp)) == 2
    without = {k: v for k, v in data.items() if k != "submission_key"}
    page = client.post(link, data=without).get_data(as_text=True)
    assert "表单已过期" in page or "已过期" in page
    assert db.session.scalar(select(func.count()).select_from(FollowUp)) == 2


def test_issue19_9_the_follow_up_grid_finds_by_customer_name_phone_and_what_was_said(client, db, office):
    s = db.session
    huang = f.lead(s, owner=office["agent"], project_=office["project"], name="黄先生", phone="13800138001")
    chen = f.lead(s, owner=office["agent"], project_=office["project"], name="陈女士", phone="13900139002")
    f.follow_up(s, huang, content="约周六看样板间", outcome="有意向")
    f.follow_up(s, chen, content="询问学区划片", outcome="再考虑")
    s.commit()
    Auth(client).login("li")

    def found(term):
        page = client.get("/admin/follow_up/", query_string={"search": term}).get_data(as_text=True)
        return {text for text in ("约周六看样板间", "询问学区划片") if text in page}

    assert found("黄先生") == {"约周六看样板间"}
    assert found("13900139002") == {"询问学区划片"}
    assert found("0139") == {"询问学区划片"}  # the agent reads his customers' phones whole
    assert found("学区") == {"询问学区划片"}
    assert found("有意向") == {"约周六看样板间"}
    assert found("无此人") == set()


def test_issue19_9_a_masked_reader_finds_a_follow_up_by_the_whole_phone_only(client, db, office):
    s = db.session
    chen = f.lead(s, owner=office["agent"], project_=office["project"], name="陈女士", phone="13900139002")
    f.follow_up(s, chen, content="询问学区划片")
    s.commit()
    Auth(client).login("zhao")  # the vice-president reads 139****9002

    def found(term):
        return "询问学区划片" in client.get("/admin/follow_up/", query_string={"search": term}).get_data(as_text=True)

    assert found("13900139002")
    assert not found("1390013")  # a part would tell the hidden digits one by one


# --- item 10: bulk assignment --------------------------------------------------------------------

def _unassigned(db, office, n, prefix="新客户"):
    leads = [f.lead(db.session, project_=office["project"], name=f"{prefix}{i}", registered_by=office["manager"])
             for i in range(n)]
    db.session.commit()
    return [lead.id for lead in leads]


def _open_assign_form(client, ids) -> str:
    return client.post("/admin/lead/action/", data={"csrf_token": Auth(client).csrf(), "action": "assign",
                                                    "rowid": ids, "url": "/admin/lead/?page=0"}).get_data(as_text=True)


def _key(page: str) -> str:
    from tests.conftest import submission_key
    return submission_key(page)


def _owners(db, ids) -> list:
    db.session.expire_all()
    return [db.session.get(Lead, i).owner_id for i in ids]


def test_issue19_10_r_lead_2_two_agents_split_two_customers_one_each(client, db, office):
    ids = _unassigned(db, office, 2)
    Auth(client).login("wang")
    page = _open_assign_form(client, ids)
    assert "当前负荷" in page  # the page says how the split works
    response = client.post("/admin/lead/assign/", data={
        "csrf_token": Auth(client).csrf(), "ids": [str(i) for i in ids], "mode": "even",
        "agent": [str(office["agent"].id), str(office["agent2"].id)], "submission_key": _key(page),
        "url": "/admin/lead/?page=0"}, follow_redirects=True)
    assert sorted(_owners(db, ids)) == sorted([office["agent"].id, office["agent2"].id])
    message = response.get_data(as_text=True)
    assert "Li 1" in message and "Zhang 1" in message  # every chosen agent named with his share


def test_issue19_10_r_lead_2_five_customers_go_by_current_load(client, db, office, make_user):
    liu = make_user("agent", username="liu")
    # Open customers now: li 2, zhang 0, liu 1 (a lost one does not count).
    for owner, n in ((office["agent"], 2), (liu, 1)):
        for _ in range(n):
            f.lead(db.session, owner=owner, project_=office["project"])
    f.lead(db.session, owner=office["agent2"], project_=office["project"], stage="lost")
    ids = _unassigned(db, office, 5)
    Auth(client).login("wang")
    page = _open_assign_form(client, ids)
    response = client.post("/admin/lead/assign/", data={
        "csrf_token": Auth(client).csrf(), "ids": [str(i) for i in ids], "mode": "even",
        "agent": [str(office["agent"].id), str(liu.id), str(office["agent2"].id)],
        "submission_key": _key(page)}, follow_redirects=True)
    # Each in turn to the fewest open customers, counting those just given (ties: the agent
    # listed first): zhang (0), liu (1 vs zhang 1), zhang (1), li (2, all tied), liu (2 vs zhang 2).
    owners = _owners(db, ids)
    li, zhang = office["agent"].id, office["agent2"].id
    assert owners == [zhang, liu.id, zhang, li, liu.id]
    text = response.get_data(as_text=True)
    assert "Li 1" in text and "Liu 2" in text and "Zhang 2" in text


@pytest.mark.parametrize("mode", ["even", "shares"])
def test_issue19_10_r_lead_2_the_issues_case_two_customers_over_a_busy_and_a_free_agent(client, db, office, mode):
    """What the issue saw: li already holds 3 open customers, zhang none. By current load both
    go to zhang, and the message says so, naming li with 0; in equal shares one each."""
    for _ in range(3):
        f.lead(db.session, owner=office["agent"], project_=office["project"])
    ids = _unassigned(db, office, 2)
    Auth(client).login("wang")
    page = _open_assign_form(client, ids)
    response = client.post("/admin/lead/assign/", data={
        "csrf_token": Auth(client).csrf(), "ids": [str(i) for i in ids], "mode": mode,
        "agent": [str(office["agent"].id), str(office["agent2"].id)], "submission_key": _key(page)},
        follow_redirects=True)
    text = response.get_data(as_text=True)
    li, zhang = office["agent"].id, office["agent2"].id
    if mode == "even":
        assert _owners(db, ids) == [zhang, zhang]
        assert "当前负荷" in text and "Li 0 位（现有在跟客户 3 位）" in text and "Zhang 2 位" in text
    else:
        assert _owners(db, ids) == [zhang, li]  # the extra one first to the free agent
        assert "平均" in text and "Li 1 位（现有在跟客户 4 位）" in text and "Zhang 1 位" in text


def test_issue19_10_r_lead_2_equal_shares_of_five_give_two_two_one(db, office, make_user):
    from models.leads import distribute_leads
    liu = make_user("agent", username="liu")
    for owner, n in ((office["agent"], 2), (liu, 1)):
        for _ in range(n):
            f.lead(db.session, owner=owner, project_=office["project"])
    ids = _unassigned(db, office, 5)
    spread = distribute_leads(db.session, office["manager"], ids, [office["agent"].id, liu.id, office["agent2"].id],
                              equal_shares=True)
    db.session.commit()
    assert spread == {office["agent2"].id: 2, liu.id: 2, office["agent"].id: 1}


@pytest.mark.parametrize("case", ["no_agent_spread", "no_agent_one", "two_agents_one", "inactive_agent"])
def test_issue19_10_r_lead_2_a_refusal_keeps_the_customers_and_agents_chosen(client, db, office, make_user, case):
    ids = _unassigned(db, office, 3)
    gone = make_user("agent", username="gone", active=False)
    Auth(client).login("wang")
    page = _open_assign_form(client, ids)
    key = _key(page)
    agents = {"no_agent_spread": [], "no_agent_one": [], "two_agents_one": [office["agent"].id, office["agent2"].id],
              "inactive_agent": [office["agent"].id, gone.id]}[case]
    mode = "one" if case.endswith("_one") else "even"
    response = client.post("/admin/lead/assign/", data={
        "csrf_token": Auth(client).csrf(), "ids": [str(i) for i in ids[:2]], "mode": mode,
        "agent": [str(a) for a in agents], "submission_key": key, "url": "/admin/lead/?page=0"})
    assert response.status_code == 200  # the form again, not the list
    again = response.get_data(as_text=True)
    assert "alert-danger" in again
    ticked = set(re.findall(r'name="ids" value="(\d+)"[^>]*checked', again))
    assert ticked == {str(i) for i in ids[:2]}  # the customers still ticked (the third was unticked)
    chosen = set(re.findall(r'name="agent" value="(\d+)"[^>]*checked', again))
    assert chosen == {str(a) for a in agents if a != gone.id}  # an inactive agent is not listed at all
    assert re.search(rf'id="mode-{mode}" value="{mode}"[^>]*checked', again)
    assert _key(again) == key and 'value="/admin/lead/?page=0"' in again
    assert _owners(db, ids) == [None, None, None]
    # Corrected and sent again with the same key, it assigns.
    client.post("/admin/lead/assign/", data={
        "csrf_token": Auth(client).csrf(), "ids": [str(i) for i in ids[:2]], "mode": "even",
        "agent": [str(office["agent"].id), str(office["agent2"].id)], "submission_key": key})
    assert sorted(_owners(db, ids[:2])) == sorted([office["agent"].id, office["agent2"].id])


def test_issue19_10_r_lead_2_the_same_assignment_sent_twice_assigns_once(client, db, office):
    ids = _unassigned(db, office, 2)
    Auth(client).login("wang")
    page = _open_assign_form(client, ids)
    data = {"csrf_token": Auth(client).csrf(), "ids": [str(i) for i in ids], "mode": "even",
            "agent": [str(office["agent"].id), str(office["agent2"].id)], "submission_key": _key(page)}
    client.post("/admin/lead/assign/", data=data)
    first = _owners(db, ids)
    audits = db.session.scalar(select(func.count()).select_from(Audit).where(Audit.action == "assign"))
    notes = db.session.scalar(select(func.count()).select_from(Notification))
    # The manager meanwhile gives one of them to another agent; the old form sent again (a retry)
    # must not undo that nor write anything.
    from models.leads import assign_leads
    assign_leads(db.session, office["manager"], [ids[0]], office["agent2"].id)
    db.session.commit()
    response = client.post("/admin/lead/assign/", data=data, follow_redirects=True)
    assert "此表单已提交并登记" in response.get_data(as_text=True)
    assert _owners(db, ids) == [office["agent2"].id, first[1]]
    assert db.session.scalar(select(func.count()).select_from(Audit).where(Audit.action == "assign")) == audits + 1
    assert db.session.scalar(select(func.count()).select_from(Notification)) == notes + 1
    # A form without its key (older than this rule, or not ours) assigns nothing.
    response = client.post("/admin/lead/assign/", data={**data, "submission_key": ""})
    assert response.status_code == 200 and _owners(db, ids) == [office["agent2"].id, first[1]]


@pytest.mark.postgres
def test_issue19_10_r_lead_2_ten_concurrent_posts_of_one_assignment_form_assign_once(app, client, db, office):
    """Ten posts of one assignment form at the same instant (a double click, a retry), each its own
    request: the customers are assigned once — one audit row and one notification each — and
    nine are told the form was already sent."""
    from tests.support.race import post_at_once
    ids = _unassigned(db, office, 4)
    Auth(client).login("wang")
    page = _open_assign_form(client, ids)
    cookie = client.get_cookie("session")
    data = {"csrf_token": Auth(client).csrf(), "ids": [str(i) for i in ids], "mode": "even",
            "agent": [str(office["agent"].id), str(office["agent2"].id)], "submission_key": _key(page)}
    pages = post_at_once(app, cookie, "/admin/lead/assign/", data)
    assert len(pages) == 10
    assert sum("已提交并登记" in p for p in pages) == 9
    assert sum("已按当前负荷" in p for p in pages) == 1
    assert db.session.scalar(select(func.count()).select_from(Audit).where(Audit.action == "assign")) == 4
    assert db.session.scalar(select(func.count()).select_from(Notification)) == 2  # one per agent
    assert sorted(_owners(db, ids)) == sorted([office["agent"].id] * 2 + [office["agent2"].id] * 2)


# --- item 12: the signing checklist follows the deal's payment method ----------------------------

SIGNING_TODAY = dt.date(2026, 11, 26)
SIGNING_AT = dt.datetime(2026, 12, 1, 10, 0)
MORTGAGE_CARD, FUND_PROOF, DOWN_PAYMENT_RECEIPT = "银行卡（用于按揭还款）", "住房公积金缴存证明", "首期款收据"


def _booked(db, make_user, method):
    """A deal of `method` paid enough to sign, booked for signing."""
    from models.contracts import book_signing
    from models.payments import signing_gate
    from models.payments import record_payment
    deal = f.active_deal(db.session, make_user, price="1000000.00", payment_method=method, today=SIGNING_TODAY,
                         staff={"control": ("sales_control", None), "finance": ("finance", None)})
    required, paid = signing_gate(db.session, deal["sub"])
    record_payment(db.session, deal["finance"], deal["sub"].id, amount=str(required - paid), paid_on=SIGNING_TODAY,
                   channel="bank_transfer", today=SIGNING_TODAY)
    contract = book_signing(db.session, deal["agent"], deal["sub"].id, appointment_at=SIGNING_AT, today=SIGNING_TODAY)
    db.session.commit()
    return deal, contract


@pytest.mark.parametrize("method, present, absent", [
    ("one_off", ["全部房款收据"], [MORTGAGE_CARD, FUND_PROOF, DOWN_PAYMENT_RECEIPT, "收入证明"]),
    ("instalments", [DOWN_PAYMENT_RECEIPT, "已付分期款收据"], [MORTGAGE_CARD, FUND_PROOF, "收入证明"]),
    ("commercial_mortgage", [DOWN_PAYMENT_RECEIPT, MORTGAGE_CARD, "收入证明", "近六个月银行流水"], [FUND_PROOF]),
    ("provident_fund", [DOWN_PAYMENT_RECEIPT, FUND_PROOF, "银行卡（用于公积金贷款还款）"], [MORTGAGE_CARD, "收入证明"]),
])
def test_issue19_12_r_con_3_the_signing_checklist_follows_the_payment_method(db, make_user, method, present, absent):
    from models.documents import document_context
    deal, contract = _booked(db, make_user, method)
    items = contract.checklist.splitlines()
    # What every deal brings (the project's list) first, then the method's own items.
    assert items[:5] == ["身份证原件及复印件", "户口簿原件及复印件", "婚姻状况证明", "认购书及定金收据", "契税、维修基金等税费"]
    assert all(item in items for item in present), items
    assert not [item for item in absent if item in items], items
    # The 签约预约单 lists exactly what the booking stored.
    assert document_context(db.session, "signing_booking", contract.id)["checklist"] == items


def test_issue19_12_r_con_3_a_projects_own_lists_are_used_and_an_item_named_twice_is_listed_once(db, make_user):
    from models import PaymentMethodTemplate
    from models.contracts import signing_checklist
    deal = f.active_deal(db.session, make_user, price="1000000.00", payment_method="instalments", today=SIGNING_TODAY,
                         staff={"control": ("sales_control", None), "finance": ("finance", None)})
    deal["project"].signing_checklist = "身份证原件\n首期款收据"
    method = db.session.scalar(select(PaymentMethodTemplate).where(
        PaymentMethodTemplate.project_id == deal["project"].id, PaymentMethodTemplate.code == "instalments"))
    method.signing_checklist = "首期款收据\n分期付款确认书\n"
    assert signing_checklist(db.session, deal["sub"]).splitlines() == ["身份证原件", "首期款收据", "分期付款确认书"]


def test_issue19_12_r_con_3_the_booking_message_on_the_page_names_no_mortgage_card_for_instalments(
        client, db, make_user):
    from models.payments import signing_gate
    from models.payments import record_payment
    from models.base import office_today
    today = office_today()
    deal = f.active_deal(db.session, make_user, price="1000000.00", payment_method="instalments", today=today,
                         staff={"control": ("sales_control", None), "finance": ("finance", None)})
    required, paid = signing_gate(db.session, deal["sub"])
    record_payment(db.session, deal["finance"], deal["sub"].id, amount=str(required - paid), paid_on=today,
                   channel="bank_transfer", today=today)
    db.session.commit()
    Auth(client).login("li")
    response = client.post("/admin/subscription/book/", data={
        "csrf_token": Auth(client).csrf(), "ids": str(deal["sub"].id), "kind": "sale",
        "appointment_at": (today + dt.timedelta(days=3)).isoformat() + "T10:00"}, follow_redirects=True)
    text = response.get_data(as_text=True)
    assert "请提醒客户携带" in text and DOWN_PAYMENT_RECEIPT in text and MORTGAGE_CARD not in text
