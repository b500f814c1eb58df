"""Chinese PDF documents: fonts that render, rendering jobs, hostile data, who may download.

The checks on the files use poppler (pdffonts, pdftoppm, pdftotext), installed by the test
command, because text extraction alone passes even when every character is an empty box.
"""
from __future__ import annotations

import datetime as dt
import http.server
import subprocess
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

import pdf
from models import Document, DocumentBatch, Instalment, OverdueEvent, Payment, Subscription
from jobs.documents import render_document
from models.documents import document_context, request_documents
from models.payments import record_payment, reverse_payment
from tests import factories as f
from tests.support.rules import raises_rule

TODAY = dt.date(2026, 11, 26)


def run_jobs(app):
    """Embedded mode ran the jobs already; with Redis, a burst worker runs what is queued."""
    if app.config["REDIS_URL"]:
        from rq import SimpleWorker

        from jobs.queue import get_queue
        queue = get_queue("documents")  # this instance's queue (prefixed)
        SimpleWorker([queue], connection=queue.connection).work(burst=True)


@pytest.fixture
def deal(make_deal):
    """An active one-off deal (deposit paid) of agent "li", with finance, a manager, another agent."""
    return make_deal(price="1500000.00", method="instalments", today=TODAY,
                     staff={"control": ("sales_control", None), "finance": ("finance", "finance"),
                            "manager": ("sales_manager", "manager"), "other": ("agent", "zhao"),
                            "archive": ("archive", None), "lawyer": ("lawyer", "lawyer")})


def _deposit_payment(db, sub) -> Payment:
    return db.session.scalar(select(Payment).where(Payment.subscription_id == sub.id))


def _pdf_tool(tool, *args) -> str:
    return subprocess.run([tool, *map(str, args)], check=True, capture_output=True, text=True).stdout


def _png_pages(data: bytes, tmp_path, dpi=40, name="page") -> list[Path]:
    source = tmp_path / f"{name}.pdf"
    source.write_bytes(data)
    subprocess.run(["pdftoppm", "-r", str(dpi), "-gray", "-png", source, tmp_path / name], check=True)
    return sorted(tmp_path.glob(f"{name}-*.png"))


# --- 2. Chinese that renders ------------------------------------------------------------------------

def test_a_receipt_embeds_the_cjk_font_as_a_subset(app, db, deal, tmp_path):
    data = pdf.render("receipt", document_context(db.session, "receipt", _deposit_payment(db, deal["sub"]).id))
    assert data.startswith(b"%PDF")
    path = tmp_path / "receipt.pdf"
    path.write_bytes(data)
    fonts = [line.split() for line in _pdf_tool("pdffonts", path).splitlines()[2:]]
    cjk = [row for row in fonts if "WenQuanYi" in row[0]]
    assert cjk, fonts
    for row in cjk:
        name, emb, sub = row[0], row[-5], row[-4]
        assert "+" in name and emb == "yes" and sub == "yes", row  # subset prefix, embedded
    assert "收款收据" in _pdf_tool("pdftotext", path, "-")


def _glyph_png(text: str, tmp_path, name: str) -> bytes:
    """`text` alone, large, with the documents' own stylesheet and fonts, as a PNG."""
    from weasyprint import HTML
    fonts, css = pdf._font_config_and_css()
    data = HTML(string=f'<p style="font-size:72pt;margin:0">{text}</p>').write_pdf(
        stylesheets=[css], font_config=fonts)
    [page] = _png_pages(data, tmp_path, dpi=20, name=name)
    return page.read_bytes()


def test_chinese_and_rare_characters_are_drawn_not_empty_boxes(app, tmp_path):
    """A character the fonts lack is drawn as the same empty box as any other missing one: each
    character here must look different from U+F0000 (a private-use character no font has)."""
    box = _glyph_png("\U000F0000", tmp_path, "box")
    blank = _glyph_png("&nbsp;", tmp_path, "blank")
    assert box != blank  # the reference really is a visible box
    for n, char in enumerate("认购书收据张堃喆𠀀"):
        drawn = _glyph_png(char, tmp_path, f"char{n}")
        assert drawn != box, f"{char} (U+{ord(char):04X}) is drawn as an empty box"
        assert drawn != blank, f"{char} (U+{ord(char):04X}) is not drawn at all"


def test_a_rendered_page_has_ink_and_the_rare_name_in_its_text(app, db, deal, tmp_path):
    f.rename_customer(db.session, deal, "𠀀堃喆")  # a live deal's name changes by an approved request (R-CHG-3)
    data = pdf.render("subscription_agreement", document_context(db.session, "subscription_agreement",
                                                                 deal["sub"].id))
    pages = _png_pages(data, tmp_path)
    assert pages
    from PIL import Image
    with Image.open(pages[0]) as image:
        dark = sum(image.histogram()[:128])
        assert dark > 2000, "the first page is (nearly) blank"
    assert "𠀀堃喆" in _pdf_tool("pdftotext", tmp_path / "page.pdf", "-")


def test_rmb_upper_writes_amounts_as_on_a_receipt():
    assert pdf.rmb_upper(Decimal("1500000")) == "壹佰伍拾万元整"
    assert pdf.rmb_upper(Decimal("101010.10")) == "壹拾万壹仟零壹拾元壹角整"
    assert pdf.rmb_upper(Decimal("100000005")) == "壹亿零伍元整"
    assert pdf.rmb_upper(Decimal("12003000.07")) == "壹仟贰佰万叁仟元零柒分"
    assert pdf.rmb_upper(Decimal("0.50")) == "伍角整"
    assert pdf.rmb_upper(Decimal("-50000")) == "负伍万元整"


# --- every kind from the demo office ------------------------------------------------------------------

def _intent_card_subject(s) -> int:
    """A paid registration of the demo's launches, or (a demo without one) of a launch made here on
    a building no open launch offers."""
    from models import Building, Launch, LaunchBuilding, LaunchEntry, Lead, User
    from models.base import office_today
    from models.launches import create_launch, record_intent_deposit, register_entry
    from models.users import users_with_roles
    entry_id = s.scalar(select(LaunchEntry.id).where(LaunchEntry.status == "paid").order_by(LaunchEntry.id))
    if entry_id is not None:
        return entry_id
    lead = s.scalar(select(Lead).where(Lead.owner_id.isnot(None)).order_by(Lead.id))
    offered = select(LaunchBuilding.building_id).join(Launch).where(Launch.status != "closed")
    building = s.scalar(select(Building).where(Building.project_id == lead.project_id, Building.id.not_in(offered))
                        .order_by(Building.id))
    manager = s.get(User, users_with_roles(s, {"sales_manager"})[0])
    finance = s.get(User, users_with_roles(s, {"finance"})[0])
    today = office_today()
    launch = create_launch(s, manager, project_id=lead.project_id, name="测试开盘", building_ids=[building.id],
                           registration_opens_on=today, registration_closes_on=today, selection_on=today,
                           intent_deposit="20000", card_valid_until=today, questions=["持有本市购房资格"])
    entry = register_entry(s, manager, launch_id=launch.id, name=lead.name, phone=lead.phone, id_type="resident_id",
                           id_number="110101199003071719", address="长沙", answers={"持有本市购房资格": True},
                           today=today)
    record_intent_deposit(s, finance, entry.id, paid_on=today, channel="pos", today=today)
    s.commit()
    return entry.id


def test_every_kind_renders_from_the_demo_office(app, db, tmp_path):
    from demo import build_demo
    from models import Building, Contract
    from models.changes import ChangeRequest
    from models.handovers import Handover
    from models.payments import open_line
    from models.tickets import Survey
    from models.commissions import CommissionStatement
    from models.true_ups import TrueUp
    build_demo(db.session)
    db.session.commit()
    s = db.session
    subjects = {
        "subscription_agreement": s.scalar(select(Subscription.id).where(Subscription.status == "active")),
        "receipt": s.scalar(select(Payment.id).where(Payment.reverses_id.isnot(None))),
        "payment_reminder": s.scalar(select(Instalment.id).join(Instalment.subscription).where(
            open_line(), Subscription.status == "active")),  # of the plan in force (R-CHG-2)
        "overdue_warning": s.scalar(select(OverdueEvent.id).where(OverdueEvent.level == "warning")),
        "lawyer_letter": s.scalar(select(OverdueEvent.id).where(OverdueEvent.level == "lawyer_letter")),
        "forfeit_notice": s.scalar(select(Subscription.id).where(Subscription.status == "forfeited")),
        "signing_booking": s.scalar(select(Contract.id).where(Contract.status == "booked")),
        "statement": s.scalar(select(Subscription.lead_id).where(Subscription.status == "contracted")),
        "board": s.scalar(select(Building.id)),
        "addendum": s.scalar(select(ChangeRequest.id).where(ChangeRequest.status == "approved")),
        "handover_notice": s.scalar(select(Handover.id).where(Handover.status == "booked")),
        "handover_record": s.scalar(select(Handover.id).where(Handover.status == "handed_over")),
        "survey_summary": s.scalar(select(Survey.project_id)),  # R-SVC-2: a project with surveys
        "true_up_notice": s.scalar(select(TrueUp.id).where(TrueUp.may_cancel.is_(True), TrueUp.refund > 0)),
        # issue 23: statements — one with a clawback
        "commission_statement": s.scalar(select(CommissionStatement.id).where(CommissionStatement.clawed_back < 0)),
        # issue 24: a buyer's intent card (R-LCH-1)
        "intent_card": _intent_card_subject(s),
    }
    # issue 24: lottery — a drawn launch of the demo office (drawn here when the demo has none)
    from models import Launch, Project, User
    from tests.test_lottery import drawn_launch
    drawn = s.scalar(select(Launch.id).where(Launch.status.in_(("drawn", "selecting", "closed")))) or drawn_launch(
        s, s.scalar(select(User).where(User.username == "manager")), s.scalar(select(User).where(User.username == "agent1")),
        project=s.scalar(select(Project).order_by(Project.id)))
    subjects.update({"lottery_entrants": drawn, "lottery_result": drawn})
    assert None not in subjects.values(), subjects
    assert set(subjects) == set(pdf.KINDS)
    for kind, subject_id in subjects.items():
        context = document_context(s, kind, subject_id)
        data = pdf.render(kind, context)
        path = tmp_path / f"{kind}.pdf"
        path.write_bytes(data)
        text = _pdf_tool("pdftotext", path, "-")
        assert context["project"]["name"] in text, kind  # the running header
        assert "第 1 页" in text, kind  # page numbers in the footer


# --- 3. workers, rows, the CLI ------------------------------------------------------------------------

def test_requesting_a_document_renders_it_and_records_sha256_size_and_who(app, db, deal):
    payment = _deposit_payment(db, deal["sub"])
    batch, [document] = request_documents(db.session, deal["finance"], "receipt", [payment.id])
    db.session.commit()
    assert batch is None and document.status == "queued" and document.requested_by_id == deal["finance"].id
    from jobs.documents import enqueue_documents
    enqueue_documents(db.session, [document])
    run_jobs(app)
    db.session.expire_all()
    document = db.session.get(Document, document.id)
    import hashlib
    assert document.status == "done", document.error
    assert document.content.startswith(b"%PDF") and document.size == len(document.content)
    assert document.sha256 == hashlib.sha256(document.content).hexdigest()
    assert document.file.startswith("收款收据-") and document.file.endswith(".pdf")
    assert document.started_at <= document.finished_at and document.job_id


def test_a_failing_render_marks_the_document_failed_with_the_error(app, db, deal, monkeypatch):
    def broken(kind, context, **kw):
        raise RuntimeError("the printer caught fire")
    monkeypatch.setattr(pdf, "render", broken)
    _, [document] = request_documents(db.session, deal["manager"], "subscription_agreement", [deal["sub"].id])
    db.session.commit()
    assert render_document(db.session, document.id) == "failed"
    document = db.session.get(Document, document.id)
    assert document.status == "failed" and "printer caught fire" in document.error
    assert document.content is None and document.finished_at is not None


def test_a_render_job_run_twice_renders_once(app, db, deal):
    _, [document] = request_documents(db.session, deal["manager"], "subscription_agreement", [deal["sub"].id])
    db.session.commit()
    assert render_document(db.session, document.id) == "done"
    first = (db.session.get(Document, document.id).sha256, db.session.get(Document, document.id).finished_at)
    assert render_document(db.session, document.id) == "done"
    document = db.session.get(Document, document.id, populate_existing=True)
    assert (document.sha256, document.finished_at) == first


def test_a_render_longer_than_its_time_limit_is_stopped_in_any_thread(app, db, deal):
    context = document_context(db.session, "subscription_agreement", deal["sub"].id)
    with pytest.raises(pdf.RenderTimeout):
        pdf.render("subscription_agreement", context, seconds=0.01)
    outcome = []

    def in_a_web_thread():  # embedded mode renders in the request's thread
        try:
            pdf.render("subscription_agreement", context, seconds=0.01)
            outcome.append("rendered")
        except pdf.RenderTimeout:
            outcome.append("stopped")
    thread = threading.Thread(target=in_a_web_thread)
    thread.start()
    thread.join(timeout=30)
    assert outcome == ["stopped"]
    assert pdf.render("subscription_agreement", context).startswith(b"%PDF")  # no timer left behind
    import time
    time.sleep(0.05)  # a late timer would strike here


def test_the_cli_renders_one_document_into_a_file(app, db, deal, tmp_path):
    out = tmp_path / "agreement.pdf"
    result = app.test_cli_runner().invoke(args=["document", "subscription_agreement",
                                                 str(deal["sub"].id), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"%PDF") and "认购书" in result.output
    missing = app.test_cli_runner().invoke(args=["document", "receipt", "999999", "--out", str(out)])
    assert missing.exit_code != 0 and "不存在" in missing.output  # the refusal, in the office's language


def test_the_ladder_enqueues_its_warning_letters_itself(app, db, deal):
    from jobs.ladder import run_ladder
    balance = db.session.scalar(select(Instalment).where(Instalment.subscription_id == deal["sub"].id,
                                                         Instalment.kind == "down_payment"))
    due = balance.due_on
    counts = run_ladder((due + dt.timedelta(days=2)).isoformat())
    assert counts["warning"] == 1 and counts["letters"] == 1
    run_jobs(app)
    event = db.session.scalar(select(OverdueEvent).where(OverdueEvent.level == "warning"))
    document = db.session.scalar(select(Document).where(Document.kind == "overdue_warning"))
    assert document.subject_id == event.id and document.owner_id == deal["agent"].id
    assert document.status == "done", document.error
    assert run_ladder((due + dt.timedelta(days=2)).isoformat())["letters"] == 0  # a second run: nothing new


def test_a_forfeit_and_a_lawyers_letter_come_with_their_letters_as_one_batch_per_kind(app, db, deal):
    from jobs.ladder import run_ladder
    balance = db.session.scalar(select(Instalment).where(Instalment.subscription_id == deal["sub"].id,
                                                         Instalment.kind == "down_payment"))
    counts = run_ladder((balance.due_on + dt.timedelta(days=15)).isoformat())  # catches up every rung
    assert counts["forfeit"] == 1
    run_jobs(app)
    kinds = sorted(db.session.scalars(select(Document.kind)))
    assert kinds == ["forfeit_notice", "lawyer_letter", "overdue_warning"]
    assert all(d.status == "done" for d in db.session.scalars(select(Document)))


def test_several_rows_make_one_batch_with_a_zip_of_its_documents(app, db, deal, client, auth):
    record_payment(db.session, deal["finance"], deal["sub"].id, amount="100000", paid_on=TODAY,
                   channel="pos", today=TODAY)
    db.session.commit()
    ids = [str(p.id) for p in db.session.scalars(select(Payment))]
    assert len(ids) == 2
    auth.login("finance")
    response = client.post("/admin/payment/action/", data={"action": "document_receipt", "rowid": ids,
                                                           "csrf_token": auth.csrf()})
    assert response.status_code == 302 and "/admin/document_batch/" in response.headers["Location"]
    run_jobs(app)
    batch = db.session.scalar(select(DocumentBatch))
    assert batch.total == 2 and batch.job_ids
    page = client.get("/admin/document_batch/").get_data(as_text=True)
    assert "2 / 2" in page and "progress-bar" in page
    archive = client.get(f"/admin/document_batch/zip/{batch.id}")
    assert archive.status_code == 200 and archive.mimetype == "application/zip"
    import io
    import zipfile
    names = zipfile.ZipFile(io.BytesIO(archive.data)).namelist()
    assert len(names) == 2 and all(name.startswith("收款收据-") for name in names)


@pytest.mark.postgres
def test_a_real_rq_worker_renders_a_batch_and_reports_progress(app, db, deal, tmp_path):
    """PostgreSQL + Redis: the documents wait in Redis until an `rq worker` process renders them."""
    assert app.config["REDIS_URL"], "the PostgreSQL pass runs with Redis"
    from rq.job import Job

    from jobs.documents import enqueue_documents
    from jobs.queue import get_connection
    from tests.support.jobs import burst_worker_process
    record_payment(db.session, deal["finance"], deal["sub"].id, amount="1000", paid_on=TODAY,
                   channel="cash", today=TODAY)
    db.session.commit()
    ids = list(db.session.scalars(select(Payment.id)))
    batch, documents = request_documents(db.session, deal["finance"], "receipt", ids)
    db.session.commit()
    [job_id] = enqueue_documents(db.session, documents)
    assert {d.status for d in db.session.scalars(select(Document))} == {"queued"}
    burst_worker_process(app, tmp_path, "documents", timeout=120)  # the production command
    db.session.expire_all()
    assert {d.status for d in db.session.scalars(select(Document))} == {"done"}
    job = Job.fetch(job_id, connection=get_connection())
    from jobs.queue import database_fingerprint
    assert job.is_finished and job.meta == {"done": 2, "failed": 0, "total": 2, "db": database_fingerprint()}
    from jobs.documents import progress
    assert progress(batch.job_ids.split()) == {"done": 2, "failed": 0}


# --- 6. safety ------------------------------------------------------------------------------------

HOSTILE = {
    "img": "<img src=file:///etc/passwd>",
    "link": '<link rel=attachment href="file:///etc/passwd">',
    "import": "@import url(http://127.0.0.1:{port}/evil.css);",
    "jinja": "{{7*7}}",
}


@pytest.fixture
def listener():
    """A web server on loopback that counts the requests it gets (it should get none)."""
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"body{}")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], hits
    server.shutdown()


def test_hostile_field_values_are_shown_literally_and_fetch_nothing(app, db, deal, listener, tmp_path):
    port, hits = listener
    values = {key: value.format(port=port) if key == "import" else value for key, value in HOSTILE.items()}
    sub = f.rename_customer(db.session, deal, values["img"])  # by an approved request (R-CHG-3)
    sub.customer_address = values["link"]
    sub.price_reason = values["import"] + " " + values["jinja"]
    sub.lead.phone = values["jinja"]
    db.session.commit()
    payment = reverse_payment(db.session, deal["finance"], _deposit_payment(db, sub).id,
                              reason=values["import"] + values["link"], today=TODAY)
    db.session.commit()
    for kind, subject_id in (("subscription_agreement", sub.id), ("receipt", payment.id),
                             ("statement", sub.lead_id)):
        fetcher = pdf.AssetFetcher()
        data = pdf.render(kind, document_context(db.session, kind, subject_id), fetcher=fetcher)
        assert fetcher.refused == [] and fetcher.served == ["asset:mark.svg"], kind
        assert b"/EmbeddedFile" not in data and b"/FileAttachment" not in data, kind
        path = tmp_path / f"{kind}.pdf"
        path.write_bytes(data)
        text = "".join(_pdf_tool("pdftotext", path, "-").split())  # table cells wrap long values
        assert "<imgsrc=file:" in text, kind  # the customer's name, as typed, not an image
        if kind == "receipt":
            assert "@importurl(http://" in text  # the reversal's reason
        else:
            assert "{{7*7}}" in text, kind  # as typed: never evaluated as a template
    assert hits == []


def test_the_fetcher_refuses_everything_but_our_own_assets(app, listener):
    port, hits = listener
    html = (f'<style>@import url(http://127.0.0.1:{port}/a.css);</style>'
            f'<link rel="stylesheet" href="http://127.0.0.1:{port}/b.css">'
            f'<link rel="attachment" href="file:///etc/passwd">'
            f'<a rel="attachment" href="http://127.0.0.1:{port}/c">x</a>'
            f'<img src="file:///etc/passwd"><img src="asset:../../../etc/passwd">'
            f'<img src="asset:mark.svg"><img src="data:image/png;base64,iVBORw0KGgo=">'
            f'<img src="https://127.0.0.1:{port}/d.png">')
    from weasyprint import HTML
    fetcher = pdf.AssetFetcher()
    data = HTML(string=html, url_fetcher=fetcher).write_pdf()
    assert fetcher.served == ["asset:mark.svg"]
    assert len(fetcher.refused) >= 6 and all("mark.svg" not in url for url in fetcher.refused)
    assert hits == []
    assert b"/EmbeddedFile" not in data and b"root:" not in data


# --- 7. scoping -----------------------------------------------------------------------------------

def _document_for(app, db, by, kind, subject_id) -> Document:
    _, [document] = request_documents(db.session, by, kind, [subject_id])
    db.session.commit()
    render_document(db.session, document.id)
    return db.session.get(Document, document.id)


def test_an_agent_downloads_own_customers_documents_only_and_the_url_checks(app, db, deal, client, auth):
    payment = _deposit_payment(db, deal["sub"])
    receipt = _document_for(app, db, deal["finance"], "receipt", payment.id)
    agreement = _document_for(app, db, deal["manager"], "subscription_agreement", deal["sub"].id)
    for username, kind_of_outcome in (("li", 200), ("finance", 200), ("manager", 200)):
        auth.login(username)
        response = client.get(f"/admin/document/download/{receipt.id}")
        assert response.status_code == kind_of_outcome, username
        assert response.mimetype == "application/pdf" and response.data.startswith(b"%PDF")
        auth.logout()
    auth.login("zhao")  # another agent: neither the link nor the URL
    assert client.get(f"/admin/document/download/{receipt.id}").status_code == 404
    assert client.get(f"/admin/document/download/{agreement.id}").status_code == 404
    listing = client.get("/admin/document/").get_data(as_text=True)
    assert f"/admin/document/download/{receipt.id}" not in listing
    auth.logout()
    auth.login(deal["archive"].username)  # the archive may not list payments: no receipts either
    assert client.get(f"/admin/document/download/{receipt.id}").status_code == 404
    assert client.get(f"/admin/document/download/{agreement.id}").status_code == 404


def test_an_agent_cannot_request_a_document_of_another_agents_customer(app, db, deal, client, auth):
    auth.login("zhao")
    response = client.post("/admin/document/request/", data={
        "kind": "subscription_agreement", "subject_id": str(deal["sub"].id), "csrf_token": auth.csrf()},
        follow_redirects=True)
    assert response.status_code == 200
    assert db.session.scalar(select(Document.id)) is None
    with raises_rule("R-ALL-1"):
        request_documents(db.session, deal["other"], "statement", [deal["lead"].id])


def test_the_owner_sees_the_ladders_letters_in_the_document_centre(app, db, deal, client, auth):
    from jobs.ladder import run_ladder
    balance = db.session.scalar(select(Instalment).where(Instalment.subscription_id == deal["sub"].id,
                                                         Instalment.kind == "down_payment"))
    run_ladder((balance.due_on + dt.timedelta(days=2)).isoformat())
    run_jobs(app)
    document = db.session.scalar(select(Document))
    auth.login("li")
    assert f"/admin/document/download/{document.id}" in client.get("/admin/document/").get_data(as_text=True)
    assert client.get(f"/admin/document/download/{document.id}").status_code == 200
    auth.logout()
    auth.login("zhao")
    assert f"/admin/document/download/{document.id}" not in client.get("/admin/document/").get_data(as_text=True)


def test_a_document_needs_an_eligible_subject(app, db, deal):
    with raises_rule("R-PAY-5"):
        request_documents(db.session, deal["manager"], "forfeit_notice", [deal["sub"].id])  # not forfeited
    with raises_rule("R-ALL-1"):
        request_documents(db.session, deal["manager"], "no_such_kind", [1])
    deal["sub"].status = "withdrawn"
    db.session.flush()
    open_line = db.session.scalar(select(Instalment.id).where(Instalment.subscription_id == deal["sub"].id,
                                                              Instalment.status != "paid"))
    with raises_rule("R-PAY-4"):  # no reminders for a dead deal
        request_documents(db.session, deal["manager"], "payment_reminder", [open_line])
    db.session.rollback()
    with raises_rule("R-ALL-1"):
        request_documents(db.session, deal["manager"], "receipt", ["1 OR 1=1"])
    assert db.session.scalar(select(Document.id)) is None


def test_a_row_button_posts_the_request_with_the_csrf_token(app, db, deal, client, auth):
    auth.login("li")
    page = client.get("/admin/subscription/").get_data(as_text=True)
    assert 'data-document="subscription_agreement"' in page and 'name="csrf_token"' in page
    assert 'data-document="forfeit_notice"' not in page  # only on forfeited deals
    response = client.post("/admin/document/request/", data={
        "kind": "subscription_agreement", "subject_id": str(deal["sub"].id)})
    assert response.status_code == 303 and db.session.scalar(select(Document.id)) is None  # no token
    response = client.post("/admin/document/request/", data={
        "kind": "subscription_agreement", "subject_id": str(deal["sub"].id), "csrf_token": auth.csrf()})
    assert response.status_code == 302
    said = client.get(response.headers["Location"]).get_data(as_text=True)
    # embedded mode renders at once and says it is ready; with workers it says it is on its way
    assert ("正在生成" if app.config["REDIS_URL"] else "已生成 1 份文档") in said
    run_jobs(app)
    assert db.session.scalar(select(Document.status)) == "done"


def test_the_document_centre_looks_again_while_documents_are_pending(app, db, deal, client, auth):
    f.document(db.session, deal["manager"], kind="subscription_agreement", subject_id=deal["sub"].id)
    db.session.commit()
    auth.login("manager")
    page = client.get("/admin/document/").get_data(as_text=True)
    assert "data-pending" in page and "documents.js" in page
    db.session.scalar(select(Document)).status = "failed"
    db.session.commit()
    assert "data-pending" not in client.get("/admin/document/").get_data(as_text=True)


def test_a_batch_zip_is_refused_to_whoever_may_not_list_the_batch(app, db, deal, client, auth):
    record_payment(db.session, deal["finance"], deal["sub"].id, amount="1000", paid_on=TODAY,
                   channel="cash", today=TODAY)
    db.session.commit()
    batch, documents = request_documents(db.session, deal["finance"], "receipt",
                                         list(db.session.scalars(select(Payment.id))))
    db.session.commit()
    for document in documents:
        render_document(db.session, document.id)
    auth.login("zhao")  # another agent
    assert client.get(f"/admin/document_batch/zip/{batch.id}").status_code == 404
    auth.logout()
    auth.login(deal["lawyer"].username)  # lawyers may list payments: the receipts are theirs to see
    import io
    import zipfile
    response = client.get(f"/admin/document_batch/zip/{batch.id}")
    assert response.status_code == 200 and len(zipfile.ZipFile(io.BytesIO(response.data)).namelist()) == 2


def test_the_board_prints_each_building(app, db, deal, client, auth):
    auth.login("li")
    page = client.get(f"/admin/board/?project={deal['project'].id}").get_data(as_text=True)
    assert 'data-document="board"' in page
    response = client.post("/admin/document/request/", data={
        "kind": "board", "subject_id": str(deal["unit"].building_id), "csrf_token": auth.csrf()})
    assert response.status_code == 302
    run_jobs(app)
    document = db.session.scalar(select(Document))
    assert document.kind == "board" and document.status == "done" and document.owner_id is None


def test_seeing_the_rows_is_enough_to_ask_for_their_letters_in_bulk(app, db, deal, client, auth):
    """Nobody has the action right on overdue events; the lawyer still batches their letters."""
    from jobs.ladder import run_ladder
    balance = db.session.scalar(select(Instalment).where(Instalment.subscription_id == deal["sub"].id,
                                                         Instalment.kind == "down_payment"))
    run_ladder((balance.due_on + dt.timedelta(days=8)).isoformat())
    run_jobs(app)
    events = [str(e.id) for e in db.session.scalars(select(OverdueEvent))]
    auth.login("lawyer")
    response = client.post("/admin/overdue_event/action/", data={
        "action": "document_lawyer_letter", "rowid": events[-1:], "csrf_token": auth.csrf()})
    assert response.status_code == 302
    assert db.session.scalar(select(Document.id).where(Document.kind == "lawyer_letter",
                                                       Document.requested_by_id == deal["lawyer"].id))
    denied = client.post("/admin/overdue_event/action/", data={
        "action": "delete", "rowid": events[-1:], "csrf_token": auth.csrf()})
    assert denied.status_code == 403


def test_issue20_the_agreement_and_forfeit_notice_read_their_dates_in_office_time(db, deal):
    """A sales-control check at 07:30 in the office is 23:30 UTC the day before: the agreement
    says the office's date, and so does a forfeit notice dated from the deal's forfeit time."""
    import datetime as dt

    sub = deal["sub"]
    sub.checked_at = dt.datetime(2026, 11, 30, 23, 30)  # naive UTC, like every DateTime column
    db.session.flush()
    assert document_context(db.session, "subscription_agreement", sub.id)["checked_on"] == dt.date(2026, 12, 1)
    sub.status, sub.forfeited_at = "forfeited", dt.datetime(2026, 11, 30, 23, 30)
    db.session.flush()
    assert document_context(db.session, "forfeit_notice", sub.id)["forfeited_on"] == dt.date(2026, 12, 1)
