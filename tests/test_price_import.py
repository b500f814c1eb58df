"""Issue 18, item 4: a price list cannot take a web worker down. Uploads have a size limit (a
friendly 413), a price list a row limit found while reading and an XLSX an unpacked-size limit,
and the file is read and applied by a job (progress, then the result), never in the request."""
from __future__ import annotations

import io
import time
import zipfile
from decimal import Decimal

import pytest
from sqlalchemy import func, select

import models.inventory as inventory
from models import Building, PriceListImport, Unit
from models.inventory import MAX_PRICE_LIST_ROWS, PriceListRejected, read_price_list
from tests import factories as f
from tests.conftest import Auth, submission_key
from tests.support.imports import post_price_list, run_jobs, send_price_list

HEADER = "楼盘,楼栋,楼层,房号,户型,建筑面积,单价\n"
GOOD = HEADER + "XJ,3栋,5,501,三室两厅两卫,128.56,12800\nXJ,3栋,5,502,两室两厅一卫,89.32,12500\n"
BAD = HEADER + "XJ,3栋,五,503,两室,89,12000\nXJ,3栋,6,601,两室,八十九,12000\n"


@pytest.fixture
def project(db):
    project = f.project(db.session, code="XJ", name="湘江壹号")
    db.session.commit()
    return project


def _count(db, model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _imports(db):
    db.session.expire_all()
    return list(db.session.scalars(select(PriceListImport).order_by(PriceListImport.id)))


def _xlsx(rows: int) -> bytes:
    import xlsxwriter
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"constant_memory": True, "in_memory": True})
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, ["楼盘", "楼栋", "楼层", "房号", "户型", "建筑面积", "单价"])
    for n in range(1, rows + 1):
        sheet.write_row(n, 0, ["XJ", "9栋", 1 + n // 100, str(n), "两室", 89.5, 12000])
    book.close()
    return out.getvalue()


# --- the size of a request --------------------------------------------------------------------

def test_issue18_4_an_oversized_upload_gets_the_friendly_413_page_in_chinese(client, db, login_as):
    login_as("sales_control")
    assert client.application.config["MAX_CONTENT_LENGTH"] == 10 * 1024 * 1024  # the default
    response = post_price_list(client, b"x" * (10 * 1024 * 1024 + 1), "p.csv", key="k" * 32)
    page = response.get_data(as_text=True)
    assert response.status_code == 413
    assert "文件太大" in page and "10 MB" in page and "Request Entity Too Large" not in page
    assert _imports(db) == []


def test_issue18_4_the_upload_limit_is_configured_and_checked(monkeypatch):
    from app import create_app
    from config import ConfigError
    base = {"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"}
    monkeypatch.setenv("SALESDESK_MAX_UPLOAD_MB", "25")
    assert create_app(base).config["MAX_CONTENT_LENGTH"] == 25 * 1024 * 1024
    for wrong in ("ten", "0", "1000", "-5"):
        monkeypatch.setenv("SALESDESK_MAX_UPLOAD_MB", wrong)
        with pytest.raises(ConfigError, match="SALESDESK_MAX_UPLOAD_MB"):
            create_app(base)


# --- the row limit, found while reading ----------------------------------------------------------

@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_issue18_4_a_price_list_over_the_row_limit_is_refused_at_the_first_row_too_many(
        app, monkeypatch, kind):
    extra = 30_000 if kind == "csv" else 2_000  # far more rows than the limit, never read
    total = MAX_PRICE_LIST_ROWS + extra
    content = (HEADER + "".join(f"XJ,9栋,1,{n},两室,89.5,12000\n" for n in range(total))).encode() \
        if kind == "csv" else _xlsx(total)
    pulled = []
    real = inventory._sheet_rows

    def counting(*args):
        for row in real(*args):
            pulled.append(1)
            yield row

    monkeypatch.setattr(inventory, "_sheet_rows", counting)
    started = time.perf_counter()
    with app.test_request_context(headers={"Cookie": "lang=zh_Hans_CN"}):
        with pytest.raises(PriceListRejected) as refused:
            read_price_list(content, f"prices.{kind}")
    # The header and the limit's rows, then the one row too many: no further row was read.
    assert len(pulled) == 1 + MAX_PRICE_LIST_ROWS + 1
    [(line, message)] = refused.value.errors
    assert line == MAX_PRICE_LIST_ROWS + 2 and f"{MAX_PRICE_LIST_ROWS:,}" in message and "超过" in message
    print(f"{kind}: {total:,} rows refused after {len(pulled):,} read in {time.perf_counter() - started:.2f} s")


def test_issue18_4_a_price_list_at_the_row_limit_is_read_whole(app):
    content = (HEADER + "".join(f"XJ,9栋,1,{n},两室,89.5,12000\n" for n in range(MAX_PRICE_LIST_ROWS))).encode()
    with app.test_request_context():
        rows = read_price_list(content, "prices.csv")
    assert len(rows) == MAX_PRICE_LIST_ROWS and rows[-1]["_line"] == MAX_PRICE_LIST_ROWS + 1


# --- a zip bomb --------------------------------------------------------------------------------

def _zip_bomb(unpacked_mb: int = 200) -> bytes:
    """A real workbook plus one member of `unpacked_mb` MB of zeros (a few hundred KB packed)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as bomb:
        with zipfile.ZipFile(io.BytesIO(_xlsx(2))) as real:
            for member in real.infolist():
                bomb.writestr(member.filename, real.read(member.filename))
        with bomb.open("xl/media/padding.xml", "w", force_zip64=True) as member:
            block = b"\0" * (1024 * 1024)
            for _ in range(unpacked_mb):
                member.write(block)
    return out.getvalue()


def test_issue18_4_a_zip_bomb_xlsx_is_refused_before_it_is_opened(app, client, db, login_as, monkeypatch):
    import openpyxl
    bomb = _zip_bomb()
    assert len(bomb) < 1024 * 1024  # small enough to pass the upload limit

    def never(*args, **kwargs):
        raise AssertionError("the workbook was opened")

    monkeypatch.setattr(openpyxl, "load_workbook", never)
    with app.test_request_context():
        with pytest.raises(PriceListRejected) as refused:
            read_price_list(bomb, "prices.xlsx")
    assert "MB" in refused.value.errors[0][1]
    login_as("sales_control")
    response = post_price_list(client, bomb, "prices.xlsx")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "解压后" in page and "未打开" in page
    assert _imports(db) == []  # refused by the request at once: nothing kept, nothing queued


# --- the import is a job ------------------------------------------------------------------------

def test_issue18_4_the_page_shows_the_result_and_the_errors_by_row_and_column(client, db, project, login_as):
    login_as("sales_control")
    page = send_price_list(client, BAD.encode(), "p.csv")
    assert "没有导入" in page or "未导入" in page
    errors = page[page.index("import-errors"):]
    assert "<td>2</td><td>楼层</td><td>楼层必须为整数" in errors, errors[:1500]
    assert "<td>3</td><td>建筑面积</td>" in errors
    [failed] = _imports(db)
    assert failed.status == "failed" and failed.attempts == 1 and failed.finished_at is not None
    assert [row[:2] for row in failed.errors] == [[2, "楼层"], [3, "建筑面积"]]
    assert _count(db, Unit) == 0  # all or nothing
    page = send_price_list(client, GOOD.encode(), "p.csv")
    assert "导入完成：新增房源 2 套，调价 0 套。" in page
    assert _imports(db)[1].status == "done" and _imports(db)[1].total == 2
    assert _count(db, Unit) == 2
    from models import Audit
    trail = dict(db.session.execute(select(Audit.action, Audit.changes).where(Audit.entity == "price_list_import",
                                                                            Audit.action.like("import_%"))).all())
    assert trail["import_failed"]["rows_with_problems"] == 2
    assert trail["import_done"] == {"created": 2, "updated": 0, "rows": 2}


def test_issue18_4_a_csv_saved_by_chinese_excel_in_gb18030_is_imported(client, db, project, login_as):
    """Excel on a Chinese Windows saves "CSV (逗号分隔)" in the ANSI code page (GBK, within
    GB18030), not UTF-8: the office's usual file must not be refused as unreadable."""
    login_as("sales_control")
    page = send_price_list(client, GOOD.encode("gb18030"), "p.csv")
    assert "导入完成：新增房源 2 套，调价 0 套。" in page
    assert _count(db, Unit) == 2
    assert db.session.scalar(select(Unit.layout).where(Unit.number == "501")) == "三室两厅两卫"


def test_issue18_4_a_file_wrong_in_every_row_lists_its_first_thousand_problems(client, db, project, login_as):
    login_as("sales_control")
    page = send_price_list(client, (HEADER + "XJ,3栋,五,1,两室,89,12000\n" * 1500).encode(), "p.csv")
    [failed] = _imports(db)
    assert len(failed.errors) == 1001 and failed.errors[-1][2] == "… 另有 500 行有问题。"
    assert "另有 500 行有问题" in page and page.count("楼层必须为整数") == 1000


def test_issue18_4_errors_are_in_the_language_of_who_sent_the_file(client, db, project, login_as):
    login_as("sales_control")
    client.set_cookie("lang", "en")
    page = send_price_list(client, BAD.encode(), "p.csv")
    assert "the floor must be a whole number" in page
    assert _imports(db)[0].locale == "en"


@pytest.mark.postgres
def test_issue18_4_the_request_keeps_the_file_and_a_worker_process_imports_it(
        app, client, db, project, login_as, monkeypatch, tmp_path):
    """PostgreSQL + Redis: the request stores the file and returns (nothing parsed: the reader
    is not called); a real `rq worker` process reads and applies it, reporting its progress."""
    assert app.config["REDIS_URL"], "the PostgreSQL pass runs with Redis"
    from rq.job import Job

    from jobs.queue import get_connection
    from tests.support.jobs import burst_worker_process
    parsed = []
    monkeypatch.setattr(inventory, "read_price_list", lambda *a, **k: parsed.append(a) or [])
    monkeypatch.setattr(inventory, "import_price_list", lambda *a, **k: parsed.append(a) or {})
    login_as("sales_control")
    rows = 1200
    content = (HEADER + "".join(f"XJ,9栋,{1 + n // 10},{n},两室,89.5,12000\n" for n in range(rows))).encode()
    started = time.perf_counter()
    response = post_price_list(client, content, "big.csv")
    elapsed = time.perf_counter() - started
    assert response.status_code == 302 and parsed == []
    [queued] = _imports(db)
    assert queued.status == "queued" and queued.size == len(content) and queued.job_id
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "data-pending" in page and "排队" in page
    burst_worker_process(app, tmp_path, "default", timeout=300)  # the production command
    [done] = _imports(db)
    assert done.status == "done" and (done.total, done.created, done.updated) == (rows, rows, 0)
    assert _count(db, Unit) == rows and _count(db, Building) == 1
    job = Job.fetch(done.job_id, connection=get_connection())
    from jobs.queue import database_fingerprint
    assert job.is_finished and job.meta == {"done": rows, "total": rows, "db": database_fingerprint()}
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"导入完成：新增房源 {rows} 套" in page and "data-pending" not in page
    print(f"request with a {len(content):,}-byte file returned in {elapsed * 1000:.0f} ms")


@pytest.mark.postgres
def test_issue18_4_the_page_shows_the_progress_of_a_running_import(app, client, db, project, login_as):
    from jobs.queue import get_connection
    from rq.job import Job
    login_as("sales_control")
    response = post_price_list(client, GOOD.encode(), "p.csv")
    [row] = _imports(db)
    row.status, row.total = "running", 4000
    db.session.commit()
    job = Job.fetch(row.job_id, connection=get_connection())
    job.meta.update(done=1500, total=4000)
    job.save_meta()
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "1,500 / 4,000" in page and "width:38%" in page and "data-pending" in page


def test_issue18_4_the_same_form_sent_twice_imports_once(client, db, project, login_as):
    login_as("sales_control")
    key = submission_key(client.get("/admin/unit_import/").get_data(as_text=True))
    first = post_price_list(client, GOOD.encode(), "p.csv", key=key)
    second = post_price_list(client, GOOD.encode(), "p.csv", key=key)
    assert first.status_code == second.status_code == 302
    assert second.headers["Location"] == first.headers["Location"]  # told where the first one is
    run_jobs()
    [row] = _imports(db)
    assert row.status == "done" and _count(db, Unit) == 2


def test_issue18_4_a_job_run_twice_applies_the_file_once(app, client, db, project, login_as):
    from jobs.imports import run_import
    login_as("sales_control")
    post_price_list(client, GOOD.encode(), "p.csv")
    run_jobs()
    [row] = _imports(db)
    assert row.status == "done" and row.attempts == 1
    assert run_import(row.id) == {"skipped": True}  # a repeated job: the claim is gone
    [row] = _imports(db)
    assert row.attempts == 1 and _count(db, Unit) == 2


def test_issue18_4_a_run_that_lost_its_claim_writes_nothing(app, db, project, make_user):
    """A slow first run and a re-queued second one: only the run holding the claim commits."""
    from models.imports import claim_import, finish_import
    from models.inventory import import_price_list
    user = make_user("sales_control")
    row = PriceListImport(filename="p.csv", content=GOOD.encode(), requested_by_id=user.id)
    db.session.add(row)
    db.session.commit()
    first = claim_import(db.session, row.id)
    db.session.execute(PriceListImport.__table__.update().values(status="queued"))  # the sweep
    db.session.commit()
    second = claim_import(db.session, row.id)
    assert (first, second) == (1, 2)
    with app.test_request_context():
        rows = read_price_list(GOOD.encode(), "p.csv")
        import_price_list(db.session, user, rows)
    assert not finish_import(db.session, row.id, first, status="done")
    db.session.rollback()
    assert _count(db, Unit) == 0


def test_issue18_4_the_sweep_requeues_an_import_whose_worker_died_then_gives_up(app, db, project, make_user):
    import datetime as dt

    from jobs.imports import STUCK_AFTER, recover_imports
    from models.base import utcnow
    from models.imports import MAX_ATTEMPTS
    user = make_user("sales_control")
    long_ago = utcnow() - STUCK_AFTER - dt.timedelta(minutes=1)
    died = PriceListImport(filename="p.csv", content=GOOD.encode(), requested_by_id=user.id,
                           status="running", attempts=1, started_at=long_ago)
    again = PriceListImport(filename="q.csv", content=GOOD.encode(), requested_by_id=user.id,
                            status="running", attempts=MAX_ATTEMPTS, started_at=long_ago)
    busy = PriceListImport(filename="r.csv", content=GOOD.encode(), requested_by_id=user.id,
                           status="running", attempts=1, started_at=utcnow())
    db.session.add_all([died, again, busy])
    db.session.commit()
    counts = recover_imports()
    assert counts == {"requeued": 1, "sent": 0, "failed": 1}
    run_jobs()
    died, again, busy = _imports(db)
    assert died.status == "done" and died.attempts == 2 and _count(db, Unit) == 2
    assert again.status == "failed" and "中断" in again.error
    assert busy.status == "running"  # its worker may still be at it


# --- who sees what -----------------------------------------------------------------------------

def test_issue18_4_one_sees_only_ones_own_imports_and_the_administrator_all(client, db, project, make_user,
                                                                            login_as):
    other = make_user("sales_control", username="colleague")
    theirs = PriceListImport(filename="theirs.csv", content=b"x", requested_by_id=other.id, status="done",
                             total=0, created=0, updated=0)
    db.session.add(theirs)
    db.session.commit()
    login_as("sales_control")
    assert client.get(f"/admin/unit_import/{theirs.id}").status_code == 404
    assert "theirs.csv" not in client.get("/admin/unit_import/").get_data(as_text=True)
    Auth(client).logout()
    login_as("admin")
    assert client.get(f"/admin/unit_import/{theirs.id}").status_code == 200
    assert "theirs.csv" in client.get("/admin/unit_import/").get_data(as_text=True)
    Auth(client).logout()
    login_as("agent")
    assert client.get(f"/admin/unit_import/{theirs.id}").status_code == 403


def test_issue18_4_prices_of_an_imported_file_are_as_before(client, db, project, login_as):
    login_as("sales_control")
    send_price_list(client, GOOD.encode(), "p.csv")
    unit = db.session.scalar(select(Unit).where(Unit.number == "501"))
    assert unit.list_price == Decimal("1645568.00")


def test_issue18_4_the_import_sweep_runs_with_the_periodic_jobs(app):
    from rq.cron import CronScheduler

    from jobs.imports import recover_imports
    from jobs.queue import get_connection
    scheduler = CronScheduler(connection=get_connection())
    scheduler.load_config_from_file("jobs/schedule.py")
    sweep = {job.name: job for job in scheduler.get_jobs()}["recover-imports"]
    assert sweep.func is recover_imports and sweep.cron == "*/5 * * * *"


@pytest.mark.postgres
def test_issue18_4_the_sweep_sends_an_import_whose_job_never_reached_redis(app, db, project, make_user):
    """Redis was down when the file was sent: the import waits, queued, and the sweep sends it."""
    import datetime as dt

    from jobs.imports import UNSENT_AFTER, recover_imports
    from models.base import utcnow
    user = make_user("sales_control")
    lost = PriceListImport(filename="p.csv", content=GOOD.encode(), requested_by_id=user.id, job_id="never-queued",
                           created_at=utcnow() - UNSENT_AFTER - dt.timedelta(minutes=1))
    fresh = PriceListImport(filename="q.csv", content=GOOD.encode(), requested_by_id=user.id, job_id="being-sent")
    db.session.add_all([lost, fresh])
    db.session.commit()
    assert recover_imports() == {"requeued": 0, "sent": 1, "failed": 0}
    run_jobs()
    lost, fresh = _imports(db)
    assert lost.status == "done" and lost.job_id != "never-queued" and fresh.status == "queued"
