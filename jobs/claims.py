"""Recovery of work a dead or failed job left (issue 18, item 9), for documents and exports:
`recover`, which the document and export jobs' sweeps call (`jobs.recovery.sweep` runs them).

Each document or export is claimed by one conditional UPDATE at every step: given to a job
(queued, no job → queued, job J), taken by that job's worker (queued → running), and given back
when J is dead (→ queued without a job, or failed with a readable reason once it has been
started MAX_ATTEMPTS times). J is dead when rq says it failed, stopped, was canceled or finished
without the row, when Redis no longer knows it (after GRACE: the id is stored before the job
reaches Redis), or when the row has been running longer than rq lets a job run. rq's own
StartedJobRegistry cleanup first turns jobs of workers that vanished into failed ones.

The sweep (`jobs.recovery.sweep`, every 5 minutes from jobs/schedule.py) does this, then sends
whatever is queued without a job; it is safe to run at any time, twice, or in two processes at once.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import time

from .queue import DEAD, clean_registries, is_embedded, job_states

log = logging.getLogger(__name__)

GRACE = dt.timedelta(minutes=2)  # a job id stored just before its job reaches Redis is not "lost"


def pause_for_fault_tests() -> None:
    """Fault tests slow jobs down (SALESDESK_TEST_JOB_DELAY seconds between steps) so that a
    worker can be killed mid-work; unset in production, where this does nothing."""
    delay = os.environ.get("SALESDESK_TEST_JOB_DELAY")
    if delay:
        time.sleep(float(delay))


def recover(session, model, job_timeout: int) -> dict:
    """Give back every `model` row (Document or Export) held by a dead job. Returns counts of
    what became {"queued", "failed"}. Commits."""
    from sqlalchemy import select

    from models.base import utcnow
    from models.document_queue import release_claim
    counts = {"queued": 0, "failed": 0}
    now = utcnow()
    stale = now - dt.timedelta(seconds=job_timeout + 120)  # longer than rq lets a job run
    rows = session.execute(select(model.id, model.status, model.job_id, model.sent_at, model.started_at)
                           .where(model.status.in_(("queued", "running")))).all()
    if not rows:
        return counts
    embedded = is_embedded()
    if not embedded:
        try:
            clean_registries()
        except Exception as exc:
            log.warning("rq registries could not be cleaned: %s", exc)
    states = job_states([row.job_id for row in rows])  # embedded: the in-process queue's jobs
    if states is None:
        return counts  # Redis is down: nothing can be sent anyway; the next sweep looks again
    for row in rows:
        state = states.get(row.job_id)
        if row.status == "running" and row.started_at is not None and row.started_at < stale:
            dead = True  # whatever ran it has been stopped by rq's timeout, or died
        elif row.job_id is None:
            dead = False  # queued without a job: sent below
        elif embedded:
            # The thread's job failed or ended without the row (a claim refused by a locked
            # database): dead. A job this process does not know is not: the CLI's own
            # in-process queue may be running it, and what a previous run of the server left
            # is given back by jobs.embedded.resend_unfinished at the thread's start.
            dead = state in DEAD
        else:
            dead = state in DEAD or (state is None and (row.sent_at is None or row.sent_at < now - GRACE))
        if dead:
            became = release_claim(session, model, row.id, row.job_id)
            if became:
                counts[became] += 1
                log.warning("%s %s: its job %s is gone; now %s", model.__tablename__, row.id, row.job_id, became)
    session.commit()
    return counts
