"""Issue 19, item 2: the forfeited/withdrawn customers' archive (挞定/退订客户档案) reads as a record
— customer, deal, payment plan, payments and history by their labels, personal data masked for
the reader — and withdrawn deals are in it (kept at withdrawal; older ones backfilled)."""
from __future__ import annotations

import datetime as dt
import importlib.util
import re
from pathlib import Path

import pytest
from flask_babel import force_locale
from sqlalchemy import select

from models import LeadArchive, Subscription
from models.deals import PAYMENT_METHODS, withdraw_subscription
from models.payments import PAYMENT_CHANNELS, INSTALMENT_KINDS, INSTALMENT_STATUSES
from models.labels import choice_label
from models.leads import LEAD_SOURCES
from models.ladder import run_ladder
from tests import factories as f
from tests.conftest import Auth

TODAY = dt.date(2026, 11, 26)
DUE = TODAY + dt.timedelta(days=7)  # one-off payment: the balance is due 7 days after subscribing
STAFF = {"control": ("sales_control", "chen"), "finance": ("finance", "zhao"),
         "manager": ("sales_manager", "boss"), "vp": ("vp", "wu"), "admin": ("admin", "root")}
RAW_CODES = set(LEAD_SOURCES) | set(PAYMENT_METHODS) | set(INSTALMENT_KINDS) | set(INSTALMENT_STATUSES) \
    | set(PAYMENT_CHANNELS) | {"forfeit", "withdrawal", "rescission", "forfeited", "withdrawn"}


def _record(html: str) -> str:
    """The kept record's part of the details page (fields, tables and history)."""
    start = html.index("kept-record")
    return html[start:html.index("</ol>", start)]


def _cells(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", html, re.S)]


@pytest.fixture
def office(db, make_user):
    """A forfeited deal (walk-in customer, one-off payment, deposit paid by card) and a withdrawn one."""
    s = db.session
    deal = f.active_deal(s, make_user, price="1000000.00", payment_method="one_off", today=TODAY, staff=STAFF)
    run_ladder(s, DUE + dt.timedelta(days=15))  # forfeit
    s.commit()
    agent = deal["agent"]
    other = f.lead(s, owner=agent, project_=deal["project"], name="退订客户", phone="13912340000")
    unit = f.unit(s, f.building(s, deal["project"], name="退订楼"), number="1502")
    s.commit()
    from models.deals import subscribe
    sub = subscribe(s, agent, unit_id=unit.id, lead_id=other.id, payment_method="instalments", deposit="20000",
                    id_number=f.VALID_ID_NUMBER, address="长沙", subscribed_on=TODAY, today=TODAY)
    s.commit()
    withdraw_subscription(s, agent, sub.id, reason="客户资金未到位")
    s.commit()
    return {**deal, "withdrawn": s.get(Subscription, sub.id), "withdrawn_unit": unit, "other": other}


def _client(app, user):
    client = app.test_client()
    assert Auth(client).login(user.username).status_code == 302
    return client


def test_issue19_2_a_withdrawn_deal_is_kept_apart_with_the_same_snapshot(db, office):
    kept = db.session.scalar(select(LeadArchive).where(LeadArchive.subscription_id == office["withdrawn"].id))
    assert kept is not None and kept.reason == "withdrawal"
    assert kept.snapshot["customer"]["phone"] == "13912340000"
    assert kept.snapshot["subscription"]["unit"] == "退订楼-1502"
    assert kept.snapshot["reason"] == "客户资金未到位"
    assert {line["kind"] for line in kept.snapshot["instalments"]} >= {"deposit"}
    forfeited = db.session.scalar(select(LeadArchive).where(LeadArchive.subscription_id == office["sub"].id))
    assert set(kept.snapshot) - {"reason"} == set(forfeited.snapshot)  # one shape for every way out


def test_issue19_2_the_archive_list_shows_number_customer_unit_reason_and_date(app, db, office):
    html = _client(app, office["admin"]).get("/admin/lead_archive/").get_data(as_text=True)
    cells = _cells(html)
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        forfeit, withdrawal = str(choice_label("lead_archive", "reason", "forfeit")), \
            str(choice_label("lead_archive", "reason", "withdrawal"))
    for sub, unit, reason in ((office["sub"], str(office["unit"]), forfeit),
                              (office["withdrawn"], "退订楼-1502", withdrawal)):
        assert sub.number in cells and unit in cells and reason in cells
    assert "退订客户 13912340000" in cells  # the administrator reads phones whole
    assert re.search(r"<td class=\"col-archived_at\">\d{4}-\d\d-\d\d \d\d:\d\d</td>", html)
    assert "col-id" not in html and "col-subscription_id" not in html  # no internal id


def test_issue19_2_the_kept_record_reads_in_labels_without_json_null_or_codes(app, db, office):
    client = _client(app, office["admin"])
    kept = db.session.scalar(select(LeadArchive).where(LeadArchive.subscription_id == office["sub"].id))
    record = _record(client.get(f"/admin/lead_archive/details/?id={kept.id}").get_data(as_text=True))
    assert "{" not in record and "}" not in record
    assert "null" not in record and "None" not in record
    cells = _cells(record)
    assert not RAW_CODES & set(cells), RAW_CODES & set(cells)
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        expected = [str(choice_label("lead", "source", "walk_in")),
                    str(choice_label("subscription", "payment_method", "one_off")),
                    str(choice_label("instalment", "kind", "deposit")),
                    str(choice_label("instalment", "kind", "balance")),
                    str(choice_label("payment", "channel", "pos"))]
    for label in expected:
        assert label in cells, label
    assert office["sub"].number in cells and str(office["unit"]) in cells
    assert "¥1,000,000.00" in cells and "¥50,000.00" in cells
    assert f.VALID_ID_NUMBER in cells  # the administrator reads ID numbers whole
    assert 'class="timeline-step"' in record  # the deal's history from the audit trail


def test_issue19_2_the_archive_is_masked_for_the_vice_president(app, db, office):
    client = _client(app, office["vp"])
    listing = client.get("/admin/lead_archive/").get_data(as_text=True)
    assert "退订客户 139****0000" in _cells(listing) and "13912340000" not in listing
    kept = db.session.scalar(select(LeadArchive).where(LeadArchive.subscription_id == office["withdrawn"].id))
    record = _record(client.get(f"/admin/lead_archive/details/?id={kept.id}").get_data(as_text=True))
    cells = _cells(record)
    assert "139****0000" in cells and "110***********4573" in cells
    assert "13912340000" not in record and f.VALID_ID_NUMBER not in record
    assert "客户资金未到位" in cells  # why it was withdrawn


def _migration():
    path = Path(__file__).resolve().parent.parent / "migrations" / "versions" / "0019b_archive.py"
    spec = importlib.util.spec_from_file_location("m0019b_archive", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_issue19_2_deals_withdrawn_before_are_backfilled_into_the_archive(app, db, make_user):
    """A deal withdrawn before this change left no archive row: the migration writes one, from
    the deal's rows and the reason in its audit row, once."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    from models.audit import record
    s = db.session
    agent = make_user("agent", username="li")
    sub = f.subscription(s, agent, number="RG-OLD-1", payment_method="one_off", status="withdrawn",
                         withdrawn_at=dt.datetime(2026, 11, 20, 17, 30), withdrawn_by_id=agent.id)
    f.instalment(s, sub, seq=1, kind="deposit")
    record(s, "subscription", sub.id, "withdraw", {"status": ["draft", "withdrawn"], "reason": [None, "改买别盘"]},
           actor=agent.id)
    s.commit()
    assert s.scalar(select(LeadArchive).where(LeadArchive.subscription_id == sub.id)) is None
    for _ in range(2):  # idempotent
        with db.engine.begin() as conn:
            with Operations.context(MigrationContext.configure(conn)):
                _migration().upgrade()
    s.expire_all()
    kept = s.scalars(select(LeadArchive).where(LeadArchive.subscription_id == sub.id)).all()
    assert len(kept) == 1 and kept[0].reason == "withdrawal"
    snap = kept[0].snapshot
    assert snap["ended_on"] == "2026-11-21"  # 17:30 UTC is the next morning in Changsha
    assert snap["reason"] == "改买别盘" and snap["backfilled"] is True
    assert snap["subscription"]["number"] == "RG-OLD-1" and snap["subscription"]["unit"] == str(sub.unit)
    assert snap["instalments"][0]["kind"] == "deposit" and snap["instalments"][0]["amount_due"] == "50000.00"


# --- item 3: raw values -------------------------------------------------------------------------

def _codes() -> set[str]:
    """Every coded value the app stores (statuses, kinds, sources…): the keys of the labels and
    the values each table's CHECK constraints allow."""
    from models import db as _db
    from models.labels import CHOICES
    codes = {code for labels in CHOICES.values() for code in labels}
    for table in _db.metadata.tables.values():
        for constraint in table.constraints:
            text = str(getattr(constraint, "sqltext", ""))
            if " IN (" in text:
                codes |= set(re.findall(r"'([a-z_]+)'", text))
    return codes


def _grid_cells(html: str) -> list[tuple[str, str]]:
    """(column, text) of every cell of a grid page."""
    return [(col, re.sub(r"<[^>]+>", "", text).strip())
            for col, text in re.findall(r'<td class="col-([\w.]+)">(.*?)</td>', html, re.S)]


def _detail_cells(html: str) -> list[tuple[str, str]]:
    table = html[html.index("detail-fields"):] if "detail-fields" in html else ""
    table = table[:table.index("</table>")] if table else ""
    return [(re.sub(r"<[^>]+>", "", th).strip(), re.sub(r"<[^>]+>", "", td).strip())
            for th, td in re.findall(r"<th[^>]*>(.*?)</th>\s*<td>(.*?)</td>", table, re.S)]


# Columns whose values people type (a payment method's code, an account's username): data that may
# look like a code (an account named "finance").
DATA = {"code", "username"}


def test_issue19_3_no_grid_or_detail_page_shows_a_raw_code_or_none(app, db):
    """The demo office (deals in every state, price approvals, extensions, events…): every grid the
    administrator opens, and the details of its first row, read each coded value by its label and
    nothing as "None"."""
    from flask_admin.model import BaseModelView
    from demo import DEMO_PASSWORD
    assert app.test_cli_runner().invoke(args=["demo"]).exit_code == 0
    from models import PriceApproval
    from models.deals import decide_price
    from models import User
    vp = db.session.scalar(select(User).where(User.username == "vp"))
    for approval in db.session.scalars(select(PriceApproval).where(PriceApproval.status == "requested")).all()[:1]:
        decide_price(db.session, vp, approval.id, True)  # an approved request beside the waiting ones
    db.session.commit()
    client = app.test_client()
    assert Auth(client).login("admin", password=DEMO_PASSWORD).status_code == 302
    codes = _codes()
    from admin.labels import COLUMN_LABELS
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        data_labels = {str(COLUMN_LABELS[c]) for c in DATA}
    views = [v for a in app.extensions["admin"] for v in a._views if isinstance(v, BaseModelView)]
    raw, walked, with_rows = [], 0, 0
    for view in views:
        url = f"/admin/{view.endpoint}/"
        response = client.get(url)
        if response.status_code != 200:
            continue
        walked += 1
        html = response.get_data(as_text=True)
        cells = _grid_cells(html)
        with_rows += bool(cells)
        raw += [(url, col, text) for col, text in cells if (text in codes and col not in DATA) or text == "None"]
        first = re.search(r'/admin/%s/details/\?id=(\d+)' % re.escape(view.endpoint), html)
        if first:
            details = client.get(f"{url}details/?id={first.group(1)}").get_data(as_text=True)
            raw += [(url + "details", label, text) for label, text in _detail_cells(details)
                    if (text in codes and label not in data_labels) or text == "None"]
    assert walked >= 25 and with_rows >= 20, (walked, with_rows)
    assert not raw, "\n".join(map(str, raw))
    approvals = client.get("/admin/price_approval/").get_data(as_text=True)
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        approved = str(choice_label("price_approval", "status", "approved"))
    assert f'<span class="badge badge-status status-approved">{approved}</span>' in approvals


def test_issue19_2_4_a_reversal_in_the_kept_record_reads_minus_yuan_and_values_are_escaped(app, db, office):
    """The record wrote amounts by a writer of its own: a reversal read "¥-50,000.00" (issue 19,
    item 4: -¥50,000.00). Values typed by people (a name, a receipt number) are text, not HTML."""
    kept = db.session.scalar(select(LeadArchive).where(LeadArchive.subscription_id == office["sub"].id))
    snapshot = dict(kept.snapshot)
    payments = list(snapshot.get("payments") or [])
    payments.append({**(payments[0] if payments else {}), "receipt_no": "<img src=x onerror=alert(1)>",
                     "amount": "-50000.00"})
    snapshot["payments"] = payments
    snapshot["customer"] = {**snapshot["customer"], "name": "<script>alert(1)</script>"}
    kept.snapshot = snapshot
    db.session.commit()
    page = _client(app, office["admin"]).get(f"/admin/lead_archive/details/?id={kept.id}")
    record = _record(page.get_data(as_text=True))
    assert page.status_code == 200 and "-¥50,000.00" in _cells(record) and "¥-" not in record
    assert "<img src=x" not in record and "<script>alert" not in record
