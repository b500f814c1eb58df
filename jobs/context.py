"""The app job functions run in, outside a request: the caller's context (web request, CLI,
embedded thread), else the worker's app.

The worker's app is handed over by its entry point (`jobs.worker`: the app `flask --app app
worker` loaded) or, in a process started by rq itself (`rq worker --worker-class
jobs.worker.Worker`, `rq cron jobs/schedule.py`), found the way the flask CLI finds it:
FLASK_APP, else "app" (its `create_app()`). Nothing in jobs/ imports app.py.
"""
from __future__ import annotations

import contextlib
import os

from flask import has_app_context

_app = None


def load_app():
    """The app as `flask --app $FLASK_APP` (default "app") would load it."""
    from flask.cli import ScriptInfo
    return ScriptInfo(app_import_path=os.environ.get("FLASK_APP") or "app").load_app()


def worker_app(app=None):
    """The worker's app: `app` when given (its entry point loaded it), else the one this process
    already has, else the one `load_app` finds."""
    global _app
    if app is not None:
        _app = app
    elif _app is None:
        _app = load_app()
    return _app


def preload(app=None) -> str | None:
    """Take the worker's app (`worker_app`) and warm the PDF renderer now (before rq forks
    work-horses). Returns the database's fingerprint (None in embedded mode), which the worker
    checks jobs against."""
    import pdf

    with worker_app(app).app_context():
        pdf.warm_up()
        from models import db

        from .queue import database_fingerprint, is_embedded
        fingerprint = None if is_embedded() else database_fingerprint()
        db.engine.dispose()
    return fingerprint


@contextlib.contextmanager
def app_context():
    """Reuse the caller's context (web request, CLI, embedded mode) or the worker's app."""
    if has_app_context():
        yield
        return
    with worker_app().app_context():
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
