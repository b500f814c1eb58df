"""Indexes on big tables built without stopping writes: CREATE/DROP INDEX CONCURRENTLY on PostgreSQL.

A plain CREATE INDEX holds a SHARE lock on its table until the migration commits: every INSERT,
UPDATE and DELETE of the table waits meanwhile (a 0.25-scale upgrade blocked writes 1.3 s).
CONCURRENTLY takes SHARE UPDATE EXCLUSIVE instead, which writers do not conflict with; it cannot
run inside a transaction, hence Alembic's autocommit block (env.py runs each migration in its own
transaction on PostgreSQL, so the block commits only that migration's earlier steps).

A concurrent build that fails (interrupted, or a unique index meeting duplicates) leaves an
INVALID index behind. `create_index` drops such a leftover and builds it again, and skips an
index that already exists and is valid, so running the migration again completes it. SQLite (the
embedded mode, one process) gets the plain CREATE/DROP INDEX.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def index_state(name: str):
    """True: a valid index of that name; False: an INVALID leftover; None: none (PostgreSQL)."""
    return op.get_bind().execute(
        sa.text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(quote_ident(:name))"),
        {"name": name}).scalar()


def create_index(name: str, table: str, columns, **kw) -> None:
    if not _postgresql():
        op.create_index(name, table, columns, **kw)
        return
    context = op.get_context()
    with context.autocommit_block():
        state = None if context.as_sql else index_state(name)
        if state:
            return  # built by an earlier run that stopped before recording the revision
        if state is False:  # left INVALID by a concurrent build that failed: build it again
            op.drop_index(name, table_name=table, postgresql_concurrently=True)
        op.create_index(name, table, columns, postgresql_concurrently=True, **kw)


def drop_index(name: str, table: str, **kw) -> None:
    if not _postgresql():
        op.drop_index(name, table_name=table, **kw)
        return
    with op.get_context().autocommit_block():
        op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
