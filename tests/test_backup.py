"""Issue 18, item 16: `flask --app app backup` and `restore`, proven by running the app on the copy."""
from __future__ import annotations

import shutil
import sqlite3
import subprocess
import threading

import pytest
from flask_migrate import upgrade
from sqlalchemy import text

from app import create_app
from models import db as _db
from models.users import create_user
from tests import factories as f
from tests.conftest import TEST_PASSWORD, Auth, FreshContextClient, _config, postgres_database

NAMES = ("备份客户甲", "备份客户乙", "备份客户丙")


def _office(app):
    """A manager and three customers, written through the models as the app writes them."""
    with app.app_context():
        manager = create_user(_db.session, "manager1", TEST_PASSWORD, ["sales_manager"], "经理")
        agent = create_user(_db.session, "agent1", TEST_PASSWORD, ["agent"], "顾问")
        project = f.project(_db.session)
        for name in NAMES:
            f.lead(_db.session, owner=agent, project_=project, name=name, registered_by=manager)
        _db.session.commit()
        _db.session.remove()


def _sees_the_office(app):
    """Sign in on the restored copy; the customers grid lists the customers of the backup."""
    app.test_client_class = FreshContextClient
    client = app.test_client()
    assert Auth(client).login("manager1").status_code == 302
    page = client.get("/admin/lead/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert all(name in html for name in NAMES)


def _sqlite_app(path):
    return create_app({**_config(f"sqlite:///{path}"), "REDIS_URL": None})


def test_issue18_backup_while_writing_then_restore_into_a_fresh_instance_and_run_the_app(tmp_path):
    live = tmp_path / "office" / "salesdesk.db"
    live.parent.mkdir()
    app = _sqlite_app(live)
    with app.app_context():
        upgrade()
        _db.engine.dispose()
    _office(app)

    # Another connection writes all the time the backup runs: pairs (n, -n), one transaction each.
    with sqlite3.connect(live) as conn:
        conn.execute("CREATE TABLE probe (k INTEGER NOT NULL)")
    conn.close()
    stop, written, failed = threading.Event(), [], []

    def write():
        writer = sqlite3.connect(live, timeout=30, isolation_level=None)
        try:
            n = 0
            while not stop.is_set():
                n += 1
                writer.execute("BEGIN IMMEDIATE")
                writer.execute("INSERT INTO probe VALUES (?)", (n,))
                writer.execute("INSERT INTO probe VALUES (?)", (-n,))
                writer.execute("COMMIT")
                written.append(n)
        except Exception as exc:  # noqa: BLE001 - reported below
            failed.append(exc)
        finally:
            writer.close()
    thread = threading.Thread(target=write)
    thread.start()
    try:
        for _ in range(1000):
            if len(written) >= 50 or failed:
                break
            stop.wait(0.01)
        before = len(written)
        copy = tmp_path / "backups" / "salesdesk-2026-12-01.db"
        copy.parent.mkdir()
        result = app.test_cli_runner().invoke(args=["backup", "--out", str(copy)])
        for _ in range(1000):  # and goes on writing after it
            if len(written) > before + 50 or failed:
                break
            stop.wait(0.01)
    finally:
        stop.set()
        thread.join()
    assert not failed and before >= 50, failed
    assert result.exit_code == 0, result.output
    assert "integrity checked" in result.output

    backup = sqlite3.connect(copy)
    rows, total = backup.execute("SELECT count(*), coalesce(sum(k), 0) FROM probe").fetchone()
    backup.close()
    assert rows % 2 == 0 and total == 0  # whole transactions only: a consistent snapshot
    assert 2 * before <= rows <= 2 * len(written)  # taken amid the writes
    assert app.test_cli_runner().invoke(args=["backup", "--out", str(copy)]).exit_code != 0  # never overwritten

    restored = tmp_path / "restored-instance" / "salesdesk.db"
    copy_app = _sqlite_app(restored)
    result = copy_app.test_cli_runner().invoke(args=["restore", "--from", str(copy), "--yes"])
    assert result.exit_code == 0, result.output
    _sees_the_office(copy_app)
    with copy_app.app_context():
        _db.engine.dispose()


def test_issue18_restore_keeps_the_database_it_replaces_and_checks_the_backup_first(tmp_path):
    live = tmp_path / "salesdesk.db"
    app = _sqlite_app(live)
    with app.app_context():
        upgrade()
        _db.engine.dispose()
    _office(app)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["backup", "--out", str(tmp_path / "good.db")]).exit_code == 0

    not_a_database = tmp_path / "notes.txt"
    not_a_database.write_text("not a backup")
    foreign = tmp_path / "other-app.db"
    sqlite3.connect(foreign).execute("CREATE TABLE t (x)").connection.close()
    for bad, message in ((not_a_database, "not an SQLite database"), (foreign, "not a Sales Desk database")):
        result = runner.invoke(args=["restore", "--from", str(bad), "--yes"])
        assert result.exit_code != 0 and message in result.output
    assert not list(tmp_path.glob("salesdesk.db.before-restore-*"))  # nothing touched

    with app.app_context():  # a change after the backup; the restore brings the backup back
        _db.session.execute(text("UPDATE lead SET name = '改过的名字'"))
        _db.session.commit()
        _db.session.remove()
    result = runner.invoke(args=["restore", "--from", str(tmp_path / "good.db"), "--yes"])
    assert result.exit_code == 0, result.output
    kept, = tmp_path.glob("salesdesk.db.before-restore-*")
    assert str(kept) in result.output
    assert sqlite3.connect(kept).execute("SELECT DISTINCT name FROM lead").fetchall() == [("改过的名字",)]
    _sees_the_office(app)
    with app.app_context():
        _db.engine.dispose()


@pytest.mark.postgres
def test_issue18_pg_dump_backup_and_pg_restore_round_trip(app, tmp_path):
    """With PostgreSQL, `backup` runs pg_dump -Fc; the README's pg_restore line restores it into a
    new database, and the app runs on it. `restore` itself refuses and says how."""
    assert shutil.which("pg_dump") and shutil.which("pg_restore")
    _office(app)
    dump = tmp_path / "salesdesk.dump"
    result = app.test_cli_runner().invoke(args=["backup", "--out", str(dump)])
    assert result.exit_code == 0, result.output
    assert dump.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format

    refused = app.test_cli_runner().invoke(args=["restore", "--from", str(dump), "--yes"])
    assert refused.exit_code != 0 and "pg_restore --clean --if-exists" in refused.output

    with postgres_database("sd_mig_") as url:
        subprocess.run(["pg_restore", "--clean", "--if-exists", "--no-owner", "-d", url, str(dump)],
                       check=True, capture_output=True)
        copy_app = create_app(_config(url))
        _sees_the_office(copy_app)
        with copy_app.app_context():
            _db.engine.dispose()
