"""Large finance exports (queue "exports"): the file is written in constant memory to a temporary
file, then kept in the database in chunks; progress {"done", "total"} is in the job's meta.

An export is given to a job and taken by its worker by conditional UPDATEs, like documents: an
export asked for while Redis is down stays queued without a job, and the sweep
(`jobs.recovery.sweep`) sends it when Redis is back; one a dead job left is given back and run
again, at most MAX_ATTEMPTS times, then failed with a reason and a retry button."""
from __future__ import annotations

import logging
import tempfile
import uuid

from .context import app_context
from .queue import enqueue, is_embedded
from .claims import pause_for_fault_tests, recover

log = logging.getLogger(__name__)

JOB_TIMEOUT = 3600


def run_export(export_id: int) -> dict:
    """Write export `export_id` as its requester (their row scope); safe to run twice: only a
    queued export is taken (one conditional UPDATE), so one already done, failed or being
    written by another worker is left alone."""
    from rq import get_current_job
    from sqlalchemy import delete, update

    from models import Export, ExportChunk, db
    from models.audit import audit_context, record
    from models.base import utcnow
    from models.exports import audit_export, store_chunks, write_export

    with app_context():
        session = db.session
        job = get_current_job()
        values = {"status": "running", "error": "", "started_at": utcnow(), "attempts": Export.attempts + 1}
        if job is not None and not is_embedded():
            values["job_id"] = job.id
        claimed = session.execute(update(Export).where(Export.id == export_id, Export.status == "queued")
                                  .values(**values)
                                  .execution_options(synchronize_session=False)).rowcount
        if not claimed:
            session.commit()
            return {"skipped": True}
        record(session, "export", export_id, "export_started", {"status": "running"})
        session.execute(delete(ExportChunk).where(ExportChunk.export_id == export_id))  # a half-done run's
        session.commit()
        export = session.get(Export, export_id, populate_existing=True)

        def progress(done):
            if job is not None:  # the embedded thread's jobs report progress too
                job.meta.update(done=done, total=export.total)
                job.save_meta()

        try:
            pause_for_fault_tests()
            with tempfile.TemporaryFile() as handle:
                rows = write_export(session, export.list, export.format, export.filters, export.requested_by,
                                    handle, progress=progress, locale=export.locale)  # the requester's language
                size = store_chunks(session, export.id, handle)
        except Exception as exc:
            session.rollback()
            export = session.get(Export, export_id, populate_existing=True)
            with audit_context(session, action="export_failed"):
                export.status, export.error, export.finished_at = "failed", f"{type(exc).__name__}: {exc}"[:2000], utcnow()
                session.flush()
            session.commit()
            raise
        with audit_context(session, action="export_done"):
            export.status, export.rows, export.size, export.finished_at = "done", rows, size, utcnow()
            session.flush()
        audit_export(session, export.requested_by, export.list, export.format, export.filters, rows, export.id)
        session.commit()
        progress(rows)
        return {"rows": rows, "size": size}


def _send(session, export_id: int, held_by: str | None = None) -> str | None:
    """Give export `export_id` to a job if it is queued and nobody (or `held_by`) holds it;
    returns the job id (None: someone else sent it). Raises QueueUnavailable when Redis is
    down, after giving it back (queued, no job) for the sweep."""
    from sqlalchemy import update

    from models import Export
    from models.base import utcnow

    from .documents import QueueUnavailable
    job_id = uuid.uuid4().hex
    holder = Export.job_id.is_(None) if held_by is None else Export.job_id == held_by
    claimed = session.execute(update(Export).where(Export.id == export_id, Export.status == "queued", holder)
                              .values(job_id=job_id, sent_at=utcnow())
                              .execution_options(synchronize_session=False)).rowcount
    session.commit()
    if not claimed:
        return None
    try:
        enqueue(run_export, export_id, queue="exports", job_id=job_id, job_timeout=JOB_TIMEOUT,
                result_ttl=86400, failure_ttl=7 * 86400)
    except Exception as exc:
        log.error("export %s could not be queued: %s", export_id, exc)
        session.rollback()
        session.execute(update(Export).where(Export.id == export_id, Export.job_id == job_id,
                                             Export.status == "queued")
                        .values(job_id=None, sent_at=None).execution_options(synchronize_session=False))
        session.commit()
        raise QueueUnavailable(str(exc)) from exc
    return job_id


def enqueue_export(session, export) -> str | None:
    """Hand `export` (committed, queued) to a worker; in embedded mode it has run when this
    returns. Raises QueueUnavailable when Redis is down: it stays queued for the sweep."""
    job_id = _send(session, export.id)
    session.expire_all()
    return job_id


def enqueue_pending_exports() -> int:
    """Recover what dead jobs left, then send every queued export no job holds (asked for
    while Redis was down, given back, retried). Returns how many it sent."""
    from sqlalchemy import select

    from models import Export, db

    with app_context():
        session = db.session
        recover(session, Export, JOB_TIMEOUT)
        sent = 0
        for export_id in session.scalars(select(Export.id).where(Export.status == "queued", Export.job_id.is_(None))
                                         .order_by(Export.id)).all():
            sent += _send(session, export_id) is not None
        return sent
