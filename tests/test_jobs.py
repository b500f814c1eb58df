"""One queue helper: in-process without Redis, a real RQ queue with REDIS_URL."""
from __future__ import annotations

from rq import SimpleWorker

from jobs import enqueue, get_queue
from jobs.queue import is_embedded
from tests.support.jobs import add, explode


def _run_workers_if_any(queue):
    # Production mode: a worker process would pick the job up; here a burst worker does.
    if not is_embedded():
        SimpleWorker([queue], connection=queue.connection).work(burst=True)


def _ran(func, *args):
    """The job of `func(*args)`, queued on the default queue, after a worker ran it."""
    job = enqueue(func, *args)
    _run_workers_if_any(get_queue())
    job.refresh()
    return job


def test_a_job_runs_and_reports_its_result_and_progress(app):
    job = _ran(add, 2, 3)
    assert job.is_finished and job.return_value() == 5
    assert job.meta["progress"] == 100


def test_a_failing_job_is_marked_failed_not_lost(app):
    job = _ran(explode)
    assert job.is_failed
    assert "boom" in job.latest_result().exc_string


def test_the_mode_follows_redis_url(app):
    from redis import Redis
    queue = get_queue("documents")
    if app.config["REDIS_URL"]:
        assert not is_embedded() and queue.is_async and type(queue.connection) is Redis
    else:
        assert is_embedded() and not queue.is_async


def test_the_periodic_jobs_load_into_rqs_cron_scheduler(app):
    from rq.cron import CronScheduler

    from jobs.queue import get_connection
    scheduler = CronScheduler(connection=get_connection())
    scheduler.load_config_from_file("jobs/schedule.py")
    jobs = {job.name: job for job in scheduler.get_jobs()}
    assert jobs["pool-stale-leads"].cron == "10 0 * * *"
    assert jobs["pool-stale-leads"].func.__name__ == "pool_stale_leads"
    assert jobs["release-expired-holds"].cron == "*/5 * * * *"
    assert jobs["refresh-dashboards"].cron == "* * * * *"
    assert jobs["refresh-dashboards"].func.__name__ == "refresh_dashboards"


def test_the_pool_job_runs_through_the_queue_for_today_by_default(app, db, make_user):
    import datetime as dt

    from models import Lead
    from tests import factories as f
    agent = make_user("agent")
    lead = f.lead(db.session, owner=agent, last_activity_at=dt.datetime(2020, 1, 1))
    db.session.commit()
    from jobs.leads import pool_stale_leads
    assert _ran(pool_stale_leads).return_value() == 1
    db.session.expire_all()
    assert db.session.get(Lead, lead.id).owner_id is None


def test_the_hold_release_job_frees_expired_holds(app, db, make_user):
    import datetime as dt

    from jobs.inventory import release_expired_holds
    from models import Unit
    from tests import factories as f
    agent = make_user("agent")
    lead = f.lead(db.session, owner=agent)
    unit = f.unit(db.session, f.building(db.session, lead.project), status="held", held_for_lead_id=lead.id,
                  held_until=dt.datetime(2020, 1, 1))
    db.session.commit()
    assert _ran(release_expired_holds).return_value() == 1
    db.session.expire_all()
    assert db.session.get(Unit, unit.id).status == "available"


def test_embedded_mode_runs_the_daily_jobs_in_its_thread_after_the_first_request_of_the_day(app, db, make_user):
    """Issue 18 item 17: the request starts the embedded worker thread, which runs the day's jobs."""
    import datetime as dt
    import time

    from app import create_app
    from jobs import embedded
    from models import Lead
    from tests import factories as f
    from tests.conftest import _config
    agent = make_user("agent")
    lead = f.lead(db.session, owner=agent, last_activity_at=dt.datetime(2020, 1, 1))
    db.session.commit()
    web = create_app({**_config(app.config["SQLALCHEMY_DATABASE_URI"]), "REDIS_URL": None,
                      "EMBEDDED_WORKER": True})
    try:
        with web.app_context():
            assert web.test_client().get("/login").status_code == 200
        worker = embedded.current(web)
        assert worker is not None and worker.name == "salesdesk-embedded-worker"
        deadline = time.monotonic() + 30
        while db.session.get(Lead, lead.id, populate_existing=True).owner_id is not None:
            assert time.monotonic() < deadline, "the pool job did not run"
            db.session.rollback()
            time.sleep(0.05)
        deadline = time.monotonic() + 30
        while worker.due["day"] is None:  # the day's jobs all done
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        embedded.stop()
        with web.app_context():
            from models import db as _db
            _db.engine.dispose()
