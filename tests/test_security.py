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

def _actions(db, action):
    return db.session.scalar(select(func.count()).select_from(Audit).where(Audit.action == action))


def test_issue18_the_vps_right_password_from_a_known_address_works_after_six_wrong_ones_elsewhere(
        client, make_user, db):
    make_user("vp", username="vp")
    assert _login(client, "vp", TEST_PASSWORD, address="10.1.1.1").status_code == 302  # the VP's office
    Auth(client).logout()
    for attempt in range(5):
        assert _login(client, "vp", "guess", address="203.0.113.7").status_code == 200
    assert _login(client, "vp", "guess", address="203.0.113.7").status_code == 429  # the pair is locked
    assert _login(client, "vp", TEST_PASSWORD, address="10.1.1.1").status_code == 302
    Auth(client).logout()
    assert _login(client, "vp", TEST_PASSWORD, address="10.1.1.2").status_code == 302  # a new address too
    assert _actions(db, "login_failed") == 5


def test_issue18_colleagues_behind_one_address_are_not_locked_out_and_the_pair_limit_still_stops_guessing(
        client, make_user, db):
    make_user("agent", username="li")
    make_user("agent", username="wang")
    for attempt in range(5):
        assert _login(client, "li", "wrong", address="10.9.9.9").status_code == 200
    response = _login(client, "li", TEST_PASSWORD, address="10.9.9.9")  # even the right password
    assert response.status_code == 429 and "登录失败次数过多" in response.get_data(as_text=True)
    assert _login(client, "LI ", TEST_PASSWORD, address="10.9.9.9").status_code == 429  # same name
    assert _login(client, "wang", "typo", address="10.9.9.9").status_code == 200  # a colleague: the form
    assert _login(client, "wang", TEST_PASSWORD, address="10.9.9.9").status_code == 302  # and in
    Auth(client).logout()
    assert _login(client, "li", TEST_PASSWORD, address="10.9.9.8").status_code == 302  # li elsewhere: fine
    assert _actions(db, "login_failed") == 6


def test_issue18_the_per_address_ceiling_is_generous_but_stops_a_walk_through_usernames(client, make_user):
    from admin.security import ADDRESS_LIMIT

    ceiling = int(ADDRESS_LIMIT.split()[0])
    assert ceiling >= 30  # a NAT office's typos
    make_user("agent", username="li")
    for n in range(ceiling):
        assert _login(client, f"name{n}", "wrong", address="10.7.7.7").status_code == 200, n
    assert _login(client, "li", TEST_PASSWORD, address="10.7.7.7").status_code == 429
    assert _login(client, "li", TEST_PASSWORD, address="10.7.7.8").status_code == 302


def test_issue18_the_username_brake_stops_a_guess_from_many_addresses_but_not_the_owner_at_a_known_address(
        client, make_user, db):
    from admin.security import BRAKE_LIMIT

    brake = int(BRAKE_LIMIT.split()[0])
    assert brake <= 20
    make_user("vp", username="vp")
    assert _login(client, "vp", TEST_PASSWORD, address="10.1.1.1").status_code == 302
    Auth(client).logout()
    for n in range(brake):  # one guess from each of many addresses: no pair limit is reached
        assert _login(client, "vp", f"guess{n}", address=f"198.51.100.{n}").status_code == 200, n
    assert _login(client, "vp", "guess-x", address="198.51.100.200").status_code == 429
    response = _login(client, "vp", TEST_PASSWORD, address="198.51.100.201")  # right, but not known
    assert response.status_code == 429 and "登录失败次数过多" in response.get_data(as_text=True)
    assert _login(client, "vp", "guess-y", address="10.1.1.1").status_code == 429  # known, but wrong
    assert _login(client, "vp", TEST_PASSWORD, address="10.1.1.1").status_code == 302  # the VP: in
    assert _actions(db, "login_throttled") == 1
    assert _actions(db, "login_failed") == brake + 2


def test_issue18_forwarded_addresses_are_honoured_only_with_trusted_proxies(app, monkeypatch, make_user, db):
    from app import create_app
    from tests.conftest import FreshContextClient

    def through_nginx(proxies, username):
        """Five failures then the right password, each through one proxy with another forwarded address."""
        monkeypatch.setenv("SALESDESK_TRUSTED_PROXIES", str(proxies))
        proxied = create_app({key: app.config[key] for key in (
            "TESTING", "SQLALCHEMY_DATABASE_URI", "SECRET_KEY", "PASSWORD_HASH_METHOD", "REDIS_URL",
            "SERVER_NAME")})
        proxied.test_client_class = FreshContextClient
        client = proxied.test_client()
        make_user("agent", username=username)

        def sign_in(password, forwarded):
            token = csrf_token(client)
            return client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                               environ_base={"REMOTE_ADDR": "127.0.0.1"},  # nginx on the same machine
                               headers={"X-Forwarded-For": forwarded, "X-Forwarded-Proto": "https",
                                        "Referer": "https://localhost/login"})

        for n in range(5):
            assert sign_in("wrong", f"203.0.113.{n}").status_code == 200
        recorded = db.session.scalars(select(Audit.changes).where(
            Audit.action == "login_failed", Audit.entity_id == username).order_by(Audit.id)).all()
        return [c["address"] for c in recorded], sign_in(TEST_PASSWORD, "203.0.113.99")

    addresses, response = through_nginx(0, "li")  # not configured: the header is ignored
    assert addresses == ["127.0.0.1"] * 5
    assert response.status_code == 429  # spoofed addresses do not escape the pair limit
    assert "Strict-Transport-Security" not in response.headers
    addresses, response = through_nginx(1, "wang")  # one trusted proxy: the client's own address
    assert addresses == [f"203.0.113.{n}" for n in range(5)]
    assert response.status_code == 302  # a new real address: its own pair
    assert "Strict-Transport-Security" in response.headers  # the scheme from the proxy


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


@pytest.mark.parametrize("days", [None, "30"])
def test_issue18_the_remember_me_cookie_lasts_14_days_by_default_or_salesdesk_remember_days(
        app, monkeypatch, make_user, days):
    import datetime as dt
    from email.utils import parsedate_to_datetime

    from app import create_app
    from tests.conftest import FreshContextClient

    if days:
        monkeypatch.setenv("SALESDESK_REMEMBER_DAYS", days)
    else:
        monkeypatch.delenv("SALESDESK_REMEMBER_DAYS", raising=False)
    configured = create_app({key: app.config[key] for key in (
        "TESTING", "SQLALCHEMY_DATABASE_URI", "SECRET_KEY", "PASSWORD_HASH_METHOD", "REDIS_URL", "SERVER_NAME")})
    configured.test_client_class = FreshContextClient
    client = configured.test_client()
    make_user("agent", username="li")
    token = csrf_token(client)
    response = client.post("/login", data={"username": "li", "password": TEST_PASSWORD, "remember": "y",
                                           "csrf_token": token})
    assert response.status_code == 302
    cookie = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("remember_token=")][0]
    expires = parsedate_to_datetime(re.search(r"Expires=([^;]+)", cookie).group(1))
    left = expires - dt.datetime.now(dt.timezone.utc)
    wanted = dt.timedelta(days=int(days or 14))
    assert wanted - dt.timedelta(minutes=5) < left <= wanted


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
