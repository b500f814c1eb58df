"""The office-wide dashboard panels, computed every minute so that no page waits for them."""
from __future__ import annotations

import datetime as dt

from .context import app_context


def refresh_dashboards(today_iso: str | None = None) -> list[str]:
    """Compute the manager's and finance's panels of the office day and keep them in Redis,
    where every web worker reads them (models.reports.office_panel)."""
    from models import db
    from models.base import office_today
    from models.reports import refresh_office_panels

    with app_context():
        today = dt.date.fromisoformat(today_iso) if today_iso else office_today()
        try:
            return refresh_office_panels(db.session, today)
        finally:
            db.session.rollback()  # read only: end the transaction
