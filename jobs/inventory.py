"""Sales-control jobs. Safe to run twice."""
from __future__ import annotations

from .context import app_context


def release_expired_holds() -> int:
    """Units held past their time return to available."""
    from models import db
    from models.inventory import release_expired_holds as release

    with app_context():
        released = release(db.session)
        db.session.commit()
        return released
