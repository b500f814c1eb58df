"""Which database this is: a random fingerprint kept in the database itself (one row), so a job
stamped by one office's app is recognised as foreign by a worker of another office even when
both share a Redis database and their instance names collide (issue 18, item 13)."""
from __future__ import annotations

import uuid

from sqlalchemy import String, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class InstanceIdentity(Base):
    __tablename__ = "instance_identity"

    id: Mapped[int] = mapped_column(primary_key=True)  # always 1: one row
    fingerprint: Mapped[str] = mapped_column(String(32))


def database_fingerprint(engine) -> str:
    """The database's fingerprint, created on first use (own short transaction, not audited:
    it describes the database, not the office's data)."""
    table = InstanceIdentity.__table__
    with engine.connect() as conn:
        found = conn.scalar(select(table.c.fingerprint).where(table.c.id == 1))
    if found:
        return found
    try:
        with engine.begin() as conn:
            conn.execute(insert(table).values(id=1, fingerprint=uuid.uuid4().hex))
    except IntegrityError:  # another process made it first: theirs is the one
        pass
    with engine.connect() as conn:
        return conn.scalar(select(table.c.fingerprint).where(table.c.id == 1))
