"""R-ALL-2: every change through the session is recorded; payments and audit rows never change."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from models import Audit, Lead, Payment
from models.audit import audit_context
from tests import factories as f
from tests.support.rules import raises_rule
from tests.conftest import Auth


def _rows(db, entity, entity_id=None):
    query = select(Audit).where(Audit.entity == entity).order_by(Audit.id)
    if entity_id is not None:
        query = query.where(Audit.entity_id == str(entity_id))
    return db.session.scalars(query).all()


def test_r_all_2_insert_update_delete_each_write_an_audit_row(db, make_user):
    manager = make_user("sales_manager")
    s = db.session
    with audit_context(s, actor=manager):
        project = f.project(s, name="旧名")
        s.commit()
        project.name = "新名"
        s.commit()
        building = f.building(s, project)
        s.commit()
        s.delete(building)
        s.commit()
    inserted, updated = _rows(db, "project", project.id)
    assert inserted.action == "insert" and inserted.changes["name"] == "旧名"
    assert updated.action == "update" and updated.changes == {"name": ["旧名", "新名"]}
    assert {r.actor_id for r in (inserted, updated)} == {manager.id}
    assert [r.action for r in _rows(db, "building", building.id)] == ["insert", "delete"]


def test_r_all_2_a_grid_edit_is_attributed_to_the_logged_in_user(client, login_as, db):
    agent = login_as("agent")
    lead = f.lead(db.session, owner=agent, name="陈女士")
    db.session.commit()
    token = Auth(client).csrf()
    client.post(f"/admin/lead/edit/?id={lead.id}", data={
        "csrf_token": token, "project": lead.project_id, "name": "陈女士（改）",
        "phone": lead.phone, "source": "walk_in"})
    row = _rows(db, "lead", lead.id)[-1]
    assert row.action == "update" and row.actor_id == agent.id
    assert row.changes["name"] == ["陈女士", "陈女士（改）"]
    assert row.at is not None


def test_domain_functions_name_their_action(db, make_user):
    admin = make_user("admin")
    with audit_context(db.session, actor=admin, action="assign"):
        f.lead(db.session, owner=admin)
        db.session.commit()
    assert _rows(db, "lead")[-1].action == "assign"


def test_passwords_and_session_tokens_never_reach_the_audit(db, make_user):
    user = make_user("agent")
    user.set_password("another-password")
    db.session.commit()
    for row in _rows(db, "user", user.id):
        text = str(row.changes)
        assert user.password_hash not in text and user.session_token not in text


def test_r_all_2_payments_are_never_deleted_or_edited_through_the_orm(db, make_user):
    inst = f.instalment(db.session, f.subscription(db.session, make_user("agent")))
    payment = f.payment(db.session, inst, make_user("finance"))
    db.session.commit()
    db.session.delete(payment)
    with raises_rule("R-ALL-2"):
        db.session.flush()
    db.session.rollback()
    payment = db.session.get(Payment, payment.id)
    payment.amount = Decimal("1.00")
    with raises_rule("R-ALL-2"):
        db.session.flush()
    db.session.rollback()
    assert db.session.get(Payment, payment.id).amount == Decimal("10000.00")


def test_audit_rows_are_never_deleted_or_edited_through_the_orm(db, make_user):
    make_user("agent")
    row = db.session.scalars(select(Audit)).first()
    row.action = "forged"
    with raises_rule("R-ALL-2"):
        db.session.flush()
    db.session.rollback()
    db.session.delete(db.session.scalars(select(Audit)).first())
    with raises_rule("R-ALL-2"):
        db.session.flush()
    db.session.rollback()


def test_a_rolled_back_change_leaves_no_audit_row(db, make_user):
    agent = make_user("agent")
    before = len(_rows(db, "lead"))
    f.lead(db.session, owner=agent)
    db.session.rollback()
    assert len(_rows(db, "lead")) == before
    assert db.session.query(Lead).count() == 0


def test_a_documents_render_leaves_an_audit_row_for_each_state(app, db, make_user):
    from sqlalchemy import select

    from models import Audit
    from jobs.documents import render_document
    from tests import factories as f
    user = make_user("sales_manager")
    building = f.building(db.session)
    document = f.document(db.session, user, kind="board", subject_id=building.id)
    db.session.commit()
    assert render_document(db.session, document.id) == "done"
    actions = list(db.session.scalars(select(Audit.action).where(
        Audit.entity == "document", Audit.entity_id == str(document.id)).order_by(Audit.id)))
    assert actions == ["insert", "render_started", "render_done"]


@pytest.mark.parametrize("statement", ["UPDATE audit SET action = 'forged'", "DELETE FROM audit"])
def test_r_all_2_the_database_itself_refuses_to_change_or_delete_audit_rows(db, make_user, statement):
    """Whoever connects (psql, a script), not only through the ORM: a trigger (migration 0011)."""
    from sqlalchemy import text
    from sqlalchemy.exc import DatabaseError

    make_user("agent", username="li")  # writes audit rows
    before = db.session.execute(text("SELECT count(*), min(action) FROM audit")).one()
    assert before[0] > 0
    with pytest.raises(DatabaseError, match="append-only"):
        db.session.execute(text(statement))
        db.session.flush()
    db.session.rollback()
    assert db.session.execute(text("SELECT count(*), min(action) FROM audit")).one() == before


def test_issue22_every_action_the_after_contract_modules_write_reads_as_a_label():
    """The audit trail's page names an action by its label (admin/labels.py AUDIT_ACTIONS), never by
    its code: every action the issue-22 modules write has one."""
    import re
    from pathlib import Path

    from admin.labels import AUDIT_ACTIONS
    root = Path(__file__).resolve().parent.parent / "models"
    written = set()
    for name in ("charges", "loans", "true_ups", "handovers", "tickets"):
        source = (root / f"{name}.py").read_text(encoding="utf-8")
        written |= set(re.findall(r'action="([a-z_]+)"', source))
    assert written and sorted(written - AUDIT_ACTIONS.keys()) == []
