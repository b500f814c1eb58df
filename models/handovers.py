"""Handover (交房, R-AFT-4): notices to buyers whose money is settled, appointments, the
inspection checklist, defects (after-sales tickets, models.tickets), keys signed for.

A deal is handed over only when nothing is owed on it — the plan, late fees, the true-up
(`models.charges`) — and the refusal says what is. One handover in progress per deal.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, select, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, in_list, utcnow
from .deals import Subscription, via_subscription
from .inventory import Unit
from .users import User

HANDOVER_STATUSES = ("notified", "booked", "inspected", "handed_over", "cancelled")


class Handover(Base):
    """A deal's handover, from the notice to the keys."""

    __tablename__ = "handover"
    __table_args__ = (
        CheckConstraint(in_list("status", HANDOVER_STATUSES), name="status_known"),
        CheckConstraint("status <> 'handed_over' OR (keys_handed_on IS NOT NULL AND signed_by <> '')",
                        name="keys_signed_for"),
        Index("uq_handover_live", "subscription_id", unique=True,
              sqlite_where=text("status <> 'cancelled'"), postgresql_where=text("status <> 'cancelled'")),
        Index("ix_handover_status", "status", "appointment_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id", ondelete="RESTRICT"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id", ondelete="RESTRICT"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="notified")
    notified_on: Mapped[dt.date]
    appointment_at: Mapped[dt.datetime | None]  # UTC; shown in the office's time
    inspected_on: Mapped[dt.date | None]
    keys_handed_on: Mapped[dt.date | None]
    keys_count: Mapped[int] = mapped_column(default=0, server_default="0")
    meter_readings: Mapped[str] = mapped_column(Text, default="", server_default="")
    signed_by: Mapped[str] = mapped_column(String(100), default="", server_default="")  # who signed for the keys
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    notified_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    handed_over_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    subscription: Mapped[Subscription] = relationship()
    unit: Mapped[Unit] = relationship()
    items: Mapped[list["HandoverItem"]] = relationship(back_populates="handover", order_by="HandoverItem.seq")
    handed_over_by: Mapped[User | None] = relationship(foreign_keys=[handed_over_by_id])

    def __str__(self) -> str:
        return f"{self.subscription.number if self.subscription else ''} {self.unit or ''}".strip()

    @classmethod
    def owned_by(cls, user_id: int):
        return via_subscription(cls.subscription_id, user_id)


class HandoverItem(Base):
    """One item of a unit's inspection: passed or not, with a note (a failure opens a defect)."""

    __tablename__ = "handover_item"
    __table_args__ = (UniqueConstraint("handover_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    handover_id: Mapped[int] = mapped_column(ForeignKey("handover.id", ondelete="RESTRICT"), index=True)
    seq: Mapped[int]
    item: Mapped[str] = mapped_column(String(100))
    passed: Mapped[bool | None]
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id", ondelete="RESTRICT"))  # its defect

    handover: Mapped[Handover] = relationship(back_populates="items")

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.handover_id.in_(select(Handover.id).where(Handover.owned_by(user_id)))
