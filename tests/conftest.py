"""Fixtures: a migrated database per run, a clean one per test, a client, users per role.

SQLite (default): the schema is migrated once into a template file that each test copies.
PostgreSQL (DATABASE_URL set): a fresh database per run, emptied between tests.
Redis (REDIS_URL set): the given db number, flushed between tests.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from app import create_app
from models import db as _db
from models.users import create_user

TEST_PASSWORD = "test-pass-123"
BASE_URL = os.environ.get("DATABASE_URL")


def _redis_url_for_this_worker():
    """Under pytest-xdist each worker flushes its own Redis db number (the given one + N)."""
    url = os.environ.get("REDIS_URL")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    if not url or worker == "gw0":
        return url
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(base + int(worker[2:])) % 16}"))


REDIS_URL = _redis_url_for_this_worker()
ON_POSTGRES = bool(BASE_URL)


def pytest_collection_modifyitems(config, items):
    """Tests marked `postgres` prove row locking (SELECT … FOR UPDATE), which SQLite ignores:
    they run in the PostgreSQL pass of the test command (and of CI), not in the SQLite pass."""
    if ON_POSTGRES:
        return
    locking = [item for item in items if item.get_closest_marker("postgres")]
    if locking:
        config.hook.pytest_deselected(items=locking)
        items[:] = [item for item in items if not item.get_closest_marker("postgres")]


def pytest_report_header(config):
    if not ON_POSTGRES:
        return ("SQLite pass: tests marked 'postgres' (row locking) are deselected here; "
                "they run in the PostgreSQL pass")
    return "PostgreSQL pass: every test runs, the row-locking proofs included"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def _admin_engine(url: str):
    from config import database_uri

    return create_engine(database_uri(url), isolation_level="AUTOCOMMIT")


def _config(url: str) -> dict:
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": "tests-only-secret",
        "PASSWORD_HASH_METHOD": "scrypt:1024:8:1",  # fast in tests; production uses the default
        "REDIS_URL": REDIS_URL,
        "SERVER_NAME": "localhost",
    }


@contextlib.contextmanager
def postgres_database(prefix: str):
    """The URL of a PostgreSQL database of its own, created empty on BASE_URL's server (named
    `prefix` and a random suffix) and dropped on leaving, even while still connected to."""
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    admin = _admin_engine(BASE_URL)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(BASE_URL, name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def own_database(prefix: str, sqlite_file):
    """An empty database of its own: on PostgreSQL a new one (`postgres_database`), on SQLite the
    file `sqlite_file`. A context manager giving its URL."""
    return postgres_database(prefix) if ON_POSTGRES else contextlib.nullcontext(f"sqlite:///{sqlite_file}")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """A database migrated from empty by Alembic, for this test run only."""
    from flask_migrate import upgrade

    with own_database("salesdesk_test_", tmp_path_factory.mktemp("db") / "template.sqlite") as url:
        app = create_app(_config(url))
        with app.app_context():
            upgrade()
            _db.engine.dispose()
        yield url


def _tables_to_empty():
    keep = {"role", "alembic_version", "instance_identity"}
    return [t.name for t in _db.metadata.sorted_tables if t.name not in keep]


class FreshContextClient(FlaskClient):
    """Each request in its own app context, as in production.

    The tests hold an app context for their own queries; without this, requests would
    share it, and with it `g` (Flask-WTF caches the CSRF token there) and the db session.
    """

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def app(database_url, tmp_path):
    if ON_POSTGRES:
        url = database_url
    else:
        path = tmp_path / "test.sqlite"
        shutil.copyfile(database_url.removeprefix("sqlite:///"), path)
        url = f"sqlite:///{path}"
    app = create_app(_config(url))
    app.test_client_class = FreshContextClient
    from models import reports as dashboard
    dashboard._cache.clear()  # a dashboard kept from another test's database would be wrong here
    with app.app_context():
        if ON_POSTGRES:
            tables = ", ".join(f'"{t}"' for t in _tables_to_empty())
            # The audit table refuses TRUNCATE (migration 0011); a test's leftovers may go.
            _db.session.execute(text("SET LOCAL session_replication_role = replica"))
            _db.session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            _db.session.commit()
        if REDIS_URL:
            from jobs import get_connection

            get_connection().flushdb()
        yield app
        _db.session.remove()
        _db.engine.dispose()


@pytest.fixture
def db(app):
    return _db


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_user(db):
    """make_user("agent", username="agent9") -> an active User with that role (or roles)."""
    counter = iter(range(1, 10_000))

    def make(*roles, username=None, active=True):
        username = username or f"{roles[0]}{next(counter)}"
        user = create_user(db.session, username, TEST_PASSWORD, list(roles), username.title())
        user.active = active
        db.session.commit()
        return user

    return make


@pytest.fixture
def make_deal(db, make_user):
    """make_deal(price=, method=, today=, staff=) -> a deal through the real steps on a new project
    "XJ": its people, "sub", "unit", "lead" and "project" (tests.factories.active_deal).

    make_deal(office=, unit=, customer=, subscribed_on=, today=, method=, stage=) -> the Subscription
    of a new customer named `customer` of office["agent"] on `unit`, in a project the test set up
    (office["project"] and the people of tests.factories.through_steps), as far as `stage`."""
    from tests import factories

    def make(*, price="1000000.00", method="one_off", today=None, staff=None, office=None, unit=None,
             customer=None, subscribed_on=None, stage="active"):
        if office is None:
            return factories.active_deal(db.session, make_user, price=price, payment_method=method,
                                         today=today or factories.TODAY, staff=staff)
        named = {"name": customer} if customer else {}
        lead = factories.lead(db.session, owner=office["agent"], project_=office["project"], **named)
        db.session.commit()
        return factories.through_steps(db.session, office, unit, lead, payment_method=method,
                                       subscribed_on=subscribed_on, today=today or subscribed_on, stage=stage)

    return make


CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
SUBMISSION_KEY = re.compile(r'name="submission_key"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="submission_key"')


def submission_key(html: str) -> str:
    """The one-time key of the money form in `html`, as the browser sends it back."""
    match = SUBMISSION_KEY.search(html)
    assert match, "no submission key in the form"
    return match.group(1) or match.group(2)


def csrf_token(client, path="/login") -> str:
    """The CSRF token of the client's session, read from a page as a browser would."""
    response = client.get(path, follow_redirects=True)
    match = CSRF_META.search(response.get_data(as_text=True))
    assert match, f"no csrf token on {path}"
    return match.group(1)


class Auth:
    def __init__(self, client):
        self.client = client

    def login(self, username, password=TEST_PASSWORD, next=None, follow_redirects=False):
        token = csrf_token(self.client)
        url = "/login" + (f"?next={next}" if next else "")
        return self.client.post(url, data={"username": username, "password": password,
                                           "csrf_token": token},
                                follow_redirects=follow_redirects)

    def logout(self):
        token = csrf_token(self.client, "/admin/")
        return self.client.post("/logout", data={"csrf_token": token})

    def csrf(self, path="/admin/"):
        return csrf_token(self.client, path)


@pytest.fixture
def auth(client):
    return Auth(client)


@pytest.fixture
def login_as(client, make_user):
    """login_as("agent") -> the new user, with the client logged in as them."""
    def login(*roles, username=None):
        user = make_user(*roles, username=username)
        response = Auth(client).login(user.username)
        assert response.status_code == 302, response.get_data(as_text=True)
        return user

    return login


@pytest.fixture(scope="session")
def shared_browser():
    """One Chromium (Playwright) for the whole run. tests/test_browser.py's `browser` fixture
    hands it out, and so does every browser-test module that imports that fixture: two
    Playwright sync sessions alive at once refuse to start ("Sync API inside the asyncio loop")."""
    from playwright.sync_api import sync_playwright
    from tests.test_browser import CHROMIUM, CHROMIUM_FLAGS
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()
