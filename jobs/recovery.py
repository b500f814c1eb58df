"""The sweep (every 5 minutes from jobs/schedule.py, and the embedded thread's): recover what
dead jobs left (`jobs.claims.recover`) and send whatever documents and exports are queued
without a job. Safe to run at any time, twice, or in two processes at once."""
from __future__ import annotations

from .context import app_context
from .documents import QueueUnavailable, enqueue_pending
from .exports import enqueue_pending_exports


def sweep() -> dict:
    """The periodic job: recover and send documents and exports. Returns what it sent."""
    with app_context():
        sent = {}
        for name, send in (("documents", enqueue_pending), ("exports", enqueue_pending_exports)):
            try:
                sent[name] = send()
            except QueueUnavailable:
                sent[name] = 0  # they stay queued; the next sweep sends them
        return sent
