"""Handover (交房, R-AFT-4): notices to buyers whose money is settled, appointments, the
inspection checklist, defects (after-sales tickets, models.tickets), keys signed for.

A deal is handed over only when nothing is owed on it — the plan, late fees, the true-up
(`models.charges`) — and the refusal says what is. One handover in progress per deal.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, select, text, update
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .audit import audit_context
from .base import Base, in_list, office_local, office_to_utc, office_today, utcnow
from .charges import OUTSTANDING, Charge, charges_owed
from .deals import Subscription, locked_subscription, via_subscription
from .document_queue import Document, new_batch
from .errors import RuleViolation
from .inventory import Unit
from .labels import choice_label
from .money import format_money
from .notifications import notify
from .payments import Instalment, open_line
from .permissions import require
from .submissions import claim, settle
from .tickets import SUBJECT_MODELS, open_ticket
from .true_ups import TrueUp
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


SUBJECT_MODELS["handover"] = Handover  # a ticket names its handover; photos attach to it (models.tickets)


# --- what is owed (R-AFT-4) -----------------------------------------------------------------------

def owed_before_handover(session, sub: Subscription) -> list[tuple[str, Decimal]]:
    """What the buyer still owes on the deal, line by line: the open lines of the plan in force
    (their kind and balance) and the charges still owed (`charges.charges_owed`: late fees, area true-ups)."""
    owed = []
    for line in session.scalars(select(Instalment).where(Instalment.subscription_id == sub.id, open_line())
                                .order_by(Instalment.due_on, Instalment.seq)):
        if line.balance > 0:
            owed.append((str(choice_label("instalment", "kind", line.kind)), line.balance))
    for kind, amount in session.execute(select(Charge.kind, OUTSTANDING).where(
            Charge.subscription_id == sub.id, charges_owed()).order_by(Charge.id)):
        owed.append((str(choice_label("charge", "kind", kind)), amount))
    return owed


def owed_text(owed: list[tuple[str, Decimal]]) -> str:
    """"尾款 ¥1,000.00；滞纳金 ¥50.00" — the lines of what is owed, for a message."""
    return "; ".join(f"{label} {format_money(amount)}" for label, amount in owed)


def true_up_refusal(session, sub: Subscription) -> RuleViolation | None:
    """Why the area true-up (R-AFT-3) still stands before the handover (None: it does not): the
    unit has no surveyed area (the survey report goes with the home), or its surveyed area differs
    from the contract's and the deal's true-up is not applied yet — the bill comes before the keys."""
    surveyed, area = session.execute(select(Unit.surveyed_area, Unit.area).where(Unit.id == sub.unit_id)).one()
    if surveyed is None:
        return RuleViolation(_l("The unit has no surveyed area yet: enter its surveyed area and settle the area "
                                "true-up before the handover."), rule="R-AFT-4")
    status = session.scalar(select(TrueUp.status).where(TrueUp.subscription_id == sub.id,
                                                        TrueUp.unit_id == sub.unit_id, TrueUp.status != "void"))
    if status == "computed":
        return RuleViolation(_l("The deal's area true-up is computed but not applied: apply it (and settle it) "
                                "before the handover."), rule="R-AFT-4")
    if status is None and surveyed != area:
        return RuleViolation(_l("The unit's surveyed area differs from the contract's: compute and apply the area "
                                "true-up before the handover."), rule="R-AFT-4")
    return None


def handover_refusal(session, sub: Subscription) -> RuleViolation | None:
    """Why the deal's home cannot be handed over now (None: it can): the deal is not signed, its
    unit is not its own, the area true-up is not settled (no surveyed area, or a true-up not
    applied), or money is owed — said line by line, with the total."""
    if sub.status != "contracted":
        return RuleViolation(_l("Only a deal whose sale contract is signed is handed over."), rule="R-AFT-4")
    if session.scalar(select(Unit.status).where(Unit.id == sub.unit_id)) != "signed":  # as the row stands
        return RuleViolation(_l("The unit is not signed to this deal."), rule="R-AFT-4")
    why = true_up_refusal(session, sub)
    if why is not None:
        return why
    owed = owed_before_handover(session, sub)
    if owed:
        return RuleViolation(_l("Still owed: %(lines)s; total %(total)s.", lines=owed_text(owed),
                                total=format_money(sum((a for _, a in owed), Decimal("0.00")))), rule="R-AFT-4")
    return None


def ready_for_handover():
    """A WHERE clause on Subscription: signed deals with no handover in progress or done."""
    return (Subscription.status == "contracted") & ~Subscription.id.in_(
        select(Handover.subscription_id).where(Handover.status != "cancelled"))


# --- notices -----------------------------------------------------------------------------------------

def _period_refusal(project, today: dt.date) -> RuleViolation | None:
    if project.handover_starts_on is None or project.handover_ends_on is None:
        return RuleViolation(_l("Set the project's handover period first (Projects: handover period starts "
                                "and ends)."), rule="R-AFT-4")
    if today > project.handover_ends_on:
        return RuleViolation(_l("The project's handover period ended on %(day)s.", day=project.handover_ends_on),
                             rule="R-AFT-4")
    return None


def _queue(session, by, kind: str, handovers: list["Handover"]) -> list[Document]:
    """The documents of `kind` for these handovers, queued in the caller's transaction (several
    make a batch); the caller commits, then sends them (jobs.documents.enqueue_documents)."""
    if not handovers:
        return []
    batch = new_batch(session, kind, len(handovers), by) if len(handovers) > 1 else None
    documents = []
    for handover in handovers:
        sub = handover.subscription
        documents.append(Document(kind=kind, subject_id=handover.id, batch=batch, owner_id=sub.agent_id,
                                  requested_by_id=by.id if by else None,
                                  title=f"{sub.number} {sub.customer_name or sub.lead.name}"[:200]))
    session.add_all(documents)
    session.flush()
    return documents


def notify_handovers(session, by, subscription_ids, today: dt.date | None = None):
    """Handover notices (R-AFT-4) to the deals among `subscription_ids` with nothing owed, within
    or before the project's handover period: per deal a Handover (notified), its inspection items
    from the project's checklist, and a queued notice (a batch for several). Returns (created
    handovers, [(subscription, reason)] refused); a deal with a handover already is left alone
    (the partial unique index keeps one)."""
    require(by, "handover.notify")
    today = today or office_today()
    created, refused = [], []
    for sub_id in sorted({int(i) for i in subscription_ids}):
        sub = locked_subscription(session, sub_id)
        why = _period_refusal(sub.project, today) or handover_refusal(session, sub)
        if why is not None:
            refused.append((sub, why))
            continue
        if session.scalar(select(Handover.id).where(Handover.subscription_id == sub.id,
                                                    Handover.status != "cancelled")) is not None:
            refused.append((sub, RuleViolation(_l("This deal's handover notice was sent already."), rule="R-AFT-4")))
            continue
        # Under the deal's lock the check above is the rule; uq_handover_live is the database's guard.
        items = [line.strip() for line in (sub.project.handover_checklist or "").splitlines() if line.strip()]
        with audit_context(session, actor=by, action="notify_handover"):
            handover = Handover(project_id=sub.project_id, subscription_id=sub.id, unit_id=sub.unit_id,
                                status="notified", notified_on=today, notified_by_id=by.id,
                                items=[HandoverItem(seq=n, item=item[:100]) for n, item in enumerate(items, 1)])
            session.add(handover)
            session.flush()
        created.append(handover)
    with audit_context(session, actor=by, action="request_document"):
        _queue(session, by, "handover_notice", created)
    return created, refused


def _handover(session, handover_id: int) -> Handover:
    handover = session.get(Handover, handover_id)
    if handover is None:
        raise RuleViolation(_l("This handover does not exist."), rule="R-AFT-4")
    return handover


def _move(session, handover: Handover, before: tuple, after: str, **values) -> None:
    """The handover's status from one of `before` to `after` by a conditional UPDATE (a double
    click or two people at once: one wins, the other is told)."""
    matched = session.execute(update(Handover).where(Handover.id == handover.id, Handover.status.in_(before))
                              .values(status=after, **values).execution_options(synchronize_session=False)).rowcount
    if matched != 1:
        session.refresh(handover)
        raise RuleViolation(_l("This handover is %(status)s already.",
                               status=choice_label("handover", "status", handover.status)), rule="R-AFT-4")
    session.refresh(handover)


# --- appointments ------------------------------------------------------------------------------------

def booking_refusal(by, handover: Handover) -> RuleViolation | None:
    if handover.status not in ("notified", "booked"):
        return RuleViolation(_l("The appointment can be changed only until the inspection."), rule="R-AFT-4")
    if not by.has_role("customer_service") and not by.has_role("admin") \
            and handover.subscription.agent_id != by.id:
        return RuleViolation(_l("Only the deal's agent or customer service books its handover."), rule="R-AFT-4")
    return None


def book_handover(session, by, handover_id: int, appointment_at: dt.datetime, today: dt.date | None = None,
                  now: dt.datetime | None = None) -> Handover:
    """The agent of the deal or customer service books (or moves) the handover appointment, at
    `appointment_at` in the office's time (stored UTC), within the project's handover period and
    not in the past; the agent is told when someone else books."""
    require(by, "handover.book")
    today = today or office_today()
    handover = _handover(session, handover_id)
    locked_subscription(session, handover.subscription_id)
    session.refresh(handover)
    why = booking_refusal(by, handover)
    if why is not None:
        raise why
    if appointment_at.tzinfo is not None:
        appointment_at = office_local(appointment_at).replace(tzinfo=None)
    if now is None and today == office_today():
        now = utcnow()
    now_local = office_local(now).replace(tzinfo=None) if now is not None else None
    if appointment_at.date() < today or (now_local is not None and appointment_at < now_local):
        raise RuleViolation(_l("The appointment cannot be in the past."), rule="R-AFT-4")
    project = handover.subscription.project
    if project.handover_starts_on and appointment_at.date() < project.handover_starts_on \
            or project.handover_ends_on and appointment_at.date() > project.handover_ends_on:
        raise RuleViolation(_l("The appointment falls within the handover period, %(start)s to %(end)s.",
                               start=project.handover_starts_on, end=project.handover_ends_on), rule="R-AFT-4")
    with audit_context(session, actor=by, action="book_handover"):
        _move(session, handover, ("notified", "booked"), "booked", appointment_at=office_to_utc(appointment_at))
    sub = handover.subscription
    if sub.agent_id and sub.agent_id != by.id:
        notify(session, [sub.agent_id], "handover_booked",
               {"no": sub.number, "name": sub.customer_name, "at": f"{appointment_at:%Y-%m-%d %H:%M}"},
               f"/admin/handover/details/?id={handover.id}")
    return handover


# --- inspection --------------------------------------------------------------------------------------

def record_inspection(session, by, handover_id: int, results, today: dt.date | None = None) -> Handover:
    """Customer service records the inspection with the buyer: `results` {item id: (passed,
    note)} for every item; each failed item opens a defect ticket (engineering) it keeps."""
    require(by, "handover.inspect")
    today = today or office_today()
    handover = _handover(session, handover_id)
    sub = locked_subscription(session, handover.subscription_id)
    session.refresh(handover)
    if handover.status not in ("notified", "booked"):
        raise RuleViolation(_l("This handover is %(status)s already.",
                               status=choice_label("handover", "status", handover.status)), rule="R-AFT-4")
    results = {int(k): v for k, v in dict(results).items()}
    items = handover.items
    if {i.id for i in items} - set(results):
        raise RuleViolation(_l("Give a result for every item of the inspection."), rule="R-AFT-4")
    with audit_context(session, actor=by, action="record_inspection"):
        _move(session, handover, ("notified", "booked"), "inspected", inspected_on=today)
        for item in items:
            passed, note = results[item.id]
            item.passed, item.note = bool(passed), (note or "").strip()
            if not item.passed:
                ticket = open_ticket(session, by, lead_id=sub.lead_id, subscription_id=sub.id, unit_id=sub.unit_id,
                                     handover_id=handover.id, category="defect", source="handover",
                                     department="engineering", title=f"{handover.unit} {item.item}",
                                     description=item.note, location=item.item, today=today)
                item.ticket_id = ticket.id
        session.flush()
    return handover


# --- keys --------------------------------------------------------------------------------------------

def keys_refusal(session, handover: Handover) -> RuleViolation | None:
    """Why the keys cannot be handed over now (None: they can)."""
    if handover.status == "handed_over":
        return RuleViolation(_l("The keys were handed over already."), rule="R-AFT-4")
    if handover.status != "inspected":
        return RuleViolation(_l("Inspect the home with the buyer before handing over the keys."), rule="R-AFT-4")
    return handover_refusal(session, handover.subscription)


def hand_over_keys(session, by, handover_id: int, *, signed_by: str, keys_count: int, meter_readings: str = "",
                   on: dt.date | None = None, key: str | None = None, today: dt.date | None = None):
    """Customer service hands over the keys (R-AFT-4), the buyer signing for them: refused while
    anything is owed (checked now, under the deal's lock: a payment reversed since the notice
    counts), after the inspection (open defects are listed on the record, they do not block);
    the handover, the deal and the unit read handed over; the handover record is queued.
    `key`: the form's one-time key — a double click hands over once. Returns (handover, record)."""
    require(by, "handover.keys")
    today = today or office_today()
    on = on or today
    if key is not None:
        claim(session, by, key, "handover_keys", f"handover:{handover_id}")
    handover = _handover(session, handover_id)
    sub = locked_subscription(session, handover.subscription_id)
    session.refresh(handover)
    why = keys_refusal(session, handover)
    if why is not None:
        raise why
    signed_by = (signed_by or "").strip()
    if not signed_by:
        raise RuleViolation(_l("Enter who signed for the keys."), rule="R-AFT-4")
    if not keys_count or int(keys_count) < 1:
        raise RuleViolation(_l("Enter how many keys were handed over (at least one)."), rule="R-AFT-4")
    if on > today or (handover.inspected_on and on < handover.inspected_on):
        raise RuleViolation(_l("The handover date lies between the inspection and today."), rule="R-AFT-4")
    with audit_context(session, actor=by, action="hand_over_keys"):
        _move(session, handover, ("inspected",), "handed_over", keys_handed_on=on, signed_by=signed_by[:100],
              keys_count=int(keys_count), meter_readings=(meter_readings or "").strip(), handed_over_by_id=by.id)
        sub.handed_over_on = on
        session.execute(update(Unit).where(Unit.id == sub.unit_id, Unit.status == "signed")
                        .values(handed_over_on=on).execution_options(synchronize_session=False))
        session.flush()
        record = _queue(session, by, "handover_record", [handover])[0]
    if key is not None:
        settle(session, key, f"{sub.number} {on}")
    return handover, record


def handovers_booked_on(day: dt.date):
    """A WHERE clause: handovers booked for the office day `day` (customer service's worklist)."""
    from .base import office_midnight_utc
    return (Handover.status == "booked") & (Handover.appointment_at >= office_midnight_utc(day)) & (
        Handover.appointment_at < office_midnight_utc(day + dt.timedelta(days=1)))

