"""Periodic jobs, for RQ's own scheduler:

    TZ=Asia/Shanghai rq cron jobs/schedule.py --url "$REDIS_URL"

Cron strings are read in the scheduler's local time, hence TZ: the office's day. Each job is
idempotent, so a scheduler restarted or run twice does no harm.
"""
from rq import cron

from jobs.dashboards import refresh_dashboards
from jobs.documents import enqueue_pending
from jobs.imports import recover_imports
from jobs.inventory import release_expired_holds
from jobs.ladder import run_ladder
from jobs.leads import pool_stale_leads

# name, function, cron string (minute hour day month weekday), queue
SCHEDULE = [
    ("overdue-ladder", run_ladder, "30 0 * * *", "default"),
    ("pool-stale-leads", pool_stale_leads, "10 0 * * *", "default"),
    ("release-expired-holds", release_expired_holds, "*/5 * * * *", "default"),
    ("send-pending-documents", enqueue_pending, "*/5 * * * *", "default"),
    ("recover-imports", recover_imports, "*/5 * * * *", "default"),
    ("refresh-dashboards", refresh_dashboards, "* * * * *", "default"),
]

for name, func, when, queue in SCHEDULE:
    cron.register(func, queue_name=queue, cron=when, name=name)
