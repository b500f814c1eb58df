"""The screens of deal changes (R-CHG-1…4): requesting from the deal, deciding on the change
request's page and grid, a deal's buyers — through the real HTTP client with CSRF, each person in
their own session."""
from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from models import ChangeRequest, ChangeStep, DealBuyer, Document, Subscription, Unit
from tests import factories as f
from tests.support.jobs import drain
from tests.conftest import Auth, submission_key

OTHER_ID = "11010519491231002X"  # a second valid resident ID (check digit X)


@pytest.fixture
def deal(db, make_deal):
    """An active deal of agent "li" on a ¥1,000,000 unit, a second unit on sale in the same
    project, a manager "wang", a vice-president "vp" and a second agent "zhang"."""
    people = make_deal(staff={"control": ("sales_control", "chen"), "finance": ("finance", "zhao"),
                              "manager": ("sales_manager", "wang"), "vp": ("vp", "vp"),
                              "other": ("agent", "zhang")})
    target = f.unit(db.session, people["unit"].building, list_price=Decimal("1250000.00"), number="1501",
                    layout="3室2厅", area=Decimal("98.50"))
    db.session.commit()
    return {**people, "target": target}


def _signed_in(app, username):
    client = app.test_client()
    assert Auth(client).login(username).status_code == 302
    return client, Auth(client).csrf()


def _open(client, token, view, action, row_id):
    """A step's form, opened from the action menu as its button does."""
    return client.post(f"/admin/{view}/action/", data={"csrf_token": token, "action": action, "rowid": row_id})


def _changes(db) -> int:
    return db.session.scalar(select(func.count()).select_from(ChangeRequest))


def _request_swap(client, token, deal, reason="客户想换到高楼层"):
    page = _open(client, token, "subscription", "change_unit", deal["sub"].id).get_data(as_text=True)
    data = {"csrf_token": token, "ids": str(deal["sub"].id), "unit_id": str(deal["target"].id), "reason": reason,
            "submission_key": submission_key(page)}
    return page, client.post("/admin/subscription/change_unit/", data=data, follow_redirects=True)


def test_r_chg_1_an_agent_requests_a_unit_swap_of_own_deal_from_the_deal(app, db, deal):
    client, token = _signed_in(app, "li")
    details = client.get(f"/admin/subscription/details/?id={deal['sub'].id}").get_data(as_text=True)
    assert 'data-step="change_unit"' in details and 'data-step="cancel_deal"' in details
    page, done = _request_swap(client, token, deal)
    # The new unit as staff pick it: name · layout · area · list price.
    assert f"{deal['target']} · 3室2厅 · 98.5 m² · ¥1,250,000.00" in page
    assert done.status_code == 200
    change = db.session.scalars(select(ChangeRequest)).one()
    assert (change.kind, change.status, change.proposal["unit_id"]) == ("unit_swap", "requested", deal["target"].id)
    assert str(change) in done.get_data(as_text=True)
    # The deal now shows the change waiting, and no second request button.
    details = client.get(f"/admin/subscription/details/?id={deal['sub'].id}").get_data(as_text=True)
    assert str(change) in details and 'data-step="change_unit"' not in details
    assert "change-pending" in details
    grid = client.get("/admin/subscription/").get_data(as_text=True)
    assert "status-change_pending" in grid


def test_r_chg_1_an_agent_cannot_request_a_change_of_another_agents_deal(app, db, deal):
    client, token = _signed_in(app, "zhang")
    assert 'data-step="change_unit"' not in client.get("/admin/subscription/").get_data(as_text=True)
    page = _open(client, token, "subscription", "change_unit", deal["sub"].id)
    assert "submission_key" not in page.get_data(as_text=True)  # no form for a deal that is not his
    sent = client.post("/admin/subscription/change_unit/", data={
        "csrf_token": token, "ids": str(deal["sub"].id), "unit_id": str(deal["target"].id), "reason": "想换",
        "submission_key": "k" * 32}, follow_redirects=True)
    assert sent.status_code == 200
    assert _changes(db) == 0
    # Roles without change.request are refused at the door: sales control, finance.
    for username in ("chen", "zhao"):
        other, other_token = _signed_in(app, username)
        refused = other.post("/admin/subscription/change_unit/", data={
            "csrf_token": other_token, "ids": str(deal["sub"].id), "unit_id": str(deal["target"].id),
            "reason": "想换", "submission_key": "k" * 32})
        assert refused.status_code == 403
        assert _open(other, other_token, "subscription", "change_unit", deal["sub"].id).status_code == 403
    assert _changes(db) == 0


def test_r_chg_2_the_manager_approves_a_swap_from_the_grid_and_the_units_change_at_once(app, db, deal):
    client, token = _signed_in(app, "li")
    _request_swap(client, token, deal)
    change = db.session.scalars(select(ChangeRequest)).one()
    manager, manager_token = _signed_in(app, "wang")
    grid = manager.get("/admin/change_request/").get_data(as_text=True)
    assert str(change) in grid and 'data-step="approve"' in grid
    assert "¥1,000,000.00 → ¥1,250,000.00" in grid  # the difference in one line
    # The agent sees the request but no decision buttons: not his to decide.
    agent_grid = client.get("/admin/change_request/").get_data(as_text=True)
    assert str(change) in agent_grid and 'data-step="approve"' not in agent_grid
    done = manager.post("/admin/change_request/action/", data={
        "csrf_token": manager_token, "action": "approve", "rowid": change.id}, follow_redirects=True)
    assert done.status_code == 200
    db.session.expire_all()
    change = db.session.get(ChangeRequest, change.id)
    assert change.status == "approved" and change.applied_at is not None
    sub = db.session.get(Subscription, deal["sub"].id)
    assert sub.unit_id == deal["target"].id
    assert db.session.get(Unit, deal["unit"].id).status == "available"
    assert db.session.get(Unit, deal["target"].id).status == "subscribed"
    details = manager.get(f"/admin/change_request/details/?id={change.id}").get_data(as_text=True)
    assert 'id="before-after"' in details and str(deal["target"]) in details
    assert 'data-decision="approved"' in details and 'data-step="approve"' not in details
    # Item 7: the addendum was requested with the approval and handed to the workers after the
    # commit (the embedded queue renders it at once; with Redis, a worker's burst does): one
    # document, done, for the agent too.
    drain(app)
    db.session.expire_all()
    addenda = db.session.scalars(select(Document).where(Document.kind == "addendum")).all()
    assert [(d.subject_id, d.status) for d in addenda] == [(change.id, "done")]
    assert client.get(f"/admin/document/download/{addenda[0].id}").status_code == 200


def test_r_chg_1_a_decision_posted_twice_records_one_step(app, db, deal):
    client, token = _signed_in(app, "li")
    _request_swap(client, token, deal)
    change = db.session.scalars(select(ChangeRequest)).one()
    manager, manager_token = _signed_in(app, "wang")
    page = _open(manager, manager_token, "change_request", "send_back", change.id).get_data(as_text=True)
    data = {"csrf_token": manager_token, "ids": str(change.id), "note": "请附上客户的书面申请",
            "submission_key": submission_key(page)}
    first = manager.post("/admin/change_request/send_back/", data=data, follow_redirects=True)
    again = manager.post("/admin/change_request/send_back/", data=data, follow_redirects=True)
    assert first.status_code == again.status_code == 200
    assert db.session.scalar(select(func.count()).select_from(ChangeStep)) == 1
    db.session.expire_all()
    assert db.session.get(ChangeRequest, change.id).status == "sent_back"
    # The requester resubmits with the kind's form, prefilled; then approve twice: one more step.
    page = _open(client, token, "change_request", "resubmit", change.id).get_data(as_text=True)
    assert "请附上客户的书面申请" in page and f'<option selected value="{deal["target"].id}">' in page
    client.post("/admin/change_request/resubmit/", data={
        "csrf_token": token, "ids": str(change.id), "unit_id": str(deal["target"].id),
        "reason": "客户已提交书面申请", "submission_key": submission_key(page)})
    db.session.expire_all()
    assert db.session.get(ChangeRequest, change.id).status == "requested"
    approve = {"csrf_token": manager_token, "action": "approve", "rowid": change.id}
    manager.post("/admin/change_request/action/", data=approve)
    second = manager.post("/admin/change_request/action/", data=approve, follow_redirects=True)
    assert second.status_code == 200
    assert db.session.scalar(select(func.count()).select_from(ChangeStep)) == 2


def _buyers_form(client, token, deal):
    page = _open(client, token, "subscription", "change_buyers", deal["sub"].id).get_data(as_text=True)
    return page, {"csrf_token": token, "ids": str(deal["sub"].id), "reason": "增加配偶为权益人",
                  "submission_key": submission_key(page)}


def _buyer_row(data, i, name, id_number, phone, share, id_type="resident_id"):
    data.update({f"buyers-{i}-name": name, f"buyers-{i}-id_type": id_type, f"buyers-{i}-id_number": id_number,
                 f"buyers-{i}-phone": phone, f"buyers-{i}-share": share})


def test_r_chg_3_shares_of_90_percent_show_the_total_and_write_nothing(app, db, deal):
    client, token = _signed_in(app, "li")
    page, data = _buyers_form(client, token, deal)
    # Prefilled with the current buyer; the agent reads the ID number masked.
    assert "110*" in page and f.VALID_ID_NUMBER not in page
    masked = re.search(r'name="buyers-0-id_number"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="buyers-0-id_number"',
                       page)
    shown = masked.group(1) or masked.group(2)
    _buyer_row(data, 0, deal["lead"].name, shown, "13800138000", "60")
    _buyer_row(data, 1, "王芳", OTHER_ID, "13900139000", "30")
    refused = client.post("/admin/subscription/change_buyers/", data=data).get_data(as_text=True)
    assert re.search(r"90 ?%", refused) and 'name="buyers-1-name"' in refused  # the form again, with the message
    assert "The shares add up" not in refused  # in the user's language: Chinese by default
    assert _changes(db) == 0
    # In English, the same refusal in English.
    client.post("/language", data={"lang": "en", "next": "/admin/", "csrf_token": token})
    refused = client.post("/admin/subscription/change_buyers/", data=data).get_data(as_text=True)
    assert "The shares add up to 90 %, not 100 %." in refused
    assert _changes(db) == 0
    # 60 + 40: requested; the masked number left as shown is the buyer's own.
    data["buyers-1-share"] = "40"
    client.post("/admin/subscription/change_buyers/", data=data)
    change = db.session.scalars(select(ChangeRequest)).one()
    first, second = change.proposal["buyers"]
    assert first["id_number"] == f.VALID_ID_NUMBER and second["id_number"] == OTHER_ID


def test_r_chg_3_the_vice_president_reads_buyers_id_numbers_masked(app, db, deal):
    client, token = _signed_in(app, "li")
    page, data = _buyers_form(client, token, deal)
    _buyer_row(data, 0, deal["lead"].name, f.VALID_ID_NUMBER, "13800138000", "50")
    _buyer_row(data, 1, "王芳", OTHER_ID, "13900139000", "50")
    client.post("/admin/subscription/change_buyers/", data=data)
    change = db.session.scalars(select(ChangeRequest)).one()
    vp, _ = _signed_in(app, "vp")
    for path in (f"/admin/change_request/details/?id={change.id}", "/admin/deal_buyer/",
                 f"/admin/subscription/details/?id={deal['sub'].id}"):
        page = vp.get(path).get_data(as_text=True)
        assert f.VALID_ID_NUMBER not in page and OTHER_ID not in page, path
        assert "13900139000" not in page and "13800138000" not in page, path
    details = vp.get(f"/admin/change_request/details/?id={change.id}").get_data(as_text=True)
    assert "110***********457" in details and "139****9000" in details
    # Finance reads them whole (models.permissions.SEES_ID_NUMBER).
    finance, _ = _signed_in(app, "zhao")
    assert OTHER_ID in finance.get(f"/admin/change_request/details/?id={change.id}").get_data(as_text=True)


def test_r_chg_1_the_export_of_change_requests_neutralises_formulas(app, db, deal):
    client, token = _signed_in(app, "li")
    _request_swap(client, token, deal, reason="=HYPERLINK(\"http://x\",\"点我\")")
    assert _changes(db) == 1
    manager, _ = _signed_in(app, "wang")
    response = manager.get("/admin/change_request/export/csv/")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    cells = [cell for row in rows[1:] for cell in row]
    assert "'=HYPERLINK(\"http://x\",\"点我\")" in cells
    assert not any(cell.startswith("=") for cell in cells)
    # Agents do not export change requests (models.permissions: export amfv).
    assert client.get("/admin/change_request/export/csv/").status_code == 403


def test_r_chg_1_agents_see_only_their_own_deals_requests_and_withdraw_their_own(app, db, deal):
    client, token = _signed_in(app, "li")
    _request_swap(client, token, deal)
    change = db.session.scalars(select(ChangeRequest)).one()
    other, _ = _signed_in(app, "zhang")
    assert str(change) not in other.get("/admin/change_request/").get_data(as_text=True)
    assert other.get(f"/admin/change_request/details/?id={change.id}").status_code == 404
    assert other.get("/admin/deal_buyer/").status_code == 200
    assert deal["lead"].name not in other.get("/admin/deal_buyer/").get_data(as_text=True)
    # The agent withdraws his own request; the deal takes requests again.
    assert 'name="reason"' in _open(client, token, "change_request", "withdraw", change.id).get_data(as_text=True)
    client.post("/admin/change_request/withdraw/", data={"csrf_token": token, "ids": str(change.id),
                                                          "reason": "客户改变主意"})
    db.session.expire_all()
    assert db.session.get(ChangeRequest, change.id).status == "withdrawn"
    details = client.get(f"/admin/subscription/details/?id={deal['sub'].id}").get_data(as_text=True)
    assert 'data-step="change_unit"' in details and "change-pending" not in details
    assert db.session.scalar(select(func.count()).select_from(DealBuyer)) >= 1


def test_r_chg_4_a_cancellation_shows_the_refund_and_waits_for_the_manager_then_the_vice_president(app, db, deal):
    client, token = _signed_in(app, "li")
    page = _open(client, token, "subscription", "cancel_deal", deal["sub"].id).get_data(as_text=True)
    data = {"csrf_token": token, "ids": str(deal["sub"].id), "reason": "客户家庭原因退房", "retain_deposit": "y",
            "fee": "", "submission_key": submission_key(page)}
    client.post("/admin/subscription/cancel_deal/", data=data)
    change = db.session.scalars(select(ChangeRequest)).one()
    assert change.kind == "cancellation" and change.proposal["retain_deposit"] is True
    manager, manager_token = _signed_in(app, "wang")
    details = manager.get(f"/admin/change_request/details/?id={change.id}").get_data(as_text=True)
    assert "¥50,000.00" in details and 'data-step="approve"' in details  # paid 50,000, all retained
    # The vice-president's step comes second: no button for him yet.
    vp, vp_token = _signed_in(app, "vp")
    assert 'data-step="approve"' not in vp.get(f"/admin/change_request/details/?id={change.id}").get_data(as_text=True)
    manager.post("/admin/change_request/action/", data={"csrf_token": manager_token, "action": "approve",
                                                         "rowid": change.id})
    db.session.expire_all()
    assert (db.session.get(ChangeRequest, change.id).status, db.session.get(ChangeRequest, change.id).step) == (
        "requested", 1)
    deal_page = client.get(f"/admin/subscription/details/?id={deal['sub'].id}").get_data(as_text=True)
    assert "change-pending" in deal_page and str(change) in deal_page
    details = vp.get(f"/admin/change_request/details/?id={change.id}").get_data(as_text=True)
    assert 'data-step="approve"' in details
    vp.post("/admin/change_request/action/", data={"csrf_token": vp_token, "action": "approve", "rowid": change.id})
    db.session.expire_all()
    assert db.session.get(Subscription, deal["sub"].id).status == "cancelled"
    assert db.session.get(Unit, deal["unit"].id).status == "available"


def test_r_chg_1_a_refused_request_shows_its_form_again_with_the_reason(app, db, deal):
    client, token = _signed_in(app, "li")
    page = _open(client, token, "subscription", "change_price", deal["sub"].id).get_data(as_text=True)
    assert 'value="1000000.00"' in page  # prefilled with the price now
    data = {"csrf_token": token, "ids": str(deal["sub"].id), "price": "1,000,000", "reason": "客户议价",
            "submission_key": submission_key(page)}
    again = client.post("/admin/subscription/change_price/", data=data).get_data(as_text=True)
    assert "¥1,000,000.00" in again and 'name="price"' in again and "R-CHG-1" in again
    page = _open(client, token, "subscription", "change_method", deal["sub"].id).get_data(as_text=True)
    assert '<option selected value="one_off">' in page
    data = {"csrf_token": token, "ids": str(deal["sub"].id), "payment_method": "one_off", "reason": "改按揭",
            "submission_key": submission_key(page)}
    again = client.post("/admin/subscription/change_method/", data=data).get_data(as_text=True)
    assert 'name="payment_method"' in again and "R-PAY-2" in again
    assert _changes(db) == 0


def test_r_chg_3_an_approved_buyer_change_shows_the_new_buyers_and_keeps_the_former_one(app, db, deal):
    client, token = _signed_in(app, "li")
    page, data = _buyers_form(client, token, deal)
    _buyer_row(data, 0, "王芳", OTHER_ID, "13900139000", "100")
    client.post("/admin/subscription/change_buyers/", data=data)
    change = db.session.scalars(select(ChangeRequest)).one()
    manager, manager_token = _signed_in(app, "wang")
    manager.post("/admin/change_request/action/", data={"csrf_token": manager_token, "action": "approve",
                                                         "rowid": change.id})
    db.session.expire_all()
    assert db.session.get(ChangeRequest, change.id).status == "approved"
    details = client.get(f"/admin/subscription/details/?id={deal['sub'].id}").get_data(as_text=True)
    current = details.split('id="buyers"', 1)[1].split("</table>", 1)[0]
    assert "王芳" in current and deal["lead"].name not in current
    former = details.split('class="former-buyers"', 1)[1]
    assert deal["lead"].name in former and str(change) in former
    grid = client.get("/admin/deal_buyer/").get_data(as_text=True)
    assert grid.index("王芳") < grid.index(deal["lead"].name)  # current first
