"""Two findings of the outside review on the screens of deal changes (issue 21): a project's
approval chains are checked when the administrator saves the project (R-CHG-1), and a swap reaches
every unit on sale however large the project (R-CHG-2) — through the real HTTP client with CSRF."""
from __future__ import annotations

import json
import re
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from sqlalchemy import func, insert, select

from models import Building, ChangeRequest, Project, Subscription, Unit
from tests import factories as f
from tests.conftest import Auth, submission_key


class _Fields(HTMLParser):
    """The named fields of the page's main form as a browser sends them (inputs, checked boxes,
    selected options, textareas)."""

    def __init__(self):
        super().__init__()
        self.data: dict[str, str] = {}
        self._select = self._textarea = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.data[name] = a.get("value") or ("y" if a.get("type") == "checkbox" else "")
        elif tag == "select" and name:
            self._select = name
            self.data.setdefault(name, "")
        elif tag == "option" and self._select and "selected" in a:
            self.data[self._select] = a.get("value", "")
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] += data


def _form(html: str) -> dict:
    parser = _Fields()
    parser.feed(html)
    return {k: v for k, v in parser.data.items() if k not in ("q", "search")}


def _signed_in(app, username, lang=None):
    client = app.test_client()
    assert Auth(client).login(username).status_code == 302
    token = Auth(client).csrf()
    if lang:
        client.post("/language", data={"lang": lang, "next": "/admin/", "csrf_token": token})
    return client, token


# --- R-CHG-1: the project's approval chains, checked when saved -----------------------------------

BAD_CHAINS = [
    pytest.param('["sales_manager"]', "roles that approve it in order", id="not-a-dict"),
    pytest.param('"sales_manager"', "roles that approve it in order", id="a-string"),
    pytest.param("", "roles that approve it in order", id="blank"),
    pytest.param('{"refund": ["sales_manager"]}', "not a kind of change", id="unknown-kind"),
    pytest.param('{"buyers": []}', "names no approver", id="empty-chain"),
    pytest.param('{"buyers": "sales_manager"}', "names no approver", id="chain-not-a-list"),
    pytest.param('{"buyers": ["finance"]}', "cannot decide changes", id="role-cannot-decide"),
    pytest.param('{"buyers": ["boss"]}', "cannot decide changes", id="unknown-role"),
    pytest.param('{"buyers": [1]}', "cannot decide changes", id="role-not-text"),
    pytest.param('{"price": ["sales_manager", "vp", "sales_manager"]}', "twice", id="repeated-role"),
    pytest.param(json.dumps({"cancellation": ["sales_manager", "vp"] * 4}), "at most 4", id="eight-roles"),
]


@pytest.mark.parametrize("chains, words", BAD_CHAINS)
def test_r_chg_1_the_project_form_refuses_bad_approval_chains_and_saves_nothing(app, db, make_user, chains, words):
    make_user("admin", username="boss")
    project = f.project(db.session)
    db.session.commit()
    before = dict(project.change_chains)
    client, token = _signed_in(app, "boss", lang="en")
    data = _form(client.get(f"/admin/project/edit/?id={project.id}").get_data(as_text=True))
    assert "change_chains" in data and "step_prerequisites" in data
    data.update({"csrf_token": token, "change_chains": chains, "name": "改名的项目"})
    page = client.post(f"/admin/project/edit/?id={project.id}", data=data, follow_redirects=True)
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert words in text and "R-CHG-1" in text
    assert "The server could not finish the request" not in text
    db.session.expire_all()
    saved = db.session.get(Project, project.id)
    assert saved.change_chains == before and saved.name != "改名的项目"


def test_r_chg_1_the_project_form_saves_good_chains_and_requests_follow_them(app, db, make_user):
    make_user("admin", username="boss")
    project = f.project(db.session)
    db.session.commit()
    client, token = _signed_in(app, "boss")
    data = _form(client.get(f"/admin/project/edit/?id={project.id}").get_data(as_text=True))
    data.update({"csrf_token": token, "change_chains": '{"buyers": ["vp"], "price": ["sales_manager", "vp"]}'})
    page = client.post(f"/admin/project/edit/?id={project.id}", data=data, follow_redirects=True)
    assert page.status_code == 200
    db.session.expire_all()
    assert db.session.get(Project, project.id).change_chains == {"buyers": ["vp"], "price": ["sales_manager", "vp"]}


def test_r_chg_1_a_stored_chain_the_form_would_refuse_is_refused_when_a_change_is_asked(app, db, make_deal):
    from flask_babel import force_locale

    from models.change_requests import chain_for
    from tests.support.rules import raises_rule
    deal = make_deal()
    sub, project = deal["sub"], deal["project"]
    for bad, words in ((["sales_manager"], "roles that approve it in order"),
                       ({"cancellation": ["vp"] * 8}, "at most 4"),
                       ({"swap": ["vp"]}, "not a kind of change")):
        project.change_chains = bad
        with force_locale("en"), raises_rule("R-CHG-1", match=words):  # the msgids' words
            chain_for(db.session, sub, "buyers", {})
    db.session.rollback()


# --- R-CHG-2: a swap reaches every unit on sale, however large the project ----------------------

STAFF = {"control": ("sales_control", "chen"), "finance": ("finance", "zhao"), "manager": ("sales_manager", "wang")}
SELECT = re.compile(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', re.S)


def _selects(html: str) -> dict[str, list[str]]:
    """Each select of the page: its option values."""
    return {name: re.findall(r'<option[^>]*value="([^"]*)"', body) for name, body in SELECT.findall(html)}


def _buildings_on_sale(db, project, names=("A栋", "B栋", "C栋"), floors=35, per_floor=20) -> list[Building]:
    """2,100 units on sale: three buildings of 35 floors of 20, inserted at once."""
    buildings = [f.building(db.session, project, name=name, floors=floors) for name in names]
    db.session.execute(insert(Unit), [
        {"building_id": b.id, "floor": floor, "position": pos, "number": f"{floor}{pos:02d}", "layout": "3室2厅",
         "area": Decimal("98.50"), "list_price": Decimal("1200000.00"), "status": "available"}
        for b in buildings for floor in range(1, floors + 1) for pos in range(1, per_floor + 1)])
    db.session.commit()
    return buildings


def test_r_chg_2_a_swap_reaches_the_last_of_2100_units_on_sale_through_the_building_chooser(app, db, make_deal):
    deal = make_deal(staff=STAFF)
    sub = deal["sub"]
    _, _, c = _buildings_on_sale(db, deal["project"])
    on_sale = db.session.scalar(select(func.count()).select_from(Unit).join(Building).where(
        Building.project_id == deal["project"].id, Unit.status == "available"))
    assert on_sale >= 2100
    last = db.session.scalars(select(Unit).where(Unit.building_id == c.id, Unit.number == "3520")).one()
    client, token = _signed_in(app, "li", lang="en")
    page = client.post("/admin/subscription/action/", data={
        "csrf_token": token, "action": "change_unit", "rowid": sub.id}).get_data(as_text=True)
    selects = _selects(page)
    # No select of thousands: the building (a large one's floors a range at a time), then its units.
    assert max(len(values) for values in selects.values()) <= 501
    assert f"{c.id}:1-25" in selects["part"] and f"{c.id}:26-35" in selects["part"]
    assert "C栋, floors 26–35 (200 on sale)" in page
    assert str(last.id) not in selects["unit_id"]
    data = {"csrf_token": token, "ids": str(sub.id), "reason": "客户要顶层", "submission_key": submission_key(page)}
    # The chooser's button shows the part's units and sends nothing.
    shown = client.post("/admin/subscription/change_unit/", data={
        **data, "part": f"{c.id}:26-35", "unit_id": "", "refresh": "y"}).get_data(as_text=True)
    assert str(last.id) in _selects(shown)["unit_id"] and len(_selects(shown)["unit_id"]) == 201
    assert f"{last} · 3室2厅 · 98.5 m²" in shown
    assert db.session.scalar(select(func.count()).select_from(ChangeRequest)) == 0
    # A unit of another project is not a choice: the form again, nothing written.
    foreign = f.unit(db.session)
    db.session.commit()
    refused = client.post("/admin/subscription/change_unit/", data={
        **data, "part": f"{c.id}:26-35", "unit_id": str(foreign.id)})
    assert refused.status_code == 200 and 'name="unit_id"' in refused.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(ChangeRequest)) == 0
    # The last unit, chosen: requested, then approved by the manager — the deal is on it.
    done = client.post("/admin/subscription/change_unit/", data={**data, "part": f"{c.id}:26-35",
                                                                  "unit_id": str(last.id)}, follow_redirects=True)
    assert done.status_code == 200
    change = db.session.scalars(select(ChangeRequest)).one()
    assert change.proposal["unit_id"] == last.id
    manager, manager_token = _signed_in(app, "wang")
    manager.post("/admin/change_request/action/", data={"csrf_token": manager_token, "action": "approve",
                                                         "rowid": change.id}, follow_redirects=True)
    db.session.expire_all()
    assert db.session.get(Subscription, sub.id).unit_id == last.id
    assert db.session.get(Unit, last.id).status == "subscribed"


def test_r_chg_2_a_unit_chosen_before_the_building_was_changed_is_taken_as_chosen(app, db, make_deal):
    deal = make_deal(staff=STAFF)
    sub = deal["sub"]
    a, _, c = _buildings_on_sale(db, deal["project"], floors=2, per_floor=2)
    chosen = db.session.scalars(select(Unit).where(Unit.building_id == a.id, Unit.number == "101")).one()
    client, token = _signed_in(app, "li")
    page = client.post("/admin/subscription/action/", data={
        "csrf_token": token, "action": "change_unit", "rowid": sub.id}).get_data(as_text=True)
    client.post("/admin/subscription/change_unit/", data={
        "csrf_token": token, "ids": str(sub.id), "reason": "换房", "submission_key": submission_key(page),
        "part": f"{c.id}:1-2", "unit_id": str(chosen.id)})
    change = db.session.scalars(select(ChangeRequest)).one()
    assert change.proposal["unit_id"] == chosen.id
