"""Generic forms never write money or statuses; refusals say why; exports are safe."""
from __future__ import annotations

from decimal import Decimal

from models import Lead, Unit
from tests import factories as f
from tests.conftest import Auth


def test_unit_form_has_no_price_or_status_field(client, login_as, db):
    login_as("sales_control")
    unit = f.unit(db.session)
    db.session.commit()
    form = client.get(f"/admin/unit/edit/?id={unit.id}").get_data(as_text=True)
    assert 'name="layout"' in form
    assert 'name="list_price"' not in form and 'name="status"' not in form


def test_posting_price_and_status_to_a_generic_form_changes_neither(client, login_as, db):
    login_as("sales_control")
    unit = f.unit(db.session, list_price=Decimal("1500000.00"))
    db.session.commit()
    token = Auth(client).csrf()
    response = client.post(f"/admin/unit/edit/?id={unit.id}", data={
        "csrf_token": token, "building": unit.building_id, "floor": 3, "position": 1,
        "number": unit.number, "layout": "两室两厅一卫", "area": "89.50",
        "list_price": "1.00", "status": "withheld"})
    assert response.status_code == 302
    db.session.expire_all()
    unit = db.session.get(Unit, unit.id)
    assert unit.layout == "两室两厅一卫"  # the form did save
    assert unit.list_price == Decimal("1500000.00") and unit.status == "available"


def test_an_agent_registering_a_lead_owns_it_and_the_phone_is_normalised(client, login_as, db):
    agent = login_as("agent")
    project = f.project(db.session)
    db.session.commit()
    token = Auth(client).csrf()
    response = client.post("/admin/lead/new/", data={
        "csrf_token": token, "project": project.id, "name": "黄先生", "phone": "+86 138-0013-8000",
        "source": "walk_in"})
    assert response.status_code == 302
    lead = db.session.query(Lead).filter_by(name="黄先生").one()
    assert lead.phone == "13800138000"
    assert lead.owner_id == agent.id and lead.registered_by_id == agent.id


def test_an_expired_token_on_an_admin_form_says_why_and_saves_nothing(client, login_as, db, app):
    login_as("agent")
    project = f.project(db.session)
    db.session.commit()
    response = client.post("/admin/lead/new/", data={
        "csrf_token": "expired-or-forged", "project": project.id, "name": "黄先生",
        "phone": "13800138000", "source": "walk_in"},
        headers={"Referer": "http://localhost/admin/lead/new/"}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.request.path == "/admin/lead/new/"
    assert "表单已过期或缺少安全令牌，内容未保存" in page
    assert db.session.query(Lead).count() == 0


def test_the_audit_grid_cannot_be_edited_even_by_an_admin(client, login_as):
    login_as("admin")
    page = client.get("/admin/audit/").get_data(as_text=True)
    assert "/admin/audit/new/" not in page and "/admin/audit/edit/" not in page
    assert client.get("/admin/audit/new/").status_code == 403
    assert client.get("/admin/audit/edit/?id=1").status_code == 403
    token = Auth(client).csrf()
    assert client.post("/admin/audit/delete/", data={"csrf_token": token, "id": 1}).status_code == 403


def test_exports_neutralise_spreadsheet_formulas(client, login_as, db):
    agent = login_as("agent")
    project = f.project(db.session, agents_may_export_personal_data=True)  # R-ALL-2: else refused
    f.lead(db.session, owner=agent, project_=project, name="=HYPERLINK(\"http://evil\",\"x\")", notes="@SUM(A1)")
    f.lead(db.session, owner=agent, project_=project, name="+cmd|' /C calc'!A0")
    db.session.commit()
    csv = client.get("/admin/lead/export/csv/").get_data(as_text=True)
    assert "'=HYPERLINK" in csv and "'+cmd" in csv
    assert "\n=HYPERLINK" not in csv and ",=HYPERLINK" not in csv and ",+cmd" not in csv


def test_xlsx_export_neutralises_formulas_too(client, login_as, db):
    import io

    import openpyxl
    agent = login_as("agent")
    project = f.project(db.session, agents_may_export_personal_data=True)  # R-ALL-2: else refused
    f.lead(db.session, owner=agent, project_=project, name="=1+1")
    db.session.commit()
    response = client.get("/admin/lead/export/xlsx/")
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(response.data)).active
    values = [cell.value for row in sheet.iter_rows() for cell in row]
    assert "'=1+1" in values and "=1+1" not in values


def test_a_database_refusal_is_shown_not_a_stack_trace(client, login_as, db):
    # Editing a customer's phone to one already registered: the unique key refuses it.
    agent = login_as("agent")
    project = f.project(db.session)
    f.lead(db.session, owner=agent, project_=project, phone="13800138000")
    other = f.lead(db.session, owner=agent, project_=project, phone="13900139000", name="原名")
    db.session.commit()
    token = Auth(client).csrf()
    response = client.post(f"/admin/lead/edit/?id={other.id}", data={
        "csrf_token": token, "project": project.id, "name": "改名", "phone": "13800138000",
        "source": "walk_in"}, follow_redirects=True)
    assert response.status_code == 200
    assert "数据库" in response.get_data(as_text=True)  # the friendly message, in Chinese
    db.session.expire_all()
    assert db.session.get(Lead, other.id).name == "原名"


def test_coded_values_are_chosen_from_a_list_not_typed(client, login_as, db):
    login_as("agent")
    form = client.get("/admin/follow_up/new/").get_data(as_text=True)
    assert '<select' in form and 'value="wechat"' in form and "微信" in form
    lead_form = client.get("/admin/lead/new/").get_data(as_text=True)
    assert 'value="walk_in"' in lead_form and "来访" in lead_form


def test_an_unknown_coded_value_is_a_form_error_in_chinese(client, login_as, db):
    agent = login_as("agent")
    lead = f.lead(db.session, owner=agent)
    db.session.commit()
    token = Auth(client).csrf()
    response = client.post("/admin/follow_up/new/", data={
        "csrf_token": token, "lead": lead.id, "channel": "carrier-pigeon", "content": "试试"})
    assert response.status_code == 200  # the form again, with the error
    from models import FollowUp
    assert db.session.query(FollowUp).count() == 0
    page = response.get_data(as_text=True)
    assert "不是有效的选择" in page  # the field's error
    assert "创建记录失败" in page and "Failed to create record" not in page  # the flash


def test_bulk_actions_refuse_ids_that_are_not_numbers_and_delete_by_integer_ids(client, login_as, db):
    login_as("sales_control")
    unit_id = f.unit(db.session).id
    db.session.commit()
    token = Auth(client).csrf()
    response = client.post("/admin/unit/action/", data={"csrf_token": token, "action": "delete",
                                                        "rowid": ["1 OR 1=1"]}, follow_redirects=True)
    assert response.status_code == 200 and "未作任何更改" in response.get_data(as_text=True)
    response = client.post("/admin/unit/action/", data={"csrf_token": token, "action": "delete",
                                                        "rowid": [str(unit_id)]})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Unit, unit_id) is None  # an unsold, unreferenced unit can be deleted
