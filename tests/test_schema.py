"""The schema: made by Alembic, equal to the models, and guarding the rules itself."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from models import Subscription
from tests import factories as f

ROOT = Path(__file__).resolve().parent.parent


def test_migrations_have_a_single_head():
    config = Config()
    config.set_main_option("script_location", str(ROOT / "migrations"))
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1


def test_migrating_an_empty_database_gives_exactly_the_models(db):
    # The fixture database was created from empty by `flask db upgrade` (Alembic), never create_all.
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []


def test_the_databases_checks_are_exactly_the_models(db):
    """Alembic's comparison above ignores CHECK constraints: a migration that forgot a new status
    (expired) or level (rescission) would pass it. Names, and every listed value, must match."""
    import re

    from sqlalchemy import CheckConstraint
    inspector = inspect(db.engine)
    for table in db.metadata.sorted_tables:
        model = {str(c.name): str(c.sqltext) for c in table.constraints
                 if isinstance(c, CheckConstraint)}
        found = {c["name"]: c["sqltext"] for c in inspector.get_check_constraints(table.name)}
        assert set(found) == set(model), table.name
        for name, text_ in model.items():
            for value in re.findall(r"'([^']*)'", text_):
                assert f"'{value}'" in found[name], (table.name, name, value)


def test_every_entity_of_the_design_has_a_table(db):
    tables = set(inspect(db.engine).get_table_names())
    assert {"user", "role", "project", "building", "unit", "lead", "follow_up", "subscription",
            "instalment", "payment", "extension", "overdue_event", "contract", "contract_step",
            "archive_record", "lead_archive", "document", "audit"} <= tables


def test_the_ten_roles_are_seeded_by_the_migrations(db):
    names = db.session.execute(text("SELECT name FROM role ORDER BY id")).scalars().all()
    assert names == ["admin", "sales_manager", "agent", "sales_control", "finance", "lawyer",
                     "archive", "vp", "customer_service", "channel"]


def _refused(db, fn):
    with pytest.raises(IntegrityError):
        with db.session.begin_nested():
            fn()
            db.session.flush()


def test_r_sc_2_the_database_refuses_a_second_live_subscription_for_a_unit(db, make_user):
    agent = make_user("agent")
    s = db.session
    first = f.subscription(s, agent)
    s.commit()
    other_lead = f.lead(s, owner=agent, project_=first.lead.project)
    _refused(db, lambda: f.subscription(s, agent, lead_=other_lead, unit_=first.unit))
    # once the first is withdrawn, the unit may be subscribed again; history stays
    first.status = "withdrawn"
    s.flush()
    second = f.subscription(s, agent, lead_=other_lead, unit_=first.unit)
    s.commit()
    assert {x.status for x in s.query(Subscription).filter_by(unit_id=first.unit_id)} == \
        {"withdrawn", "draft"}
    assert second.id


def test_r_sc_2_raw_sql_cannot_insert_a_second_live_subscription(db, make_user):
    agent = make_user("agent")
    first = f.subscription(db.session, agent)
    db.session.commit()
    with pytest.raises(IntegrityError):
        db.session.execute(text(
            "INSERT INTO subscription (number, project_id, lead_id, unit_id, agent_id, price, deposit,"
            " payment_method, status, subscribed_on, created_at) VALUES ('RAW1', :p, :l, :u, :a,"
            " 100, 10, 'one_off', 'active', '2026-11-26', '2026-11-26 00:00:00')"),
            {"p": first.project_id, "l": first.lead_id, "u": first.unit_id, "a": agent.id})
    db.session.rollback()


def test_r_lead_5_one_phone_is_one_customer_per_project(db, make_user):
    agent = make_user("agent")
    s = db.session
    lead = f.lead(s, owner=agent, phone="13800138000")
    s.commit()
    _refused(db, lambda: f.lead(s, owner=agent, project_=lead.project, phone="13800138000"))
    f.lead(s, owner=agent, phone="13800138000")  # another project may have the same customer
    s.commit()


def test_r_pay_5_an_overdue_event_is_written_once_per_instalment_due_date_and_level(db, make_user):
    inst = f.instalment(db.session, f.subscription(db.session, make_user("agent")))
    f.overdue_event(db.session, inst, level="warning")
    db.session.commit()
    _refused(db, lambda: f.overdue_event(db.session, inst, level="warning"))
    f.overdue_event(db.session, inst, level="lawyer_letter")
    f.overdue_event(db.session, inst, level="warning", due_on=inst.due_on + dt.timedelta(days=10))
    db.session.commit()


@pytest.mark.parametrize("sql", [
    "UPDATE instalment SET amount_paid = amount_due + 1",
    "UPDATE instalment SET amount_due = -5",
    "UPDATE instalment SET status = 'lost'",
    "UPDATE subscription SET price = 0",
    "UPDATE subscription SET status = 'sold'",
    "UPDATE unit SET status = 'reserved'",
    "UPDATE unit SET status = 'held'",  # a hold always names the customer it is for
    "UPDATE project SET lawyer_letter_day = 20",  # the ladder's levels stay in order
])
def test_checks_refuse_impossible_money_and_statuses(db, make_user, sql):
    f.instalment(db.session, f.subscription(db.session, make_user("agent")))
    db.session.commit()
    with pytest.raises(IntegrityError):
        db.session.execute(text(sql))
        db.session.flush()
    db.session.rollback()


def test_money_rows_are_restricted_not_cascaded(db, make_user):
    inst = f.instalment(db.session, f.subscription(db.session, make_user("agent")))
    db.session.commit()
    with pytest.raises(IntegrityError):
        db.session.execute(text("DELETE FROM subscription WHERE id = :id"),
                           {"id": inst.subscription_id})
    db.session.rollback()


def test_money_is_exact_decimal(db, make_user):
    sub = f.subscription(db.session, make_user("agent"), price=Decimal("1234567.89"))
    db.session.commit()
    db.session.expire_all()
    price = db.session.get(Subscription, sub.id).price
    assert isinstance(price, Decimal) and price == Decimal("1234567.89")


def test_the_ladders_expression_index_exists(db):
    # Alembic's comparison skips expression indexes, so this one is checked by name.
    if db.engine.dialect.name == "postgresql":
        sql = "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_instalment_open_effective_due'"
    else:
        sql = "SELECT sql FROM sqlite_master WHERE name = 'ix_instalment_open_effective_due'"
    definition = db.session.execute(text(sql)).scalar()
    assert definition and "coalesce" in definition.lower() and "paid" in definition
