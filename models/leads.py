"""Customers (leads), their follow-ups, and the kept records of forfeited deals."""
from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import (JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, func,
                        or_, select, update)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column, relationship
from flask_babel import lazy_gettext as _l

from .audit import audit_context, record_many
from .base import Base, in_list, office_midnight_utc, office_time, office_today, utcnow
from .errors import RuleViolation
from .identity import (ID_TYPES, RESIDENT_ID, is_phone, normalise_id_number,
                       normalise_phone, validate_id_document)
from .projects import Project
from .notifications import notify
from .permissions import require, scope_filter, sees_all_rows
from .privacy import mask_id_number, mask_phone  # noqa: F401  (mask_id_number: kept importable here)
from .search import gram_index
from .submissions import claim, settle
from .users import Role, User, user_role, users_with_roles

LEAD_SOURCES = ("phone_call", "walk_in", "referral", "advert", "web", "fair", "channel", "other")
LEAD_STAGES = ("new", "contacted", "visited", "subscribed", "signed", "lost")
OPEN_STAGES = ("new", "contacted", "visited")  # still being worked; counts as an agent's load
FOLLOW_UP_CHANNELS = ("phone", "visit", "wechat", "other")
PURPOSES = ("own_home", "upgrade", "investment", "for_family", "other")
CONFLICT_STATUSES = ("open", "kept", "transferred")

def validate_phone(raw: str) -> str:
    """The normalised phone, or RuleViolation when it is not a mainland mobile or landline."""
    phone = normalise_phone(raw)
    if not is_phone(phone):
        raise RuleViolation(_l("%(phone)s is not a valid phone number: use an 11-digit mobile "
                               "number or a landline with its area code.", phone=(raw or "").strip()),
                            rule="R-LEAD-1")
    return phone


class Lead(Base):
    __tablename__ = "lead"
    __table_args__ = (
        UniqueConstraint("project_id", "phone"),  # R-LEAD-5: one customer per phone per project
        CheckConstraint(in_list("source", LEAD_SOURCES), name="source_known"),
        CheckConstraint(in_list("stage", LEAD_STAGES), name="stage_known"),
        CheckConstraint("purpose IS NULL OR " + in_list("purpose", PURPOSES), name="purpose_known"),
        CheckConstraint("budget_wan IS NULL OR budget_wan > 0", name="budget_positive"),
        CheckConstraint(in_list("id_type", ID_TYPES), name="id_type_known"),
        Index("ix_lead_owner_next", "owner_id", "next_follow_up_on"),
        Index("ix_lead_phone", "phone"),
        Index("ix_lead_name", "name", "id"),  # the customer grid sorted by name
        Index("ix_lead_stage", "stage"),
        Index("ix_lead_owner_stage", "owner_id", "stage"),  # an agent's grid counts, open loads
        Index("ix_lead_registered_at", "registered_at"),  # the manager's "today" (dashboard)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(20))
    # the identity document (models/identity.py): its kind and its number, read by one validator
    id_type: Mapped[str] = mapped_column(String(30), default=RESIDENT_ID, server_default=RESIDENT_ID)
    id_number: Mapped[str | None] = mapped_column(String(30))
    address: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(20))
    budget_wan: Mapped[int | None]  # budget in 10,000 yuan (万元)
    wanted_layout: Mapped[str] = mapped_column(String(40), default="")
    wanted_area: Mapped[str] = mapped_column(String(40), default="")
    purpose: Mapped[str | None] = mapped_column(String(20))
    needs: Mapped[str] = mapped_column(Text, default="")  # anything else the customer wants
    notes: Mapped[str] = mapped_column(Text, default="")
    stage: Mapped[str] = mapped_column(String(20), default="new")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"), index=True)
    registered_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    registered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    next_follow_up_on: Mapped[dt.date | None]
    # R-LEAD-3: the manager may pause follow-up (a customer abroad, in hospital…) until a date,
    # with a reason; meanwhile the next follow-up may lie beyond the cycle and the pool waits.
    follow_up_paused_until: Mapped[dt.date | None]
    follow_up_pause_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Last follow-up or (re)assignment: a lead idle too long returns to the pool.
    last_activity_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    pooled_at: Mapped[dt.datetime | None]
    # R-RCP-2: a first visit protects the customer for its agent until this office day (models.reception).
    protected_until: Mapped[dt.date | None]

    project: Mapped[Project] = relationship()
    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id])
    registered_by: Mapped[User] = relationship(foreign_keys=[registered_by_id])
    follow_ups: Mapped[list["FollowUp"]] = relationship(back_populates="lead",
                                                        order_by="FollowUp.at.desc()")

    def __str__(self) -> str:
        return f"{self.name} {mask_phone(self.phone)}" if len(self.phone) >= 8 else self.name

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.owner_id == user_id


gram_index("ix_lead_name_grams", Lead.name)  # search by any part of a name or phone number
gram_index("ix_lead_phone_grams", Lead.phone)


class FollowUp(Base):
    """One follow-up contact with a lead (R-LEAD-3), with the manager's feedback (R-LEAD-4)."""

    __tablename__ = "follow_up"
    __table_args__ = (
        CheckConstraint(in_list("channel", FOLLOW_UP_CHANNELS), name="channel_known"),
        Index("ix_follow_up_lead_at", "lead_id", "at"),
        Index("ix_follow_up_at", "at"),  # the manager's visits today (dashboard)
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
    subscription: Mapped["Subscription | None"] = relationship("Subscription", viewonly=True)  # noqa: F821


class LeadConflict(Base):
    """A second registration of a registered phone (R-LEAD-5): the manager decides."""

    __tablename__ = "lead_conflict"
    __table_args__ = (
        CheckConstraint(in_list("status", CONFLICT_STATUSES), name="status_known"),
        Index("ix_lead_conflict_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("lead.id", ondelete="RESTRICT"), index=True)
    attempted_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    attempted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    attempted_name: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(20), default="open")
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    resolved_at: Mapped[dt.datetime | None]

    lead: Mapped[Lead] = relationship()
    attempted_by: Mapped[User] = relationship(foreign_keys=[attempted_by_id])

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.attempted_by_id == user_id


def protection_status(owner_id: int | None, protected_until: dt.date | None, today: dt.date) -> str:
    """Whose a registered customer is today (R-RCP-2, R-LEAD-5): `pool` (no agent), `protected`
    (his agent's until `protected_until`), `expired` (still his agent's, protection over)."""
    if owner_id is None:
        return "pool"
    return "protected" if protected_until is not None and protected_until >= today else "expired"


def protection_text(status: str, owner: str | None, until: str | None):
    """`protection_status` as the front desk reads it: one sentence, in the reader's language."""
    if status == "protected":
        return _l("Customer of %(owner)s, protected until %(until)s.", owner=owner, until=until)
    if status == "expired":
        return _l("Customer of %(owner)s; the first-visit protection has expired.", owner=owner)
    return _l("Customer in the public pool (no agent).")


def last_follow_ups(session, lead_ids) -> dict[int, "FollowUp"]:
    """Each lead's latest follow-up (by time, then id), for many leads in one query: what a
    manager reads beside a conflict (R-LEAD-5) without one query per row."""
    ids = sorted({i for i in lead_ids if i is not None})
    if not ids:
        return {}
    ranked = (select(FollowUp.id, func.row_number().over(
        partition_by=FollowUp.lead_id, order_by=(FollowUp.at.desc(), FollowUp.id.desc())).label("n"))
        .where(FollowUp.lead_id.in_(ids)).subquery())
    rows = session.scalars(select(FollowUp).join(ranked, ranked.c.id == FollowUp.id).where(ranked.c.n == 1))
    return {row.lead_id: row for row in rows}


class CustomerQuestion(Base):
    """A question the answer sheet (答客问) did not cover (R-LEAD-6)."""

    __tablename__ = "customer_question"
    __table_args__ = (Index("ix_customer_question_topic", "project_id", "topic"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"))
    asked_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id", ondelete="RESTRICT"))
    question: Mapped[str] = mapped_column(Text)
    topic: Mapped[str] = mapped_column(String(200))  # the question normalised, for grouping
    answer: Mapped[str] = mapped_column(Text, default="")
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    answered_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    project: Mapped[Project] = relationship()
    asked_by: Mapped[User] = relationship(foreign_keys=[asked_by_id])

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.asked_by_id == user_id


# ---------------------------------------------------------------------------------------------
# Domain operations. Each checks the role (R-ALL-1) and the rule, changes rows in the caller's
# transaction (the caller commits), and is audited by models.audit with a named action.

class DuplicateLead(RuleViolation):
    """The phone is already a customer of this project (R-LEAD-5). `conflict` was recorded."""

    def __init__(self, message, conflict: LeadConflict):
        super().__init__(message, rule="R-LEAD-5")
        self.conflict = conflict


def _today_or(today: dt.date | None) -> dt.date:
    return today or office_today()


def register_lead(session, by: User, *, project_id: int, name: str, phone: str, source: str,
                  today: dt.date | None = None, owner_id: int | None = None, **details) -> Lead:
    """Register an enquiry on the customer registration form (R-LEAD-1).

    The registering agent becomes the owner. A phone already registered in the project is not
    a second lead (R-LEAD-5): a conflict goes to the managers and DuplicateLead is raised,
    naming who registered the number and when — never the customer's details. The database's
    unique key decides when two agents register the same phone at the same moment.
    Raises RuleViolation for bad input; the caller commits (also after DuplicateLead, to keep
    the conflict).
    `owner_id`: the owner when it is not the registering person — the agent the reception desk's
    rotation gave the visitor to (models.reception.receive, R-RCP-1).
    """
    require(by, "lead.register")
    name = (name or "").strip()
    if not name:
        raise RuleViolation(_l("The customer's name is required."), rule="R-LEAD-1")
    if len(name) > 100:
        raise RuleViolation(_l("The customer's name is too long (at most 100 characters)."))
    if source not in LEAD_SOURCES:
        raise RuleViolation(_l("Choose where the customer came from."), rule="R-LEAD-1")
    project = session.get(Project, project_id)
    if project is None:
        raise RuleViolation(_l("Choose the project."), rule="R-LEAD-1")
    phone = validate_phone(phone)
    id_type, id_number = details.get("id_type") or RESIDENT_ID, details.get("id_number")
    if normalise_id_number(id_number):  # optional at registration; when given, it must be valid
        id_type, id_number = validate_id_document(id_type, id_number, today)
    elif id_type not in ID_TYPES:
        raise RuleViolation(_l("Choose the kind of identity document."), rule="R-SUB-1")
    purpose = details.get("purpose") or None
    if purpose is not None and purpose not in PURPOSES:
        raise RuleViolation(_l("Choose the purpose of the purchase from the list."))
    budget = details.get("budget_wan")
    if budget is not None and budget <= 0:
        raise RuleViolation(_l("The budget must be a positive number of 10,000 yuan."))
    today = _today_or(today)
    agent_owner = owner_id or (by.id if by.has_role("agent") else None)
    lead = Lead(project_id=project.id, name=name, phone=phone, source=source,
                owner_id=agent_owner, registered_by_id=by.id, registered_at=utcnow(),
                last_activity_at=utcnow(),
                next_follow_up_on=today + dt.timedelta(days=project.follow_up_days) if agent_owner else None,
                id_type=id_type, id_number=normalise_id_number(id_number) or None,
                address=(details.get("address") or "").strip() or None,
                budget_wan=budget, wanted_layout=(details.get("wanted_layout") or "").strip(),
                wanted_area=(details.get("wanted_area") or "").strip(), purpose=purpose,
                needs=(details.get("needs") or "").strip(), notes=(details.get("notes") or "").strip())
    try:
        with session.begin_nested(), audit_context(session, actor=by, action="register"):
            session.add(lead)
            session.flush()
    except IntegrityError:
        existing = session.scalar(select(Lead).where(Lead.project_id == project.id,
                                                     Lead.phone == phone))
        if existing is None:
            raise
        raise _record_conflict(session, by, existing, name) from None
    return lead


def _record_conflict(session, by: User, existing: Lead, attempted_name: str) -> DuplicateLead:
    with audit_context(session, actor=by, action="register_conflict"):
        conflict = LeadConflict(lead_id=existing.id, attempted_by_id=by.id,
                                attempted_name=attempted_name[:100])
        session.add(conflict)
        session.flush()
    holder = existing.owner or existing.registered_by
    notify(session, users_with_roles(session, {"sales_manager"}), "lead_conflict",
           {"by": by.display_name, "phone": mask_phone(existing.phone)},
           f"/admin/lead_conflict/details/?id={conflict.id}")
    return DuplicateLead(_l("This phone number is already registered in this project, by %(who)s "
                            "on %(when)s. The sales manager has been told and will decide.",
                            who=holder.display_name if holder else "-",
                            when=office_time(existing.registered_at)), conflict)


def works_on(by: User, lead: Lead) -> bool:
    """Whether `by` may act on this customer (follow-ups, R-LEAD-3/5): those who see every row on
    any customer, an agent only on his own."""
    return sees_all_rows(by) or lead.owner_id == by.id


def visible_lead(session, by: User, lead_id: int) -> Lead:
    lead = session.get(Lead, lead_id)
    if lead is None or not works_on(by, lead):
        raise RuleViolation(_l("This customer does not exist, or is not one of yours."),
                            rule="R-LEAD-5")
    return lead


# The customers a unit's steps offer, by step: a hold is for a customer still being worked; the
# agreement form offers every customer not signed yet. One query for both, so the two lists
# differ only here, where it shows (subscribe itself accepts any customer `works_on` allows).
CUSTOMERS_FOR_STEP = {"hold": Lead.stage.in_(OPEN_STAGES), "subscribe": Lead.stage.notin_(("signed",))}


def customers_for_unit(session, by: User, project_id: int, step: str, limit: int) -> list[Lead]:
    """The project's customers `by` may see (R-LEAD-5) offered by a unit's `step` ("hold" on the
    unit card, "subscribe" on the agreement form), by name, at most `limit`."""
    query = select(Lead).where(Lead.project_id == project_id, CUSTOMERS_FOR_STEP[step])
    clause = scope_filter(Lead, by)
    if clause is not None:
        query = query.where(clause)
    return list(session.scalars(query.order_by(Lead.name).limit(limit)))


def record_follow_up(session, by: User, *, lead_id: int, channel: str, content: str,
                     outcome: str = "", next_on: dt.date | None = None,
                     today: dt.date | None = None, key: str | None = None) -> FollowUp:
    """Record one follow-up truthfully (R-LEAD-3); a visit makes an intent customer (R-LEAD-4).

    The next follow-up defaults to the project's cycle (2–3 days), may not lie in the past, and
    may not lie beyond the project's maximum (default 3 days) unless the manager paused the
    customer's follow-up (`pause_follow_up`), then up to the pause's end. The follow-up is dated
    when it is entered: it cannot be backdated. `key`: the form's one-time key (the screen always
    sends one): the same form sent twice — a double click, a browser retry — records once.
    """
    require(by, "lead.follow_up")
    today = _today_or(today)
    lead = visible_lead(session, by, lead_id)
    if channel not in FOLLOW_UP_CHANNELS:
        raise RuleViolation(_l("Choose how you followed up (phone, visit, WeChat, other)."), rule="R-LEAD-3")
    content = (content or "").strip()
    if not content:
        raise RuleViolation(_l("Write what was said or done."), rule="R-LEAD-3")
    if lead.stage in ("signed", "lost") and channel == "visit":
        raise RuleViolation(_l("This customer is already signed or lost."), rule="R-LEAD-4")
    next_on = next_on or today + dt.timedelta(days=lead.project.follow_up_days)
    if next_on < today:
        raise RuleViolation(_l("The next follow-up date cannot be in the past."), rule="R-LEAD-3")
    latest = latest_next_follow_up(lead, today)
    if next_on > latest:
        raise RuleViolation(_l("The next follow-up is due by %(latest)s (every %(n)d days at most); the "
                               "sales manager may pause a customer's follow-up with a reason.",
                               latest=latest.isoformat(), n=lead.project.follow_up_max_days), rule="R-LEAD-3")
    if key is not None:
        claim(session, by, key, "follow_up", subject=f"lead:{lead.id}", out_of_date=_l(
            "This form is out of date: open it again and write the follow-up.")).result = content[:60]
    with audit_context(session, actor=by, action="follow_up"):
        follow_up = FollowUp(lead=lead, agent_id=by.id, channel=channel, content=content,
                             outcome=(outcome or "").strip(), next_on=next_on)
        session.add(follow_up)
        lead.next_follow_up_on = next_on
        lead.last_activity_at = utcnow()
        if channel == "visit" and lead.stage in ("new", "contacted"):
            lead.stage = "visited"  # every customer who has viewed is an intent customer
        elif lead.stage == "new":
            lead.stage = "contacted"
        session.flush()
    return follow_up


def latest_next_follow_up(lead: Lead, today: dt.date) -> dt.date:
    """The latest next follow-up date allowed on `today` (R-LEAD-3): the project's maximum cycle,
    or the end of a pause the manager set."""
    latest = today + dt.timedelta(days=lead.project.follow_up_max_days)
    paused = lead.follow_up_paused_until
    return max(latest, paused) if paused and paused >= today else latest


def pause_follow_up(session, by: User, lead_id: int, until: dt.date, reason: str,
                    today: dt.date | None = None) -> Lead:
    """The manager pauses a customer's follow-up until a date, with a reason (R-LEAD-3): the next
    follow-up moves there, the customer leaves the due list and does not return to the pool
    meanwhile. At most a year."""
    require(by, "lead.pause")
    today = _today_or(today)
    lead = visible_lead(session, by, lead_id)
    reason = (reason or "").strip()
    if not reason:
        raise RuleViolation(_l("Say why the follow-up is paused."), rule="R-LEAD-3")
    if until is None or until <= today or until > today + dt.timedelta(days=366):
        raise RuleViolation(_l("A pause ends after today and within a year."), rule="R-LEAD-3")
    if lead.stage not in OPEN_STAGES:
        raise RuleViolation(_l("Only a customer still being followed up can be paused."), rule="R-LEAD-3")
    with audit_context(session, actor=by, action="pause_follow_up"):
        lead.follow_up_paused_until, lead.follow_up_pause_reason = until, reason
        lead.next_follow_up_on = until
        session.flush()
    if lead.owner_id:
        notify(session, [lead.owner_id], "follow_up_paused",
               {"by": by.display_name, "name": lead.name, "until": until, "reason": reason[:60]},
               f"/admin/lead/details/?id={lead.id}")
    return lead


def give_feedback(session, by: User, follow_up_id: int, feedback: str) -> FollowUp:
    """The manager's feedback on a follow-up, recorded for the agent (R-LEAD-4)."""
    require(by, "lead.feedback")
    follow_up = session.get(FollowUp, follow_up_id)
    if follow_up is None:
        raise RuleViolation(_l("This follow-up does not exist."))
    feedback = (feedback or "").strip()
    if not feedback:
        raise RuleViolation(_l("Write the feedback."))
    with audit_context(session, actor=by, action="feedback"):
        follow_up.manager_feedback = feedback
        follow_up.feedback_by_id = by.id
        session.flush()
    notify(session, [follow_up.agent_id], "follow_up_feedback",
           {"by": by.display_name, "feedback": feedback[:60]},
           f"/admin/follow_up/details/?id={follow_up.id}")
    return follow_up


def open_lead_load(session, agent_ids) -> dict[int, int]:
    """Current open leads per agent (stages new / contacted / visited)."""
    counts = dict(session.execute(
        select(Lead.owner_id, func.count()).where(Lead.owner_id.in_(agent_ids),
                                                  Lead.stage.in_(OPEN_STAGES))
        .group_by(Lead.owner_id)).all())
    return {a: counts.get(a, 0) for a in agent_ids}


def _active_agents(session, agent_ids) -> list[int]:
    agent_ids = list(dict.fromkeys(agent_ids))
    if not agent_ids:
        raise RuleViolation(_l("Choose at least one sales agent."), rule="R-LEAD-2")
    found = set(session.scalars(
        select(User.id).join(user_role, user_role.c.user_id == User.id)
        .join(Role, Role.id == user_role.c.role_id)
        .where(User.id.in_(agent_ids), User.active.is_(True), Role.name == "agent")))
    if not agent_ids or set(agent_ids) - found:
        raise RuleViolation(_l("Choose active sales agents only."), rule="R-LEAD-2")
    return agent_ids


def _locked_leads(session, lead_ids) -> list[tuple[int, int | None]]:
    lead_ids = sorted(set(int(i) for i in lead_ids))
    if not lead_ids:
        raise RuleViolation(_l("Select at least one customer."), rule="R-LEAD-2")
    rows = []
    for start in range(0, len(lead_ids), 5000):
        chunk = lead_ids[start:start + 5000]
        rows += session.execute(select(Lead.id, Lead.owner_id).where(Lead.id.in_(chunk))
                                .order_by(Lead.id).with_for_update()).all()
    if len(rows) != len(lead_ids):
        raise RuleViolation(_l("Some selected customers do not exist; nothing was changed."), rule="R-LEAD-2")
    return [(r[0], r[1]) for r in rows]


def _apply_assignment(session, by: User, plan: dict[int, list[int]],
                      before: dict[int, int | None], today: dt.date | None = None) -> int:
    """Set owners in one UPDATE per agent and write one audit row per lead (set-based)."""
    now = utcnow()
    today = _today_or(today)  # a lead without a follow-up date is due one on the day it is given
    changed = 0
    for agent_id, ids in plan.items():
        for start in range(0, len(ids), 5000):
            chunk = ids[start:start + 5000]
            session.execute(
                update(Lead).where(Lead.id.in_(chunk))
                .values(owner_id=agent_id, last_activity_at=now, pooled_at=None,
                        next_follow_up_on=func.coalesce(Lead.next_follow_up_on, today))
                .execution_options(synchronize_session=False))
        record_many(session, "lead", "assign", by, [
            (lead_id, {"owner_id": [before[lead_id], agent_id]}) for lead_id in ids])
        changed += len(ids)
        notify(session, [agent_id], "lead_assigned",
               {"by": by.display_name, "n": len(ids)}, "/admin/lead/")
    session.expire_all()
    return changed


def _claim_assignment(session, by: User, key: str | None) -> None:
    """A bulk assignment sent from a form carries a one-time key (models.submissions): the same
    form sent twice — a double click, a browser retry, two posts at once — assigns once; the
    repeat is told what the first one did. Calls without a form (a conflict's transfer) pass None."""
    if key is not None:
        claim(session, by, key, "lead_assign", out_of_date=_l(
            "This form is out of date: select the customers again and choose the agents."))


def _settle_assignment(session, key: str | None, plan: dict[int, int]) -> None:
    if key is not None:
        names = dict(session.execute(select(User.id, User.username).where(User.id.in_(plan))).all())
        settle(session, key, ", ".join(f"{names.get(a, a)} {n}" for a, n in plan.items()))


def assign_leads(session, by: User, lead_ids, agent_id: int, *, key: str | None = None,
                 today: dt.date | None = None) -> int:
    """The manager assigns the selected leads to one agent (R-LEAD-2). Returns how many."""
    require(by, "lead.assign")
    _claim_assignment(session, by, key)
    (agent_id,) = _active_agents(session, [agent_id])
    rows = _locked_leads(session, lead_ids)
    changed = _apply_assignment(session, by, {agent_id: [r[0] for r in rows]}, dict(rows), today)
    _settle_assignment(session, key, {agent_id: changed})
    return changed


def distribute_leads(session, by: User, lead_ids, agent_ids, *, key: str | None = None,
                     equal_shares: bool = False, today: dt.date | None = None) -> dict[int, int]:
    """Spread the selected leads over the chosen agents (R-LEAD-2). The leads are taken in turn
    (by id); "open customers" are those in stages new / contacted / visited, in every project,
    and leads already held by one of the chosen agents do not count against him.

    By current load (the default): each lead goes to the chosen agent who has the fewest open
    customers at that moment, counting the leads just given; on a tie, the agent chosen first.
    The loads end as even as possible — an agent who already holds many more open customers than
    the others may get none.

    In equal shares (`equal_shares`): every chosen agent gets the same number, give or take one;
    the extra ones go to the agents with the fewest open customers (ties: chosen first).

    Returns leads per agent who got any."""
    require(by, "lead.assign")
    _claim_assignment(session, by, key)
    agent_ids = _active_agents(session, agent_ids)
    rows = _locked_leads(session, lead_ids)
    load = open_lead_load(session, agent_ids)
    # Leads moving between the chosen agents do not count against their current owner.
    for _, owner in rows:
        if owner in load:
            load[owner] -= 1
    if equal_shares:
        order = sorted(agent_ids, key=lambda a: (load[a], agent_ids.index(a)))
        plan = {a: [] for a in order}
        for n, (lead_id, _) in enumerate(rows):
            plan[order[n % len(order)]].append(lead_id)
        return _spread(session, by, plan, rows, key, today)
    import heapq
    heap = [(load[a], i, a) for i, a in enumerate(agent_ids)]
    heapq.heapify(heap)
    plan: dict[int, list[int]] = {a: [] for a in agent_ids}
    for lead_id, _ in rows:
        count, i, agent = heapq.heappop(heap)
        plan[agent].append(lead_id)
        heapq.heappush(heap, (count + 1, i, agent))
    return _spread(session, by, plan, rows, key, today)


def _spread(session, by: User, plan: dict[int, list[int]], rows, key: str | None,
            today: dt.date | None = None) -> dict[int, int]:
    plan = {a: ids for a, ids in plan.items() if ids}
    _apply_assignment(session, by, plan, dict(rows), today)
    spread = {a: len(ids) for a, ids in plan.items()}
    _settle_assignment(session, key, spread)
    return spread


def resolve_conflict(session, by: User, conflict_id: int, decision: str) -> LeadConflict:
    """The manager keeps the owner or transfers the lead to the second agent (R-LEAD-5). A
    conditional UPDATE on `open`: two decisions at once record one; the other is told."""
    require(by, "lead.resolve_conflict")
    conflict = session.get(LeadConflict, conflict_id)
    if conflict is None:
        raise RuleViolation(_l("This conflict does not exist."), rule="R-LEAD-5")
    if decision not in ("keep", "transfer"):
        raise RuleViolation(_l("Decide to keep the owner or to transfer the customer."), rule="R-LEAD-5")
    status = "kept" if decision == "keep" else "transferred"
    matched = session.execute(
        update(LeadConflict).where(LeadConflict.id == conflict.id, LeadConflict.status == "open")
        .values(status=status, resolved_by_id=by.id, resolved_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount
    if matched != 1:
        raise RuleViolation(_l("This conflict has already been decided."), rule="R-LEAD-5")
    record_many(session, "lead_conflict", f"conflict_{decision}", by,
                [(conflict.id, {"status": ["open", status], "resolved_by_id": [None, by.id]})])
    session.expire(conflict)
    if decision == "transfer":
        assign_leads(session, by, [conflict.lead_id], conflict.attempted_by_id)
    notify(session, [conflict.attempted_by_id], "lead_conflict",
           {"_t": f"lead_conflict.{'keep' if decision == 'keep' else 'transfer'}"},
           "/admin/lead/")
    return conflict


def pool_stale_leads(session, today: dt.date | None = None) -> int:
    """Leads with no follow-up for the project's N days go back to the public pool (公海).

    Set-based and idempotent: a second run the same day finds nothing more to move. The agent
    is told; the manager reassigns from the pool. Returns how many leads moved.
    """
    today = _today_or(today)
    midnight_utc = office_midnight_utc(today)
    stale: list[tuple[int, int]] = []
    for project_id, days in session.execute(select(Project.id, Project.pool_after_days)).all():
        cutoff = midnight_utc - dt.timedelta(days=days)
        stale += session.execute(
            select(Lead.id, Lead.owner_id).where(
                Lead.project_id == project_id, Lead.owner_id.is_not(None),
                Lead.stage.in_(OPEN_STAGES), Lead.last_activity_at < cutoff,
                or_(Lead.follow_up_paused_until.is_(None), Lead.follow_up_paused_until < today),
                # R-RCP-2: a first visit's protection keeps the customer with his agent while it runs
                or_(Lead.protected_until.is_(None), Lead.protected_until < today))
            .order_by(Lead.id).with_for_update()).all()
    if not stale:
        return 0
    ids = [r[0] for r in stale]
    now = utcnow()
    for start in range(0, len(ids), 5000):
        session.execute(update(Lead).where(Lead.id.in_(ids[start:start + 5000]),
                                           Lead.owner_id.is_not(None))
                        .values(owner_id=None, pooled_at=now, next_follow_up_on=None)
                        .execution_options(synchronize_session=False))
    record_many(session, "lead", "pool", None,
                [(lead_id, {"owner_id": [owner, None]}) for lead_id, owner in stale])
    per_agent: dict[int, int] = {}
    for _, owner in stale:
        per_agent[owner] = per_agent.get(owner, 0) + 1
    for agent_id, n in per_agent.items():
        notify(session, [agent_id], "lead_pooled",
               {"n": n}, "/admin/lead/")
    session.expire_all()
    return len(ids)


_NOT_IN_TOPIC = re.compile(r"[\s\W_]+", re.UNICODE)


def question_topic(question: str) -> str:
    """Questions that differ only in spacing, punctuation or case fall in one group."""
    return _NOT_IN_TOPIC.sub("", (question or "").lower())[:200]


def ask_question(session, by: User, *, project_id: int, question: str,
                 lead_id: int | None = None) -> CustomerQuestion:
    """Log a customer's question the answer sheet does not cover (R-LEAD-6)."""
    require(by, "question.ask")
    question = (question or "").strip()
    if not question_topic(question):
        raise RuleViolation(_l("Write the customer's question."), rule="R-LEAD-6")
    if session.get(Project, project_id) is None:
        raise RuleViolation(_l("Choose the project."))
    if lead_id is not None:
        visible_lead(session, by, lead_id)
    topic = question_topic(question)
    answered = session.scalar(select(CustomerQuestion).where(
        CustomerQuestion.project_id == project_id, CustomerQuestion.topic == topic,
        CustomerQuestion.answered_at.is_not(None)).limit(1))
    with audit_context(session, actor=by, action="ask_question"):
        row = CustomerQuestion(project_id=project_id, asked_by_id=by.id, lead_id=lead_id,
                               question=question, topic=topic)
        if answered is not None:  # already on the answer sheet: answered at once
            row.answer, row.answered_by_id, row.answered_at = (
                answered.answer, answered.answered_by_id, utcnow())
        session.add(row)
        session.flush()
    return row


def answer_topic(session, by: User, *, project_id: int, topic: str, answer: str) -> int:
    """The manager answers every question of a group; they join the answer sheet (R-LEAD-6)."""
    require(by, "question.answer")
    answer = (answer or "").strip()
    if not answer:
        raise RuleViolation(_l("Write the answer."), rule="R-LEAD-6")
    rows = session.scalars(select(CustomerQuestion).where(
        CustomerQuestion.project_id == project_id, CustomerQuestion.topic == topic)).all()
    if not rows:
        raise RuleViolation(_l("No question of this group exists."))
    now = utcnow()
    with audit_context(session, actor=by, action="answer_question"):
        for row in rows:
            row.answer, row.answered_by_id, row.answered_at = answer, by.id, now
        session.flush()
    notify(session, sorted({r.asked_by_id for r in rows}), "question_answered",
           {"question": rows[0].question[:40]}, "/admin/answer_sheet/")
    return len(rows)
