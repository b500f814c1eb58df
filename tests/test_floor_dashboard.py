"""The floor dashboard and the channel analytics (issue 23, items 2 and 6; R-RCP-1, R-RCP-2,
R-COM-1, R-COM-2): each figure comes from one function, so the dashboard, the analytics page and
its workbook agree for the same period; a subscription is attributed to the channel of the
customer's first visit, or to `channel` when a registration of his was confirmed."""
from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal

import openpyxl
import pytest

from models.base import office_to_utc
from models.channels import ChannelCompany, ChannelRegistration
from models.commission_statements import (approve_statement, channel_conversion, commissions_accrued,
                                          commissions_payable, draw_statements)
from models.commissions import CommissionLine
from models.reception import RotationEntry, RotationEvent, Visit
from tests import factories as f
from tests.conftest import Auth

TODAY = dt.date(2026, 11, 20)
PERIOD = "start=2026-10-01&end=2026-11-30"


def _at(day: dt.date, hour: int = 10) -> dt.datetime:
    return office_to_utc(dt.datetime.combine(day, dt.time(hour)))


def _visit(s, deal, channel, day, lead=None, kind="first", hour=10):
    s.add(Visit(project_id=deal["project"].id, lead_id=lead.id if lead else None, phone="13800000000", kind=kind,
                channel=channel, received_by_id=deal["agent"].id, arrived_at=_at(day, hour),
                registered_by_id=deal["agent"].id))


@pytest.fixture
def floor(db, make_deal, make_user):
    """Project XJ in October and November: a referral customer who subscribed and signed, a
    channel's customer (registration confirmed) who subscribed, walk-ins who did not, a web
    visit in October; a rotation of two days; commission lines, one month approved."""
    deal = make_deal(staff={"control": ("sales_control", None), "finance": ("finance", None),
                            "manager": ("sales_manager", "boss"), "vp": ("vp", "vp1")}, today=TODAY)
    s, project = db.session, deal["project"]
    _visit(s, deal, "referral", dt.date(2026, 11, 5), lead=deal["lead"])
    _visit(s, deal, "walk_in", dt.date(2026, 11, 18), lead=deal["lead"], kind="return")
    f.contract(s, deal["sub"], number="HT-1", signed_on=dt.date(2026, 11, 25), status="signed")
    unit2 = f.unit(s, f.building(s, project, name="渠道楼"), list_price=Decimal("800000"))
    lead2 = f.lead(s, owner=deal["agent"], project_=project, name="渠道客户", phone="13900000001")
    s.commit()
    company = ChannelCompany(name="房友渠道")
    s.add(company)
    s.flush()
    s.add(ChannelRegistration(project_id=project.id, company_id=company.id, registered_by_id=deal["manager"].id,
                              customer_name="渠道客户", phone="13900000001", registered_on=dt.date(2026, 11, 1),
                              valid_until=dt.date(2026, 11, 30), status="confirmed", lead_id=lead2.id))
    _visit(s, deal, "channel", dt.date(2026, 11, 9), lead=lead2)
    _visit(s, deal, "walk_in", dt.date(2026, 11, 12))
    _visit(s, deal, "walk_in", dt.date(2026, 11, 30), hour=23)  # late at night, office time: still November
    _visit(s, deal, "web", dt.date(2026, 10, 15))
    s.commit()
    office = {"agent": deal["agent"], "project": project, "control": deal["control"], "finance": deal["finance"]}
    f.through_steps(s, office, unit2, lead2, payment_method="one_off", subscribed_on=dt.date(2026, 11, 21),
                    today=dt.date(2026, 11, 21))
    agent2 = make_user("agent", username="zhang")
    for day, agent, receptions, skipped in ((dt.date(2026, 11, 5), deal["agent"], 3, 0),
                                            (dt.date(2026, 11, 5), agent2, 2, 1),
                                            (dt.date(2026, 11, 6), deal["agent"], 1, 1)):
        s.add(RotationEntry(project_id=project.id, day=day, agent_id=agent.id, receptions=receptions,
                            skipped=skipped))
    s.add(RotationEvent(project_id=project.id, day=dt.date(2026, 11, 5), kind="out_of_turn", agent_id=agent2.id,
                        turn_of_id=deal["agent"].id, reason="客户指定", by_id=deal["manager"].id))
    s.add(RotationEvent(project_id=project.id, day=dt.date(2026, 11, 6), kind="skip", agent_id=deal["agent"].id,
                        reason="接待中", by_id=deal["manager"].id))
    for month, amount in ((dt.date(2026, 10, 1), "4000"), (dt.date(2026, 11, 1), "6000"),
                          (dt.date(2026, 11, 1), "-1500")):
        s.add(CommissionLine(project_id=project.id, subscription_id=deal["sub"].id, role="agent", stage="subscribed",
                             payee_user_id=deal["agent"].id, kind="clawback" if amount.startswith("-") else "earned",
                             base=deal["sub"].price, amount=Decimal(amount), month=month, earned_on=month))
    s.commit()
    draw_statements(s, deal["finance"], project.id, "2026-10", TODAY)
    s.commit()
    from sqlalchemy import select

    from models.commissions import CommissionStatement
    approve_statement(s, deal["manager"], s.scalar(select(CommissionStatement.id)))
    s.commit()
    return deal


def _rows(html: str, table: str) -> list[str]:
    body = html.split(f'class="table table-sm table-bordered {table}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr (data-[^>]*)>(.*?)</tr>", body, re.S)


def _cell(row_html: str, name: str) -> str:
    return re.search(rf'class="text-right {name}">([^<]*)<', row_html).group(1).strip()


def test_r_rcp_2_a_subscription_is_the_channel_of_the_first_visit_or_of_a_confirmed_registration(db, floor):
    rows = channel_conversion(db.session, floor["project"].id, dt.date(2026, 10, 1), dt.date(2026, 11, 30))
    got = {(r["month"], r["channel"]): (r["visits"], r["subscriptions"], r["signings"]) for r in rows}
    assert got == {("2026-10", "web"): (1, 0, 0), ("2026-11", "referral"): (1, 1, 1),
                   ("2026-11", "walk_in"): (3, 0, 0), ("2026-11", "channel"): (1, 1, 0)}


def test_r_rcp_2_dashboard_conversion_equals_the_analytics_page_and_its_export(app, db, client, floor):
    Auth(client).login(floor["manager"].username)
    dashboard = client.get(f"/admin/floor_dashboard/?project_id={floor['project'].id}&{PERIOD}")
    analytics = client.get(f"/admin/channel_analytics/?project_id={floor['project'].id}&{PERIOD}")
    assert dashboard.status_code == analytics.status_code == 200
    on_dashboard = {re.search(r'data-channel="([^"]+)"', attrs).group(1):
                    tuple(int(_cell(cells, k)) for k in ("visits", "subscriptions", "signings"))
                    for attrs, cells in _rows(dashboard.get_data(as_text=True), "floor-conversion")}
    per_channel: dict[str, list[int]] = {}
    for attrs, cells in _rows(analytics.get_data(as_text=True), "channel-analytics"):
        channel = re.search(r'data-channel="([^"]+)"', attrs).group(1)
        sums = per_channel.setdefault(channel, [0, 0, 0])
        for i, k in enumerate(("visits", "subscriptions", "signings")):
            sums[i] += int(_cell(cells, k))
    assert on_dashboard == {k: tuple(v) for k, v in per_channel.items()}
    assert on_dashboard["referral"] == (1, 1, 1) and on_dashboard["channel"] == (1, 1, 0)
    export = client.get(f"/admin/channel_analytics/export.xlsx?project_id={floor['project'].id}&{PERIOD}")
    sheet = openpyxl.load_workbook(io.BytesIO(export.data)).active
    lines = [[c.value for c in row] for row in sheet.iter_rows(min_row=4)]
    assert [int(v) for v in lines[-1][2:5]] == [sum(v[i] for v in per_channel.values()) for i in range(3)]
    assert len(lines) - 1 == sum(1 for _ in _rows(analytics.get_data(as_text=True), "channel-analytics"))


def test_r_rcp_1_the_dashboard_shows_the_rotations_fairness_per_agent(app, db, client, floor):
    Auth(client).login(floor["manager"].username)
    html = client.get(f"/admin/floor_dashboard/?{PERIOD}").get_data(as_text=True)
    rows = {re.search(r'data-agent="(\d+)"', attrs).group(1): (int(_cell(cells, "receptions")),
                                                               int(_cell(cells, "skipped")))
            for attrs, cells in _rows(html, "floor-fairness")}
    assert rows[str(floor["agent"].id)] == (4, 1)
    assert sorted(rows.values()) == [(2, 1), (4, 1)]


def test_r_com_2_commissions_accrued_and_payable_on_the_dashboard_come_from_their_functions(app, db, client, floor):
    from models.money import format_money
    Auth(client).login(floor["finance"].username)
    html = client.get(f"/admin/floor_dashboard/?project_id={floor['project'].id}&{PERIOD}").get_data(as_text=True)
    start, end = dt.date(2026, 10, 1), dt.date(2026, 11, 30)
    accrued = commissions_accrued(db.session, floor["project"].id, start, end)
    payable = commissions_payable(db.session, floor["project"].id, start, end)
    assert [a["total"] for a in accrued] == [Decimal("4000"), Decimal("4500")]
    assert [p["total"] for p in payable] == [Decimal("4000"), Decimal("0")]  # October approved, November not
    shown = {re.search(r'data-month="([^"]+)"', attrs).group(1): (_cell(cells, "accrued"), _cell(cells, "payable"))
             for attrs, cells in _rows(html, "floor-commissions")}
    assert shown == {a["month"]: (format_money(a["total"]), format_money(p["total"])) for a, p in zip(accrued, payable)}


def test_r_com_1_a_channel_user_and_an_agent_see_neither_page(app, db, client, floor, make_user):
    channel = make_user("channel", username="chan9")
    for user in (channel, floor["agent"]):
        auth = Auth(client)
        auth.login(user.username)
        for path in ("/admin/floor_dashboard/", "/admin/channel_analytics/", "/admin/channel_analytics/export.xlsx"):
            assert client.get(path).status_code == 403, (user.username, path)
        auth.logout()
