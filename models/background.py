"""What background exports and price-list imports have in common: a row of work a user asked
for and a job does — who asked, when, and when its run started and finished."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from .base import utcnow
from .users import User


class RequestedWork:
    """The columns of Export and PriceListImport that say who asked and when (after the entity's own)."""

    requested_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]

    @declared_attr
    def requested_by(cls) -> Mapped[User]:
        return relationship()

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.requested_by_id == user_id
