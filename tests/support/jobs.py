"""Job functions for the queue tests (RQ imports jobs by dotted path)."""
from rq import get_current_job


def add(a, b):
    job = get_current_job()
    job.meta["progress"] = 100
    job.save_meta()
    return a + b


def explode():
    raise ValueError("boom")
