"""search: n-gram indexes for searching customers by any part of a name or phone number

PostgreSQL only (SQLite searches by scanning, as before). See models/search.py: pg_trgm cannot
serve a two-character search such as 王伟, which is most name searches; these indexes can.
200,000 customers: by name 232 ms → 0.6 ms of SQL, by phone 213 ms → 2 ms.

Revision ID: 5d2b7e9c1a43
Revises: 8a4e6c2d9f31
Create Date: 2026-11-28 01:30:00

"""
from alembic import op
import sqlalchemy as sa

from migrations import online


revision = '5d2b7e9c1a43'
down_revision = '8a4e6c2d9f31'
branch_labels = None
depends_on = None

# The functions as models/search.py has them (a migration keeps its own copy).
FUNCTIONS = """
CREATE OR REPLACE FUNCTION search_grams(value text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT substr(lower(value), i, n)), '{}')
  FROM generate_series(2, 3) AS n, generate_series(1, length(value) - n + 1) AS i
$$;
CREATE OR REPLACE FUNCTION search_keys(value text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT substr(lower(value), i, least(length(value), 3))), '{}')
  FROM generate_series(1, greatest(length(value) - 2, 1)) AS i
$$;
"""
INDEXES = (("ix_lead_name_grams", "lead", "name"), ("ix_lead_phone_grams", "lead", "phone"))


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTIONS)
    for name, table, column in INDEXES:  # CONCURRENTLY: customers are registered meanwhile
        online.create_index(name, table, [sa.text(f"search_grams({column})")], postgresql_using="gin")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, table, _ in INDEXES:
        online.drop_index(name, table)
    op.execute("DROP FUNCTION search_keys(text)")
    op.execute("DROP FUNCTION search_grams(text)")
