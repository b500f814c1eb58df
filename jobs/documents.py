"""Document rendering jobs (queue "documents"). Jobs take document ids, never objects; a job
run twice renders nothing twice (a document already done is skipped).

A request's documents go to the queue in parts of at most PART documents, so a large batch is
shared by every worker; each job reports its progress in its meta ({"done", "failed", "total"}),
which the document centre shows.
"""
from __future__ import annotations

import datetime as dt
import logging
import uuid

from .context import app_context
from .queue import enqueue, get_connection, is_embedded, job_meta

log = logging.getLogger(__name__)

PART = 50           # documents per job
JOB_TIMEOUT = 1800  # seconds a job of PART documents may take (each render is limited too)
STUCK_AFTER = dt.timedelta(minutes=10)


class QueueUnavailable(Exception):
    """The job queue (Redis) could not take the work; the documents stay queued."""


def render_documents(document_ids: list[int]) -> dict:
    """Render the documents `document_ids` one after the other, reporting progress."""
    from rq import get_current_job

    from models import db
    from models.documents import render_document

    with app_context():
        job = get_current_job()
        counts = {"done": 0, "failed": 0, "total": len(document_ids)}
        for document_id in document_ids:
            status = render_document(db.session, int(document_id))
            counts["failed" if status == "failed" else "done"] += 1
            if job is not None:
                job.meta.update(counts)
                job.save_meta()
        return counts


def enqueue_documents(session, documents) -> list[str]:
    """Give `documents` (committed, queued) to the workers in parts; store the job ids (on the
    documents and their batch) and commit. Raises QueueUnavailable when Redis is down: the
    documents stay queued and `enqueue_pending` sends them later."""
    documents = list(documents)
    job_ids = []
    for start in range(0, len(documents), PART):
        part = documents[start:start + PART]
        job_id = uuid.uuid4().hex
        for document in part:
            document.job_id = job_id
        batch = part[0].batch
        if batch is not None:
            batch.job_ids = " ".join(filter(None, [batch.job_ids, job_id]))
        session.commit()  # the worker must find the job id (and the rows) when it starts
        ids = [document.id for document in part]
        try:
            enqueue(render_documents, ids, queue="documents", job_id=job_id,
                    job_timeout=JOB_TIMEOUT, result_ttl=86400, failure_ttl=7 * 86400)
        except Exception as exc:  # redis down: keep them queued for the sweep
            log.error("documents %s could not be queued: %s", ids, exc)
            for document in documents[start:]:
                document.job_id = None
            session.commit()
            raise QueueUnavailable(str(exc)) from exc
        job_ids.append(job_id)
    return job_ids


def _job_exists(job_id: str) -> bool:
    from rq.job import Job
    try:
        Job.fetch(job_id, connection=get_connection())
        return True
    except Exception:
        return False


def enqueue_pending() -> int:
    """Send queued documents that no worker has to one: those written by the ladder in its own
    transaction (grouped into a batch per kind), and those whose enqueue failed or whose job
    was lost (queued for more than STUCK_AFTER with no job in Redis). Safe to run any time."""
    from models import db
    from models.base import utcnow
    from models.documents import group_into_batches, pending_documents

    with app_context():
        session = db.session
        documents = pending_documents(session)
        stuck = [d for d in pending_documents(session, older_than=utcnow() - STUCK_AFTER)
                 if d.job_id is not None and not is_embedded() and not _job_exists(d.job_id)]
        documents += stuck
        if not documents:
            return 0
        group_into_batches(session, documents)
        session.commit()
        by_batch: dict = {}
        for document in documents:
            by_batch.setdefault(document.batch_id, []).append(document)
        for part in by_batch.values():
            enqueue_documents(session, part)
        return len(documents)


def progress(job_ids: list[str]) -> dict | None:
    """The summed meta of the jobs {"done", "failed"}, or None if it cannot be read."""
    metas = job_meta(job_ids)
    if metas is None:
        return None
    return {key: sum(int(meta.get(key, 0)) for meta in metas) for key in ("done", "failed")}
