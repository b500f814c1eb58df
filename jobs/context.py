"""An application context for job functions run by `rq worker` (no app at import time)."""
from __future__ import annotations

import contextlib

from flask import has_app_context

_app = None


def preload() -> str | None:
    """Build the worker's app and warm the PDF renderer now (before rq forks work-horses).
    Returns the database's fingerprint (None in embedded mode), which the worker checks jobs
    against."""
    global _app
    import pdf

    if _app is None:
        from app import create_app

        _app = create_app()
    with _app.app_context():
        pdf.warm_up()
        from models import db

        from .queue import database_fingerprint, is_embedded
        fingerprint = None if is_embedded() else database_fingerprint()
        db.engine.dispose()
    return fingerprint


@contextlib.contextmanager
def app_context():
    """Reuse the caller's context (web request, CLI, embedded mode) or the worker's app."""
    global _app
    if has_app_context():
        yield
        return
    if _app is None:
        from app import create_app

        _app = create_app()
    with _app.app_context():
        yield


def scheduler_identity() -> tuple[str, dict]:
    """For `rq cron jobs/schedule.py`: this instance's "default" queue and the meta stamping
    its jobs with the database's fingerprint (what `jobs.queue.enqueue` does for the others)."""
    reused = has_app_context()
    with app_context():
        from models import db

        from .queue import database_fingerprint, queue_name
        name, fingerprint = queue_name("default"), database_fingerprint()
        if not reused:
            db.engine.dispose()  # no connection kept by the scheduler between its runs
    return name, {"db": fingerprint}
