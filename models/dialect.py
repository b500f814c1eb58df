"""What differs between the two databases the office runs on (SQLite embedded, PostgreSQL in
production), in one place, so rules never branch on the dialect themselves."""
from __future__ import annotations


def insert_ignoring_duplicates(session, entity, unique_columns: list[str], index_where=None):
    """An INSERT of `entity` rows that skips a row whose `unique_columns` are already taken (another
    run wrote it meanwhile) and refuses everything else: `ON CONFLICT (…) DO NOTHING` on both
    databases. SQLite's `INSERT OR IGNORE` also swallowed CHECK and NOT NULL violations, which
    PostgreSQL reported: a wrong row vanished on one database and failed on the other.
    `index_where`: the predicate of a partial unique index (PostgreSQL infers the index from it)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(entity).on_conflict_do_nothing(index_elements=unique_columns, index_where=index_where)


def is_postgresql(session) -> bool:
    """Whether `session` talks to PostgreSQL (else SQLite)."""
    return session.get_bind().dialect.name == "postgresql"


def row_estimate(session, table: str) -> int | None:
    """PostgreSQL's own estimate of `table`'s row count (pg_class.reltuples, kept by ANALYZE and
    autovacuum), read at no cost; None on SQLite, or when the table was never analysed."""
    if not is_postgresql(session):
        return None
    from sqlalchemy import text
    estimate = session.scalar(text("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(:t)"),
                              {"t": table})
    return int(estimate) if estimate is not None and estimate >= 0 else None


def days_between(session, earlier, later):
    """SQL for the days from `earlier` to `later` (a date column and a date, or two columns):
    a date difference on PostgreSQL, julian days on SQLite (which keeps dates as text)."""
    if is_postgresql(session):
        return later - earlier
    import datetime as dt

    from sqlalchemy import func

    def day(value):
        return value.isoformat() if isinstance(value, dt.date) else value
    return func.julianday(day(later)) - func.julianday(day(earlier))
