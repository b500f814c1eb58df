"""Large finance exports (queue "exports"): the job entry points. What an export is and how it
moves between its states (queued, given to a job, running, done, failed) is models/exports.py;
here: sending it to a job, the function rq calls, and the sweep's sending of what waits.
The file is written in constant memory to a temporary file, then kept in the database in
chunks; progress {"done", "total"} is in the job's meta.

An export is given to a job and taken by its worker by conditional UPDATEs, like documents: an
export asked for while Redis is down stays queued without a job, and the sweep
(`jobs.recovery.sweep`) sends it when Redis is back; one a dead job left is given back and run
again, at most MAX_ATTEMPTS times, then failed with a reason and a retry button."""
from __future__ import annotations

import logging
import uuid

from .claims import pause_for_fault_tests, recover
from .context import app_context
from .queue import enqueue, is_embedded

log = logging.getLogger(__name__)

JOB_TIMEOUT = 3600


def run_export(export_id: int) -> dict:
    """The job: write export `export_id` (`models.exports.run_export`: safe to run twice), with
    its progress {"done", "total"} in the job's meta."""
    from rq import get_current_job

    from models import db
    from models.exports import run_export as write

    with app_context():
        job = get_current_job()
        mine = job.id if job is not None and not is_embedded() else None

        def progress(done, total):
            if job is not None:  # the embedded thread's jobs report progress too
                job.meta.update(done=done, total=total)
                job.save_meta()
        return write(db.session, export_id, job_id=mine, progress=progress, before_write=pause_for_fault_tests)


def _send(session, export_id: int, held_by: str | None = None) -> str | None:
    """Give export `export_id` to a job if it is queued and nobody (or `held_by`) holds it;
    returns the job id (None: someone else sent it). Raises QueueUnavailable when Redis is
    down, after giving it back (queued, no job) for the sweep."""
    from models.exports import give_to_job, take_back

    from .documents import QueueUnavailable
    job_id = uuid.uuid4().hex
    if not give_to_job(session, export_id, job_id, held_by):
        return None
    try:
        enqueue(run_export, export_id, queue="exports", job_id=job_id, job_timeout=JOB_TIMEOUT,
                result_ttl=86400, failure_ttl=7 * 86400)
    except Exception as exc:
        log.error("export %s could not be queued: %s", export_id, exc)
        take_back(session, export_id, job_id)
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
    from models import Export, db
    from models.exports import unsent_exports

    with app_context():
        session = db.session
        recover(session, Export, JOB_TIMEOUT)
        sent = 0
        for export_id in unsent_exports(session):
            sent += _send(session, export_id) is not None
        return sent
