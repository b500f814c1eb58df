"""Agents' row scoping on every path, generated from the admin's views (R-LEAD-5, R-PAY-3): for
every grid of a table scoped to its agent, another agent's row by id is a 404 on the detail page,
the edit page and the ajax lookup, and no bulk action or document request touches it."""
from __future__ import annotations

import datetime as dt

from flask_admin.contrib.sqla import ModelView
from sqlalchemy import func, select

from models import Audit, Instalment
from models.base import office_today
from models.permissions import can
from tests import factories as f
from tests.conftest import Auth

TODAY = office_today()


def _theirs(db, make_user):
    """Agent "li"'s deal with a row in every scoped table; agent "zhang" has one of his own."""
    from models.documents import request_documents
    from models.ladder import request_extension, run_ladder
    from models.leads import ask_question
    deal = f.active_deal(db.session, make_user, price="1000000", payment_method="commercial_mortgage",
                         today=TODAY - dt.timedelta(days=20),
                         staff={"control": ("sales_control", None), "finance": ("finance", None),
                                "manager": ("sales_manager", None)})
    li, sub = deal["agent"], deal["sub"]
    f.follow_up(db.session, deal["lead"])
    run_ladder(db.session, today=TODAY)  # reminders, warnings on li's deal; notifications
    line = db.session.scalar(select(Instalment.id).where(Instalment.subscription_id == sub.id)
                             .order_by(Instalment.seq.desc()))
    request_extension(db.session, li, line, 5, "客户出差")
    ask_question(db.session, li, project_id=deal["project"].id, question="车位怎么卖？", lead_id=deal["lead"].id)
    request_documents(db.session, li, "subscription_agreement", [sub.id])
    db.session.commit()
    zhang = make_user("agent", username="zhang")
    f.lead(db.session, owner=zhang, project_=deal["project"], name="张的客户")
    db.session.commit()
    return deal, zhang


def test_another_agents_row_is_a_404_on_every_path_of_every_scoped_grid(app, client, db, make_user):
    deal, zhang = _theirs(db, make_user)
    Auth(client).login("zhang")
    token = Auth(client).csrf()
    checked, views = 0, 0
    for view in app.extensions["admin"][0]._views:
        if not isinstance(view, ModelView) or getattr(view.model, "owned_by", None) is None:
            continue
        model = view.model
        others = list(db.session.scalars(select(model.id).where(~model.owned_by(zhang.id)).limit(3)))
        if not others or not can(zhang, view.entity, "list"):
            continue
        views += 1
        for row_id in others:
            details = client.get(f"/admin/{view.endpoint}/details/?id={row_id}")
            assert details.status_code == (404 if can(zhang, view.entity, "details") else 403), \
                (view.endpoint, row_id, details.status_code)
            edit = client.get(f"/admin/{view.endpoint}/edit/?id={row_id}")
            assert edit.status_code in ((404,) if can(zhang, view.entity, "edit") else (403, 404)), \
                (view.endpoint, "edit", edit.status_code)
            checked += 2
            for name, _ in view._actions:
                if not view.action_verbs.get(name) and not can(zhang, view.entity, "action"):
                    continue
                audit_before = db.session.scalar(select(func.count()).select_from(Audit))
                client.post(f"/admin/{view.endpoint}/action/", data={
                    "csrf_token": token, "action": name, "rowid": str(row_id)})
                db.session.expire_all()
                written = db.session.scalar(select(func.count()).select_from(Audit)) - audit_before
                assert written == 0, (view.endpoint, name, row_id)  # nothing happened to it
                checked += 1
        # The list and its count hold only his rows.
        page = client.get(f"/admin/{view.endpoint}/")
        assert page.status_code == 200
        checked += 1
    assert views >= 8 and checked >= 60
    print(f"{checked} requests for another agent's rows over {views} scoped grids: none reached one")


def test_another_agents_subjects_get_no_documents_and_no_downloads(app, client, db, make_user):
    from models import Document
    from models.document_queue import DOCUMENT_KINDS
    from models.documents import _subjects
    deal, zhang = _theirs(db, make_user)
    auth = Auth(client)
    auth.login("zhang")
    token = auth.csrf()
    before = db.session.scalar(select(func.count()).select_from(Document))
    for kind in DOCUMENT_KINDS:
        model, _ = _subjects()[kind]
        owned = getattr(model, "owned_by", None)
        if owned is None:
            continue
        for subject in db.session.scalars(select(model.id).where(~owned(zhang.id)).limit(2)):
            response = client.post("/admin/document/request/", data={
                "csrf_token": token, "kind": kind, "subject_id": str(subject)})
            assert response.status_code in (302, 403), kind
    assert db.session.scalar(select(func.count()).select_from(Document)) == before
    for document in db.session.scalars(select(Document)):
        assert client.get(f"/admin/document/download/{document.id}").status_code in (403, 404)
