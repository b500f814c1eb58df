"""Job functions for the queue tests (RQ imports jobs by dotted path)."""
from rq import get_current_job


def add(a, b):
    job = get_current_job()
    job.meta["progress"] = 100
    job.save_meta()
    return a + b


def explode():
    raise ValueError("boom")


def drain(app) -> None:
    """Run every queued job now, as `rq worker --burst` would (Redis mode; embedded mode ran
    them already)."""
    from rq import SimpleWorker

    from jobs.queue import QUEUES, get_connection, get_queue, is_embedded

    with app.app_context():
        if is_embedded():
            return
        SimpleWorker([get_queue(name) for name in QUEUES], connection=get_connection()).work(burst=True)
