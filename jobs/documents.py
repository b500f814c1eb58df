"""Document rendering jobs (queue "documents"). Jobs take document ids, never objects; a job
run twice renders nothing twice (only a queued document is taken, by one conditional UPDATE).

A request's documents go to the queue in parts of at most PART documents, so a large batch is
shared by every worker; each job reports its progress in its meta ({"done", "failed", "total"}).
Giving documents to a job is itself a conditional claim (queued and no job yet → this job), so
two senders — two ladder runs, a sweep and a request — never queue a document twice, and a part
nobody could claim is not sent at all. What a dead job left is recovered by `jobs.recovery`.
"""
from __future__ import annotations

import logging
import uuid

from .claims import pause_for_fault_tests, recover
from .context import app_context
from .queue import enqueue, is_embedded, job_meta

log = logging.getLogger(__name__)

PART = 50           # documents per job
JOB_TIMEOUT = 1800  # seconds a job of PART documents may take (each render is limited too)


class QueueUnavailable(Exception):
    """The job queue (Redis) could not take the work; the documents stay queued."""


def render_document(session, document_id: int, fetcher=None, job_id: str | None = None,
                    before_render=None) -> str:
    """Render one document and store it: queued → running → done (or failed with the error).

    The claim is models.documents.claim_render's conditional UPDATE: the second of two jobs
    holding the same document finds it running or done and leaves it. `job_id` (the rq job
    rendering it) is stored as the claim's owner; `before_render()` is called once it is claimed
    (the fault tests' pause). Returns the document's status after the call ("missing" for an
    unknown id)."""
    import pdf
    from models import Document
    from models.documents import claim_render, document_context, render_done, render_failed, status_of

    document = claim_render(session, document_id, job_id)
    if document is None:
        return status_of(session, document_id)
    if before_render is not None:
        before_render()
        document = session.get(Document, document_id, populate_existing=True)
    try:
        context = document_context(session, document.kind, document.subject_id)
        data = pdf.render(document.kind, context, fetcher=fetcher)
    except Exception as exc:  # the row says why; the job goes on with the next document
        session.rollback()
        return render_failed(session, document_id, exc)
    return render_done(session, document, data, context)


def render_documents(document_ids: list[int]) -> dict:
    """Render the documents `document_ids` one after the other, reporting progress."""
    from rq import get_current_job

    from models import db

    with app_context():
        job = get_current_job()
        mine = job.id if job is not None and not is_embedded() else None
        counts = {"done": 0, "failed": 0, "total": len(document_ids)}
        for document_id in document_ids:
            status = render_document(db.session, int(document_id), job_id=mine, before_render=pause_for_fault_tests)
            if status in ("done", "failed"):
                counts[status] += 1
            if job is not None:  # the embedded thread's jobs report progress too
                job.meta.update(counts)
                job.save_meta()
        return counts


def _send(session, ids: list[int], held_by: str | None = None) -> list[str]:
    """Give the documents `ids` to jobs, PART at a time. Each part is claimed by one UPDATE of
    the rows still queued and held by nobody (or by `held_by`, the sweep's own hold); only what
    was claimed is sent, so nothing goes twice and no job is empty. Raises QueueUnavailable
    when Redis is down, after giving every unsent document back for the next sweep."""
    from sqlalchemy import func, update

    from models import Document, DocumentBatch
    from models.base import utcnow
    job_ids = []
    holder = Document.job_id.is_(None) if held_by is None else Document.job_id == held_by
    for start in range(0, len(ids), PART):
        job_id = uuid.uuid4().hex
        claimed = session.execute(
            update(Document).where(Document.id.in_(ids[start:start + PART]), Document.status == "queued", holder)
            .values(job_id=job_id, sent_at=utcnow()).returning(Document.id, Document.batch_id)
            .execution_options(synchronize_session=False)).all()
        if not claimed:
            continue
        for batch_id in {row.batch_id for row in claimed if row.batch_id is not None}:
            session.execute(update(DocumentBatch).where(DocumentBatch.id == batch_id)
                            .values(job_ids=func.trim(DocumentBatch.job_ids.concat(" " + job_id)))
                            .execution_options(synchronize_session=False))
        session.commit()  # the worker must find the claim (and the rows) when it starts
        part = sorted(row.id for row in claimed)
        try:
            enqueue(render_documents, part, queue="documents", job_id=job_id,
                    job_timeout=JOB_TIMEOUT, result_ttl=86400, failure_ttl=7 * 86400)
        except Exception as exc:  # redis down: keep them queued for the sweep
            log.error("documents %s could not be queued: %s", part, exc)
            session.rollback()
            session.execute(update(Document).where(Document.job_id.in_(list(filter(None, [job_id, held_by]))),
                                                   Document.status == "queued")
                            .values(job_id=None, sent_at=None).execution_options(synchronize_session=False))
            session.commit()
            raise QueueUnavailable(str(exc)) from exc
        job_ids.append(job_id)
    return job_ids


def enqueue_documents(session, documents) -> list[str]:
    """Give `documents` (committed, queued) to the workers in parts; the job ids are stored on
    the documents and their batch. Raises QueueUnavailable when Redis is down: the documents
    stay queued and `enqueue_pending` sends them later."""
    job_ids = _send(session, [document.id for document in documents])
    session.expire_all()
    return job_ids


def enqueue_pending() -> int:
    """Recover what dead jobs left, then send every queued document no job holds: the ladder's
    letters (grouped into a batch per kind), those whose enqueue failed while Redis was down,
    those given back by `jobs.claims.recover`, retried ones. Safe to run any time, and in
    two processes at once: the documents are first held by this sweep with one UPDATE, so two
    sweeps (two ladder runs) never send the same document. Returns how many it sent."""
    from sqlalchemy import select, update

    from models import Document, db
    from models.base import utcnow
    from models.document_queue import group_into_batches

    with app_context():
        session = db.session
        recover(session, Document, JOB_TIMEOUT)
        hold = f"sweep-{uuid.uuid4().hex}"
        held = session.execute(update(Document).where(Document.status == "queued", Document.job_id.is_(None))
                               .values(job_id=hold, sent_at=utcnow()).returning(Document.id)
                               .execution_options(synchronize_session=False)).scalars().all()
        session.commit()
        if not held:
            return 0
        documents = list(session.scalars(select(Document).where(Document.job_id == hold).order_by(Document.id)))
        group_into_batches(session, documents)  # only what this sweep holds: no empty batch
        session.commit()
        by_batch: dict = {}
        for document in documents:
            by_batch.setdefault(document.batch_id, []).append(document.id)
        for ids in by_batch.values():
            _send(session, ids, held_by=hold)
        return len(held)


def progress(job_ids: list[str]) -> dict | None:
    """The summed meta of the jobs {"done", "failed"}, or None if it cannot be read."""
    metas = job_meta(job_ids)
    if metas is None:
        return None
    return {key: sum(int(meta.get(key, 0)) for meta in metas) for key in ("done", "failed")}
