"""Embedded mode (SQLite, no Redis), issue 18 items 17–19: the day's jobs and every render in one
background thread of the web process, never in a request; one WeasyPrint render at a time in
the process; concurrent writers on SQLite wait for each other instead of failing.

The thread tests build the web app as `scripts/start` runs it (no REDIS_URL) with
EMBEDDED_WORKER=True, which a test needs to get the thread (TESTING alone keeps RQ's synchronous
mode); requests go through the test client, jobs through the real thread.
"""
from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import select

from jobs import embedded
from models import Document
from tests import factories as f
from tests.conftest import TEST_PASSWORD, Auth, FreshContextClient, _config

TODAY = dt.date(2026, 11, 26)
STAFF = {"control": ("sales_control", None), "finance": ("finance", None),
         "manager": ("sales_manager", "manager")}
WAIT = 30  # seconds any wait for the thread may take before the test fails


def _until(condition, what, seconds=WAIT):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _locked_once(monkeypatch, module, name, statement):
    """`module.name` fails its first call with "database is locked" on `statement` (the database
    locked for longer than the busy timeout), and works from then on."""
    from sqlalchemy.exc import OperationalError
    real, calls = getattr(module, name), []

    def locked_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError(statement, {}, Exception("database is locked"))
        return real(*args, **kwargs)
    monkeypatch.setattr(module, name, locked_once)


@pytest.fixture
def web(app, monkeypatch):
    """The embedded web app on the test's database, with its background thread. The daily jobs
    do nothing unless a test gives them something to do (the ladder would write letters); the
    sweep runs for real (it sends only work that waits for a job)."""
    import jobs.documents
    import jobs.inventory
    import jobs.ladder
    import jobs.leads
    from app import create_app
    monkeypatch.setattr(jobs.ladder, "run_ladder", lambda today_iso=None, dry_run=False: {})
    monkeypatch.setattr(jobs.leads, "pool_stale_leads", lambda today_iso=None: 0)
    monkeypatch.setattr(jobs.inventory, "release_expired_holds", lambda: 0)
    from jobs.queue import _embedded_connection
    web = create_app({**_config(app.config["SQLALCHEMY_DATABASE_URI"]), "REDIS_URL": None,
                      "EMBEDDED_WORKER": True})
    web.test_client_class = FreshContextClient
    yield web
    embedded.stop()
    _embedded_connection().flushall()  # nothing left on the in-process queue for the next test
    with web.app_context():
        from models import db
        db.engine.dispose()


@pytest.fixture
def agent(make_user):
    return make_user("agent", username="li9")


def _login(web, username):
    client = web.test_client()
    response = Auth(client).login(username, TEST_PASSWORD)
    assert response.status_code == 302
    return client


# --- item 17: the day's jobs and the renders run in the thread, never in a request ------------

def test_issue18_17_the_first_request_of_the_day_returns_while_the_ladder_runs_in_the_thread(
        web, agent, monkeypatch):
    import jobs.ladder
    started, release, ran_in = threading.Event(), threading.Event(), []

    def slow_ladder(today_iso=None, dry_run=False):  # the 5,000-deal office's ladder
        ran_in.append(threading.current_thread().name)
        started.set()
        release.wait(WAIT)
        return {"letters": 0}
    monkeypatch.setattr(jobs.ladder, "run_ladder", slow_ladder)
    try:
        client = _login(web, agent.username)  # the day's first requests
        assert started.wait(WAIT), "the ladder never ran"
        begun = time.monotonic()
        page = client.get("/admin/")
        assert page.status_code == 200
        assert time.monotonic() - begun < 5 and not release.is_set()  # answered while the ladder runs
        assert ran_in == ["salesdesk-embedded-worker"]
    finally:
        release.set()
    worker = embedded.current(web)
    with web.app_context():
        from models.base import office_today
        _until(lambda: worker.due["day"] == office_today(), "the day marked done")
    client.get("/admin/")
    assert ran_in == ["salesdesk-embedded-worker"]  # once a day, not once a request


def test_issue18_17_documents_asked_for_in_a_request_render_in_the_thread_with_progress(
        app, db, web, make_user, monkeypatch):
    import pdf
    from jobs.documents import enqueue_documents, progress
    from models.document_queue import Document as Doc
    deal = f.active_deal(db.session, make_user, price="1500000.00", payment_method="instalments",
                         today=TODAY, staff=STAFF)
    db.session.commit()
    rendered_in, gate, real_render = [], threading.Semaphore(0), pdf.render

    def gated_render(kind, context, **kw):  # each render waits for the test to let it through
        rendered_in.append(threading.current_thread().name)
        assert gate.acquire(timeout=WAIT)
        return real_render(kind, context, **kw)
    monkeypatch.setattr(pdf, "render", gated_render)
    client = _login(web, "li")
    token = Auth(client).csrf()
    begun = time.monotonic()
    response = client.post("/admin/document/request/", data={
        "kind": "subscription_agreement", "subject_id": str(deal["sub"].id), "csrf_token": token})
    assert response.status_code == 302 and time.monotonic() - begun < 5  # not rendered in the request
    said = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "正在生成" in said  # "being rendered", not "ready"
    _until(lambda: rendered_in, "the render to start")
    assert rendered_in == ["salesdesk-embedded-worker"]
    gate.release()
    db.session.expire_all()
    _until(lambda: db.session.scalar(select(Document.status)) == "done", "the document rendered")
    db.session.rollback()

    # a batch of two: its progress is the job's, truthful while it runs
    docs = [f.document(db.session, deal["manager"], kind="subscription_agreement", subject_id=deal["sub"].id)
            for _ in range(2)]
    db.session.commit()
    ids = [d.id for d in docs]
    with web.test_request_context("/admin/document/request/", method="POST"):
        from models import db as _db
        job_ids = enqueue_documents(_db.session, [_db.session.get(Doc, i) for i in ids])
    gate.release()  # the first renders, the second waits
    with web.app_context():
        _until(lambda: progress(job_ids) == {"done": 1, "failed": 0}, "progress 1 of 2")
        gate.release()
        _until(lambda: progress(job_ids) == {"done": 2, "failed": 0}, "progress 2 of 2")
    assert set(rendered_in) == {"salesdesk-embedded-worker"} and len(rendered_in) == 3


def test_issue18_17_a_failing_job_or_daily_job_does_not_stop_the_thread(web, monkeypatch):
    import jobs.leads
    from jobs import enqueue
    from tests.support.jobs import add, explode
    calls = []

    def broken_pool(today_iso=None):
        calls.append(today_iso)
        raise RuntimeError("the pool job broke")
    monkeypatch.setattr(jobs.leads, "pool_stale_leads", broken_pool)
    with web.test_request_context("/admin/"):
        embedded.ensure_started(web)
        failing = enqueue(explode)
        working = enqueue(add, 2, 3)
    worker = embedded.current(web)
    _until(lambda: working.get_status(refresh=True) == "finished", "the job after the failing one")
    assert failing.get_status(refresh=True) == "failed" and "boom" in failing.latest_result().exc_string
    working.refresh()
    assert working.return_value() == 5 and working.meta["progress"] == 100
    assert worker.is_alive() and worker.jobs_failed == 1 and worker.errors >= 1 and calls
    assert worker.due["day"] is None  # the day is not marked done: the pool job runs again…
    time.sleep(0.3)
    assert len(calls) == 1  # …not at once in a loop, but after a pause
    worker.due["day_tried"] = None  # the pause is over
    worker.wake.set()
    _until(lambda: len(calls) >= 2, "the daily jobs tried again")
    assert worker.is_alive()


def test_issue18_17_one_thread_per_process_however_many_requests_start_it(web, agent):
    clients = [_login(web, agent.username) for _ in range(3)]
    threads = [threading.Thread(target=c.get, args=("/admin/",)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    named = [t for t in threading.enumerate() if t.name == "salesdesk-embedded-worker"]
    assert len(named) == 1 and named[0] is embedded.current(web) and named[0].daemon
    first = named[0]
    first.pid = -1  # as seen from a process forked after it started (gunicorn --preload)
    assert embedded.current(web) is None
    second = embedded.ensure_started(web)
    assert second is not first and second.is_alive()
    first.stop()


def test_issue18_17_work_left_by_a_stopped_server_is_done_at_the_next_start(app, db, web, make_user):
    deal = f.active_deal(db.session, make_user, price="1500000.00", payment_method="instalments",
                         today=TODAY, staff=STAFF)
    queued = f.document(db.session, deal["manager"], kind="subscription_agreement",
                        subject_id=deal["sub"].id, job_id="jobofthelastrun", status="queued")
    running = f.document(db.session, deal["manager"], kind="subscription_agreement",
                         subject_id=deal["sub"].id, job_id="jobofthelastrun", status="running")
    db.session.commit()
    embedded.ensure_started(web)

    def statuses():
        db.session.rollback()
        return {db.session.get(Document, d.id, populate_existing=True).status for d in (queued, running)}
    _until(lambda: statuses() == {"done"}, "the unfinished documents rendered")


def test_issue18_9_embedded_a_job_that_failed_before_claiming_its_documents_is_recovered_by_the_sweep(
        app, db, web, make_user, monkeypatch):
    """In embedded mode the thread's job can fail as a worker's does (the database locked for
    longer than the busy timeout when it claims its first document): the documents it held
    must not stay "queued" with an animated progress bar until the server restarts."""
    import jobs.documents
    deal = f.active_deal(db.session, make_user, price="1500000.00", payment_method="instalments",
                         today=TODAY, staff=STAFF)
    doc = f.document(db.session, deal["manager"], kind="subscription_agreement", subject_id=deal["sub"].id)
    db.session.commit()
    _locked_once(monkeypatch, jobs.documents, "render_document", "UPDATE documents")

    def status():
        db.session.rollback()
        return db.session.get(Document, doc.id, populate_existing=True).status
    worker = embedded.ensure_started(web)  # its first sweep sends the queued document
    _until(lambda: worker.jobs_failed == 1, "the job to fail")
    assert status() == "queued"
    worker.due["pending"] = None  # the next sweep is due (every 5 minutes)
    worker.wake.set()
    _until(lambda: status() == "done", "the document sent again and rendered")


def test_issue18_4_a_price_list_import_left_queued_by_a_stopped_server_runs_at_the_next_start(
        app, db, web, make_user):
    """Embedded mode: the in-process queue dies with the server. An import uploaded just before
    it stopped (queued, its job gone) is imported when the server starts again, as documents
    and exports are; it must not say "waiting" for ever."""
    from models import PriceListImport
    from tests.test_price_import import GOOD
    f.project(db.session, code="XJ", name="湘江壹号")
    user = make_user("sales_control")
    row = PriceListImport(filename="p.csv", content=GOOD.encode(), requested_by_id=user.id,
                          job_id="jobofthelastrun")
    db.session.add(row)
    db.session.commit()
    assert row.status == "queued"
    embedded.ensure_started(web)

    def status():
        db.session.rollback()
        return db.session.get(PriceListImport, row.id, populate_existing=True).status
    _until(lambda: status() == "done", "the import left queued done")


def test_issue18_4_a_price_list_imported_by_the_thread_shows_its_progress(app, db, web, make_user, monkeypatch):
    """Embedded mode imports in the worker thread now, not in the request: the import's page
    shows how far the thread has got, as it does for a worker's job."""
    import models.inventory
    from models import PriceListImport
    from tests.support.imports import post_price_list
    from tests.test_price_import import GOOD
    f.project(db.session, code="XJ", name="湘江壹号")
    make_user("sales_control", username="chen9")
    db.session.commit()
    real, halfway, release = models.inventory.import_price_list, threading.Event(), threading.Event()

    def slow_import(session, by, rows, progress=None):
        progress(1)  # the first of the two rows written…
        halfway.set()
        release.wait(WAIT)  # …the second waits for the test
        return real(session, by, rows, progress=progress)
    monkeypatch.setattr(models.inventory, "import_price_list", slow_import)
    client = _login(web, "chen9")
    try:
        response = post_price_list(client, GOOD.encode(), "p.csv")
        assert response.status_code == 302
        assert halfway.wait(WAIT), "the import never started"
        page = client.get(response.headers["Location"]).get_data(as_text=True)
        assert "1 / 2" in page and "width:50%" in page
    finally:
        release.set()

    def status():
        db.session.rollback()
        return db.session.scalar(select(PriceListImport.status))
    _until(lambda: status() == "done", "the import done")


def test_issue18_4_embedded_an_import_whose_job_failed_before_claiming_it_is_sent_again(
        app, db, web, make_user, monkeypatch):
    """As for documents: the thread's import job failing before it took the import (a locked
    database) must not leave the import "waiting" until the next restart."""
    import models.imports

    from jobs.imports import enqueue_import
    from models import PriceListImport
    from tests.test_price_import import GOOD
    f.project(db.session, code="XJ", name="湘江壹号")
    user = make_user("sales_control")
    db.session.commit()
    _locked_once(monkeypatch, models.imports, "claim_import", "UPDATE price_list_import")
    worker = embedded.ensure_started(web)
    _until(lambda: worker.due["pending"] is not None, "the thread's first round")
    row = PriceListImport(filename="p.csv", content=GOOD.encode(), requested_by_id=user.id)
    db.session.add(row)
    db.session.commit()
    with web.app_context():
        from models import db as _db
        enqueue_import(_db.session, _db.session.get(PriceListImport, row.id))
    _until(lambda: worker.jobs_failed == 1, "the job to fail")

    def status():
        db.session.rollback()
        return db.session.get(PriceListImport, row.id, populate_existing=True).status
    assert status() == "queued"
    worker.due["pending"] = None  # the next sweep is due (every 5 minutes)
    worker.wake.set()
    _until(lambda: status() == "done", "the import sent again and done")


# --- item 18: one WeasyPrint render at a time in the process -----------------------------------

def test_issue18_18_two_threads_never_render_inside_weasyprint_at_once(app, monkeypatch):
    import weasyprint

    import pdf
    from tests.support.race import race
    inside, most, lock = [0], [0], threading.Lock()
    real_write_pdf = weasyprint.HTML.write_pdf

    def counting_write_pdf(self, *args, **kwargs):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        try:
            time.sleep(0.3)  # long enough for the other thread to arrive if nothing stops it
            return real_write_pdf(self, *args, **kwargs)
        finally:
            with lock:
                inside[0] -= 1
    monkeypatch.setattr(weasyprint.HTML, "write_pdf", counting_write_pdf)
    monkeypatch.setattr(pdf, "render_html", lambda kind, context: "<p>售楼通</p>")

    def warm():
        pdf.warm_up()
        return b"%PDF warm"
    results = race(lambda: pdf.render("receipt", {}), lambda: pdf.render("receipt", {}), warm, join=WAIT)
    assert len(results) == 3 and all(r.startswith(b"%PDF") for r in results)
    assert most[0] == 1, f"{most[0]} threads were inside WeasyPrint at once"


# --- item 19: SQLite writers wait for each other ------------------------------------------------

def test_issue18_19_a_transaction_that_read_first_waits_for_a_colleagues_write(app, db, make_user):
    """The pattern of subscribe(): a savepoint, reads, then writes, while a colleague writes."""
    from models import Lead, User
    from models import db as _db
    first, second = make_user("agent"), make_user("agent")
    lead = f.lead(db.session, owner=first)
    db.session.commit()
    have_read, outcomes = threading.Event(), {}

    def reader_then_writer():
        with app.app_context():
            try:
                session = _db.session
                with session.begin_nested():
                    session.get(User, first.id)  # reads first…
                    have_read.set()
                    time.sleep(0.5)  # …the colleague writes meanwhile…
                    session.get(Lead, lead.id).name = "王先生"  # …then writes
                session.commit()
                outcomes["reader"] = "ok"
            except Exception as exc:
                outcomes["reader"] = f"{type(exc).__name__}: {exc}"
            finally:
                _db.session.remove()

    def colleague():
        with app.app_context():
            try:
                assert have_read.wait(WAIT)
                _db.session.get(User, second.id).display_name = "同事"
                _db.session.commit()
                outcomes["colleague"] = "ok"
            except Exception as exc:
                outcomes["colleague"] = f"{type(exc).__name__}: {exc}"
            finally:
                _db.session.remove()
    threads = [threading.Thread(target=reader_then_writer), threading.Thread(target=colleague)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 2)
    assert outcomes == {"reader": "ok", "colleague": "ok"}
    db.session.expire_all()
    assert db.session.get(Lead, lead.id).name == "王先生" and db.session.get(User, second.id).display_name == "同事"


def test_issue18_19_the_embedded_database_is_in_wal_mode_with_a_long_busy_timeout(tmp_path):
    from app import create_app
    from models import db
    embedded_app = create_app({**_config(f"sqlite:///{tmp_path / 'embedded.sqlite'}"), "REDIS_URL": None})
    with embedded_app.app_context(), db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
