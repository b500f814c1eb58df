"""After-sales care (R-SVC-1, R-SVC-2; seed 四.2, 四.3): customers' problems as tickets, routed to
the responsible department, followed with dated notes to closure, the outcome fed back to the
customer; photos attached (stored like documents, type- and size-checked); satisfaction surveys
after signing, after handover and after a ticket closes. A handover's defects are tickets too.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, SmallInteger, String, Text, select, text
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from .base import Base, in_list, utcnow
from .deals import Subscription
from .inventory import Unit
from .projects import Project
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
    project: Mapped["Project"] = relationship()
    unit: Mapped["Unit | None"] = relationship()
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


# ---------------------------------------------------------------------------------------------
# Domain operations (R-SVC-1, R-SVC-2). The caller commits.

import hashlib  # noqa: E402
import io  # noqa: E402
from decimal import ROUND_HALF_UP, Decimal  # noqa: E402

from flask_babel import lazy_gettext as _l  # noqa: E402
from sqlalchemy import and_, func, update  # noqa: E402
from sqlalchemy.exc import IntegrityError  # noqa: E402

from .audit import audit_context, record_many  # noqa: E402
from .base import office_today  # noqa: E402
from .errors import RuleViolation  # noqa: E402
from .labels import choice_label  # noqa: E402
from .notifications import notify  # noqa: E402
from .permissions import can, require, scope_filter, sees_all_rows  # noqa: E402
from .users import users_with_roles  # noqa: E402

# Who works on a department's tickets when nobody is assigned: the roles told of a new or
# re-routed ticket. "sales" is the deal's agent and the manager (`told_of`).
DEPARTMENT_ROLES = {
    "engineering": ("customer_service",),
    "property": ("customer_service",),
    "customer_service": ("customer_service",),
    "finance": ("finance",),
    "legal": ("lawyer",),
    "sales": ("sales_manager",),
}

# A ticket is overdue while the customer has not been told the outcome: open, in progress, and
# also resolved but not closed (the outcome not yet fed back, R-SVC-1) past its due date.
OVERDUE_TICKET = OPEN_TICKET


def _today(today):
    return today or office_today()


def tickets_overdue(today: dt.date | None = None):
    """THE definition of an overdue ticket (R-SVC-1): not closed (open, in progress, or resolved
    with the outcome not yet told to the customer) and past its due date — due today is not late."""
    return and_(Ticket.status.in_(OVERDUE_TICKET), Ticket.due_on < _today(today))


def told_of(session, ticket: Ticket) -> list[int]:
    """Who is told of a ticket opened or routed (R-SVC-1): the assigned person if any; otherwise the
    people of its department (DEPARTMENT_ROLES), and for sales also the deal's (else the
    customer's) agent."""
    if ticket.assigned_to_id is not None:
        return [ticket.assigned_to_id]
    ids = users_with_roles(session, DEPARTMENT_ROLES[ticket.department])
    if ticket.department == "sales":
        agent = None
        if ticket.subscription_id is not None:
            agent = session.scalar(select(Subscription.agent_id).where(Subscription.id == ticket.subscription_id))
        if agent is None:
            agent = session.scalar(select(Lead.owner_id).where(Lead.id == ticket.lead_id))
        if agent is not None and agent not in ids:
            ids.append(agent)
    return ids


def _check_choice(value, choices, message):
    if value not in choices:
        raise RuleViolation(message, rule="R-SVC-1")


def _assignee(session, assigned_to_id):
    if assigned_to_id in (None, "", 0):
        return None
    user = session.get(User, int(assigned_to_id))
    if user is None or not user.active:
        raise RuleViolation(_l("The person to assign is not an active user."), rule="R-SVC-1")
    return user.id


def visible_ticket(session, by, ticket_id: int, lock: bool = False) -> Ticket:
    """The ticket, if `by` may see it (an agent: his customers' and those assigned to him)."""
    query = select(Ticket).where(Ticket.id == int(ticket_id))
    clause = scope_filter(Ticket, by)
    if clause is not None:
        query = query.where(clause)
    if lock:
        query = query.with_for_update()
    ticket = session.scalar(query.execution_options(populate_existing=True))
    if ticket is None or not can(by, "ticket", "list"):
        raise RuleViolation(_l("This ticket does not exist, or is not one you may see."), rule="R-SVC-1")
    return ticket


def open_ticket(session, by, *, lead_id, category, source, department, title, description="",
                location="", subscription_id=None, unit_id=None, handover_id=None, assigned_to_id=None,
                today=None) -> Ticket:
    """Record a customer's problem (R-SVC-1): numbered gap-free per project (SH-<code>-000123), due
    `Project.ticket_due_days` after today; the department's people (or the assigned person) are
    told. The customer must be the deal's when a deal is named, and one `by` may act on."""
    from .leads import works_on
    from .payments import next_number
    require(by, "ticket.open")
    today = _today(today)
    _check_choice(category, TICKET_CATEGORIES, _l("Choose the kind of problem."))
    _check_choice(source, TICKET_SOURCES, _l("Choose how the problem was reported."))
    _check_choice(department, DEPARTMENTS, _l("Choose the responsible department."))
    title = (title or "").strip()
    if not title:
        raise RuleViolation(_l("Give the problem a title."), rule="R-SVC-1")
    lead = session.get(Lead, int(lead_id)) if lead_id else None
    if lead is None or not works_on(by, lead):
        raise RuleViolation(_l("This customer does not exist, or is not one of yours."), rule="R-SVC-1")
    project_id = lead.project_id
    if subscription_id:
        sub = session.get(Subscription, int(subscription_id))
        if sub is None or sub.lead_id != lead.id:
            raise RuleViolation(_l("This deal is not the customer's."), rule="R-SVC-1")
        project_id = sub.project_id
        unit_id = unit_id or sub.unit_id
    if handover_id:
        handover = session.get(SUBJECT_MODELS["handover"], int(handover_id))
        if handover is None or (subscription_id and handover.subscription_id != int(subscription_id)):
            raise RuleViolation(_l("This handover is not of the customer's deal."), rule="R-SVC-1")
        subscription_id = subscription_id or handover.subscription_id
        unit_id = unit_id or handover.unit_id
    assigned = _assignee(session, assigned_to_id)
    from .projects import Project
    due_days = session.scalar(select(Project.ticket_due_days).where(Project.id == project_id)) or 7
    with audit_context(session, actor=by, action="open_ticket"):
        ticket = Ticket(number=next_number(session, TicketCounter, project_id, "SH"), project_id=project_id,
                        lead_id=lead.id, subscription_id=int(subscription_id) if subscription_id else None,
                        unit_id=int(unit_id) if unit_id else None,
                        handover_id=int(handover_id) if handover_id else None, category=category,
                        source=source, department=department, assigned_to_id=assigned, status="open",
                        title=title[:200], description=(description or "").strip(),
                        location=(location or "").strip()[:100], opened_on=today,
                        due_on=today + dt.timedelta(days=due_days), opened_by_id=by.id)
        session.add(ticket)
        session.flush()
    notify(session, [u for u in told_of(session, ticket) if u != by.id], "ticket_opened",
           {"no": ticket.number, "title": ticket.title, "department": department, "due": ticket.due_on},
           f"/admin/ticket/details/?id={ticket.id}")
    return ticket


def _transition(session, by, ticket: Ticket, from_statuses, action: str, **values) -> Ticket:
    """Move the ticket by a conditional UPDATE on the status read: of two people at once one wins,
    the other is told what happened meanwhile. Audited."""
    before = {k: getattr(ticket, k) for k in values}
    read = ticket.status
    if read not in from_statuses:
        raise _already(ticket)
    matched = session.execute(update(Ticket).where(Ticket.id == ticket.id, Ticket.status == read)
                              .values(**values).execution_options(synchronize_session=False)).rowcount
    if matched != 1:
        session.refresh(ticket)
        raise _already(ticket)
    record_many(session, "ticket", action, by, [(ticket.id, {k: (before[k], v) for k, v in values.items()})])
    session.refresh(ticket)
    return ticket


def _already(ticket: Ticket) -> RuleViolation:
    return RuleViolation(_l("This ticket is %(status)s now; nothing was changed.",
                            status=choice_label("ticket", "status", ticket.status)), rule="R-SVC-1")


def _note(session, by, ticket: Ticket, note: str) -> TicketNote:
    row = TicketNote(ticket_id=ticket.id, by_id=by.id, note=note)
    with audit_context(session, actor=by, action="ticket_note"):
        session.add(row)
        session.flush()
    return row


def route_ticket(session, by, ticket_id: int, *, department, assigned_to_id=None, note: str = "") -> Ticket:
    """Send the ticket to the responsible department (and person); they are told (R-SVC-1)."""
    require(by, "ticket.route")
    _check_choice(department, DEPARTMENTS, _l("Choose the responsible department."))
    ticket = visible_ticket(session, by, ticket_id)
    assigned = _assignee(session, assigned_to_id)
    ticket = _transition(session, by, ticket, ("open", "in_progress", "resolved"), "route_ticket",
                         department=department, assigned_to_id=assigned)
    if (note or "").strip():
        _note(session, by, ticket, note.strip())
    notify(session, [u for u in told_of(session, ticket) if u != by.id], "ticket_routed",
           {"no": ticket.number, "title": ticket.title, "department": department, "due": ticket.due_on},
           f"/admin/ticket/details/?id={ticket.id}")
    return ticket


def add_note(session, by, ticket_id: int, note: str) -> TicketNote:
    """A dated note on a ticket one may see (append-only): what was done, said or decided."""
    require(by, "ticket.work")
    note = (note or "").strip()
    if not note:
        raise RuleViolation(_l("Write the note."), rule="R-SVC-1")
    ticket = visible_ticket(session, by, ticket_id)
    if ticket.status == "closed":
        raise RuleViolation(_l("This ticket is closed; reopen it to add to it."), rule="R-SVC-1")
    return _note(session, by, ticket, note)


def start(session, by, ticket_id: int) -> Ticket:
    """Work starts on the ticket (open → in progress)."""
    require(by, "ticket.work")
    ticket = visible_ticket(session, by, ticket_id)
    return _transition(session, by, ticket, ("open",), "start_ticket", status="in_progress")


def resolve_ticket(session, by, ticket_id: int, resolution: str, today=None) -> Ticket:
    """The problem is dealt with: what was done (the customer is still to be told)."""
    require(by, "ticket.work")
    today = _today(today)
    resolution = (resolution or "").strip()
    if not resolution:
        raise RuleViolation(_l("Say how the problem was resolved."), rule="R-SVC-1")
    ticket = visible_ticket(session, by, ticket_id)
    return _transition(session, by, ticket, ("open", "in_progress"), "resolve_ticket", status="resolved",
                       resolution=resolution, resolved_on=today)


def close_ticket(session, by, ticket_id: int, feedback: str, feedback_on: dt.date | None = None,
                 today=None) -> Ticket:
    """Close a resolved ticket once the outcome is told to the customer (R-SVC-1): `feedback` is
    what the customer was told, on `feedback_on` — not before the resolution, not in the future."""
    require(by, "ticket.close")
    today = _today(today)
    feedback = (feedback or "").strip()
    feedback_on = feedback_on or today
    if not feedback:
        raise RuleViolation(_l("Write what the customer was told of the outcome before closing."), rule="R-SVC-1")
    ticket = visible_ticket(session, by, ticket_id)
    if ticket.status != "resolved":
        if ticket.status == "closed":
            raise _already(ticket)
        raise RuleViolation(_l("Only a resolved ticket can be closed: resolve it first."), rule="R-SVC-1")
    if feedback_on > today or (ticket.resolved_on and feedback_on < ticket.resolved_on):
        raise RuleViolation(_l("The date the customer was told must be between the resolution (%(resolved)s) "
                               "and today.", resolved=ticket.resolved_on), rule="R-SVC-1")
    return _transition(session, by, ticket, ("resolved",), "close_ticket", status="closed", feedback=feedback,
                       feedback_on=feedback_on, closed_on=today)


def reopen(session, by, ticket_id: int, note: str, today=None) -> Ticket:
    """The customer is not satisfied: back to in progress, with why (a note)."""
    require(by, "ticket.work")
    note = (note or "").strip()
    if not note:
        raise RuleViolation(_l("Say why the ticket is reopened."), rule="R-SVC-1")
    ticket = visible_ticket(session, by, ticket_id)
    ticket = _transition(session, by, ticket, ("resolved", "closed"), "reopen_ticket", status="in_progress",
                         closed_on=None, feedback="", feedback_on=None, resolved_on=None)
    _note(session, by, ticket, note)
    return ticket


# --- attachments ------------------------------------------------------------------------------
MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"%PDF-", "application/pdf"))


PIL_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG"}
# The last bytes of a whole file: PNG's IEND chunk (with its CRC), JPEG's end-of-image marker.
IMAGE_TAILS = {"image/jpeg": b"\xff\xd9", "image/png": b"IEND\xaeB`\x82"}


def sniff(content: bytes) -> str | None:
    """The type of a file read from its bytes (never its name or the browser's word): a whole
    image — its head, Pillow's reading of every chunk, the format it finds and its end marker as the
    last bytes (nothing hidden after it) — or a PDF, `%PDF-` at its head and `%%EOF` at its tail."""
    kind = next((kind for magic, kind in MAGIC if content.startswith(magic)), None)
    if kind == "application/pdf":
        return kind if content.rstrip(b"\r\n\t \x00").endswith(b"%%EOF") else None
    if kind is None or not content.endswith(IMAGE_TAILS[kind]):
        return None
    from PIL import Image  # Pillow comes with WeasyPrint (requirements/app.txt)
    try:
        with Image.open(io.BytesIO(content)) as image:
            if image.format != PIL_FORMATS[kind]:
                return None
            image.verify()
    except Exception:  # noqa: BLE001 - any failure to read it whole means it is not that image
        return None
    return kind


# The entity of each attachment subject. models.handovers (which opens its defects as tickets,
# so imports this module) registers Handover here at import, as models.loans hooks deals.DEAL_ENDED.
SUBJECT_MODELS: dict = {"ticket": Ticket}


def _subject_model(subject: str):
    return SUBJECT_MODELS.get(subject)


def visible_subject(session, by, subject: str, subject_id: int):
    """The ticket or handover an attachment belongs to, if `by` may see it: the role (its grid's
    list right) and the row scope (an agent: his own customers')."""
    model = _subject_model(subject)
    if model is None or not can(by, subject, "list"):
        return None
    query = select(model).where(model.id == int(subject_id))
    clause = scope_filter(model, by)
    if clause is not None:
        query = query.where(clause)
    return session.scalar(query)


def attach_file(session, by, subject: str, subject_id: int, filename: str, content: bytes,
                today=None) -> Attachment:
    """A photo or scan attached to a ticket or a handover one may see (R-SVC-1, R-AFT-4): its type
    read from its bytes (JPEG, PNG, PDF), at most ATTACHMENT_MAX_BYTES, stored with its sha256."""
    require(by, "ticket.work" if subject == "ticket" else "handover.inspect")
    target = visible_subject(session, by, subject, subject_id)
    if target is None:
        raise RuleViolation(_l("This ticket does not exist, or is not one you may see."), rule="R-SVC-1")
    if subject == "ticket":  # as the row stands now, locked against a close meanwhile
        status = session.scalar(select(Ticket.status).where(Ticket.id == target.id).with_for_update())
        if status == "closed":
            raise RuleViolation(_l("This ticket is closed: reopen it to attach files."), rule="R-SVC-1")
    content = content or b""
    if not content:
        raise RuleViolation(_l("The file is empty."), rule="R-SVC-1")
    if len(content) > ATTACHMENT_MAX_BYTES:
        raise RuleViolation(_l("The file is larger than %(mb)d MB.", mb=ATTACHMENT_MAX_BYTES // (1024 * 1024)),
                            rule="R-SVC-1")
    kind = sniff(content)
    if kind is None:
        raise RuleViolation(_l("Only photos (JPEG, PNG) and PDF scans can be attached."), rule="R-SVC-1")
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()[:200] or "file"
    with audit_context(session, actor=by, action="attach_file"):
        row = Attachment(subject=subject, subject_id=int(subject_id), filename=name, content_type=kind,
                         size=len(content), sha256=hashlib.sha256(content).hexdigest(), content=content,
                         uploaded_by_id=by.id)
        session.add(row)
        session.flush()
    return row


def visible_attachment(session, by, attachment_id: int) -> Attachment | None:
    """The attachment, if `by` may see its ticket or handover (role and row scope)."""
    row = session.get(Attachment, int(attachment_id))
    if row is None or visible_subject(session, by, row.subject, row.subject_id) is None:
        return None
    return row


def attachments_of(session, subject: str, subject_id: int) -> list[Attachment]:
    return list(session.scalars(select(Attachment).where(Attachment.subject == subject,
                                                         Attachment.subject_id == subject_id)
                                .order_by(Attachment.id)))


# --- surveys (R-SVC-2) --------------------------------------------------------------------------
def _score(value, required: bool):
    if value in (None, ""):
        if required:
            raise RuleViolation(_l("Give the overall score, 1 to 5."), rule="R-SVC-2")
        return None
    try:
        score = int(value)
    except (TypeError, ValueError):
        score = 0
    if not 1 <= score <= 5:
        raise RuleViolation(_l("Scores are 1 to 5."), rule="R-SVC-2")
    return score


def _occasion_date(session, sub: Subscription, occasion: str, ticket: Ticket | None) -> dt.date | None:
    """The day of the survey's occasion: the sale contract's signing, the handover, the ticket's closing."""
    from .contracts import Contract
    if occasion == "signing":
        return session.scalar(select(func.max(Contract.signed_on)).where(
            Contract.subscription_id == sub.id, Contract.kind == "sale", Contract.status.not_in(("booked", "rescinded"))))
    if occasion == "handover":
        return sub.handed_over_on
    return ticket.closed_on if ticket is not None else None


def record_survey(session, by, subscription_id, *, occasion, overall, service=None, quality=None, comment="",
                  ticket_id=None, recorded_on=None, today=None) -> Survey:
    """A customer's satisfaction survey (R-SVC-2) after signing (the deal contracted), after the
    handover (the deal handed over) or after a ticket of the deal closed; scores 1–5; one per deal
    and occasion, one per ticket (the unique indexes: a double click records once, the second is
    told). The agent rated is the deal's. An agent records surveys of his own deals. Dated between
    its occasion (the signing, the handover, the ticket's closing) and today."""
    require(by, "survey.record")
    today = _today(today)
    recorded_on = recorded_on or today
    if recorded_on > today:
        raise RuleViolation(_l("The survey cannot be dated in the future."), rule="R-SVC-2")
    sub = session.get(Subscription, int(subscription_id)) if subscription_id else None
    if sub is None or (not sees_all_rows(by) and sub.agent_id != by.id):
        raise RuleViolation(_l("This deal does not exist, or is not one of yours."), rule="R-SVC-2")
    if occasion not in SURVEY_OCCASIONS:
        raise RuleViolation(_l("Choose when the survey was taken."), rule="R-SVC-2")
    if occasion == "signing" and sub.status != "contracted":
        raise RuleViolation(_l("A signing survey needs the contract signed."), rule="R-SVC-2")
    if occasion == "handover" and sub.handed_over_on is None:
        raise RuleViolation(_l("A handover survey needs the unit handed over."), rule="R-SVC-2")
    if occasion == "ticket":
        ticket = session.get(Ticket, int(ticket_id)) if ticket_id else None
        if ticket is None or ticket.subscription_id != sub.id or ticket.status != "closed":
            raise RuleViolation(_l("A ticket survey needs a closed ticket of this deal."), rule="R-SVC-2")
    else:
        ticket_id = None
    occurred = _occasion_date(session, sub, occasion, ticket if occasion == "ticket" else None)
    if occurred is not None and recorded_on < occurred:
        raise RuleViolation(_l("The survey cannot be dated before its occasion (%(day)s).", day=occurred.isoformat()),
                            rule="R-SVC-2")
    scores = dict(overall=_score(overall, True), service=_score(service, False), quality=_score(quality, False))
    survey = Survey(project_id=sub.project_id, subscription_id=sub.id, agent_id=sub.agent_id, occasion=occasion,
                    ticket_id=int(ticket_id) if ticket_id else None, comment=(comment or "").strip(),
                    recorded_on=recorded_on, recorded_by_id=by.id, **scores)
    try:
        with session.begin_nested(), audit_context(session, actor=by, action="record_survey"):
            session.add(survey)
            session.flush()
    except IntegrityError:
        raise RuleViolation(_l("This survey is already recorded; nothing was changed."), rule="R-SVC-2") from None
    return survey


def surveys_due(session, project_id: int | None = None, agent_id: int | None = None) -> list[dict]:
    """THE surveys waiting to be taken (R-SVC-2): signed deals without a signing survey, handed-over
    deals without a handover one, closed tickets (of a deal) without one. Oldest first."""
    def deals(*where):
        q = select(Subscription).where(*where)
        if project_id:
            q = q.where(Subscription.project_id == project_id)
        if agent_id:
            q = q.where(Subscription.agent_id == agent_id)
        return q

    def no_survey(occasion):
        return ~select(Survey.id).where(Survey.subscription_id == Subscription.id, Survey.occasion == occasion,
                                       Survey.ticket_id.is_(None)).exists()

    due = []
    for occasion, where in (("signing", (Subscription.status == "contracted", no_survey("signing"))),
                            ("handover", (Subscription.handed_over_on.is_not(None), no_survey("handover")))):
        for sub in session.scalars(deals(*where).order_by(Subscription.id)):
            due.append({"occasion": occasion, "subscription": sub, "ticket": None})
    tq = (select(Ticket, Subscription).join(Subscription, Subscription.id == Ticket.subscription_id)
          .where(Ticket.status == "closed", ~select(Survey.id).where(Survey.ticket_id == Ticket.id).exists()))
    if project_id:
        tq = tq.where(Subscription.project_id == project_id)
    if agent_id:
        tq = tq.where(Subscription.agent_id == agent_id)
    for ticket, sub in session.execute(tq.order_by(Ticket.id)):
        due.append({"occasion": "ticket", "subscription": sub, "ticket": ticket})
    return due


def _avg(values) -> Decimal | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return (Decimal(sum(values)) / len(values)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


LOW_SCORE = 2  # a comment with an overall score this low or lower is shown to the manager
LOWEST_COMMENTS = 3


def summarise(surveys) -> dict:
    """Count, averages (1 decimal), satisfied % (overall 4–5) and the lowest scores' comments."""
    surveys = list(surveys)
    n = len(surveys)
    satisfied = sum(1 for s in surveys if s.overall >= 4)
    low = sorted((s for s in surveys if s.overall <= LOW_SCORE and s.comment), key=lambda s: (s.overall, s.id))
    return {"count": n, "overall": _avg(s.overall for s in surveys), "service": _avg(s.service for s in surveys),
            "quality": _avg(s.quality for s in surveys),
            "satisfied": (Decimal(100 * satisfied) / n).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP) if n else None,
            "comments": [{"overall": s.overall, "comment": s.comment, "on": s.recorded_on}
                         for s in low[:LOWEST_COMMENTS]]}


def month_bounds(month: dt.date) -> tuple[dt.date, dt.date]:
    first = month.replace(day=1)
    nxt = (first + dt.timedelta(days=32)).replace(day=1)
    return first, nxt


def survey_results(session, month: dt.date | None = None, project_id: int | None = None,
                   since: dt.date | None = None, until: dt.date | None = None) -> dict:
    """Satisfaction per agent and per project (R-SVC-2): {"agents": [...], "projects": [...],
    "total": {...}}; `month` (any day of it) or [since, until) limits the surveys by their date."""
    q = select(Survey)
    if month is not None:
        since, until = month_bounds(month)
    if since is not None:
        q = q.where(Survey.recorded_on >= since)
    if until is not None:
        q = q.where(Survey.recorded_on < until)
    if project_id:
        q = q.where(Survey.project_id == project_id)
    rows = list(session.scalars(q.order_by(Survey.id)))
    from .projects import Project
    names = dict(session.execute(select(User.id, User.display_name)).all()) if rows else {}
    projects = dict(session.execute(select(Project.id, Project.name)).all()) if rows else {}

    def grouped(key, label):
        groups: dict = {}
        for s in rows:
            groups.setdefault(key(s), []).append(s)
        return sorted(({"id": k, "name": label(k), **summarise(v)} for k, v in groups.items()),
                      key=lambda r: str(r["name"]))

    return {"agents": grouped(lambda s: s.agent_id, lambda k: names.get(k, "—")),
            "projects": grouped(lambda s: s.project_id, lambda k: projects.get(k, "—")),
            "total": summarise(rows)}


def ticket_figures(session, month: dt.date, project_id: int | None = None) -> dict:
    """After-sales tickets of a month: opened, closed in it, and overdue at its end (R-SVC-1)."""
    first, nxt = month_bounds(month)
    scope = (Ticket.project_id == project_id,) if project_id else ()

    def count(*where):
        return session.scalar(select(func.count()).select_from(Ticket).where(*scope, *where)) or 0

    end = min(nxt - dt.timedelta(days=1), office_today())
    return {"opened": count(Ticket.opened_on >= first, Ticket.opened_on < nxt),
            "closed": count(Ticket.closed_on >= first, Ticket.closed_on < nxt),
            "overdue": count(tickets_overdue(end))}
