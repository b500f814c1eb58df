"""What the scale work of issue 11 changed, proven at test size: the rows rendered in Python read
exactly as Flask-Admin's template renders them, the count is skipped only when the rows tell it,
the n-gram search finds exactly what ILIKE finds (and can use its index), the cached menu still
follows the roles and the page. The speed itself is measured by bench/ (BENCHMARKS.md)."""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from sqlalchemy import event, select, text

from models import Lead
from models.base import office_today
from tests import factories as f
from tests.conftest import Auth

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def deal(make_deal):
    return make_deal(price="1500000.00", method="commercial_mortgage", today=office_today(), staff=f.STAFF)


class _Rows(HTMLParser):
    """The grid's body rows as lists of what a user and a browser get from them: each cell's
    text, and every link, form, input and button with its attributes (URLs by path and query)."""

    def __init__(self):
        super().__init__()
        self.rows, self.in_table, self.in_head = [], False, False
        self.buttons_depth = None  # inside the buttons' cell: how deep (a space between buttons counts)

    @staticmethod
    def _value(name, value):
        if name in ("href", "action") and value and "?" in value:
            parts = urlsplit(value)
            return (parts.path, tuple(sorted(parse_qsl(parts.query, keep_blank_values=True))))
        return value

    def handle_starttag(self, tag, attrs):
        if tag == "table" and "model-list" in (dict(attrs).get("class") or ""):
            self.in_table = True
        elif self.in_table and tag == "thead":
            self.in_head = True
        elif self.in_table and not self.in_head and tag == "tr":
            self.rows.append([])
        elif self.in_table and not self.in_head and self.rows:
            if self.buttons_depth is not None:
                self.buttons_depth += 1
            if tag == "td" and ("class", "list-buttons-column") in attrs:
                self.buttons_depth = 0
            if ("name", "csrf_token") in attrs:  # signed with the time: differs from second to second
                attrs = [(k, "<token>" if k == "value" else v) for k, v in attrs]
            self.rows[-1].append((tag, tuple(sorted((k, self._value(k, v)) for k, v in attrs))))

    def handle_endtag(self, tag):
        if self.buttons_depth is not None:
            if tag == "td" and self.buttons_depth == 0:
                self.buttons_depth = None
                cell = self.rows[-1]
                while cell and cell[-1] == " ":  # the space after the last button does not show
                    cell.pop()
            elif tag not in ("input",):
                self.buttons_depth -= 1
        if tag == "thead":
            self.in_head = False
        elif tag == "table":
            self.in_table = False

    def handle_data(self, data):
        if self.in_table and not self.in_head and self.rows and data.strip():
            self.rows[-1].append(" ".join(data.split()))
        elif self.buttons_depth == 0 and data and self.rows[-1][-1] != " " \
                and self.rows[-1][-1][0] != "td":  # between two buttons (not before the first)
            self.rows[-1].append(" ")


def _rows(html: str) -> list:
    parser = _Rows()
    parser.feed(html)
    return parser.rows


def _grids() -> list[str]:
    """Every grid (ModelView) the app registers, by endpoint, read from an app made for the
    purpose: a new grid is covered without being named here."""
    from flask_admin.contrib.sqla import ModelView

    from admin.fast_list import registered_views
    from app import create_app
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "collecting",
                      "REDIS_URL": None})
    return [view.endpoint for view in registered_views(app.extensions["admin"][0]) if isinstance(view, ModelView)]


def _a_row_in_every_grid(session, users) -> None:
    """What the demo office has none of: a background export, a batch of documents, a voucher."""
    from models import Payment, RuleViolation, Subscription
    from models.documents import request_documents
    from models.exports import request_export
    from models.payments import record_voucher
    finance = users["finance"]
    request_export(session, finance, "payments", "csv", {}, total=1)
    receipts = session.scalars(select(Payment.id).where(Payment.reverses_id.is_(None)).order_by(Payment.id).limit(2)).all()
    request_documents(session, finance, "receipt", receipts)
    for sub in session.scalars(select(Subscription).where(Subscription.status.notin_(("active", "draft", "contracted")))):
        try:
            with session.begin_nested():
                record_voucher(session, finance, sub.id, kind="refund", amount="1.00", issued_on=office_today(),
                               reason="test", channel="bank_transfer")
            return
        except RuleViolation:
            continue
    raise AssertionError("no ended deal holding money in the demo office")


@pytest.fixture(scope="module")
def demo_office(database_url, tmp_path_factory):
    """The demo office (demo.py), with a row in every grid and a signed-in client per account,
    built once for the grid tests in a database of its own (they only read it)."""
    import shutil

    from tests.conftest import ON_POSTGRES, own_database

    path = tmp_path_factory.mktemp("grids") / "demo.sqlite"
    if not ON_POSTGRES:
        shutil.copyfile(database_url.removeprefix("sqlite:///"), path)  # the migrated template
    with own_database("salesdesk_grids_", path) as url:
        yield from _demo_office_clients(url)


def _demo_office_clients(url):
    """The demo office on the database `url` (migrated here on PostgreSQL), with a row in every
    grid, and a signed-in client per demo account."""
    from flask_migrate import upgrade

    from app import create_app
    from demo import ACCOUNTS, DEMO_PASSWORD, build_demo
    from models import User, db
    from tests.conftest import ON_POSTGRES, REDIS_URL, FreshContextClient

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "tests-only-secret",
                      "PASSWORD_HASH_METHOD": "scrypt:1024:8:1", "REDIS_URL": REDIS_URL, "SERVER_NAME": "localhost"})
    app.test_client_class = FreshContextClient
    try:
        with app.app_context():
            if ON_POSTGRES:
                upgrade()
            build_demo(db.session)
            db.session.commit()
            users = {u.username: u for u in db.session.scalars(select(User))}
            _a_row_in_every_grid(db.session, users)
            db.session.commit()
            db.session.remove()
        clients = {}
        for username, _, _ in ACCOUNTS:
            clients[username] = app.test_client()
            assert Auth(clients[username]).login(username, password=DEMO_PASSWORD).status_code == 302
        yield app, clients
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.mark.parametrize("grid", _grids())
def test_rows_rendered_in_python_read_exactly_as_flask_admins_template(demo_office, monkeypatch, grid):
    """admin/rows.py replaces Flask-Admin's per-cell and per-button macros: same cells, same
    texts, same links, forms and buttons, on every grid, for every account that opens it (each
    role's own buttons)."""
    import admin.rows
    from admin.fast_list import registered_views
    app, clients = demo_office
    view = next(v for v in registered_views(app.extensions["admin"][0]) if getattr(v, "endpoint", "") == grid)
    compared = []
    for username, client in clients.items():
        rendered = []
        with monkeypatch.context() as patch:
            render_row = admin.rows.render_row
            patch.setattr(admin.rows, "render_row", lambda *a: rendered.append(a) or render_row(*a))
            response = client.get(f"/admin/{grid}/")
            if response.status_code != 200:  # a grid this account's roles do not open
                continue
            fast = response.get_data(as_text=True)
            patch.setattr(type(view), "fast_rows", lambda self, actions: False)
            template = client.get(f"/admin/{grid}/").get_data(as_text=True)
        assert _rows(fast) == _rows(template), username
        if rendered:  # else none of the grid's rows is this account's ("no items")
            compared.append(username)
    assert compared, "somebody opens the grid and sees rows, rendered by admin/rows.py, to compare"


class _Seen(list):
    """Statements sent to the database (their parameters in .parameters)."""

    def __init__(self):
        super().__init__()
        self.parameters = {}


def _statements(db):
    seen = _Seen()

    def listener(conn, cur, statement, parameters, *args):
        seen.append(statement)
        seen.parameters[statement] = parameters
    event.listen(db.engine, "before_cursor_execute", listener)
    return seen, lambda: event.remove(db.engine, "before_cursor_execute", listener)


def test_a_first_page_that_is_not_full_is_its_own_count_and_a_full_one_is_counted(app, client, db, deal,
                                                                                   monkeypatch):
    for n in range(5):
        f.lead(db.session, owner=deal["agent"], project_=deal["project"], name=f"张{n}")
    db.session.commit()
    view = next(v for v in app.extensions["admin"][0]._views if getattr(v, "endpoint", "") == "lead")
    Auth(client).login("boss")
    seen, stop = _statements(db)
    try:
        few = client.get("/admin/lead/?search=张").get_data(as_text=True)  # 5 rows, pages of 30
        counted_few = [s for s in seen if "count(*)" in s and "FROM lead" in s]
        monkeypatch.setattr(view, "page_size", 2)
        seen.clear()
        first = client.get("/admin/lead/?search=张").get_data(as_text=True)  # a full page of 2
        counted_first = [s for s in seen if "count(*)" in s and "FROM lead" in s]
        seen.clear()
        last = client.get("/admin/lead/?search=张&page=2").get_data(as_text=True)  # 1 row on page 3
        counted_last = [s for s in seen if "count(*)" in s and "FROM lead" in s]
    finally:
        stop()
    assert counted_few == [] and "列表 (5)" in few
    assert counted_first and "列表 (5)" in first
    assert counted_last and "列表 (5)" in last  # a later page never guesses from its rows


@pytest.mark.postgres
def test_search_through_the_ngram_index_finds_exactly_what_ilike_finds(db, make_user):
    """models.search.narrowed adds the index's condition to the ILIKE: the same rows for every
    kind of term (short, Chinese, digits, mixed case, wildcards, ^prefix, =exact)."""
    from sqlalchemy import Unicode, cast, or_

    from flask_admin.contrib.sqla.tools import parse_like_term

    from models.search import narrowed
    agent = make_user("agent")
    project = f.project(db.session)
    for name, phone in (("王伟", "13800000001"), ("王伟明", "13800000002"), ("欧阳王伟", "13912345678"),
                        ("李娜", "13700000000"), ("Smith", "15000000100"), ("smithers", "15000000200"),
                        ("王 伟", "13600000001"), ("伟王", "13600000002"), ("𠀀明", "13600000003")):
        f.lead(db.session, owner=agent, project_=project, name=name, phone=phone)
    db.session.commit()
    for term in ("王伟", "伟", "王伟明", "欧阳王伟", "SMITH", "mith", "138", "0000", "13912345678",
                 "00001", "%", "王%", "_", "^王伟", "=王伟", "伟明", "𠀀明", "𠀀", "明", "nobody", "王 "):
        pattern = parse_like_term(term)
        plain = or_(*(cast(c, Unicode).ilike(pattern) for c in (Lead.name, Lead.phone)))
        indexed = or_(*(narrowed(c, term, cast(c, Unicode).ilike(pattern)) for c in (Lead.name, Lead.phone)))
        want = set(db.session.scalars(select(Lead.id).where(plain)))
        got = set(db.session.scalars(select(Lead.id).where(indexed)))
        assert got == want, term


@pytest.mark.postgres
def test_the_customer_grids_search_can_use_the_ngram_indexes(client, db, deal):
    """With scanning made costly, PostgreSQL answers the grid's search from the two n-gram
    indexes (as it does on its own at 200,000 customers, bench/grids.py)."""
    Auth(client).login("boss")
    seen, stop = _statements(db)
    try:
        assert client.get("/admin/lead/?search=客户").status_code == 200
    finally:
        stop()
    query = next(s for s in seen if "FROM lead" in s and "search_grams" in s and "count(*)" not in s)
    connection = db.session.connection()
    connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
    plan = "\n".join(row[0] for row in connection.exec_driver_sql("EXPLAIN " + query, seen.parameters[query]))
    db.session.rollback()
    assert "ix_lead_name_grams" in plan and "ix_lead_phone_grams" in plan


def test_the_ngram_functions_of_the_models_are_the_migrations(db):
    """models/search.py and migration 0013 each hold the SQL of the two functions: the same."""
    from models.search import FUNCTIONS
    migration = (ROOT / "migrations/versions/0013_search_grams.py").read_text()
    assert FUNCTIONS.strip() in migration
    if db.engine.dialect.name == "postgresql":
        indexes = set(db.session.scalars(text("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%_grams'")))
        assert indexes == {"ix_lead_name_grams", "ix_lead_phone_grams"}


def _menu_entries(html: str) -> tuple[set[str], list[str]]:
    """The main menu's links, and the one marked as the current page."""
    menu = html.split('<ul class="nav navbar-nav mr-auto">', 1)[1].split('<ul class="nav navbar-nav navbar-right">', 1)[0]
    hrefs = set(re.findall(r'href="(/admin/[^"]*)"', menu))
    active = re.findall(r'<a class="dropdown-item active[^"]*" href="([^"]+)"', menu)
    return hrefs, active


def test_the_menu_kept_between_pages_still_follows_the_roles_and_the_page(client, db, deal):
    Auth(client).login("boss")
    boss_leads, boss_active = _menu_entries(client.get("/admin/lead/").get_data(as_text=True))
    _, boss_active_units = _menu_entries(client.get("/admin/unit/").get_data(as_text=True))
    Auth(client).logout()
    Auth(client).login("li")
    agent_leads, _ = _menu_entries(client.get("/admin/lead/").get_data(as_text=True))
    Auth(client).logout()
    Auth(client).login("boss")
    again, _ = _menu_entries(client.get("/admin/lead/").get_data(as_text=True))
    assert "/admin/user/" not in agent_leads and "/admin/lead/" in agent_leads
    assert agent_leads < boss_leads and again == boss_leads
    assert boss_active == ["/admin/lead/"] and boss_active_units == ["/admin/unit/"]
