"""Security headers, login throttling and sessions (issue 10)."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from models import Audit, User
from tests.conftest import TEST_PASSWORD, Auth, csrf_token


def _login(client, username, password, address="10.0.0.1"):
    token = csrf_token(client)
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": token},
                       environ_base={"REMOTE_ADDR": address})


# --- headers ----------------------------------------------------------------------------------

def test_every_page_carries_a_strict_content_security_policy_and_the_usual_headers(client, login_as):
    login_as("sales_manager")
    response = client.get("/admin/subscription/")
    policy = response.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
    assert "script-src 'self' 'nonce-" in policy and "unsafe-inline" not in policy.split("style-src")[0]
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    html = response.get_data(as_text=True)
    inline = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert all(f'nonce="{nonce}"' in tag for tag in inline)  # no inline script without the nonce
    assert not re.search(r"\son[a-z]+=\"", html)  # no inline event handler
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP: no HSTS
    assert client.get("/login").headers["Cache-Control"] == "no-store"
    assert client.get("/static/salesdesk.css").headers.get("Cache-Control") != "no-store"


def test_hsts_is_sent_over_https(client):
    response = client.get("/login", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_each_response_has_a_new_nonce(client):
    first = client.get("/login").headers["Content-Security-Policy"]
    second = client.get("/login").headers["Content-Security-Policy"]
    assert first != second


# --- login throttling -------------------------------------------------------------------------

def test_five_failed_sign_ins_for_a_username_lock_it_for_a_while_whatever_the_address(client, make_user, db):
    make_user("agent", username="li")
    for attempt in range(5):
        assert _login(client, "li", "wrong", address=f"10.0.0.{attempt}").status_code == 200
    response = _login(client, "li", TEST_PASSWORD, address="10.0.0.99")  # even the right password
    assert response.status_code == 429
    assert "登录失败次数过多" in response.get_data(as_text=True)
    assert _login(client, "LI ", TEST_PASSWORD, address="10.0.0.98").status_code == 429  # same name
    failed = db.session.scalar(select(func.count()).select_from(Audit).where(Audit.action == "login_failed"))
    assert failed == 5


def test_five_failures_from_one_address_lock_that_address_for_every_username(client, make_user):
    make_user("agent", username="li")
    for name in ("a1", "a2", "a3", "a4", "a5"):
        assert _login(client, name, "wrong", address="10.9.9.9").status_code == 200
    assert _login(client, "li", TEST_PASSWORD, address="10.9.9.9").status_code == 429
    assert _login(client, "li", TEST_PASSWORD, address="10.9.9.8").status_code == 302  # elsewhere: fine


def test_successful_sign_ins_do_not_count(client, make_user):
    make_user("agent", username="li")
    for _ in range(7):
        assert _login(client, "li", TEST_PASSWORD).status_code == 302
        Auth(client).logout()


# --- sessions ---------------------------------------------------------------------------------

def test_a_password_change_ends_every_session_and_remember_cookie_of_the_user(app, client, make_user, db):
    user = make_user("agent", username="li")
    token = csrf_token(client)
    response = client.post("/login", data={"username": "li", "password": TEST_PASSWORD, "remember": "y",
                                           "csrf_token": token})
    cookie = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("remember_token=")][0]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    remember = client.get_cookie("remember_token", domain="localhost").value
    assert client.get("/admin/").status_code == 200
    db.session.get(User, user.id).set_password("a-new-pass-456")
    db.session.commit()
    assert client.get("/admin/").status_code == 302  # the open session
    other = app.test_client()
    other.set_cookie("remember_token", remember, domain="localhost")
    assert other.get("/admin/").status_code == 302  # the remember cookie


@pytest.mark.parametrize("production", [True, False])
def test_cookies_are_secure_in_production_only(monkeypatch, production):
    from app import create_app
    monkeypatch.setenv("SALESDESK_ENV", "production" if production else "development")
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    app = create_app({"REDIS_URL": "redis://127.0.0.1:6379/15"} if production else {})
    assert app.config["SESSION_COOKIE_SECURE"] is production
    assert app.config["REMEMBER_COOKIE_SECURE"] is production
    assert app.config["SESSION_COOKIE_HTTPONLY"] and app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


# --- dependencies -----------------------------------------------------------------------------

def test_the_dependency_audit_fails_on_a_known_vulnerability_and_says_which(monkeypatch, capsys):
    """scripts/audit_dependencies.py (run by scripts/test): exit 1 and the advisory's id when a
    pinned package has one; PyPI's record counts only for the pinned version."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "audit_dependencies", Path(__file__).resolve().parent.parent / "scripts" / "audit_dependencies.py")
    audit = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(audit)
    monkeypatch.setattr(audit, "pins", lambda: {"flask": "3.1.3", "jinja2": "3.1.6", "old": "1.0"})
    monkeypatch.setattr(audit, "pip_audit", lambda: {"flask": {"vulns": []}, "jinja2": {"skip": "not found"},
                                                     "old": {"skip": "not found"}})
    records = {"jinja2": ("audited", [{"id": "PYSEC-2099-1"}]), "old": ("older", [])}
    monkeypatch.setattr(audit, "pypi_record", lambda name, version: records[name])
    assert audit.main() == 1
    out = capsys.readouterr().out
    assert "VULNERABLE: jinja2==3.1.6: PYSEC-2099-1" in out and "old==1.0" in out
    records["jinja2"] = ("audited", [])
    assert audit.main() == 0
    assert "no known vulnerability" in capsys.readouterr().out
