"""Rendered documents (PDF): requests, the state of each render, batches, and what each kind
shows. Rendering itself is `pdf.render`; the job that runs it is `jobs.documents`.

Who may see a document is who may see its subject (R-ALL-1, R-PAY-3): the roles that may list
the subject's grid, and for agents only their own customers' rows. The same check guards the
request, the document centre's rows and the download URL.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

from flask_babel import force_locale, lazy_gettext as _l
from sqlalchemy import (CheckConstraint, ForeignKey, Index, LargeBinary, String, Text, insert, literal,
                        or_, select, update)
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from .audit import audit_context
from .base import Base, in_list, office_local, office_today, utcnow
from .errors import RuleViolation
from .identity import DOCUMENT_NAMES_ZH, RESIDENT_ID
from .users import User

DOCUMENT_KINDS = ("subscription_agreement", "receipt", "payment_reminder", "overdue_warning",
                  "lawyer_letter", "forfeit_notice", "signing_booking", "statement", "board")
DOCUMENT_STATUSES = ("queued", "running", "done", "failed")
BATCH_LIMIT = 5000  # rows one request may turn into documents
MAX_ATTEMPTS = 3  # renders a document may start (each interrupted by a dead worker) before it fails


class DocumentBatch(Base):
    """Several documents of one kind requested together, rendered by one job per part, and
    downloaded as one zip. Its progress is its documents' (and the jobs' meta)."""

    __tablename__ = "document_batch"
    __table_args__ = (CheckConstraint(in_list("kind", DOCUMENT_KINDS), name="kind_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(200), default="")
    total: Mapped[int] = mapped_column(default=0)
    job_ids: Mapped[str] = mapped_column(Text, default="")  # space-separated rq job ids
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    requested_by: Mapped[User | None] = relationship()

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        """The batch as the reader reads it, "2026-11-27 Lawyer's letter × 5": its kind in the current
        language (the stored title, written in the office's language, names the same things)."""
        if not self.kind:
            return self.title or f"#{self.id}"
        day = self.title[:10] if self.title[:4].isdigit() else ""
        return f"{day} {kind_label(self.kind)} × {self.total}".strip()


class Document(Base):
    __tablename__ = "document"
    __table_args__ = (
        CheckConstraint(in_list("kind", DOCUMENT_KINDS), name="kind_known"),
        CheckConstraint(in_list("status", DOCUMENT_STATUSES), name="status_known"),
        Index("ix_document_subject", "kind", "subject_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[int]
    title: Mapped[str] = mapped_column(String(200), default="")  # e.g. "RG-XJ-0001 张三"
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"),
                                                 index=True)  # the agent of the subject
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("document_batch.id", ondelete="RESTRICT"),
                                                 index=True)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    file: Mapped[str | None] = mapped_column(String(255))  # the download's file name
    content: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None]
    error: Mapped[str] = mapped_column(Text, default="")
    job_id: Mapped[str | None] = mapped_column(String(64))  # the rq job it was given to (its claim)
    sent_at: Mapped[dt.datetime | None]  # when it was given to that job
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")  # renders started
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="RESTRICT"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]

    requested_by: Mapped[User | None] = relationship(foreign_keys=[requested_by_id])
    batch: Mapped[DocumentBatch | None] = relationship()

    def __str__(self) -> str:
        return self.title or f"#{self.id}"


# --- subjects ----------------------------------------------------------------------------------

def _subjects():
    """kind -> (subject model, the grid whose list right lets a role see it)."""
    from .contracts import Contract
    from .deals import Subscription
    from .ladder import OverdueEvent
    from .payments import Instalment, Payment
    from .inventory import Building
    from .leads import Lead
    return {
        "subscription_agreement": (Subscription, "subscription"),
        "receipt": (Payment, "payment"),
        "payment_reminder": (Instalment, "instalment"),
        "overdue_warning": (OverdueEvent, "overdue_event"),
        "lawyer_letter": (OverdueEvent, "overdue_event"),
        "forfeit_notice": (Subscription, "subscription"),
        "signing_booking": (Contract, "contract"),
        "statement": (Lead, "payment"),  # a customer's payments: whoever may list payments
        "board": (Building, "board"),
    }


def kinds_visible_to(user) -> list[str]:
    from .permissions import can
    return [kind for kind, (_, entity) in _subjects().items() if can(user, entity, "list")]


def _check_kind(kind: str) -> None:
    if kind not in DOCUMENT_KINDS:
        raise RuleViolation(_l("There is no such kind of document."), rule="R-ALL-1")


def visible_subject_ids(session, user, kind: str, subject_ids) -> set[int]:
    """Those of `subject_ids` that `user` may see (role, then row scope)."""
    from .permissions import can, scope_filter
    model, entity = _subjects()[kind]
    if not can(user, entity, "list"):
        return set()
    query = select(model.id).where(model.id.in_(subject_ids))
    clause = scope_filter(model, user)
    if clause is not None:
        query = query.where(clause)
    return set(session.scalars(query))


def may_see(session, user, document: Document) -> bool:
    """May `user` download `document`? Only if they may see its subject now (R-ALL-1)."""
    return document.subject_id in visible_subject_ids(session, user, document.kind, [document.subject_id])


def scope_documents(query, user, model=Document):
    """Rows of the document centre (documents or batches) that `user` may list."""
    from .permissions import sees_all_rows
    query = query.filter(model.kind.in_(kinds_visible_to(user)))
    if not sees_all_rows(user):
        mine = model.requested_by_id == user.id
        query = query.filter(or_(mine, model.owner_id == user.id) if model is Document else mine)
    return query


def refusal(kind: str, subject) -> RuleViolation | None:
    """Why a document of `kind` cannot be made for `subject` (None: it can)."""
    from .deals import LIVE_DEAL
    if kind == "overdue_warning" and subject.level != "warning":
        return RuleViolation(_l("A warning letter is made for a warning of the overdue ladder."), rule="R-PAY-5")
    if kind == "lawyer_letter" and subject.level != "lawyer_letter":
        return RuleViolation(_l("A lawyer's letter is made for the ladder's lawyer's-letter step."), rule="R-PAY-5")
    if kind == "forfeit_notice" and subject.status != "forfeited":
        return RuleViolation(_l("A forfeit notice is made only for a forfeited subscription."), rule="R-PAY-5")
    if kind == "payment_reminder" and subject.status == "paid":
        return RuleViolation(_l("This instalment is paid: there is nothing to remind."), rule="R-PAY-4")
    if kind == "payment_reminder" and subject.subscription.status not in LIVE_DEAL:
        return RuleViolation(_l("This deal is no longer live: there is nothing to remind."), rule="R-PAY-4")
    if kind == "subscription_agreement" and subject.status == "withdrawn":
        return RuleViolation(_l("This subscription was withdrawn."), rule="R-SUB-1")
    return None


def _subscription_of(kind: str, subject):
    """The deal a document's subject belongs to (None for a building or a customer)."""
    if kind in ("board", "statement"):
        return None
    if kind in ("overdue_warning", "lawyer_letter"):
        return subject.instalment.subscription
    if kind in ("receipt", "payment_reminder", "signing_booking"):
        return subject.subscription
    return subject


def _owner_id(kind: str, subject) -> int | None:
    sub = _subscription_of(kind, subject)
    if sub is not None:
        return sub.agent_id
    return subject.owner_id if kind == "statement" else None


def _new_document(kind: str, subject, by) -> Document:
    return Document(kind=kind, subject_id=subject.id, title=describe(kind, subject)[:200],
                    owner_id=_owner_id(kind, subject), requested_by_id=by.id if by else None)


def _new_batch(session, kind: str, total: int, by) -> DocumentBatch:
    """A batch titled "2026-11-27 × 5", language-neutral: it reads "2026-11-27 律师函 × 5" or
    "2026-11-27 Lawyer's letter × 5" as its reader's language names its kind (`label`); `by`
    None is the system (the ladder)."""
    batch = DocumentBatch(kind=kind, total=total, requested_by_id=by.id if by else None,
                          title=f"{office_today()} × {total}")
    session.add(batch)
    return batch


def request_documents(session, by, kind: str, subject_ids) -> tuple[DocumentBatch | None, list[Document]]:
    """Documents of `kind` for the subjects `by` may see; one id is one document, several make
    a batch. Raises RuleViolation if any subject is unknown, not visible or not eligible (then
    nothing is requested). The caller commits, then enqueues (`jobs.documents.enqueue`)."""
    _check_kind(kind)
    try:
        ids = sorted({int(i) for i in subject_ids})
    except (TypeError, ValueError):
        raise RuleViolation(_l("The selection was not understood; nothing was changed."), rule="R-ALL-1") from None
    if not ids:
        raise RuleViolation(_l("Select at least one row."), rule="R-ALL-1")
    if len(ids) > BATCH_LIMIT:
        raise RuleViolation(_l("At most %(n)d documents can be requested at once.", n=BATCH_LIMIT), rule="R-ALL-1")
    if by is None or visible_subject_ids(session, by, kind, ids) != set(ids):
        raise RuleViolation(_l("This document's subject does not exist, or is not one you may see."),
                            rule="R-ALL-1")
    model, _ = _subjects()[kind]
    subjects = session.scalars(select(model).where(model.id.in_(ids)).order_by(model.id)).all()
    for subject in subjects:
        why = refusal(kind, subject)
        if why is not None:
            raise RuleViolation(_l("%(subject)s: %(why)s", subject=describe(kind, subject), why=why.message),
                                rule=why.rule)
    with audit_context(session, actor=by, action="request_document"):
        batch = _new_batch(session, kind, len(subjects), by) if len(subjects) > 1 else None
        documents = [_new_document(kind, subject, by) for subject in subjects]
        for document in documents:
            document.batch = batch
        session.add_all(documents)
        session.flush()
    return batch, documents


def queue_letters(session, kind: str, subject_ids) -> int:
    """The ladder's letters (R-PAY-5): one queued document per new event (or forfeited deal),
    inserted set-based in the ladder's own transaction, with an audit row each;
    `jobs.documents.enqueue_pending` sends them to a worker after the commit."""
    from .audit import record_many
    from .deals import Subscription
    from .ladder import OverdueEvent
    from .payments import Instalment
    ids = list(subject_ids)
    written = 0
    for start in range(0, len(ids), 5000):
        chunk = ids[start:start + 5000]
        if kind == "forfeit_notice":
            source = select(Subscription.id, Subscription.agent_id,
                            Subscription.number.concat(" ").concat(Subscription.customer_name)).where(Subscription.id.in_(chunk))
        else:
            source = (select(OverdueEvent.id, Subscription.agent_id,
                             Subscription.number.concat(" ").concat(Subscription.customer_name))
                      .join(Instalment, Instalment.id == OverdueEvent.instalment_id)
                      .join(Subscription, Subscription.id == Instalment.subscription_id)
                      .where(OverdueEvent.id.in_(chunk)))
        source = source.add_columns(literal(kind), literal("queued"), literal(""),
                                    literal(utcnow(), type_=Document.created_at.type))
        rows = session.execute(insert(Document).from_select(
            ["subject_id", "owner_id", "title", "kind", "status", "error", "created_at"], source)
            .returning(Document.id, Document.subject_id)).all()
        record_many(session, "document", "request_document", None,
                    [(doc_id, {"kind": [None, kind], "subject_id": [None, subject_id]})
                     for doc_id, subject_id in rows])
        written += len(rows)
    return written


def group_into_batches(session, documents: list[Document]) -> None:
    """Documents without a batch, by kind: more than one of a kind become a batch."""
    by_kind: dict[str, list[Document]] = {}
    for document in documents:
        if document.batch_id is None:
            by_kind.setdefault(document.kind, []).append(document)
    for kind, docs in by_kind.items():
        if len(docs) > 1:
            batch = _new_batch(session, kind, len(docs), None)
            for document in docs:
                document.batch = batch
    session.flush()


# --- rendering (called by the job) ---------------------------------------------------------------

def render_document(session, document_id: int, fetcher=None, job_id: str | None = None,
                    before_render=None) -> str:
    """Render one document and store it: queued → running → done (or failed with the error).

    The claim is one conditional UPDATE (only a queued document becomes running), so two jobs
    holding the same document never both render it: the second finds it running or done and
    leaves it. `job_id` (the rq job rendering it) is stored as the claim's owner;
    `before_render()` is called once it is claimed (the fault tests' pause). Returns the
    document's status after the call ("missing" for an unknown id)."""
    import pdf

    from .audit import record
    values = {"status": "running", "started_at": utcnow(), "error": "", "attempts": Document.attempts + 1}
    if job_id is not None:
        values["job_id"] = job_id
    claimed = session.execute(update(Document).where(Document.id == document_id,
                                                      Document.status == "queued")
                              .values(**values)
                              .execution_options(synchronize_session=False)).rowcount
    if claimed:  # a set-based update: its audit row is written by hand
        record(session, "document", document_id, "render_started", {"status": "running"})
    session.commit()
    if not claimed:
        return session.scalar(select(Document.status).where(Document.id == document_id)) or "missing"
    if before_render is not None:
        before_render()
    document = session.get(Document, document_id, populate_existing=True)
    try:
        context = document_context(session, document.kind, document.subject_id)
        data = pdf.render(document.kind, context, fetcher=fetcher)
    except Exception as exc:  # the row says why; the job goes on with the next document
        session.rollback()
        document = session.get(Document, document_id, populate_existing=True)
        with audit_context(session, action="render_failed"):
            document.status = "failed"
            document.error = f"{type(exc).__name__}: {exc}"[:2000]
            document.finished_at = utcnow()
            session.flush()
        session.commit()
        return "failed"
    with audit_context(session, action="render_done"):
        document.content = data
        document.sha256 = hashlib.sha256(data).hexdigest()
        document.size = len(data)
        document.file = context["file_name"]
        document.title = context["title"][:200]
        document.status = "done"
        document.finished_at = utcnow()
        session.flush()
    session.commit()
    return "done"


# --- recovery: work a dead job left ----------------------------------------------------------------

def interrupted_reason(attempts: int) -> str:
    """What the document centre and the export page say about work given up after `attempts`
    interrupted tries (kept in Chinese, as the office reads it)."""
    with force_locale("zh_Hans_CN"):
        return str(_l("Interrupted %(n)d times (the process doing it stopped); no longer retried "
                      "automatically. Press “Retry” to try again.", n=attempts))


def release_claim(session, model, row_id: int, job_id: str | None, max_attempts: int = MAX_ATTEMPTS) -> str | None:
    """A document or export whose job `job_id` died: back to queued (no job) for the sweep to
    send again, or failed with a readable reason once it has been tried `max_attempts` times.
    Conditional on the row still being held by that job, so a late or repeated sweep changes
    nothing. Returns the new status (None: the row had moved on). The caller commits."""
    from .audit import record
    row = session.execute(select(model.status, model.attempts).where(
        model.id == row_id, model.job_id.is_(None) if job_id is None else model.job_id == job_id,
        model.status.in_(("queued", "running")))).first()
    if row is None:
        return None
    give_up = row.status == "running" and row.attempts >= max_attempts
    values = ({"status": "failed", "error": interrupted_reason(row.attempts), "finished_at": utcnow()}
              if give_up else {"status": "queued", "job_id": None, "sent_at": None})
    changed = session.execute(update(model).where(
        model.id == row_id, model.status == row.status,
        model.job_id.is_(None) if job_id is None else model.job_id == job_id)
        .values(**values).execution_options(synchronize_session=False)).rowcount
    if not changed:
        return None
    record(session, model.__tablename__, row_id, "job_lost",
           {"job_id": job_id, "status": values["status"], "attempts": row.attempts})
    return values["status"]


def requeue_failed(session, model, row_id: int, by) -> bool:
    """A failed document or export back to the queue (no job, tries counted afresh), audited:
    the retry button's one conditional UPDATE, so pressing it twice, or on work that is queued,
    running or done, changes nothing. The caller has checked `by` may; the caller commits."""
    from .audit import record
    changed = session.execute(update(model).where(model.id == row_id, model.status == "failed")
                              .values(status="queued", error="", job_id=None, sent_at=None, attempts=0,
                                      finished_at=None)
                              .execution_options(synchronize_session=False)).rowcount
    if changed:  # a set-based update: its audit row is written by hand
        record(session, model.__tablename__, row_id, "retry", {"status": "queued"}, actor=by.id)
    return bool(changed)


def retry_document(session, by, document_id: int) -> Document:
    """The retry button: a failed document the user may list goes back to the queue with its
    tries counted afresh. Idempotent: a document already queued, running or done is left as it
    is. Raises RuleViolation for a document the user may not see. The caller commits, then
    sends it (`jobs.documents.enqueue_documents`)."""
    document = session.get(Document, document_id)
    if document is None or not _listed(session, by, document_id) or not may_see(session, by, document):
        raise RuleViolation(_l("This document's subject does not exist, or is not one you may see."),
                            rule="R-ALL-1")
    requeue_failed(session, Document, document_id, by)
    session.refresh(document)
    return document


def _listed(session, by, document_id: int) -> bool:
    return session.scalar(scope_documents(select(Document.id).where(Document.id == document_id), by)) is not None


# --- what each kind shows ------------------------------------------------------------------------

def kind_label(kind: str):
    from .labels import choice_label
    return choice_label("document", "kind", kind)


def describe(kind: str, subject) -> str:
    """A short label of the subject, for the document centre and file names."""
    if kind == "board":
        return f"{subject.project.name} {subject.name}"
    if kind == "statement":
        return f"{subject.name} {subject.phone}"
    sub = _subscription_of(kind, subject)
    customer = sub.customer_name or sub.lead.name
    if kind in ("overdue_warning", "lawyer_letter"):
        return f"{sub.number} {customer} {subject.due_on}"
    if kind == "receipt":
        return f"{subject.receipt_no or '#' + str(subject.id)} {customer}"
    return f"{sub.number} {customer}"


def _label(entity: str, column: str, value) -> str:
    from .labels import choice_label
    return str(choice_label(entity, column, value))


def _project(project) -> dict:
    return {"name": project.name, "developer": project.developer, "city": project.city,
            "address": project.address, "warning_day": project.warning_day,
            "lawyer_letter_day": project.lawyer_letter_day, "forfeit_day": project.forfeit_day}


def _unit(unit) -> dict:
    return {"building": unit.building.name, "number": unit.number, "floor": unit.floor,
            "layout": unit.layout, "area": unit.area, "list_price": unit.list_price}


def _customer(sub) -> dict:
    return {"name": sub.customer_name or sub.lead.name, "phone": sub.lead.phone,
            "id_number": sub.customer_id_number, "address": sub.customer_address,
            "id_document": DOCUMENT_NAMES_ZH.get(sub.customer_id_type, DOCUMENT_NAMES_ZH[RESIDENT_ID])}


def _lines(session, sub, today: dt.date | None = None) -> list[dict]:
    from .payments import Instalment, days_overdue
    today = today or office_today()
    lines = session.scalars(select(Instalment).where(Instalment.subscription_id == sub.id)
                            .order_by(Instalment.seq)).all()
    return [{"seq": i.seq, "kind": _label("instalment", "kind", i.kind), "due_on": i.due_on,
             "extended_due_on": i.extended_due_on, "amount_due": i.amount_due,
             "amount_paid": i.amount_paid, "balance": i.amount_due - i.amount_paid,
             "status": _label("instalment", "status", i.status),
             "days_overdue": days_overdue(i, today, sub.status)} for i in lines]


def _deal(session, sub) -> dict:
    return {"number": sub.number, "price": sub.price, "deposit": sub.deposit,
            "status": _label("subscription", "status", sub.status),
            "payment_method": _label("subscription", "payment_method", sub.payment_method),
            "subscribed_on": sub.subscribed_on, "deposit_due_on": sub.deposit_due_on,
            "agent": sub.agent.display_name, "unit": _unit(sub.unit), "customer": _customer(sub)}


def _line_context(session, line, today) -> dict:
    due = line.extended_due_on or line.due_on
    return {"kind": _label("instalment", "kind", line.kind), "due_on": due,
            "amount_due": line.amount_due, "amount_paid": line.amount_paid,
            "balance": line.amount_due - line.amount_paid, "days_overdue": max((today - due).days, 0)}


def _subscription_agreement(session, sub) -> dict:
    return {"deal": _deal(session, sub), "lines": _lines(session, sub),
            "checked_by": sub.checked_by.display_name if sub.checked_by else "",
            "checked_on": sub.checked_at.date() if sub.checked_at else None,
            "price_reason": sub.price_reason}


def _receipt(session, payment) -> dict:
    from .payments import Instalment, Payment, PaymentAllocation
    sub = payment.subscription
    allocations = session.execute(
        select(Instalment.kind, Instalment.seq, PaymentAllocation.amount)
        .join(Instalment, Instalment.id == PaymentAllocation.instalment_id)
        .where(PaymentAllocation.payment_id == payment.id).order_by(Instalment.seq)).all()
    reversed_no = session.scalar(select(Payment.receipt_no).where(Payment.id == payment.reverses_id)) \
        if payment.reverses_id else None
    return {"deal": _deal(session, sub), "payment": {
        "receipt_no": payment.receipt_no or "", "amount": payment.amount, "paid_on": payment.paid_on,
        "channel": _label("payment", "channel", payment.channel), "bank_ref": payment.bank_ref or "",
        "recorded_by": payment.recorded_by.display_name, "reason": payment.reason,
        "reverses": reversed_no, "is_reversal": payment.reverses_id is not None},
        "allocations": [{"kind": _label("instalment", "kind", a.kind), "seq": a.seq, "amount": a.amount}
                        for a in allocations]}


def _payment_reminder(session, line) -> dict:
    today = office_today()
    return {"deal": _deal(session, line.subscription), "line": _line_context(session, line, today),
            "today": today}


def _overdue_letter(session, event) -> dict:
    line = event.instalment
    sub = line.subscription
    project = sub.project
    context = {"deal": _deal(session, sub), "line": _line_context(session, line, event.on),
               "event": {"on": event.on, "due_on": event.due_on, "cause": event.cause,
                         "days": (event.on - event.due_on).days},
               "lawyer_letter_on": event.due_on + dt.timedelta(days=project.lawyer_letter_day),
               "forfeit_on": event.due_on + dt.timedelta(days=project.forfeit_day)}
    if event.cause == "signing":
        from .payments import signing_gate
        required, paid = signing_gate(session, sub)
        context["signing"] = {"required": required, "paid": paid}
    return context


def _forfeit_notice(session, sub) -> dict:
    from .ladder import OverdueEvent
    event = session.scalar(select(OverdueEvent).join(OverdueEvent.instalment)
                           .where(OverdueEvent.level == "forfeit",
                                  OverdueEvent.instalment.has(subscription_id=sub.id))
                           .order_by(OverdueEvent.id.desc()).limit(1))
    lines = _lines(session, sub)
    return {"deal": _deal(session, sub), "lines": lines,
            "paid": sum((line["amount_paid"] for line in lines), Decimal("0")),
            "forfeited_on": event.on if event else (sub.forfeited_at.date() if sub.forfeited_at else None),
            "cause": event.cause if event else "payment",
            "line": _line_context(session, event.instalment, event.on) if event else None}


def _signing_booking(session, contract) -> dict:
    from .payments import signing_gate
    sub = contract.subscription
    required, paid = signing_gate(session, sub)
    at = office_local(contract.appointment_at)  # the office's wall clock, as the customer reads it
    return {"deal": _deal(session, sub), "contract": {
        "kind": _label("contract", "kind", contract.kind), "appointment_at": at,
        "booked_on": contract.booked_on, "signing_due_on": contract.signing_due_on,
        "lawyer": contract.lawyer.display_name if contract.lawyer else "",
        "status": _label("contract", "status", contract.status)},
        "checklist": [line.strip() for line in (contract.checklist or "").splitlines() if line.strip()],
        "required": required, "paid": paid}


def _statement(session, lead) -> dict:
    from .deals import LIVE_DEAL, Subscription
    from .payments import Payment, Voucher
    deals = []
    for sub in session.scalars(select(Subscription).where(Subscription.lead_id == lead.id)
                               .order_by(Subscription.id)).all():
        payments = session.scalars(select(Payment).where(Payment.subscription_id == sub.id)
                                   .order_by(Payment.paid_on, Payment.id)).all()
        lines = _lines(session, sub)
        vouchers = session.scalars(select(Voucher).where(Voucher.subscription_id == sub.id)
                                   .order_by(Voucher.id)).all()
        live = sub.status in LIVE_DEAL
        due = sum((line["amount_due"] for line in lines), Decimal("0"))
        paid = sum((line["amount_paid"] for line in lines), Decimal("0"))
        deals.append({**_deal(session, sub), "lines": lines, "live": live, "payments": [
            {"receipt_no": p.receipt_no or "", "paid_on": p.paid_on, "amount": p.amount,
             "channel": _label("payment", "channel", p.channel), "reversal": p.reverses_id is not None,
             "reason": p.reason} for p in payments],
            "vouchers": [{"number": v.number, "kind": _label("voucher", "kind", v.kind), "issued_on": v.issued_on,
                          "amount": v.amount, "reason": v.reason} for v in vouchers],
            "due": due, "paid": paid,
            # Money owed now (models.payments.overdue_on's definition): nothing on a deal that is over.
            "owed": due - paid if live else Decimal("0"),
            "overdue": sum((line["balance"] for line in lines if line["days_overdue"]), Decimal("0"))})
    return {"customer": {"name": lead.name, "phone": lead.phone}, "deals": deals,
            "agent": lead.owner.display_name if lead.owner else ""}


def _board(session, building) -> dict:
    from .inventory import Unit
    units = session.scalars(select(Unit).where(Unit.building_id == building.id)
                            .order_by(Unit.floor.desc(), Unit.position)).all()
    floors: dict[int, list] = {}
    positions = sorted({u.position for u in units})
    for unit in units:
        floors.setdefault(unit.floor, {})[unit.position] = {
            "number": unit.number, "status": unit.status, "layout": unit.layout, "area": unit.area,
            "price": unit.list_price}
    counts = {status: sum(1 for u in units if u.status == status)
              for status in ("available", "held", "subscribed", "signed", "withheld")}
    from .board import sell_through_rate, sold_and_saleable
    _, for_sale, sold = sold_and_saleable(session, building.project_id).get(building.id, (0, 0, 0))
    return {"building": {"name": building.name, "floors": building.floors},
            "rows": [(floor, [floors[floor].get(p) for p in positions]) for floor in sorted(floors, reverse=True)],
            "positions": positions, "counts": counts, "total": len(units),
            "sold": sold, "saleable": for_sale, "sell_through": sell_through_rate(sold, for_sale),
            "status_labels": {s: _label("unit", "status", s) for s in counts}}


_BUILDERS = {"subscription_agreement": _subscription_agreement, "receipt": _receipt,
             "payment_reminder": _payment_reminder, "overdue_warning": _overdue_letter,
             "lawyer_letter": _overdue_letter, "forfeit_notice": _forfeit_notice,
             "signing_booking": _signing_booking, "statement": _statement, "board": _board}


def _project_of(kind: str, subject):
    return (_subscription_of(kind, subject) or subject).project


def document_context(session, kind: str, subject_id: int) -> dict:
    """Everything document `kind` of subject `subject_id` shows, as plain values, in Chinese.
    Raises RuleViolation when the subject is gone or not eligible."""
    _check_kind(kind)
    model, _ = _subjects()[kind]
    subject = session.get(model, subject_id)
    if subject is None:
        raise RuleViolation(_l("This document's subject does not exist, or is not one you may see."))
    why = refusal(kind, subject)
    if why is not None:
        raise why
    with force_locale("zh_Hans_CN"):
        title = describe(kind, subject)
        label = str(kind_label(kind))
        context = _BUILDERS[kind](session, subject)
    safe = "_".join("".join(ch for ch in word if ch.isalnum() or ch == "-") for word in title.split())[:80]
    return {**context, "project": _project(_project_of(kind, subject)), "title": title,
            "kind_label": label, "issued_on": office_today(), "file_name": f"{label}-{safe}.pdf"}
