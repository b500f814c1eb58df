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


# --- Many rows in one statement (PostgreSQL) --------------------------------------------------------
# SQLAlchemy's multi-row VALUES (insertmanyvalues, an executemany) sends one placeholder per value:
# 1,000 rows × 14 columns is a 14,000-placeholder statement that psycopg parses again for every
# batch (≈ 0.1 ms a row, more than the database's own work); an array per column costs the driver
# an escape per text value. Here the rows travel as ONE JSON parameter that `json_to_recordset`
# turns back into typed rows: the statement is the same short text whatever the count.
MANY_FROM = 100  # fewer rows: the ordinary statements are as fast and simpler


def _sql_type(column) -> str:
    from sqlalchemy import JSON, BigInteger, Boolean, Date, DateTime, Integer, Numeric
    kind = column.type
    for sql_type, name in ((BigInteger, "bigint"), (Integer, "integer"), (Numeric, "numeric"), (DateTime, "timestamp"),
                           (Date, "date"), (Boolean, "boolean"), (JSON, "json")):
        if isinstance(kind, sql_type):
            return name
    return "text"


def _quoted(name: str) -> str:
    return f'"{name}"'


def _plain(value):
    """json.dumps's `default`: what JSON has no type for, as PostgreSQL's input reads it."""
    import datetime as dt
    import decimal
    import enum
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not for an SQL row")


def rows_as_json(types: dict[str, str], rows: list[dict], default=None) -> tuple[str, tuple]:
    """PostgreSQL: `json_to_recordset(%s) AS v("c1" t1, …)` — `rows` (dicts; `types`: column name
    → SQL type) as a FROM item `v` — and its ONE parameter, the rows as a JSON array, for
    `exec_driver_sql`. Neither the statement nor its parameters grow in number with the rows, and
    the driver sends one string (Python's C encoder writes it; `default` for other types)."""
    import json
    columns = ", ".join(f"{_quoted(name)} {kind}" for name, kind in types.items())
    data = json.dumps([{name: row[name] for name in types} for row in rows], default=default or _plain,
                      ensure_ascii=False)
    return f"json_to_recordset(%s) AS v({columns})", (data,)


def insert_rows(session, table, rows: list[dict], returning: tuple = (), conflict: tuple | None = None,
                conflict_where: str | None = None, default=None) -> list:
    """INSERT `rows` (dicts with the same keys) into `table` (a Table) and return the `returning`
    columns of the rows written. `conflict`: the columns of a unique index (with `conflict_where`,
    the predicate of a partial one): a row whose key is taken is skipped (`ON CONFLICT … DO
    NOTHING`, another run wrote it), everything else refused — on both databases. On PostgreSQL
    from MANY_FROM rows, ONE statement reading the rows from one JSON parameter (`default`: how
    json.dumps writes other types); else SQLAlchemy's own statement (an executemany)."""
    if not rows:
        return []
    names = list(rows[0])
    if is_postgresql(session) and len(rows) >= MANY_FROM:
        types = {n: _sql_type(table.c[n]) for n in names}
        source, params = rows_as_json(types, rows, default)
        select_list = ", ".join(f"v.{_quoted(n)}" for n in names)
        sql = f"INSERT INTO {_quoted(table.name)} ({', '.join(_quoted(n) for n in names)}) SELECT {select_list} FROM {source}"
        if conflict:
            sql += f" ON CONFLICT ({', '.join(conflict)})" + (f" WHERE {conflict_where}" if conflict_where else "") + \
                   " DO NOTHING"
        if returning:
            sql += " RETURNING " + ", ".join(_quoted(c) for c in returning)
        result = session.connection().exec_driver_sql(sql, params)
        return result.all() if returning else []
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(table)
    if conflict:
        from sqlalchemy import text
        statement = statement.on_conflict_do_nothing(
            index_elements=list(conflict), index_where=text(conflict_where) if conflict_where else None)
    if not returning:
        session.connection().execute(statement, rows)
        return []
    statement = statement.returning(*(table.c[c] for c in returning))
    written = []
    for start in range(0, len(rows), 1000):
        written += session.connection().execute(statement, rows[start:start + 1000]).all()
    return written


def among(session, column, ids):
    """A WHERE clause: `column` is one of `ids` — on PostgreSQL `= ANY(array)`, one parameter
    however many ids (an IN list sends one placeholder each, parsed again every time)."""
    from sqlalchemy import Integer, any_, bindparam
    from sqlalchemy.dialects.postgresql import ARRAY
    ids = list(ids)
    if is_postgresql(session):
        return column == any_(bindparam(None, ids, type_=ARRAY(Integer)))
    return column.in_(ids)
