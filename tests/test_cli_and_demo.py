"""Commands: `user create`, `demo` — and every demo account sees only its menus."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from app import create_app
from models import (Building, Contract, CustomerQuestion, Extension, FollowUp, Instalment, Lead,
                    LeadConflict, OverdueEvent, Payment, PriceApproval, Project, StampedCopy, Subscription,
                    Unit, User)
from models.permissions import PERMISSIONS
from tests.conftest import Auth


def test_user_create_with_several_roles(app, db, auth):
    result = app.test_cli_runner().invoke(args=[
        "user", "create", "wang", "--role", "sales_manager", "--role", "vp",
        "--display-name", "王总", "--password", "a-long-password"])
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.username == "wang"))
    assert user.role_names == {"sales_manager", "vp"} and user.display_name == "王总"
    assert auth.login("wang", password="a-long-password").status_code == 302


@pytest.mark.parametrize("args, message", [
    (["--role", "king"], "king"),
    (["--role", "agent", "--password", "short"], "8"),
])
def test_user_create_refuses_bad_input(app, args, message):
    result = app.test_cli_runner().invoke(args=["user", "create", "li", *args])
    assert result.exit_code != 0 and message in result.output


def test_user_create_refuses_a_taken_username(app, make_user):
    make_user("agent", username="li")
    result = app.test_cli_runner().invoke(args=["user", "create", "li", "--role", "agent",
                                                "--password", "a-long-password"])
    assert result.exit_code != 0 and "li" in result.output


def _count(db, model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_demo_office_is_realistic_and_idempotent(app, db):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "demo12345" in result.output
    counts = {m: _count(db, m) for m in (Project, Building, Unit, Lead, FollowUp, User)}
    assert counts[Project] == 2 and counts[Building] >= 6 and counts[Unit] >= 600
    assert counts[Lead] >= 200 and counts[FollowUp] >= 200 and counts[User] == 11
    first, second = db.session.scalars(select(Project).order_by(Project.id)).all()
    assert (first.warning_day, first.lawyer_letter_day, first.forfeit_day) == (2, 8, 15)
    assert (second.warning_day, second.lawyer_letter_day, second.forfeit_day) != (2, 8, 15)
    layouts = set(db.session.scalars(select(Unit.layout).distinct()))
    assert {"三室两厅两卫", "两室两厅一卫"} <= layouts
    assert _count(db, Lead, Lead.owner_id.is_(None)) > 0  # some wait in the manager's pool
    assert _count(db, Lead, Lead.pooled_at.is_not(None)) > 0  # some came back from idle agents
    assert _count(db, LeadConflict, LeadConflict.status == "open") >= 1
    assert _count(db, CustomerQuestion, CustomerQuestion.answered_at.is_not(None)) > 0
    assert _count(db, CustomerQuestion, CustomerQuestion.answered_at.is_(None)) > 0
    assert {"new", "contacted", "visited", "lost"} <= set(db.session.scalars(select(Lead.stage).distinct()))
    today = dt.date.today()
    assert _count(db, Lead, Lead.owner_id.is_not(None), Lead.next_follow_up_on < today) > 0  # overdue
    assert _count(db, Lead, Lead.owner_id.is_not(None), Lead.next_follow_up_on == today) > 0  # due today
    assert {"available", "held", "subscribed", "withheld"} <= set(db.session.scalars(select(Unit.status).distinct()))
    assert set(db.session.scalars(select(Subscription.status).distinct())) == {
        "draft", "confirmed", "active", "contracted", "forfeited", "withdrawn", "expired", "cancelled"}
    # Signed deals whose later lines are still to come (R-PAY-4), an instalment and a mortgage deal.
    to_come = set(db.session.scalars(
        select(Subscription.payment_method).join(Instalment, Instalment.subscription_id == Subscription.id)
        .where(Subscription.status == "contracted", Instalment.status != "paid")))
    assert {"instalments", "commercial_mortgage"} <= to_come
    from models.payments import awaiting_settlement
    from models.worklists import letters_to_send, rescissions_to_decide
    assert _count(db, OverdueEvent, letters_to_send()) >= 1  # the lawyer's worklist
    assert _count(db, OverdueEvent, rescissions_to_decide()) >= 1  # a signed deal on the forfeit day
    assert _count(db, Subscription, awaiting_settlement()) >= 1  # the forfeited deal's deposit
    assert set(db.session.scalars(select(Unit.status).distinct())) == {
        "available", "held", "subscribed", "signed", "withheld"}
    assert set(db.session.scalars(select(Lead.stage).distinct())) == {
        "new", "contacted", "visited", "subscribed", "signed", "lost"}
    assert {"booked", "signed", "archived"} <= set(db.session.scalars(select(Contract.status).distinct()))
    assert {"reminder", "warning", "lawyer_letter", "forfeit", "rescission"} <= set(
        db.session.scalars(select(OverdueEvent.level).distinct()))
    assert {"pending", "partly_paid", "paid"} <= set(db.session.scalars(select(Instalment.status).distinct()))
    assert _count(db, Payment, Payment.reverses_id.is_not(None)) >= 1
    assert {"requested", "approved", "rejected"} <= set(db.session.scalars(select(Extension.status).distinct()))
    assert _count(db, StampedCopy) >= 1
    assert _count(db, PriceApproval, PriceApproval.status == "requested") == 1
    assert runner.invoke(args=["demo"]).exit_code == 0
    assert {m: _count(db, m) for m in counts} == counts


def test_demo_is_refused_in_production(database_url, monkeypatch):
    monkeypatch.setenv("SALESDESK_ENV", "production")
    prod = create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": database_url})
    result = prod.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code != 0 and "production" in result.output


# Menu entries each demo account must see: exactly the grids its role may list.
MENU = re.compile(r'href="/admin/([a-z_]+)/"')


def test_every_demo_account_logs_in_and_sees_only_its_menus(app, client, db):
    from demo import DEMO_PASSWORD
    assert app.test_cli_runner().invoke(args=["demo"]).exit_code == 0  # once: it renders letters
    for username in ("admin", "manager", "agent1", "control", "finance", "lawyer", "archive", "vp", "service"):
        assert Auth(client).login(username, password=DEMO_PASSWORD).status_code == 302, username
        page = client.get("/admin/").get_data(as_text=True)
        shown = set(MENU.findall(page))
        user = db.session.scalar(select(User).where(User.username == username))
        allowed = {entity for entity, verbs in PERMISSIONS.items() if verbs["list"] & user.role_names}
        assert shown == allowed, username
        for entity in set(PERMISSIONS) - allowed:
            assert client.get(f"/admin/{entity}/").status_code == 403, (username, entity)
        Auth(client).logout()
