"""Changes of a live deal (issue 21): requests, approval chains, decisions, buyers (R-CHG-1, R-CHG-3),
and the database's terms guard. The money side of each kind is tests/test_change_apply.py's."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError

from models import Audit, Notification, Subscription
from models.change_requests import (chain_for, decide_change, decision_refusal, request_change, resubmit_change,
                                    withdraw_change)
from models.changes import ChangeRequest, ChangeStep, DealBuyer, current_buyers, open_change, validate_buyers
from models.submissions import AlreadySubmitted, new_key
from tests import factories as f
from tests.support.race import race
from tests.support.rules import raises_rule

TODAY = f.TODAY
SPOUSE_ID = "110101199201010028"  # valid check digit
STAFF = {"control": ("sales_control", "chen"), "finance": ("finance", "zhao"), "manager": ("sales_manager", "boss"),
         "manager2": ("sales_manager", "boss2"), "vp": ("vp", "vp"), "admin": ("admin", "root")}


@pytest.fixture(autouse=True)
def in_english(app):
    """Refusals and notifications read in English here (their msgids), whatever the catalog says."""
    from flask_babel import force_locale
    with force_locale("en"):
        yield


@pytest.fixture
def deal(make_deal):
    return make_deal(staff=STAFF)


def _buyers(first_share="50", second_share="50", second_id=SPOUSE_ID):
    return [{"name": "张三", "id_type": "resident_id", "id_number": f.VALID_ID_NUMBER, "phone": "138 0013 8000",
             "share": first_share},
            {"name": "李四", "id_type": "resident_id", "id_number": second_id, "phone": "+86 139-0013-9000",
             "share": second_share}]


def _ask(db, deal, kind="buyers", proposal=None, by=None, **kw):
    change = request_change(db.session, by or deal["agent"], deal["sub"].id, kind, reason=kw.pop("reason", "夫妻共有"),
                            proposal=proposal if proposal is not None else {"buyers": _buyers()}, today=TODAY, **kw)
    db.session.commit()
    return change


def _decide(db, user, change_id, decision="approve", note=""):
    change = decide_change(db.session, user, change_id, decision, note=note, today=TODAY)
    db.session.commit()
    return change


def _count(db, model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _notes(db, user, kind):
    return [n.text for n in db.session.scalars(select(Notification).where(Notification.user_id == user.id,
                                                                           Notification.kind == kind))]


# --- buyers (R-CHG-3) ------------------------------------------------------------------------------

def test_r_chg_3_a_new_deal_has_its_customer_as_its_one_buyer_with_the_whole_share(db, deal):
    [buyer] = current_buyers(db.session, deal["sub"].id)
    sub = deal["sub"]
    assert (buyer.name, buyer.id_type, buyer.id_number, buyer.share, buyer.seq) == (
        sub.customer_name, sub.customer_id_type, sub.customer_id_number, Decimal("100.00"), 1)
    assert buyer.phone == deal["lead"].phone and buyer.added_by_change_id is None


def test_r_chg_3_buyers_are_normalised_by_the_one_document_and_phone_readers():
    rows = validate_buyers(_buyers("33.33", "66.67 %", second_id="1101011992 0101-0028"), TODAY)
    assert [(r["id_number"], r["phone"], r["share"]) for r in rows] == [
        (f.VALID_ID_NUMBER, "13800138000", "33.33"), (SPOUSE_ID, "13900139000", "66.67")]


@pytest.mark.parametrize("rows, says", [
    (_buyers("50", "40"), "The shares add up to 90 %, not 100 %."),
    # a share reads as a percentage, never as money ("an amount in yuan")
    (_buyers("50", "50.005"), "Buyer 2 (李四): the share is a percentage above 0 and at most 100, with at most 2 "
                              "decimals"),
    (_buyers("100", "0"), "Buyer 2 (李四): the share is a percentage above 0"),
    (_buyers("50", "五十"), "Buyer 2 (李四): the share is a percentage above 0"),
    (_buyers("150", "-50"), "Buyer 1 (张三): the share is a percentage above 0 and at most 100"),
    (_buyers(second_id="11010119920101002X"), "Buyer 2 (李四): This ID number is not valid"),
    (_buyers(second_id=f.VALID_ID_NUMBER), "Buyers 1 and 2 have the same identity document"),
    ([{**_buyers()[0], "name": " "}, _buyers()[1]], "Buyer 1: enter the name."),
    ([{**_buyers()[0], "phone": "12345"}, _buyers()[1]], "Buyer 1 (张三): 12345 is not a valid phone number"),
    ([], "Name at least one buyer."),
    ([{**_buyers()[0], "share": "14.28"}] * 7, "at most 6 buyers"),
])
def test_r_chg_3_bad_buyers_are_refused_in_the_users_words_and_nothing_is_written(db, deal, rows, says):
    audits = _count(db, Audit)
    with raises_rule("R-CHG-3", match=says):
        request_change(db.session, deal["agent"], deal["sub"].id, "buyers", reason="加名", proposal={"buyers": rows},
                       today=TODAY)
    db.session.rollback()
    assert _count(db, ChangeRequest) == 0 and _count(db, Audit) == audits


def test_r_chg_3_a_buyer_change_keeps_the_former_buyers_and_renames_the_agreement(db, deal):
    sub_id = deal["sub"].id
    [first] = current_buyers(db.session, sub_id)
    buyers = _buyers()
    buyers[0], buyers[1] = {**buyers[1], "share": "60"}, {**buyers[0], "share": "40"}  # the spouse first now
    change = _ask(db, deal, proposal={"buyers": buyers})
    _decide(db, deal["manager"], change.id)
    db.session.expire_all()
    now = current_buyers(db.session, sub_id)
    assert [(b.name, b.id_number, b.share, b.added_by_change_id) for b in now] == [
        ("李四", SPOUSE_ID, Decimal("60.00"), change.id), ("张三", f.VALID_ID_NUMBER, Decimal("40.00"), change.id)]
    former = db.session.get(DealBuyer, first.id)
    assert former.ended_by_change_id == change.id and former.ended_at is not None and former.share == Decimal("100")
    sub = db.session.get(Subscription, sub_id)
    assert (sub.customer_name, sub.customer_id_number, sub.last_change_id) == ("李四", SPOUSE_ID, change.id)
    assert _count(db, Audit, Audit.action == "change_buyers", Audit.entity == "subscription") == 1
    assert _count(db, Audit, Audit.action == "change_buyers", Audit.entity == "deal_buyer") == 3  # 1 ended, 2 added


# --- chains (R-CHG-1) ------------------------------------------------------------------------------

def test_r_chg_1_each_kind_follows_the_projects_chain_and_a_price_beyond_the_managers_limit_goes_to_the_vp(db, deal):
    sub, project = deal["sub"], deal["project"]
    assert chain_for(db.session, sub, "buyers", {}) == ["sales_manager"]
    assert chain_for(db.session, sub, "cancellation", {}) == ["sales_manager", "vp"]
    assert chain_for(db.session, sub, "price", {"price": "1000000.00"}) == ["sales_manager"]  # the list price
    assert chain_for(db.session, sub, "price", {"price": "999999.99"}) == ["sales_manager", "vp"]  # limit 0 %
    project.manager_price_limit_percent = Decimal("5")
    assert chain_for(db.session, sub, "price", {"price": "950000.00"}) == ["sales_manager"]  # 5 % below: his
    assert chain_for(db.session, sub, "price", {"price": "949999.99"}) == ["sales_manager", "vp"]
    project.change_chains = {**project.change_chains, "buyers": ["vp"], "price": ["sales_manager", "vp"]}
    assert chain_for(db.session, sub, "buyers", {}) == ["vp"]  # the project's own
    assert chain_for(db.session, sub, "price", {"price": "900000.00"}) == ["sales_manager", "vp"]  # vp once
    project.change_chains = {**project.change_chains, "buyers": ["finance"]}
    with raises_rule("R-CHG-1", match="cannot decide changes"):
        chain_for(db.session, sub, "buyers", {})
    project.change_chains = {**project.change_chains, "buyers": []}
    with raises_rule("R-CHG-1", match="names no approver"):
        chain_for(db.session, sub, "buyers", {})
    db.session.rollback()


def test_r_chg_1_a_request_keeps_its_chain_the_deals_terms_and_tells_whoever_decides_first(db, deal):
    change = _ask(db, deal)
    assert (change.status, change.chain, change.step, change.round) == ("requested", "sales_manager", 0, 1)
    assert change.before["price"] == "1000000.00" and change.before["paid"] == "50000.00"
    assert [b["share"] for b in change.before["buyers"]] == ["100.00"]
    assert change.proposal["buyers"][0]["phone"] == "13800138000"
    assert len(_notes(db, deal["manager"], "change_requested")) == 1
    assert len(_notes(db, deal["manager2"], "change_requested")) == 1
    assert _notes(db, deal["vp"], "change_requested") == [] and _notes(db, deal["admin"], "change_requested") == []
    assert open_change(db.session, deal["sub"].id).id == change.id
    assert _count(db, Audit, Audit.entity == "change_request", Audit.action == "request_change") == 1


def test_r_chg_1_a_two_step_chain_passes_from_the_manager_to_the_vp_and_tells_each(db, deal):
    change = _ask(db, deal, "price", {"price": "990000.00"}, reason="老客户优惠")
    assert change.roles == ["sales_manager", "vp"]
    with raises_rule("R-CHG-1", match="decided by the"):  # a vp cannot take the manager's step
        _decide(db, deal["vp"], change.id)
    db.session.rollback()
    _decide(db, deal["manager"], change.id)
    change = db.session.get(ChangeRequest, change.id)
    assert (change.status, change.step, change.applied_at) == ("requested", 1, None)
    assert len(_notes(db, deal["vp"], "change_requested")) == 1
    with raises_rule("R-CHG-1", match="decided by the"):  # the next manager cannot take the vp's
        _decide(db, deal["manager2"], change.id)
    db.session.rollback()
    _decide(db, deal["vp"], change.id)
    change = db.session.get(ChangeRequest, change.id)
    assert change.status == "approved" and change.applied_at is not None
    assert [(s.seq, s.role, s.decision) for s in change.steps] == [(0, "sales_manager", "approved"),
                                                                    (1, "vp", "approved")]
    assert len(_notes(db, deal["agent"], "change_decided")) == 1
    assert db.session.get(Subscription, deal["sub"].id).price == Decimal("990000.00")


# --- deciding (R-CHG-1) ----------------------------------------------------------------------------

def test_r_chg_1_only_the_steps_role_decides_never_the_agent_the_admin_or_the_requester(db, deal, make_user):
    change = _ask(db, deal)
    for user, rule in ((deal["agent"], "R-ALL-1"), (deal["admin"], "R-ALL-1"), (deal["vp"], "R-CHG-1"),
                       (deal["finance"], "R-ALL-1")):
        assert decision_refusal(db.session, user, change).rule == rule
        with raises_rule(rule):
            decide_change(db.session, user, change.id, "approve", today=TODAY)
        db.session.rollback()
    withdraw_change(db.session, deal["agent"], change.id, reason="改由经理提出")
    db.session.commit()
    mine = _ask(db, deal, by=deal["manager"])
    with raises_rule("R-CHG-1", match="someone else decides it"):
        _decide(db, deal["manager"], mine.id)
    db.session.rollback()
    assert decision_refusal(db.session, deal["manager2"], mine) is None
    _decide(db, deal["manager2"], mine.id)
    assert db.session.get(ChangeRequest, mine.id).status == "approved"


def test_r_chg_1_a_rejection_needs_a_reason_and_tells_the_requester(db, deal):
    change = _ask(db, deal)
    with raises_rule("R-CHG-1", match="Say why"):
        _decide(db, deal["manager"], change.id, "reject")
    db.session.rollback()
    _decide(db, deal["manager"], change.id, "reject", note="证件未核验")
    change = db.session.get(ChangeRequest, change.id)
    assert (change.status, change.decision_note, change.applied_at) == ("rejected", "证件未核验", None)
    assert [b.name for b in current_buyers(db.session, deal["sub"].id)] == [deal["sub"].customer_name]
    [told] = _notes(db, deal["agent"], "change_decided")
    assert "证件未核验" in told
    assert open_change(db.session, deal["sub"].id) is None
    _ask(db, deal)  # the deal may change again


def test_r_chg_1_sent_back_the_requester_resubmits_a_new_round_or_withdraws(db, deal):
    change = _ask(db, deal, proposal={"buyers": _buyers("50", "50")})
    _decide(db, deal["manager"], change.id, "send_back", note="份额请写明")
    change = db.session.get(ChangeRequest, change.id)
    assert change.status == "sent_back" and "份额请写明" in _notes(db, deal["agent"], "change_decided")[0]
    with raises_rule("R-CHG-1", match="already decided"):
        _decide(db, deal["manager2"], change.id)
    db.session.rollback()
    with raises_rule("R-CHG-3", match="90 %"):
        resubmit_change(db.session, deal["agent"], change.id, reason="补充", proposal={"buyers": _buyers("60", "30")},
                        today=TODAY)
    db.session.rollback()
    # Not the manager who sent it back (he works on every deal): he would approve his own proposal.
    with raises_rule("R-CHG-1", match="who asked for this change, may resubmit it"):
        resubmit_change(db.session, deal["manager"], change.id, reason="经理改的",
                        proposal={"buyers": _buyers("70", "30")}, today=TODAY)
    db.session.rollback()
    assert db.session.get(ChangeRequest, change.id).status == "sent_back"
    resubmit_change(db.session, deal["agent"], change.id, reason="份额七三", proposal={"buyers": _buyers("70", "30")},
                    today=TODAY)
    db.session.commit()
    change = db.session.get(ChangeRequest, change.id)
    assert (change.status, change.round, change.step, change.reason) == ("requested", 2, 0, "份额七三")
    assert [b["share"] for b in change.proposal["buyers"]] == ["70.00", "30.00"]
    assert len(_notes(db, deal["manager"], "change_requested")) == 2
    _decide(db, deal["manager"], change.id)  # round 2: the same manager decides the step anew
    change = db.session.get(ChangeRequest, change.id)
    assert change.status == "approved"
    assert [(s.round, s.decision) for s in change.steps] == [(1, "sent_back"), (2, "approved")]
    assert [b.share for b in current_buyers(db.session, deal["sub"].id)] == [Decimal("70.00"), Decimal("30.00")]


def test_r_chg_1_an_approval_that_cannot_be_applied_records_nothing_and_says_so(db, deal, make_user):
    from models.deals import subscribe
    target = f.unit(db.session, f.building(db.session, deal["project"]), list_price=Decimal("1000000.00"))
    db.session.commit()
    change = _ask(db, deal, "unit_swap", {"unit_id": target.id}, reason="换到高楼层")
    other = make_user("agent", username="rival")
    lead = f.lead(db.session, owner=other, project_=deal["project"])
    db.session.commit()
    subscribe(db.session, other, unit_id=target.id, lead_id=lead.id, payment_method="one_off", deposit="50000",
              id_number=f.VALID_ID_NUMBER, address="长沙", today=TODAY)  # the unit is taken meanwhile
    db.session.commit()
    audits = _count(db, Audit)
    with raises_rule("R-CHG-2", match="The change cannot be applied"):
        _decide(db, deal["manager"], change.id)
    db.session.rollback()
    change = db.session.get(ChangeRequest, change.id)
    assert (change.status, change.step, change.applied_at, change.decided_by_id) == ("requested", 0, None, None)
    assert _count(db, ChangeStep) == 0 and _count(db, Audit) == audits
    assert db.session.get(Subscription, deal["sub"].id).unit_id == deal["unit"].id
    _decide(db, deal["manager"], change.id, "send_back", note="该房已售，请另选")  # still decidable
    assert db.session.get(ChangeRequest, change.id).status == "sent_back"


def test_r_chg_1_a_withdrawn_request_frees_the_deal_and_can_no_longer_be_decided(db, deal):
    change = _ask(db, deal)
    with raises_rule("R-CHG-1", match="Say why"):
        withdraw_change(db.session, deal["agent"], change.id, reason=" ")
    withdraw_change(db.session, deal["agent"], change.id, reason="客户不改了")
    db.session.commit()
    assert db.session.get(ChangeRequest, change.id).status == "withdrawn"
    with raises_rule("R-CHG-1", match="already decided"):
        _decide(db, deal["manager"], change.id)
    db.session.rollback()
    assert open_change(db.session, deal["sub"].id) is None
    assert _count(db, Audit, Audit.action == "withdraw_change") == 1


def test_r_chg_1_a_second_change_while_one_waits_or_is_sent_back_is_refused(db, deal):
    change = _ask(db, deal)
    with raises_rule("R-CHG-1", match=f"A change of this deal is already waiting ({change}"):
        _ask(db, deal, "payment_method", {"payment_method": "instalments"})
    db.session.rollback()
    _decide(db, deal["manager"], change.id, "send_back", note="补充材料")
    with raises_rule("R-CHG-1", match="was sent back"):
        _ask(db, deal, "price", {"price": "990000.00"})
    db.session.rollback()
    assert _count(db, ChangeRequest) == 1


def test_r_chg_1_the_database_refuses_a_second_open_request_of_a_deal(db, deal):
    change = _ask(db, deal)
    with pytest.raises(IntegrityError):
        db.session.add(ChangeRequest(subscription_id=deal["sub"].id, kind="price", chain="sales_manager",
                                     proposal={}, before={}, difference={}, reason="绕过",
                                     requested_by_id=deal["agent"].id))
        db.session.flush()
    db.session.rollback()
    assert open_change(db.session, deal["sub"].id).id == change.id


def test_r_chg_1_the_same_form_twice_records_one_request_and_one_decision(db, deal):
    key = new_key()
    first = _ask(db, deal, key=key)
    with pytest.raises(AlreadySubmitted):
        _ask(db, deal, key=key)
    db.session.rollback()
    assert _count(db, ChangeRequest) == 1
    decision_key = new_key()
    decide_change(db.session, deal["manager"], first.id, "approve", key=decision_key, today=TODAY)
    db.session.commit()
    with pytest.raises(AlreadySubmitted):
        decide_change(db.session, deal["manager"], first.id, "approve", key=decision_key, today=TODAY)
    db.session.rollback()
    assert _count(db, ChangeStep) == 1


def test_r_chg_1_only_a_deal_whose_deposit_is_in_changes_and_only_on_its_agents_or_managers_word(db, deal,
                                                                                                make_user):
    other_agent = make_user("agent", username="other")
    with raises_rule("R-ALL-1", match="not one of yours"):
        _ask(db, deal, by=other_agent)
    db.session.rollback()
    with raises_rule("R-CHG-1", match="Say why"):
        _ask(db, deal, reason="  ")
    db.session.rollback()
    lead = f.lead(db.session, owner=deal["agent"], project_=deal["project"])
    unit = f.unit(db.session, f.building(db.session, deal["project"]), list_price=Decimal("800000.00"))
    db.session.commit()
    draft = f.through_steps(db.session, {"agent": deal["agent"], "control": deal["control"]}, unit, lead,
                            payment_method="one_off", subscribed_on=TODAY, today=TODAY, stage="confirmed")
    with raises_rule("R-CHG-1", match="withdraw it and subscribe again"):
        _ask(db, {**deal, "sub": draft})
    db.session.rollback()
    db.session.execute(update(Subscription).where(Subscription.id == deal["sub"].id).values(status="contracted"))
    db.session.commit()
    for kind, proposal in (("unit_swap", {"unit_id": unit.id}), ("price", {"price": "990000.00"})):
        with raises_rule("R-CHG-1", match="rescinded first"):
            _ask(db, deal, kind, proposal)
        db.session.rollback()
    assert _ask(db, deal).status == "requested"  # the buyers of a contracted deal may change
    assert _count(db, ChangeRequest) == 1


def test_r_chg_1_a_deal_ending_closes_its_open_and_its_sent_back_change(db, deal, make_deal):
    from models.ladder import forfeit
    waiting = _ask(db, deal)
    second = make_deal(office=deal,
                       unit=f.unit(db.session, f.building(db.session, deal["project"]),
                                   list_price=Decimal("900000.00")), customer="王五", subscribed_on=TODAY)
    sent_back = _ask(db, {**deal, "sub": second})
    _decide(db, deal["manager"], sent_back.id, "send_back", note="补充")
    for sub_id in (deal["sub"].id, second.id):
        assert forfeit(db.session, sub_id, TODAY + dt.timedelta(days=400))
    db.session.expire_all()
    assert db.session.get(ChangeRequest, waiting.id).status == "rejected"
    assert db.session.get(ChangeRequest, sent_back.id).status == "rejected"
    assert len(_notes(db, deal["agent"], "request_closed")) == 2
    assert "Change request closed: the deal was forfeited." in _notes(db, deal["agent"], "request_closed")
    with raises_rule("R-CHG-1", match="not waiting for a decision (it is Rejected)"):
        _decide(db, deal["manager"], waiting.id)
    db.session.rollback()


@pytest.mark.postgres
def test_r_chg_1_two_managers_approving_at_once_record_one_step(app, db, deal):
    from models import User
    manager_ids = (deal["manager"].id, deal["manager2"].id)
    for n in range(5):
        if n:
            buyers = _buyers(str(50 + n), str(50 - n))
            change = _ask(db, deal, proposal={"buyers": buyers})
        else:
            change = _ask(db, deal)
        change_id = change.id

        def approve(uid):
            def run(session):
                decided = decide_change(session, session.get(User, uid), change_id, "approve", today=TODAY)
                session.commit()
                return decided.status
            return run

        results = race(approve(manager_ids[0]), approve(manager_ids[1]), app=app, expected=(Exception,))
        won = [r for r in results if r == "approved"]
        lost = [r for r in results if r != "approved"]
        assert len(won) == 1 and len(lost) == 1 and getattr(lost[0], "rule", None) == "R-CHG-1", results
        assert "already decided" in str(lost[0])
        db.session.expire_all()
        assert _count(db, ChangeStep, ChangeStep.change_request_id == change_id) == 1
    assert _count(db, Audit, Audit.action == "approve_change") == 5
    assert _count(db, DealBuyer, DealBuyer.subscription_id == deal["sub"].id,
                  DealBuyer.ended_by_change_id.is_(None)) == 2


@pytest.mark.postgres
def test_r_chg_1_two_changes_of_one_deal_asked_at_once_open_one(app, db, deal):
    from models import User
    agent_id, manager_id, sub_id = deal["agent"].id, deal["manager"].id, deal["sub"].id

    def ask(uid, kind, proposal):
        def run(session):
            change = request_change(session, session.get(User, uid), sub_id, kind, reason="同时申请",
                                    proposal=proposal, today=TODAY)
            session.commit()
            return change.id
        return run

    results = race(ask(agent_id, "buyers", {"buyers": _buyers()}),
                   ask(manager_id, "payment_method", {"payment_method": "instalments"}), app=app, expected=(Exception,))
    opened = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if not isinstance(r, int)]
    assert len(opened) == 1 and len(refused) == 1 and getattr(refused[0], "rule", None) == "R-CHG-1", results
    assert "already waiting" in str(refused[0])
    assert _count(db, ChangeRequest) == 1


# --- the terms guard (R-CHG-1) ---------------------------------------------------------------------

def _raw(db, sql, **params):
    db.session.execute(text(sql), params)
    db.session.flush()


def test_r_chg_1_the_database_refuses_a_live_deals_terms_written_behind_the_systems_back(db, deal):
    sub_id = deal["sub"].id
    for sql in ("UPDATE subscription SET price = 1 WHERE id = :id",
                "UPDATE subscription SET payment_method = 'instalments' WHERE id = :id",
                "UPDATE subscription SET customer_name = '别人' WHERE id = :id",
                "UPDATE subscription SET deposit = 1 WHERE id = :id",
                "UPDATE deal_buyer SET share = 50 WHERE subscription_id = :id",
                "DELETE FROM deal_buyer WHERE subscription_id = :id",
                "INSERT INTO deal_buyer (subscription_id, seq, name, id_type, id_number, phone, share, created_at) "
                "VALUES (:id, 2, '别人', 'passport', 'E12345678', '', 10, '2026-11-26 00:00:00')"):
        with pytest.raises(IntegrityError, match="R-CHG-"):
            _raw(db, sql, id=sub_id)
        db.session.rollback()
    # Naming a change that is not an approved, unapplied one of this deal does not help either.
    change = _ask(db, deal)
    with pytest.raises(IntegrityError, match="R-CHG-1"):
        _raw(db, "UPDATE subscription SET price = 1, last_change_id = :c WHERE id = :id", id=sub_id, c=change.id)
    db.session.rollback()


def test_r_chg_1_an_approved_change_writes_the_terms_once_and_an_applied_one_never_again(db, deal):
    sub_id = deal["sub"].id
    change = _ask(db, deal, "price", {"price": "990000.00"}, reason="老客户优惠")
    db.session.execute(update(ChangeRequest).where(ChangeRequest.id == change.id).values(status="approved"))
    _raw(db, "UPDATE subscription SET price = 999000, last_change_id = :c WHERE id = :id", id=sub_id, c=change.id)
    db.session.execute(update(ChangeRequest).where(ChangeRequest.id == change.id).values(applied_at=dt.datetime.now()))
    with pytest.raises(IntegrityError, match="R-CHG-1"):  # the same licence a second time
        _raw(db, "UPDATE subscription SET price = 1, last_change_id = :c WHERE id = :id", id=sub_id, c=change.id)
    db.session.rollback()


def test_r_chg_1_a_deal_before_its_deposit_is_not_yet_guarded_and_statuses_still_move(db, deal):
    lead = f.lead(db.session, owner=deal["agent"], project_=deal["project"])
    unit = f.unit(db.session, f.building(db.session, deal["project"]), list_price=Decimal("800000.00"))
    db.session.commit()
    draft = f.through_steps(db.session, {"agent": deal["agent"]}, unit, lead, payment_method="one_off",
                            subscribed_on=TODAY, today=TODAY, stage="draft")
    _raw(db, "UPDATE subscription SET price = 790000 WHERE id = :id", id=draft.id)  # a draft: no sale yet
    _raw(db, "UPDATE subscription SET status = 'contracted' WHERE id = :id", id=deal["sub"].id)  # no term
    _raw(db, "UPDATE subscription SET price = :p, payment_method = 'one_off' WHERE id = :id",  # unchanged
         id=deal["sub"].id, p="1000000.00")
    db.session.rollback()
