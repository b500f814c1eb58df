"""The daily overdue ladder (R-PAY-5). Takes a date, never objects; safe to run twice."""
from __future__ import annotations

import datetime as dt

from .context import app_context


def run_ladder(today_iso: str | None = None, dry_run: bool = False) -> dict:
    """Run the ladder for the office day `today_iso` (default: today at the office)."""
    from models import db
    from models.base import office_today
    from models.ladder import run_ladder as run

    from .documents import QueueUnavailable, enqueue_pending

    with app_context():
        today = dt.date.fromisoformat(today_iso) if today_iso else office_today()
        counts = dict(run(db.session, today, dry_run=dry_run))
        if not dry_run:
            try:
                counts["letters"] = enqueue_pending()  # the run's letters, one batch per kind
            except QueueUnavailable:
                counts["letters"] = 0  # they stay queued; the sweep sends them later
        return counts
