"""Embedded mode's worker: one background thread of the web process, never a request.

Production runs `rq worker` processes and `rq cron jobs/schedule.py`. Embedded mode (no Redis)
has neither: this thread does their work in the web process itself. It

- runs the daily jobs when they are due: an opening day's selection every 15 s (R-LCH-3), expired
  holds and documents still waiting for a worker every 5 minutes, the overdue ladder and the
  public pool once per office day (each job is idempotent and catches up a missed day);
- executes the jobs requests enqueue (documents, exports) on the in-process queue (RQ on
  fakeredis, jobs/queue.py), one at a time, with their progress in the job's meta as a worker's;
- at its start, sends again what a previous run of the process left queued or half done
  (the in-process queue died with it; the jobs are idempotent).

A request only makes sure the thread runs (`wake`): it never does the work, so the first request
of the day returns at once while the ladder renders its letters behind it. The thread is a
daemon: stopping the server stops it mid-job, and the next start does that work again.

One per process (`_guard`, keyed by process id): `flask run`'s reloader parent serves no
request and starts none; a process forked after starting one (gunicorn --preload) starts its
own at its first request. Run embedded mode as one process (threads are fine): each process
has its own queue.

Tests (TESTING) keep RQ's synchronous mode, jobs done when enqueue returns, unless they set
EMBEDDED_WORKER=True to exercise this thread.
"""
from __future__ import annotations

import logging
import os
import threading
import time

log = logging.getLogger(__name__)

HOLDS_EVERY = 300    # seconds between releases of expired holds
SELECTIONS_EVERY = 15  # seconds between runs of an opening day's selection (R-LCH-3), as the scheduler's
PENDING_EVERY = 300  # seconds between sends of documents still waiting for a worker
RETRY_AFTER = 300    # seconds before daily jobs that failed are tried again
POLL = 1.0           # seconds the thread sleeps when it has nothing to do (a wake ends it early)

_guard = threading.Lock()
_worker: "EmbeddedWorker | None" = None


def enabled(app) -> bool:
    """Does `app` run its jobs in the embedded thread? Embedded mode, daily jobs not switched off,
    and not a test unless the test asks for the thread (EMBEDDED_WORKER=True)."""
    config = app.config
    if config.get("REDIS_URL") or not config.get("RUN_DAILY_JOBS", True):
        return False
    return bool(config.get("EMBEDDED_WORKER", not config.get("TESTING")))


def current(app=None) -> "EmbeddedWorker | None":
    """This process's running worker thread (for `app`, if given), or None."""
    worker = _worker
    if worker is None or worker.pid != os.getpid() or not worker.is_alive():
        return None
    if app is not None and worker.app is not app:
        return None
    return worker


def ensure_started(app) -> "EmbeddedWorker":
    """Start this process's worker thread for `app` unless it runs already."""
    global _worker
    with _guard:
        worker = current()
        if worker is not None and worker.app is app:
            return worker
        if worker is not None:  # another app of this process (tests): one thread per process
            worker.stop()
        _worker = EmbeddedWorker(app)
        _worker.start()
        return _worker


def wake(app) -> None:
    """Tell the thread there is work (a job enqueued, a request arrived); start it if needed."""
    ensure_started(app).wake.set()


def stop(timeout: float = 10.0) -> None:
    """Stop this process's thread after its current job (tests; the server just exits)."""
    global _worker
    with _guard:
        worker, _worker = _worker, None
    if worker is not None and worker.pid == os.getpid():
        worker.stop(timeout)


class EmbeddedWorker(threading.Thread):
    def __init__(self, app):
        super().__init__(name="salesdesk-embedded-worker", daemon=True)
        self.app = app
        self.pid = os.getpid()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.due = {"day": None, "day_tried": None, "holds": None, "pending": None, "selections": None}
        self.recovered = False
        self.jobs_run = 0
        self.jobs_failed = 0
        self.errors = 0

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        self.wake.set()
        if threading.current_thread() is not self:
            self.join(timeout)

    def run(self) -> None:
        log.info("embedded worker thread started (pid %s)", self.pid)
        while not self.stopping.is_set():
            self.wake.clear()  # a wake from now on is seen by the wait below
            try:
                worked = self.run_due_jobs()
                worked = self.run_queued_jobs() or worked
            except Exception:  # never let the thread die: log, wait, try again
                self.errors += 1
                log.exception("embedded worker: unexpected error")
                worked = False
            if not worked and not self.stopping.is_set():
                self.wake.wait(POLL)

    # --- the daily jobs -----------------------------------------------------------------------

    def _step(self, name: str, func, *args) -> bool:
        """Run one job function in its own app context; a failure is logged, not raised."""
        try:
            with self.app.app_context():
                result = func(*args)
            log.info("embedded worker: %s → %s", name, result)
            return True
        except Exception:
            self.errors += 1
            log.exception("embedded worker: %s failed (tried again when next due)", name)
            return False

    def run_due_jobs(self) -> bool:
        from models.base import office_today

        from .imports import recover_imports
        from .inventory import release_expired_holds
        from .ladder import run_ladder
        from .leads import pool_stale_leads
        from .recovery import sweep
        worked = False
        if not self.recovered:
            self._step("resend unfinished work", resend_unfinished)  # once per start
            self.recovered = True
            worked = True
        now = time.monotonic()
        if self.due["holds"] is None or now - self.due["holds"] >= HOLDS_EVERY:
            self._step("release expired holds", release_expired_holds)
            self.due["holds"] = now
            worked = True
        if self.due["selections"] is None or now - self.due["selections"] >= SELECTIONS_EVERY:
            self.due["selections"] = now
            self.advance_selections()
        with self.app.app_context():
            today = office_today()
        if self.due["day"] != today and (self.due["day_tried"] is None
                                         or now - self.due["day_tried"] >= RETRY_AFTER):
            self.due["day_tried"] = now
            ladder = self._step("overdue ladder", run_ladder, today.isoformat())
            pool = self._step("pool stale leads", pool_stale_leads, today.isoformat())
            if ladder and pool:
                self.due["day"] = today
            worked = True
        if self.due["pending"] is None or now - self.due["pending"] >= PENDING_EVERY:
            self._step("send pending documents and exports", sweep)
            self._step("recover imports", recover_imports)
            self.due["pending"] = now
            worked = True
        return worked

    def advance_selections(self) -> None:
        """Every launch in selection moved on (jobs.selection); logged only when it did something
        (it runs every 15 s, mostly with no launch selecting)."""
        from .selection import advance_selections
        try:
            with self.app.app_context():
                done = advance_selections()
        except Exception:
            self.errors += 1
            log.exception("embedded worker: advance selections failed (tried again when next due)")
            return
        if any(any(counts.values()) for counts in done.values()):
            log.info("embedded worker: advance selections → %s", done)

    # --- the queued jobs ----------------------------------------------------------------------

    def run_queued_jobs(self) -> bool:
        """Run every job waiting on the in-process queues, one after the other; False if none."""
        from rq.job import Job

        from .queue import QUEUES, get_connection, get_queue
        worked = False
        while not self.stopping.is_set():
            with self.app.app_context():
                queues = [get_queue(name) for name in QUEUES]
                connection = get_connection()
            popped = next(((q, raw) for q in queues if (raw := connection.lpop(q.key))), None)
            if popped is None:
                return worked
            queue, job_id = popped[0], popped[1].decode()
            worked = True
            try:
                job = Job.fetch(job_id, connection=connection)
            except Exception:  # gone (deleted, expired): nothing to run
                continue
            with self.app.app_context():  # the job's own context and database session
                queue.run_sync(job)  # RQ records success or failure (with the traceback) on the job
            self.jobs_run += 1
            if job.get_status(refresh=True) == "failed":
                self.jobs_failed += 1
                result = job.latest_result()
                log.error("embedded worker: job %s failed: %s", job.id, result.exc_string if result else "?")
        return worked


def resend_unfinished() -> dict:
    """Work a previous run of this process left unfinished: documents, exports and price-list
    imports queued or running whose job is not on this process's queue (it died with the process). Their claims
    are given back (`models.documents.release_claim`: counted as an interrupted try) and the
    sweep sends them again; rendering and exporting are idempotent."""
    from rq.job import Job
    from sqlalchemy import select

    from models import Document, Export, db
    from models.document_queue import release_claim

    from .queue import get_connection
    from .recovery import sweep

    def lost(job_id):
        try:
            Job.fetch(job_id, connection=get_connection())
            return False
        except Exception:
            return True

    session = db.session
    released = 0
    for model in (Document, Export):
        rows = session.execute(select(model.id, model.job_id).where(
            model.status.in_(("queued", "running")), model.job_id.is_not(None))).all()
        for row in rows:
            if lost(row.job_id) and release_claim(session, model, row.id, row.job_id):
                released += 1
    session.commit()
    from .imports import resend_unfinished_imports
    return {"released": released, **sweep(), "imports": resend_unfinished_imports()}


def init_app(app) -> None:
    # How jobs.queue finds this app's thread, to wake it (it runs only if `enabled`, or if a test starts it).
    app.extensions.setdefault("salesdesk_jobs", {})["embedded_worker"] = current
    if not enabled(app):
        return

    @app.before_request
    def _embedded_worker():
        wake(app)  # starts the thread on the first request; never runs a job here
