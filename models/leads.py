"""Customers (leads), their follow-ups, and the kept records of forfeited deals."""
from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, in_list, utcnow
from .inventory import Project
from .users import User

LEAD_SOURCES = ("phone_call", "walk_in", "referral", "advert", "web", "fair", "other")
LEAD_STAGES = ("new", "contacted", "visited", "subscribed", "signed", "lost")
FOLLOW_UP_CHANNELS = ("phone", "visit", "wechat", "other")


def normalise_phone(raw: str) -> str:
    """Digits of a mainland number without spaces, dashes, brackets or the +86 prefix."""
    digits = re.sub(r"[\s\-()（）]", "", raw or "")
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    return digits


def mask_id_number(id_number: str | None) -> str:
    """430***********1234: first 3 and last 4 characters kept."""
    if not id_number:
        return ""
    if len(id_number) <= 7:
        return "*" * len(id_number)
    return id_number[:3] + "*" * (len(id_number) - 7) + id_number[-4:]


class Lead(Base):
    __tablename__ = "lead"
    __table_args__ = (
        UniqueConstraint("project_id", "phone"),  # R-LEAD-5: one customer per phone per project
        CheckConstraint(in_list("source", LEAD_SOURCES), name="source_known"),
        CheckConstraint(in_list("stage", LEAD_STAGES), name="stage_known"),
        Index("ix_lead_owner_next", "owner_id", "next_follow_up_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(20))
    id_number: Mapped[str | None] = mapped_column(String(30))
    address: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(20))
    needs: Mapped[str] = mapped_column(Text, default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    stage: Mapped[str] = mapped_column(String(20), default="new")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"), index=True)
    registered_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    registered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    next_follow_up_on: Mapped[dt.date | None]

    project: Mapped[Project] = relationship()
    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id])
    registered_by: Mapped[User] = relationship(foreign_keys=[registered_by_id])
    follow_ups: Mapped[list["FollowUp"]] = relationship(back_populates="lead",
                                                        order_by="FollowUp.at.desc()")

    def __str__(self) -> str:
        return f"{self.name} {self.phone[:3]}****{self.phone[-4:]}" if len(self.phone) >= 7 else self.name

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.owner_id == user_id


class FollowUp(Base):
    """One follow-up contact with a lead (R-LEAD-3), with the manager's feedback (R-LEAD-4)."""

    __tablename__ = "follow_up"
    __table_args__ = (
        CheckConstraint(in_list("channel", FOLLOW_UP_CHANNELS), name="channel_known"),
        Index("ix_follow_up_lead_at", "lead_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("lead.id", ondelete="RESTRICT"))
    agent_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    channel: Mapped[str] = mapped_column(String(20))
    content: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(Text, default="")
    next_on: Mapped[dt.date | None]
    manager_feedback: Mapped[str] = mapped_column(Text, default="")
    feedback_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))

    lead: Mapped[Lead] = relationship(back_populates="follow_ups")
    agent: Mapped[User] = relationship(foreign_keys=[agent_id])

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.lead_id.in_(select(Lead.id).where(Lead.owner_id == user_id))


class LeadArchive(Base):
    """A forfeited or withdrawn deal's customer records, kept apart and never deleted (R-PAY-5)."""

    __tablename__ = "lead_archive"

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("lead.id", ondelete="RESTRICT"), index=True)
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscription.id", ondelete="RESTRICT"), index=True)
    reason: Mapped[str] = mapped_column(String(40))
    snapshot: Mapped[dict] = mapped_column(JSON)
    archived_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    archived_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))

    lead: Mapped[Lead] = relationship()
