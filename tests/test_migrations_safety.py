"""Issue 18, item 15: a downgrade never drops data silently; index builds on big tables do not stop
writes on PostgreSQL (CREATE INDEX CONCURRENTLY).

Each test migrates a database of its own from empty (a SQLite file, or a PostgreSQL database
created and dropped here), as `flask db upgrade` does.
"""
from __future__ import annotations

import threading
import time
import types

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade
from sqlalchemy import event, inspect, text

from app import create_app
from models import db as _db
from models.users import create_user
from tests import factories as f
from tests.conftest import _config, own_database

BEFORE_0012, REV_0012, REV_0013, REV_0014, REV_0015 = (
    "3f1c2a9b7d10", "8a4e6c2d9f31", "5d2b7e9c1a43", "9e4f1b6c2d75", "3c8d5a1f7e20")


@pytest.fixture
def fresh_app(tmp_path, monkeypatch):
    """An app on an empty database of its own (not the suite's migrated template)."""
    monkeypatch.delenv("SALESDESK_ALLOW_DATA_LOSS", raising=False)
    with own_database("sd_mig_", tmp_path / "fresh.sqlite") as url:
        app = create_app(_config(url))
        with app.app_context():
            yield app
            _db.session.remove()
            _db.engine.dispose()


def _scalar(sql):
    with _db.engine.connect() as conn:  # no transaction left open for a migration to wait for
        return conn.execute(text(sql)).scalar()


def _count(table):
    return _scalar(f'SELECT count(*) FROM "{table}"')


def _version():
    return _scalar("SELECT version_num FROM alembic_version")


def _tables():
    return set(inspect(_db.engine).get_table_names()) - {"alembic_version"}


def _insert_as_of(model, **values) -> int:
    """Insert a row of `model` into its table as an older revision has it: the given values and
    the model's Python defaults of the columns that table has (a later column would not be
    there yet). The new row's id."""
    table = sa.Table(model.__tablename__, sa.MetaData(), autoload_with=_db.engine)
    row = dict(values)
    for column in model.__table__.columns:
        default = column.default
        if column.name in table.c and column.name not in row and default is not None and not column.primary_key:
            row[column.name] = default.arg(None) if callable(default.arg) else default.arg
    with _db.engine.begin() as conn:
        return conn.execute(table.insert().values(**row)).inserted_primary_key[0]


def _refused(capfd, **kw):
    """`flask db downgrade …` as the command runs it: exit status 1 and the reason on stderr."""
    capfd.readouterr()
    with pytest.raises(SystemExit) as exit_:
        downgrade(**kw)
    assert exit_.value.code == 1
    return capfd.readouterr().err


def test_issue18_downgrade_base_refuses_while_rows_would_be_dropped(fresh_app, capfd):
    upgrade()
    assert _count("role") == 10  # the migrations's own seed is no data of the office:
    downgrade(revision="base")  # an empty database downgrades freely
    assert _tables() == set()
    upgrade()
    create_user(_db.session, "boss", "a-long-password", ["admin"], "Boss")
    _db.session.commit()
    head = _version()
    audit_rows = _count("audit")
    assert audit_rows >= 1

    message = _refused(capfd, revision="base")
    assert "Refused" in message and "audit" in message and "user" in message
    assert "SALESDESK_ALLOW_DATA_LOSS=1" in message and "allow_data_loss=1" in message
    # judged step by step: only the initial schema's downgrade drops them (no step was unknowable)
    assert message.count("audit: ") == 1 and "initial schema" in message
    _db.session.remove()
    assert _version() == head and _count("audit") == audit_rows and _count("user") == 1
    assert "audit" in _tables()

    downgrade(revision="base", x_arg=["allow_data_loss=1"])  # the explicit flag: it goes ahead
    _db.session.remove()
    assert _tables() == set()


def test_issue18_the_environment_variable_allows_the_data_loss_too(fresh_app, capfd, monkeypatch):
    upgrade()
    create_user(_db.session, "boss", "a-long-password", ["admin"], "Boss")
    _db.session.commit()
    _refused(capfd, revision="base")
    monkeypatch.setenv("SALESDESK_ALLOW_DATA_LOSS", "1")
    downgrade(revision="base")
    _db.session.remove()
    assert _tables() == set()


def test_issue18_a_downgrade_dropping_columns_with_values_refuses(fresh_app, capfd):
    """Downgrading 0015 drops the projects' new settings: refused once a project has them."""
    upgrade()
    downgrade(revision=REV_0014)  # nothing in the columns it drops yet
    upgrade()
    _db.session.remove()
    f.project(_db.session)
    _db.session.commit()
    message = _refused(capfd, revision=REV_0014)
    assert "project.follow_up_max_days: 1 row(s)" in message
    _db.session.remove()
    assert "voucher" in _tables()


def test_issue18_what_a_dry_run_cannot_see_counts_as_dropping_everything():
    """A downgrade with raw destructive SQL, or one that reads the database, is not trusted."""
    from alembic import op

    from migrations import guard

    def step(downgrade_fn):
        module = types.SimpleNamespace(downgrade=downgrade_fn)
        return types.SimpleNamespace(revision=types.SimpleNamespace(module=module))

    dialect = types.SimpleNamespace(name="postgresql")
    assert guard.drops_of(step(lambda: op.execute("DROP TABLE lead")), dialect) == {(guard.EVERYTHING, None)}
    assert guard.drops_of(step(lambda: op.get_bind().execute(text("SELECT 1"))), dialect) == \
        {(guard.EVERYTHING, None)}

    def readable():
        with op.batch_alter_table("lead") as batch:
            batch.drop_column("budget_wan")
        op.drop_table("voucher")
        op.execute("DROP FUNCTION search_keys(text)")
    assert guard.drops_of(step(readable), dialect) == {("lead", "budget_wan"), ("voucher", None)}


def test_issue22_a_lone_delete_of_one_table_counts_as_that_tables_rows_only():
    """0022a's downgrade deletes the ninth role's row: the dry run reads it as the role table's rows
    (seeded, so free), not as everything; a DELETE it cannot read as one table still is everything."""
    from alembic import op

    from migrations import guard

    def step(downgrade_fn, seeded=()):
        module = types.SimpleNamespace(downgrade=downgrade_fn, SEED_TABLES=seeded)
        return types.SimpleNamespace(revision=types.SimpleNamespace(module=module))

    dialect = types.SimpleNamespace(name="sqlite")
    assert guard.drops_of(step(lambda: op.execute("DELETE FROM role WHERE id = 9")), dialect) == {("role", None)}
    assert guard.drops_of(step(lambda: op.execute("DELETE FROM role WHERE id = 9"), ("role",)), dialect) == set()
    assert guard.drops_of(step(lambda: op.execute("DELETE FROM lead")), dialect) == {("lead", None)}
    assert guard.drops_of(step(lambda: op.execute("DELETE FROM lead; DROP TABLE audit")), dialect) == \
        {(guard.EVERYTHING, None)}
    assert guard.drops_of(step(lambda: op.execute("DELETE FROM lead USING audit WHERE 1 = 1; DELETE FROM audit")),
                          dialect) == {(guard.EVERYTHING, None)}


# --- CREATE INDEX CONCURRENTLY ------------------------------------------------------------------

BIG_TABLE_INDEXES = ("ix_instalment_due_on", "ix_lead_name", "ix_lead_name_grams", "ix_lead_phone_grams",
                     "ix_lead_registered_at", "ix_follow_up_at", "ix_subscription_subscribed_on",
                     "ix_contract_signed_on", "ix_overdue_event_waiting", "uq_contract_booked",
                     "ix_subscription_draft_unit")


@pytest.mark.postgres
def test_issue18_index_migrations_build_on_big_tables_concurrently(fresh_app):
    """Every CREATE/DROP INDEX that 0012–0015 run on a big table is CONCURRENTLY (and so outside a
    transaction block: PostgreSQL refuses it inside one), up and down."""
    import re

    upgrade(revision=BEFORE_0012)
    statements = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if re.match(r"\s*(CREATE|DROP)\s+(UNIQUE\s+)?INDEX", statement, re.I):
            statements.append(" ".join(statement.split()))
    event.listen(_db.engine, "before_cursor_execute", seen)
    try:
        upgrade()
        downgrade(revision=BEFORE_0012)
    finally:
        event.remove(_db.engine, "before_cursor_execute", seen)
    for name in BIG_TABLE_INDEXES:
        mine = [s for s in statements if re.search(rf"\b{name}\b", s)]
        assert [s.split()[0] for s in mine] == ["CREATE", "DROP"], (name, mine)
        assert all("CONCURRENTLY" in s for s in mine), mine


@pytest.mark.postgres
@pytest.mark.parametrize("before, revision, first_index", [
    (BEFORE_0012, REV_0012, "ix_lead_name"),
    (REV_0012, REV_0013, "ix_lead_name_grams"),
    (REV_0013, REV_0014, "ix_lead_registered_at"),
])
def test_issue18_an_index_build_on_customers_does_not_stop_their_writes(fresh_app, before, revision,
                                                                        first_index):
    """A writer holds a transaction on `lead` while the migration builds an index on it. A plain
    CREATE INDEX queues for a SHARE lock behind that writer, and every later write of the table
    queues behind it (the 1.3 s the 0.25-scale upgrade blocked writes). Built CONCURRENTLY, the
    migration holds SHARE UPDATE EXCLUSIVE and waits; another writer goes through at once."""
    upgrade()
    agent = create_user(_db.session, "agent1", "a-long-password", ["agent"], "Agent")
    project = f.project(_db.session)
    first, second = f.lead(_db.session, owner=agent, project_=project), f.lead(_db.session, owner=agent,
                                                                              project_=project)
    _db.session.commit()
    first_id, second_id = first.id, second.id
    _db.session.remove()
    downgrade(revision=before, x_arg=["allow_data_loss=1"])
    database = _db.engine.url.database

    holder = _db.engine.connect()  # a writer in the middle of its transaction
    holder.execute(text("UPDATE lead SET name = name WHERE id = :id"), {"id": first_id})
    failure = []

    def migrate():
        try:
            with fresh_app.app_context():
                upgrade(revision=revision)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failure.append(exc)
    thread = threading.Thread(target=migrate)
    thread.start()
    watcher = _db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        migrating = None
        for _ in range(600):  # the build waits for the holder's transaction: find it waiting
            migrating = watcher.execute(text(
                "SELECT pid FROM pg_stat_activity WHERE datname = :db AND wait_event_type = 'Lock' "
                "AND query ILIKE '%INDEX%' AND query ILIKE :name"),
                {"db": database, "name": f"%{first_index} %"}).scalar()
            if migrating or not thread.is_alive():
                break
            time.sleep(0.1)
        assert migrating, f"the build of {first_index} never waited for the writer ({failure})"
        modes = {mode: granted for mode, granted in watcher.execute(text(
            "SELECT mode, granted FROM pg_locks WHERE pid = :pid AND relation = 'lead'::regclass"),
            {"pid": migrating})}
        assert modes.get("ShareUpdateExclusiveLock") is True and "ShareLock" not in modes, modes

        with _db.engine.connect() as writer:  # another writer, while the index is being built
            writer.execute(text("SET lock_timeout = '5s'"))
            writer.execute(text("UPDATE lead SET name = name || '' WHERE id = :id"), {"id": second_id})
            writer.commit()
    finally:
        holder.rollback()
        holder.close()
        thread.join(120)
    assert not thread.is_alive() and not failure, failure
    assert watcher.execute(text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:n)"),
                           {"n": first_index}).scalar() is True
    watcher.close()
    assert _version() == revision


@pytest.mark.postgres
def test_issue18_an_invalid_index_left_by_a_failed_concurrent_build_is_built_again(fresh_app):
    """A CONCURRENTLY build that stops leaves an INVALID index; running the migration again
    replaces it with a valid one instead of failing on 'already exists' or keeping it."""
    upgrade(revision=REV_0013)
    with _db.engine.connect() as conn:
        conn.execute(text("CREATE INDEX ix_lead_registered_at ON lead (registered_at)"))
        conn.execute(text("UPDATE pg_index SET indisvalid = false "
                          "WHERE indexrelid = 'ix_lead_registered_at'::regclass"))
        conn.commit()
    upgrade(revision=REV_0014)
    _db.session.remove()
    valid = _scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_lead_registered_at'::regclass")
    assert valid is True and _version() == REV_0014


@pytest.mark.postgres
def test_issue18_0015_completes_when_run_again_after_its_index_builds_stopped(fresh_app):
    """0015 commits its schema part before building its indexes CONCURRENTLY. Should a build stop
    (the revision then is not recorded), `db upgrade` again finds the committed part and finishes
    the indexes instead of failing on tables that already exist."""
    upgrade()
    with _db.engine.connect() as conn:  # as a build stopped after the schema part was committed
        conn.execute(text("DROP INDEX ix_subscription_draft_unit"))
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": REV_0014})
        conn.commit()
    upgrade(revision=REV_0015)
    assert _version() == REV_0015
    assert _scalar("SELECT indisvalid FROM pg_index "
                   "WHERE indexrelid = 'ix_subscription_draft_unit'::regclass") is True


def test_issue19_12_0019e_gives_each_payment_method_its_checklist_and_the_old_default_list_loses_the_bank_card(fresh_app):
    """Migration 0019e on an office that ran before it: methods get their items by code; a project
    still on the old default list (which asked every deal for the mortgage's bank card) gets the
    common list; a list the office wrote itself is left alone."""
    from models import Project
    old_default = ("身份证原件及复印件\n户口簿原件及复印件\n婚姻状况证明\n认购书及定金收据\n"
                   "首期款收据\n银行卡（用于按揭还款）\n契税、维修基金等税费")
    upgrade(revision="c18a2e3f9d03")
    kept_id = _insert_as_of(Project, code="A", name="甲", signing_checklist=old_default)
    _insert_as_of(Project, code="B", name="乙", signing_checklist="身份证\n银行卡")
    with _db.engine.begin() as conn:
        for code in ("one_off", "instalments", "commercial_mortgage", "provident_fund"):
            conn.execute(text("INSERT INTO payment_method_template (project_id, code, name, active) "
                              "VALUES (:p, :c, :c, :t)"), {"p": kept_id, "c": code, "t": True})
    _db.session.remove()
    upgrade()
    items = dict(_db.session.execute(text("SELECT code, signing_checklist FROM payment_method_template")).all())
    assert "银行卡（用于按揭还款）" in items["commercial_mortgage"]
    assert "公积金" in items["provident_fund"] and "银行卡" not in items["instalments"] + items["one_off"]
    lists = dict(_db.session.execute(text("SELECT code, signing_checklist FROM project")).all())
    assert lists == {"A": "身份证原件及复印件\n户口簿原件及复印件\n婚姻状况证明\n认购书及定金收据\n契税、维修基金等税费",
                     "B": "身份证\n银行卡"}
