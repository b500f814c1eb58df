"""The opening day's selection (R-LCH-3): every launch in selection moved on (missed slots, the
next slots opened) every 15 s by the scheduler (jobs/schedule.py). Idempotent and cheap when
nothing is due (models.selection.advance)."""
from __future__ import annotations

from .context import app_context


def advance_selections() -> dict:
    """Advance every launch in selection at the present moment; {launch id: what was done}."""
    from models import db
    from models.base import utcnow
    from models.selection import advance, launches_selecting

    with app_context():
        done = {}
        for launch_id in launches_selecting(db.session):
            done[launch_id] = advance(db.session, launch_id, utcnow())
            db.session.commit()
        db.session.rollback()
        return done
