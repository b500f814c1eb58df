"""Declarative base, shared column types and helpers for every aggregate."""
from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal
from typing import Annotated
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, MetaData, Numeric
from sqlalchemy.orm import DeclarativeBase, mapped_column, registry


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




def utcnow() -> dt.datetime:
    """Naive UTC timestamp (what every DateTime column stores)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def in_list(column: str, values) -> str:
    """SQL for a CHECK that a status column holds one of `values`."""
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


OFFICE_TZ = "Asia/Shanghai"  # the default of SALESDESK_TIMEZONE (config.py)


@functools.lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def office_zone() -> ZoneInfo:
    """The sales office's time zone: the app's TIMEZONE (SALESDESK_TIMEZONE), Asia/Shanghai
    outside an app. The one place that decides it: every date and time a person reads or types
    goes through the helpers below."""
    from flask import current_app, has_app_context
    return _zone(current_app.config.get("TIMEZONE", OFFICE_TZ) if has_app_context() else OFFICE_TZ)


def office_local(value: dt.datetime | None) -> dt.datetime | None:
    """A stored timestamp (naive UTC, like every DateTime column) as the office's naive wall-clock
    time. The one converter from UTC to office time (grids, pages, exports, PDFs, messages)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(office_zone()).replace(tzinfo=None)


def office_time(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored (naive UTC) timestamp as staff read it, in the office's time zone: 2026-12-07 15:30
    (empty when there is none). The Jinja filter `office_time` of the pages and the PDFs."""
    local = office_local(value)
    return "" if local is None else local.strftime(fmt)


def office_today() -> dt.date:
    """Today's date at the sales office (Asia/Shanghai, or SALESDESK_TIMEZONE)."""
    return dt.datetime.now(office_zone()).date()


def office_midnight_utc(day: dt.date) -> dt.datetime:
    """The office's midnight starting `day`, as the naive UTC timestamp the columns store."""
    local = dt.datetime.combine(day, dt.time(), tzinfo=office_zone())
    return local.astimezone(dt.timezone.utc).replace(tzinfo=None)


def office_to_utc(local: dt.datetime) -> dt.datetime:
    """An office-time wall-clock datetime (as typed) as the naive UTC the columns store."""
    return local.replace(tzinfo=office_zone()).astimezone(dt.timezone.utc).replace(tzinfo=None)
