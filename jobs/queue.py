"""The one place that decides where jobs run.

Production (REDIS_URL set): RQ queues on that Redis, executed by `rq worker` processes.
Embedded (no REDIS_URL): the same RQ API on an in-process fakeredis, so nothing else needs to
be installed. The web process's background thread (jobs/embedded.py) executes the jobs, never
the request that enqueued them; a process without that thread (the CLI, tests that do not ask
for it) runs them at once in the calling thread (RQ's synchronous mode).
"""
from __future__ import annotations

import logging
import threading

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
    """This process's embedded worker thread for the current app, if it runs (embedded mode)."""
    from . import embedded
    return embedded.current(current_app._get_current_object())


def get_queue(name: str = "default") -> Queue:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=get_connection(),
                 is_async=not is_embedded() or _embedded_worker() is not None)


def enqueue(func, *args, queue: str = "default", **kwargs):
    """Enqueue `func(*args, **kwargs)`: for the workers, or the embedded thread (woken now);
    without either (CLI, tests) it has run when this returns.

    RQ's synchronous mode records a failure on the job instead of raising: we log it, and
    the caller reads `job.is_failed` as it would for a worker's job.
    """
    q = get_queue(queue)
    job = q.enqueue(func, *args, **kwargs)
    worker = _embedded_worker() if is_embedded() and q.is_async else None
    if worker is not None:
        worker.wake.set()
    elif is_embedded() and not q.is_async and job.is_failed:
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
