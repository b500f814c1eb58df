"""Area true-up (面积补差, R-AFT-3), by 《商品房销售管理办法》第二十条: the rule against hand-computed
amounts and its properties; surveyed areas entered and imported; a building's batch computed,
applied once, refunded once; the buyer's right to cancel beyond ±3 % (refunded in full); the
screens and the notice."""
from __future__ import annotations

import datetime as dt
import io
from fractions import Fraction
from decimal import Decimal

import pytest
from hypothesis import example, given, settings, strategies as st
from sqlalchemy import func, select

from models import Audit, Charge, Document, RuleViolation, TrueUp, TrueUpBatch, Unit, Voucher
from models.change_apply import check_proposal
from models.charges import charges_owed
from models.inventory import PriceListRejected
from models.payments import money_held
from models.true_ups import (apply_batch, batch_totals, compute_batch, enter_surveyed_area, import_surveyed_areas,
                             read_surveyed_areas, refund_true_up, true_up_amounts)
from tests import factories as f
from tests.conftest import Auth, submission_key
from tests.support.jobs import drain
from tests.support.rules import raises_rule

TODAY = dt.date(2026, 11, 26)
D = Decimal
STAFF = {"control": ("sales_control", "chen"), "finance": ("finance", "zhao"), "manager": ("sales_manager", "boss"),
         "other": ("agent", "zhang")}


# --- The rule, against hand-computed amounts ------------------------------------------------------
# Every case: contract area C = 100.00 m², price P = 1,000,000.00, so the unit price p = 10,000.00/m².

def test_r_aft_3_minus_5_percent_refunds_3_percent_and_double_beyond():
    # S = 95.00: ratio = (95 − 100)/100 = −5 %. Refund = 3 %·C·p = 3 × 10,000 = 30,000.00
    # plus double beyond: 2 × (97 − 95) × 10,000 = 40,000.00 → 70,000.00 in all.
    out = true_up_amounts(D("100.00"), D("95.00"), D("1000000.00"))
    assert out["ratio_percent"] == D("-5.0000") and out["unit_price"] == D("10000.0000")
    assert (out["refund"], out["refund_double_part"], out["buyer_pays"], out["developer_bears"]) == (
        D("70000.00"), D("40000.00"), 0, 0)
    assert out["may_cancel"] is True


def test_r_aft_3_minus_3_percent_is_within_settled_at_the_unit_price():
    # S = 97.00: ratio −3 % exactly, within: refund = 3 × 10,000 = 30,000.00, nothing doubled, no cancel right.
    out = true_up_amounts(D("100.00"), D("97.00"), D("1000000.00"))
    assert out["ratio_percent"] == D("-3.0000")
    assert (out["refund"], out["refund_double_part"], out["may_cancel"]) == (D("30000.00"), 0, False)


def test_r_aft_3_no_difference_no_money():
    out = true_up_amounts(D("100.00"), D("100.00"), D("1000000.00"))
    assert out["ratio_percent"] == 0
    assert (out["buyer_pays"], out["refund"], out["developer_bears"], out["may_cancel"]) == (0, 0, 0, False)


def test_r_aft_3_plus_2_9_percent_the_buyer_pays_the_difference():
    # S = 102.90: ratio +2.9 %: buyer pays 2.90 × 10,000 = 29,000.00.
    out = true_up_amounts(D("100.00"), D("102.90"), D("1000000.00"))
    assert out["ratio_percent"] == D("2.9000")
    assert (out["buyer_pays"], out["refund"], out["developer_bears"], out["may_cancel"]) == (
        D("29000.00"), 0, 0, False)


def test_r_aft_3_plus_3_percent_is_within():
    # S = 103.00: ratio +3 % exactly: buyer pays 3 × 10,000 = 30,000.00, developer bears nothing.
    out = true_up_amounts(D("100.00"), D("103.00"), D("1000000.00"))
    assert (out["ratio_percent"], out["buyer_pays"], out["developer_bears"], out["may_cancel"]) == (
        D("3.0000"), D("30000.00"), 0, False)


def test_r_aft_3_plus_4_2_percent_the_buyer_pays_3_percent_the_developer_bears_the_rest():
    # S = 104.20: ratio +4.2 %: buyer pays 3 %·C·p = 30,000.00; developer bears (104.20 − 103) × 10,000
    # = 12,000.00.
    out = true_up_amounts(D("100.00"), D("104.20"), D("1000000.00"))
    assert (out["ratio_percent"], out["buyer_pays"], out["developer_bears"], out["may_cancel"]) == (
        D("4.2000"), D("30000.00"), D("12000.00"), True)


def test_r_aft_3_an_odd_unit_price_rounds_each_part_once():
    # C = 89.37, P = 1,234,567.00 → p = 13,814.1098…; S = 86.00 is (86 − 89.37)/89.37 = −3.7708 %:
    # 3 % part: 0.03 × 1,234,567 = 37,037.01; double: 2 × (0.97 × 89.37 − 86) × p
    # = 2 × 0.6889 × 13,814.1098… = 1.3778 × 13,814.1098… = 19,033.0805… → 19,033.08;
    # refund 37,037.01 + 19,033.08 = 56,070.09.
    out = true_up_amounts(D("89.37"), D("86.00"), D("1234567.00"))
    assert out["ratio_percent"] == D("-3.7708")
    assert (out["refund"], out["refund_double_part"]) == (D("56070.09"), D("19033.08"))


areas = st.decimals(min_value=D("20.00"), max_value=D("400.00"), places=2)
prices = st.decimals(min_value=D("100000.00"), max_value=D("30000000.00"), places=2)
ratios = st.decimals(min_value=D("-0.10"), max_value=D("0.10"), places=4)


@settings(max_examples=300, deadline=None)
@given(areas, ratios, prices)
@example(D("234.60"), D("0.0300"), D("3191409.50"))  # 3 %·C·p = 95,742.285 exactly: 95,742.29 to the fen
def test_r_aft_3_properties(contract, ratio, price):
    surveyed = (contract * (1 + ratio)).quantize(D("0.01"))
    out = true_up_amounts(contract, surveyed, price)
    # The unit price exactly: a 28-digit Decimal quotient can land a hair under x.xx5 and round the
    # other way (C 234.60 m², price 3,191,409.50: 3 %·C·p is exactly 95,742.285 → 95,742.29).
    p = Fraction(price) / Fraction(contract)

    def fen(x: Fraction) -> D:  # a non-negative exact amount to the fen, half up, as the rule rounds
        cents, rest = divmod(x.numerator * 100, x.denominator)
        return D(cents + (2 * rest >= x.denominator)).scaleb(-2)

    # The buyer never pays more than 3 %·C·p (to the fen).
    assert out["buyer_pays"] <= fen(Fraction(3, 100) * Fraction(contract) * p)
    assert out["buyer_pays"] == 0 or out["refund"] == 0
    if abs(surveyed - contract) <= D("0.03") * contract:
        # Within ±3 %: exactly |S − C|·p, to the fen.
        assert out["buyer_pays"] + out["refund"] == fen(abs(Fraction(surveyed - contract)) * p)
        assert not out["may_cancel"] and out["developer_bears"] == 0 and out["refund_double_part"] == 0
    else:
        assert out["may_cancel"]
    if surveyed < contract:
        # The developer refunds at least the difference at the unit price (two parts rounded: a fen).
        assert Fraction(out["refund"] + D("0.01")) >= abs(Fraction(surveyed - contract)) * p


# --- Surveyed areas ---------------------------------------------------------------------------------

@pytest.fixture
def office(make_deal, db):
    """Project XJ: one active deal on a 100 m² unit at 1,000,000 (deposit paid), and more units."""
    deal = make_deal(price="1000000.00", method="one_off", today=TODAY, staff=STAFF)
    unit = deal["unit"]
    unit.area = D("100.00")
    deal["building"] = unit.building
    db.session.commit()
    return deal


def add_deal(db, office, number, area="100.00", price="1000000.00", customer=None):
    unit = f.unit(db.session, office["building"], number=number, area=D(area), list_price=D(price))
    db.session.commit()
    people = {"agent": office["agent"], "control": office["control"], "finance": office["finance"]}
    lead = f.lead(db.session, owner=office["agent"], project_=office["project"], name=customer or f"客户{number}")
    db.session.commit()
    return f.through_steps(db.session, people, unit, lead, payment_method="one_off", subscribed_on=TODAY,
                           today=TODAY)


def survey(db, office, unit, area):
    enter_surveyed_area(db.session, office["control"], unit.id, area, TODAY, today=TODAY)
    db.session.commit()


def test_r_aft_3_surveyed_area_entered_audited_and_checked(db, office):
    survey(db, office, office["unit"], "101.50")
    assert office["unit"].surveyed_area == D("101.50") and office["unit"].surveyed_on == TODAY
    assert db.session.scalar(select(Audit.id).where(Audit.entity == "unit", Audit.action == "true_up_survey"))
    for typo in ("0", "-3", "151", "49.99", "abc"):
        with raises_rule("R-AFT-3"):
            enter_surveyed_area(db.session, office["control"], office["unit"].id, typo, TODAY, today=TODAY)
        db.session.rollback()
    with pytest.raises(RuleViolation):  # finance may not
        enter_surveyed_area(db.session, office["finance"], office["unit"].id, "100", TODAY, today=TODAY)


@pytest.mark.parametrize("typed", ["abc", "1e2", "NaN", "-101", "=1+1", "0x80", "101.505", "1,01.5", "101.5元",
                                   "¥101.50", D("101.505"), D("NaN")])
def test_r_aft_3_a_wrong_surveyed_area_is_refused_as_an_area_not_as_money(app, db, office, typed):
    from flask_babel import force_locale
    for locale in ("en", "zh_Hans_CN"):
        with force_locale(locale):  # the message is read in the language it is asked in
            with raises_rule("R-AFT-3") as refused:
                enter_surveyed_area(db.session, office["control"], office["unit"].id, typed, TODAY, today=TODAY)
            message = str(refused.value)
        db.session.rollback()
        assert "人民币" not in message and "yuan" not in message.lower() and "金额" not in message, message
        if locale == "en":
            assert "square metres" in message and "2 decimals" in message, message
    assert db.session.get(Unit, office["unit"].id).surveyed_area is None


@pytest.mark.parametrize("typed, area", [("101.5 ㎡", "101.50"), ("１０１．５", "101.50"), ("101.25m²", "101.25"),
                                         ("101.5 平方米", "101.50"), (D("101.5"), "101.50"), (101, "101.00")])
def test_r_aft_3_a_surveyed_area_reads_square_metres_with_2_decimals(db, office, typed, area):
    survey(db, office, office["unit"], typed)
    assert db.session.get(Unit, office["unit"].id).surveyed_area == D(area)


def test_r_aft_3_import_is_all_or_nothing_with_errors_per_row(app, db, office):
    other = f.unit(db.session, office["building"], number="0202", area=D("90.00"))
    db.session.commit()
    number = office["unit"].number
    bad = f"房号,实测面积\n{number},101.20\n0202,300\nX9,88\n0202,91\n".encode()
    rows = read_surveyed_areas(bad, "areas.csv")
    with app.test_request_context(), pytest.raises(PriceListRejected) as refused:
        import_surveyed_areas(db.session, office["control"], office["building"].id, rows, TODAY, today=TODAY)
    db.session.rollback()
    assert [row for row, _ in refused.value.errors] == [3, 4, 5]
    assert db.session.get(Unit, office["unit"].id).surveyed_area is None  # nothing written
    good = f"房号,实测面积\n{number},101.20\n0202,91\n".encode()
    assert import_surveyed_areas(db.session, office["control"], office["building"].id,
                                 read_surveyed_areas(good, "areas.csv"), TODAY, today=TODAY) == 2
    db.session.commit()
    assert (db.session.get(Unit, office["unit"].id).surveyed_area, db.session.get(Unit, other.id).surveyed_area) == (
        D("101.20"), D("91.00"))
    with pytest.raises(PriceListRejected):
        read_surveyed_areas(b"unit;x\n", "areas.csv")
    with pytest.raises(PriceListRejected):
        read_surveyed_areas(b"whatever", "areas.pdf")


# --- A building's batch -----------------------------------------------------------------------------

@pytest.fixture
def trued(db, office):
    """Four deals surveyed: +2 % (office's), −2 %, +4.2 %, −5 %; and a unit without a deal."""
    subs = {"up": office["sub"], "down": add_deal(db, office, "0301"), "beyond_up": add_deal(db, office, "0401"),
            "beyond_down": add_deal(db, office, "0501")}
    for key, area in (("up", "102.00"), ("down", "98.00"), ("beyond_up", "104.20"), ("beyond_down", "95.00")):
        survey(db, office, db.session.get(Unit, subs[key].unit_id), area)
    empty = f.unit(db.session, office["building"], number="0601", area=D("100.00"))
    db.session.commit()
    survey(db, office, empty, "99.00")
    office["subs"] = subs
    return office


def test_r_aft_3_batch_computed_per_live_deal_with_totals(db, trued):
    batch = compute_batch(db.session, trued["control"], trued["building"].id, TODAY, today=TODAY)
    db.session.commit()
    assert len(batch.true_ups) == 4  # the unit without a deal keeps its surveyed area only
    totals = batch_totals(db.session, [batch.id])[batch.id]
    # Buyers pay 20,000 (+2 %) + 30,000 (+4.2 %); refunds 20,000 (−2 %) + 70,000 (−5 %), of which 40,000
    # double; developer bears 12,000.
    assert totals == {"units": 4, "up": 2, "down": 2, "beyond": 2, "buyers_pay": D("50000.00"),
                      "refunds": D("90000.00"), "double": D("40000.00"), "developer_bears": D("12000.00")}
    with raises_rule("R-AFT-3"):  # nothing left to true up: every deal has its true-up in force
        compute_batch(db.session, trued["control"], trued["building"].id, TODAY, today=TODAY)


def test_r_aft_3_apply_makes_charges_once_and_refunds_wait_for_a_voucher(db, trued):
    batch = compute_batch(db.session, trued["control"], trued["building"].id, TODAY, today=TODAY)
    db.session.commit()
    with pytest.raises(RuleViolation):  # sales control may not apply
        apply_batch(db.session, trued["control"], batch.id, today=TODAY)
    db.session.rollback()
    apply_batch(db.session, trued["finance"], batch.id, today=TODAY)
    db.session.commit()
    apply_batch(db.session, trued["finance"], batch.id, today=TODAY)  # the second time: nothing
    db.session.commit()
    charges = db.session.scalars(select(Charge).order_by(Charge.subscription_id)).all()
    assert [(c.subscription_id, c.kind, c.amount, c.due_on) for c in charges] == [
        (trued["subs"]["up"].id, "area_true_up", D("20000.00"), TODAY + dt.timedelta(days=30)),
        (trued["subs"]["beyond_up"].id, "area_true_up", D("30000.00"), TODAY + dt.timedelta(days=30))]
    assert {t.status for t in db.session.scalars(select(TrueUp))} == {"applied"}
    assert db.session.get(TrueUpBatch, batch.id).status == "applied"
    assert db.session.scalar(select(func.count()).select_from(Charge).where(charges_owed())) == 2


def test_r_aft_3_refund_once_by_voucher_held_drops(db, trued):
    batch = compute_batch(db.session, trued["control"], trued["building"].id, TODAY, today=TODAY)
    apply_batch(db.session, trued["finance"], batch.id, today=TODAY)
    db.session.commit()
    sub = trued["subs"]["beyond_down"]
    true_up = db.session.scalar(select(TrueUp).where(TrueUp.subscription_id == sub.id))
    held = money_held(db.session, sub.id)
    voucher = refund_true_up(db.session, trued["finance"], true_up.id, channel="bank_transfer", issued_on=TODAY,
                             today=TODAY)
    db.session.commit()
    assert (voucher.kind, voucher.amount, voucher.true_up_id) == ("refund", D("70000.00"), true_up.id)
    assert voucher.number.startswith("TK-XJ-")
    assert money_held(db.session, sub.id) == held - D("70000.00")
    with raises_rule("R-AFT-3"):
        refund_true_up(db.session, trued["finance"], true_up.id, channel="bank_transfer", issued_on=TODAY, today=TODAY)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Voucher).where(Voucher.true_up_id == true_up.id)) == 1
    up = db.session.scalar(select(TrueUp).where(TrueUp.subscription_id == trued["subs"]["up"].id))
    with raises_rule("R-AFT-3"):  # nothing to refund on a true-up the buyer pays
        refund_true_up(db.session, trued["finance"], up.id, channel="bank_transfer", issued_on=TODAY, today=TODAY)
    db.session.rollback()


@pytest.mark.postgres
def test_r_aft_3_two_refund_clicks_at_once_refund_once(app, db, trued):
    from tests.support.race import race
    batch = compute_batch(db.session, trued["control"], trued["building"].id, TODAY, today=TODAY)
    apply_batch(db.session, trued["finance"], batch.id, today=TODAY)
    db.session.commit()
    true_up_id = db.session.scalar(select(TrueUp.id).where(TrueUp.subscription_id == trued["subs"]["down"].id))
    finance_id = trued["finance"].id

    def click(session):
        from models import User
        by = session.get(User, finance_id)
        refund_true_up(session, by, true_up_id, channel="bank_transfer", issued_on=TODAY, today=TODAY)
        session.commit()

    race(click, click, app=app, expected=(RuleViolation,))
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Voucher).where(Voucher.true_up_id == true_up_id)) == 1


@pytest.mark.postgres
def test_r_aft_3_two_computations_at_once_true_up_each_deal_once(app, db, trued):
    from tests.support.race import race
    building_id, control_id = trued["building"].id, trued["control"].id

    def compute(session):
        from models import User
        compute_batch(session, session.get(User, control_id), building_id, TODAY, today=TODAY)
        session.commit()

    race(compute, compute, app=app, expected=(RuleViolation,))
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(TrueUp)) == 4
    assert db.session.scalar(select(func.count(func.distinct(TrueUp.batch_id)))) == 1


def test_r_aft_3_beyond_3_percent_a_cancellation_refunds_in_full(db, trued):
    batch = compute_batch(db.session, trued["control"], trued["building"].id, TODAY, today=TODAY)
    apply_batch(db.session, trued["finance"], batch.id, today=TODAY)
    db.session.commit()
    beyond, within = trued["subs"]["beyond_up"], trued["subs"]["down"]
    asked = {"retain_deposit": False, "fee": "1000"}
    # Within ±3 % the agreement's fee stands (50,000 paid, 1,000 kept).
    normal = check_proposal(db.session, within, "cancellation", dict(asked), TODAY)
    assert (normal["refund"], normal["retained"]) == ("49000.00", "1000.00")
    asked = {"retain_deposit": True, "fee": "1000"}
    # Beyond +3 % (4.2 %), the buyer cancels by right: everything paid comes back.
    full = check_proposal(db.session, beyond, "cancellation", dict(asked), TODAY)
    assert (full["refund"], full["retained"], full["fee"], full["retain_deposit"]) == (
        "50000.00", "0.00", "0.00", False)


# --- The screens, through the HTTP client with CSRF ---------------------------------------------------

def _signed_in(app, username):
    client = app.test_client()
    assert Auth(client).login(username).status_code == 302
    client.post("/language", data={"lang": "en", "next": "/admin/", "csrf_token": Auth(client).csrf()})
    return client, Auth(client).csrf()


def _open(client, token, view, action, row_id):
    return client.post(f"/admin/{view}/action/", data={"csrf_token": token, "action": action, "rowid": row_id})


def test_r_aft_3_screens_upload_compute_apply_refund_and_the_deal_section(app, db, trued):
    building_id = trued["building"].id
    control, token = _signed_in(app, "chen")
    assert "true-up-survey" in control.get("/admin/true_up_batch/").get_data(as_text=True)
    page = control.get(f"/admin/true_up_batch/survey/?building_id={building_id}").get_data(as_text=True)
    assert "true-up-upload" in page and "true-up-compute" in page
    # A file with a typing error: every row's problem, nothing recorded.
    number = trued["unit"].number
    bad = control.post("/admin/true_up_batch/survey/upload", data={
        "csrf_token": token, "building_id": str(building_id), "surveyed_on": TODAY.isoformat(),
        "file": (io.BytesIO(f"房号,实测面积\n{number},300\n".encode()), "areas.csv")},
        content_type="multipart/form-data").get_data(as_text=True)
    assert "import-errors" in bad
    db.session.expire_all()
    assert db.session.get(Unit, trued["unit"].id).surveyed_area == D("102.00")
    good = control.post("/admin/true_up_batch/survey/upload", data={
        "csrf_token": token, "building_id": str(building_id), "surveyed_on": TODAY.isoformat(),
        "file": (io.BytesIO(f"房号,实测面积\n{number},102.00\n".encode()), "areas.csv")},
        content_type="multipart/form-data", follow_redirects=True)
    assert good.status_code == 200
    computed = control.post("/admin/true_up_batch/survey/compute", data={
        "csrf_token": token, "building_id": str(building_id), "surveyed_on": TODAY.isoformat()},
        follow_redirects=True).get_data(as_text=True)
    batch = db.session.scalars(select(TrueUpBatch)).one()
    assert "true-ups" in computed and trued["subs"]["beyond_down"].number in computed
    grid = control.get("/admin/true_up_batch/").get_data(as_text=True)
    assert "¥90,000.00" in grid and "¥12,000.00" in grid  # refunds, developer bears
    # Sales control may not apply; finance applies (a double click counts once).
    assert control.post("/admin/true_up_batch/apply/", data={"csrf_token": token, "ids": str(batch.id),
                                                            "submission_key": "k" * 32}).status_code == 403
    finance, finance_token = _signed_in(app, "zhao")
    assert finance.get(f"/admin/true_up_batch/survey/?building_id={building_id}").status_code == 403
    form = _open(finance, finance_token, "true_up_batch", "apply", batch.id).get_data(as_text=True)
    assert "true-up-totals" in form
    data = {"csrf_token": finance_token, "ids": str(batch.id), "submission_key": submission_key(form)}
    assert finance.post("/admin/true_up_batch/apply/", data=data, follow_redirects=True).status_code == 200
    assert finance.post("/admin/true_up_batch/apply/", data=data, follow_redirects=True).status_code == 200
    db.session.expire_all()
    assert db.session.get(TrueUpBatch, batch.id).status == "applied"
    assert db.session.scalar(select(func.count()).select_from(Charge)) == 2
    # The refund step, on the true-ups due one; sent twice, one voucher.
    true_up = db.session.scalar(select(TrueUp).where(TrueUp.subscription_id == trued["subs"]["beyond_down"].id))
    grid = finance.get("/admin/true_up/").get_data(as_text=True)
    assert 'data-step="refund"' in grid
    form = _open(finance, finance_token, "true_up", "refund", true_up.id).get_data(as_text=True)
    assert "true-up-refund" in form and "¥70,000.00" in form
    data = {"csrf_token": finance_token, "ids": str(true_up.id), "channel": "bank_transfer",
            "issued_on": TODAY.isoformat(), "submission_key": submission_key(form)}
    finance.post("/admin/true_up/refund/", data=data)
    finance.post("/admin/true_up/refund/", data=data)
    assert db.session.scalar(select(func.count()).select_from(Voucher).where(Voucher.true_up_id == true_up.id)) == 1
    # The agent: his deals' true-ups; the deal's page shows the section and the cancellation beyond 3 %.
    agent, agent_token = _signed_in(app, "li")
    assert agent.get("/admin/true_up_batch/").status_code == 403
    assert agent.post("/admin/true_up/refund/", data={**data, "csrf_token": agent_token}).status_code == 403
    mine = agent.get("/admin/true_up/").get_data(as_text=True)
    assert trued["subs"]["beyond_down"].number in mine and 'data-step="refund"' not in mine
    details = agent.get(f"/admin/subscription/details/?id={trued['subs']['beyond_up'].id}").get_data(as_text=True)
    assert "deal-true-up" in details and "true-up-may-cancel" in details and "true-up-cancel" in details
    within = agent.get(f"/admin/subscription/details/?id={trued['subs']['down'].id}").get_data(as_text=True)
    assert "deal-true-up" in within and "true-up-may-cancel" not in within
    cancel = _open(agent, agent_token, "subscription", "cancel_deal", trued["subs"]["beyond_up"].id)
    assert "submission_key" in cancel.get_data(as_text=True)
    other, _ = _signed_in(app, "zhang")
    assert trued["subs"]["beyond_down"].number not in other.get("/admin/true_up/").get_data(as_text=True)
    # The unit card shows the surveyed area.
    card = control.get(f"/admin/board/unit/{trued['unit'].id}").get_data(as_text=True)
    assert "surveyed-area" in card and "102.00" in card


def test_r_aft_3_notice_pdf_reads_the_computation(app, db, trued, tmp_path):
    import subprocess

    import pdf
    from models.documents import document_context
    batch = compute_batch(db.session, trued["control"], trued["building"].id, TODAY, today=TODAY)
    apply_batch(db.session, trued["finance"], batch.id, today=TODAY)
    db.session.commit()
    true_up = db.session.scalar(select(TrueUp).where(TrueUp.subscription_id == trued["subs"]["beyond_down"].id))
    with app.test_request_context():
        data = pdf.render("true_up_notice", document_context(db.session, "true_up_notice", true_up.id, today=TODAY))
    path = tmp_path / "notice.pdf"
    path.write_bytes(data)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True,
                          text=True).stdout
    for expected in ("面积补差通知书", "100.00", "95.00", "-5.0000", "¥10,000.00", "¥30,000.00", "¥40,000.00",
                     "¥70,000.00", "双倍返还", "有权退房"):
        assert expected in text.replace(" ", ""), expected
    # The batch's notices, requested from the grid by finance, rendered by the worker.
    finance, token = _signed_in(app, "zhao")
    finance.post("/admin/true_up_batch/action/", data={"csrf_token": token, "action": "notices",
                                                       "rowid": batch.id})
    drain(app)
    db.session.expire_all()
    assert [d.status for d in db.session.scalars(select(Document).where(Document.kind == "true_up_notice"))] == [
        "done"] * 4
