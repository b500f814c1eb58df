"""Issue 19, items 17 and 18: English that is complete — notifications rendered in the reader's
language, exports in the requester's, and a first visit that honours the browser's languages."""
from __future__ import annotations

import contextlib

from tests.conftest import csrf_token


# --- item 18: Accept-Language on a first visit, the cookie after ---------------------------------

def test_issue19_18_a_first_visit_asking_for_english_reads_english(client):
    page = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(as_text=True)
    assert '<html lang="en">' in page and "Sign in" in page and "登录" not in page


def test_issue19_18_a_first_visit_asking_for_chinese_reads_chinese(client):
    for header in ("zh-CN,zh;q=0.9,en;q=0.8", "zh-TW", "en-GB;q=0.5,zh;q=0.9"):
        page = client.get("/login", headers={"Accept-Language": header}).get_data(as_text=True)
        assert '<html lang="zh-CN">' in page and "登录" in page, header


def test_issue19_18_the_first_language_asked_decides_whatever_its_subtags(client):
    """Tags of three parts ("zh-Hans-CN", as some browsers send) read by their language: before,
    "zh-Hans-CN,en;q=0.5" read English and "en-GB-oxendict,zh;q=0.5" Chinese. Odd headers: no 500."""
    for header, lang in (("zh-Hans-CN,en;q=0.5", "zh-CN"), ("zh-Hans,en;q=0.5", "zh-CN"),
                         ("zh-Hant-TW,en;q=0.1", "zh-CN"), ("en-GB-oxendict,zh;q=0.5", "en"),
                         ("*", "zh-CN"), ("garbage;;;q=x", "zh-CN"), (",,,", "zh-CN"), ("en;q=0,zh;q=0.1", "zh-CN")):
        response = client.get("/login", headers={"Accept-Language": header})
        assert response.status_code == 200 and f'<html lang="{lang}">' in response.get_data(as_text=True), header


def test_issue19_18_a_browser_asking_for_neither_language_reads_chinese(client):
    for header in ("fr-FR,de;q=0.8", "", None):
        headers = {"Accept-Language": header} if header is not None else {}
        page = client.get("/login", headers=headers).get_data(as_text=True)
        assert '<html lang="zh-CN">' in page and "登录" in page, header


def test_issue19_18_once_picked_the_cookie_decides_over_the_browser(client):
    token = csrf_token(client)
    client.post("/language", data={"lang": "zh_Hans_CN", "next": "/login", "csrf_token": token})
    page = client.get("/login", headers={"Accept-Language": "en-US,en"}).get_data(as_text=True)
    assert "登录" in page and "Sign in" not in page
    token = csrf_token(client)
    client.post("/language", data={"lang": "en", "next": "/login", "csrf_token": token})
    page = client.get("/login", headers={"Accept-Language": "zh-CN,zh"}).get_data(as_text=True)
    assert "Sign in" in page and "登录" not in page


# --- item 17: notifications in the reader's language ---------------------------------------------

@contextlib.contextmanager
def _in(app, lang):
    """A request in `lang` (its cookie), as a reader or a writer would make it: an app context of
    its own, as each real request has (Flask-Babel keeps the locale found on it)."""
    with app.app_context(), app.test_request_context(headers={"Cookie": f"lang={lang}"}):
        yield


def test_issue19_17_a_notification_written_in_chinese_reads_english_for_an_english_reader(app, db, make_user, client, auth):
    from sqlalchemy import select

    from models import Notification
    from models.leads import assign_leads
    from tests import factories as f
    manager = make_user("sales_manager", username="boss")  # display name "Boss"
    agent = make_user("agent", username="li")
    lead = f.lead(db.session, owner=None, registered_by=manager)
    db.session.commit()
    with _in(app, "zh_Hans_CN"):  # the manager works in Chinese
        assign_leads(db.session, manager, [lead.id], agent.id)
        db.session.commit()
    note = db.session.scalar(select(Notification).where(Notification.kind == "lead_assigned"))
    assert note.params == {"by": "Boss", "n": 1}  # the values, rendered for each reader; the office's
    assert note.message == "Boss 给您分配了 1 位客户。"  # text beside them for readers of the table alone
    with _in(app, "en"):
        assert note.text == "Boss assigned 1 customer to you."
    with _in(app, "zh_Hans_CN"):
        assert note.text == "Boss 给您分配了 1 位客户。"
    client.set_cookie("lang", "en", domain="localhost")
    auth.login("li")
    for page in ("/admin/", "/admin/notification/"):
        html = client.get(page).get_data(as_text=True)
        assert "Boss assigned 1 customer to you." in html and "给您分配" not in html, page


def test_issue19_17_a_notification_written_in_english_reads_chinese_for_a_chinese_reader(app, db, deal, client, auth):
    """The ladder's forfeit, run from an English page (or a job, with no request at all), tells the
    agent, the manager and finance; each reads it in their own language, values nested and all."""
    import datetime as dt

    from sqlalchemy import select

    from models import Notification
    from models.ladder import run_ladder
    with _in(app, "en"):
        assert run_ladder(db.session, DUE + dt.timedelta(days=15))["forfeit"] == 1
    notes = {n.user_id: n for n in db.session.scalars(select(Notification).where(
        Notification.kind.in_(("ladder_forfeit", "settlement_due"))))}
    number = deal["sub"].number
    with _in(app, "zh_Hans_CN"):
        agent_text = notes[deal["agent"].id].text
        finance_text = notes[deal["finance"].id].text
    assert agent_text.startswith(f"挞定：{number}（") and "款项逾期 15 天未付清" in agent_text
    assert finance_text.startswith("挞定待结算：") and "已收 ¥50,000.00" in finance_text
    with _in(app, "en"):
        assert notes[deal["agent"].id].text.startswith(f"Forfeited: {number} (")
        assert "¥50,000.00 received" in notes[deal["finance"].id].text
    auth.login("li")  # the agent's pages, in Chinese (no language chosen, no Accept-Language)
    html = client.get("/admin/notification/").get_data(as_text=True)
    assert agent_text in html and "Forfeited" not in html


def test_issue19_17_a_notification_written_before_keeps_its_text(app, db, make_user):
    from models import Notification
    agent = make_user("agent", username="li")
    old = Notification(user_id=agent.id, kind="lead_assigned", message="王经理 给您分配了 3 位客户。")
    db.session.add(old)
    db.session.commit()
    with _in(app, "en"):
        assert old.text == "王经理 给您分配了 3 位客户。"  # shown as it was written


def test_issue19_4_17_notification_amounts_by_the_one_money_writer_and_odd_rows_never_500(app, db, make_user, client, auth):
    """A negative amount read "¥-5.00" (a writer of its own); an amount that is no number, or params
    that are no mapping, raised (InvalidOperation, AttributeError) and the notification list was a 500."""
    from models import Notification
    agent = make_user("agent", username="li")
    rows = [Notification(user_id=agent.id, kind="price_decided", params={"_t": "price_decided.approved", "no": "RG1",
                                                                       "price": "-5"}),
            Notification(user_id=agent.id, kind="price_decided", params={"_t": "price_decided.approved", "no": "RG2",
                                                                       "price": "<b>x</b>"}),
            Notification(user_id=agent.id, kind="kind_removed", params=["no", "mapping"], message=""),
            Notification(user_id=agent.id, kind="lead_assigned", params={"by": "<script>alert(1)</script>"})]
    db.session.add_all(rows)
    db.session.commit()
    with _in(app, "en"):
        assert rows[0].text == "Price approval: RG1 at -¥5.00 is approved."
        assert rows[1].text == "Price approval: RG2 at <b>x</b> is approved."
        assert rows[2].text == "kind_removed" and rows[3].text == "lead_assigned"
    auth.login("li")
    response = client.get("/admin/notification/")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "-¥5.00" in page and "<b>x</b>" not in page and "<script>alert" not in page


def test_issue19_17_a_notifications_values_are_masked_when_written(app, db, make_user):
    from sqlalchemy import select

    from models import Notification
    from models.notifications import notify
    agent = make_user("agent", username="li")
    notify(db.session, [agent.id], "follow_up_feedback",
           {"by": "王经理", "feedback": "客户电话 13800138000，身份证 110101199003074573"})
    db.session.commit()
    note = db.session.scalar(select(Notification))
    stored = str(note.params)
    assert "13800138000" not in stored and "110101199003074573" not in stored
    assert "138****8000" in stored and "110***********4573" in stored


# --- item 17: exports in the requester's language ------------------------------------------------

import datetime as _dt  # noqa: E402

import pytest  # noqa: E402

DUE = _dt.date(2026, 11, 26)


@pytest.fixture
def deal(make_deal):
    return make_deal(price="1000000.00", method="one_off", today=DUE - _dt.timedelta(days=7),
                     staff={"control": ("sales_control", None), "finance": ("finance", "finance"),
                            "manager": ("sales_manager", "manager"), "vp": ("vp", "vp")})


def test_issue19_17_a_finance_export_in_english_has_english_headers_and_file_name(app, db, deal, client, auth):
    import csv
    import io
    client.set_cookie("lang", "en", domain="localhost")
    auth.login("finance")
    for fmt in ("csv", "xlsx"):
        response = client.post("/admin/finance_export/run", data={
            "list": "payments", "format": fmt, "csrf_token": auth.csrf("/admin/finance_export/")})
        assert response.status_code == 200
        disposition = response.headers["Content-Disposition"]
        assert "Payments%20received-" in disposition or "Payments received-" in disposition, disposition
        if fmt == "csv":
            rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
        else:
            import openpyxl
            book = openpyxl.load_workbook(io.BytesIO(response.data))
            assert book.sheetnames == ["Rows"]
            rows = [list(r) for r in book.active.iter_rows(values_only=True)]
        assert rows[0][:7] == ["Receipt no.", "Project", "Subscription no.", "Customer", "Unit", "Paid on",
                               "Amount (yuan)"]
        assert rows[1][7] == "Bank transfer" or not _has_cjk(rows[1][7])  # the channel's label
        assert rows[-1][0] == "Total (1 row)"
        assert not any(_has_cjk(str(cell)) for cell in rows[0] + rows[-1])


def _has_cjk(text) -> bool:
    import re
    return bool(re.search(r"[\u4e00-\u9fff]", text or ""))


def test_issue19_17_the_monthly_review_xlsx_in_english(app, db, deal, client, auth):
    import io

    import openpyxl
    client.set_cookie("lang", "en", domain="localhost")
    auth.login("vp")
    response = client.get("/admin/sales_target/review.xlsx?month=2026-11")
    assert response.status_code == 200
    assert 'filename="Monthly review-2026-11.xlsx"' in response.headers["Content-Disposition"]
    rows = list(openpyxl.load_workbook(io.BytesIO(response.data)).active.iter_rows(values_only=True))
    assert rows[0][0].startswith("Monthly review 2026-11 (2026-11-01 to 2026-11-30)")
    assert rows[2][:4] == ("Agent", "Subscriptions target (units)", "Subscriptions done (units)", "Achieved %")
    assert rows[-1][0] == "Total"
    assert not any(_has_cjk(str(cell)) for row in rows[:3] + rows[-1:] for cell in row if cell)


def test_issue19_17_a_background_export_asked_in_english_is_written_in_english_by_a_worker(app, db, deal):
    """The worker has no request (nor cookie): it writes in the language kept on the export's row."""
    import csv
    import io

    from flask import has_request_context

    from jobs.exports import run_export
    from models import Export
    from models.exports import chunks, request_export
    with _in(app, "en"):
        export_id = request_export(db.session, db.session.merge(deal["finance"]), "payments", "csv", {}, 1).id
        db.session.commit()
    export = db.session.get(Export, export_id)
    assert export.locale == "en" and export.file.startswith("Payments received-")
    assert not has_request_context()
    assert run_export(export_id)["rows"] == 1
    data = b"".join(chunks(db.session, export_id)).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(data)))
    assert rows[0][0] == "Receipt no." and rows[-1][0] == "Total (1 row)"
    with _in(app, "zh_Hans_CN"):  # and one asked in Chinese stays Chinese
        chinese = request_export(db.session, db.session.merge(deal["finance"]), "payments", "csv", {}, 1).id
        db.session.commit()
    run_export(chinese)
    rows = list(csv.reader(io.StringIO(b"".join(chunks(db.session, chinese)).decode("utf-8-sig"))))
    assert rows[0][0] == "收据编号" and rows[-1][0] == "合计（1 行）"
    assert db.session.get(Export, chinese).file.startswith("收款明细-")


def test_issue19_17_the_export_grid_names_an_exports_filters_in_the_readers_language(app, db, deal, client, auth):
    from models.exports import request_export
    request_export(db.session, deal["finance"], "payments", "csv",
                   {"method": "instalments", "date_from": "2026-11-01", "status": "reversal"}, 1)
    db.session.commit()
    auth.login("finance")
    html = client.get("/admin/export/").get_data(as_text=True)
    assert "付款方式: 分期付款" in html and "开始日期: 2026-11-01" in html and "method=instalments" not in html
    client.set_cookie("lang", "en", domain="localhost")
    html = client.get("/admin/export/").get_data(as_text=True)
    assert "Payment method: Instalments" in html and "The start date: 2026-11-01" in html
    import re
    [cell] = re.findall(r'<td class="col-filters">(.*?)</td>', html, re.S)
    assert cell.strip() == "Payment method: Instalments; The start date: 2026-11-01; Status: Reversals"


def test_issue19_17_a_grid_export_is_named_and_headed_in_the_readers_language(app, db, deal, client, auth):
    import csv
    import io
    from urllib.parse import quote
    auth.login("finance")
    response = client.get("/admin/payment/export/csv/")
    assert f"filename*=UTF-8''{quote('收款记录')}_" in response.headers["Content-Disposition"]
    assert "收据" in response.get_data(as_text=True).splitlines()[0]
    client.set_cookie("lang", "en", domain="localhost")
    response = client.get("/admin/payment/export/csv/")
    disposition = response.headers["Content-Disposition"]
    assert 'filename="Payments_' in disposition and "filename*=UTF-8''Payments_" in disposition
    headers = next(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert headers and not any(_has_cjk(h) for h in headers), headers
