"""Declarative base, shared column types and helpers for every aggregate."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

from sqlalchemy import DateTime, MetaData, Numeric
from sqlalchemy.orm import DeclarativeBase, mapped_column, registry

from .search import install as install_search_functions

# Stable constraint names so Alembic can alter them on SQLite and PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Money = Annotated[Decimal, mapped_column(Numeric(14, 2))]


class Base(DeclarativeBase):
    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={
            Decimal: Numeric(14, 2),
            dt.datetime: DateTime(),  # naive UTC everywhere; local dates are `date` columns
        },
    )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {getattr(self, 'id', '?')}>"


install_search_functions(Base.metadata)  # before create_all's tables on PostgreSQL (models/search.py)


def utcnow() -> dt.datetime:
    """Naive UTC timestamp (what every DateTime column stores)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def in_list(column: str, values) -> str:
    """SQL for a CHECK that a status column holds one of `values`."""
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


OFFICE_TZ = "Asia/Shanghai"


def office_today() -> dt.date:
    """Today's date at the sales office (Asia/Shanghai, or SALESDESK_TIMEZONE)."""
    from zoneinfo import ZoneInfo

    from flask import current_app, has_app_context
    tz = current_app.config.get("TIMEZONE", OFFICE_TZ) if has_app_context() else OFFICE_TZ
    return dt.datetime.now(ZoneInfo(tz)).date()


def office_midnight_utc(day: dt.date) -> dt.datetime:
    """The office's midnight starting `day`, as the naive UTC timestamp the columns store."""
    from zoneinfo import ZoneInfo

    from flask import current_app, has_app_context
    tz = current_app.config.get("TIMEZONE", OFFICE_TZ) if has_app_context() else OFFICE_TZ
    local = dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo(tz))
    return local.astimezone(dt.timezone.utc).replace(tzinfo=None)


def office_to_utc(local: dt.datetime) -> dt.datetime:
    """An office-time (Asia/Shanghai) wall-clock datetime as the naive UTC the columns store."""
    from zoneinfo import ZoneInfo

    from flask import current_app, has_app_context
    tz = current_app.config.get("TIMEZONE", OFFICE_TZ) if has_app_context() else OFFICE_TZ
    return local.replace(tzinfo=ZoneInfo(tz)).astimezone(dt.timezone.utc).replace(tzinfo=None)
