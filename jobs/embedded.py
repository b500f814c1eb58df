"""Embedded mode has no scheduler process: the first request of each office day runs the daily
jobs in-process (they are idempotent and catch up missed days), and expired holds are released
at most every 5 minutes. Production uses `rq cron jobs/schedule.py` instead."""
from __future__ import annotations

import logging
import threading
import time


log = logging.getLogger(__name__)
_lock = threading.Lock()
_state = {"day": None, "holds": 0.0}


def run_due_jobs() -> None:
    from models.base import office_today

    from .inventory import release_expired_holds
    from .ladder import run_ladder
    from .leads import pool_stale_leads
    today = office_today()
    now = time.monotonic()
    if _state["day"] == today and now - _state["holds"] < 300:
        return
    if not _lock.acquire(blocking=False):
        return  # another request is running them
    try:
        if now - _state["holds"] >= 300:
            release_expired_holds()
            _state["holds"] = now
        if _state["day"] != today:
            counts = run_ladder(today.isoformat())
            moved = pool_stale_leads(today.isoformat())
            log.info("daily jobs for %s: ladder %s, %d leads to the pool", today, counts, moved)
            _state["day"] = today
    except Exception:  # a failing job must not take the page down; it runs again next time
        log.exception("daily jobs failed")
    finally:
        _lock.release()


def init_app(app) -> None:
    if app.config.get("REDIS_URL") or app.config.get("TESTING") or not app.config.get("RUN_DAILY_JOBS", True):
        return

    @app.before_request
    def _daily_jobs():
        run_due_jobs()
