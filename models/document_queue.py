"""Documents as rows (PDF): their kinds and states, batches, and the queue's bookkeeping — a
batch of several, claims given back when a job dies, a failed render retried. What each kind
shows, who may see it and the render itself are models.documents (above the deals, the ladder
and the contracts it reads); the ladder queues its letters here (models.ladder.queue_letters).
"""
from __future__ import annotations

import datetime as dt

from flask_babel import force_locale, lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, String, Text, select, update
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from .base import Base, in_list, office_today, utcnow
from .labels import choice_label
from .users import User

DOCUMENT_KINDS = ("subscription_agreement", "receipt", "payment_reminder", "overdue_warning",
                  "lawyer_letter", "forfeit_notice", "signing_booking", "statement", "board", "addendum",
                  # issue 22: after the contract
                  "true_up_notice", "handover_notice", "handover_record", "survey_summary",
                  # issue 23: the sales floor
                  "commission_statement",
                  # issue 24: opening day
                  "intent_card", "lottery_entrants", "lottery_result")
DOCUMENT_STATUSES = ("queued", "running", "done", "failed")
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


def kind_label(kind: str):
    return choice_label("document", "kind", kind)


def new_batch(session, kind: str, total: int, by) -> DocumentBatch:
    """A batch titled "2026-11-27 × 5", language-neutral: it reads "2026-11-27 律师函 × 5" or
    "2026-11-27 Lawyer's letter × 5" as its reader's language names its kind (`label`); `by`
    None is the system (the ladder)."""
    batch = DocumentBatch(kind=kind, total=total, requested_by_id=by.id if by else None,
                          title=f"{office_today()} × {total}")
    session.add(batch)
    return batch


def group_into_batches(session, documents: list[Document]) -> None:
    """Documents without a batch, by kind: more than one of a kind become a batch."""
    by_kind: dict[str, list[Document]] = {}
    for document in documents:
        if document.batch_id is None:
            by_kind.setdefault(document.kind, []).append(document)
    for kind, docs in by_kind.items():
        if len(docs) > 1:
            batch = new_batch(session, kind, len(docs), None)
            for document in docs:
                document.batch = batch
    session.flush()


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
