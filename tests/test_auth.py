"""Login, logout, CSRF and next= (R-ALL-1 starts with knowing who acts)."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app import create_app
from models import Audit, User
from tests.conftest import TEST_PASSWORD, csrf_token

ALERT = re.compile(r'<div class="alert[^"]*"[^>]*>(.*?)</div>', re.S)


def _alerts(response) -> list[str]:
    return [m.strip() for m in ALERT.findall(response.get_data(as_text=True))]


def test_login_with_the_right_password_opens_the_admin(auth, make_user):
    make_user("agent", username="li")
    response = auth.login("li")
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/")


def test_unknown_user_and_wrong_password_get_the_same_answer(client, auth, make_user):
    make_user("agent", username="li")
    wrong = auth.login("li", password="not-the-password", follow_redirects=True)
    unknown = auth.login("nobody", password="not-the-password", follow_redirects=True)
    assert wrong.status_code == unknown.status_code == 200
    assert _alerts(wrong) == _alerts(unknown) == ["用户名或密码错误。"]
    assert client.get("/admin/").status_code == 302


def test_an_inactive_user_cannot_log_in(auth, make_user):
    make_user("agent", username="gone", active=False)
    response = auth.login("gone", follow_redirects=True)
    assert _alerts(response) == ["用户名或密码错误。"]


def test_a_deactivated_users_open_session_stops_working(app, client, auth, make_user, db):
    user = make_user("agent", username="li")
    auth.login("li")
    assert client.get("/admin/").status_code == 200
    db.session.get(User, user.id).active = False
    db.session.commit()
    assert client.get("/admin/").status_code == 302


def test_login_without_a_csrf_token_is_refused_and_says_why(client, make_user):
    make_user("agent", username="li")
    response = client.post("/login", data={"username": "li", "password": TEST_PASSWORD},
                           follow_redirects=True)
    assert "表单已过期或缺少安全令牌" in " ".join(_alerts(response))
    assert client.get("/admin/").status_code == 302  # not logged in


def test_a_forged_csrf_token_is_refused(client, make_user):
    make_user("agent", username="li")
    csrf_token(client)
    response = client.post("/login", data={"username": "li", "password": TEST_PASSWORD,
                                           "csrf_token": "forged"})
    assert response.status_code == 303
    assert client.get("/admin/").status_code == 302


def test_logout_is_a_post_only(client, login_as):
    login_as("agent")
    assert client.get("/logout").status_code == 405
    assert client.get("/admin/").status_code == 200


def test_logout_ends_the_session_even_for_a_copied_cookie(client, auth, make_user, app):
    make_user("agent", username="li")
    auth.login("li")
    stolen = client.get_cookie("session", domain="localhost").value
    assert auth.logout().headers["Location"].endswith("/login")
    other = app.test_client()
    other.set_cookie("session", stolen, domain="localhost")
    response = other.get("/admin/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_login_issues_a_new_session(client, auth, make_user):
    make_user("agent", username="li")
    csrf_token(client)
    before = client.get_cookie("session", domain="localhost").value
    auth.login("li")
    assert client.get_cookie("session", domain="localhost").value != before


def test_anonymous_user_is_sent_to_login_with_next(client):
    response = client.get("/admin/lead/?page=2")
    assert response.status_code == 302
    assert "/login?next=/admin/lead/?page%3D2" in response.headers["Location"]


@pytest.mark.parametrize("target", ["/admin/lead/", "/admin/unit/?page=2"])
def test_next_accepts_a_path_on_this_site(auth, make_user, target):
    make_user("admin", username="boss")
    response = auth.login("boss", next=target)
    assert response.headers["Location"].endswith(target)


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example",
                                    "javascript:alert(1)", "http:/evil.example", "%2F%2Fevil.example"])
def test_next_refuses_other_sites(auth, make_user, target):
    make_user("admin", username="boss")
    response = auth.login("boss", next=target)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/admin/")


def test_passwords_are_stored_with_a_slow_hash(app, make_user):
    user = make_user("agent")
    assert user.password_hash.startswith("scrypt:") and TEST_PASSWORD not in user.password_hash
    production_default = create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert production_default.config["PASSWORD_HASH_METHOD"] == "scrypt"


def test_session_protection_is_strong_a_session_moved_to_another_browser_is_dropped(
        app, client, auth, make_user):
    assert app.login_manager.session_protection == "strong"
    make_user("agent", username="li")
    auth.login("li")
    assert client.get("/admin/").status_code == 200  # the browser that logged in
    assert client.get("/admin/", headers={"User-Agent": "Stolen/1.0"}).status_code == 302
    assert client.get("/admin/").status_code == 302  # the session was destroyed, not just refused


def test_logins_and_failed_logins_are_audited(auth, make_user, db):
    user = make_user("agent", username="li")
    auth.login("li", password="wrong-password")
    auth.login("li")
    actions = db.session.scalars(select(Audit.action).where(Audit.entity == "user",
                                                            Audit.action.like("login%")).order_by(Audit.id)).all()
    assert actions == ["login_failed", "login"]
    row = db.session.scalar(select(Audit).where(Audit.action == "login"))
    assert row.actor_id == user.id
