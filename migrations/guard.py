"""A downgrade that would drop data refuses unless the operator says so (issue 18, item 15).

`flask db downgrade base` used to drop every table, the audit trail included, without a word.
Before any step runs, env.py asks `refusal()` what the downgrade would lose:

- each downgrade step's `downgrade()` is run dry, against a recorder standing in for `op`
  (nothing reaches the database), which notes every table and column it drops;
- the database is then asked whether those tables hold rows (a column: rows where it is not
  NULL). A downgrade that drops nothing but empty tables and columns goes ahead.

No migration has to declare anything, so a new migration is covered by default. What a dry run
cannot see through — raw SQL that drops or deletes (`op.execute("DROP TABLE …")`), a downgrade
that reads the database, or one that fails when run dry — counts as dropping every table, so it
is refused whenever any table holds a row. One optional declaration: a migration whose upgrade
seeds a table with fixed rows (0001: the eight roles; 0022a: the ninth; 0023a: the tenth) lists it in `SEED_TABLES`;
its downgrade drops those rows freely, since upgrading again writes them back. A lone
`DELETE FROM <table> [WHERE …]` counts as dropping that table's rows only.

The refusal is lifted for one command by `SALESDESK_ALLOW_DATA_LOSS=1` or
`flask db downgrade -x allow_data_loss=1 …` (take a backup first: `flask --app app backup`).
"""
from __future__ import annotations

import contextlib
import os
import re

import sqlalchemy as sa
from alembic import op as op_module
from alembic.runtime.migration import RevisionStep

ALLOW_ENV = "SALESDESK_ALLOW_DATA_LOSS"
ALLOW_X = "allow_data_loss"
EVERYTHING = "*"  # a step whose losses a dry run cannot tell
# A single statement deleting rows of one table (e.g. a seeded row a later migration added).
DELETE_FROM_ONE_TABLE = re.compile(r'\s*DELETE\s+FROM\s+("?\w+"?)(\s+WHERE\s+[^;]*)?;?\s*', re.I)
DESTRUCTIVE_SQL = re.compile(r"\b(DROP\s+(TABLE|COLUMN|SCHEMA)|DELETE\s+FROM|TRUNCATE)\b", re.I)


def allowed(x_arguments: dict) -> bool:
    def yes(value):
        return str(value or "").strip().lower() in ("1", "true", "yes", "on")
    return yes(os.environ.get(ALLOW_ENV)) or yes(x_arguments.get(ALLOW_X))


class _Unknowable(Exception):
    """The dry run met something it cannot judge (a read of the database, say)."""


class _Bind:
    """What a migration may ask of `op.get_bind()` in a dry run: its dialect, nothing else."""

    def __init__(self, dialect):
        self.dialect = dialect
        self.engine = self

    def __getattr__(self, name):
        raise _Unknowable(f"get_bind().{name}")


class _Context:
    def __init__(self, dialect):
        self.dialect = dialect
        self.as_sql = False

    def autocommit_block(self):
        return contextlib.nullcontext()

    def __getattr__(self, name):
        raise _Unknowable(f"get_context().{name}")


class _Batch:
    def __init__(self, recorder, table):
        self._recorder, self._table = recorder, table

    def drop_column(self, column, **kw):
        self._recorder.drops.add((self._table, column))

    def f(self, name):
        return name

    def __getattr__(self, name):
        return _noop


def _noop(*args, **kw):
    return None


class _Recorder:
    """Stands in for `alembic.op` while a downgrade runs dry: notes drops, does nothing."""

    def __init__(self, dialect):
        self.dialect = dialect
        self.drops: set[tuple[str, str | None]] = set()  # (table, column or None for the table)

    def drop_table(self, table_name, **kw):
        self.drops.add((table_name, None))

    def drop_column(self, table_name, column_name, **kw):
        self.drops.add((table_name, column_name))

    @contextlib.contextmanager
    def batch_alter_table(self, table_name, **kw):
        yield _Batch(self, table_name)

    def execute(self, sql, *args, **kw):
        text = str(sql)
        one_table = DELETE_FROM_ONE_TABLE.fullmatch(text)
        if one_table:  # one DELETE of one table: that table's rows, nothing else
            self.drops.add((one_table.group(1).strip('"'), None))
        elif DESTRUCTIVE_SQL.search(text):
            self.drops.add((EVERYTHING, None))

    def get_bind(self):
        return _Bind(self.dialect)

    def get_context(self):
        return _Context(self.dialect)

    def f(self, name):
        return name

    def __getattr__(self, name):
        return _noop


@contextlib.contextmanager
def _standing_in_for_op(recorder):
    """`alembic.op`'s functions call the module's `_proxy` (alembic/util/langhelpers.py)."""
    saved = op_module.__dict__.get("_proxy")
    op_module._proxy = recorder
    try:
        yield
    finally:
        op_module._proxy = saved


def drops_of(step, dialect) -> set[tuple[str, str | None]]:
    """The tables (column None) and columns one downgrade step would drop, by a dry run."""
    recorder = _Recorder(dialect)
    try:
        with _standing_in_for_op(recorder):
            step.revision.module.downgrade()
    except Exception:  # noqa: BLE001 - whatever stops a dry run makes the step unknowable
        return {(EVERYTHING, None)}
    seeded = set(getattr(step.revision.module, "SEED_TABLES", ()))
    return {(table, column) for table, column in recorder.drops if table not in seeded}


def _holds_data(connection, inspector, table, column) -> int:
    if not inspector.has_table(table):
        return 0
    quoted = connection.dialect.identifier_preparer.quote
    where = ""
    if column is not None:
        if column not in {c["name"] for c in inspector.get_columns(table)}:
            return 0
        where = f" WHERE {quoted(column)} IS NOT NULL"
    return connection.exec_driver_sql(f"SELECT count(*) FROM {quoted(table)}{where}").scalar()


def _named(step) -> str:
    return f"{step.revision.revision}, {(step.revision.doc or '').splitlines()[0]}"


def losses(connection, steps) -> list[tuple[str, str, str | None, int]]:
    """(revision, table, column, rows) for every drop of a downgrade that would lose rows."""
    inspector = sa.inspect(connection)
    found = []
    seeded = set()
    for step in steps:
        seeded |= set(getattr(step.revision.module, "SEED_TABLES", ()))
    for step in steps:
        for table, column in sorted(drops_of(step, connection.dialect), key=str):
            if table == EVERYTHING:
                for name in inspector.get_table_names():
                    if name != "alembic_version" and name not in seeded:
                        rows = _holds_data(connection, inspector, name, None)
                        if rows:
                            found.append((_named(step), name, None, rows))
                continue
            rows = _holds_data(connection, inspector, table, column)
            if rows:
                found.append((_named(step), table, column, rows))
    return found


def refusal(connection, migration_context, x_arguments: dict) -> str | None:
    """Why this run must not go ahead (a downgrade losing rows without the flag), or None."""
    steps = [step for step in migration_context._migrations_fn(
        migration_context.get_current_heads(), migration_context)
        if isinstance(step, RevisionStep) and step.is_downgrade]
    if not steps:
        return None
    lost = losses(connection, steps)
    if not lost:
        return None
    what = "\n".join(f"  {table}{'.' + column if column else ''}: {rows:,} row(s) "
                     f"(dropped by the downgrade of {revision})" for revision, table, column, rows in lost)
    if allowed(x_arguments):
        import logging
        logging.getLogger("alembic.env").warning(
            "downgrading with %s: these rows are dropped:\n%s", ALLOW_ENV, what)
        return None
    return ("Refused: this downgrade would drop data that the database holds:\n"
            f"{what}\n"
            "Take a backup first (flask --app app backup --out FILE, or pg_dump -Fc), then run it "
            f"again with {ALLOW_ENV}=1 or `flask db downgrade -x {ALLOW_X}=1 …` if the data may go.")
