"""Money that holds at every edge (issue 17): one definition of money owed now, one money parser,
one-time submission keys on every money form, dates within bounds, money held on dead deals
settled by numbered vouchers (R-PAY-1, R-PAY-5, R-SUB-1, R-SUB-2, R-CHG-5)."""
from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from models import Instalment, Payment, Subscription, Unit, Voucher
from models.deals import subscribe, withdraw_subscription
from models.payments import record_deposit
from models.ladder import run_ladder
from models.money import parse_money
from models.payments import record_payment, record_voucher
from tests import factories as f
from tests.conftest import Auth, submission_key
from tests.support.rules import raises_rule

T0 = dt.date(2026, 11, 1)


@pytest.fixture
def office(db, make_user, make_deal):
    """One project with its staff and six units; `deal(...)` makes subscriptions through the real
    steps (subscribed by agent li, confirmed by sales control, deposit by finance)."""
    s = db.session
    project = f.project(s, code="XJ", name="湘江壹号")
    building = f.building(s, project, name="1栋")
    units = [f.unit(s, building, number=f"10{n}", list_price=Decimal("1000000.00")) for n in range(6)]
    people = {"agent": make_user("agent", username="li"), "control": make_user("sales_control", username="chen"),
              "finance": make_user("finance", username="zhao"), "manager": make_user("sales_manager", username="boss"),
              "vp": make_user("vp", username="wu"), "lawyer": make_user("lawyer", username="sun")}
    s.commit()
    office = {"project": project, "units": units, **people}

    def deal(n, subscribed_on, stage="active", method="one_off", today=None):
        return make_deal(office=office, unit=units[n], customer=f"客户{n}", subscribed_on=subscribed_on,
                         today=today, method=method, stage=stage)

    office["deal"] = deal
    return office


def _balance(db, sub_id):
    return db.session.scalar(select(Instalment).where(Instalment.subscription_id == sub_id, Instalment.seq == 2))


# --- 1. Money owed now: one definition --------------------------------------------------------------

def test_r_pay_5_money_owed_now_is_one_figure_on_dashboard_grid_export_and_statement(app, client, db, office):
    """Forfeited, withdrawn, expired and draft deals owe nothing: the finance dashboard, the manager's
    ageing, the plan grid's overdue filter, the finance export "仅逾期" and the statements give
    one figure, the live deal's late balance (seen: export ¥12.5M against dashboard ¥5.2M)."""
    from flask_babel import force_locale

    from models.reports import collection_and_ageing, finance_panel
    from models.documents import document_context
    from models.exports import parse_filters, write_export
    deal = office["deal"]
    live = deal(0, T0 + dt.timedelta(days=10))               # balance due T0+17
    forfeited = deal(1, T0)                                   # balance due T0+7: forfeited on T0+22
    expired = deal(2, T0 + dt.timedelta(days=5), stage="draft")  # deposit never came
    withdrawn = deal(3, T0 + dt.timedelta(days=20), stage="confirmed")
    withdraw_subscription(db.session, office["agent"], withdrawn.id, "客户改变主意")
    db.session.commit()
    today = T0 + dt.timedelta(days=22)
    counts = run_ladder(db.session, today)
    assert counts["forfeit"] == 1 and counts["expired"] == 1
    db.session.expire_all()
    assert [db.session.get(Subscription, s.id).status for s in (live, forfeited, expired, withdrawn)] == [
        "active", "forfeited", "expired", "withdrawn"]
    owed = _balance(db, live.id).amount_due  # 950,000.00, 5 days late
    assert finance_panel(db.session, today)["overdue"] == (1, owed)
    assert sum(a["amount"] for a in collection_and_ageing(db.session, today)[1]) == owed
    # The finance export of overdue plan lines, as the download sends it.
    out = io.BytesIO()
    with app.test_request_context():
        filters = parse_filters(db.session, "instalments", {"overdue": "1"})
        assert write_export(db.session, "instalments", "csv", filters, office["finance"], out, today=today) == 1
    rows = list(csv.reader(io.StringIO(out.getvalue().decode("utf-8-sig"))))
    assert Decimal(rows[-1][11]) == owed and rows[1][1] == live.number
    # Every line of the forfeited deal, unfiltered: its status said, never days late.
    out = io.BytesIO()
    with app.test_request_context():
        write_export(db.session, "instalments", "csv", {}, office["finance"], out, today=today)
    lines = [r for r in csv.reader(io.StringIO(out.getvalue().decode("utf-8-sig"))) if r[1] == forfeited.number]
    assert lines and all(r[13] == "0" and r[14] == "已挞定" for r in lines)
    # The plan grid's overdue filter and its late-days column.
    Auth(client).login("zhao")
    view = next(v for v in app.extensions["admin"][0]._views if v.endpoint == "instalment")
    index = next(i for i, flt in enumerate(view._filters) if type(flt).__name__ == "OverdueFilter")
    from unittest import mock
    with mock.patch("admin.money.office_today", return_value=today):
        page = client.get(f"/admin/instalment/?flt0_{index}=1").get_data(as_text=True)
        assert live.number in page
        assert forfeited.number not in page and expired.number not in page and withdrawn.number not in page
        page = client.get("/admin/instalment/?search=" + forfeited.number).get_data(as_text=True)
        assert "已挞定" in page and "天</span>" not in page
    # The statements: the forfeited customer owes nothing now; the live one the late balance.
    with app.test_request_context(), force_locale("zh_Hans_CN"), mock.patch("models.documents.office_today",
                                                                           return_value=today):
        [dead] = document_context(db.session, "statement", forfeited.lead_id)["deals"]
        [alive] = document_context(db.session, "statement", live.lead_id)["deals"]
    assert (dead["owed"], dead["overdue"]) == (0, 0)
    assert alive["overdue"] == owed and alive["owed"] == owed


# --- 2. A money form sent twice records once ------------------------------------------------------

def _open_payment_form(client, sub_id, token):
    page = client.post("/admin/subscription/action/", data={"csrf_token": token, "action": "payment",
                                                             "rowid": sub_id}).get_data(as_text=True)
    return submission_key(page)


def test_r_pay_1_the_same_payment_form_sent_twice_records_once_and_says_so(client, db, office):
    sub = office["deal"](0, f.TODAY - dt.timedelta(days=3), today=f.TODAY)
    auth = Auth(client)
    auth.login("zhao")
    token = auth.csrf()
    key = _open_payment_form(client, sub.id, token)  # a cash payment: no bank reference to catch it
    data = {"csrf_token": token, "subscription_id": str(sub.id), "amount": "10000", "paid_on": str(f.TODAY),
            "channel": "cash", "submission_key": key}
    from unittest import mock
    with mock.patch("models.payments.office_today", return_value=f.TODAY):
        first = client.post("/admin/subscription/payment/", data=data, follow_redirects=True)
        second = client.post("/admin/subscription/payment/", data=data, follow_redirects=True)
    assert "SJ-XJ-000002" in first.get_data(as_text=True)
    told = second.get_data(as_text=True)
    assert "已提交并登记" in told and "SJ-XJ-000002" in told and "未重复登记" in told
    assert db.session.scalar(select(func.count()).select_from(Payment).where(Payment.channel == "cash")) == 1
    # A form without its key (older than the rule, or not ours) records nothing.
    del data["submission_key"]
    with mock.patch("models.payments.office_today", return_value=f.TODAY):
        refused = client.post("/admin/subscription/payment/", data=data, follow_redirects=True)
    assert "表单已失效" in refused.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Payment).where(Payment.channel == "cash")) == 1


def test_r_pay_1_deposits_reversals_and_refunds_sent_twice_record_once(app, client, db, office):
    from unittest import mock
    sub = office["deal"](0, f.TODAY, stage="confirmed")
    auth = Auth(client)
    auth.login("zhao")
    token = auth.csrf()
    page = client.post("/admin/subscription/action/", data={"csrf_token": token, "action": "deposit",
                                                             "rowid": sub.id}).get_data(as_text=True)
    data = {"csrf_token": token, "subscription_id": str(sub.id), "amount": "50,000.00", "paid_on": str(f.TODAY),
            "channel": "pos", "submission_key": submission_key(page)}
    with mock.patch("models.payments.office_today", return_value=f.TODAY):
        client.post("/admin/subscription/deposit/", data=data)
        again = client.post("/admin/subscription/deposit/", data=data, follow_redirects=True)
    assert "已提交并登记" in again.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 1
    payment_id = db.session.scalar(select(Payment.id))
    page = client.post("/admin/payment/action/", data={"csrf_token": token, "action": "reverse",
                                                        "rowid": payment_id}).get_data(as_text=True)
    data = {"csrf_token": token, "ids": str(payment_id), "reason": "POS 小票录错", "submission_key": submission_key(page)}
    client.post("/admin/payment/reverse/", data=data)
    again = client.post("/admin/payment/reverse/", data=data, follow_redirects=True)
    assert "已提交并登记" in again.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Payment).where(Payment.amount < 0)) == 1


def test_r_chg_5_a_refund_voucher_sent_twice_is_recorded_once(client, db, office):
    sub = office["deal"](0, f.TODAY - dt.timedelta(days=25), today=f.TODAY)
    run_ladder(db.session, f.TODAY)  # balance due 18 days ago: forfeited, 50,000 held
    assert db.session.get(Subscription, sub.id).status == "forfeited"
    auth = Auth(client)
    auth.login("zhao")
    token = auth.csrf("/admin/settlement/")
    assert sub.number in client.get("/admin/settlement/").get_data(as_text=True)
    page = client.post("/admin/settlement/action/", data={"csrf_token": token, "action": "voucher",
                                                           "rowid": sub.id}).get_data(as_text=True)
    assert "没收 ¥50,000.00" in page  # the agreement: a defaulting buyer's deposit is retained
    data = {"csrf_token": token, "ids": str(sub.id), "kind": "retained", "amount": "50000", "issued_on": str(f.TODAY),
            "channel": "", "reason": "认购书第八条：买受人逾期付款，定金不予退还", "submission_key": submission_key(page)}
    from unittest import mock
    with mock.patch("models.payments.office_today", return_value=f.TODAY):
        done = client.post("/admin/settlement/voucher/", data=data, follow_redirects=True)
        again = client.post("/admin/settlement/voucher/", data=data, follow_redirects=True)
    assert "TK-XJ-000001" in done.get_data(as_text=True)
    assert "已提交并登记" in again.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Voucher)) == 1
    assert sub.number not in client.get("/admin/settlement/").get_data(as_text=True)  # settled


@pytest.mark.postgres
def test_r_pay_1_ten_concurrent_posts_of_one_payment_form_record_it_once(app, client, db, office):
    """Ten posts of one form at the same instant, each its own request (as a browser retrying and
    a double click would send them): one payment, nine told it was already recorded."""
    from unittest import mock

    from tests.support.race import post_at_once
    sub = office["deal"](0, f.TODAY - dt.timedelta(days=3), today=f.TODAY)
    auth = Auth(client)
    auth.login("zhao")
    token = auth.csrf()
    key = _open_payment_form(client, sub.id, token)
    cookie = client.get_cookie("session")
    data = {"csrf_token": token, "subscription_id": str(sub.id), "amount": "10000", "paid_on": str(f.TODAY),
            "channel": "cash", "submission_key": key}
    with mock.patch("models.payments.office_today", return_value=f.TODAY):
        pages = post_at_once(app, cookie, "/admin/subscription/payment/", data)
    assert len(pages) == 10
    assert db.session.scalar(select(func.count()).select_from(Payment).where(Payment.channel == "cash")) == 1
    assert sum("已提交并登记" in p for p in pages) == 9


@pytest.mark.postgres
def test_r_pay_1_ten_concurrent_calls_with_one_key_record_once(app, db, office):
    """The same at the domain's depth: ten sessions, one key, one payment."""
    from models import User
    from models.submissions import AlreadySubmitted, new_key
    from tests.support.race import race
    sub = office["deal"](0, f.TODAY - dt.timedelta(days=3), today=f.TODAY)
    finance_id, sub_id, key = office["finance"].id, sub.id, new_key()

    def pay(session):
        record_payment(session, session.get(User, finance_id), sub_id, amount="10000", paid_on=f.TODAY,
                       channel="cash", key=key, today=f.TODAY)
        session.commit()
        return "recorded"

    outcomes = ["repeat" if isinstance(result, AlreadySubmitted) else result
                for result in race(*[pay] * 10, app=app, expected=AlreadySubmitted)]
    assert sorted(outcomes) == ["recorded"] + ["repeat"] * 9
    assert db.session.scalar(select(func.count()).select_from(Payment).where(Payment.channel == "cash")) == 1


# --- 3. One money parser ----------------------------------------------------------------------------

@pytest.mark.parametrize("typed, amount", [
    ("50000", "50000.00"), ("50,000.00", "50000.00"), ("¥50,000", "50000.00"), (" ￥1,234,567.8 ", "1234567.80"),
    ("５００００．５", "50000.50"), ("１２，３４５", "12345.00"), ("0.01", "0.01"), (Decimal("7.10"), "7.10"), (3, "3.00"),
])
def test_r_pay_1_one_money_parser_reads_what_people_type(typed, amount):
    assert parse_money(typed, "金额") == Decimal(amount)


@pytest.mark.parametrize("typed, words", [
    ("12.345", "小数"), ("1_000", "数字"), ("١٠٠٠", "数字"), ("१०००", "数字"), ("1e3", "数字"), ("NaN", "数字"),
    ("Infinity", "数字"), ("-5", "大于零"), ("0", "大于零"), ("1,00", "数字"), ("12.", "数字"), ("", "请填写"),
    ("1000000000000", "过大"), (Decimal("1.005"), "小数"), (Decimal("NaN"), "数字"), ("五万", "数字"),
])
def test_r_pay_1_one_money_parser_refuses_the_rest_clearly(app, typed, words):
    from flask_babel import force_locale
    with app.test_request_context(), force_locale("zh_Hans_CN"), raises_rule("R-PAY-1") as refused:
        parse_money(typed, "金额")
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        assert words in str(refused.value), str(refused.value)


@pytest.mark.parametrize("where", ["payment", "deposit", "subscription", "target", "price_list"])
def test_r_pay_1_every_form_and_import_refuses_an_amount_with_three_decimals(app, db, office, where):
    """12.345 was recorded as ¥12.34 without a word: every path that takes money reads it with
    the one parser and refuses it."""
    from models.inventory import PriceListRejected, import_price_list
    from models.targets import set_target
    s = db.session
    deal = office["deal"]
    if where == "payment":
        sub = deal(0, f.TODAY)
        call = lambda: record_payment(s, office["finance"], sub.id, amount="12.345", paid_on=f.TODAY,  # noqa: E731
                                      channel="cash", today=f.TODAY)
    elif where == "deposit":
        sub = deal(0, f.TODAY, stage="confirmed")
        call = lambda: record_deposit(s, office["finance"], sub.id, amount="50000.001", paid_on=f.TODAY,  # noqa: E731
                                      channel="cash", today=f.TODAY)
    elif where == "subscription":
        lead = f.lead(s, owner=office["agent"], project_=office["project"])
        s.commit()
        call = lambda: subscribe(s, office["agent"], unit_id=office["units"][5].id, lead_id=lead.id,  # noqa: E731
                                 payment_method="one_off", deposit="50000.005", id_number=f.VALID_ID_NUMBER,
                                 address="长沙", today=f.TODAY)
    elif where == "target":
        call = lambda: set_target(s, office["manager"], office["agent"].id, "2026-11", subscriptions=1,  # noqa: E731
                                  amount="100.125", collections="0")
    else:
        rows = [{"project": "XJ", "building": "9栋", "floor": "1", "unit": "101", "layout": "两室",
                 "area": "89.5", "unit_price": "12800.125"}]
        with app.test_request_context(), pytest.raises(PriceListRejected) as rejected:
            import_price_list(s, office["control"], rows)
        assert "小数" in rejected.value.errors[0][1] or "decimals" in rejected.value.errors[0][1]
        return
    rule = {"payment": "R-PAY-1", "deposit": "R-SUB-2", "subscription": "R-SUB-1", "target": "R-ALL-3"}[where]
    with app.test_request_context():
        with raises_rule(rule) as refused:
            call()
        assert "小数" in str(refused.value.message)  # the parser's own words, in the user's language
    s.rollback()
    assert s.scalar(select(func.count()).select_from(Payment).where(Payment.channel == "cash")) == 0


# --- 4. Dates within bounds ---------------------------------------------------------------------------

def test_r_sub_1_a_subscription_date_lies_within_the_projects_days_back_and_after_its_sale_start(db, office):
    s = db.session
    lead = f.lead(s, owner=office["agent"], project_=office["project"])
    s.commit()

    def try_on(day):
        return subscribe(s, office["agent"], unit_id=office["units"][5].id, lead_id=lead.id, payment_method="one_off",
                         deposit="50000", id_number=f.VALID_ID_NUMBER, address="长沙", subscribed_on=day,
                         today=f.TODAY)

    for day in (dt.date(1900, 1, 1), f.TODAY - dt.timedelta(days=31), f.TODAY + dt.timedelta(days=1)):
        with raises_rule("R-SUB-1"):
            try_on(day)
        s.rollback()
    office["project"].sales_start_on = f.TODAY - dt.timedelta(days=10)  # the sale opened 10 days ago
    s.commit()
    with raises_rule("R-SUB-1"):
        try_on(f.TODAY - dt.timedelta(days=11))
    s.rollback()
    assert try_on(f.TODAY - dt.timedelta(days=10)).subscribed_on == f.TODAY - dt.timedelta(days=10)
    s.rollback()
    office["project"].sales_start_on = None
    s.commit()
    sub = try_on(f.TODAY - dt.timedelta(days=30))  # the default: 30 days back
    assert sub.subscribed_on == f.TODAY - dt.timedelta(days=30)


def test_r_sub_2_the_deposit_is_due_within_the_projects_days(db, office):
    s = db.session
    lead = f.lead(s, owner=office["agent"], project_=office["project"])
    s.commit()
    with raises_rule("R-SUB-2"):
        subscribe(s, office["agent"], unit_id=office["units"][5].id, lead_id=lead.id, payment_method="one_off",
                  deposit="50000", id_number=f.VALID_ID_NUMBER, address="长沙", subscribed_on=f.TODAY,
                  deposit_due_on=f.TODAY + dt.timedelta(days=8), today=f.TODAY)  # a draft held for ever
    s.rollback()
    assert s.get(Unit, office["units"][5].id).status == "available"


def test_r_pay_1_a_payment_date_lies_within_the_projects_days_back(db, office):
    sub = office["deal"](0, f.TODAY - dt.timedelta(days=40), today=f.TODAY - dt.timedelta(days=20))
    for day in (dt.date(1900, 1, 1), f.TODAY - dt.timedelta(days=31)):
        with raises_rule("R-PAY-1"):
            record_payment(db.session, office["finance"], sub.id, amount="1000", paid_on=day, channel="cash",
                           today=f.TODAY)
        db.session.rollback()
    record_payment(db.session, office["finance"], sub.id, amount="1000", paid_on=f.TODAY - dt.timedelta(days=30),
                   channel="cash", today=f.TODAY)


# --- 12. Money held on a deal that is over --------------------------------------------------------------

def test_r_chg_5_money_held_on_a_forfeited_deal_is_settled_by_numbered_vouchers_never_more(app, db, office):
    s = db.session
    sub = office["deal"](0, f.TODAY - dt.timedelta(days=25), today=f.TODAY)
    record_payment(s, office["finance"], sub.id, amount="100000", paid_on=f.TODAY - dt.timedelta(days=20),
                   channel="bank_transfer", today=f.TODAY)
    s.commit()
    from models.payments import awaiting_settlement, money_held, settlement_proposal
    with raises_rule("R-CHG-5"):  # a live deal is not settled by voucher
        record_voucher(s, office["finance"], sub.id, kind="refund", amount="1", issued_on=f.TODAY,
                       channel="bank_transfer", reason="x", today=f.TODAY)
    s.rollback()
    run_ladder(s, f.TODAY)
    sub = s.get(Subscription, sub.id)
    assert sub.status == "forfeited" and money_held(s, sub.id) == Decimal("150000.00")
    assert settlement_proposal(s, sub) == {"held": Decimal("150000.00"), "retain": Decimal("50000.00"),
                                           "refund": Decimal("100000.00")}
    with raises_rule("R-CHG-5", match="150,000.00"):  # never more than is held
        record_voucher(s, office["finance"], sub.id, kind="refund", amount="150000.01", issued_on=f.TODAY,
                       channel="bank_transfer", reason="退还客户", today=f.TODAY)
    s.rollback()
    with raises_rule("R-ALL-1"):
        record_voucher(s, office["manager"], sub.id, kind="refund", amount="1", issued_on=f.TODAY,
                       channel="bank_transfer", reason="x", today=f.TODAY)
    s.rollback()
    refund = record_voucher(s, office["finance"], sub.id, kind="refund", amount="100000", issued_on=f.TODAY,
                            channel="bank_transfer", reason="退还首期款", today=f.TODAY)
    retained = record_voucher(s, office["finance"], sub.id, kind="retained", amount="50,000", issued_on=f.TODAY,
                              reason="认购书约定：定金不予退还", today=f.TODAY)
    s.commit()
    assert (refund.number, retained.number) == ("TK-XJ-000001", "TK-XJ-000002")
    assert money_held(s, sub.id) == 0
    assert s.scalar(select(func.count()).select_from(Subscription).where(awaiting_settlement())) == 0
    assert s.scalar(select(func.count()).select_from(Payment).where(Payment.subscription_id == sub.id)) == 2
    with raises_rule("R-CHG-5"):  # nothing left to settle
        record_voucher(s, office["finance"], sub.id, kind="refund", amount="0.01", issued_on=f.TODAY,
                       channel="bank_transfer", reason="x", today=f.TODAY)
    s.rollback()
    with raises_rule("R-ALL-2"):  # vouchers, like payments, are never edited
        refund = s.get(Voucher, refund.id)
        refund.amount = Decimal("1")
        s.flush()
    s.rollback()


def test_r_pay_1_a_key_serves_one_form_of_one_person_for_one_deal(app, db, office, make_user):
    """A key taken by another deal, another person or another kind of form is refused like a stale
    form, and says nothing of what the first recorded."""
    from flask_babel import force_locale

    from models.submissions import new_key
    s = db.session
    one, two = office["deal"](0, f.TODAY), office["deal"](1, f.TODAY)
    other_clerk = make_user("finance", username="qian")
    key = new_key()
    record_payment(s, office["finance"], one.id, amount="10000", paid_on=f.TODAY, channel="cash", key=key,
                   today=f.TODAY)
    s.commit()
    for by, sub in ((office["finance"], two), (other_clerk, one)):
        with app.test_request_context(), force_locale("zh_Hans_CN"):
            with raises_rule("R-PAY-1") as refused:
                record_payment(s, by, sub.id, amount="20000", paid_on=f.TODAY, channel="cash", key=key, today=f.TODAY)
            assert "已失效" in str(refused.value) and "10,000" not in str(refused.value)
        s.rollback()
    with raises_rule("R-PAY-1"):  # the same key on another kind of money form (a deposit)
        record_deposit(s, office["finance"], office["deal"](2, f.TODAY, stage="confirmed").id, amount="50000",
                       paid_on=f.TODAY, channel="cash", key=key, today=f.TODAY)
    s.rollback()
    assert s.scalar(select(func.count()).select_from(Payment).where(Payment.channel == "cash")) == 1


def test_the_settlement_page_masks_the_id_number_as_every_page_does(client, db, office):
    sub = office["deal"](0, f.TODAY - dt.timedelta(days=25), today=f.TODAY)
    run_ladder(db.session, f.TODAY)
    Auth(client).login("boss")
    page = client.get(f"/admin/settlement/details/?id={sub.id}").get_data(as_text=True)
    assert sub.number in page and f.VALID_ID_NUMBER not in page
