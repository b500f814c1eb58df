"""Monthly commission statements (issue 23, item 5; R-COM-2): drawing, the approval by the
manager up to the project's limit and the vice-president above it, never the payee, the month
closed by the approval, finance's workbook and the PDF. The commission engine is not on this
branch: the lines are written as it writes them (models.commissions.line_month picks the month)."""
from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import openpyxl
import pytest
from sqlalchemy import func, select

from models import Audit, Notification
from models.channels import ChannelCompany, ChannelMember
from models.commission_statements import approve_statement, draw_statements, statement_figures, statement_lines
from models.commissions import CommissionLine, CommissionStatement, line_month
from models.errors import PermissionDenied, RuleViolation
from tests.conftest import Auth, csrf_token

TODAY = dt.date(2026, 11, 20)
NOV, DEC = dt.date(2026, 11, 1), dt.date(2026, 12, 1)


def _line(session, sub, amount, *, user=None, company=None, stage="subscribed", on=TODAY, kind=None, role=None):
    """A line as the engine writes it: its month from line_month (closed months skipped)."""
    month = line_month(session, sub.project_id, user.id if user else None, company.id if company else None, on)
    amount = Decimal(amount)
    line = CommissionLine(project_id=sub.project_id, subscription_id=sub.id, role=role or ("channel" if company else "agent"),
                          stage=stage, payee_user_id=user.id if user else None,
                          payee_company_id=company.id if company else None,
                          kind=kind or ("clawback" if amount < 0 else "earned"), base=sub.price, amount=amount,
                          month=month, earned_on=on)
    session.add(line)
    session.flush()
    return line


@pytest.fixture
def floor(db, make_deal, make_user):
    """A live deal of agent "li" in project XJ, the manager, the vice-president, finance and a
    channel company with its person; the project's limit 10,000."""
    deal = make_deal(staff={"control": ("sales_control", None), "finance": ("finance", None),
                            "manager": ("sales_manager", "boss"), "vp": ("vp", "vp1")}, today=TODAY)
    s = db.session
    deal["project"].commission_vp_limit = Decimal("10000")
    company = ChannelCompany(name="房友渠道")
    s.add(company)
    s.flush()
    deal["channel"] = make_user("channel", username="chan1")
    s.add(ChannelMember(user_id=deal["channel"].id, company_id=company.id))
    deal["company"] = company
    s.commit()
    return deal


def _statement(session, project_id, month, user=None, company=None):
    q = select(CommissionStatement).where(CommissionStatement.project_id == project_id,
                                          CommissionStatement.month == month)
    q = q.where(CommissionStatement.payee_user_id == user.id) if user else \
        q.where(CommissionStatement.payee_company_id == company.id)
    return session.scalar(q.execution_options(populate_existing=True))


def test_r_com_2_drawing_makes_one_draft_per_payee_and_drawing_again_refreshes_it(db, floor):
    s, sub = db.session, floor["sub"]
    _line(s, sub, "3000", user=floor["agent"])
    _line(s, sub, "9000", user=floor["agent"], stage="signed")
    _line(s, sub, "-1000", user=floor["agent"], stage="signed", kind="clawback")
    _line(s, sub, "5000", company=floor["company"])
    s.commit()
    done = draw_statements(s, floor["finance"], sub.project_id, "2026-11", TODAY)
    s.commit()
    assert (done["drawn"], done["created"], done["needs_vp"]) == (2, 2, 1)
    agent_st = _statement(s, sub.project_id, NOV, user=floor["agent"])
    assert (agent_st.earned, agent_st.clawed_back, agent_st.total, agent_st.line_count, agent_st.needs_vp) == (
        Decimal("12000"), Decimal("-1000"), Decimal("11000"), 3, True)
    channel_st = _statement(s, sub.project_id, NOV, company=floor["company"])
    assert (channel_st.total, channel_st.needs_vp, channel_st.status) == (Decimal("5000"), False, "draft")
    # the vice-president is told a statement waits for him
    assert s.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == floor["vp"].id, Notification.kind == "commission_statement_waiting")) == 1

    _line(s, sub, "-2000", user=floor["agent"], kind="clawback")
    s.commit()
    again = draw_statements(s, floor["manager"], sub.project_id, NOV, TODAY)
    s.commit()
    assert (again["drawn"], again["created"], again["refreshed"]) == (2, 0, 1)
    refreshed = _statement(s, sub.project_id, NOV, user=floor["agent"])
    assert refreshed.id == agent_st.id and refreshed.total == Decimal("9000") and refreshed.needs_vp is False
    assert s.scalar(select(func.count()).select_from(CommissionStatement)) == 2
    with pytest.raises(PermissionDenied):
        draw_statements(s, floor["agent"], sub.project_id, NOV, TODAY)


def test_r_com_2_finance_draws_the_month_from_the_grid_and_an_agent_may_not(app, db, client, floor):
    s, sub = db.session, floor["sub"]
    _line(s, sub, "3000", user=floor["agent"])
    s.commit()
    auth = Auth(client)
    auth.login(floor["agent"].username)
    assert client.get("/admin/commission_statement/draw/").status_code == 403
    auth.logout()
    auth.login(floor["finance"].username)
    token = csrf_token(client, "/admin/commission_statement/draw/")
    data = {"project_id": str(sub.project_id), "month": "2026-11"}
    client.post("/admin/commission_statement/draw/", data=data)  # no CSRF token: refused
    assert s.scalar(select(func.count()).select_from(CommissionStatement)) == 0
    for _ in range(2):  # a double click draws once
        client.post("/admin/commission_statement/draw/", data={**data, "csrf_token": token})
    assert [st.total for st in s.scalars(select(CommissionStatement))] == [Decimal("3000")]


def _approve_by_grid(client, user, statement_id):
    auth = Auth(client)
    auth.login(user.username)
    token = csrf_token(client, "/admin/commission_statement/")
    page = client.post("/admin/commission_statement/action/",
                       data={"action": "approve", "rowid": str(statement_id), "csrf_token": token},
                       follow_redirects=True).get_data(as_text=True)
    auth.logout()
    return page


def test_r_com_2_above_the_limit_only_the_vice_president_approves(app, db, client, floor):
    s, sub = db.session, floor["sub"]
    _line(s, sub, "12000", user=floor["agent"])
    s.commit()
    draw_statements(s, floor["finance"], sub.project_id, NOV, TODAY)
    s.commit()
    st_id = _statement(s, sub.project_id, NOV, user=floor["agent"]).id
    _approve_by_grid(client, floor["manager"], st_id)
    assert _statement(s, sub.project_id, NOV, user=floor["agent"]).status == "draft"
    with pytest.raises(RuleViolation, match="vice-president|副总"):
        approve_statement(s, floor["manager"], st_id)
    s.rollback()
    _approve_by_grid(client, floor["vp"], st_id)
    st = _statement(s, sub.project_id, NOV, user=floor["agent"])
    assert (st.status, st.approved_by_id) == ("approved", floor["vp"].id)
    told = set(s.scalars(select(Notification.user_id).where(Notification.kind == "commission_statement_approved")))
    assert told == {floor["agent"].id, floor["vp"].id}  # the payee and the approver


def test_r_com_2_within_the_limit_the_manager_approves_and_the_lines_are_stamped(db, floor):
    s, sub = db.session, floor["sub"]
    lines = [_line(s, sub, "4000", user=floor["agent"]).id, _line(s, sub, "-500", user=floor["agent"]).id]
    s.commit()
    draw_statements(s, floor["finance"], sub.project_id, NOV, TODAY)
    st = approve_statement(s, floor["manager"], _statement(s, sub.project_id, NOV, user=floor["agent"]).id)
    s.commit()
    assert st.status == "approved"
    assert set(s.scalars(select(CommissionLine.statement_id).where(CommissionLine.id.in_(lines)))) == {st.id}
    assert statement_figures(s, st)["total"] == st.total == Decimal("3500")


def test_r_com_2_the_payee_never_approves_his_own_statement(db, floor, make_user):
    s, sub = db.session, floor["sub"]
    _line(s, sub, "1000", user=floor["manager"], role="manager")
    s.commit()
    draw_statements(s, floor["finance"], sub.project_id, NOV, TODAY)
    s.commit()
    st_id = _statement(s, sub.project_id, NOV, user=floor["manager"]).id
    with pytest.raises(RuleViolation, match="own|本人"):
        approve_statement(s, floor["manager"], st_id)
    s.rollback()
    assert approve_statement(s, floor["vp"], st_id).status == "approved"


def test_r_com_2_a_double_click_approves_once(app, db, client, floor):
    s, sub = db.session, floor["sub"]
    _line(s, sub, "2000", user=floor["agent"])
    s.commit()
    draw_statements(s, floor["finance"], sub.project_id, NOV, TODAY)
    s.commit()
    st_id = _statement(s, sub.project_id, NOV, user=floor["agent"]).id
    Auth(client).login(floor["manager"].username)
    token = csrf_token(client, "/admin/commission_statement/")
    pages = [client.post("/admin/commission_statement/action/",
                         data={"action": "approve", "rowid": str(st_id), "csrf_token": token},
                         follow_redirects=True).get_data(as_text=True) for _ in range(2)]
    assert "already approved" in pages[1] or "已审批" in pages[1]
    assert s.scalar(select(func.count()).select_from(Audit).where(
        Audit.action == "approve_commission_statement", Audit.entity_id == str(st_id))) == 1


def test_r_com_2_approval_refuses_when_the_lines_changed_since_drawn(db, floor):
    s, sub = db.session, floor["sub"]
    _line(s, sub, "2000", user=floor["agent"])
    s.commit()
    draw_statements(s, floor["finance"], sub.project_id, NOV, TODAY)
    s.commit()
    _line(s, sub, "-2000", user=floor["agent"], kind="clawback")  # a cancellation after the drawing
    s.commit()
    st_id = _statement(s, sub.project_id, NOV, user=floor["agent"]).id
    with pytest.raises(RuleViolation, match="redraw|重新生成"):
        approve_statement(s, floor["manager"], st_id)
    s.rollback()
    assert _statement(s, sub.project_id, NOV, user=floor["agent"]).status == "draft"
    assert s.scalar(select(func.count()).select_from(CommissionLine).where(CommissionLine.statement_id == st_id)) == 0


def test_r_com_2_an_approved_month_is_closed_and_a_later_clawback_lands_next_month(db, floor):
    s, sub = db.session, floor["sub"]
    _line(s, sub, "3000", user=floor["agent"])
    s.commit()
    draw_statements(s, floor["finance"], sub.project_id, NOV, TODAY)
    nov = approve_statement(s, floor["manager"], _statement(s, sub.project_id, NOV, user=floor["agent"]).id)
    s.commit()
    clawback = _line(s, sub, "-3000", user=floor["agent"], kind="clawback", on=TODAY + dt.timedelta(days=2))
    s.commit()
    assert clawback.month == DEC  # November is closed for the agent
    assert line_month(s, sub.project_id, None, floor["company"].id, TODAY) == NOV  # not for the channel
    draw_statements(s, floor["finance"], sub.project_id, NOV, TODAY)  # November again: nothing to redraw
    draw_statements(s, floor["finance"], sub.project_id, DEC, TODAY)
    s.commit()
    assert _statement(s, sub.project_id, NOV, user=floor["agent"]).total == Decimal("3000") == nov.total
    dec = _statement(s, sub.project_id, DEC, user=floor["agent"])
    assert (dec.status, dec.clawed_back, dec.total) == ("draft", Decimal("-3000"), Decimal("-3000"))


def test_r_com_2_finance_export_contents_equal_the_statements_figures(app, db, client, floor):
    s, sub = db.session, floor["sub"]
    _line(s, sub, "3000", user=floor["agent"])
    _line(s, sub, "4000", user=floor["agent"], stage="signed")
    _line(s, sub, "-1000", user=floor["agent"], stage="signed", kind="clawback")
    _line(s, sub, "2500", company=floor["company"])
    s.commit()
    draw_statements(s, floor["finance"], sub.project_id, NOV, TODAY)
    s.commit()
    Auth(client).login(floor["finance"].username)
    response = client.get(f"/admin/commission_statement/lines.xlsx?project_id={sub.project_id}&month=2026-11")
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    sums, lines = book.worksheets[0], book.worksheets[1]
    rows = [[c.value for c in row] for row in sums.iter_rows(min_row=4)]
    statements = {st.total for st in s.scalars(select(CommissionStatement))}
    assert {Decimal(str(r[5])) for r in rows[:-1]} == statements  # each payee's total
    assert Decimal(str(rows[-1][5])) == sum(statements)  # the office's total
    line_rows = [[c.value for c in row] for row in lines.iter_rows(min_row=4)]
    amounts = [Decimal(str(r[7])) for r in line_rows if r[2] is not None]  # the lines (a deal), not the totals
    assert sorted(amounts) == sorted(Decimal(str(a)) for a in s.scalars(select(CommissionLine.amount)))
    assert any(r[1] in ("Total", "合计") and Decimal(str(r[7])) == Decimal("6000") for r in line_rows)  # the agent's
    assert Decimal(str(line_rows[-1][7])) == sum(statements)


def test_r_com_2_the_statement_pdf_shows_the_lines_and_the_drawn_totals(db, floor):
    import pdf
    from models.documents import document_context
    s, sub = db.session, floor["sub"]
    _line(s, sub, "3000", user=floor["agent"])
    _line(s, sub, "-1000", user=floor["agent"], kind="clawback", stage="signed")
    s.commit()
    draw_statements(s, floor["finance"], sub.project_id, NOV, TODAY)
    s.commit()
    st = _statement(s, sub.project_id, NOV, user=floor["agent"])
    context = document_context(s, "commission_statement", st.id, today=TODAY)
    html = pdf.render_html("commission_statement", context)
    from models.money import format_money
    assert "佣金结算单" in html and sub.number in html
    for amount in ("3000", "-1000", "2000"):
        assert format_money(Decimal(amount)) in html
    assert len(statement_lines(s, st)) == 2


def test_r_com_2_a_channel_sees_only_its_own_statements(app, db, client, floor, make_user):
    s, sub = db.session, floor["sub"]
    other = ChannelCompany(name="别家渠道")
    s.add(other)
    s.flush()
    _line(s, sub, "1000", company=floor["company"])
    _line(s, sub, "2000", company=other)
    _line(s, sub, "3000", user=floor["agent"])
    s.commit()
    draw_statements(s, floor["finance"], sub.project_id, NOV, TODAY)
    s.commit()
    mine = _statement(s, sub.project_id, NOV, company=floor["company"]).id
    theirs = _statement(s, sub.project_id, NOV, company=other).id
    agents = _statement(s, sub.project_id, NOV, user=floor["agent"]).id
    Auth(client).login(floor["channel"].username)
    grid = client.get("/admin/commission_statement/").get_data(as_text=True)
    assert f'value="{mine}"' in grid or f"id={mine}" in grid
    for hidden in (theirs, agents):
        assert client.get(f"/admin/commission_statement/details/?id={hidden}").status_code in (302, 404)
    details = client.get(f"/admin/commission_statement/details/?id={mine}")
    assert details.status_code == 200 and details.get_data(as_text=True).count("data-line=") == 1  # its one line
    assert client.get("/admin/commission_statement/lines.xlsx?month=2026-11").status_code == 403
    token = csrf_token(client, "/admin/commission_statement/")
    response = client.post("/admin/document/request/", data={"kind": "commission_statement", "subject_id": str(theirs),
                                                      "csrf_token": token})
    assert response.status_code in (302, 403, 404)
    from models import Document
    assert s.scalar(select(func.count()).select_from(Document).where(Document.subject_id == theirs)) == 0


@pytest.mark.postgres
def test_r_com_2_two_approvals_at_once_record_one(app, db, floor):
    from tests.support.race import race
    s, sub = db.session, floor["sub"]
    _line(s, sub, "2000", user=floor["agent"])
    s.commit()
    draw_statements(s, floor["finance"], sub.project_id, NOV, TODAY)
    s.commit()
    st_id = _statement(s, sub.project_id, NOV, user=floor["agent"]).id
    deciders = [floor["manager"].id, floor["vp"].id]

    def approve(user_id):
        def run(session):
            from models import User
            result = approve_statement(session, session.get(User, user_id), st_id)
            session.commit()
            return result.status
        return run

    results = race(approve(deciders[0]), approve(deciders[1]), app=app, expected=(RuleViolation,))
    assert sorted(isinstance(r, RuleViolation) for r in results) == [False, True]
    assert s.scalar(select(func.count()).select_from(Audit).where(
        Audit.action == "approve_commission_statement", Audit.entity_id == str(st_id))) == 1
    assert s.scalar(select(func.count()).select_from(CommissionLine).where(CommissionLine.statement_id == st_id)) == 1


@pytest.mark.postgres
def test_r_com_2_two_drawings_at_once_leave_one_statement_per_payee(app, db, floor):
    from tests.support.race import race
    s, sub = db.session, floor["sub"]
    _line(s, sub, "2000", user=floor["agent"])
    _line(s, sub, "3000", company=floor["company"])
    s.commit()
    people = [floor["manager"].id, floor["finance"].id]

    def draw(user_id):
        def run(session):
            from models import User
            done = draw_statements(session, session.get(User, user_id), sub.project_id, NOV, TODAY)
            session.commit()
            return done
        return run

    race(draw(people[0]), draw(people[1]), app=app)
    assert s.scalar(select(func.count()).select_from(CommissionStatement)) == 2


@pytest.mark.postgres
def test_r_com_2_a_line_written_while_the_month_is_approved_is_never_lost_in_the_closed_month(app, db, floor):
    """The engine writes a line (line_month reads the statement FOR SHARE) while the manager
    approves: either the approval waits and refuses ("redraw": the line is in the month), or the
    line waits and goes to the next month — never a line left in the closed month off its statement."""
    from tests.support.race import race
    s, sub = db.session, floor["sub"]
    _line(s, sub, "2000", user=floor["agent"])
    s.commit()
    draw_statements(s, floor["finance"], sub.project_id, NOV, TODAY)
    s.commit()
    st_id = _statement(s, sub.project_id, NOV, user=floor["agent"]).id
    manager_id, agent_id, sub_id = floor["manager"].id, floor["agent"].id, sub.id

    def approve(session):
        from models import User
        result = approve_statement(session, session.get(User, manager_id), st_id)
        session.commit()
        return result.status

    def write_line(session):
        from models import User
        from models.deals import Subscription
        _line(session, session.get(Subscription, sub_id), "-2000", user=session.get(User, agent_id), kind="clawback")
        session.commit()
        return "written"

    for _ in range(5):
        race(approve, write_line, app=app, expected=(RuleViolation,))
        st = _statement(s, sub.project_id, NOV, user=floor["agent"])
        stray = s.scalar(select(func.count()).select_from(CommissionLine).where(
            CommissionLine.month == NOV, CommissionLine.statement_id.is_(None),
            CommissionLine.payee_user_id == agent_id))
        if st.status == "approved":
            assert stray == 0
            assert statement_figures(s, st)["total"] == st.total
            break
        draw_statements(s, floor["finance"], sub.project_id, NOV, TODAY)  # refused: redraw, and race again
        s.commit()


def test_r_com_2_a_month_is_approved_only_once_it_is_over_in_the_offices_time(app, db, client, floor):
    """The review's hole: the manager approved November on the 3rd, 10th and 17th — each 9,000
    under the 10,000 limit — so one month's 27,000 went out in three statements without the
    vice-president. A statement is approved only once its month is over (drafts: a preview)."""
    from models.base import office_today
    s, sub = db.session, floor["sub"]
    nov3 = dt.date(2026, 11, 3)
    _line(s, sub, "9000", user=floor["agent"], on=nov3)
    s.commit()
    draw_statements(s, floor["finance"], sub.project_id, NOV, nov3)  # a preview may be drawn any time
    s.commit()
    st_id = _statement(s, sub.project_id, NOV, user=floor["agent"]).id
    for day in (nov3, dt.date(2026, 11, 30)):
        with pytest.raises(RuleViolation, match="2026-12-01"):
            approve_statement(s, floor["manager"], st_id, today=day)
        s.rollback()
    assert _statement(s, sub.project_id, NOV, user=floor["agent"]).status == "draft"
    assert s.scalar(select(func.count()).select_from(CommissionLine).where(CommissionLine.statement_id == st_id)) == 0
    _line(s, sub, "9000", user=floor["agent"], on=dt.date(2026, 11, 10))  # still November: not the next month
    s.commit()
    assert s.scalar(select(func.count()).select_from(CommissionLine).where(
        CommissionLine.payee_user_id == floor["agent"].id, CommissionLine.month != NOV)) == 0
    draw_statements(s, floor["finance"], sub.project_id, NOV, DEC)
    s.commit()
    st = _statement(s, sub.project_id, NOV, user=floor["agent"])
    assert (st.total, st.needs_vp) == (Decimal("18000"), True)  # the whole month: the vice-president's
    assert approve_statement(s, floor["vp"], st_id, today=DEC).status == "approved"  # December 1st: over
    s.commit()
    # On the grid, the office's current month: the button waits, disabled, saying from when; the
    # approval sent anyway is refused with that reason and nothing is approved.
    this_month = office_today().replace(day=1)
    opens = (this_month + dt.timedelta(days=32)).replace(day=1).isoformat()
    _line(s, sub, "1000", user=floor["agent"], on=office_today())
    s.commit()
    draw_statements(s, floor["finance"], sub.project_id, this_month)
    s.commit()
    now_id = _statement(s, sub.project_id, this_month, user=floor["agent"]).id
    auth = Auth(client)
    auth.login(floor["manager"].username)
    grid = client.get("/admin/commission_statement/").get_data(as_text=True)
    assert "step-refused" in grid and opens in grid
    auth.logout()
    page = _approve_by_grid(client, floor["manager"], now_id)
    assert opens in page
    assert _statement(s, sub.project_id, this_month, user=floor["agent"]).status == "draft"
