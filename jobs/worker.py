"""The rq worker class for production: `rq worker --worker-class jobs.worker.Worker …`.

rq forks a work-horse for every job. This worker builds the app and loads the PDF fonts and
stylesheet once, before it forks, so each job starts warm instead of paying ~1 s for them; the
database engine is disposed of after the warm-up so that no connection is shared with a child.
"""
from __future__ import annotations

from rq.worker import Worker as RQWorker


class Worker(RQWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from .context import preload

        preload()
