"""External channels (issue 23, R-COM-1, 渠道报备): agencies and their people, who register a
customer's phone with a project before the visit.

A `channel_company` is a managed list; its people are users with the `channel` role, each tied to
one company by a `channel_member` row; they sign in and see only their own registrations.

A `channel_registration` is valid for the project's window (`Project.channel_window_days`) from
its day. The first valid registration of a phone in a project wins: the partial unique index
`uq_channel_registration_live_phone` (one `valid` or `confirmed` registration per project and
phone) decides two channels racing, as the lead's unique key decides two agents (R-LEAD-5). A
phone already a customer of the project, or already registered by another channel, is refused and
a `channel_conflict` goes to the manager with both sides. A visit within the window confirms the
registration (`confirmed`); one never visited expires.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String, Text, select, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, in_list, utcnow
from .leads import Lead
from .projects import Project
from .users import User

REGISTRATION_STATUSES = ("valid", "confirmed", "expired", "refused", "withdrawn")
LIVE_REGISTRATION = ("valid", "confirmed")  # the ones holding the phone (the partial unique index)
CHANNEL_CONFLICT_STATUSES = ("open", "kept", "awarded")
_LIVE_WHERE = text("status IN ('valid', 'confirmed')")


class ChannelCompany(Base):
    """An external channel or agency (渠道公司)."""

    __tablename__ = "channel_company"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    contact_name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    contact_phone: Mapped[str] = mapped_column(String(20), default="", server_default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __str__(self) -> str:
        return self.name


class ChannelMember(Base):
    """A channel user's company (one company per user)."""

    __tablename__ = "channel_member"

    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("channel_company.id", ondelete="RESTRICT"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship()
    company: Mapped[ChannelCompany] = relationship()


class ChannelRegistration(Base):
    """A channel's registration (报备) of a customer's phone with a project."""

    __tablename__ = "channel_registration"
    __table_args__ = (
        CheckConstraint(in_list("status", REGISTRATION_STATUSES), name="status_known"),
        CheckConstraint("valid_until >= registered_on", name="valid_after_registration"),
        # R-COM-1: the first valid registration of a phone in a project wins.
        Index("uq_channel_registration_live_phone", "project_id", "phone", unique=True,
              sqlite_where=_LIVE_WHERE, postgresql_where=_LIVE_WHERE),
        Index("ix_channel_registration_phone", "project_id", "phone", "registered_at"),
        Index("ix_channel_registration_by", "registered_by_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"))
    company_id: Mapped[int] = mapped_column(ForeignKey("channel_company.id", ondelete="RESTRICT"), index=True)
    registered_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    customer_name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(20))  # normalised
    registered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    registered_on: Mapped[dt.date]  # the office's day
    valid_until: Mapped[dt.date]  # last day a visit confirms it
    status: Mapped[str] = mapped_column(String(20), default="valid")
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id", ondelete="RESTRICT"), index=True)
    confirmed_at: Mapped[dt.datetime | None]
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")

    project: Mapped[Project] = relationship()
    company: Mapped[ChannelCompany] = relationship()
    registered_by: Mapped[User] = relationship()
    lead: Mapped[Lead | None] = relationship()

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.registered_by_id == user_id


class ChannelConflict(Base):
    """A refused registration, with what it ran into, for the manager to decide (R-COM-1)."""

    __tablename__ = "channel_conflict"
    __table_args__ = (
        CheckConstraint(in_list("status", CHANNEL_CONFLICT_STATUSES), name="status_known"),
        CheckConstraint("against_registration_id IS NOT NULL OR against_lead_id IS NOT NULL",
                        name="against_something"),
        Index("ix_channel_conflict_open", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"))
    registration_id: Mapped[int] = mapped_column(ForeignKey("channel_registration.id", ondelete="RESTRICT"),
                                                 index=True)  # the refused one
    against_registration_id: Mapped[int | None] = mapped_column(
        ForeignKey("channel_registration.id", ondelete="RESTRICT"))  # the channel that was first
    against_lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id", ondelete="RESTRICT"))  # the customer
    status: Mapped[str] = mapped_column(String(20), default="open")
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    decided_at: Mapped[dt.datetime | None]
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    registration: Mapped[ChannelRegistration] = relationship(foreign_keys=[registration_id])
    against_registration: Mapped[ChannelRegistration | None] = relationship(foreign_keys=[against_registration_id])
    against_lead: Mapped[Lead | None] = relationship()


def company_of(session, user_id: int) -> int | None:
    """The channel company a channel user works for, or None."""
    return session.scalar(select(ChannelMember.company_id).where(ChannelMember.user_id == user_id))
