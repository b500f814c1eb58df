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

from flask_babel import lazy_gettext as _l
from sqlalchemy import (Boolean, CheckConstraint, ForeignKey, Index, SmallInteger, String, Text,
                        UniqueConstraint, func, select)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .audit import audit_context
from .base import Base, in_list, office_midnight_utc, office_today, utcnow
from .channels import ChannelCompany, ChannelRegistration, confirm_by_visit
from .errors import RuleViolation
from .leads import Lead, LeadConflict, protection_status, register_lead, validate_phone
from .notifications import notify
from .permissions import require
from .privacy import mask_phone, mask_value
from .projects import Project
from .submissions import claim, settle
from .users import User, users_with_roles

# R-RCP-2: where a visitor came from. `channel`: an external channel or agency (models.channels).
VISIT_CHANNELS = ("walk_in", "phone_call", "referral", "web", "advert", "fair", "channel")
VISIT_KINDS = ("first", "return")
ROTATION_STATUSES = ("free", "receiving", "break", "out")
# What a rotation_event records. The plain turns (`assign`) and the rotation's own moves
# (sign_in/out, break, back, finish) beside the exceptions a reason must explain.
ROTATION_EVENTS = ("sign_in", "sign_out", "break", "back", "assign", "finish",
                   "owner_return", "on_behalf", "skip", "out_of_turn", "make_up")
ROTATION_EXCEPTIONS = ("skip", "out_of_turn", "make_up", "on_behalf")  # a reason is required

# Called as hook(session, visit) after a visit is registered, in its transaction: what follows
# visits (models.channels.confirm_by_visit: a visit within the window confirms the channel's
# registration). Listed here, by the module that calls them, so models form a line
# (reception → channels), with no circle.
VISIT_RECORDED: list = [confirm_by_visit]


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

    project: Mapped[Project] = relationship()  # the manager's day filters by it (no column added)
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


# --- The rotation's operations (R-RCP-1) ----------------------------------------------------------
#
# Every move of a project's day locks the day's entries first (`_lock_day`, ORDER BY id FOR UPDATE:
# one order, so two desks never deadlock), then reads who is next with `next_free`: two desks
# receiving at the same moment are served one after the other, the second seeing the first's
# move. SQLite writes one transaction at a time, which gives the same order.

# A visit's channel → the lead source of a customer registered at the desk (R-LEAD-1).
LEAD_SOURCE_OF_CHANNEL = {"walk_in": "walk_in", "phone_call": "phone_call", "referral": "referral",
                          "web": "web", "advert": "advert", "fair": "fair", "channel": "channel"}
MOVES = {  # move → (statuses it starts from, status it ends in)
    "sign_in": (("out",), "free"),
    "sign_out": (("free", "break"), "out"),
    "break": (("free",), "break"),
    "back": (("break",), "free"),
}
_MOVE_ACTIONS = {"sign_in": "rotation_sign_in", "sign_out": "rotation_sign_out", "break": "rotation_break",
                 "back": "rotation_back"}


def _manages(by: User) -> bool:
    return by.has_role("admin", "sales_manager")


def _lock_day(session, project_id: int, day: dt.date) -> list[RotationEntry]:
    """The day's entries, locked (PostgreSQL) and read afresh: every rotation move starts here."""
    return list(session.scalars(
        select(RotationEntry).where(RotationEntry.project_id == project_id, RotationEntry.day == day)
        .order_by(RotationEntry.id).with_for_update().execution_options(populate_existing=True)))


def next_free(session, project_id: int, day: dt.date) -> RotationEntry | None:
    """THE one definition of who receives the next new visitor (R-RCP-1): the free agent of the
    day with the lowest queue_seq (the earliest entry on a tie). None when nobody is free."""
    return session.scalar(
        select(RotationEntry).where(RotationEntry.project_id == project_id, RotationEntry.day == day,
                                    RotationEntry.status == "free")
        .order_by(RotationEntry.queue_seq, RotationEntry.id).limit(1))


def _back_of_queue(session, project_id: int, day: dt.date) -> int:
    top = session.scalar(select(func.max(RotationEntry.queue_seq)).where(
        RotationEntry.project_id == project_id, RotationEntry.day == day))
    return (top or 0) + 1


def _front_of_queue(session, project_id: int, day: dt.date) -> int:
    low = session.scalar(select(func.min(RotationEntry.queue_seq)).where(
        RotationEntry.project_id == project_id, RotationEntry.day == day))
    return (low or 0) - 1


def _project(session, project_id) -> Project:
    project = session.get(Project, project_id) if project_id else None
    if project is None:
        raise RuleViolation(_l("Choose the project."), rule="R-RCP-1")
    return project


def _agent(session, agent_id) -> User:
    agent = session.get(User, agent_id) if agent_id else None
    if agent is None or not agent.active or not agent.has_role("agent"):
        raise RuleViolation(_l("Choose an active agent: only agents receive visitors."), rule="R-RCP-1")
    return agent


def _event(session, by: User, project_id: int, day: dt.date, kind: str, agent_id=None, *,
           turn_of_id=None, visit_id=None, reason: str = "") -> RotationEvent:
    event = RotationEvent(project_id=project_id, day=day, kind=kind, agent_id=agent_id, turn_of_id=turn_of_id,
                          visit_id=visit_id, reason=reason, by_id=by.id, at=utcnow())
    session.add(event)
    return event


def _reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise RuleViolation(_l("Give the reason: skips, out-of-turn receptions, make-up turns and receptions "
                               "on an owner's behalf are recorded with their reason."), rule="R-RCP-1")
    return reason[:500]


_DODGES = {"break": _l("Took a break while next in turn."), "sign_out": _l("Signed out while next in turn.")}


def move(session, by: User, project_id: int, what: str, agent_id: int | None = None,
         today: dt.date | None = None, reason: str = "") -> RotationEntry:
    """Sign in to the day's rotation, sign out, take a break, come back (R-RCP-1).

    An agent moves himself; the manager (or admin) anyone. Signing in and coming back put the
    agent at the back of the queue (a break gives up one's place). Refused while receiving, and
    for a move that does not start from the agent's present state. Audited; the caller commits.
    An agent who takes a break or signs out while he is the next free agent passes over his turn:
    it is recorded as a skip (`skipped` + 1, a `skip` event) with his `reason`, or, without one,
    with what he did — nobody dodges a visitor unseen."""
    require(by, "rotation.join")
    if what not in MOVES:
        raise RuleViolation(_l("Unknown rotation move."), rule="R-RCP-1")
    agent_id = agent_id or by.id
    if agent_id != by.id and not _manages(by):
        raise RuleViolation(_l("Only the sales manager signs another agent in or out of the rotation."),
                            rule="R-RCP-1")
    agent = _agent(session, agent_id)
    project = _project(session, project_id)
    day = today or office_today()
    entries = _lock_day(session, project.id, day)
    entry = next((e for e in entries if e.agent_id == agent.id), None)
    starts, ends = MOVES[what]
    status = entry.status if entry else "out"
    if status == "receiving":
        raise RuleViolation(_l("%(agent)s is receiving a visitor: finish the reception first.",
                               agent=agent.display_name), rule="R-RCP-1")
    if status not in starts:
        raise RuleViolation(_l("%(agent)s cannot do this now (the rotation shows him as %(status)s).",
                               agent=agent.display_name, status=_status_label(status)), rule="R-RCP-1")
    turn = next_free(session, project.id, day)
    dodges = (what in _DODGES and agent.id == by.id and entry is not None and turn is not None
              and turn.id == entry.id)
    with audit_context(session, actor=by, action=_MOVE_ACTIONS[what]):
        if dodges:  # R-RCP-1: his turn passed over, on the record
            entry.skipped += 1
            _event(session, by, project.id, day, "skip", agent.id, turn_of_id=agent.id,
                   reason=(reason or "").strip()[:500] or str(_DODGES[what]))
        if entry is None:
            entry = RotationEntry(project_id=project.id, day=day, agent_id=agent.id, status=ends,
                                  queue_seq=_back_of_queue(session, project.id, day), signed_in_at=utcnow(),
                                  updated_at=utcnow())
            session.add(entry)
        else:
            if ends == "free":
                entry.queue_seq = _back_of_queue(session, project.id, day)
            entry.status, entry.updated_at = ends, utcnow()
        _event(session, by, project.id, day, what, agent.id)
        session.flush()
    return entry


def _status_label(status: str):
    from .labels import choice_label
    return choice_label("rotation_entry", "status", status)


def skip_turn(session, by: User, project_id: int, reason: str, today: dt.date | None = None) -> RotationEntry:
    """Pass over the next free agent's turn, with a reason (R-RCP-1): he goes to the back of the
    queue and his `skipped` count rises; he gets the turn back only by a make-up turn the manager
    grants (`make_up_turn`). An agent may pass over only his own turn (R-LEAD-5: nobody takes a
    colleague's customer away); the manager anyone's. Raises RuleViolation when nobody is free."""
    require(by, "rotation.exception")
    reason = _reason(reason)
    project = _project(session, project_id)
    day = today or office_today()
    _lock_day(session, project.id, day)
    entry = next_free(session, project.id, day)
    if entry is None:
        raise RuleViolation(_l("Nobody is free on the rotation now."), rule="R-RCP-1")
    if entry.agent_id != by.id and not _manages(by):
        raise RuleViolation(_l("An agent may pass over only his own turn; the sales manager decides for "
                               "others."), rule="R-LEAD-5")
    with audit_context(session, actor=by, action="rotation_skip"):
        entry.queue_seq, entry.skipped = _back_of_queue(session, project.id, day), entry.skipped + 1
        entry.updated_at = utcnow()
        _event(session, by, project.id, day, "skip", entry.agent_id, turn_of_id=entry.agent_id, reason=reason)
        session.flush()
    return entry


def make_up_turn(session, by: User, project_id: int, agent_id: int, reason: str,
                 today: dt.date | None = None) -> RotationEntry:
    """Put an agent at the front of the queue (a make-up turn, 补位), with a reason: the manager's
    decision (an agent cannot grant himself a turn). The agent must be on the day's rotation."""
    require(by, "rotation.exception")
    if not _manages(by):
        raise RuleViolation(_l("Only the sales manager grants a make-up turn."), rule="R-RCP-1")
    reason = _reason(reason)
    project = _project(session, project_id)
    day = today or office_today()
    entries = _lock_day(session, project.id, day)
    entry = next((e for e in entries if e.agent_id == agent_id and e.status != "out"), None)
    if entry is None:
        raise RuleViolation(_l("This agent is not on today's rotation."), rule="R-RCP-1")
    with audit_context(session, actor=by, action="rotation_make_up"):
        entry.queue_seq, entry.updated_at = _front_of_queue(session, project.id, day), utcnow()
        _event(session, by, project.id, day, "make_up", entry.agent_id, reason=reason)
        session.flush()
    return entry


def customer_of(session, project_id: int, phone: str) -> Lead | None:
    """The project's customer with this (normalised) phone: the unique key (R-LEAD-5)."""
    return session.scalar(select(Lead).where(Lead.project_id == project_id, Lead.phone == phone))


def receive(session, by: User, *, project_id: int, phone: str, channel: str, party_size: int = 1,
            name: str = "", mode: str = "turn", agent_id: int | None = None, reason: str = "",
            notes: str = "", key: str | None = None, today: dt.date | None = None) -> Visit:
    """The desk receives a visitor (R-RCP-1, R-RCP-2, R-LEAD-5). Phone first:

    - a NEW visitor (no customer of the project with this phone) goes to the next free agent
      (`next_free`): his entry becomes `receiving`, goes to the back, receptions + 1 (event
      `assign`); the visitor is registered as his customer (`register_lead` with him as owner) and
      protected until the visit day + the project's protection days;
    - a RETURNING visitor whose owner is free goes to the owner (`owner_return`, no turn consumed:
      the owner keeps his place in the queue); if the owner is not free (receiving, on a break,
      out), the next free agent — or the agent chosen — receives ON BEHALF of the owner, with a
      reason (`on_behalf`; visit.on_behalf_of = owner; the owner stays the owner). An on-behalf
      reception consumes NO turn either: the receiver earns no customer by it, so he keeps his
      place and is back at it when he finishes;
    - a customer in the public pool (no owner) is received like a new visitor and becomes the
      receiver's (the rotation decides, not whoever is at the desk);
    - mode `out_of_turn` (the manager only): agent `agent_id` receives a new visitor although not
      next, with a reason; whose turn it was (`turn_of_id`) keeps his place; the receiver goes to
      the back and counts the reception.
    `key`: the form's one-time key (models.submissions): a double click receives once. Every visit
    runs the VISIT_RECORDED hooks. Raises RuleViolation (nobody free, bad input), AlreadySubmitted."""
    require(by, "rotation.assign")
    claim(session, by, key, "reception", f"project:{project_id}",
          out_of_date=_l("This reception form is out of date: open the desk again."))
    require(by, "visit.register")
    project = _project(session, project_id)
    phone = validate_phone(phone)
    if channel not in VISIT_CHANNELS:
        raise RuleViolation(_l("Choose where the visitor came from."), rule="R-RCP-2")
    try:
        party_size = int(party_size)
    except (TypeError, ValueError):
        party_size = 0
    if not 1 <= party_size <= 50:
        raise RuleViolation(_l("The party size is a number from 1 to 50."), rule="R-RCP-2")
    if mode not in ("turn", "out_of_turn"):
        raise RuleViolation(_l("Unknown kind of reception."), rule="R-RCP-1")
    day = today or office_today()
    entries = _lock_day(session, project.id, day)
    by_agent = {e.agent_id: e for e in entries}
    lead = customer_of(session, project.id, phone)
    first = session.scalar(select(func.count()).select_from(Visit).where(
        Visit.project_id == project.id, Visit.phone == phone)) == 0
    now = utcnow()
    turn = next_free(session, project.id, day)
    on_behalf_of, in_turn, consumes, turn_of = None, True, True, None

    # A returning customer (an earlier visit of this phone in the project) goes to his owner
    # (R-LEAD-5). A FIRST visit goes by the rotation whoever registered the phone beforehand:
    # registering a walk-in's phone is no way to take him out of turn; when the rotation's agent
    # is not the lead's owner, that is a conflict for the manager (recorded below).
    if lead is not None and lead.owner_id is not None and not first:
        if mode == "out_of_turn":
            raise RuleViolation(_l("This visitor is already a customer of %(owner)s: he goes to his owner, "
                                   "not out of turn.", owner=lead.owner.display_name), rule="R-LEAD-5")
        owner_entry = by_agent.get(lead.owner_id)
        if owner_entry is not None and owner_entry.status == "free":
            if agent_id not in (None, lead.owner_id):
                raise RuleViolation(_l("This visitor is a customer of %(owner)s, who is free: he goes to his "
                                       "owner.", owner=lead.owner.display_name), rule="R-LEAD-5")
            receiver, kind, consumes, in_turn = owner_entry, "owner_return", False, False
        else:
            if not (reason or "").strip():
                raise RuleViolation(_l("This visitor is a customer of %(owner)s, who is not free now "
                                       "(%(status)s): give a reason to receive him on the owner's behalf.",
                                       owner=lead.owner.display_name,
                                       status=_status_label(owner_entry.status if owner_entry else "out")),
                                    rule="R-RCP-1")
            if agent_id and (turn is None or agent_id != turn.agent_id) and not _manages(by):
                raise RuleViolation(_l("The next free agent receives on the owner's behalf; only the sales "
                                       "manager names another agent."), rule="R-LEAD-5")
            receiver = by_agent.get(agent_id) if agent_id else turn
            if receiver is None or receiver.status != "free":
                raise RuleViolation(_l("Nobody is free on the rotation now: the visitor waits for the next "
                                       "free agent."), rule="R-RCP-1")
            kind, consumes, in_turn, on_behalf_of = "on_behalf", False, receiver is turn, lead.owner_id
    elif mode == "out_of_turn":
        if not _manages(by):
            raise RuleViolation(_l("Only the sales manager gives a visitor to an agent out of turn."),
                                rule="R-LEAD-5")
        receiver = by_agent.get(agent_id)
        if receiver is None or receiver.status != "free":
            raise RuleViolation(_l("The agent chosen is not free on today's rotation."), rule="R-RCP-1")
        if turn is not None and receiver.id == turn.id:
            kind, turn_of = "assign", None  # it was his turn anyway
        else:
            kind, in_turn, turn_of = "out_of_turn", False, turn.agent_id if turn else None
    else:
        if agent_id and (turn is None or agent_id != turn.agent_id):
            raise RuleViolation(_l("It is not this agent's turn: a new visitor goes to the next free agent "
                                   "(the manager may give him out of turn, with a reason)."), rule="R-RCP-1")
        receiver, kind = turn, "assign"
        if receiver is None:
            raise RuleViolation(_l("Nobody is free on the rotation now: the visitor waits for the next "
                                   "free agent."), rule="R-RCP-1")
    if kind in ROTATION_EXCEPTIONS:
        reason = _reason(reason)

    if lead is None:  # a new customer, registered at the desk as the receiver's (R-LEAD-1)
        lead = register_lead(session, by, project_id=project.id, name=name, phone=phone,
                             source=LEAD_SOURCE_OF_CHANNEL[channel], today=day, owner_id=receiver.agent_id)
    with audit_context(session, actor=by, action="reception"):
        if lead.owner_id is None:  # from the public pool: the rotation's agent takes him
            lead.owner_id, lead.pooled_at = receiver.agent_id, None
            lead.next_follow_up_on = day + dt.timedelta(days=project.follow_up_days)
        if first:  # R-RCP-2: a first visit protects the customer for his agent
            lead.protected_until = day + dt.timedelta(days=project.protection_days)
        if first and lead.owner_id != receiver.agent_id:  # registered beforehand by another agent
            _owner_conflict(session, lead, receiver.agent, name)
        if lead.stage in ("new", "contacted"):
            lead.stage = "visited"
        lead.last_activity_at = now
        visit = Visit(project_id=project.id, lead_id=lead.id, phone=phone, kind="first" if first else "return",
                      channel=channel, party_size=party_size, received_by_id=receiver.agent_id,
                      on_behalf_of_id=on_behalf_of, in_turn=in_turn, arrived_at=now,
                      notes=(notes or "").strip()[:2000], registered_by_id=by.id)
        session.add(visit)
        session.flush()
        receiver.status, receiver.updated_at = "receiving", now
        if consumes:
            receiver.queue_seq = _back_of_queue(session, project.id, day)
            receiver.receptions += 1
        _event(session, by, project.id, day, kind, receiver.agent_id, turn_of_id=turn_of, visit_id=visit.id,
               reason=reason.strip()[:500] if kind in ROTATION_EXCEPTIONS else "")
        session.flush()
        for hook in VISIT_RECORDED:
            hook(session, visit)
    settle(session, key, f"visit {visit.id}: {receiver.agent.display_name}")
    return visit


def _owner_conflict(session, lead: Lead, receiver: User, name: str) -> LeadConflict:
    """A first visit the rotation gave to another agent than the one who registered the phone
    (R-LEAD-5): the owner stays, the manager decides (models.leads.resolve_conflict: keep, or
    transfer to the agent who received him). Told to the managers like any second registration."""
    conflict = LeadConflict(lead_id=lead.id, attempted_by_id=receiver.id,
                            attempted_name=((name or "").strip() or lead.name)[:100])
    session.add(conflict)
    session.flush()
    notify(session, users_with_roles(session, {"sales_manager"}), "lead_conflict",
           {"by": receiver.display_name, "phone": mask_phone(lead.phone)},
           f"/admin/lead_conflict/details/?id={conflict.id}")
    return conflict


def finish_reception(session, by: User, visit_id: int, today: dt.date | None = None) -> Visit:
    """The reception is over: the visit's end is noted and its agent is free again, in his place
    (R-RCP-1). The receiving agent finishes his own; the manager anyone's. Twice does nothing.
    The entry freed is the one of the rotation day the visitor was received on (the day of the
    reception's event), so a reception that runs past midnight frees its own day's entry; `today`
    is only the fallback for a visit without its event."""
    require(by, "rotation.assign")
    visit = session.get(Visit, visit_id)
    if visit is None or (visit.received_by_id != by.id and not _manages(by)):
        raise RuleViolation(_l("This reception does not exist, or is not yours."), rule="R-RCP-1")
    day = session.scalar(select(RotationEvent.day).where(
        RotationEvent.visit_id == visit.id, RotationEvent.kind != "finish").order_by(RotationEvent.id).limit(1))
    day = day or today or office_today()
    _lock_day(session, visit.project_id, day)
    session.refresh(visit)
    if visit.ended_at is not None:
        return visit
    now = utcnow()
    with audit_context(session, actor=by, action="reception_finish"):
        visit.ended_at = max(now, visit.arrived_at)
        entry = session.scalar(select(RotationEntry).where(
            RotationEntry.project_id == visit.project_id, RotationEntry.day == day,
            RotationEntry.agent_id == visit.received_by_id, RotationEntry.status == "receiving"))
        if entry is not None:
            entry.status, entry.updated_at = "free", now
        _event(session, by, visit.project_id, day, "finish", visit.received_by_id, visit_id=visit.id)
        session.flush()
    return visit


def visit_minutes(visit: Visit, now: dt.datetime | None = None) -> int:
    """How long a reception lasted (or has lasted so far), in whole minutes."""
    end = visit.ended_at or now or utcnow()
    return max(0, int((end - visit.arrived_at).total_seconds() // 60))


def open_receptions(session, project_id: int, day: dt.date) -> dict[int, Visit]:
    """The day's receptions still going on, by receiving agent."""
    rows = session.scalars(select(Visit).where(
        Visit.project_id == project_id, Visit.ended_at.is_(None),
        Visit.arrived_at >= office_midnight_utc(day),
        Visit.arrived_at < office_midnight_utc(day + dt.timedelta(days=1))).order_by(Visit.id))
    return {v.received_by_id: v for v in rows}


def day_rotation(session, project_id: int, day: dt.date) -> list[RotationEntry]:
    """The day's entries in the order the screen shows them: free agents by turn (the first is
    `next_free`), then receiving, on a break, out."""
    order = {"free": 0, "receiving": 1, "break": 2, "out": 3}
    entries = session.scalars(select(RotationEntry).where(
        RotationEntry.project_id == project_id, RotationEntry.day == day))
    return sorted(entries, key=lambda e: (order[e.status], e.queue_seq, e.id))


# --- The desk's check-in (R-RCP-2, R-COM-1) ---------------------------------------------------------

def check_phone(session, by: User, project_id: int, phone: str, today: dt.date | None = None) -> dict:
    """What the desk is told at once about a phone: `new`; `protected` (whose customer, until
    when); `expired` (the protection is over: still the owner's, or `pool`); and a live channel
    registration (报备) of the phone: which channel, until when. Nothing else of the customer is
    told (R-LEAD-5). The phone is shown as models.privacy's one rule shows it to `by`.
    Two unique-key lookups: (project, phone) on lead and on the live registrations."""
    require(by, "visit.check_phone")
    phone = validate_phone(phone)
    today = today or office_today()
    answer: dict = {"phone": mask_value(by, "phone", phone), "status": "new", "owner": None, "until": None,
                    "owner_id": None, "channel": None, "channel_until": None}
    row = session.execute(select(Lead.owner_id, User.display_name, Lead.protected_until)
                          .outerjoin(User, User.id == Lead.owner_id)
                          .where(Lead.project_id == project_id, Lead.phone == phone)).first()
    if row is not None:
        owner_id, owner, until = row
        answer.update(owner_id=owner_id, owner=owner, until=until.isoformat() if until else None)
        answer["status"] = protection_status(owner_id, until, today)
    registration = session.execute(
        select(ChannelCompany.name, ChannelRegistration.valid_until)
        .join(ChannelCompany, ChannelCompany.id == ChannelRegistration.company_id)
        .where(ChannelRegistration.project_id == project_id, ChannelRegistration.phone == phone,
               ChannelRegistration.status.in_(("valid", "confirmed")))).first()
    if registration is not None:
        answer["channel"], answer["channel_until"] = registration[0], registration[1].isoformat()
    return answer


# --- The manager's figures ----------------------------------------------------------------------------

def rotation_fairness(session, project_id: int | None, start: dt.date, end: dt.date) -> list[dict]:
    """Per agent over the days start..end (inclusive), in one project or (project_id None) in all
    of them summed: new visitors received in turn or out of
    turn (`receptions`), turns passed over (`skipped`), receptions out of turn, make-up turns
    granted, receptions on an owner's behalf. THE figures of the rotation's fairness (the floor
    dashboard reads them here). Sorted by agent name."""
    rows: dict[int, dict] = {}

    def row(agent_id, name):
        return rows.setdefault(agent_id, {"agent_id": agent_id, "agent": name, "receptions": 0, "skipped": 0,
                                          "out_of_turn": 0, "make_up": 0, "on_behalf": 0})
    for agent_id, name, receptions, skipped in session.execute(
            select(RotationEntry.agent_id, User.display_name, func.sum(RotationEntry.receptions),
                   func.sum(RotationEntry.skipped))
            .join(User, User.id == RotationEntry.agent_id)
            .where(RotationEntry.day >= start, RotationEntry.day <= end,
                   *([RotationEntry.project_id == project_id] if project_id else []))
            .group_by(RotationEntry.agent_id, User.display_name)):
        r = row(agent_id, name)
        r["receptions"], r["skipped"] = int(receptions or 0), int(skipped or 0)
    for agent_id, name, kind, n in session.execute(
            select(RotationEvent.agent_id, User.display_name, RotationEvent.kind, func.count())
            .join(User, User.id == RotationEvent.agent_id)
            .where(RotationEvent.day >= start, RotationEvent.day <= end,
                   RotationEvent.kind.in_(("out_of_turn", "make_up", "on_behalf")),
                   *([RotationEvent.project_id == project_id] if project_id else []))
            .group_by(RotationEvent.agent_id, User.display_name, RotationEvent.kind)):
        row(agent_id, name)[kind] = int(n)
    return sorted(rows.values(), key=lambda r: (r["agent"], r["agent_id"]))
