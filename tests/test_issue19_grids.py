"""Issue 19, items 6, 7, 8 and 11: what the manager decides a conflict with, what the price
approvals and contracts grids show, and the plan lines a payment paid (R-LEAD-5, R-PRICE-2,
R-CON-3, R-PAY-1, R-PAY-3)."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from sqlalchemy import event, select

from models import LeadConflict
from models.base import office_today
from models.leads import DuplicateLead, register_lead
from tests import factories as f
from tests.conftest import Auth


def _page_and_statements(client, db, username, path):
    """`path` as `username` sees it, and the SQL statements that serving it sent."""
    seen = []

    def listener(conn, cur, statement, *args):
        seen.append(statement)
    Auth(client).login(username)
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        page = client.get(path).get_data(as_text=True)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    return page, seen


def _cells(html: str, column: str) -> list[str]:
    """The text of every cell of `column` in the grid (tags stripped)."""
    return [re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(rf'<td class="col-{re.escape(column)}">(.*?)</td>', html, re.S)]


# --- item 6: the conflict page ---------------------------------------------------------------

@pytest.fixture
def conflict(db, make_user):
    project = f.project(db.session, name="湘江壹号")
    li, zhang = make_user("agent", username="li"), make_user("agent", username="zhang")
    make_user("sales_manager", username="wang")
    db.session.commit()
    lead = register_lead(db.session, li, project_id=project.id, name="黄先生", phone="13800138000",
                         source="walk_in", today=dt.date(2026, 11, 20))
    lead.registered_at = dt.datetime(2026, 11, 20, 2, 30)  # UTC: 10:30 in the office
    lead.stage = "visited"
    f.follow_up(db.session, lead, li, content="客户想看三房，周末带家人来", channel="visit",
                at=dt.datetime(2026, 11, 24, 7, 5))  # 15:05 in the office
    f.follow_up(db.session, lead, li, content="第一次电话", at=dt.datetime(2026, 11, 21, 1, 0))
    db.session.commit()
    with pytest.raises(DuplicateLead):
        register_lead(db.session, zhang, project_id=project.id, name="黄总", phone="13800138000",
                      source="walk_in", today=dt.date(2026, 11, 26))
    db.session.commit()
    return {"lead": lead, "conflict": db.session.scalar(select(LeadConflict))}


def test_issue19_6_r_lead_5_the_conflict_page_shows_the_original_agent_first_registration_stage_last_follow_up_and_links_the_customer(
        client, db, conflict):
    lead = conflict["lead"]
    Auth(client).login("wang")
    for path in ("/admin/lead_conflict/", f"/admin/lead_conflict/details/?id={conflict['conflict'].id}"):
        page = client.get(path).get_data(as_text=True)
        assert "原置业顾问" in page and "Li" in page  # the agent who holds the customer
        assert "首次登记时间" in page and "2026-11-20 10:30" in page  # office time
        assert "客户阶段" in page and "已到访(意向)" in page
        assert "最近跟进" in page and "2026-11-24 15:05" in page and "客户想看三房，周末带家人来" in page
        assert "第一次电话" not in page  # the last one, not every one
        assert f'href="/admin/lead/details/?id={lead.id}"' in page
    assert client.get(f"/admin/lead/details/?id={lead.id}").status_code == 200  # the link opens for her


def test_issue19_6_r_lead_5_the_agent_who_registered_again_gets_no_link_stage_or_follow_up_of_the_other_agents_customer(
        client, db, conflict):
    lead = conflict["lead"]
    Auth(client).login("zhang")
    page = client.get("/admin/lead_conflict/").get_data(as_text=True)
    assert "Li" in page and "2026-11-20 10:30" in page  # who holds it and since when
    assert f"/admin/lead/details/?id={lead.id}" not in page
    assert "客户想看三房" not in page and "到访" not in page and "黄先生" not in page
    assert client.get(f"/admin/lead/details/?id={lead.id}").status_code == 404  # the scope it respects


def test_issue19_6_r_lead_5_the_original_agent_stays_the_first_registrations_when_the_customer_moved(
        client, db, conflict, make_user):
    """Reassigned after the conflict (or back in the pool): the column still names who registered
    first, and says who holds the customer now."""
    lead = conflict["lead"]
    lead.owner = make_user("agent", username="zhou")  # display name "Zhou"
    db.session.commit()
    Auth(client).login("wang")
    (cell,) = _cells(client.get("/admin/lead_conflict/").get_data(as_text=True), "original_agent")
    assert cell == "Li（现由 Zhou 跟进）"
    lead.owner = None
    db.session.commit()
    (cell,) = _cells(client.get("/admin/lead_conflict/").get_data(as_text=True), "original_agent")
    assert cell == "Li（现在公海）"


def test_issue19_6_the_conflict_grid_loads_follow_ups_in_one_query_whatever_the_rows(client, db, conflict, make_user):
    project = conflict["lead"].project
    li = conflict["lead"].owner
    zhang = conflict["conflict"].attempted_by
    for n in range(6):
        lead = f.lead(db.session, owner=li, project_=project, phone=f"1390000{n:04d}")
        f.follow_up(db.session, lead, li)
        db.session.add(LeadConflict(lead_id=lead.id, attempted_by_id=zhang.id, attempted_name=f"客{n}"))
    db.session.commit()
    page, seen = _page_and_statements(client, db, "wang", "/admin/lead_conflict/")
    assert len(_cells(page, "last_follow_up")) == 7
    assert len([s for s in seen if "FROM follow_up" in s]) == 1
    assert len([s for s in seen if re.search(r"FROM lead\b", s) and "lead_conflict" not in s]) <= 1
    from admin.leads import LeadConflictView
    index = LeadConflictView.column_list.index("first_registered_at")
    newest_first = client.get(f"/admin/lead_conflict/?sort={index}&desc=1").get_data(as_text=True)
    assert _cells(newest_first, "attempted_name")[-1] == "黄总"  # registered first, on 2026-11-20


# --- item 7: the price approvals grid --------------------------------------------------------

@pytest.fixture
def price_requests(db, make_user):
    """Two subscriptions below the list price, waiting for the vice-president."""
    from models.deals import subscribe
    project = f.project(db.session, code="XJ")
    building = f.building(db.session, project, name="1栋")
    agents = {"li": make_user("agent", username="li"), "zhang": make_user("agent", username="zhang")}
    make_user("vp", username="vp")
    rows = []
    for number, list_price, price, name, agent in (("2301", "1500000.00", "1400000.00", "黄先生", agents["li"]),
                                                   ("2302", "1000000.00", "990000.00", "刘女士", agents["zhang"])):
        unit = f.unit(db.session, building, number=number, list_price=Decimal(list_price))
        lead = f.lead(db.session, owner=agent, project_=project, name=name)
        db.session.commit()
        rows.append(subscribe(db.session, agent, unit_id=unit.id, lead_id=lead.id, payment_method="one_off",
                              deposit="50000", id_number=f.VALID_ID_NUMBER, address="长沙", price=price,
                              price_reason="老客户介绍", subscribed_on=office_today()))
        db.session.commit()
    return rows


def test_issue19_7_r_price_2_the_price_approvals_grid_shows_customer_unit_agent_list_price_and_discount(
        client, db, price_requests):
    page, seen = _page_and_statements(client, db, "vp", "/admin/price_approval/")
    # the page's deals, units, buildings and agents come with its rows: no query per row
    assert not [s for s in seen if re.search(r"FROM (unit|building|subscription)\b", s) and "price_approval" not in s]
    headers = re.sub(r"\s+", "", " ".join(re.findall(r"<th[^>]*>(.*?)</th>", page, re.S)))
    for header in ("客户", "房源", "置业顾问", "表价", "优惠金额", "优惠比例"):
        assert header in headers
    assert _cells(page, "subscription.customer_name") == ["刘女士", "黄先生"]
    assert _cells(page, "unit") == ["1栋-2302", "1栋-2301"]  # the unit's displayed name
    assert _cells(page, "subscription.agent") == ["Zhang (zhang)", "Li (li)"]
    assert _cells(page, "list_price") == ["¥1,000,000.00", "¥1,500,000.00"]
    assert _cells(page, "discount") == ["¥10,000.00", "¥100,000.00"]
    assert _cells(page, "discount_percent") == ["1.00%", "6.67%"]
    details = client.get(f"/admin/price_approval/details/?id={price_requests[0].id}").get_data(as_text=True)
    assert "黄先生" in details and "1栋-2301" in details and "¥100,000.00" in details and "6.67%" in details


@pytest.mark.parametrize("column", ["discount", "discount_percent", "unit", "subscription.customer_name",
                                    "subscription.agent", "list_price"])
def test_issue19_7_the_price_approvals_grid_sorts_by_its_new_columns(client, db, price_requests, column):
    from admin.deals import PriceApprovalView
    index = PriceApprovalView.column_list.index(column)
    Auth(client).login("vp")
    ascending = client.get(f"/admin/price_approval/?sort={index}").get_data(as_text=True)
    descending = client.get(f"/admin/price_approval/?sort={index}&desc=1").get_data(as_text=True)
    assert len(_cells(ascending, column)) == 2
    assert _cells(ascending, "unit") == list(reversed(_cells(descending, "unit")))
    if column in ("discount", "discount_percent", "list_price"):
        assert _cells(ascending, "unit") == ["1栋-2302", "1栋-2301"]  # the smaller discount first
    assert f'href="/admin/price_approval/?sort={index}' in client.get("/admin/price_approval/").get_data(as_text=True)


# --- item 11: the plan lines a payment paid ---------------------------------------------------

@pytest.fixture
def split_payment(db, make_user):
    """An instalments deal (deposit 50,000 in; down payment 400,000 as line 2, then line 3 of
    450,000) and one payment of 450,000 allocated to the oldest open lines: 400,000 to the down
    payment, 50,000 to line 3."""
    from models.payments import record_payment
    deal = f.active_deal(db.session, make_user, price="1500000.00", payment_method="instalments",
                         today=office_today(), staff={"control": ("sales_control", None),
                                                      "finance": ("finance", "zhao"),
                                                      "manager": ("sales_manager", "boss")})
    payment = record_payment(db.session, deal["finance"], deal["sub"].id, amount="450000",
                             paid_on=office_today(), channel="bank_transfer")
    db.session.commit()
    assert payment.instalment_id is None  # auto-allocated: no one line chosen
    return {**deal, "payment": payment}


PAID = "首期款 ¥400,000.00；第3期 ¥50,000.00"


def test_issue19_11_r_pay_1_a_payment_shows_the_lines_it_paid_in_the_list_and_its_details(client, db, split_payment):
    payment = split_payment["payment"]
    Auth(client).login("zhao")
    page = client.get("/admin/payment/").get_data(as_text=True)
    cells = dict(zip(_cells(page, "receipt_no"), _cells(page, "instalment")))
    assert cells[payment.receipt_no] == PAID
    assert "定金 ¥50,000.00" in cells.values()  # the deposit's own receipt: its line
    details = client.get(f"/admin/payment/details/?id={payment.id}").get_data(as_text=True)
    assert "付款期次" in details and PAID in details


def test_issue19_11_a_reversal_shows_the_lines_it_took_back(client, db, split_payment):
    from models.payments import reverse_payment
    reversal = reverse_payment(db.session, split_payment["finance"], split_payment["payment"].id, "录错金额")
    db.session.commit()
    Auth(client).login("zhao")
    page = client.get("/admin/payment/").get_data(as_text=True)
    cells = dict(zip(_cells(page, "receipt_no"), _cells(page, "instalment")))
    assert cells[reversal.receipt_no] == "首期款 -¥400,000.00；第3期 -¥50,000.00"


def test_issue19_11_r_pay_3_the_grid_export_and_the_finance_export_show_the_lines_paid(client, db, split_payment):
    import csv
    import io
    payment = split_payment["payment"]
    Auth(client).login("zhao")
    grid = list(csv.reader(io.StringIO(client.get("/admin/payment/export/csv/").get_data(as_text=True))))
    column = grid[0].index("付款期次")
    assert [row[column] for row in grid if row[0] == payment.receipt_no] == [PAID]
    response = client.post("/admin/finance_export/run", data={
        "list": "payments", "format": "csv", "csrf_token": Auth(client).csrf("/admin/finance_export/")})
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    column = rows[0].index("付款期次")
    assert [row[column] for row in rows if row[0] == payment.receipt_no] == [PAID]
    assert Decimal(rows[-1][6]) == Decimal("500000.00")  # the totals still add the amounts


def test_issue19_11_the_payment_grid_reads_the_lines_paid_in_one_query_for_the_page(client, db, split_payment):
    from models.payments import record_payment
    for _ in range(5):
        record_payment(db.session, split_payment["finance"], split_payment["sub"].id, amount="1000",
                       paid_on=office_today(), channel="cash")
    db.session.commit()
    page, seen = _page_and_statements(client, db, "zhao", "/admin/payment/")
    assert len(_cells(page, "instalment")) == 7
    assert len([s for s in seen if "FROM payment_allocation" in s]) == 1
    assert not [s for s in seen if re.search(r"FROM instalment\b", s)]


# --- item 8: the contract grid ---------------------------------------------------------------

def test_issue19_8_r_con_3_the_contract_grid_shows_customer_and_unit_sortable_and_in_its_export(client, db, make_user):
    import csv
    import io
    from admin.contracts import ContractView
    project = f.project(db.session, code="XJ")
    building = f.building(db.session, project, name="1栋")
    agent = make_user("agent", username="li")
    make_user("sales_manager", username="boss")
    for number, name in (("2302", "刘女士"), ("2301", "黄先生")):
        unit = f.unit(db.session, building, number=number)
        sub = f.subscription(db.session, agent, lead_=f.lead(db.session, owner=agent, project_=project),
                             unit_=unit, customer_name=name, status="active")
        f.contract(db.session, sub)
    db.session.commit()
    Auth(client).login("boss")
    index = ContractView.column_list.index("unit")
    page = client.get(f"/admin/contract/?sort={index}").get_data(as_text=True)
    assert _cells(page, "unit") == ["1栋-2301", "1栋-2302"]
    assert _cells(page, "subscription.customer_name") == ["黄先生", "刘女士"]
    exported = list(csv.reader(io.StringIO(client.get("/admin/contract/export/csv/").get_data(as_text=True))))
    assert {"客户", "房源"} <= set(exported[0])
    assert sorted(row[exported[0].index("房源")] for row in exported[1:]) == ["1栋-2301", "1栋-2302"]
