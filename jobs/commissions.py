"""Commission jobs (R-COM-2). Take ids and a date, never objects; safe to run twice."""
from __future__ import annotations

import datetime as dt

from .context import app_context

JOB_TIMEOUT = 3600  # seconds: a project of 40,000 deals takes about a minute (bench/commissions.py)


def apply_rules(project_id: int, today_iso: str | None = None) -> int:
    """Bring the project's deals to its commission rules as saved (models.commissions.apply_rules),
    lines dated `today_iso` (default: today at the office). A run that dies leaves the rules
    unmarked: the daily sweep applies them again."""
    from models import db
    from models.base import office_today
    from models.commissions import apply_rules as apply

    with app_context():
        today = dt.date.fromisoformat(today_iso) if today_iso else office_today()
        return apply(db.session, project_id, today)
