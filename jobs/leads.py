"""Daily lead jobs. Take a date, never objects; safe to run twice for the same day."""
from __future__ import annotations

import datetime as dt

from .context import app_context


def pool_stale_leads(today_iso: str | None = None) -> int:
    """Return idle leads to the public pool (公海) for the office day `today_iso` (default:
    today at the office). A missed day is caught up by the next run: the rule is 'idle longer
    than N days as of today'."""
    from models import db
    from models.base import office_today
    from models.leads import pool_stale_leads as pool

    with app_context():
        today = dt.date.fromisoformat(today_iso) if today_iso else office_today()
        moved = pool(db.session, today)
        db.session.commit()
        return moved
