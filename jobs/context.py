"""An application context for job functions run by `rq worker` (no app at import time)."""
from __future__ import annotations

import contextlib

from flask import has_app_context

_app = None


def preload() -> None:
    """Build the worker's app and warm the PDF renderer now (before rq forks work-horses)."""
    global _app
    import pdf

    if _app is None:
        from app import create_app

        _app = create_app()
    with _app.app_context():
        pdf.warm_up()
        from models import db

        db.engine.dispose()


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
