"""Faults (issue 10): a failure at any statement of a forfeit or a signing leaves nothing half
done; a database error in the middle of a request rolls back behind a friendly page; jobs run
twice change nothing the second time; with Redis down the web app works, enqueues fail with a
clear message, and the periodic sweep sends what waited once Redis is back."""
from __future__ import annotations

import contextlib
import datetime as dt
import re

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError

from models import Contract, Document, Instalment, Payment, Subscription, Unit, db as _db
from models.base import office_today
from tests.conftest import TEST_PASSWORD, Auth, FreshContextClient, _config, csrf_token, submission_key

TODAY = office_today()


class InjectedFault(OperationalError):
    def __init__(self, statement):
        super().__init__(statement, None, Exception("injected fault"))


@contextlib.contextmanager
def fault_at(engine, n: int | None = None, matching: str | None = None):
    """Fail the n-th SQL statement from now (or the first one matching a pattern) with a
    database error, as a dropped connection or a full disk would. Yields the statement count."""
    seen = {"count": 0, "fired": False}

    def before(conn, cursor, statement, parameters, context, executemany):
        seen["count"] += 1
        hit = (n is not None and seen["count"] == n) or (
            matching is not None and re.search(matching, statement, re.I))
        if hit and not seen["fired"]:
            seen["fired"] = True
            raise InjectedFault(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def _state(db) -> dict:
    """Every row of every table (the audit trail included), to compare before and after."""
    db.session.expire_all()
    with db.engine.connect() as conn:
        return {table.name: sorted(map(repr, conn.execute(table.select()).all()))
                for table in _db.metadata.sorted_tables}


def _each_fault(db, operation) -> int:
    """Run `operation` with a fault at its 1st, 2nd, … statement until it runs through; after
    each fault the database must be exactly as before. Returns the number of faults injected."""
    before = _state(db)
    n = 0
    while True:
        n += 1
        with fault_at(db.engine, n) as seen:
            try:
                operation()
            except OperationalError:
                db.session.rollback()
        if not seen["fired"]:
            print(f"{n - 1} faults injected, one at each statement; none left a trace")
            return n - 1  # the operation ran through without reaching statement n
        assert _state(db) == before, f"half-done state after a fault at statement {n}"


@pytest.fixture
def deal(make_deal):
    return make_deal(price="1000000.00", method="commercial_mortgage", today=TODAY - dt.timedelta(days=40),
                     staff={"control": ("sales_control", "chen"), "finance": ("finance", "zhao"),
                            "lawyer": ("lawyer", "wang")})


def test_a_fault_at_any_statement_of_a_forfeit_leaves_nothing_half_done(db, deal):
    """R-PAY-5: the forfeit is one transaction: subscription, unit, archive, event, letter."""
    from models.ladder import forfeit
    sub = deal["sub"]
    faults = _each_fault(db, lambda: forfeit(db.session, sub.id, TODAY))
    assert faults >= 10
    db.session.expire_all()
    assert db.session.get(Subscription, sub.id).status == "forfeited"
    assert db.session.get(Unit, sub.unit_id).status == "available"


def test_a_fault_at_any_statement_of_a_signing_leaves_nothing_half_done(db, deal):
    """R-CON-4: contract, subscription, unit, customer and the steps after it, or nothing."""
    from models.contracts import book_signing, sign_contract
    from models.payments import record_payment
    sub = deal["sub"]
    down = db.session.scalar(select(Instalment).where(Instalment.subscription_id == sub.id,
                                                      Instalment.kind == "down_payment"))
    record_payment(db.session, deal["finance"], sub.id, amount=str(down.amount_due), paid_on=TODAY,
                   channel="pos", instalment_id=down.id)
    contract = book_signing(db.session, deal["agent"], sub.id,
                            appointment_at=dt.datetime.combine(TODAY + dt.timedelta(days=1), dt.time(10)))
    db.session.commit()

    def sign():
        sign_contract(db.session, deal["lawyer"], contract.id, number="HT-1", signed_on=TODAY)
        db.session.commit()

    faults = _each_fault(db, sign)
    assert faults >= 8
    db.session.expire_all()
    assert db.session.get(Contract, contract.id).status == "signed"
    assert db.session.get(Unit, sub.unit_id).status == "signed"


def test_a_database_error_mid_request_rolls_back_behind_a_friendly_page(app, client, db, deal):
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: the error page, not a raise
    sub = deal["sub"]
    auth = Auth(client)
    auth.login("zhao")
    token = auth.csrf()
    before = _state(db)
    form = client.post("/admin/subscription/action/", data={"csrf_token": token, "action": "payment",
                                                            "rowid": sub.id}).get_data(as_text=True)
    key = submission_key(form)
    with fault_at(db.engine, matching=r"^INSERT INTO payment_allocation") as seen:
        response = client.post("/admin/subscription/payment/", data={
            "csrf_token": token, "subscription_id": str(sub.id), "amount": "1000.00",
            "paid_on": TODAY.isoformat(), "channel": "pos", "submission_key": key})
    assert seen["fired"]
    html = response.get_data(as_text=True)
    assert response.status_code == 500 and "出错了" in html and "未保存" in html
    assert "Traceback" not in html and "INSERT" not in html and "injected" not in html
    assert _state(db) == before  # the payment row written before the fault is gone too
    # The next request of the same person works: nothing of the failed one lingers, not even its
    # one-time key — the same form sent again records the payment (once).
    again = client.post("/admin/subscription/payment/", data={
        "csrf_token": token, "subscription_id": str(sub.id), "amount": "1000.00",
        "paid_on": TODAY.isoformat(), "channel": "pos", "submission_key": key})
    assert again.status_code == 302
    assert db.session.scalar(select(Payment.id).where(Payment.amount == 1000)) is not None


def test_every_periodic_job_run_twice_changes_nothing_the_second_time(app, db, deal, make_user):
    from jobs.documents import enqueue_pending
    from jobs.inventory import release_expired_holds
    from jobs.ladder import run_ladder
    from jobs.leads import pool_stale_leads
    from tests.support.jobs import drain
    jobs = [
        ("ladder", lambda: run_ladder(TODAY.isoformat())),
        ("pool", lambda: pool_stale_leads(TODAY.isoformat())),
        ("holds", release_expired_holds),
        ("letters", enqueue_pending),
    ]
    for name, job in jobs:
        job()
        drain(app)
        first = _state(db)
        job()
        drain(app)
        assert _state(db) == first, f"the {name} job changed something when run again"
    assert db.session.scalar(select(Subscription.status)) == "forfeited"  # the ladder did run


def test_with_redis_down_the_app_works_and_the_sweep_sends_what_waited_once_it_is_back(app, db, deal):
    """The web app on a Redis nobody listens to: pages and sign-in work, asking for a document
    says the queue is unreachable and keeps the request; the sweep renders it once Redis is back."""
    from app import create_app
    from jobs.documents import enqueue_pending
    from tests.support.jobs import drain

    down = create_app({**_config(app.config["SQLALCHEMY_DATABASE_URI"]), "REDIS_URL": "redis://127.0.0.1:1/0"})
    down.test_client_class = FreshContextClient
    client = down.test_client()
    # Each request in its own context, as in production.
    token = csrf_token(client)
    signed_in = client.post("/login", data={"username": "zhao", "password": TEST_PASSWORD,
                                            "csrf_token": token})
    assert signed_in.status_code == 302
    for path in ("/admin/", "/admin/subscription/", "/admin/document/", "/admin/document_batch/",
                 "/admin/export/", "/admin/payment/"):
        assert client.get(path).status_code == 200, path
    token = csrf_token(client, "/admin/payment/")
    payment = db.session.scalar(select(Payment.id))
    asked = client.post("/admin/document/request/", data={"csrf_token": token, "kind": "receipt",
                                                          "subject_id": str(payment)},
                        follow_redirects=True)
    assert asked.status_code == 200, [(r.status_code, r.headers.get("Location")) for r in asked.history]
    assert "文档已登记，但任务队列暂时无法连接；队列恢复后将自动生成。" in asked.get_data(as_text=True)
    db.session.expire_all()
    [waiting] = db.session.scalars(select(Document)).all()
    assert waiting.status == "queued"
    # Redis is back: the periodic sweep sends it, a worker renders it.
    down.config["REDIS_URL"] = app.config["REDIS_URL"]  # the test's Redis, or embedded mode
    with down.app_context():
        assert enqueue_pending() == 1
    drain(app)
    db.session.expire_all()
    assert db.session.get(Document, waiting.id).status == "done"
