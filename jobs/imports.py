"""Price-list imports (queue "default"): a job reads, checks and applies one uploaded price list,
all rows or none, reporting {"done", "total"} in its meta. Safe to run twice: the import is
claimed with a conditional update, and marked done in the transaction that writes its units."""
from __future__ import annotations

import datetime as dt
import logging
import uuid

from .context import app_context
from .queue import enqueue, get_connection, is_embedded

log = logging.getLogger(__name__)

JOB_TIMEOUT = 600  # a 20,000-row XLSX took 28 s (read, checked, 20,000 units written) on a busy machine
MAX_ERRORS_KEPT = 1000  # a file wrong in every row lists its first problems, then how many more
# A run still "running" this long after it started has lost its worker (rq stopped it at
# JOB_TIMEOUT at the latest); a queued import with no job in Redis for this long was never sent.
STUCK_AFTER = dt.timedelta(seconds=JOB_TIMEOUT + 300)
UNSENT_AFTER = dt.timedelta(minutes=5)


def run_import(import_id: int) -> dict:
    """Read, check and apply import `import_id` as the person who sent it, in their language."""
    from flask_babel import force_locale, gettext
    from rq import get_current_job

    from models import RuleViolation, db
    from models.audit import record
    from models.imports import PriceListImport, claim_import, finish_import
    from models.inventory import PriceListRejected, import_price_list, read_price_list

    with app_context():
        session = db.session
        attempt = claim_import(session, import_id)
        if attempt is None:
            return {"skipped": True}
        row = session.get(PriceListImport, import_id, populate_existing=True)
        by, locale, filename, content = row.requested_by, row.locale, row.filename, row.content
        job = get_current_job()

        def progress(done, total):
            if job is not None:  # the embedded thread's imports report progress too
                job.meta.update(done=done, total=total)
                job.save_meta()

        def fail(**values):
            session.rollback()
            if finish_import(session, import_id, attempt, status="failed", **values):
                record(session, "price_list_import", import_id, "import_failed",
                       {"rows_with_problems": len(values.get("errors", [])), "error": values.get("error", "")},
                       actor=by.id)
            session.commit()

        with force_locale(locale):
            try:
                rows = read_price_list(content, filename)
                del content
                total = len(rows)
                session.execute(PriceListImport.__table__.update()
                                .where(PriceListImport.id == import_id).values(total=total))
                session.commit()
                progress(0, total)
                result = import_price_list(session, by, rows, progress=lambda n: progress(n, total))
                if not finish_import(session, import_id, attempt, status="done", created=result["created"],
                                     updated=result["updated"], errors=[]):
                    session.rollback()  # another run owns it now: nothing of this one is kept
                    return {"skipped": True}
                record(session, "price_list_import", import_id, "import_done", dict(result, rows=total), actor=by.id)
                session.commit()
                progress(total, total)
                return result
            except PriceListRejected as exc:
                errors = exc.rows()
                if len(errors) > MAX_ERRORS_KEPT:
                    more = len(errors) - MAX_ERRORS_KEPT
                    errors = errors[:MAX_ERRORS_KEPT] + [[0, "", gettext(
                        "… and %(n)s more rows with problems.", n=f"{more:,}")]]
                fail(errors=errors)
                return {"rejected": len(exc.errors)}
            except RuleViolation as exc:  # the person may no longer import, for instance
                fail(error=str(exc))
                return {"refused": str(exc)}
            except Exception as exc:
                log.exception("price-list import %s failed", import_id)
                fail(error=gettext("The import stopped on an unexpected error; nothing was imported. "
                                   "Upload the file again, and tell an administrator if it happens "
                                   "again.") + f" ({type(exc).__name__})")
                raise


def enqueue_import(session, row) -> str:
    """Hand import `row` (committed, queued) to a worker; in embedded mode it has run when this
    returns. Raises when Redis cannot be reached (the import stays queued: `recover_imports`)."""
    row.job_id = uuid.uuid4().hex
    session.commit()
    enqueue(run_import, row.id, queue="default", job_id=row.job_id, job_timeout=JOB_TIMEOUT,
            result_ttl=86400, failure_ttl=7 * 86400)
    return row.job_id


def _job_exists(job_id: str | None) -> bool:
    from rq.job import Job
    if not job_id:
        return False
    try:
        Job.fetch(job_id, connection=get_connection())
        return True
    except Exception:
        return False


def recover_imports(now_iso: str | None = None) -> dict:
    """The sweep for imports (every 5 minutes with the other sweeps): a run whose worker died
    (running for longer than STUCK_AFTER) goes back to the queue with its tries left, or fails
    with a reason; a queued import whose job never reached Redis (or was lost) is sent again."""
    from sqlalchemy import select

    from models import db
    from models.base import utcnow
    from models.imports import PriceListImport, requeue_stuck

    with app_context():
        session = db.session
        now = dt.datetime.fromisoformat(now_iso) if now_iso else utcnow()
        again, failed = requeue_stuck(session, now - STUCK_AFTER)
        session.commit()
        if is_embedded():
            # The thread's job failed or ended without taking its import (a claim refused by a
            # locked database). One this process does not know was left by a previous run:
            # resend_unfinished_imports sends it at the thread's start.
            from .queue import DEAD, job_states
            queued = session.execute(select(PriceListImport.id, PriceListImport.job_id).where(
                PriceListImport.status == "queued", PriceListImport.job_id.is_not(None))).all()
            states = job_states([job_id for _, job_id in queued]) or {}
            unsent = [import_id for import_id, job_id in queued
                      if import_id not in again and states.get(job_id) in DEAD]
        else:
            unsent = [import_id for import_id, job_id in session.execute(
                select(PriceListImport.id, PriceListImport.job_id).where(
                    PriceListImport.status == "queued", PriceListImport.created_at < now - UNSENT_AFTER))
                if import_id not in again and not _job_exists(job_id)]
        for import_id in again + unsent:
            enqueue_import(session, session.get(PriceListImport, import_id, populate_existing=True))
        return {"requeued": len(again), "sent": len(unsent), "failed": len(failed)}


def resend_unfinished_imports() -> dict:
    """Embedded mode, at the worker thread's start: the in-process queue died with the previous
    run of the server, so every import it left queued or running is sent again now (a run it
    interrupted counts as a try, as for a dead worker: `requeue_stuck`)."""
    from sqlalchemy import select

    from models import db
    from models.base import utcnow
    from models.imports import PriceListImport, requeue_stuck

    with app_context():
        session = db.session
        again, failed = requeue_stuck(session, utcnow() + dt.timedelta(seconds=1))
        session.commit()
        unsent = [import_id for import_id, job_id in session.execute(
            select(PriceListImport.id, PriceListImport.job_id).where(PriceListImport.status == "queued"))
            if import_id not in again and not _job_exists(job_id)]
        for import_id in again + unsent:
            enqueue_import(session, session.get(PriceListImport, import_id, populate_existing=True))
        return {"requeued": len(again), "sent": len(unsent), "failed": len(failed)}
