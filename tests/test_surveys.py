"""Satisfaction surveys (R-SVC-2): the occasions, one per deal and occasion (and per ticket), a
double click recorded once, the results' arithmetic, the surveys due, the monthly review and the
dashboard carrying them, the survey summary PDF and who may see it, and the screens."""
from __future__ import annotations

import datetime as dt
import io
import subprocess
from decimal import Decimal

import openpyxl
import pytest
from sqlalchemy import func, select

from models import Subscription
from models.base import office_today
from models.contracts import book_signing, sign_contract
from models.payments import record_payment
from models.reports import monthly_review
from models.tickets import (Survey, close_ticket, open_ticket, record_survey, resolve_ticket, summarise,
                            survey_results, surveys_due)
from tests.support.rules import raises_rule

TODAY = dt.date(2026, 11, 26)
AT = dt.datetime(2026, 11, 27, 10, 0)
STAFF = {"control": ("sales_control", None), "finance": ("finance", None), "lawyer": ("lawyer", "sun"),
         "manager": ("sales_manager", "boss"), "service": ("customer_service", "kefu"), "vp": ("vp", "vp")}


@pytest.fixture(autouse=True)
def in_english(app):
    from flask_babel import force_locale
    with force_locale("en"):
        yield


@pytest.fixture
def deal(make_deal):
    return make_deal(price="1000000.00", method="commercial_mortgage", today=TODAY, staff=STAFF)


def _sign(db, deal):
    record_payment(db.session, deal["finance"], deal["sub"].id, amount="250000", paid_on=TODAY,
                   channel="bank_transfer", today=TODAY)
    contract = book_signing(db.session, deal["agent"], deal["sub"].id, appointment_at=AT, today=TODAY)
    sign_contract(db.session, deal["lawyer"], contract.id, number="HT-001", signed_on=TODAY + dt.timedelta(days=1),
                  today=TODAY + dt.timedelta(days=1))
    db.session.commit()


def _survey(db, deal, by=None, **kw):
    args = dict(occasion="signing", overall=5, today=TODAY + dt.timedelta(days=2))
    args.update(kw)
    survey = record_survey(db.session, by or deal["service"], deal["sub"].id, **args)
    db.session.commit()
    return survey


def _closed_ticket(db, deal):
    ticket = open_ticket(db.session, deal["service"], lead_id=deal["lead"].id, subscription_id=deal["sub"].id,
                         category="quality", source="phone", department="engineering", title="漏水", today=TODAY)
    resolve_ticket(db.session, deal["service"], ticket.id, "已修", today=TODAY)
    db.session.commit()
    return ticket


# --- occasions ------------------------------------------------------------------------------------
def test_r_svc_2_a_signing_survey_needs_the_contract_signed_and_rates_the_deals_agent(db, deal):
    with raises_rule("R-SVC-2", "contract signed"):
        _survey(db, deal)
    db.session.rollback()
    _sign(db, deal)
    survey = _survey(db, deal, service=4, quality=3, comment="很好")
    assert (survey.agent_id, survey.project_id, survey.recorded_by_id) == (
        deal["agent"].id, deal["project"].id, deal["service"].id)
    assert survey.recorded_on == TODAY + dt.timedelta(days=2)


def test_r_svc_2_a_handover_survey_needs_the_unit_handed_over(db, deal):
    with raises_rule("R-SVC-2", "handed over"):
        _survey(db, deal, occasion="handover")
    db.session.rollback()
    # the handover itself is models.handovers' (R-AFT-4); its mark on the deal is what counts here
    db.session.get(Subscription, deal["sub"].id).handed_over_on = TODAY
    db.session.commit()
    assert _survey(db, deal, occasion="handover", overall=4).occasion == "handover"


def test_r_svc_2_a_ticket_survey_needs_that_ticket_closed_and_of_that_deal(db, deal):
    ticket = _closed_ticket(db, deal)
    with raises_rule("R-SVC-2", "closed ticket"):
        _survey(db, deal, occasion="ticket", ticket_id=ticket.id)
    db.session.rollback()
    close_ticket(db.session, deal["service"], ticket.id, "已告知", TODAY, today=TODAY)
    db.session.commit()
    with raises_rule("R-SVC-2", "closed ticket"):
        _survey(db, deal, occasion="ticket")  # no ticket named
    db.session.rollback()
    assert _survey(db, deal, occasion="ticket", ticket_id=ticket.id, overall=3).ticket_id == ticket.id
    with raises_rule("R-SVC-2", "already recorded"):  # one per ticket
        _survey(db, deal, occasion="ticket", ticket_id=ticket.id, overall=1)


def test_r_svc_2_a_survey_is_not_dated_before_its_occasion(db, deal):
    _sign(db, deal)  # signed TODAY + 1
    with raises_rule("R-SVC-2", f"before its occasion ({TODAY + dt.timedelta(days=1)})"):
        _survey(db, deal, recorded_on=TODAY)
    db.session.rollback()
    assert _survey(db, deal, recorded_on=TODAY + dt.timedelta(days=1)).recorded_on == TODAY + dt.timedelta(days=1)
    db.session.get(Subscription, deal["sub"].id).handed_over_on = TODAY + dt.timedelta(days=2)
    db.session.commit()
    with raises_rule("R-SVC-2", "before its occasion"):
        _survey(db, deal, occasion="handover", recorded_on=dt.date(2020, 1, 1), today=TODAY + dt.timedelta(days=5))
    db.session.rollback()
    ticket = _closed_ticket(db, deal)
    close_ticket(db.session, deal["service"], ticket.id, "已告知", TODAY + dt.timedelta(days=3),
                 today=TODAY + dt.timedelta(days=3))
    db.session.commit()
    with raises_rule("R-SVC-2", "before its occasion"):
        _survey(db, deal, occasion="ticket", ticket_id=ticket.id, recorded_on=TODAY + dt.timedelta(days=2),
                today=TODAY + dt.timedelta(days=5))
    db.session.rollback()
    with raises_rule("R-SVC-2", "future"):
        _survey(db, deal, occasion="ticket", ticket_id=ticket.id, recorded_on=TODAY + dt.timedelta(days=6),
                today=TODAY + dt.timedelta(days=5))
    db.session.rollback()
    assert _survey(db, deal, occasion="ticket", ticket_id=ticket.id, recorded_on=TODAY + dt.timedelta(days=3),
                   today=TODAY + dt.timedelta(days=5)).ticket_id == ticket.id


@pytest.mark.parametrize("kw, message", [({"overall": 0}, "1 to 5"), ({"overall": 6}, "1 to 5"),
                                         ({"overall": None}, "overall score"), ({"service": 9}, "1 to 5"),
                                         ({"recorded_on": TODAY + dt.timedelta(days=9)}, "future")])
def test_r_svc_2_scores_are_1_to_5_and_the_date_not_in_the_future(db, deal, kw, message):
    _sign(db, deal)
    with raises_rule("R-SVC-2", message):
        _survey(db, deal, **kw)


def test_r_svc_2_one_survey_per_deal_and_occasion_and_the_agent_only_for_his_own(db, deal, make_user):
    _sign(db, deal)
    with raises_rule("R-SVC-2", "not one of yours"):
        _survey(db, deal, by=make_user("agent"))
    db.session.rollback()
    with raises_rule("R-ALL-1"):  # the manager reads the results; the agent and customer service survey
        _survey(db, deal, by=deal["manager"])
    db.session.rollback()
    _survey(db, deal, by=deal["agent"], overall=4)
    with raises_rule("R-SVC-2", "already recorded"):
        _survey(db, deal, overall=2)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Survey)) == 1


# --- surveys due ----------------------------------------------------------------------------------
def test_r_svc_2_surveys_due_are_signed_handed_over_and_closed_ticket_deals_without_one(db, deal):
    assert surveys_due(db.session) == []
    _sign(db, deal)
    ticket = _closed_ticket(db, deal)
    close_ticket(db.session, deal["service"], ticket.id, "已告知", TODAY, today=TODAY)
    db.session.get(Subscription, deal["sub"].id).handed_over_on = TODAY
    db.session.commit()
    due = {(d["occasion"], d["ticket"].id if d["ticket"] else None) for d in surveys_due(db.session)}
    assert due == {("signing", None), ("handover", None), ("ticket", ticket.id)}
    _survey(db, deal, overall=5)
    _survey(db, deal, occasion="ticket", ticket_id=ticket.id, overall=4)
    assert [d["occasion"] for d in surveys_due(db.session)] == ["handover"]
    assert surveys_due(db.session, agent_id=deal["service"].id) == []  # not his deals


# --- results --------------------------------------------------------------------------------------
class _S:
    def __init__(self, id, overall, service=None, quality=None, comment="", on=TODAY):
        self.id, self.overall, self.service, self.quality, self.comment, self.recorded_on = (
            id, overall, service, quality, comment, on)


def test_r_svc_2_results_arithmetic_on_a_hand_made_set():
    rows = [_S(1, 5, 5, 4), _S(2, 4, None, 4), _S(3, 2, 3, None, "太慢"), _S(4, 1, 1, 2, "很差"),
            _S(5, 4, 4, 5, ""), _S(6, 2, 2, 2, "")]
    result = summarise(rows)
    assert result["count"] == 6
    assert result["overall"] == Decimal("3.0")       # 18 / 6
    assert result["service"] == Decimal("3.0")       # 15 / 5
    assert result["quality"] == Decimal("3.4")       # 17 / 5
    assert result["satisfied"] == Decimal("50.0")    # 3 of 6 scored 4-5
    assert [c["comment"] for c in result["comments"]] == ["很差", "太慢"]  # lowest first, empty ones left out
    assert summarise([_S(1, 4), _S(2, 5), _S(3, 4)])["overall"] == Decimal("4.3")  # 4.333 -> 4.3
    assert summarise([_S(1, 4), _S(2, 5)])["overall"] == Decimal("4.5")
    assert summarise([])["overall"] is None and summarise([])["satisfied"] is None


def test_r_svc_2_results_per_agent_and_project_for_a_month(db, deal, make_deal):
    _sign(db, deal)
    _survey(db, deal, overall=2, service=3, comment="太慢", recorded_on=TODAY + dt.timedelta(days=2))
    ticket = _closed_ticket(db, deal)
    close_ticket(db.session, deal["service"], ticket.id, "已告知", TODAY, today=TODAY)
    db.session.commit()
    _survey(db, deal, occasion="ticket", ticket_id=ticket.id, overall=5, recorded_on=TODAY)
    results = survey_results(db.session, month=TODAY)
    (agent,) = results["agents"]
    assert (agent["id"], agent["count"], agent["overall"], agent["satisfied"]) == (
        deal["agent"].id, 2, Decimal("3.5"), Decimal("50.0"))
    assert agent["service"] == Decimal("3.0") and agent["comments"][0]["comment"] == "太慢"
    assert results["projects"][0]["name"] == deal["project"].name
    assert survey_results(db.session, month=dt.date(2026, 10, 1))["total"]["count"] == 0


def test_r_svc_2_the_monthly_review_carries_the_surveys_and_tickets_in_xlsx_and_pdf(app, db, deal, client, auth,
                                                                                    tmp_path):
    _sign(db, deal)
    _survey(db, deal, overall=4, service=5, recorded_on=TODAY + dt.timedelta(days=2))
    _closed_ticket(db, deal)
    review = monthly_review(db.session, "2026-11")
    row = next(r for r in review["rows"] if r["agent_id"] == deal["agent"].id)
    assert (row["surveys"], row["satisfaction"], row["satisfied"]) == (1, Decimal("4.0"), Decimal("100.0"))
    assert review["tickets"]["opened"] == 1 and review["tickets"]["closed"] == 0
    auth.login("vp")
    xlsx = client.get("/admin/sales_target/review.xlsx?month=2026-11")
    book = openpyxl.load_workbook(io.BytesIO(xlsx.data))
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    li = next(r for r in rows if r[0] == deal["agent"].display_name)
    assert li[-3:] == (1, 4, 100)
    projects = list(book.worksheets[1].iter_rows(values_only=True))
    assert projects[3][:3] == (deal["project"].name, 1, 4)
    tickets = list(book.worksheets[2].iter_rows(values_only=True))
    assert [r[1] for r in tickets[3:6]] == [1, 0, review["tickets"]["overdue"]]
    pdf = client.get("/admin/sales_target/review.pdf?month=2026-11")
    path = tmp_path / "review.pdf"
    path.write_bytes(pdf.data)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout
    assert "客户满意度" in text and "100.0%" in text and "本月新开 1 件" in text


def test_r_svc_2_the_managers_dashboard_shows_customer_satisfaction(app, db, deal, client, auth):
    _sign(db, deal)
    _survey(db, deal, overall=3, recorded_on=office_today(), today=office_today())
    auth.login("boss")
    page = client.get("/admin/").get_data(as_text=True)
    assert 'id="dash-satisfaction"' in page and "3.0" in page and deal["agent"].display_name in page


# --- the summary PDF -------------------------------------------------------------------------------
def test_r_svc_2_the_survey_summary_is_for_managers_vp_and_customer_service_not_agents(app, db, deal):
    from models.documents import document_context, kinds_visible_to, visible_subject_ids
    _sign(db, deal)
    _survey(db, deal, overall=1, comment="非常不满意", recorded_on=TODAY + dt.timedelta(days=2))
    for who in ("manager", "vp", "service"):
        assert "survey_summary" in kinds_visible_to(deal[who])
        assert visible_subject_ids(db.session, deal[who], "survey_summary", [deal["project"].id]) == {
            deal["project"].id}
    assert "survey_summary" not in kinds_visible_to(deal["agent"])
    assert visible_subject_ids(db.session, deal["agent"], "survey_summary", [deal["project"].id]) == set()
    context = document_context(db.session, "survey_summary", deal["project"].id, today=TODAY + dt.timedelta(days=3))
    assert context["month"]["total"]["count"] == 1 and context["year"]["from"] == dt.date(2025, 12, 1)
    import pdf
    html = pdf.render_html("survey_summary", context)
    assert "非常不满意" in html and deal["agent"].display_name in html


# --- screens ----------------------------------------------------------------------------------------
def test_r_svc_2_the_survey_form_records_once_on_a_double_click(app, db, deal, client, auth):
    _sign(db, deal)
    auth.login("kefu")
    page = client.get(f"/admin/survey/record/?subscription_id={deal['sub'].id}&occasion=signing")
    assert page.status_code == 200
    token = auth.csrf(f"/admin/survey/record/?subscription_id={deal['sub'].id}")
    data = {"csrf_token": token, "subscription_id": deal["sub"].id, "occasion": "signing", "overall": "4",
            "service": "5", "comment": "满意", "recorded_on": office_today().isoformat()}
    first = client.post("/admin/survey/record/", data=data)
    second = client.post("/admin/survey/record/", data=data)
    assert first.status_code == 302 and second.status_code == 200
    assert db.session.scalar(select(func.count()).select_from(Survey)) == 1
    assert "此回访已登记" in second.get_data(as_text=True)  # "This survey is already recorded", in the office's language
    deal_page = client.get(f"/admin/subscription/details/?id={deal['sub'].id}").get_data(as_text=True)
    assert 'id="deal-surveys"' in deal_page and "满意" in deal_page
    assert "4" in client.get("/admin/survey/").get_data(as_text=True)


def test_r_svc_2_agents_see_their_own_deals_surveys_and_their_own_due(app, db, deal, client, auth, make_user):
    _sign(db, deal)
    _survey(db, deal, overall=5, comment="李明服务好")
    other = make_user("agent")
    auth.login(other.username)
    assert "李明服务好" not in client.get("/admin/survey/").get_data(as_text=True)
    assert client.get(f"/admin/survey/record/?subscription_id={deal['sub'].id}").status_code == 404
    auth.logout()
    auth.login("li")
    assert "李明服务好" in client.get("/admin/survey/").get_data(as_text=True)
    assert client.post("/admin/survey/summary/", data={"project_id": deal["project"].id,
                                                       "csrf_token": auth.csrf()}).status_code == 403
