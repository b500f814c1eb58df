"""The one place that decides where jobs run.

Production (REDIS_URL set): RQ queues on that Redis, executed by `rq worker` processes.
Embedded (no REDIS_URL): the same RQ API on an in-process fakeredis, so nothing else needs to
be installed. The web process's background thread (jobs/embedded.py) executes the jobs, never
the request that enqueued them; a process without that thread (the CLI, tests that do not ask
for it) runs them at once in the calling thread (RQ's synchronous mode).

Namespacing (production): jobs carry only row ids, so an office's jobs must never run against
another office's database even when both share one Redis database. Queue names are prefixed by
the instance name (`SALESDESK_INSTANCE`, default "sd-" + a hash of the database URL), and every
job is stamped with the database's own fingerprint (`models.instance`), which the worker
(`jobs.worker.Worker`) checks before it runs anything.
"""
from __future__ import annotations

import logging
import threading

from config import instance_name  # noqa: F401  (the queues' prefix; read here by callers too)
from flask import current_app
from redis import Redis
from rq import Queue

log = logging.getLogger(__name__)

QUEUES = ("default", "documents", "exports")

_fake_server = None
_fake_server_lock = threading.Lock()


def _embedded_connection():
    global _fake_server
    import fakeredis

    with _fake_server_lock:  # the web threads and the worker thread must share one server
        if _fake_server is None:
            _fake_server = fakeredis.FakeServer()
    return fakeredis.FakeRedis(server=_fake_server)


def get_connection() -> Redis:
    url = current_app.config.get("REDIS_URL")
    return Redis.from_url(url) if url else _embedded_connection()


def is_embedded() -> bool:
    return not current_app.config.get("REDIS_URL")


def _embedded_worker():
    """This process's embedded worker thread for the current app, if it runs (embedded mode):
    asked of the finder jobs/embedded.py gives the app (`embedded.current`), so that this module,
    which every job module imports, imports none of them."""
    find = current_app.extensions.get("salesdesk_jobs", {}).get("embedded_worker")
    return find(current_app._get_current_object()) if find is not None else None


def queue_name(name: str, prefix: str | None = None) -> str:
    """The Redis queue of logical queue `name` ("documents") for this instance."""
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return f"{prefix or instance_name()}.{name}"


def database_fingerprint() -> str:
    """This app's database fingerprint (read once per app)."""
    from models import db
    from models.instance import database_fingerprint as read
    state = current_app.extensions.setdefault("salesdesk_jobs", {})
    if "fingerprint" not in state:
        state["fingerprint"] = read(db.engine)
    return state["fingerprint"]


def get_queue(name: str = "default") -> Queue:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    if is_embedded():
        return Queue(name, connection=get_connection(), is_async=_embedded_worker() is not None)
    return Queue(queue_name(name), connection=get_connection())


def enqueue(func, *args, queue: str = "default", **kwargs):
    """Enqueue `func(*args, **kwargs)`: for the workers, or the embedded thread (woken now);
    without either (CLI, tests) it has run when this returns.

    In production the job is stamped with the database's fingerprint (meta "db"): a worker of
    another database refuses it. RQ's synchronous mode records a failure on the job instead of
    raising: we log it, and the caller reads `job.is_failed` as it would for a worker's job.
    """
    if not is_embedded():
        kwargs["meta"] = {**(kwargs.get("meta") or {}), "db": database_fingerprint()}
    q = get_queue(queue)
    job = q.enqueue(func, *args, **kwargs)
    worker = _embedded_worker() if is_embedded() and q.is_async else None
    if worker is not None:
        worker.wake.set()
    elif is_embedded() and job.is_failed:
        result = job.latest_result()
        log.error("job %s failed: %s", job.id, result.exc_string if result else "?")
    return job


def job_meta(job_ids) -> list[dict] | None:
    """The meta (progress) of each job, or None when any is gone or Redis is unreachable
    (embedded mode: the in-process queue, where the thread's jobs report as a worker's)."""
    from rq.job import Job
    if not job_ids:
        return None
    try:
        jobs = Job.fetch_many(list(job_ids), connection=get_connection())
    except Exception:
        return None
    return None if any(job is None for job in jobs) else [job.meta for job in jobs]


DEAD = ("failed", "stopped", "canceled", "finished")  # a job that will not (again) touch its rows


def job_states(job_ids) -> dict[str, str | None] | None:
    """The rq status of each job ("queued", "started", "failed"…; None when Redis no longer has
    it), or None when Redis cannot be reached. Production only."""
    from rq.job import Job
    job_ids = list(dict.fromkeys(filter(None, job_ids)))
    try:
        connection = get_connection()
        jobs = Job.fetch_many(job_ids, connection=connection) if job_ids else []
        states = {}
        for job_id, job in zip(job_ids, jobs):
            status = None if job is None else job.get_status(refresh=False)
            states[job_id] = getattr(status, "value", status) or None
        return states
    except Exception:
        return None


def clean_registries() -> None:
    """Let rq settle what dead workers left: jobs in a StartedJobRegistry whose worker stopped
    sending heartbeats become failed (AbandonedJobError), so the sweep sees them as dead."""
    from rq.registry import StartedJobRegistry
    for name in QUEUES:
        queue = get_queue(name)
        StartedJobRegistry(queue.name, connection=queue.connection).cleanup()
