"""Price-list imports as background work (issue 18, item 4): the request only stores the file;
a job (`jobs.imports.run_import`) reads, checks and applies it, all rows or none, and the page
shows its progress and then its result — the errors by row and column, in the language of the
person who sent it.

State machine, the same shape as documents and exports:

    queued --claim (conditional UPDATE, attempts + 1)--> running --> done | failed
    running --(the worker died: `requeue_stuck`, attempts < MAX_ATTEMPTS)--> queued
    running --(the worker died MAX_ATTEMPTS times)--> failed, with a reason

The units are written in the same transaction as the row's `done`, and that UPDATE is conditional
on the claim (status running, this attempt): a job run twice, or a re-queued one that overlaps a
slow first run, applies the file once.
"""
from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, CheckConstraint, Index, LargeBinary, String, Text, select, update
from sqlalchemy.orm import Mapped, mapped_column

from .background import RequestedWork
from .base import Base, in_list, utcnow
from .errors import PermissionDenied

IMPORT_STATUSES = ("queued", "running", "done", "failed")
MAX_ATTEMPTS = 3  # runs a worker may die in before the import is marked failed


class PriceListImport(RequestedWork, Base):
    """One uploaded price list: the file, its state, its progress and its result; who sent it and
    when: RequestedWork."""

    __tablename__ = "price_list_import"
    __table_args__ = (
        CheckConstraint(in_list("status", IMPORT_STATUSES), name="status_known"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        Index("ix_price_list_import_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(default=0)
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)  # at most MAX_CONTENT_LENGTH
    locale: Mapped[str] = mapped_column(String(20), default="zh_Hans_CN")  # of the person, for errors
    status: Mapped[str] = mapped_column(String(20), default="queued", server_default="queued")
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    job_id: Mapped[str | None] = mapped_column(String(64))
    total: Mapped[int | None]  # rows in the file, once read
    created: Mapped[int | None]
    updated: Mapped[int | None]
    errors: Mapped[list] = mapped_column(JSON, default=list)  # [[row, column, message], …]
    error: Mapped[str] = mapped_column(Text, default="", server_default="")  # why it failed, if not rows


def visible_to(user):
    """A WHERE clause: the imports `user` may see — their own; an administrator's, all."""
    if "admin" in user.role_names:
        return None
    return PriceListImport.owned_by(user.id)


def visible_imports(session, user, limit: int = 20) -> list[PriceListImport]:
    query = select(PriceListImport).order_by(PriceListImport.id.desc()).limit(limit)
    clause = visible_to(user)
    return list(session.scalars(query if clause is None else query.where(clause)))


def get_visible(session, user, import_id: int) -> PriceListImport | None:
    query = select(PriceListImport).where(PriceListImport.id == import_id)
    clause = visible_to(user)
    return session.scalar(query if clause is None else query.where(clause))


def request_import(session, by, filename: str, content: bytes, key: str | None, locale: str) -> PriceListImport:
    """Keep the uploaded file as a queued import (the caller commits, then enqueues it). The
    form's one-time key is claimed first: the same form sent twice (a double click) gives
    AlreadySubmitted, whose `result` is the first import's id. Only cheap checks run here
    (models.inventory.check_upload): the rows are read by the job."""
    from .audit import audit_context
    from .inventory import check_upload
    from .permissions import can_do
    from .submissions import claim, settle
    if not can_do(by, "unit.import"):
        raise PermissionDenied(_l("Your role does not allow importing price lists."), rule="R-ALL-1")
    submission = claim(session, by, key, "price_import")
    check_upload(content, filename)
    with audit_context(session, actor=by, action="request_import"):
        row = PriceListImport(filename=(filename or "")[:200], size=len(content), content=content,
                              locale=locale, requested_by_id=by.id)
        session.add(row)
        session.flush()
    settle(session, submission.key, str(row.id))
    return row


def claim_import(session, import_id: int) -> int | None:
    """queued → running, once: the attempt number this run owns, or None if another run has it
    (or it is over). Commits."""
    claimed = session.execute(
        update(PriceListImport).where(PriceListImport.id == import_id, PriceListImport.status == "queued")
        .values(status="running", attempts=PriceListImport.attempts + 1, started_at=utcnow(), error="")
        .execution_options(synchronize_session=False)).rowcount
    attempt = session.scalar(select(PriceListImport.attempts).where(PriceListImport.id == import_id)) \
        if claimed else None
    session.commit()
    return attempt


def _owned(import_id: int, attempt: int):
    return (PriceListImport.id == import_id, PriceListImport.status == "running",
            PriceListImport.attempts == attempt)


def finish_import(session, import_id: int, attempt: int, **values) -> bool:
    """running → done or failed, in the caller's transaction, only by the run that claimed it
    (`attempt`); False when that run lost it (the caller then rolls back what it wrote)."""
    values.setdefault("finished_at", utcnow())
    return session.execute(update(PriceListImport).where(*_owned(import_id, attempt)).values(**values)
                           .execution_options(synchronize_session=False)).rowcount == 1


def requeue_stuck(session, older_than: dt.datetime) -> tuple[list[int], list[int]]:
    """Imports whose run started before `older_than` and is still `running` — its worker died or
    was killed (the job's timeout is shorter than that age): back to `queued` while they have
    tries left, else `failed` with a reason. Returns (ids to enqueue again, ids failed); the caller
    commits, then enqueues the first list (jobs.imports.recover_imports)."""
    from flask_babel import force_locale, gettext
    stuck = list(session.execute(select(PriceListImport.id, PriceListImport.attempts, PriceListImport.locale)
                                 .where(PriceListImport.status == "running",
                                        PriceListImport.started_at < older_than)))
    again, failed = [], []
    for import_id, attempts, locale in stuck:
        where = (PriceListImport.id == import_id, PriceListImport.status == "running",
                 PriceListImport.attempts == attempts)
        if attempts < MAX_ATTEMPTS:
            if session.execute(update(PriceListImport).where(*where).values(status="queued", job_id=None)
                               .execution_options(synchronize_session=False)).rowcount:
                again.append(import_id)
        else:
            with force_locale(locale):
                reason = gettext("The import was interrupted %(n)d times and was given up: nothing was "
                                 "imported. Upload the file again.", n=attempts)
            if session.execute(update(PriceListImport).where(*where)
                               .values(status="failed", error=reason, finished_at=utcnow())
                               .execution_options(synchronize_session=False)).rowcount:
                failed.append(import_id)
    return again, failed
