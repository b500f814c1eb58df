"""Finance exports (R-PAY-1, R-PAY-3): CSV and XLSX with Chinese headers, real numbers and dates,
a totals row, neutralised formulas, role scoping, clear refusals, audit rows, background jobs."""
from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import openpyxl
import pytest
from sqlalchemy import select

from models import Audit, Export, Instalment, Payment
from models.payments import record_payment
from tests import factories as f

TODAY = dt.date(2026, 11, 26)


@pytest.fixture
def office(db, make_user):
    """Agent li's active deal (deposit 50,000 + one payment of 100,000) and agent zhao's deal with
    a customer whose name a spreadsheet would run as a formula."""
    deal = f.active_deal(db.session, make_user, price="1500000.00", payment_method="instalments",
                         today=TODAY, staff={"control": ("sales_control", None),
                                             "finance": ("finance", "finance"),
                                             "manager": ("sales_manager", "manager"),
                                             "lawyer": ("lawyer", "lawyer")})
    record_payment(db.session, deal["finance"], deal["sub"].id, amount="100000", paid_on=TODAY,
                   channel="bank_transfer", bank_ref="=HYPERLINK(\"http://x\")", today=TODAY)
    zhao = make_user("agent", username="zhao")
    lead = f.lead(db.session, owner=zhao, project_=deal["project"], name="=1+2")
    sub = f.subscription(db.session, zhao, lead_=lead, unit_=f.unit(db.session, deal["unit"].building),
                         customer_name="@SUM(A1)")
    line = f.instalment(db.session, sub, due_on=TODAY - dt.timedelta(days=10))  # its plan while a draft (R-CHG-2)
    sub.status = "active"
    db.session.flush()
    f.payment(db.session, line, deal["finance"], amount=Decimal("7000.00"), paid_on=TODAY)
    db.session.commit()
    return {**deal, "zhao": zhao, "zhao_sub": sub}


def _post(client, auth, **form):
    data = {"list": "payments", "format": "csv", "csrf_token": auth.csrf("/admin/finance_export/"), **form}
    return client.post("/admin/finance_export/run", data=data)


def _csv(response):
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    text = response.data.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_a_payments_csv_has_chinese_headers_numbers_dates_and_a_totals_row(app, db, office, client, auth):
    auth.login("finance")
    rows = _csv(_post(client, auth))
    assert rows[0][:7] == ["收据编号", "项目", "认购书编号", "客户", "房号", "收款日期", "金额（元）"]
    body, total = rows[1:-1], rows[-1]
    assert len(body) == 3
    assert sorted(r[6] for r in body) == ["100000.00", "50000.00", "7000.00"]  # numbers, not "¥…"
    assert all(r[5] == "2026-11-26" for r in body)  # ISO dates
    assert total[0] == "合计（3 行）" and Decimal(total[6]) == Decimal("157000.00")


def test_formulas_are_neutralised_in_csv_and_xlsx(app, db, office, client, auth):
    auth.login("finance")
    rows = _csv(_post(client, auth))
    cells = [cell for row in rows for cell in row]
    assert "'@SUM(A1)" in cells and "'=HYPERLINK(\"http://x\")" in cells
    assert not any(cell.startswith(("=", "+", "@")) for cell in cells)
    book = openpyxl.load_workbook(io.BytesIO(_post(client, auth, format="xlsx").data))
    values = [c.value for row in book.active.iter_rows() for c in row if isinstance(c.value, str)]
    assert "'@SUM(A1)" in values and not any(v.startswith(("=", "+", "@")) for v in values)
    assert all(c.data_type != "f" for row in book.active.iter_rows() for c in row)  # no formulas


def test_an_xlsx_export_has_real_numbers_and_dates(app, db, office, client, auth):
    auth.login("finance")
    response = _post(client, auth, list="instalments", format="xlsx")
    assert response.status_code == 200 and response.mimetype.endswith("spreadsheetml.sheet")
    sheet = openpyxl.load_workbook(io.BytesIO(response.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("项目", "认购书编号", "客户") and rows[0][9] == "应付金额（元）"
    body = rows[1:-1]
    assert all(isinstance(r[7], dt.datetime) for r in body)  # a date cell, not text
    assert all(isinstance(r[9], (int, float)) for r in body)
    due = sum(Decimal(str(r[9])) for r in body)
    assert rows[-1][0].startswith("合计") and Decimal(str(rows[-1][9])) == due
    assert due == sum(db.session.scalars(select(Instalment.amount_due)))


def test_an_agent_exports_only_own_customers(app, db, office, client, auth):
    auth.login("zhao")
    rows = _csv(_post(client, auth))
    assert len(rows) == 3 and rows[1][3] == "'@SUM(A1)" and rows[1][6] == "7000.00"
    rows = _csv(_post(client, auth, list="instalments"))
    assert [r[1] for r in rows[1:-1]] == [office["zhao_sub"].number]


@pytest.mark.parametrize("form, message", [
    ({"date_from": "2026-02-30"}, "不是"),                       # no such day
    ({"date_from": "2026-12-01", "date_to": "2026-11-01"}, "晚于"),  # start after end
    ({"date_from": "1899-01-01"}, "2000"),                       # out of range
    ({"project": "999999"}, "没有这个项目"),
    ({"project": "1 OR 1=1"}, "没有这个项目"),
    ({"method": "barter"}, "付款方式"),
    ({"overdue": "1"}, "逾期"),                                   # payments are never overdue
    ({"format": "pdf"}, "CSV"),
    ({"list": "users"}, "清单"),
])
def test_impossible_filters_are_refused_with_a_clear_message(app, db, office, client, auth, form, message):
    auth.login("finance")
    response = _post(client, auth, **form)
    assert response.status_code == 302 and "/admin/finance_export/" in response.headers["Location"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert message in page, page[page.find("alert"):page.find("alert") + 300]
    assert db.session.scalar(select(Audit.id).where(Audit.entity == "export")) is None


def test_a_role_without_export_rights_is_told_so(app, db, office, client, auth):
    auth.login("lawyer")
    response = _post(client, auth)
    assert response.status_code == 403 and "不允许" in response.get_data(as_text=True)
    assert client.get("/admin/finance_export/").status_code == 403


def test_every_export_writes_an_audit_row_with_the_filter_and_the_count(app, db, office, client, auth):
    auth.login("finance")
    _post(client, auth, method="instalments", date_from="2026-11-01")
    row = db.session.scalar(select(Audit).where(Audit.entity == "export"))
    assert row.actor_id == office["finance"].id and row.action == "export"
    assert row.changes["rows"] == 2 and row.changes["list"] == "payments"
    assert row.changes["filters"] == {"date_from": "2026-11-01", "method": "instalments"}
    client.get("/admin/payment/export/csv/")  # the grids' own export too
    grid = db.session.scalars(select(Audit).where(Audit.entity == "export").order_by(Audit.id)).all()[-1]
    assert grid.changes["list"] == "payment" and grid.changes["rows"] == 3


def _run_export_jobs(app):
    if app.config["REDIS_URL"]:
        from rq import SimpleWorker

        from jobs.queue import get_queue
        queue = get_queue("exports")  # this instance's queue (prefixed)
        SimpleWorker([queue], connection=queue.connection).work(burst=True)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_large_export_runs_as_a_job_and_downloads_from_its_chunks(app, db, office, client, auth,
                                                                    monkeypatch, fmt):
    import admin.exports
    import models.exports
    monkeypatch.setattr(admin.exports, "DIRECT_LIMIT", 1)
    monkeypatch.setattr(models.exports, "CHUNK", 300)  # several chunks even for a small file
    auth.login("finance")
    direct = _post(client, auth, format=fmt, list="instalments")  # 6 rows > 1: a job
    assert direct.status_code == 302 and "/admin/export/" in direct.headers["Location"]
    _run_export_jobs(app)
    export = db.session.scalar(select(Export))
    db.session.refresh(export)
    assert export.status == "done" and export.rows == 6 and export.total == 6, export.error
    listing = client.get("/admin/export/").get_data(as_text=True)
    assert f"/admin/export/download/{export.id}" in listing
    response = client.get(f"/admin/export/download/{export.id}")
    assert response.status_code == 200 and len(response.data) == export.size > 600
    if fmt == "csv":
        assert response.data.decode("utf-8-sig").splitlines()[0].startswith("项目,认购书编号")
    else:
        assert openpyxl.load_workbook(io.BytesIO(response.data)).active["A1"].value == "项目"
    audit = db.session.scalars(select(Audit).where(Audit.entity == "export", Audit.action == "export")).all()
    assert [a.changes["rows"] for a in audit] == [6]
    auth.logout()
    auth.login("zhao")  # someone else's export: not even its address
    assert client.get(f"/admin/export/download/{export.id}").status_code == 404


def test_an_export_job_run_twice_writes_its_file_once(app, db, office):
    from jobs.exports import run_export
    from models.exports import request_export
    export = request_export(db.session, office["finance"], "payments", "csv", {}, 3)
    db.session.commit()
    assert run_export(export.id)["rows"] == 3
    assert run_export(export.id) == {"skipped": True}
    from models import ExportChunk
    assert db.session.scalar(select(ExportChunk.seq).where(ExportChunk.export_id == export.id)) == 0
    assert len(db.session.scalars(select(ExportChunk.seq)).all()) == 1
    actions = list(db.session.scalars(select(Audit.action).where(
        Audit.entity == "export", Audit.entity_id == str(export.id)).order_by(Audit.id)))
    assert actions == ["request_export", "export_started", "export_done", "export"]


def test_reversals_and_receipts_filter_apart(app, db, office, client, auth):
    from models.payments import reverse_payment
    payment = db.session.scalar(select(Payment).where(Payment.amount == Decimal("100000.00")))
    reverse_payment(db.session, office["finance"], payment.id, reason="录错金额", today=TODAY)
    db.session.commit()
    auth.login("finance")
    reversals = _csv(_post(client, auth, status="reversal"))[1:-1]
    assert len(reversals) == 1 and reversals[0][6] == "-100000.00" and reversals[0][11] == payment.receipt_no
    assert len(_csv(_post(client, auth, status="receipt"))[1:-1]) == 3


def test_the_payment_plan_grid_filters_overdue_lines_and_projects(app, db, office, client, auth):
    view = next(v for v in app.extensions["admin"][0]._views if getattr(v, "endpoint", "") == "instalment")
    from admin.money import OverdueFilter
    overdue = next(i for i, flt in enumerate(view._filters) if isinstance(flt, OverdueFilter))
    auth.login("finance")
    page = client.get(f"/admin/instalment/?flt0_{overdue}=1").get_data(as_text=True)
    assert office["zhao_sub"].number in page and office["sub"].number not in page  # only zhao's line is late
    page = client.get(f"/admin/instalment/?flt0_{overdue}=0").get_data(as_text=True)
    assert office["sub"].number in page


def test_the_project_and_date_filters_select_rows(app, db, office, client, auth):
    other = f.project(db.session, code="OTHER")
    db.session.commit()
    auth.login("finance")
    assert len(_csv(_post(client, auth, project=str(office["project"].id)))[1:-1]) == 3
    assert len(_csv(_post(client, auth, project=str(other.id)))[1:-1]) == 0
    assert len(_csv(_post(client, auth, date_from="2026-11-27"))[1:-1]) == 0
    plan = _csv(_post(client, auth, list="instalments", date_to=TODAY.isoformat()))[1:-1]
    assert plan and all(row[7] <= TODAY.isoformat() for row in plan)


# --- issue 18, item 6: exports read after the request's session is closed, as in production ------

def _read_after_the_session_is_closed(db, response) -> bytes:
    """The body of a streamed (unbuffered) response, read only once the request is over and every
    session is closed: a stream that still needs the ORM's rows fails here, as in production."""
    from sqlalchemy.orm import close_all_sessions
    db.session.remove()
    close_all_sessions()
    try:
        return response.get_data()
    finally:
        response.close()


def _count(body: bytes, fmt: str) -> int:
    """Data rows of a CSV or XLSX file (its header row not counted); it must parse."""
    if fmt == "csv":
        return len(list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))) - 1
    return openpyxl.load_workbook(io.BytesIO(body)).active.max_row - 1


def _last_export_audit(db):
    db.session.remove()
    return db.session.scalars(select(Audit).where(Audit.entity == "export", Audit.action == "export")
                              .order_by(Audit.id.desc())).first().changes


def test_issue18_6_every_grids_export_streams_whole_after_the_session_is_closed(app, db, office, client, auth,
                                                                                 make_user):
    from flask_admin.model import BaseModelView
    from flask_login import login_user
    admin = make_user("admin", username="root")
    auth.login("root")
    views = [v for a in app.extensions["admin"] for v in a._views if isinstance(v, BaseModelView)]
    exported = []
    def rows_seen(view):
        with app.test_request_context():
            login_user(db.session.get(type(admin), admin.id))
            return view.get_count_query().scalar() if view.can_export else None

    for view in views:
        if rows_seen(view) is None:
            continue
        for fmt in view.export_types:
            expected = rows_seen(view)  # the audit trail grows by each export
            response = client.get(f"/admin/{view.endpoint}/export/{fmt}/", buffered=False)
            assert response.status_code == 200, (view.endpoint, fmt)
            body = _read_after_the_session_is_closed(db, response)
            assert _count(body, fmt) == expected, (view.endpoint, fmt)
            audit = _last_export_audit(db)
            assert (audit["list"], audit["format"], audit["rows"]) == (view.entity, fmt, expected)
            exported.append((view.endpoint, fmt, expected))
    assert len(exported) >= 30 and sum(n for _, _, n in exported) > 100  # every exportable grid, with rows
    # and the finance exports' direct path (models/exports.py writes the file before it is sent)
    for fmt in ("csv", "xlsx"):
        data = {"list": "payments", "format": fmt, "csrf_token": auth.csrf("/admin/finance_export/")}
        response = client.post("/admin/finance_export/run", data=data, buffered=False)
        assert response.status_code == 200
        body = _read_after_the_session_is_closed(db, response)
        assert _count(body, fmt) == 3 + 1  # three payments and the totals row
        assert _last_export_audit(db)["rows"] == 3


def test_issue18_9_a_failed_export_is_run_again_by_its_retry_button_once_and_only_for_whom_may(
        app, db, office, client, auth):
    """The retry button of a failed export (given up after its tries): the owner's post puts it
    back to the queue and it runs; a second post (a double click) changes nothing; another
    agent's post is refused and leaves it failed."""
    from sqlalchemy import update

    from jobs.exports import run_export
    from models.exports import request_export
    export = request_export(db.session, office["finance"], "payments", "csv", {}, 3)
    db.session.commit()
    db.session.execute(update(Export).where(Export.id == export.id).values(
        status="failed", attempts=3, error="已中断 3 次"))
    db.session.commit()
    auth.login("zhao")  # an agent: not his export
    refused = client.post(f"/admin/export/retry/{export.id}", data={"csrf_token": auth.csrf("/admin/")})
    assert refused.status_code in (302, 403, 404)
    db.session.expire_all()
    assert db.session.get(Export, export.id).status == "failed"
    auth.logout()
    auth.login("finance")
    token = auth.csrf("/admin/export/")
    assert client.post(f"/admin/export/retry/{export.id}", data={"csrf_token": token}).status_code == 302
    _run_export_jobs(app)
    db.session.expire_all()
    done = db.session.get(Export, export.id)
    assert done.status == "done" and done.rows == 3 and done.attempts == 1 and done.error == ""
    assert client.post(f"/admin/export/retry/{export.id}", data={"csrf_token": token}).status_code == 302
    assert run_export(export.id) == {"skipped": True}  # nothing was queued again
    db.session.expire_all()
    assert db.session.get(Export, export.id).status == "done"
    retries = db.session.scalars(select(Audit).where(Audit.entity == "export", Audit.entity_id == str(export.id),
                                                     Audit.action == "retry")).all()
    assert len(retries) == 1 and retries[0].actor_id == office["finance"].id
