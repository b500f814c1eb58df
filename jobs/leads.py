"""Daily lead jobs. Take a date, never objects; safe to run twice for the same day."""
from __future__ import annotations

import datetime as dt

from .context import app_context


def pool_stale_leads(today_iso: str) -> int:
    """Return idle leads to the public pool (公海) for the office day `today_iso`."""
    from models import db
    from models.leads import pool_stale_leads as pool

    with app_context():
        moved = pool(db.session, dt.date.fromisoformat(today_iso))
        db.session.commit()
        return moved
