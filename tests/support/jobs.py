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


def burst_worker_process(app, tmp_path, queue: str, timeout: int) -> None:
    """The production command, rq's worker (jobs.worker.Worker) started by `flask worker`, run in a
    process of its own on this office's `queue` until the queue is empty."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "REDIS_URL": app.config["REDIS_URL"], "SECRET_KEY": "worker",
           "SALESDESK_INSTANCE_PATH": str(tmp_path)}
    subprocess.run([str(Path(sys.executable).parent / "flask"), "--app", "app", "worker", "--burst",
                    "--queues", queue], cwd=Path(__file__).resolve().parents[2], env=env, check=True,
                   timeout=timeout, capture_output=True)
