"""Periodic jobs, for RQ's own scheduler:

    TZ=Asia/Shanghai rq cron jobs/schedule.py --url "$REDIS_URL"

Cron strings are read in the scheduler's local time, hence TZ: the office's day. Each job is
idempotent, so a scheduler restarted or run twice does no harm. The jobs go to this instance's
own "default" queue (prefixed, see jobs/queue.py), stamped with its database's fingerprint, so
the scheduler needs the same DATABASE_URL (and SALESDESK_INSTANCE, if set) as the workers.
"""
from rq import cron

from jobs.context import scheduler_identity
from jobs.dashboards import refresh_dashboards
from jobs.imports import recover_imports
from jobs.inventory import release_expired_holds
from jobs.ladder import run_ladder
from jobs.leads import pool_stale_leads
from jobs.selection import advance_selections
from jobs.recovery import sweep

# name, function, cron string (minute hour day month weekday)
SCHEDULE = [
    ("overdue-ladder", run_ladder, "30 0 * * *"),
    ("pool-stale-leads", pool_stale_leads, "10 0 * * *"),
    ("release-expired-holds", release_expired_holds, "*/5 * * * *"),
    # documents and exports left by dead jobs back to the queue, and what waited for Redis sent
    ("recover-and-send-jobs", sweep, "*/5 * * * *"),
    ("recover-imports", recover_imports, "*/5 * * * *"),
    ("refresh-dashboards", refresh_dashboards, "* * * * *"),
]

# name, function, seconds between runs (below a minute: cron strings cannot say it)
EVERY = [
    ("advance-selections", advance_selections, 15),  # R-LCH-3: the opening day's slots
]

QUEUE, META = scheduler_identity()
for name, func, when in SCHEDULE:
    cron.register(func, queue_name=QUEUE, cron=when, name=name, meta=META)
for name, func, seconds in EVERY:
    cron.register(func, queue_name=QUEUE, interval=seconds, name=name, meta=META, ttl=seconds)
