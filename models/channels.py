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

from flask_babel import gettext, lazy_gettext as _l
from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String, Text, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column, relationship, synonym

from .audit import audit_context, record_many
from .base import Base, in_list, office_local, office_today, utcnow
from .errors import RuleViolation
from .leads import Lead, validate_phone
from .notifications import MESSAGES, notify
from .permissions import require
from .privacy import mask_phone
from .projects import Project
from .submissions import claim, settle
from .users import User, create_user, users_with_roles

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
    id = synonym("user_id")  # the grids find, sort and page rows by `id` (admin/fast_list.py)
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


# ---------------------------------------------------------------------------------------------
# Domain operations (R-COM-1). Each checks the role, changes rows in the caller's transaction (the
# caller commits) under conditional updates and the partial unique index, and is audited.

class ChannelRefused(RuleViolation):
    """The registration was refused and kept (status `refused`) with a conflict for the manager;
    the caller commits, to keep both."""

    def __init__(self, registration: ChannelRegistration, conflict: ChannelConflict):
        super().__init__(_l("This customer is already registered or is already a customer of the project. "
                            "Your registration was recorded as refused; the sales manager will decide."),
                         rule="R-COM-1")
        self.registration, self.conflict = registration, conflict


def _company_or_refuse(session, by: User, *, for_registering: bool = True) -> ChannelCompany:
    company = session.scalar(select(ChannelCompany).join(ChannelMember, ChannelMember.company_id == ChannelCompany.id)
                             .where(ChannelMember.user_id == by.id))
    if company is None:
        raise RuleViolation(_l("Your account is not tied to a channel company; ask the sales manager."),
                            rule="R-COM-1")
    if for_registering and not company.active:
        raise RuleViolation(_l("Your channel company is deactivated: it cannot register customers."),
                            rule="R-COM-1")
    return company


def window_end(project: Project, today: dt.date) -> dt.date:
    """The last day a visit confirms a registration made on `today`: the window counts today as
    its first day, so a window of N days ends on today + N - 1 (N = 1: today only)."""
    return today + dt.timedelta(days=max(project.channel_window_days, 1) - 1)


def sign_in_refused(session, user: User) -> bool:
    """Whether `user` is a channel person of a deactivated company (who may not sign in)."""
    if "channel" not in user.role_names:
        return False
    active = session.scalar(select(ChannelCompany.active).join(ChannelMember, ChannelMember.company_id == ChannelCompany.id)
                            .where(ChannelMember.user_id == user.id))
    return active is False


def _live(session, project_id: int, phone: str, lock: bool = False) -> ChannelRegistration | None:
    query = select(ChannelRegistration).where(ChannelRegistration.project_id == project_id,
                                              ChannelRegistration.phone == phone,
                                              ChannelRegistration.status.in_(LIVE_REGISTRATION))
    return session.scalar(query.with_for_update() if lock else query)


def _already_ours(live: ChannelRegistration) -> RuleViolation:
    return RuleViolation(_l("Your company already registered this phone on %(on)s; the registration is "
                            "valid until %(until)s. Nothing new was recorded.",
                            on=live.registered_on.isoformat(), until=live.valid_until.isoformat()),
                         rule="R-COM-1")


def register_customer(session, by: User, *, project_id: int, customer_name: str, phone: str,
                      today: dt.date | None = None, key: str | None = None) -> ChannelRegistration:
    """A channel registers a customer's phone with a project before the visit (R-COM-1, 报备).

    Valid from `today` to `window_end` (the project's channel window, today included). The first
    valid registration wins: a phone already a customer of the project, or live with another
    company, is stored as `refused` with a channel_conflict for the manager (ChannelRefused; the
    caller commits to keep them). The partial unique index decides two channels at the same
    moment: the loser's insert fails in its savepoint and is refused the same way. The same
    company registering the same live phone again records nothing (RuleViolation). `key`: the
    form's one-time submission key (models.submissions): a form sent twice records once.
    """
    require(by, "channel.register")
    name = (customer_name or "").strip()
    if not name:
        raise RuleViolation(_l("The customer's name is required."), rule="R-COM-1")
    if len(name) > 100:
        raise RuleViolation(_l("The customer's name is too long (at most 100 characters)."))
    project = session.get(Project, project_id) if project_id else None
    if project is None:
        raise RuleViolation(_l("Choose the project."), rule="R-COM-1")
    phone = validate_phone(phone)
    company = _company_or_refuse(session, by)
    today = today or office_today()
    if key is not None:
        claim(session, by, key, "channel_register", subject=f"project:{project.id}", out_of_date=_l(
            "This form is out of date: open it again and register the customer once more."))
    live = _live(session, project.id, phone)
    if live is not None and live.company_id == company.id:
        raise _already_ours(live)
    registration = ChannelRegistration(
        project_id=project.id, company_id=company.id, registered_by_id=by.id, customer_name=name,
        phone=phone, registered_at=utcnow(), registered_on=today, valid_until=window_end(project, today),
        status="valid")
    customer = session.scalar(select(Lead).where(Lead.project_id == project.id, Lead.phone == phone))
    if live is None and customer is None:
        try:
            with session.begin_nested(), audit_context(session, actor=by, action="channel_register"):
                session.add(registration)
                session.flush()
        except IntegrityError:
            live = _live(session, project.id, phone)  # the registration that won the race
            if live is None:
                raise
            if live.company_id == company.id:
                raise _already_ours(live) from None
            registration = ChannelRegistration(
                project_id=project.id, company_id=company.id, registered_by_id=by.id, customer_name=name,
                phone=phone, registered_at=registration.registered_at, registered_on=today,
                valid_until=registration.valid_until, status="valid")
        else:
            if key is not None:
                settle(session, key, f"#{registration.id}")
            return registration
    raise _refuse(session, by, company, registration, live, customer, key)


def _refuse(session, by, company, registration, live, customer, key) -> ChannelRefused:
    registration.status = "refused"
    with audit_context(session, actor=by, action="channel_refused"):
        session.add(registration)
        session.flush()
        conflict = ChannelConflict(project_id=registration.project_id, registration_id=registration.id,
                                   against_registration_id=live.id if live is not None else None,
                                   against_lead_id=customer.id if customer is not None else None)
        session.add(conflict)
        session.flush()
    notify(session, users_with_roles(session, {"sales_manager"}), "channel_conflict",
           {"company": company.name, "phone": mask_phone(registration.phone)},
           f"/admin/channel_conflict/details/?id={conflict.id}")
    if key is not None:
        settle(session, key, f"#{registration.id}")
    return ChannelRefused(registration, conflict)


def withdraw_registration(session, by: User, registration_id: int) -> ChannelRegistration:
    """The channel's person takes back his own registration while it is valid (not yet visited)."""
    require(by, "channel.withdraw")
    registration = session.get(ChannelRegistration, registration_id)
    if registration is None or registration.registered_by_id != by.id:
        raise RuleViolation(_l("This registration does not exist."), rule="R-COM-1")
    done = session.execute(update(ChannelRegistration).where(
        ChannelRegistration.id == registration.id, ChannelRegistration.status == "valid")
        .values(status="withdrawn").execution_options(synchronize_session=False)).rowcount
    if done != 1:
        raise RuleViolation(_l("Only a valid registration not yet confirmed by a visit can be withdrawn."),
                            rule="R-COM-1")
    record_many(session, "channel_registration", "channel_withdraw", by,
                [(registration.id, {"status": ["valid", "withdrawn"]})])
    session.expire(registration)
    return registration


# Called as hook(session, lead_id, project_id, by, today), in the caller's transaction, when a
# customer's attribution to a channel changed (a registration confirmed by a visit; a conflict
# awarded to the later channel): what modules above this one follow (models.commissions: every
# deal of the customer recomputed, its channel commission to the company now confirmed, R-COM-2).
ATTRIBUTION_CHANGED: list = []


def attribution_changed(session, lead_id: int | None, project_id: int, by, today: dt.date) -> None:
    if lead_id is None:
        return
    for hook in ATTRIBUTION_CHANGED:
        hook(session, lead_id, project_id, by, today)


def confirm_by_visit(session, visit) -> ChannelRegistration | None:
    """VISIT_RECORDED hook (R-COM-1): a visit to the project with the registered phone, on or
    before the registration's last day, confirms the live `valid` registration (its customer is
    the visit's) and the visit notes it; a visit after the window does not, and the
    registration expires. Returns the registration confirmed, or None."""
    day = office_local(visit.arrived_at or utcnow()).date()
    registration = session.scalar(select(ChannelRegistration).where(
        ChannelRegistration.project_id == visit.project_id, ChannelRegistration.phone == visit.phone,
        ChannelRegistration.status == "valid").with_for_update())
    if registration is None or day < registration.registered_on:
        return None
    if day > registration.valid_until:
        _expire(session, [registration.id])
        session.expire(registration)
        return None
    lead_id = visit.lead_id or session.scalar(select(Lead.id).where(
        Lead.project_id == visit.project_id, Lead.phone == visit.phone))
    now = utcnow()
    done = session.execute(update(ChannelRegistration).where(
        ChannelRegistration.id == registration.id, ChannelRegistration.status == "valid")
        .values(status="confirmed", lead_id=lead_id, confirmed_at=now)
        .execution_options(synchronize_session=False)).rowcount
    if done != 1:
        return None
    record_many(session, "channel_registration", "channel_confirm", None,
                [(registration.id, {"status": ["valid", "confirmed"], "lead_id": [None, lead_id]})])
    visit.registration_id = registration.id
    session.expire(registration)
    attribution_changed(session, lead_id, visit.project_id, None, day)
    notify(session, [registration.registered_by_id], "channel_registration",
           {"_t": "channel_registration.confirmed", "name": registration.customer_name,
            "phone": mask_phone(registration.phone)}, "/admin/channel_registration/")
    return registration




def _expire(session, ids) -> int:
    expired = 0
    for start in range(0, len(ids), 5000):
        expired += session.execute(update(ChannelRegistration).where(
            ChannelRegistration.id.in_(ids[start:start + 5000]), ChannelRegistration.status == "valid")
            .values(status="expired").execution_options(synchronize_session=False)).rowcount
    record_many(session, "channel_registration", "channel_expire", None,
                [(i, {"status": ["valid", "expired"]}) for i in ids])
    return expired


def expire_registrations(session, today: dt.date | None = None) -> int:
    """Registrations never confirmed by a visit whose last day is before `today` expire (the daily
    run). Set-based and idempotent: a second run the same day finds nothing. Returns how many."""
    today = today or office_today()
    ids = list(session.scalars(select(ChannelRegistration.id).where(
        ChannelRegistration.status == "valid", ChannelRegistration.valid_until < today)
        .order_by(ChannelRegistration.id).with_for_update()))
    return _expire(session, ids) if ids else 0


def resolve_conflict(session, by: User, conflict_id: int, decision: str, reason: str,
                     today: dt.date | None = None) -> ChannelConflict:
    """The manager decides a channel conflict (R-COM-1): `keep` (the first registration, or the
    customer, stays as it is) or `award` (the later registration becomes the live one: the first
    is demoted to `refused` before the later is promoted, in one transaction, under the partial
    unique index). A conditional UPDATE on `open`: two decisions at once record one. Both sides'
    people are told. Raises RuleViolation."""
    require(by, "channel.resolve")
    reason = (reason or "").strip()
    if decision not in ("keep", "award"):
        raise RuleViolation(_l("Decide to keep the first registration or to award the later one."), rule="R-COM-1")
    if not reason:
        raise RuleViolation(_l("Give the reason for the decision."), rule="R-COM-1")
    conflict = session.get(ChannelConflict, conflict_id)
    if conflict is None:
        raise RuleViolation(_l("This conflict does not exist."), rule="R-COM-1")
    status = "kept" if decision == "keep" else "awarded"
    done = session.execute(update(ChannelConflict).where(
        ChannelConflict.id == conflict.id, ChannelConflict.status == "open")
        .values(status=status, decided_by_id=by.id, decided_at=utcnow(), reason=reason)
        .execution_options(synchronize_session=False)).rowcount
    if done != 1:
        raise RuleViolation(_l("This conflict has already been decided."), rule="R-COM-1")
    record_many(session, "channel_conflict", f"channel_conflict_{decision}", by,
                [(conflict.id, {"status": ["open", status], "reason": ["", reason]})])
    session.expire(conflict)
    later, first = conflict.registration, conflict.against_registration
    if decision == "award":
        _award(session, by, conflict, later, first, today or office_today())
    outcome = "kept" if decision == "keep" else "awarded"
    notify(session, [later.registered_by_id], "channel_registration",
           {"_t": f"channel_registration.{outcome}", "name": later.customer_name,
            "phone": mask_phone(later.phone)}, "/admin/channel_registration/")
    if first is not None:
        notify(session, [first.registered_by_id], "channel_registration",
               {"_t": f"channel_registration.{'stands' if decision == 'keep' else 'lost'}",
                "name": first.customer_name, "phone": mask_phone(first.phone)}, "/admin/channel_registration/")
    return conflict


def _award(session, by, conflict, later, first, today) -> None:
    if later.status != "refused":
        raise RuleViolation(_l("This registration is no longer the refused one; nothing was changed."),
                            rule="R-COM-1")
    lead_id = (first.lead_id if first is not None else None) or conflict.against_lead_id or session.scalar(
        select(Lead.id).where(Lead.project_id == later.project_id, Lead.phone == later.phone))
    if lead_id is None and later.valid_until < today:
        raise RuleViolation(_l("The later registration's window has passed: it can no longer be awarded."),
                            rule="R-COM-1")
    rows = []
    if first is not None and first.status in LIVE_REGISTRATION:  # demote first, then promote
        before = first.status
        session.execute(update(ChannelRegistration).where(
            ChannelRegistration.id == first.id, ChannelRegistration.status == before)
            .values(status="refused").execution_options(synchronize_session=False))
        rows.append((first.id, "channel_demote", {"status": [before, "refused"]}))
    new = "confirmed" if lead_id is not None else "valid"
    try:
        with session.begin_nested():
            session.execute(update(ChannelRegistration).where(
                ChannelRegistration.id == later.id, ChannelRegistration.status == "refused")
                .values(status=new, lead_id=lead_id, confirmed_at=utcnow() if lead_id else None)
                .execution_options(synchronize_session=False))
    except IntegrityError:
        raise RuleViolation(_l("Another registration holds this phone now: keep the first instead, or "
                               "decide that registration's conflict."), rule="R-COM-1") from None
    rows.append((later.id, "channel_award", {"status": ["refused", new], "lead_id": [None, lead_id]}))
    for entity_id, action, changes in rows:
        record_many(session, "channel_registration", action, by, [(entity_id, changes)])
    session.expire(later)
    if first is not None:
        session.expire(first)
    attribution_changed(session, lead_id, later.project_id, by, today)


def set_company_active(session, by: User, company_id: int, active: bool) -> ChannelCompany:
    """Deactivate (or reactivate) a channel company: a deactivated company's people can neither
    register nor sign in (their open sessions end now)."""
    require(by, "channel.manage")
    company = session.get(ChannelCompany, company_id)
    if company is None:
        raise RuleViolation(_l("This channel company does not exist."), rule="R-COM-1")
    done = session.execute(update(ChannelCompany).where(
        ChannelCompany.id == company.id, ChannelCompany.active.is_(not active))
        .values(active=active).execution_options(synchronize_session=False)).rowcount
    if done != 1:
        return company
    record_many(session, "channel_company", "channel_activate" if active else "channel_deactivate", by,
                [(company.id, {"active": [not active, active]})])
    if not active:
        for user in session.scalars(select(User).join(ChannelMember, ChannelMember.user_id == User.id)
                                    .where(ChannelMember.company_id == company.id)):
            user.end_sessions()
        session.flush()
    session.expire(company)
    return company


def add_member(session, by: User, *, company_id: int, user_id: int | None = None, username: str = "",
               password: str = "", display_name: str = "") -> ChannelMember:
    """Tie a person to a channel company: a new account with the `channel` role (username,
    password, name), or an existing channel account (`user_id`). A person works for one company."""
    require(by, "channel.manage")
    company = session.get(ChannelCompany, company_id) if company_id else None
    if company is None:
        raise RuleViolation(_l("Choose the channel company."), rule="R-COM-1")
    if not company.active:
        raise RuleViolation(_l("This channel company is deactivated."), rule="R-COM-1")
    with audit_context(session, actor=by, action="channel_member_add"):
        if user_id:
            user = session.get(User, user_id)
            if user is None or user.role_names != frozenset({"channel"}):
                raise RuleViolation(_l("Only an account with the external channel role alone can be tied "
                                       "to a channel company."), rule="R-COM-1")
        else:
            user = create_user(session, username, password, ["channel"], (display_name or "").strip() or None)
        if session.get(ChannelMember, user.id) is not None:
            raise RuleViolation(_l("This person already works for a channel company."), rule="R-COM-1")
        member = ChannelMember(user_id=user.id, company_id=company.id)
        session.add(member)
        session.flush()
    return member


MESSAGES.update({
    "channel_conflict": lambda p: gettext(
        "%(company)s registered a customer already registered or already a customer (%(phone)s); "
        "please decide.", **p),
    "channel_registration.confirmed": lambda p: gettext(
        "Your registration of %(name)s (%(phone)s) was confirmed by a visit.", **p),
    "channel_registration.kept": lambda p: gettext(
        "The manager decided on your registration of %(name)s (%(phone)s): it stays refused.", **p),
    "channel_registration.awarded": lambda p: gettext(
        "The manager decided on your registration of %(name)s (%(phone)s): the customer is attributed to you.", **p),
    "channel_registration.stands": lambda p: gettext(
        "The manager decided a conflict over your registration of %(name)s (%(phone)s): yours stands.", **p),
    "channel_registration.lost": lambda p: gettext(
        "The manager decided a conflict over your registration of %(name)s (%(phone)s): the customer is "
        "attributed to another registration.", **p),
})
