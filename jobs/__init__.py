"""Background jobs. Jobs take ids and dates, never ORM objects, and are safe to run twice."""
from __future__ import annotations

from .queue import enqueue, get_connection, get_queue  # noqa: F401


def init_app(app) -> None:
    from . import embedded
    from .worker import worker_command

    app.extensions["salesdesk_jobs"] = {"redis_url": app.config.get("REDIS_URL")}
    embedded.init_app(app)
    app.cli.add_command(worker_command)
