"""Recovery (issue 18, items 9–13): work a killed worker left is finished or failed with a
reason, an export asked for while Redis is down runs when it is back, two ladder runs queue each
letter once, the supervisor units keep workers and the scheduler running, and two offices sharing
a Redis database never run each other's jobs.

The fault tests use real processes: a Redis server of their own on a spare port (stopped and
started by the test, never the machine's), and `flask --app app worker` processes (rq workers of
jobs.worker.Worker) whose work-horses are killed with SIGKILL in the middle of a job. Jobs are
slowed down by SALESDESK_TEST_JOB_DELAY (seconds, read only by the jobs' fault-test pause).
"""
from __future__ import annotations

import configparser
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from models import Audit, Document, DocumentBatch, Export, db as _db
from models.base import office_today
from tests import factories as f
from tests.conftest import ON_POSTGRES, Auth, FreshContextClient, _config, csrf_token

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TODAY = office_today()


# --- real processes ------------------------------------------------------------------------------

def _wait_for(predicate, timeout=60.0, every=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class RedisServer:
    """A redis-server of the test's own on a spare port (6391–6399), nothing saved to disk."""

    def __init__(self, workdir: Path):
        self.workdir, self.proc = workdir, None
        for port in range(6391, 6400):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) != 0:
                    self.port = port
                    break
        else:
            raise RuntimeError("no spare port in 6391-6399")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        from redis import Redis
        _wait_for(lambda: self._ping(Redis), 20, what="redis-server")

    def _ping(self, Redis):
        try:
            return Redis.from_url(self.url).ping()
        except Exception:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # only the server this test started
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


class WorkerProcess:
    """`flask --app app worker` for an office (its database, its Redis, its instance name)."""

    def __init__(self, database_uri: str, redis_url: str, tmp_path: Path, delay: float | None = None,
                 instance: str | None = None, burst: bool = False):
        env = {k: v for k, v in os.environ.items() if k not in ("SALESDESK_INSTANCE", "SALESDESK_TEST_JOB_DELAY")}
        env.update(DATABASE_URL=database_uri, REDIS_URL=redis_url, SECRET_KEY="worker",
                   SALESDESK_INSTANCE_PATH=str(tmp_path))
        if delay:
            env["SALESDESK_TEST_JOB_DELAY"] = str(delay)
        if instance:
            env["SALESDESK_INSTANCE"] = instance
        self.log = tmp_path / f"worker-{uuid.uuid4().hex[:6]}.log"
        command = [str(BIN / "flask"), "--app", "app", "worker"] + (["--burst"] if burst else [])
        self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log.open("w"),
                                     stderr=subprocess.STDOUT)

    def horse(self) -> int | None:
        """The pid of the work-horse rq forked for the job under way."""
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def kill_horse(self) -> None:
        pid = _wait_for(self.horse, 30, what="a work-horse")
        os.kill(pid, signal.SIGKILL)

    def wait(self, timeout=120) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            horse = self.horse()
            self.proc.kill()
            if horse:
                try:
                    os.kill(horse, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def workers():
    started = []
    yield started
    for worker in started:
        worker.stop()


def _worker(workers, app, redis_server, tmp_path, **options) -> WorkerProcess:
    """A worker process on the app's database and the test's Redis, stopped after the test."""
    worker = WorkerProcess(app.config["SQLALCHEMY_DATABASE_URI"], redis_server.url, tmp_path, **options)
    workers.append(worker)
    return worker


def _reloaded(db, model, id_):
    """The row as the database has it now (the workers change it behind the test's session)."""
    db.session.expire_all()
    return db.session.get(model, id_)


def _document_audits(db, action: str) -> int:
    return db.session.scalar(select(func.count()).select_from(Audit).where(
        Audit.entity == "document", Audit.action == action))


def _office(app, redis_url: str, **extra):
    """The web app of the office under test, on the given Redis (the test's own)."""
    from app import create_app
    office = create_app({**_config(app.config["SQLALCHEMY_DATABASE_URI"]), "REDIS_URL": redis_url, **extra})
    office.test_client_class = FreshContextClient
    return office


def _statuses(ids=None) -> dict[str, int]:
    _db.session.expire_all()
    query = select(Document.status, func.count()).group_by(Document.status)
    if ids is not None:
        query = query.where(Document.id.in_(ids))
    return dict(_db.session.execute(query).all())


def _job_status(office, job_id):
    from rq.job import Job

    from jobs.queue import get_connection
    with office.app_context():
        return Job.fetch(job_id, connection=get_connection()).get_status(refresh=True)


@pytest.fixture
def deal(make_deal):
    return make_deal(price="1500000.00", method="instalments", today=TODAY,
                     staff={"control": ("sales_control", None), "finance": ("finance", "finance"),
                            "manager": ("sales_manager", "manager"), "other": ("agent", "zhao")})


def _agreements(db, deal, n: int, batch: bool = True) -> list[int]:
    """`n` queued documents that render (the deal's subscription agreement), as one batch."""
    group = DocumentBatch(kind="subscription_agreement", total=n, requested_by_id=deal["agent"].id) if batch else None
    docs = [f.document(db.session, deal["agent"], kind="subscription_agreement", subject_id=deal["sub"].id,
                       owner_id=deal["agent"].id, batch=group, title=f"RG {i}") for i in range(n)]
    db.session.commit()
    return [d.id for d in docs]


# --- 9. a killed worker's work is finished, or failed with a reason -------------------------------

@pytest.mark.postgres
def test_issue18_9_a_batch_whose_work_horse_is_killed_mid_render_is_finished_after_the_sweep(
        app, db, deal, redis_server, workers, tmp_path):
    from jobs.documents import enqueue_documents, enqueue_pending
    office = _office(app, redis_server.url)
    ids = _agreements(db, deal, 8)
    with office.app_context():
        [job_id] = enqueue_documents(_db.session, _db.session.scalars(select(Document).where(Document.id.in_(ids))).all())
    first = _worker(workers, app, redis_server, tmp_path, delay=1.5)
    _wait_for(lambda: _statuses(ids).get("done", 0) >= 2 and _statuses(ids).get("running"), 120,
              what="two documents done and one running")
    first.kill_horse()  # SIGKILL in the middle of a render
    _wait_for(lambda: _job_status(office, job_id) == "failed", 60, what="rq to mark the job failed")
    first.stop()
    left = _statuses(ids)
    assert left.get("running") == 1 and left.get("queued", 0) >= 1, left  # the issue: stuck as is

    # The batch page says the job was interrupted instead of animating a bar that never moves.
    client = office.test_client()
    assert Auth(client).login("li").status_code == 302
    page = client.get("/admin/document_batch/").get_data(as_text=True)
    assert "progress-bar-animated" not in page and "有任务被中断" in page

    _worker(workers, app, redis_server, tmp_path)
    with office.app_context():
        assert enqueue_pending() == sum(left.get(s, 0) for s in ("running", "queued"))
    _wait_for(lambda: _statuses(ids) == {"done": 8}, 180, what="every document done")
    db.session.expire_all()
    documents = db.session.scalars(select(Document).where(Document.id.in_(ids))).all()
    assert sorted(d.attempts for d in documents) == [1] * 7 + [2]  # only the interrupted one twice
    # Every start of a render is a claim of a queued document: as many as there were attempts.
    starts = dict(db.session.execute(select(Audit.entity_id, func.count()).where(
        Audit.entity == "document", Audit.action == "render_started").group_by(Audit.entity_id)).all())
    assert {int(k): v for k, v in starts.items()} == {d.id: d.attempts for d in documents}
    page = client.get("/admin/document_batch/").get_data(as_text=True)
    assert "8 / 8" in page and "progress-bar-animated" not in page and "bg-success" in page


@pytest.mark.postgres
def test_issue18_9_a_worker_killed_with_its_work_horse_leaves_nothing_stuck(
        app, db, deal, redis_server, workers, tmp_path):
    """The whole worker dies (machine reset, OOM killer): nobody tells rq the job failed. rq's
    StartedJobRegistry cleanup, run by the sweep, finds the job abandoned once its heartbeat
    expires (about 90 s), and the sweep gives its documents to a live worker."""
    from jobs.documents import enqueue_pending, enqueue_documents
    office = _office(app, redis_server.url)
    ids = _agreements(db, deal, 3)
    with office.app_context():
        [job_id] = enqueue_documents(_db.session, _db.session.scalars(select(Document).where(Document.id.in_(ids))).all())
    dying = _worker(workers, app, redis_server, tmp_path, delay=5)
    _wait_for(lambda: _statuses(ids).get("running"), 90, what="a document running")
    dying.stop()  # SIGKILL to the worker and to its work-horse
    assert _job_status(office, job_id) == "started"  # what rq believes: nobody told it otherwise
    _worker(workers, app, redis_server, tmp_path)

    def swept():
        with office.app_context():
            enqueue_pending()  # the periodic sweep
        return _statuses(ids) == {"done": 3}

    _wait_for(swept, 240, every=5, what="the abandoned job recovered and every document done")
    assert _job_status(office, job_id) == "failed"  # rq's cleanup: AbandonedJobError


@pytest.mark.postgres
def test_issue18_9_two_workers_given_the_same_document_render_it_once(app, db, deal):
    """Two jobs holding one document (a sweep re-sent it while its first job still ran): each
    worker's own session claims it at the same moment; one renders, the other leaves it."""
    from jobs.documents import render_document
    from tests.support.race import race
    [doc_id] = _agreements(db, deal, 1, batch=False)

    def work(job_id):  # each its own session, as a separate work-horse would have
        return lambda session: render_document(session, doc_id, job_id=job_id, before_render=lambda: time.sleep(1))

    results = race(*[work(f"job-{n}") for n in range(2)], app=app, join=120)
    assert results.count("done") == 1 and set(results) <= {"done", "running"}, results
    db.session.expire_all()
    document = db.session.get(Document, doc_id)
    assert document.status == "done" and document.attempts == 1 and document.job_id in ("job-0", "job-1")
    assert _document_audits(db, "render_started") == 1


@pytest.mark.postgres
def test_issue18_9_a_document_interrupted_three_times_fails_with_a_reason_and_a_retry_button(
        app, db, deal, redis_server, workers, tmp_path):
    from jobs.documents import enqueue_documents, enqueue_pending
    from models.document_queue import MAX_ATTEMPTS
    office = _office(app, redis_server.url)
    [doc_id] = _agreements(db, deal, 1, batch=False)
    with office.app_context():
        enqueue_documents(_db.session, [_db.session.get(Document, doc_id)])
    worker = _worker(workers, app, redis_server, tmp_path, delay=2)

    def document():
        return _reloaded(db, Document, doc_id)

    for attempt in range(1, MAX_ATTEMPTS + 1):
        _wait_for(lambda: document().status == "running" and document().attempts == attempt, 90,
                  what=f"render {attempt} started")
        job_id = document().job_id
        worker.kill_horse()
        _wait_for(lambda: _job_status(office, job_id) == "failed", 60, what="the job failed")
        with office.app_context():
            enqueue_pending()
        if attempt < MAX_ATTEMPTS:
            assert document().status in ("queued", "running"), document().error
    failed = document()
    assert failed.status == "failed" and failed.attempts == MAX_ATTEMPTS
    assert failed.error == "已中断 3 次（处理它的进程意外停止），不再自动重试。请点击“重试”再试一次。"

    client = office.test_client()
    auth = Auth(client)
    assert auth.login("zhao").status_code == 302  # another agent: not theirs to retry
    refused = client.post(f"/admin/document/retry/{doc_id}", data={"csrf_token": auth.csrf()})
    assert refused.status_code == 302 and document().status == "failed"
    auth.logout()
    assert auth.login("li").status_code == 302
    page = client.get("/admin/document/").get_data(as_text=True)
    assert "已中断 3 次" in page and f'action="/admin/document/retry/{doc_id}"' in page
    no_token = client.post(f"/admin/document/retry/{doc_id}")
    assert no_token.status_code in (302, 303, 400) and document().status == "failed"  # CSRF refused
    token = auth.csrf()
    assert client.post(f"/admin/document/retry/{doc_id}", data={"csrf_token": token}).status_code == 302
    assert document().status in ("queued", "running") and document().attempts <= 1
    client.post(f"/admin/document/retry/{doc_id}", data={"csrf_token": token})  # again: nothing new
    _wait_for(lambda: document().status == "done", 90, what="the retried document done")
    assert document().attempts == 1
    assert _document_audits(db, "retry") == 1


@pytest.mark.postgres
def test_issue18_9_an_export_whose_work_horse_is_killed_is_run_again_by_the_sweep(
        app, db, deal, redis_server, workers, tmp_path):
    from jobs.exports import enqueue_export
    from jobs.recovery import sweep
    from models.exports import request_export
    office = _office(app, redis_server.url)
    with office.app_context():
        export = request_export(_db.session, deal["finance"], "payments", "csv", {}, 1)
        _db.session.commit()
        export_id = export.id
        job_id = enqueue_export(_db.session, export)
    worker = _worker(workers, app, redis_server, tmp_path, delay=3)

    def current():
        return _reloaded(db, Export, export_id)

    _wait_for(lambda: current().status == "running", 90, what="the export running")
    worker.kill_horse()
    _wait_for(lambda: _job_status(office, job_id) == "failed", 60, what="the job failed")
    assert current().status == "running"  # what the issue saw: stuck at "running" for ever
    client = office.test_client()
    assert Auth(client).login("finance").status_code == 302
    page = client.get("/admin/export/").get_data(as_text=True)
    assert "progress-bar-animated" not in page and "任务被中断" in page
    with office.app_context():
        assert sweep() == {"documents": 0, "exports": 1}
    _wait_for(lambda: current().status == "done", 90, what="the export done")
    assert current().attempts == 2 and current().rows == 1
    download = client.get(f"/admin/export/download/{export_id}")
    assert download.status_code == 200 and "合计（1 行）" in download.get_data().decode("utf-8-sig")


# --- 10. an export asked for while Redis is down runs when it is back ------------------------------

@pytest.mark.postgres
def test_issue18_10_an_export_asked_for_while_redis_is_down_runs_when_it_is_back(
        app, db, deal, redis_server, workers, tmp_path, monkeypatch):
    import admin.exports
    from jobs.recovery import sweep
    monkeypatch.setattr(admin.exports, "DIRECT_LIMIT", 0)  # one payment makes a background export
    office = _office(app, redis_server.url)
    client = office.test_client()
    auth = Auth(client)
    assert auth.login("finance").status_code == 302
    token = csrf_token(client, "/admin/finance_export/")
    redis_server.stop()
    asked = client.post("/admin/finance_export/run", data={"csrf_token": token, "list": "payments",
                                                           "format": "csv"}, follow_redirects=True)
    assert asked.status_code == 200
    assert "导出已登记，但任务队列暂时无法连接；队列恢复后将自动执行。" in asked.get_data(as_text=True)
    db.session.expire_all()
    [export] = db.session.scalars(select(Export)).all()
    assert export.status == "queued" and export.job_id is None
    page = client.get("/admin/export/").get_data(as_text=True)
    assert "正在等待任务队列恢复；恢复后将自动开始。" in page and "progress-bar-animated" not in page
    with office.app_context():
        assert sweep() == {"documents": 0, "exports": 0}  # still down: nothing lost, nothing sent

    redis_server.start()
    with office.app_context():
        assert sweep() == {"documents": 0, "exports": 1}
        assert sweep() == {"documents": 0, "exports": 0}  # sent once
    worker = _worker(workers, app, redis_server, tmp_path, burst=True)
    assert worker.wait() == 0, worker.output()
    db.session.expire_all()
    assert db.session.get(Export, export.id).status == "done"


# --- 11. two ladder runs at once queue each letter once ----------------------------------------------

@pytest.mark.postgres
def test_issue18_11_two_ladder_runs_at_the_same_moment_queue_each_letter_once(app, db, redis_server):
    from rq import Queue

    from jobs.ladder import run_ladder
    from jobs.queue import get_connection, queue_name
    from tests.support.race import race
    letters = [f.document(db.session, None, kind="overdue_warning", subject_id=i, title=f"L{i}").id
               for i in range(1, 241)]
    db.session.commit()
    office = _office(app, redis_server.url)
    results = race(*[lambda session: run_ladder(TODAY.isoformat())] * 2, app=office, join=120)
    assert sorted(r["letters"] for r in results)[1] + sorted(r["letters"] for r in results)[0] == len(letters)
    with office.app_context():
        queue = Queue(queue_name("documents"), connection=get_connection())
        parts = [job.args[0] for job in queue.get_jobs()]
    assert all(parts), "an empty job was queued"
    sent = [i for part in parts for i in part]
    assert sorted(sent) == letters  # every letter exactly once
    db.session.expire_all()
    batches = db.session.execute(select(DocumentBatch.id, DocumentBatch.total,
                                        select(func.count()).where(Document.batch_id == DocumentBatch.id)
                                        .scalar_subquery())).all()
    assert batches and all(total == count > 0 for _, total, count in batches), batches
    assert db.session.scalar(select(func.count()).where(Document.job_id.is_(None))) == 0


# --- 12. the supervisor keeps the web app, the workers and the scheduler running --------------------

UNITS = ROOT / "deploy"


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(UNITS / name)
    return parser


def test_issue18_12_systemd_units_restart_the_web_app_the_workers_and_the_scheduler(app):
    units = {"web": "salesdesk-web.service", "worker": "salesdesk-worker@.service",
             "scheduler": "salesdesk-scheduler.service"}
    commands = {}
    for role, name in units.items():
        unit = _unit(name)
        service = unit["Service"]
        assert service["Restart"] == "always", name
        assert int(service["RestartSec"]) > 0, name
        assert unit["Unit"]["StartLimitIntervalSec"] == "0", name  # never gives up restarting
        assert service["EnvironmentFile"] == "/etc/salesdesk/salesdesk.env"
        assert unit["Install"]["WantedBy"] == "multi-user.target"
        commands[role] = shlex.split(service["ExecStart"])
    # Each command names something that exists in this repository.
    web = commands["web"]
    assert web[0].endswith("/.venv/bin/gunicorn")
    module, factory = web[-1].split(":")
    assert (ROOT / f"{module}.py").exists() and factory == "create_app()"
    worker = commands["worker"]
    assert worker[0].endswith("/.venv/bin/flask") and worker[1:] == ["--app", "app", "worker"]
    assert "worker" in app.cli.list_commands(None)
    scheduler = commands["scheduler"]
    assert scheduler[0].endswith("/.venv/bin/rq") and scheduler[1] == "cron"
    assert (ROOT / scheduler[2]).exists() and scheduler[3:] == ["--url", "${REDIS_URL}"]
    assert "TZ=Asia/Shanghai" in _unit(units["scheduler"])["Service"]["Environment"]
    # The example environment file names every variable the units need.
    example = (UNITS / "salesdesk.env.example").read_text()
    for variable in ("SALESDESK_ENV", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "SALESDESK_INSTANCE"):
        assert re.search(rf"^#?{variable}=", example, re.M), variable
    readme = (ROOT / "README.md").read_text()
    for name in units.values():
        assert name in readme
    assert "flask --app app worker" in readme


def test_issue18_12_systemd_accepts_the_units(tmp_path):
    """systemd's own parser, on the units pointed at this checkout's virtualenv."""
    import shutil
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is needed to check the units")
    for path in UNITS.glob("*.service"):
        text_ = path.read_text().replace("/opt/salesdesk", str(ROOT)).replace(
            "/etc/salesdesk/salesdesk.env", str(UNITS / "salesdesk.env.example"))
        text_ = re.sub(r"^(User|Group)=.*$", "", text_, flags=re.M)
        name = path.name.replace("@.service", "@1.service")
        (tmp_path / name).write_text(text_)
        if "@" in path.name:
            (tmp_path / path.name).write_text(text_)
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *sorted(
        str(p) for p in tmp_path.glob("*.service") if not p.name.endswith("@.service"))],
        capture_output=True, text=True, timeout=60)
    problems = [line for line in result.stderr.splitlines()
                if "salesdesk" in line and "Failed to" not in line or "Unknown" in line or "bad" in line.lower()]
    assert result.returncode == 0 and problems == [], result.stderr


# --- 13. two offices sharing one Redis database never run each other's jobs --------------------------

@pytest.fixture
def second_office(app, database_url):
    """Office B: its own PostgreSQL database (migrated from empty), its own app."""
    from flask_migrate import upgrade

    from app import create_app
    from tests.conftest import postgres_database
    with postgres_database("salesdesk_b_") as url:
        other = create_app(_config(url))
        with other.app_context():
            upgrade()
            _db.engine.dispose()
        yield other
        with other.app_context():
            _db.engine.dispose()


@pytest.mark.postgres
def test_issue18_13_two_offices_sharing_a_redis_database_never_run_each_others_jobs(
        app, db, deal, second_office, redis_server, workers, tmp_path):
    assert ON_POSTGRES
    from jobs.documents import enqueue_documents, enqueue_pending
    from jobs.queue import database_fingerprint, instance_name
    a = _office(app, redis_server.url)
    [mine] = _agreements(db, deal, 1, batch=False)
    b_uri = second_office.config["SQLALCHEMY_DATABASE_URI"]
    with second_office.app_context():  # office B has a document with the same id, of its own
        [theirs] = [f.document(_db.session, None, kind="board", subject_id=1, title="B").id]
        _db.session.commit()
    assert mine == theirs

    def status(office, doc_id):
        with office.app_context():
            return _db.session.scalar(select(Document.status).where(Document.id == doc_id))

    def b_worker(instance=None):
        worker = WorkerProcess(b_uri, redis_server.url, tmp_path, burst=True, instance=instance)
        workers.append(worker)
        assert worker.wait() == 0, worker.output()
        return worker

    # Default names: each office's queues are its own (a hash of its database URL).
    with a.app_context():
        assert instance_name() != instance_name(b_uri)
        enqueue_documents(_db.session, [_db.session.get(Document, mine)])
    b_worker()
    assert status(a, mine) == "queued" and status(second_office, theirs) == "queued"
    a_worker = _worker(workers, app, redis_server, tmp_path, burst=True)
    assert a_worker.wait() == 0, a_worker.output()
    assert status(a, mine) == "done" and status(second_office, theirs) == "queued"

    # Misconfigured: both offices set the same SALESDESK_INSTANCE. B's worker takes A's job off the
    # shared queue, sees another database's fingerprint, and never runs it.
    shared = _office(app, redis_server.url, SALESDESK_INSTANCE="office")
    [again] = _agreements(db, deal, 1, batch=False)
    with shared.app_context():
        enqueue_documents(_db.session, [_db.session.get(Document, again)])
        assert database_fingerprint() != _fingerprint(second_office)
    refused = b_worker("office")
    with second_office.app_context():  # nothing of A's job ran against B's database
        assert _db.session.scalar(select(func.count()).select_from(Document)) == 1
        assert _db.session.scalar(select(func.count()).select_from(Audit).where(
            Audit.action == "render_started")) == 0
    assert status(a, again) == "queued" and status(second_office, theirs) == "queued"
    assert "belongs to database" in refused.output()
    with shared.app_context():  # A's own sweep sends it again; A's own worker renders it
        enqueue_pending()
    a_worker = _worker(workers, app, redis_server, tmp_path, burst=True, instance="office")
    assert a_worker.wait() == 0, a_worker.output()
    assert status(a, again) == "done" and status(second_office, theirs) == "queued"


def _fingerprint(office) -> str:
    from jobs.queue import database_fingerprint
    with office.app_context():
        return database_fingerprint()
