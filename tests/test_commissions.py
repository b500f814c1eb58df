"""The commission engine (R-COM-2): rules by role and channel, paid in stages, recalculated on every
change of a deal (payments and their reversals, signing, swaps, price changes, splits, rules),
clawed back when a deal ends — always by new lines, never an edit — and the daily sweep that
catches what a path missed. `deal_commission` is the one definition the lines must add up to."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from flask_babel import force_locale
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, select

from models import (Audit, ChangeRequest, ChannelCompany, ChannelRegistration, CommissionLine, CommissionStatement,
                    DealSplit, Instalment, RuleViolation, Subscription)
from models.base import utcnow
from models.change_apply import apply_change
from models.base import office_today
from models.commissions import (apply_rules, apportion, deal_commission, line_month, recompute_commissions,
                                recompute_deal, save_rule, set_split, stages_reached)
from models.contracts import book_signing, sign_contract
from models.ladder import forfeit
from models.payments import record_payment, reverse_payment
from models import commissions, deals, payments
from tests import factories as f

TODAY = dt.date(2026, 11, 26)
AT = dt.datetime(2026, 12, 1, 10, 0)
STAFF = {"control": ("sales_control", None), "finance": ("finance", None), "lawyer": ("lawyer", "sun"),
         "manager": ("sales_manager", "boss"), "vp": ("vp", "vp1")}
QUARTERS = {"subscribed": 25, "signed": 25, "down_payment": 25, "disbursed": 25}


def saved(db, by, project_id, values, rule_id=None, today=None):
    """A rule saved and committed, then applied as its job applies it (models.commissions.apply_rules)."""
    rule = save_rule(db.session, by, project_id, values, rule_id=rule_id)
    db.session.commit()
    apply_rules(db.session, project_id, today or office_today())
    return rule


def agent_rule(**kw):
    return {"name": "置业顾问", "role": "agent", "basis": "rate", "rate_percent": "1", "stage_shares": QUARTERS, **kw}


@pytest.fixture
def deal(make_deal, db):
    """An active commercial-mortgage deal on 1,000,000.00 (deposit 50,000 in; down payment 250,000,
    loan 700,000 due), with an agent rule of 1 % in four equal stages and a manager rule of 0.2 %
    for "boss"; "free" is another unit of 1,200,000.00."""
    deal = make_deal(price="1000000.00", method="commercial_mortgage", today=TODAY, staff=STAFF)
    deal["free"] = f.unit(db.session, deal["unit"].building, number="1501", list_price=Decimal("1200000.00"))
    db.session.commit()
    saved(db, deal["vp"], deal["project"].id, agent_rule(), today=TODAY)
    saved(db, deal["vp"], deal["project"].id,
          {"role": "manager", "basis": "rate", "rate_percent": "0.2", "payee_user_id": deal["manager"].id},
          today=TODAY)  # the default shares: 30 / 40 / 30 / 0
    db.session.commit()
    return deal


def pay(db, deal, amount, on=TODAY, line=None):
    payment = record_payment(db.session, deal["finance"], deal["sub"].id, amount=amount, paid_on=on,
                             channel="bank_transfer", today=on, instalment_id=line)
    db.session.commit()
    return payment


def loan_line(db, deal):
    return db.session.scalar(select(Instalment.id).where(Instalment.subscription_id == deal["sub"].id,
                                                         Instalment.kind == "commercial_loan",
                                                         Instalment.status != "replaced"))


def sign(db, deal):
    contract = book_signing(db.session, deal["agent"], deal["sub"].id, appointment_at=AT, today=TODAY)
    sign_contract(db.session, deal["lawyer"], contract.id, number=f"HT-{deal['sub'].id}", signed_on=TODAY,
                  today=TODAY)
    db.session.commit()


def approved_change(db, deal, kind, proposal, reason="客户要求"):
    change = ChangeRequest(subscription_id=deal["sub"].id, kind=kind, chain="sales_manager", step=1,
                           proposal=proposal, before={}, difference={}, reason=reason, status="approved",
                           requested_by_id=deal["agent"].id, decided_by_id=deal["manager"].id, decided_at=utcnow())
    db.session.add(change)
    db.session.commit()
    apply_change(db.session, deal["manager"], change, TODAY)
    change.applied_at = utcnow()
    db.session.commit()
    db.session.expire_all()


def sums(db, sub_id) -> dict:
    L = CommissionLine
    return {(r.role, r.payee_user_id, r.payee_company_id, r.stage, r.rule_id): r.total for r in db.session.execute(
        select(L.role, L.payee_user_id, L.payee_company_id, L.stage, L.rule_id, func.sum(L.amount).label("total"))
        .where(L.subscription_id == sub_id).group_by(L.role, L.payee_user_id, L.payee_company_id, L.stage, L.rule_id))
        if r.total}


def by_stage(db, sub_id, role="agent") -> dict:
    out = {}
    for (r, _u, _c, stage, _rule), total in sums(db, sub_id).items():
        if r == role:
            out[stage] = out.get(stage, Decimal("0")) + total
    return out


def conserved(db, sub_id) -> bool:
    sub = db.session.get(Subscription, sub_id, populate_existing=True)
    due = {k: v for k, v in deal_commission(db.session, sub, TODAY).items() if v}
    return sums(db, sub_id) == due


def test_r_com_2_each_stage_earns_its_share_when_reached_and_only_then(db, deal):
    sub_id = deal["sub"].id
    # The rules came after the deposit: saving them wrote the subscription stage at once.
    assert by_stage(db, sub_id) == {"subscribed": Decimal("2500.00")}
    assert by_stage(db, sub_id, "manager") == {"subscribed": Decimal("600.00")}
    pay(db, deal, "250000")
    assert by_stage(db, sub_id)["down_payment"] == Decimal("2500.00")
    sign(db, deal)
    assert by_stage(db, sub_id)["signed"] == Decimal("2500.00")
    assert by_stage(db, sub_id, "manager")["signed"] == Decimal("800.00")
    pay(db, deal, "700000", line=loan_line(db, deal))
    assert by_stage(db, sub_id) == {s: Decimal("2500.00") for s in QUARTERS}
    assert sum(by_stage(db, sub_id, "manager").values()) == Decimal("2000.00")
    kinds = db.session.scalars(select(CommissionLine.kind).where(CommissionLine.subscription_id == sub_id)).all()
    assert set(kinds) == {"earned"} and conserved(db, sub_id)
    assert stages_reached(db.session, db.session.get(Subscription, sub_id)) == set(QUARTERS)


def test_r_com_2_a_recompute_writes_nothing_the_second_time_and_each_line_is_audited(db, deal, make_user):
    sub_id = deal["sub"].id
    before = db.session.scalar(select(func.count()).select_from(CommissionLine))
    assert recompute_deal(db.session, sub_id, TODAY, by=deal["finance"]) == 0
    assert recompute_deal(db.session, sub_id, TODAY) == 0
    assert db.session.scalar(select(func.count()).select_from(CommissionLine)) == before
    audited = db.session.scalar(select(func.count()).select_from(Audit).where(
        Audit.entity == "commission_line", Audit.action == "commission"))
    assert audited == before
    with pytest.raises(RuleViolation):
        recompute_deal(db.session, sub_id, TODAY, by=deal["agent"])  # an agent may not


def test_r_com_2_a_price_change_and_a_swap_write_adjustment_lines_never_edit(db, deal):
    sub_id = deal["sub"].id
    first = {line.id: line.amount for line in db.session.scalars(select(CommissionLine))}
    approved_change(db, deal, "price", {"price": "900000.00"})
    assert by_stage(db, sub_id) == {"subscribed": Decimal("2250.00")}
    adjust = db.session.scalars(select(CommissionLine).where(CommissionLine.kind == "adjustment")).all()
    assert adjust and all(line.amount < 0 and line.base == Decimal("900000.00") for line in adjust)
    approved_change(db, deal, "unit_swap", {"unit_id": deal["free"].id})
    assert by_stage(db, sub_id) == {"subscribed": Decimal("3000.00")}
    assert {line.id: line.amount for line in db.session.scalars(select(CommissionLine).where(
        CommissionLine.id.in_(first)))} == first  # the earlier lines as they were
    assert conserved(db, sub_id)


def test_r_com_2_a_cancelled_deal_is_clawed_back_to_zero_by_negative_lines(db, deal):
    sub_id = deal["sub"].id
    pay(db, deal, "250000")
    sign(db, deal)
    approved_change(db, deal, "cancellation", {"retain_deposit": False, "fee": "0"})
    assert sums(db, sub_id) == {}
    claws = db.session.scalars(select(CommissionLine).where(CommissionLine.kind == "clawback")).all()
    assert claws and all(line.amount < 0 for line in claws)
    assert {line.stage for line in claws} == {"subscribed", "signed", "down_payment"}
    with force_locale("en"), pytest.raises(RuleViolation, match="over"):  # the msgid's words
        set_split(db.session, deal["manager"], sub_id, [(deal["agent"].id, "100")], "事后分单")


def test_r_com_2_a_forfeited_deal_is_clawed_back(db, deal):
    sub_id = deal["sub"].id
    assert forfeit(db.session, sub_id, TODAY + dt.timedelta(days=40)) is True
    assert db.session.get(Subscription, sub_id).status == "forfeited"
    assert sums(db, sub_id) == {}
    assert db.session.scalar(select(func.count()).select_from(CommissionLine).where(
        CommissionLine.kind == "clawback")) == 2  # the agent's and the manager's subscription stage


def test_r_com_2_a_rescinded_deal_is_clawed_back(db, deal):
    from models.contracts import rescind
    sub_id = deal["sub"].id
    pay(db, deal, "250000")
    sign(db, deal)
    assert set(by_stage(db, sub_id)) == {"subscribed", "signed", "down_payment"}
    rescind(db.session, deal["manager"], sub_id, reason="客户违约，经评审解约", today=TODAY)
    db.session.commit()
    assert sums(db, sub_id) == {}
    assert {line.stage for line in db.session.scalars(select(CommissionLine).where(
        CommissionLine.kind == "clawback"))} == {"subscribed", "signed", "down_payment"}


def test_r_com_2_a_withdrawn_or_expired_deal_never_earned_and_writes_nothing(db, deal, make_deal):
    from models.deals import withdraw_subscription
    from models.ladder import expire_unpaid
    office = {"project": deal["project"], "agent": deal["agent"], "control": deal["control"],
              "finance": deal["finance"]}
    before = db.session.scalar(select(func.count()).select_from(CommissionLine))
    withdrawn = make_deal(office=office, unit=deal["free"], customer="甲", subscribed_on=TODAY, stage="confirmed")
    withdraw_subscription(db.session, deal["agent"], withdrawn.id, "客户放弃")
    db.session.commit()
    late = make_deal(office=office, unit=deal["free"], customer="乙", subscribed_on=TODAY, stage="draft")
    assert expire_unpaid(db.session, TODAY + dt.timedelta(days=30)) == 1
    assert db.session.get(Subscription, late.id).status == "expired"
    assert db.session.scalar(select(func.count()).select_from(CommissionLine)) == before


def test_r_com_2_a_reversed_payment_takes_its_stage_back_by_an_adjustment(db, deal):
    sub_id = deal["sub"].id
    payment = pay(db, deal, "250000")
    assert "down_payment" in by_stage(db, sub_id)
    reverse_payment(db.session, deal["finance"], payment.id, "退票", today=TODAY)
    db.session.commit()
    assert "down_payment" not in by_stage(db, sub_id)
    assert db.session.scalar(select(func.min(CommissionLine.amount)).where(
        CommissionLine.kind == "adjustment", CommissionLine.stage == "down_payment")) == Decimal("-2500.00")


def test_r_com_2_a_shared_deal_splits_each_stage_to_the_fen(db, deal, make_user):
    sub_id, other = deal["sub"].id, make_user("agent", username="zhou")
    pay(db, deal, "250000")
    unsplit = by_stage(db, sub_id)
    set_split(db.session, deal["manager"], sub_id, [(deal["agent"].id, "60"), (other.id, "40")], "两人共同接待")
    db.session.commit()
    per = sums(db, sub_id)
    li = sum(v for k, v in per.items() if k[0] == "agent" and k[1] == deal["agent"].id)
    zhou = sum(v for k, v in per.items() if k[0] == "agent" and k[1] == other.id)
    assert (li, zhou) == (Decimal("3000.00"), Decimal("2000.00"))
    assert by_stage(db, sub_id) == unsplit  # shares add up to the unsplit amount, stage by stage
    assert db.session.scalar(select(func.count()).select_from(Audit).where(Audit.action == "split_deal")) >= 2
    assert set_split(db.session, deal["manager"], sub_id, [(other.id, "40"), (deal["agent"].id, "60")], "再次") == []


@pytest.mark.parametrize("shares, words", [
    ([("A", "60"), ("B", "30")], "add up to 100"),
    ([("A", "100"), ("B", "0")], "above 0"),
    ([("A", "50"), ("M", "50")], "agents only"),
])
def test_r_com_2_a_split_is_refused_unless_agents_share_100_percent(db, deal, make_user, shares, words):
    people = {"A": deal["agent"].id, "B": make_user("agent").id, "M": deal["manager"].id}
    with force_locale("en"), pytest.raises(RuleViolation, match=words):  # the msgids' words
        set_split(db.session, deal["manager"], deal["sub"].id, [(people[k], p) for k, p in shares], "原因")
    with pytest.raises(RuleViolation):
        set_split(db.session, deal["agent"], deal["sub"].id, [(people["A"], "100")], "原因")  # manager only


@pytest.mark.parametrize("values, words", [
    (agent_rule(stage_shares={"subscribed": 50, "signed": 40, "down_payment": 30, "disbursed": 0}), "add up to 100"),
    (agent_rule(stage_shares={"subscribed": 100}), "four stages"),
    (agent_rule(stage_shares={"subscribed": 110, "signed": -10, "down_payment": 0, "disbursed": 0}), "0 or more"),
    (agent_rule(rate_percent="101"), "0 to 100"),
    (agent_rule(tiers=[{"from": 5, "rate_percent": "1"}, {"from": 3, "rate_percent": "2"}]), "ascending"),
    (agent_rule(tiers=[{"from": 0, "rate_percent": "1"}]), "ascending"),
    (agent_rule(tiers=[{"from": 1, "rate_percent": "120"}]), "0 to 100"),
    ({"role": "manager", "basis": "rate", "rate_percent": "1"}, "names the sales manager"),
    ({"role": "agent", "basis": "fixed", "amount": "-5"}, "0 or more"),
])
def test_r_com_2_a_rule_is_validated_by_the_domain(db, deal, values, words):
    with force_locale("en"), pytest.raises(RuleViolation, match=words):  # the msgids' words
        save_rule(db.session, deal["vp"], deal["project"].id, values)


def test_r_com_2_only_admin_and_vp_set_rules(db, deal):
    with pytest.raises(RuleViolation):
        save_rule(db.session, deal["manager"], deal["project"].id, agent_rule())


def test_r_com_2_a_changed_rule_changes_what_deals_earn_from_now_by_new_lines(db, deal):
    sub_id = deal["sub"].id
    rule_id = db.session.scalar(select(CommissionLine.rule_id).where(CommissionLine.role == "agent").limit(1))
    saved(db, deal["vp"], deal["project"].id, agent_rule(rate_percent="2"), rule_id=rule_id,
          today=dt.date(2026, 12, 3))
    db.session.commit()
    assert by_stage(db, sub_id) == {"subscribed": Decimal("5000.00")}
    late = db.session.scalar(select(CommissionLine).where(CommissionLine.kind == "adjustment"))
    assert (late.amount, late.month) == (Decimal("2500.00"), dt.date(2026, 12, 1))
    saved(db, deal["vp"], deal["project"].id, agent_rule(active=False), rule_id=rule_id)
    db.session.commit()
    assert by_stage(db, sub_id) == {}


def test_r_com_2_a_line_after_an_approved_month_goes_to_the_next_open_month(db, deal):
    project_id, agent = deal["project"].id, deal["agent"].id
    for month in (dt.date(2026, 11, 1), dt.date(2026, 12, 1)):
        db.session.add(CommissionStatement(project_id=project_id, month=month, payee_user_id=agent,
                                           status="approved", approved_by_id=deal["manager"].id))
    db.session.commit()
    assert line_month(db.session, project_id, agent, None, TODAY) == dt.date(2027, 1, 1)
    assert line_month(db.session, project_id, deal["manager"].id, None, TODAY) == dt.date(2026, 11, 1)
    pay(db, deal, "250000")
    months = set(db.session.scalars(select(CommissionLine.month).where(
        CommissionLine.payee_user_id == agent, CommissionLine.stage == "down_payment")))
    assert months == {dt.date(2027, 1, 1)}


def test_r_com_2_the_channel_of_a_confirmed_registration_earns_its_companys_rule(db, deal, make_user):
    project_id, sub = deal["project"].id, deal["sub"]
    ours, theirs = ChannelCompany(name="远航"), ChannelCompany(name="启明经纪")
    db.session.add_all([ours, theirs])
    db.session.flush()
    channel_user = make_user("channel")
    db.session.add(ChannelRegistration(project_id=project_id, company_id=ours.id, registered_by_id=channel_user.id,
                                       customer_name="客户", phone="13800000000", registered_on=TODAY,
                                       valid_until=TODAY, status="confirmed", lead_id=sub.lead_id))
    db.session.commit()
    saved(db, deal["vp"], project_id, {"role": "channel", "basis": "fixed", "amount": "8000"})
    saved(db, deal["vp"], project_id, {"role": "channel", "basis": "fixed", "amount": "100",
                                       "company_id": theirs.id})
    db.session.commit()
    assert by_stage(db, sub.id, "channel") == {"subscribed": Decimal("2400.00")}  # generic: theirs is not ours
    specific = saved(db, deal["vp"], project_id, {"role": "channel", "basis": "rate",
                                                  "rate_percent": "0.5", "company_id": ours.id})
    db.session.commit()
    per = {k: v for k, v in sums(db, sub.id).items() if k[0] == "channel"}
    assert per == {("channel", None, ours.id, "subscribed", specific.id): Decimal("1500.00")}


def test_r_com_2_tiers_rate_a_deal_by_its_place_in_the_month_and_never_re_tier_earlier_ones(db, deal, make_deal):
    project = deal["project"]
    project.commission_tiered = True
    db.session.commit()
    rule_id = db.session.scalar(select(CommissionLine.rule_id).where(CommissionLine.role == "agent").limit(1))
    saved(db, deal["vp"], project.id, agent_rule(tiers=[{"from": 1, "rate_percent": "1"},
                                                       {"from": 2, "rate_percent": "2"}]),
          rule_id=rule_id)
    db.session.commit()
    office = {"project": project, "agent": deal["agent"], "control": deal["control"], "finance": deal["finance"]}
    second = make_deal(office=office, unit=deal["free"], customer="第二位", subscribed_on=TODAY)
    assert by_stage(db, deal["sub"].id) == {"subscribed": Decimal("2500.00")}  # 1st of the month: 1 %
    assert by_stage(db, second.id) == {"subscribed": Decimal("6000.00")}  # 2nd: 2 % of 1,200,000, ¼


def test_r_com_2_apportion_adds_up_to_the_fen_and_is_deterministic():
    parts = apportion(Decimal("100.00"), [(1, Decimal("1")), (2, Decimal("1")), (3, Decimal("1"))])
    assert parts == {1: Decimal("33.34"), 2: Decimal("33.33"), 3: Decimal("33.33")}
    assert sum(apportion(Decimal("0.05"), [(k, Decimal(k)) for k in range(1, 8)]).values()) == Decimal("0.05")


def test_r_com_2_the_daily_sweep_catches_what_a_path_missed(db, deal, monkeypatch):
    sub_id = deal["sub"].id
    monkeypatch.setattr(payments, "PAYMENT_TAKEN", [])  # a path that forgot the hook
    monkeypatch.setattr(deals, "DEAL_MOVED", [])
    pay(db, deal, "250000")
    sign(db, deal)
    assert not conserved(db, sub_id)
    assert sub_id in commissions.sweep_candidates(db.session)
    assert recompute_commissions(db.session, TODAY) == 4  # agent: signed, down payment; manager: the same
    assert conserved(db, sub_id) and commissions.sweep_candidates(db.session) == []
    assert recompute_commissions(db.session, TODAY) == 0


def test_r_com_2_the_daily_run_counts_commission_lines(db, deal, monkeypatch):
    from models.ladder import run_ladder
    monkeypatch.setattr(payments, "PAYMENT_TAKEN", [])
    pay(db, deal, "250000")
    counts = run_ladder(db.session, TODAY)
    assert counts["commission"] == 2


# --- the property: lines always add up to what the deal earns ------------------------------------------

OPS = st.lists(st.sampled_from(["down", "loan", "sign", "reverse", "price", "swap", "split", "unsplit", "cancel",
                                "forfeit"]), min_size=1, max_size=7)


def _step(db, deal, op, other):
    sub = db.session.get(Subscription, deal["sub"].id, populate_existing=True)
    try:
        if op == "down":
            pay(db, deal, "250000")
        elif op == "loan":
            pay(db, deal, str(sub.price * Decimal("0.7")), line=loan_line(db, deal))
        elif op == "sign":
            sign(db, deal)
        elif op == "reverse":
            last = db.session.scalar(select(payments.Payment).where(
                payments.Payment.subscription_id == sub.id, payments.Payment.reverses_id.is_(None))
                .order_by(payments.Payment.id.desc()))
            reverse_payment(db.session, deal["finance"], last.id, "退票", today=TODAY)
            db.session.commit()
        elif op == "price":
            approved_change(db, deal, "price", {"price": str(sub.price + Decimal("10000.03"))})
        elif op == "swap":
            target = deal["free"] if sub.unit_id != deal["free"].id else deal["unit"]
            approved_change(db, deal, "unit_swap", {"unit_id": target.id})
        elif op == "split":
            set_split(db.session, deal["manager"], sub.id, [(deal["agent"].id, "33.33"), (other.id, "66.67")], "分单")
            db.session.commit()
        elif op == "unsplit":
            set_split(db.session, deal["manager"], sub.id, [], "取消分单")
            db.session.commit()
        elif op == "cancel":
            approved_change(db, deal, "cancellation", {"retain_deposit": True, "fee": "0"})
        elif op == "forfeit":
            forfeit(db.session, sub.id, TODAY + dt.timedelta(days=40))
    except RuleViolation:
        db.session.rollback()


def test_r_com_2_property_lines_always_add_up_to_what_the_deal_earns(db, make_deal, make_user):
    """Random sequences of payments, reversals, signing, swaps, price changes, splits and endings on
    fresh deals: after each step, per deal and key, the lines add up to `deal_commission` now; an
    ended deal's lines to 0 per payee; a split deal's shares, stage by stage, to the unsplit amount."""
    base = make_deal(price="1000000.00", method="commercial_mortgage", today=TODAY, staff=STAFF)
    saved(db, base["vp"], base["project"].id, agent_rule(rate_percent="1.37"), today=TODAY)
    saved(db, base["vp"], base["project"].id,
          {"role": "manager", "basis": "rate", "rate_percent": "0.21", "payee_user_id": base["manager"].id})
    db.session.commit()
    other = make_user("agent")
    numbers = iter(range(1, 10_000))
    seen: dict = {}

    @settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(ops=OPS)
    def run(ops):
        n = next(numbers)
        building = base["unit"].building
        deal = {**base, "unit": f.unit(db.session, building, number=f"A{n}", list_price=Decimal("1000000.00")),
                "free": f.unit(db.session, building, number=f"B{n}", list_price=Decimal("1200000.00"))}
        lead = f.lead(db.session, owner=base["agent"], project_=base["project"])
        db.session.commit()
        deal["sub"] = f.through_steps(db.session, deal, deal["unit"], lead, payment_method="commercial_mortgage",
                                      subscribed_on=TODAY, today=TODAY)
        sub_id = deal["sub"].id
        for op in ops:
            _step(db, deal, op, other)
            seen[op] = seen.get(op, 0) + 1
            assert conserved(db, sub_id), op
            sub = db.session.get(Subscription, sub_id)
            if sub.status in deals.DEAD_DEAL:
                assert sums(db, sub_id) == {}  # every payee clawed back to 0
            if db.session.scalar(select(func.count()).select_from(DealSplit).where(DealSplit.subscription_id == sub_id)):
                split = deal_commission(db.session, sub, TODAY)
                db.session.execute(DealSplit.__table__.delete().where(DealSplit.subscription_id == sub_id))
                alone = deal_commission(db.session, sub, TODAY)
                db.session.rollback()
                for stage in QUARTERS:
                    assert sum(v for k, v in split.items() if k[0] == "agent" and k[3] == stage) == \
                        sum(v for k, v in alone.items() if k[0] == "agent" and k[3] == stage)

    run()
    assert {"down", "sign", "reverse", "price", "swap", "split", "cancel"} <= set(seen)


# --- races (PostgreSQL) ---------------------------------------------------------------------------------

def test_r_com_2_recomputes_racing_on_one_deal_write_its_lines_once(app, db, deal, monkeypatch):
    """Two recomputes at the same instant (the sweep and a payment's hook, two workers): the deal's
    lock makes the second see the first's lines; nothing is written twice (PostgreSQL)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    from tests.support.race import race
    sub_id = deal["sub"].id
    monkeypatch.setattr(payments, "PAYMENT_TAKEN", [])
    monkeypatch.setattr(deals, "DEAL_MOVED", [])
    pay(db, deal, "250000")
    sign(db, deal)
    monkeypatch.undo()

    def worker(session):
        written = recompute_deal(session, sub_id, TODAY)
        session.commit()
        return written

    for _ in range(3):
        results = race(worker, worker, worker, app=app, barrier=60, join=120)
        assert sorted(results)[:-1] == [0, 0]
    db.session.expire_all()
    assert conserved(db, sub_id)


# --- the screens: every path scoped, every change through the domain with CSRF ------------------------

def _channel_office(db, deal, make_user):
    """Company 远航 with its person "lj" (a channel user) and a confirmed registration of the deal's
    customer; a generic channel rule of 5,000 fixed; a second agent "zhou" with a deal of his own."""
    from models import ChannelMember
    company = ChannelCompany(name="远航")
    db.session.add(company)
    db.session.flush()
    person = make_user("channel", username="lj")
    db.session.add(ChannelMember(user_id=person.id, company_id=company.id))
    db.session.add(ChannelRegistration(project_id=deal["project"].id, company_id=company.id, registered_by_id=person.id,
                                       customer_name="客户", phone="13800000000", registered_on=TODAY,
                                       valid_until=TODAY, status="confirmed", lead_id=deal["sub"].lead_id))
    db.session.commit()
    saved(db, deal["vp"], deal["project"].id, {"role": "channel", "basis": "fixed", "amount": "5000"})
    zhou = make_user("agent", username="zhou")
    office = {"project": deal["project"], "agent": zhou, "control": deal["control"], "finance": deal["finance"]}
    theirs = f.through_steps(db.session, office, deal["free"], f.lead(db.session, owner=zhou, project_=deal["project"]),
                             payment_method="one_off", subscribed_on=TODAY, today=TODAY)
    db.session.commit()
    return company, person, zhou, theirs


def test_r_com_2_agents_and_channels_see_only_their_own_lines_on_every_path(app, client, db, deal, make_user):
    from tests.conftest import Auth
    company, person, zhou, theirs = _channel_office(db, deal, make_user)
    L = CommissionLine
    mine = db.session.scalar(select(L.id).where(L.payee_user_id == deal["agent"].id).limit(1))
    his = db.session.scalar(select(L.id).where(L.payee_user_id == zhou.id).limit(1))
    channel = db.session.scalar(select(L.id).where(L.payee_company_id == company.id).limit(1))
    assert mine and his and channel
    auth = Auth(client)
    auth.login("li")
    page = client.get("/admin/commission_line/").get_data(as_text=True)
    assert theirs.number not in page and deal["sub"].number in page and "远航" not in page
    assert client.get(f"/admin/commission_line/details/?id={mine}").status_code == 200
    assert client.get(f"/admin/commission_line/details/?id={his}").status_code in (302, 404)
    assert client.get(f"/admin/commission_line/details/?id={channel}").status_code in (302, 404)
    assert client.get("/admin/commission_line/export/csv/").status_code == 403
    deal_page = client.get(f"/admin/subscription/details/?id={deal['sub'].id}").get_data(as_text=True)
    assert "deal-commission" in deal_page and "远航" not in deal_page and "split-form" not in deal_page
    auth.logout()
    auth.login("lj")
    page = client.get("/admin/commission_line/").get_data(as_text=True)
    assert "远航" in page and deal["sub"].number in page and theirs.number not in page
    assert client.get(f"/admin/commission_line/details/?id={channel}").status_code == 200
    for other in (mine, his):
        assert client.get(f"/admin/commission_line/details/?id={other}").status_code in (302, 404)
    for path in ("/admin/commission_line/export/csv/", "/admin/commission_rule/", "/admin/deal_split/",
                 f"/admin/subscription/details/?id={deal['sub'].id}"):
        assert client.get(path).status_code == 403, path


def test_r_com_2_the_manager_shares_a_deal_from_its_page_once_and_with_csrf(app, client, db, deal, make_user):
    from tests.conftest import Auth
    zhou = make_user("agent", username="zhou")
    auth = Auth(client)
    auth.login("boss")
    page = client.get(f"/admin/subscription/details/?id={deal['sub'].id}").get_data(as_text=True)
    assert "split-form" in page and "zhou" in page.lower()
    form = {"subscription_id": str(deal["sub"].id), "agent_1": str(deal["agent"].id), "percent_1": "60",
            "agent_2": str(zhou.id), "percent_2": "40", "reason": "共同接待"}
    client.post("/admin/deal_split/split/", data=form)  # no CSRF token: refused (sent back to say why)
    assert db.session.scalar(select(func.count()).select_from(DealSplit)) == 0
    token = auth.csrf()
    for _ in range(2):  # sent twice: the second changes nothing
        response = client.post("/admin/deal_split/split/", data={**form, "csrf_token": token})
        assert response.status_code == 302 and "#deal-commission" in response.headers["Location"]
    db.session.expire_all()
    assert sorted(db.session.execute(select(DealSplit.agent_id, DealSplit.percent)).all()) == sorted(
        [(deal["agent"].id, Decimal("60.00")), (zhou.id, Decimal("40.00"))])
    assert db.session.scalar(select(func.count()).select_from(Audit).where(
        Audit.action == "split_deal", Audit.entity == "subscription")) == 1
    assert conserved(db, deal["sub"].id)
    bad = client.post("/admin/deal_split/split/", data={**form, "percent_2": "30", "csrf_token": token},
                      follow_redirects=True)
    assert "100" in bad.get_data(as_text=True)
    auth.logout()
    auth.login("li")
    assert client.post("/admin/deal_split/split/", data={**form, "csrf_token": auth.csrf()}).status_code == 403


def test_r_com_2_the_vice_president_saves_a_rule_through_the_form_and_the_domain_checks_it(app, client, db, deal):
    from tests.conftest import Auth
    auth = Auth(client)
    auth.login("vp1")
    token = auth.csrf()
    form = {"csrf_token": token, "project": str(deal["project"].id), "name": "渠道", "role": "agent", "basis": "fixed",
            "amount": "3000", "share_subscribed": "50", "share_signed": "50", "share_down_payment": "0",
            "share_disbursed": "0", "tiers": "", "active": "y"}
    before = db.session.scalar(select(func.count()).select_from(CommissionLine))
    bad = client.post("/admin/commission_rule/new/", data={**form, "share_signed": "40"}, follow_redirects=True)
    assert "100" in bad.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(CommissionLine)) == before
    client.post("/admin/commission_rule/new/", data=form)
    run_jobs(app)
    db.session.expire_all()
    rule = db.session.scalar(select(commissions.CommissionRule).where(commissions.CommissionRule.basis == "fixed"))
    assert rule is not None and rule.created_by_id == deal["vp"].id
    assert db.session.scalar(select(func.sum(CommissionLine.amount)).where(CommissionLine.rule_id == rule.id)) == \
        Decimal("1500.00")  # the subscription stage of the deal in force, at once
    auth.logout()
    auth.login("boss")
    assert client.get("/admin/commission_rule/").status_code == 200
    assert client.get("/admin/commission_rule/new/").status_code == 403


# --- a saved rule is applied by a job; the daily run finishes what a dead job left (R-COM-2) ------------------

def run_jobs(app):
    """Embedded mode ran the job already; with Redis, a burst worker runs what is queued."""
    if app.config["REDIS_URL"]:
        from rq import SimpleWorker

        from jobs.queue import get_queue
        queue = get_queue("default")  # this instance's queue (prefixed)
        SimpleWorker([queue], connection=queue.connection).work(burst=True)


def _rule_form(auth, project_id, **kw):
    return {"csrf_token": auth.csrf(), "project": str(project_id), "name": "案场奖励", "role": "agent",
            "basis": "fixed", "amount": "3000", "share_subscribed": "50", "share_signed": "50",
            "share_down_payment": "0", "share_disbursed": "0", "tiers": "", "active": "y", **kw}


def _two_deals(deal, make_deal):
    office = {"project": deal["project"], "agent": deal["agent"], "control": deal["control"],
              "finance": deal["finance"]}
    second = make_deal(office=office, unit=deal["free"], customer="第二位", subscribed_on=TODAY)
    return [deal["sub"].id, second.id]


def _fixed_rule(db):
    R = commissions.CommissionRule
    db.session.expire_all()
    return db.session.scalar(select(R).where(R.basis == "fixed"))


def test_r_com_2_a_rule_saved_through_the_form_is_applied_by_its_job(app, client, db, deal):
    from tests.conftest import Auth
    auth = Auth(client)
    auth.login("vp1")
    client.set_cookie("lang", "en", domain="localhost")
    response = client.post("/admin/commission_rule/new/", data=_rule_form(auth, deal["project"].id),
                           follow_redirects=True)
    assert response.status_code == 200
    assert ("are being recomputed" if app.config["REDIS_URL"] else "deals were recomputed with it") in \
        response.get_data(as_text=True)  # with Redis the worker runs it (below), else it ran at once
    run_jobs(app)
    rule = _fixed_rule(db)
    assert rule is not None and rule.changed_at is not None
    assert rule.applied_at is not None and rule.applied_at >= rule.changed_at and rule.applied
    assert db.session.scalar(select(func.sum(CommissionLine.amount)).where(CommissionLine.rule_id == rule.id)) == \
        Decimal("1500.00")  # the job ran at once (embedded, no worker): the deal's subscription stage
    assert conserved(db, deal["sub"].id)
    assert commissions.projects_to_apply(db.session) == []
    assert recompute_commissions(db.session, TODAY) == 0  # nothing left for the daily run


def test_r_com_2_a_job_that_dies_after_a_chunk_leaves_the_rule_saved_and_the_daily_run_finishes_it(
        app, client, db, deal, make_deal, monkeypatch):
    from tests.conftest import Auth
    deals_ = _two_deals(deal, make_deal)
    assert all(conserved(db, sub_id) for sub_id in deals_)
    real, calls = commissions._recompute_many, []

    def dies_after_the_first_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("worker killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(commissions, "SWEEP_CHUNK", 1)
    monkeypatch.setattr(commissions, "_recompute_many", dies_after_the_first_chunk)
    auth = Auth(client)
    auth.login("vp1")
    client.set_cookie("lang", "en", domain="localhost")
    response = client.post("/admin/commission_rule/new/", data=_rule_form(auth, deal["project"].id))
    flashed = client.get("/admin/commission_rule/").get_data(as_text=True)
    run_jobs(app)
    assert response.status_code == 302 and len(calls) == 2
    assert ("are being recomputed" if app.config["REDIS_URL"] else
            "recomputing the project&#39;s deals failed") in flashed
    rule = _fixed_rule(db)
    assert rule is not None and rule.applied_at is None and not rule.applied  # saved, not applied
    first, second = deals_
    assert conserved(db, first) and not conserved(db, second)  # the first chunk stayed committed
    assert db.session.scalar(select(func.count()).select_from(CommissionLine).where(
        CommissionLine.rule_id == rule.id, CommissionLine.subscription_id == second)) == 0
    assert commissions.projects_to_apply(db.session) == [deal["project"].id]
    assert "being applied" in client.get("/admin/commission_rule/").get_data(as_text=True)  # the grid
    monkeypatch.setattr(commissions, "_recompute_many", real)
    assert recompute_commissions(db.session, TODAY) == 1  # the second deal's subscription stage
    rule = _fixed_rule(db)
    assert rule.applied and all(conserved(db, sub_id) for sub_id in deals_)
    assert commissions.projects_to_apply(db.session) == []
    assert recompute_commissions(db.session, TODAY) == 0  # idempotent


def test_r_com_2_a_rule_saved_again_while_it_is_applied_is_not_marked_by_the_older_run(
        app, db, deal, make_deal, monkeypatch):
    """Two saves race the run: one committed after the run started (its changed_at is later), one
    stamped before the run started but committed only during it (changed_at earlier, but the run
    never read it). Neither is marked applied by that run; the next run marks both."""
    from sqlalchemy.orm import Session
    deals_ = _two_deals(deal, make_deal)
    rule = save_rule(db.session, deal["vp"], deal["project"].id, agent_rule(name="甲", basis="fixed", amount="1000",
                                                                            rate_percent=None))
    other = save_rule(db.session, deal["vp"], deal["project"].id, agent_rule(name="乙", basis="fixed", amount="2000",
                                                                             rate_percent=None))
    db.session.commit()
    rule_id, other_id, project_id = rule.id, other.id, deal["project"].id
    late = Session(db.engine)  # a second user: stamps `other` now, commits during the run
    from models.users import User
    save_rule(late, late.get(User, deal["vp"].id), project_id,
              agent_rule(name="乙", basis="fixed", amount="2500", rate_percent=None), rule_id=other_id)
    late.flush()
    real, calls = commissions._recompute_many, []

    def saved_meanwhile(*args, **kwargs):
        if not calls:
            late.commit()
            late.close()
            again = Session(db.engine)  # another save of `rule` after the run began
            from models.users import User as U
            save_rule(again, again.get(U, deal["vp"].id), project_id,
                      agent_rule(name="甲", basis="fixed", amount="1200", rate_percent=None), rule_id=rule_id)
            again.commit()
            again.close()
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(commissions, "SWEEP_CHUNK", 1)
    monkeypatch.setattr(commissions, "_recompute_many", saved_meanwhile)
    apply_rules(db.session, project_id, TODAY)
    db.session.expire_all()
    R = commissions.CommissionRule
    assert {r.id: r.applied for r in db.session.scalars(select(R).where(R.project_id == project_id))} == {
        r: r not in (rule_id, other_id) for r in db.session.scalars(select(R.id).where(R.project_id == project_id))}
    assert commissions.projects_to_apply(db.session) == [project_id]
    monkeypatch.setattr(commissions, "_recompute_many", real)
    recompute_commissions(db.session, TODAY)  # applies the project again (its lines may be right already)
    db.session.expire_all()
    assert all(r.applied for r in db.session.scalars(select(R).where(R.project_id == project_id)))
    assert all(conserved(db, sub_id) for sub_id in deals_)


def test_r_com_2_a_rule_saved_while_the_queue_is_down_stays_saved_for_the_daily_run(app, client, db, deal,
                                                                                    monkeypatch):
    from redis.exceptions import ConnectionError as RedisDown

    import admin.commissions as screen
    from tests.conftest import Auth

    def down(*args, **kwargs):
        raise RedisDown("Redis is down")

    monkeypatch.setattr(screen, "enqueue", down)
    auth = Auth(client)
    auth.login("vp1")
    client.set_cookie("lang", "en", domain="localhost")
    page = client.post("/admin/commission_rule/new/", data=_rule_form(auth, deal["project"].id),
                       follow_redirects=True).get_data(as_text=True)
    assert "the daily run will recompute" in page
    rule = _fixed_rule(db)
    assert rule is not None and rule.applied_at is None
    assert not db.session.scalar(select(func.count()).select_from(CommissionLine).where(
        CommissionLine.rule_id == rule.id))
    assert recompute_commissions(db.session, TODAY) == 1
    assert _fixed_rule(db).applied and conserved(db, deal["sub"].id)
def test_r_com_2_an_ended_deal_holds_no_place_in_a_tier_and_the_later_deals_are_re_tiered(db, deal, make_deal):
    """The review's hole: tiers 1 % from the 1st deal, 2 % from the 2nd; a 1st deal cancelled and
    refunded kept its place, so the next real deal — the only live one of the month — earned 2 %."""
    project = deal["project"]
    project.commission_tiered = True
    db.session.commit()
    rule_id = db.session.scalar(select(CommissionLine.rule_id).where(CommissionLine.role == "agent").limit(1))
    saved(db, deal["vp"], project.id, agent_rule(tiers=[{"from": 1, "rate_percent": "1"},
                                                        {"from": 2, "rate_percent": "2"}]),
          rule_id=rule_id, today=TODAY)
    office = {"project": project, "agent": deal["agent"], "control": deal["control"], "finance": deal["finance"]}
    second = make_deal(office=office, unit=deal["free"], customer="第二位", subscribed_on=TODAY)
    assert by_stage(db, second.id) == {"subscribed": Decimal("6000.00")}  # 2nd of the month while the 1st lives
    approved_change(db, deal, "cancellation", {"retain_deposit": False, "fee": "0"})  # the 1st: cancelled, refunded
    assert sums(db, deal["sub"].id) == {}
    # the 1st gave its place up: the 2nd is re-tiered to the 1st place (1 % of 1,200,000, ¼)
    assert by_stage(db, second.id) == {"subscribed": Decimal("3000.00")}
    assert conserved(db, second.id)
    third_unit = f.unit(db.session, deal["unit"].building, number="1601", list_price=Decimal("1000000.00"))
    db.session.commit()
    third = make_deal(office=office, unit=third_unit, customer="第三位", subscribed_on=TODAY)
    assert by_stage(db, third.id) == {"subscribed": Decimal("5000.00")}  # the 2nd live deal: 2 %
    assert by_stage(db, second.id) == {"subscribed": Decimal("3000.00")}  # never re-tiered by a later one


def _two_channels_and_a_conflict(db, deal, make_user):
    """Company A's confirmed registration of the deal's customer, a channel rule (8,000 fixed, 30 %
    at subscription), and company B's later registration refused into a conflict."""
    from models import ChannelMember, Lead
    from models.channels import ChannelRefused, register_customer
    project_id, sub = deal["project"].id, deal["sub"]
    a, b = ChannelCompany(name="甲渠道"), ChannelCompany(name="乙渠道")
    db.session.add_all([a, b])
    db.session.flush()
    people = {}
    for company in (a, b):
        person = make_user("channel")
        db.session.add(ChannelMember(user_id=person.id, company_id=company.id))
        people[company.id] = person
    phone = db.session.get(Lead, sub.lead_id).phone
    db.session.add(ChannelRegistration(project_id=project_id, company_id=a.id, registered_by_id=people[a.id].id,
                                       customer_name="客户", phone=phone, registered_on=TODAY, valid_until=TODAY,
                                       status="confirmed", lead_id=sub.lead_id))
    db.session.commit()
    saved(db, deal["vp"], project_id, {"role": "channel", "basis": "fixed", "amount": "8000"}, today=TODAY)
    with pytest.raises(ChannelRefused) as refused:
        register_customer(db.session, people[b.id], project_id=project_id, customer_name="客户", phone=phone,
                          today=TODAY)
    db.session.commit()
    return a, b, refused.value.conflict.id


def channel_due(db, sub_id) -> dict:
    out = {}
    for (role, _u, company, _stage, _rule), total in sums(db, sub_id).items():
        if role == "channel":
            out[company] = out.get(company, Decimal("0")) + total
    return out


def test_r_com_1_a_conflict_awarded_to_the_later_channel_moves_the_deals_commission_to_it(app, client, db, deal,
                                                                                           make_user):
    """The review's hole: the manager awarded the customer to B, and the channel's 2,400 stayed with A."""
    from tests.conftest import Auth, csrf_token
    a, b, conflict_id = _two_channels_and_a_conflict(db, deal, make_user)
    sub_id = deal["sub"].id
    assert channel_due(db, sub_id) == {a.id: Decimal("2400.00")}
    Auth(client).login(deal["manager"].username)
    response = client.post("/admin/channel_conflict/decide/", data={
        "csrf_token": csrf_token(client, "/admin/"), "ids": str(conflict_id), "decision": "award",
        "reason": "乙渠道首次带看"})
    assert response.status_code == 302, response.get_data(as_text=True)
    db.session.expire_all()
    assert channel_due(db, sub_id) == {b.id: Decimal("2400.00")}  # A's lines clawed back to 0, B's written
    assert conserved(db, sub_id) and commissions.sweep_candidates(db.session) == []


def test_r_com_2_the_daily_sweep_catches_a_channel_line_for_a_company_no_longer_confirmed(db, deal, make_user,
                                                                                           monkeypatch):
    from models import channels
    from models.channels import resolve_conflict
    a, b, conflict_id = _two_channels_and_a_conflict(db, deal, make_user)
    sub_id = deal["sub"].id
    monkeypatch.setattr(channels, "ATTRIBUTION_CHANGED", [], raising=False)  # a path that forgot the hook
    resolve_conflict(db.session, deal["manager"], conflict_id, "award", "乙渠道首次带看", today=TODAY)
    db.session.commit()
    assert channel_due(db, sub_id) == {a.id: Decimal("2400.00")} and not conserved(db, sub_id)
    assert sub_id in commissions.sweep_candidates(db.session)
    assert recompute_commissions(db.session, TODAY) == 2  # A's clawback, B's line
    assert channel_due(db, sub_id) == {b.id: Decimal("2400.00")} and conserved(db, sub_id)
    assert commissions.sweep_candidates(db.session) == [] and recompute_commissions(db.session, TODAY) == 0
