"""Issue 19, items 1, 4 and 16: every time a person reads is in the office's time zone (one
converter, honouring SALESDESK_TIMEZONE), every amount reads -¥200,000.00 rather than ¥-200,000.00,
every dashboard figure says what it is measured against, and /favicon.ico is an icon."""
from __future__ import annotations

import datetime as dt
import re
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import DateTime, update

from models import Payment, Unit, db as _db
from tests.conftest import Auth

from .test_contracts import TODAY, deal, pay  # noqa: F401  (fixture)
from .test_role_matrix import _request_for, office  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent
STORED = dt.datetime(2026, 11, 20, 7, 30)  # naive UTC, as every DateTime column stores it
# The same instant on the office's wall clock, by zone (UTC+8, UTC-5 in November, UTC+9).
LOCAL = {"Asia/Shanghai": "2026-11-20 15:30", "America/New_York": "2026-11-20 02:30",
         "Asia/Tokyo": "2026-11-20 16:30"}
AS_UTC = "2026-11-20 07:30"
ZONES = ("Asia/Shanghai", "America/New_York")


@pytest.fixture
def zone(request, monkeypatch):
    """SALESDESK_TIMEZONE for the app the test builds (set before conftest's `app` is made)."""
    name = getattr(request, "param", "Asia/Shanghai")
    monkeypatch.setenv("SALESDESK_TIMEZONE", name)
    return name


@pytest.fixture
def app(zone, app):  # noqa: F811  (conftest's app, built with the zone above)
    assert app.config["TIMEZONE"] == zone
    return app


def _stamp_every_timestamp(session, when: dt.datetime, ids: dict) -> None:
    """Every DateTime column of every row (nullable ones too) at `when`; the audit trail, which is
    append-only, gets a row of its own at `when` recording a time (a booking's appointment)."""
    from models import Audit
    for table in _db.metadata.sorted_tables:
        columns = [c.name for c in table.columns if isinstance(c.type, DateTime)]
        if columns and table.name != "audit":
            session.execute(update(table).values({c: when for c in columns}))
    row = Audit(at=when, entity="contract", entity_id=str(ids["contract"]), action="book_signing",
                changes={"kind": "sale", "appointment_at": when.isoformat(), "signing_due_on": "2026-12-20"})
    session.add(row)
    session.commit()
    ids["audit"] = row.id


def _text(response) -> str:
    return response.get_data(as_text=True)


def _shows_a_timestamp(view, kind: str) -> bool:
    columns = {"index_view": "_list_columns", "details_view": "_details_columns",
               "export": "_export_columns"}[kind]
    table = view.model.__table__.columns
    return any(isinstance(getattr(table.get(name), "type", None), DateTime)
               for name, _ in getattr(view, columns, []) or [])


@pytest.mark.parametrize("zone", ZONES, indirect=True)
def test_issue19_1_every_page_grid_and_export_shows_times_in_the_office_zone_and_never_utc(
        app, client, db, office, zone, make_user):  # noqa: F811
    users, ids = office
    s = db.session
    unit = s.get(Unit, ids["unit"])
    unit.status, unit.held_for_lead_id, unit.held_by_id = "held", ids["lead"], users["c"].id
    from models.payments import reverse_payment
    reverse_payment(s, users["f"], ids["payment"], "录入错误", today=s.get(Payment, ids["payment"]).paid_on)
    s.commit()
    _stamp_every_timestamp(s, STORED, ids)  # held_until, appointment_at, created_at, audit at, read_at…
    views = {v.endpoint: v for v in app.extensions["admin"][0]._views}
    everyone = make_user(*sorted(set(_ROLES)), username="every_role")
    local, checked, with_time = LOCAL[zone], [], set()
    for username in ("matrix_admin", "matrix_lawyer", everyone.username):
        Auth(client).login(username)
        for rule in app.url_map.iter_rules():
            if "GET" not in rule.methods or rule.endpoint in ("static", "admin.static", "favicon"):
                continue
            method, path, _ = _request_for(rule.endpoint, ids)
            if method != "GET":
                continue
            if rule.endpoint == "audit.index_view":
                # Oldest first: the trail row stamped above, whatever the pages visited before this
                # one pushed past the first page (every grid's export writes a row of its own).
                path += "?sort=0"
            response = client.get(path)
            if response.mimetype == "text/event-stream":  # the live board's stream: cells, no times,
                response.close()  # and it lasts minutes (tests/test_live_board.py reads it)
                continue
            if response.status_code != 200 or not response.mimetype.startswith(("text/", "application/json")):
                continue  # a refusal for this role, a redirect, or a file (PDF, XLSX, ZIP: below)
            page = _text(response)
            checked.append(path)
            assert not re.search(r"\bUTC\b", page), path
            assert AS_UTC not in page, path  # a stored time printed as stored
            assert "¥-" not in page, path
            view = views.get(rule.endpoint.split(".")[0])
            kind = rule.endpoint.split(".")[-1]
            empty = '<td colspan="999">' in page or (kind == "export" and len(page.splitlines()) < 2)
            if view is not None and kind in ("index_view", "details_view", "export") and not empty \
                    and _shows_a_timestamp(view, kind):
                assert local in page, path
                with_time.add(path)
        Auth(client).logout()
    # the pages that print a time through a template of their own
    for path in ("/admin/", f"/admin/board/unit/{ids['unit']}", f"/admin/unit_import/{ids['price_list_import']}",
                 "/admin/unit_import/", f"/admin/subscription/details/?id={ids['subscription']}",
                 "/admin/audit/?sort=0", "/admin/notification/", "/admin/contract/", "/admin/lead/"):
        assert path in checked, path
    Auth(client).login(everyone.username)
    assert local in _text(client.get(f"/admin/board/unit/{ids['unit']}"))  # 保留至 … (office time)
    assert local in _text(client.get(f"/admin/subscription/details/?id={ids['subscription']}"))  # history
    assert local in _text(client.get(f"/admin/unit_import/{ids['price_list_import']}"))
    dashboard = _text(client.get("/admin/"))
    assert local in dashboard.split('id="dash-lawyer"')[1]  # the booking, in office time
    assert len(with_time) > 40, sorted(with_time)


_ROLES = ("admin", "sales_manager", "agent", "sales_control", "finance", "lawyer", "archive", "vp")


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Asia/Tokyo"], indirect=True)
def test_issue19_1_the_lawyers_home_shows_a_1530_booking_at_1530(app, client, db, deal, zone):  # noqa: F811
    from models.contracts import book_signing
    pay(db, deal, "250000")
    at = dt.datetime(2026, 12, 1, 15, 30)  # as the agent typed it: office time
    contract = book_signing(db.session, deal["agent"], deal["sub"].id, appointment_at=at, today=TODAY)
    db.session.commit()
    stored = at - dt.timedelta(hours={"Asia/Shanghai": 8, "Asia/Tokyo": 9}[zone])
    assert contract.appointment_at == stored  # kept in UTC
    Auth(client).login("sun")
    lawyer = _text(client.get("/admin/")).split('id="dash-lawyer"')[1]
    assert "2026-12-01 15:30" in lawyer
    assert stored.strftime("%H:%M") not in lawyer and "UTC" not in lawyer


def _pdf_text(data: bytes, tmp_path, name: str) -> str:
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/New_York"], indirect=True)
def test_issue19_1_and_4_the_signing_booking_and_statement_pdfs_read_office_time_and_minus_yen(
        app, db, deal, zone, tmp_path):  # noqa: F811
    import pdf
    from models.contracts import book_signing
    from models.documents import document_context
    from models.payments import reverse_payment
    wrong = pay(db, deal, "250000")
    reverse_payment(db.session, deal["finance"], wrong.id, "录入错误", today=TODAY)
    pay(db, deal, "250000")
    contract = book_signing(db.session, deal["agent"], deal["sub"].id, appointment_at=dt.datetime(2026, 12, 1, 15, 30),
                            today=TODAY)
    db.session.commit()
    booking = _pdf_text(pdf.render("signing_booking", document_context(db.session, "signing_booking", contract.id)),
                        tmp_path, "booking")
    assert "2026年12月1日 15:30" in booking, booking
    statement = _pdf_text(pdf.render("statement", document_context(db.session, "statement", deal["lead"].id)),
                          tmp_path, "statement")
    assert "-¥250,000.00" in statement and "¥-" not in statement


def test_issue19_1_one_converter_from_utc_to_office_time():
    """Only models/base.py turns a stored time into the office's: no second converter (Babel's
    format_datetime, astimezone, ZoneInfo) anywhere else in the application's code."""
    offenders = []
    for folder in ("admin", "models", "jobs", "pdf", "templates"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix not in (".py", ".html") or path == ROOT / "models" / "base.py":
                continue
            text = path.read_text(encoding="utf-8")
            for needle in ("astimezone", "ZoneInfo", "format_datetime", "format_time(", "get_timezone",
                           "OFFICE_TZ", "UTC'", "UTC\""):
                if needle in text:
                    offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    assert offenders == []


@pytest.mark.parametrize(("value", "text"), [
    (Decimal("-200000"), "-¥200,000.00"), (Decimal("200000"), "¥200,000.00"), (Decimal("0"), "¥0.00"),
    (Decimal("-0.001"), "¥0.00"), (Decimal("-1234567.5"), "-¥1,234,567.50"), ("-5", "-¥5.00"), (None, ""),
])
def test_issue19_4_one_money_writer_puts_the_minus_before_the_yen(value, text):
    import pdf
    from admin.base import money_formatter
    from models.money import format_money
    assert format_money(value) == text
    assert pdf.money(value) == text
    assert money_formatter(None, None, type("Row", (), {"amount": value})(), "amount") == text


def test_issue19_4_a_reversal_reads_minus_yen_in_the_grid_details_and_history(app, client, db, deal):  # noqa: F811
    from models.payments import reverse_payment
    wrong = pay(db, deal, "200000")
    reversal = reverse_payment(db.session, deal["finance"], wrong.id, "录入错误", today=TODAY)
    db.session.commit()
    Auth(client).login(deal["finance"].username)
    for path in ("/admin/payment/", f"/admin/payment/details/?id={reversal.id}",
                 f"/admin/subscription/details/?id={deal['sub'].id}"):
        page = _text(client.get(path))
        assert "-¥200,000.00" in page and "¥-" not in page, path


def _dashboard_figures(html: str) -> list[tuple[str, str]]:
    """(label, basis) of every figure card of the role panels."""
    cards = re.findall(r'<div class="card dash-stat[^"]*"><div class="card-body p-2">(.*?)</div></div></div>',
                       html, re.S)
    out = []
    for card in cards:
        label = re.search(r'<div class="small text-muted">(.*?)</div>', card, re.S)
        basis = re.search(r'<div class="dash-basis small text-muted">([^<]*)', card)
        out.append((label.group(1).strip() if label else card, basis.group(1).strip() if basis else ""))
    return out


@pytest.mark.parametrize("language", ["zh", "en"])
def test_issue19_4_every_dashboard_figure_says_what_it_is_measured_against(app, client, db, deal, make_user,
                                                                           language):  # noqa: F811
    from models import LeadConflict
    pay(db, deal, "250000")
    db.session.add(LeadConflict(lead=deal["lead"], attempted_by_id=deal["agent"].id, attempted_name="重复"))
    db.session.commit()  # waiting for the manager
    everyone = make_user(*[r for r in _ROLES if r != "admin"], username="every_role")
    Auth(client).login(everyone.username)
    if language == "en":
        client.post("/language", data={"lang": "en", "next": "/admin/", "csrf_token": Auth(client).csrf()})
    html = _text(client.get("/admin/"))
    for panel in ("waiting", "dash-manager", "dash-agent", "dash-finance", "dash-lawyer"):
        assert f'id="{panel}"' in html
    figures = _dashboard_figures(html)
    assert len(figures) >= 15, figures
    assert [label for label, basis in figures if not basis] == []
    # the bars: sell-through, collection (two ways), ageing and targets each say their basis
    dashboard = html.split('id="dash-manager"')[1]
    for marker in ("dash-collection", "dash-collection-plan"):
        block = dashboard.split(f'class="{marker}"')[1].split("</div>\n")[0:3]
        assert "dash-basis" in "".join(block), marker
    assert dashboard.count("dash-basis") >= 4 + 3 + 1 + 1 + 2 + 1  # stats, pipeline, sell, ageing, collection, targets
    if language == "zh":
        assert "已收 ÷ 已到期应收" in html and "已收 ÷ 计划应收总额" in html
    else:
        assert "Money paid ahead on lines due later is not counted here." in html


def test_issue19_4_the_collection_rate_says_lines_due_and_shows_the_whole_plan_too(app, client, db, deal):  # noqa: F811
    """Money paid ahead (the down payment, due later) does not move 回款率 of the lines due; the
    same figure against the whole plan does, and the page shows both with their bases."""
    from models import reports as d
    before = d.collection(db.session, TODAY)
    pay(db, deal, "250000")  # the down payment, not due yet on TODAY
    after = d.collection(db.session, TODAY)
    assert (before["due"], before["paid"]) == (after["due"], after["paid"]) == (Decimal("50000.00"),) * 2
    assert after["plan"] == Decimal("1000000.00") and after["plan_paid"] == Decimal("300000.00")
    assert after["plan_rate"] == 30.0 and after["rate"] == 100.0
    assert d.manager_panel(db.session, TODAY)["collection"] == after  # one definition, one figure


def test_issue19_16_the_favicon_is_an_icon_served_without_sign_in(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.mimetype.startswith("image/")
    assert response.data[:4] == b"\x00\x00\x01\x00"  # an ICO file's header
    from PIL import Image
    import io
    icon = Image.open(io.BytesIO(response.data))
    assert (32, 32) in icon.info["sizes"]
    login = _text(client.get("/login"))
    assert 'rel="icon"' in login and "/favicon.ico" in login


@pytest.mark.parametrize("zone", ZONES, indirect=True)
def test_issue19_1_a_time_typed_into_a_grid_filter_is_office_time(app, client, db, login_as, zone):
    """The grid shows office time, so what a person types into a date-time filter is office time
    too: "after 15:00" finds the follow-up shown at 15:30 and not the one shown at 14:30."""
    from tests import factories as f
    agent = login_as("agent")
    lead = f.lead(db.session, owner=agent)
    f.follow_up(db.session, lead, content="一点半之后", at=STORED)                              # 15:30 local (Shanghai)
    f.follow_up(db.session, lead, content="一点半之前", at=STORED - dt.timedelta(hours=1))      # 14:30 local
    db.session.commit()
    view = next(v for v in app.extensions["admin"][0]._views if getattr(v, "endpoint", "") == "follow_up")
    after = next(i for i, flt in enumerate(view._filters)
                 if getattr(flt.column, "key", "") == "at" and "Greater" in type(flt).__name__)
    between = next(i for i, flt in enumerate(view._filters)
                   if getattr(flt.column, "key", "") == "at" and type(flt).__name__.endswith("DateTimeBetweenFilter"))
    local = dt.datetime.strptime(LOCAL[zone], "%Y-%m-%d %H:%M")
    typed = (local - dt.timedelta(minutes=30)).strftime("%Y-%m-%d %H:%M:%S")  # 15:00 local (Shanghai)
    page = client.get(f"/admin/follow_up/?flt0_{after}={typed}").get_data(as_text=True)
    assert "一点半之后" in page and "一点半之前" not in page
    span = f"{(local - dt.timedelta(minutes=65)):%Y-%m-%d %H:%M:%S} to {(local - dt.timedelta(minutes=55)):%Y-%m-%d %H:%M:%S}"
    page = client.get("/admin/follow_up/", query_string={f"flt0_{between}": span}).get_data(as_text=True)
    assert "一点半之前" in page and "一点半之后" not in page
