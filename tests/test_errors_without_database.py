"""Issue 18 item 14: with the database down, the friendly error page still renders (in Chinese,
in our layout), needs no database itself, and says "try again shortly" (503), logged."""
from __future__ import annotations

import logging

import pytest

from app import create_app
from tests.conftest import ON_POSTGRES, FreshContextClient, csrf_token


@pytest.fixture
def unreachable(app, tmp_path):
    """A second app, configured as the first but on a database that cannot be reached (a closed
    port on PostgreSQL, a file in a missing directory on SQLite), in production's error
    handling (TESTING off: an unhandled error becomes werkzeug's bare 500)."""
    url = ("postgresql://postgres@127.0.0.1:9/salesdesk" if ON_POSTGRES
           else f"sqlite:///{tmp_path / 'missing-directory' / 'salesdesk.sqlite'}")
    config = {key: app.config[key] for key in ("SECRET_KEY", "PASSWORD_HASH_METHOD", "REDIS_URL", "SERVER_NAME")}
    down = create_app({**config, "TESTING": False, "RUN_DAILY_JOBS": False, "SQLALCHEMY_DATABASE_URI": url})
    down.test_client_class = FreshContextClient
    return down


def _friendly(response, code=503):
    html = response.get_data(as_text=True)
    assert response.status_code == code, html[:300]
    assert "Internal Server Error" not in html
    assert '<html lang="zh-CN">' in html and "salesdesk.css" in html  # our layout
    assert "服务暂时不可用" in html and "几分钟后再试" in html  # in Chinese: try again shortly
    return html


def test_issue18_a_signed_in_user_gets_the_friendly_page_when_the_database_is_down(
        client, login_as, unreachable, caplog):
    login_as("sales_manager")
    browser = unreachable.test_client()
    for name in ("session", "remember_token"):
        cookie = client.get_cookie(name, domain="localhost")
        if cookie is not None:
            browser.set_cookie(name, cookie.value, domain="localhost")
    with caplog.at_level(logging.ERROR):
        for path in ("/admin/", "/admin/lead/", "/admin/lead/details/?id=1"):
            _friendly(browser.get(path))
    assert any("database" in record.getMessage().lower() for record in caplog.records)  # logged


def test_issue18_an_anonymous_visitor_gets_the_friendly_page_when_the_database_is_down(unreachable):
    browser = unreachable.test_client()
    assert browser.get("/login").status_code == 200  # the form needs no database
    token = csrf_token(browser)
    response = browser.post("/login", data={"username": "li", "password": "x" * 12, "csrf_token": token})
    _friendly(response)
    json = browser.post("/login", data={"username": "li", "password": "x" * 12, "csrf_token": token},
                        headers={"Accept": "application/json"})
    assert json.status_code == 503 and json.is_json
