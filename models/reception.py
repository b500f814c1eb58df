"""The sales floor (issue 23, R-RCP-1, R-RCP-2, R-LEAD-5): the day's reception rotation (接待轮序)
and the visit register.

A project's rotation is kept per office day: each agent on duty has one `rotation_entry` whose
`status` says whether he can receive now (`free`), is receiving, on a break or signed out, and
whose `queue_seq` orders the free agents — the next new visitor goes to the free agent with the
lowest; receiving sends him to the back. Everything that is not the plain next turn (a skip, a
reception out of turn, a make-up turn, a returning visitor received on the owner's behalf) is a
`rotation_event` with its reason, so the manager sees the day and its exceptions.

Every visit is a `visit` row (R-RCP-2): first or return, its source channel, party size, who
received it (and for whom), arrival and end. A first visit starts the project's protection period
(`Project.protection_days`) for its agent: `Lead.protected_until`.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (Boolean, CheckConstraint, ForeignKey, Index, SmallInteger, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, in_list, utcnow
from .leads import Lead
from .projects import Project
from .users import User

# R-RCP-2: where a visitor came from. `channel`: an external channel or agency (models.channels).
VISIT_CHANNELS = ("walk_in", "phone_call", "referral", "web", "advert", "fair", "channel")
VISIT_KINDS = ("first", "return")
ROTATION_STATUSES = ("free", "receiving", "break", "out")
# What a rotation_event records. The plain turns (`assign`) and the rotation's own moves
# (sign_in/out, break, back, finish) beside the exceptions a reason must explain.
ROTATION_EVENTS = ("sign_in", "sign_out", "break", "back", "assign", "finish",
                   "owner_return", "on_behalf", "skip", "out_of_turn", "make_up")
ROTATION_EXCEPTIONS = ("skip", "out_of_turn", "make_up", "on_behalf")  # a reason is required

# Called as hook(session, visit) after a visit is registered, in its transaction: later modules
# follow visits (models.channels: a visit within the window confirms the channel's registration).
VISIT_RECORDED: list = []


class RotationEntry(Base):
    """One agent on one project's rotation for one office day."""

    __tablename__ = "rotation_entry"
    __table_args__ = (
        UniqueConstraint("project_id", "day", "agent_id"),
        CheckConstraint(in_list("status", ROTATION_STATUSES), name="status_known"),
        CheckConstraint("receptions >= 0 AND skipped >= 0", name="counts_not_negative"),
        Index("ix_rotation_entry_next", "project_id", "day", "status", "queue_seq"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"))
    day: Mapped[dt.date]  # the office's day
    agent_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="free")
    queue_seq: Mapped[int] = mapped_column(default=0)  # the free agent with the lowest receives next
    receptions: Mapped[int] = mapped_column(default=0, server_default="0")  # new visitors received today
    skipped: Mapped[int] = mapped_column(default=0, server_default="0")  # turns passed over today
    signed_in_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    project: Mapped[Project] = relationship()
    agent: Mapped[User] = relationship()


class RotationEvent(Base):
    """What happened on a day's rotation; exceptions carry the reason (R-RCP-1)."""

    __tablename__ = "rotation_event"
    __table_args__ = (
        CheckConstraint(in_list("kind", ROTATION_EVENTS), name="kind_known"),
        CheckConstraint("NOT " + in_list("kind", ROTATION_EXCEPTIONS) + " OR reason <> ''",
                        name="exception_has_reason"),
        Index("ix_rotation_event_day", "project_id", "day", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"))
    day: Mapped[dt.date]
    kind: Mapped[str] = mapped_column(String(20))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"), index=True)
    # the agent whose turn it was, when another received (out of turn, skip)
    turn_of_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visit.id", ondelete="RESTRICT"), index=True)
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    agent: Mapped[User | None] = relationship(foreign_keys=[agent_id])
    turn_of: Mapped[User | None] = relationship(foreign_keys=[turn_of_id])
    by: Mapped[User] = relationship(foreign_keys=[by_id])

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.agent_id == user_id


class Visit(Base):
    """One visit to the sales office (R-RCP-2)."""

    __tablename__ = "visit"
    __table_args__ = (
        CheckConstraint(in_list("kind", VISIT_KINDS), name="kind_known"),
        CheckConstraint(in_list("channel", VISIT_CHANNELS), name="channel_known"),
        CheckConstraint("party_size >= 1 AND party_size <= 50", name="party_size_range"),
        CheckConstraint("ended_at IS NULL OR ended_at >= arrived_at", name="ends_after_arrival"),
        Index("ix_visit_project_arrived", "project_id", "arrived_at"),
        Index("ix_visit_phone", "project_id", "phone"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id", ondelete="RESTRICT"), index=True)
    phone: Mapped[str] = mapped_column(String(20))  # normalised (models.identity.normalise_phone)
    kind: Mapped[str] = mapped_column(String(10))
    channel: Mapped[str] = mapped_column(String(20))
    party_size: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")
    received_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"), index=True)
    # the customer's owner when another agent received him on the owner's behalf (no change of owner)
    on_behalf_of_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    in_turn: Mapped[bool] = mapped_column(Boolean, default=True)  # received by the rotation's next free agent
    registration_id: Mapped[int | None] = mapped_column(
        ForeignKey("channel_registration.id", ondelete="RESTRICT"), index=True)  # the 报备 it confirmed
    arrived_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[dt.datetime | None]
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    registered_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))  # at the desk

    project: Mapped[Project] = relationship()
    lead: Mapped[Lead | None] = relationship()
    received_by: Mapped[User | None] = relationship(foreign_keys=[received_by_id])
    on_behalf_of: Mapped[User | None] = relationship(foreign_keys=[on_behalf_of_id])
    registered_by: Mapped[User] = relationship(foreign_keys=[registered_by_id])

    @classmethod
    def owned_by(cls, user_id: int):
        from sqlalchemy import or_

        return or_(cls.received_by_id == user_id, cls.on_behalf_of_id == user_id)


def rotation_fairness(session, project_id: int | None, start: dt.date, end: dt.date) -> list[dict]:
    """The rotation's fairness over `start`..`end` (office days), per agent: new visitors received
    in turn, turns skipped, receptions out of turn, make-up turns, visitors received on an owner's
    behalf (R-RCP-1). interim: replaced at merge (the rotation's module owns it)."""
    from sqlalchemy import case, func, select

    where = [RotationEntry.day.between(start, end)]
    if project_id:
        where.append(RotationEntry.project_id == project_id)
    rows: dict[int, dict] = {}
    for agent_id, name, receptions, skipped in session.execute(
            select(RotationEntry.agent_id, User.display_name, func.sum(RotationEntry.receptions),
                   func.sum(RotationEntry.skipped))
            .join(User, User.id == RotationEntry.agent_id).where(*where)
            .group_by(RotationEntry.agent_id, User.display_name)):
        rows[agent_id] = {"agent_id": agent_id, "agent": name, "receptions": int(receptions or 0),
                          "skipped": int(skipped or 0), "out_of_turn": 0, "make_up": 0, "on_behalf": 0}
    where = [RotationEvent.day.between(start, end), RotationEvent.agent_id.isnot(None),
             RotationEvent.kind.in_(("out_of_turn", "make_up", "on_behalf"))]
    if project_id:
        where.append(RotationEvent.project_id == project_id)
    counts = select(RotationEvent.agent_id, User.display_name,
                    *[func.sum(case((RotationEvent.kind == k, 1), else_=0)) for k in ("out_of_turn", "make_up",
                                                                                      "on_behalf")])
    for agent_id, name, out_of_turn, make_up, on_behalf in session.execute(
            counts.join(User, User.id == RotationEvent.agent_id).where(*where)
            .group_by(RotationEvent.agent_id, User.display_name)):
        row = rows.setdefault(agent_id, {"agent_id": agent_id, "agent": name, "receptions": 0, "skipped": 0,
                                         "out_of_turn": 0, "make_up": 0, "on_behalf": 0})
        row.update(out_of_turn=int(out_of_turn or 0), make_up=int(make_up or 0), on_behalf=int(on_behalf or 0))
    return sorted(rows.values(), key=lambda r: r["agent"])
