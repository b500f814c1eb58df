"""Large finance exports (queue "exports"): the file is written in constant memory to a temporary
file, then kept in the database in chunks; progress {"done", "total"} is in the job's meta."""
from __future__ import annotations

import tempfile

from .context import app_context
from .queue import enqueue

JOB_TIMEOUT = 3600


def run_export(export_id: int) -> dict:
    """Write export `export_id` as its requester (their row scope); safe to run twice: an export
    already done is left alone, a failed or interrupted one starts again."""
    from rq import get_current_job
    from sqlalchemy import delete, update

    from models import Export, ExportChunk, db
    from models.audit import audit_context, record
    from models.base import utcnow
    from models.exports import audit_export, store_chunks, write_export

    with app_context():
        session = db.session
        claimed = session.execute(update(Export).where(Export.id == export_id, Export.status != "done")
                                  .values(status="running", error="")
                                  .execution_options(synchronize_session=False)).rowcount
        if not claimed:
            session.commit()
            return {"skipped": True}
        record(session, "export", export_id, "export_started", {"status": "running"})
        session.execute(delete(ExportChunk).where(ExportChunk.export_id == export_id))  # a half-done run's
        session.commit()
        export = session.get(Export, export_id, populate_existing=True)
        job = get_current_job()

        def progress(done):
            if job is not None:
                job.meta.update(done=done, total=export.total)
                job.save_meta()

        try:
            with tempfile.TemporaryFile() as handle:
                rows = write_export(session, export.list, export.format, export.filters, export.requested_by,
                                    handle, progress=progress)
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


def enqueue_export(session, export) -> str:
    """Hand `export` (committed) to a worker; in embedded mode it has run when this returns."""
    import uuid
    export.job_id = uuid.uuid4().hex
    session.commit()
    enqueue(run_export, export.id, queue="exports", job_id=export.job_id, job_timeout=JOB_TIMEOUT,
            result_ttl=86400, failure_ttl=7 * 86400)
    return export.job_id
