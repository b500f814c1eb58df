"""Rendered documents (PDF): who may see them, requests, the states of a render, and the context
each kind shows (its builders are models.document_contexts; the rows, batches and the queue's
bookkeeping are models.document_queue, below the ladder, which queues its letters there). Above
the deals, payments, the ladder and the contracts whose rows are its subjects. Rendering itself
is `pdf.render`; the job that runs it is `jobs.documents`.

Who may see a document is who may see its subject (R-ALL-1, R-PAY-3): the roles that may list
the subject's grid, and for agents only their own customers' rows. The same check guards the
request, the document centre's rows and the download URL.
"""
from __future__ import annotations

import datetime as dt
import hashlib

from flask_babel import force_locale, lazy_gettext as _l
from sqlalchemy import or_, select, update
from sqlalchemy.orm import object_session

from .audit import audit_context, record
from .base import office_today, utcnow
from .changes import ChangeRequest
from .contracts import Contract
from .deals import LIVE_DEAL, Subscription
from .document_contexts import BUILDERS, project_context
from .document_queue import DOCUMENT_KINDS, Document, DocumentBatch, kind_label, new_batch, requeue_failed
from .errors import RuleViolation
from .handovers import Handover, handover_refusal
from .inventory import Building
from .ladder import OverdueEvent
from .launches import Launch, LaunchEntry  # issue 24: the lottery's documents, the intent card
from .leads import Lead
from .payments import Instalment, Payment
from .projects import Project
from .permissions import can, scope_filter, sees_all_rows
from .true_ups import TrueUp

BATCH_LIMIT = 5000  # rows one request may turn into documents


# --- subjects ----------------------------------------------------------------------------------

def _subjects():
    """kind -> (subject model, the grid whose list right lets a role see it)."""
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
        # R-CHG-3: an approved change's addendum, seen by whoever may see the deal's changes
        "addendum": (ChangeRequest, "change_request"),
        # R-AFT-4: the handover's notice and record, seen by whoever may see the handovers
        "handover_notice": (Handover, "handover"),
        "handover_record": (Handover, "handover"),
        # R-SVC-2: a project's satisfaction summary, seen by whoever may export the surveys
        # (manager, vice-president, customer service, admin: not the agents rated in it)
        "survey_summary": (Project, "survey"),
        # R-AFT-3: a deal's area true-up, seen as the deal is (agents their own)
        "true_up_notice": (TrueUp, "subscription"),
        # R-COM-2: a monthly commission statement, seen as the statements' grid is (agents and
        # channels their own, by its owned_by)
        "commission_statement": (_commission_statement(), "commission_statement"),
        # R-LCH-1: a buyer's intent registration card, seen as the registrations' grid is (agents their own)
        "intent_card": (LaunchEntry, "launch_entry"),
        # issue 24, R-LCH-2: the lottery's published list and its result, seen by whoever may list launches
        "lottery_entrants": (Launch, "launch"),
        "lottery_result": (Launch, "launch"),
    }


def _commission_statement():
    from .commissions import CommissionStatement
    return CommissionStatement


# The right on a kind's grid that lets a role see its documents, where it is not "list".
_SEEN_BY_VERB = {"survey_summary": "export"}


def _sees_kind(user, kind: str) -> bool:
    _, entity = _subjects()[kind]
    return can(user, entity, _SEEN_BY_VERB.get(kind, "list"))


def kinds_visible_to(user) -> list[str]:
    return [kind for kind in _subjects() if _sees_kind(user, kind)]


def _check_kind(kind: str) -> None:
    if kind not in DOCUMENT_KINDS:
        raise RuleViolation(_l("There is no such kind of document."), rule="R-ALL-1")


def visible_subject_ids(session, user, kind: str, subject_ids) -> set[int]:
    """Those of `subject_ids` that `user` may see (role, then row scope)."""
    model, _ = _subjects()[kind]
    if not _sees_kind(user, kind):
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
    query = query.filter(model.kind.in_(kinds_visible_to(user)))
    if not sees_all_rows(user):
        mine = model.requested_by_id == user.id
        query = query.filter(or_(mine, model.owner_id == user.id) if model is Document else mine)
    return query


def refusal(kind: str, subject) -> RuleViolation | None:
    """Why a document of `kind` cannot be made for `subject` (None: it can)."""
    if kind == "overdue_warning" and subject.level != "warning":
        return RuleViolation(_l("A warning letter is made for a warning of the overdue ladder."), rule="R-PAY-5")
    if kind == "lawyer_letter" and subject.level != "lawyer_letter":
        return RuleViolation(_l("A lawyer's letter is made for the ladder's lawyer's-letter step."), rule="R-PAY-5")
    if kind == "forfeit_notice" and subject.status != "forfeited":
        return RuleViolation(_l("A forfeit notice is made only for a forfeited subscription."), rule="R-PAY-5")
    if kind == "payment_reminder" and subject.status == "replaced":
        return RuleViolation(_l("A change replaced this line of the plan: remind the line of the plan in force."),
                             rule="R-CHG-2")
    if kind == "payment_reminder" and subject.status == "paid":
        return RuleViolation(_l("This instalment is paid: there is nothing to remind."), rule="R-PAY-4")
    if kind == "payment_reminder" and subject.subscription.status not in LIVE_DEAL:
        return RuleViolation(_l("This deal is no longer live: there is nothing to remind."), rule="R-PAY-4")
    if kind == "subscription_agreement" and subject.status == "withdrawn":
        return RuleViolation(_l("This subscription was withdrawn."), rule="R-SUB-1")
    if kind == "handover_notice" and subject.status == "cancelled":
        return RuleViolation(_l("This handover was cancelled."), rule="R-AFT-4")
    if kind == "handover_notice" and subject.status != "handed_over":
        # The notice says the money is all settled: re-checked when it is made (a payment reversed,
        # a late fee or a true-up billed since the notice was sent) — the refusal says what is owed.
        why = handover_refusal(object_session(subject), subject.subscription)
        if why is not None:
            return why
    if kind == "handover_record" and subject.status != "handed_over":
        return RuleViolation(_l("A handover record is made once the keys are handed over."), rule="R-AFT-4")
    if kind == "true_up_notice" and subject.status == "void":
        return RuleViolation(_l("This true-up is void: its deal ended before it was applied."), rule="R-AFT-3")
    if kind == "intent_card" and subject.status in ("expired", "withdrawn"):
        return RuleViolation(_l("This registration expired or was withdrawn: it has no card."), rule="R-LCH-1")
    if kind == "addendum" and subject.status != "approved":
        return RuleViolation(_l("An addendum is made only for an approved change."), rule="R-CHG-1")
    # issue 24: the lottery's documents
    if kind == "lottery_entrants" and subject.status == "registration":
        return RuleViolation(_l("The entrants of this launch are not published yet."), rule="R-LCH-2")
    if kind == "lottery_result" and subject.status not in ("drawn", "selecting", "closed"):
        return RuleViolation(_l("This launch is not drawn yet."), rule="R-LCH-2")
    return None


def _subscription_of(kind: str, subject):
    """The deal a document's subject belongs to (None for a building or a customer)."""
    if kind in ("board", "statement", "survey_summary", "commission_statement", "intent_card",
                "lottery_entrants", "lottery_result"):  # issue 24: the lottery's, of a launch; the card, of a registration
        return None
    if kind in ("overdue_warning", "lawyer_letter"):
        return subject.instalment.subscription
    if kind in ("receipt", "payment_reminder", "signing_booking", "addendum", "handover_notice", "handover_record",
                "true_up_notice"):
        return subject.subscription
    return subject


def _owner_id(kind: str, subject) -> int | None:
    sub = _subscription_of(kind, subject)
    if sub is not None:
        return sub.agent_id
    if kind == "commission_statement":
        return subject.payee_user_id
    if kind == "intent_card":
        return subject.agent_id
    return subject.owner_id if kind == "statement" else None


def _new_document(kind: str, subject, by) -> Document:
    return Document(kind=kind, subject_id=subject.id, title=describe(kind, subject)[:200],
                    owner_id=_owner_id(kind, subject), requested_by_id=by.id if by else None)


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
        batch = new_batch(session, kind, len(subjects), by) if len(subjects) > 1 else None
        documents = [_new_document(kind, subject, by) for subject in subjects]
        for document in documents:
            document.batch = batch
        session.add_all(documents)
        session.flush()
    return batch, documents


def request_addendum(session, by, change: ChangeRequest) -> Document:
    """The addendum (补充协议, R-CHG-3) of the approved change `change`, requested in the
    caller's transaction: models.change_requests.decide_change calls it after the last approval
    (`by` the approver); the caller commits, then sends it (`jobs.documents.enqueue_documents`;
    left unsent, the 5-minute sweep sends it). Once per change: a second call returns the
    addendum already requested. Raises RuleViolation when `by` may not see the deal (role, then
    row scope) or the change is not approved."""
    session.flush()  # a status set on the object or by an UPDATE: read the row as it stands
    session.refresh(change, ["status"])
    made = session.scalar(select(Document).where(Document.kind == "addendum", Document.subject_id == change.id,
                                                 Document.status != "failed").order_by(Document.id).limit(1))
    if made is not None and may_see(session, by, made):
        return made
    _, documents = request_documents(session, by, "addendum", [change.id])
    return documents[0]


# --- rendering (called by the job) ---------------------------------------------------------------

def claim_render(session, document_id: int, job_id: str | None = None) -> Document | None:
    """Take a queued document for rendering: queued → running, by one conditional UPDATE (so two
    jobs holding the same document never both render it), committed. `job_id` (the rq job
    rendering it) is stored as the claim's owner. Returns the document, or None when it was not
    queued (another job has it, it is done, or it does not exist)."""
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
    return session.get(Document, document_id, populate_existing=True) if claimed else None


def status_of(session, document_id: int) -> str:
    """A document's status ("missing" for an unknown id)."""
    return session.scalar(select(Document.status).where(Document.id == document_id)) or "missing"


def render_failed(session, document_id: int, exc: Exception) -> str:
    """running → failed, the row saying why (after the session was rolled back); committed."""
    document = session.get(Document, document_id, populate_existing=True)
    with audit_context(session, action="render_failed"):
        document.status = "failed"
        document.error = f"{type(exc).__name__}: {exc}"[:2000]
        document.finished_at = utcnow()
        session.flush()
    session.commit()
    return "failed"


def render_done(session, document: Document, data: bytes, context: dict) -> str:
    """running → done with the rendered file, its digest, size, name and title; committed."""
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


# --- retrying a failed render -------------------------------------------------------------------

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


# --- what each kind shows (the builders: models.document_contexts) --------------------------------

def describe(kind: str, subject) -> str:
    """A short label of the subject, for the document centre and file names."""
    if kind == "board":
        return f"{subject.project.name} {subject.name}"
    if kind == "statement":
        return f"{subject.name} {subject.phone}"
    if kind == "survey_summary":
        return f"{subject.name}"
    if kind in ("lottery_entrants", "lottery_result"):  # issue 24: the lottery's, of a launch
        return f"{subject.project.name} {subject.name}"
    if kind == "commission_statement":
        from .commission_statements import payee_name
        return f"{subject.project.name} {subject.month.strftime('%Y-%m')} {payee_name(object_session(subject), subject)}"
    if kind == "intent_card":
        return f"{subject.number} {subject.name}"
    sub = _subscription_of(kind, subject)
    customer = sub.customer_name or sub.lead.name
    if kind in ("overdue_warning", "lawyer_letter"):
        return f"{sub.number} {customer} {subject.due_on}"
    if kind == "receipt":
        return f"{subject.receipt_no or '#' + str(subject.id)} {customer}"
    if kind == "addendum":
        return f"{sub.number} {subject} {customer}"
    return f"{sub.number} {customer}"


def _project_of(kind: str, subject):
    if kind == "survey_summary":
        return subject
    if kind == "commission_statement":
        return subject.project
    if kind == "intent_card":
        return subject.launch.project
    return (_subscription_of(kind, subject) or subject).project


def document_context(session, kind: str, subject_id: int, today: dt.date | None = None) -> dict:
    """Everything document `kind` of subject `subject_id` shows, as plain values, in Chinese, as
    of `today` (the office's, by default). Raises RuleViolation when the subject is gone or not
    eligible."""
    today = today or office_today()
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
        context = BUILDERS[kind](session, subject, today)
    safe = "_".join("".join(ch for ch in word if ch.isalnum() or ch == "-") for word in title.split())[:80]
    return {**context, "project": project_context(_project_of(kind, subject)), "title": title,
            "kind_label": label, "issued_on": today, "file_name": f"{label}-{safe}.pdf"}
