"""After-sales care (R-SVC-1, R-SVC-2; seed 四.2, 四.3): customers' problems as tickets, routed to
the responsible department, followed with dated notes to closure, the outcome fed back to the
customer; photos attached (stored like documents, type- and size-checked); satisfaction surveys
after signing, after handover and after a ticket closes. A handover's defects are tickets too.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, SmallInteger, String, Text, UniqueConstraint, select, text
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from .base import Base, in_list, utcnow
from .deals import Subscription
from .leads import Lead
from .users import User

TICKET_CATEGORIES = ("quality", "service", "documents", "defect", "other")
TICKET_SOURCES = ("phone", "visit", "wechat", "handover", "web", "letter", "other")
DEPARTMENTS = ("engineering", "property", "customer_service", "finance", "legal", "sales")
TICKET_STATUSES = ("open", "in_progress", "resolved", "closed")
OPEN_TICKET = ("open", "in_progress", "resolved")  # not yet closed (resolved: awaiting the customer's feedback)
SURVEY_OCCASIONS = ("signing", "handover", "ticket")
ATTACHMENT_SUBJECTS = ("ticket", "handover")
ATTACHMENT_TYPES = ("image/jpeg", "image/png", "application/pdf")
ATTACHMENT_MAX_BYTES = 5 * 1024 * 1024


class Ticket(Base):
    """A customer's problem after the sale, from its report to the customer's feedback."""

    __tablename__ = "ticket"
    __table_args__ = (
        CheckConstraint(in_list("category", TICKET_CATEGORIES), name="category_known"),
        CheckConstraint(in_list("source", TICKET_SOURCES), name="source_known"),
        CheckConstraint(in_list("department", DEPARTMENTS), name="department_known"),
        CheckConstraint(in_list("status", TICKET_STATUSES), name="status_known"),
        CheckConstraint("status <> 'closed' OR (feedback_on IS NOT NULL AND feedback <> '')",
                        name="closed_after_feedback"),
        Index("ix_ticket_open_due", "status", "due_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(30), unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"), index=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("lead.id", ondelete="RESTRICT"), index=True)  # the customer
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscription.id", ondelete="RESTRICT"),
                                                        index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id", ondelete="RESTRICT"))
    handover_id: Mapped[int | None] = mapped_column(ForeignKey("handover.id", ondelete="RESTRICT"), index=True)
    category: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))
    department: Mapped[str] = mapped_column(String(30))
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="open")
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    location: Mapped[str] = mapped_column(String(100), default="", server_default="")  # e.g. 主卧窗台
    opened_on: Mapped[dt.date]
    due_on: Mapped[dt.date]
    opened_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    resolved_on: Mapped[dt.date | None]
    resolution: Mapped[str] = mapped_column(Text, default="", server_default="")
    feedback_on: Mapped[dt.date | None]  # the outcome told to the customer
    feedback: Mapped[str] = mapped_column(Text, default="", server_default="")
    closed_on: Mapped[dt.date | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    lead: Mapped[Lead] = relationship()
    subscription: Mapped[Subscription | None] = relationship()
    assigned_to: Mapped[User | None] = relationship(foreign_keys=[assigned_to_id])
    opened_by: Mapped[User] = relationship(foreign_keys=[opened_by_id])
    notes: Mapped[list["TicketNote"]] = relationship(back_populates="ticket", order_by="TicketNote.id")

    def __str__(self) -> str:
        return self.number

    @classmethod
    def owned_by(cls, user_id: int):
        """An agent sees the tickets of his own customers, and those assigned to him."""
        return (cls.lead_id.in_(select(Lead.id).where(Lead.owner_id == user_id))) | (cls.assigned_to_id == user_id)


class TicketCounter(Base):
    """The last ticket number per project (gap-free, like receipts)."""

    __tablename__ = "ticket_counter"

    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"), primary_key=True)
    last_no: Mapped[int] = mapped_column(default=0)


class TicketNote(Base):
    """A dated note on a ticket: what was done, said or decided."""

    __tablename__ = "ticket_note"
    __append_only__ = True

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="RESTRICT"), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    note: Mapped[str] = mapped_column(Text)

    ticket: Mapped[Ticket] = relationship(back_populates="notes")
    by: Mapped[User] = relationship()

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.ticket_id.in_(select(Ticket.id).where(Ticket.owned_by(user_id)))


class Attachment(Base):
    """A photo or scan attached to a ticket or a handover (a defect's photo, the signed key
    receipt), stored in the database like a document; its type read from its bytes, its size
    checked."""

    __tablename__ = "attachment"
    __append_only__ = True
    __table_args__ = (
        CheckConstraint(in_list("subject", ATTACHMENT_SUBJECTS), name="subject_known"),
        CheckConstraint(in_list("content_type", ATTACHMENT_TYPES), name="type_known"),
        CheckConstraint(f"size > 0 AND size <= {ATTACHMENT_MAX_BYTES}", name="size_range"),
        Index("ix_attachment_subject", "subject", "subject_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[int]
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    uploaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Survey(Base):
    """A satisfaction survey (R-SVC-2): scores 1–5 and a comment, after signing, after handover, or
    after a ticket closes; the deal's agent is the one it rates."""

    __tablename__ = "survey"
    __table_args__ = (
        CheckConstraint(in_list("occasion", SURVEY_OCCASIONS), name="occasion_known"),
        CheckConstraint("(occasion = 'ticket') = (ticket_id IS NOT NULL)", name="ticket_occasion"),
        CheckConstraint("overall BETWEEN 1 AND 5", name="overall_range"),
        CheckConstraint("service IS NULL OR service BETWEEN 1 AND 5", name="service_range"),
        CheckConstraint("quality IS NULL OR quality BETWEEN 1 AND 5", name="quality_range"),
        # One survey per deal and occasion (and per ticket).
        Index("uq_survey_deal_occasion", "subscription_id", "occasion", unique=True,
              sqlite_where=text("ticket_id IS NULL"), postgresql_where=text("ticket_id IS NULL")),
        Index("uq_survey_ticket", "ticket_id", unique=True,
              sqlite_where=text("ticket_id IS NOT NULL"), postgresql_where=text("ticket_id IS NOT NULL")),
        Index("ix_survey_recorded_on", "recorded_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="RESTRICT"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id", ondelete="RESTRICT"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"), index=True)
    occasion: Mapped[str] = mapped_column(String(20))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id", ondelete="RESTRICT"))
    overall: Mapped[int] = mapped_column(SmallInteger)
    service: Mapped[int | None] = mapped_column(SmallInteger)
    quality: Mapped[int | None] = mapped_column(SmallInteger)
    comment: Mapped[str] = mapped_column(Text, default="", server_default="")
    recorded_on: Mapped[dt.date]
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    subscription: Mapped[Subscription] = relationship()
    agent: Mapped[User] = relationship(foreign_keys=[agent_id])
    recorded_by: Mapped[User] = relationship(foreign_keys=[recorded_by_id])

    @classmethod
    def owned_by(cls, user_id: int):
        return cls.agent_id == user_id


def _next_ticket_no(session, project_id: int) -> str:
    """The project's next ticket number (gap-free: taken in the caller's transaction)."""
    from sqlalchemy import update
    from sqlalchemy.exc import IntegrityError

    from .projects import Project
    number = None
    for _ in range(2):
        number = session.execute(update(TicketCounter).where(TicketCounter.project_id == project_id)
                                 .values(last_no=TicketCounter.last_no + 1).returning(TicketCounter.last_no)).scalar()
        if number is not None:
            break
        try:
            with session.begin_nested():
                session.add(TicketCounter(project_id=project_id, last_no=1))
                session.flush()
            number = 1
            break
        except IntegrityError:
            continue
    code = session.scalar(select(Project.code).where(Project.id == project_id))
    return f"GD-{code}-{number:06d}"


def open_ticket(session, by, *, lead_id: int, subscription_id: int | None = None, unit_id: int | None = None,
                handover_id: int | None = None, category: str = "other", source: str = "other",
                department: str = "customer_service", title: str, description: str = "", location: str = "",
                today: dt.date | None = None) -> Ticket:
    """A customer's problem recorded (R-SVC-1), due after the project's `ticket_due_days`; the
    caller commits. (Minimal: the handover's defects; the after-sales screens build on it.)"""
    from flask_babel import lazy_gettext as _l

    from .audit import audit_context
    from .base import office_today
    from .errors import RuleViolation
    from .permissions import require
    from .projects import Project
    require(by, "ticket.open")
    today = today or office_today()
    title = (title or "").strip()
    if not title:
        raise RuleViolation(_l("Give the ticket a title."), rule="R-SVC-1")
    lead = session.get(Lead, lead_id)
    if lead is None:
        raise RuleViolation(_l("This customer does not exist."), rule="R-SVC-1")
    project_id = session.get(Subscription, subscription_id).project_id if subscription_id else lead.project_id
    due_days = session.scalar(select(Project.ticket_due_days).where(Project.id == project_id)) or 7
    with audit_context(session, actor=by, action="open_ticket"):
        ticket = Ticket(number=_next_ticket_no(session, project_id), project_id=project_id, lead_id=lead_id,
                        subscription_id=subscription_id, unit_id=unit_id, handover_id=handover_id,
                        category=category, source=source, department=department, status="open",
                        title=title[:200], description=description or "", location=(location or "")[:100],
                        opened_on=today, due_on=today + dt.timedelta(days=due_days), opened_by_id=by.id)
        session.add(ticket)
        session.flush()
    return ticket
