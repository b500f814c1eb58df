"""One queue helper: in-process without Redis, a real RQ queue with REDIS_URL."""
from __future__ import annotations

from rq import SimpleWorker

from jobs import enqueue, get_queue
from jobs.queue import is_embedded
from tests.support.jobs import add, explode


def _run_workers_if_any(queue):
    # Production mode: a worker process would pick the job up; here a burst worker does.
    if not is_embedded():
        SimpleWorker([queue], connection=queue.connection).work(burst=True)


def test_a_job_runs_and_reports_its_result_and_progress(app):
    job = enqueue(add, 2, 3)
    _run_workers_if_any(get_queue())
    job.refresh()
    assert job.is_finished and job.return_value() == 5
    assert job.meta["progress"] == 100


def test_a_failing_job_is_marked_failed_not_lost(app):
    job = enqueue(explode)
    _run_workers_if_any(get_queue())
    job.refresh()
    assert job.is_failed
    assert "boom" in job.latest_result().exc_string


def test_the_mode_follows_redis_url(app):
    from redis import Redis
    queue = get_queue("documents")
    if app.config["REDIS_URL"]:
        assert not is_embedded() and queue.is_async and type(queue.connection) is Redis
    else:
        assert is_embedded() and not queue.is_async
