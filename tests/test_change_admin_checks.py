"""Two findings of the outside review on the screens of deal changes (issue 21): a project's
approval chains are checked when the administrator saves the project (R-CHG-1), and a swap reaches
every unit on sale however large the project (R-CHG-2) — through the real HTTP client with CSRF."""
from __future__ import annotations

import json
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


def test_r_chg_1_a_stored_chain_the_form_would_refuse_is_refused_when_a_change_is_asked(db, make_deal):
    from models.change_requests import chain_for
    from tests.support.rules import raises_rule
    deal = make_deal()
    sub, project = deal["sub"], deal["project"]
    for bad, words in ((["sales_manager"], "roles that approve it in order"),
                       ({"cancellation": ["vp"] * 8}, "at most 4"),
                       ({"swap": ["vp"]}, "not a kind of change")):
        project.change_chains = bad
        with raises_rule("R-CHG-1", match=words):
            chain_for(db.session, sub, "buyers", {})
    db.session.rollback()
