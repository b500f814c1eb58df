"""The grids and detail pages as staff read them: steps as buttons only where they apply, the
deal's history, money and dates, filters and search (issue 9; the browser tests drive the same
pages in Chromium)."""
from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from sqlalchemy import select

from models import Instalment, Payment
from models.base import office_today
from models.ladder import run_ladder
from models.payments import record_payment, reverse_payment
from tests import factories as f
from tests.conftest import Auth, submission_key


@pytest.fixture
def deal(make_deal):
    """An active deal of agent "li" (deposit in), with the manager, sales control and finance."""
    return make_deal(price="1500000.00", method="commercial_mortgage", today=office_today(), staff=f.STAFF)


def _page(client, username, path):
    Auth(client).login(username)
    html = client.get(path).get_data(as_text=True)
    Auth(client).logout()
    return html


def _steps(html):
    return set(re.findall(r'data-step="([a-z_]+)"', html))


def test_r_all_1_each_role_sees_the_step_buttons_of_its_own_work_only(client, db, deal, make_user):
    sub = deal["sub"]
    draft = f.subscription(db.session, deal["agent"], f.lead(db.session, deal["agent"], deal["project"]),
                           f.unit(db.session, f.building(db.session, deal["project"])))
    db.session.commit()
    # The active deal: finance records payments, the agent books the signing; nobody confirms it.
    details = f"/admin/subscription/details/?id={sub.id}"
    assert _steps(_page(client, "zhao", details)) == {"payment"}
    # Issue 21: the agent and the manager may ask for a change of the live deal (R-CHG-1).
    changes = {"change_unit", "change_buyers", "change_method", "change_price", "cancel_deal"}
    assert _steps(_page(client, "li", details)) == {"book"} | changes
    assert _steps(_page(client, "chen", details)) == set()
    assert _steps(_page(client, "wang", details)) == set()  # the lawyer
    assert _steps(_page(client, "boss", details)) == changes  # the manager
    # The draft: sales control confirms it, the agent or the manager may withdraw it.
    details = f"/admin/subscription/details/?id={draft.id}"
    assert _steps(_page(client, "chen", details)) == {"confirm"}
    assert _steps(_page(client, "li", details)) == {"withdraw"}
    assert _steps(_page(client, "boss", details)) == {"withdraw"}
    assert _steps(_page(client, "zhao", details)) == set()
    # On the list, each row carries the buttons of its own state.
    listing = _page(client, "chen", "/admin/subscription/")
    assert listing.count('data-step="confirm"') == 1


def test_a_step_that_changes_at_once_asks_first_and_a_form_step_returns_where_it_began(
        client, db, deal):
    sub = deal["sub"]
    draft = f.subscription(db.session, deal["agent"], f.lead(db.session, deal["agent"], deal["project"]),
                           f.unit(db.session, f.building(db.session, deal["project"])))
    db.session.commit()
    html = _page(client, "chen", f"/admin/subscription/details/?id={draft.id}")
    button = re.search(r'<button[^>]*data-step="confirm"[^>]*>', html).group(0)
    assert 'data-confirm="' in button  # static/salesdesk.js asks the question before sending
    auth = Auth(client)
    auth.login("zhao")
    details = f"/admin/subscription/details/?id={sub.id}"
    form = client.post("/admin/subscription/action/", data={
        "csrf_token": auth.csrf(details), "action": "payment", "rowid": str(sub.id), "url": details})
    assert 'name="url" value="%s"' % details in form.get_data(as_text=True)
    down = db.session.scalar(select(Instalment).where(Instalment.subscription_id == sub.id,
                                                      Instalment.kind == "down_payment"))
    done = client.post("/admin/subscription/payment/", data={
        "csrf_token": auth.csrf(details), "subscription_id": str(sub.id), "amount": "1000.00",
        "paid_on": office_today().isoformat(), "channel": "pos", "instalment_id": str(down.id),
        "url": details, "submission_key": submission_key(form.get_data(as_text=True))})
    assert done.status_code == 302 and done.headers["Location"].endswith(details)


def test_r_all_2_the_deal_history_tells_payments_reversals_and_the_ladder_in_order(client, db, deal):
    sub, today = deal["sub"], office_today()
    payment = record_payment(db.session, deal["finance"], sub.id, amount="1000", paid_on=today,
                             channel="pos")
    reverse_payment(db.session, deal["finance"], payment.id, "POS 金额录错")
    db.session.commit()
    down = db.session.scalar(select(Instalment).where(Instalment.subscription_id == sub.id,
                                                      Instalment.kind == "down_payment"))
    run_ladder(db.session, today=down.due_on + dt.timedelta(days=15))  # warning, letter, forfeit
    html = _page(client, "boss", f"/admin/subscription/details/?id={sub.id}")
    timeline = html[html.index('id="timeline"'):]
    actions = re.findall(r'data-action="([a-z_]+)"', timeline)
    assert actions == ["subscribe", "generate_plan", "confirm", "payment", "deposit", "payment",
                       "reverse_payment", "warning", "request_document", "lawyer_letter",
                       "request_document", "forfeit", "request_document"]
    reversal = db.session.scalar(select(Payment).where(Payment.reverses_id == payment.id))
    assert f"冲销 {payment.receipt_no}：POS 金额录错" in timeline
    assert reversal.receipt_no in timeline and "-¥1,000.00" in timeline
    assert f"处理日 {down.due_on + dt.timedelta(days=15)}" in timeline  # the ladder's own date
    assert "挞定" in timeline and "系统" in timeline  # the ladder acts as "the system"


def test_grids_show_money_dates_badges_and_filter_by_agent_and_search_by_unit(client, db, deal, make_user):
    other = make_user("agent", username="zhang")
    project = deal["project"]
    other_sub = f.subscription(db.session, other, f.lead(db.session, other, project),
                               f.unit(db.session, f.building(db.session, project), number="8-808"))
    db.session.commit()
    html = _page(client, "boss", "/admin/subscription/")
    assert "¥1,500,000.00" in html and "¥50,000.00" in html
    assert re.search(r'class="badge badge-status status-active">', html)
    assert office_today().isoformat() in html  # dates as 2026-11-26
    # The agent filter lists the agents by name, and keeps only that agent's deals.
    groups = json.loads(re.search(r'<div id="filter-groups-data" class="d-none">(.*?)</div>', html).group(1))
    (agent_filter,) = groups["置业顾问"]
    assert [str(other.id), "Zhang"] in agent_filter["options"]
    index = agent_filter["index"]
    only_zhang = _page(client, "boss", f"/admin/subscription/?flt0_{index}={other.id}")
    assert other_sub.number in only_zhang and deal["sub"].number not in only_zhang
    # Search finds a deal by its unit's number or the customer's phone.
    found = _page(client, "boss", "/admin/subscription/?search=8-808")
    assert other_sub.number in found and deal["sub"].number not in found
    found = _page(client, "boss", f"/admin/subscription/?search={deal['lead'].phone}")
    assert deal["sub"].number in found and other_sub.number not in found
    # Plan lines say how late they are, in the ladder's colours.
    lines = _page(client, "boss", "/admin/instalment/")
    assert "¥400,000.00" in lines and "col-overdue_days" in lines


def test_html_says_its_language_on_every_admin_page(client, db, deal):
    assert '<html lang="zh-CN">' in _page(client, "boss", "/admin/subscription/")
    client.set_cookie("lang", "en")
    assert '<html lang="en">' in _page(client, "boss", "/admin/instalment/")


def test_r_pay_6_an_extension_beyond_the_managers_limit_offers_its_buttons_to_the_vp_only(
        client, db, deal, make_user):
    from models.ladder import request_extension
    make_user("vp", username="vp")
    down = db.session.scalar(select(Instalment).where(Instalment.subscription_id == deal["sub"].id,
                                                      Instalment.kind == "down_payment"))
    request_extension(db.session, deal["agent"], down.id, 20, "客户资金周转")  # the limit is 15
    db.session.commit()
    assert _steps(_page(client, "boss", "/admin/extension/")) == set()
    assert _steps(_page(client, "vp", "/admin/extension/")) == {"approve", "reject"}


@pytest.mark.postgres
def test_a_big_grid_seen_whole_shows_postgresqls_estimate_and_counts_when_narrowed(client, db, deal,
                                                                                   monkeypatch):
    """At a million rows, counting costs ~60 ms a page: a grid seen whole (no filter, no search,
    every row visible) shows PostgreSQL's row estimate, as an estimate; narrowed, or for an agent,
    the count is exact (from the rows when the first page holds them all, else counted)."""
    import admin.base
    from sqlalchemy import event, text
    monkeypatch.setattr(admin.base, "ESTIMATE_FROM", 1)  # the test office is small
    for n in range(3):
        f.lead(db.session, owner=deal["agent"], project_=deal["project"], name=f"张{n}")
    db.session.commit()
    db.session.execute(text("ANALYZE lead"))
    db.session.commit()
    statements = []
    listener = lambda conn, cur, statement, *args: statements.append(statement)  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        whole = _page(client, "boss", "/admin/lead/")
        counted_whole = [s for s in statements if re.search(r"count\(\*\) AS count_1\s+FROM lead\s*$", s)]
        estimated_whole = [s for s in statements if "reltuples" in s]
        statements.clear()
        narrowed = _page(client, "boss", "/admin/lead/?search=客户")
        estimated_narrowed = [s for s in statements if "reltuples" in s]
        statements.clear()
        agent = _page(client, "li", "/admin/lead/")
        estimated_agent = [s for s in statements if "reltuples" in s]
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert counted_whole == [] and estimated_whole  # the estimate, read from pg_class
    assert "列表 (约 4)" in whole  # shown as an estimate
    assert estimated_narrowed == [] and estimated_agent == []
    assert "列表 (1)" in narrowed and "列表 (4)" in agent


@pytest.mark.parametrize("grid, sort", [("lead", None), ("lead", 1), ("unit", 2), ("payment", None), ("payment", 4)])
def test_a_deep_page_found_by_its_ids_first_holds_the_same_rows_in_the_same_order(
        app, client, db, deal, make_user, monkeypatch, grid, sort):
    """The deferred join of deep pages (ProtectedView._apply_pagination) changes the cost, never
    the rows: page 3 of 4-row pages, plainly and by ids first."""
    import admin.base
    from models.payments import record_payment
    for n in range(14):
        f.lead(db.session, owner=deal["agent"], project_=deal["project"], name=f"客户{n:02d}")
        f.unit(db.session, deal["unit"].building, number=f"9-{n % 3}{n:02d}")
        record_payment(db.session, deal["finance"], deal["sub"].id, amount="100", paid_on=office_today(),
                       channel="cash")
    db.session.commit()
    view = next(v for v in app.extensions["admin"][0]._views if getattr(v, "endpoint", "") == grid)
    Auth(client).login("boss")
    monkeypatch.setattr(view, "page_size", 4)
    path = f"/admin/{grid}/?page=2" + (f"&sort={sort}" if sort is not None else "")
    plain = client.get(path).get_data(as_text=True)
    monkeypatch.setattr(admin.base, "DEFER_FROM", 1)
    deferred = client.get(path).get_data(as_text=True)
    rows = lambda html: re.findall(r'/details/\?id=(\d+)', html)  # noqa: E731
    assert rows(plain) and rows(deferred) == rows(plain)
