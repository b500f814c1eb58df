"""Issue 24, review findings 1 and 5: a card that no longer lets its buyer choose (refunded, not
eligible, expired at midnight) stops his choice even inside his slot, a refund waits for the slot
(R-LCH-1), and the agent is told when his buyer's slot opens, is missed or he is put out (R-LCH-3)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select, update

from models import Notification, Subscription, Unit
from models.errors import RuleViolation
from models.launches import IntentPayment, LaunchEntry, refund_intent_deposit
from models.selection import advance, choose, start_selection
from tests.test_selection import MIN, NOW, english, make_day

DAY = dt.date(2026, 11, 26)


def _received(session, day, entry, n=1):
    session.add(IntentPayment(project_id=day["project"].id, entry_id=entry.id, kind="deposit",
                              amount=Decimal("50000.00"), number=f"R{n:04d}", paid_on=dt.date(2026, 11, 10),
                              channel="cash", recorded_by_id=day["finance"].id))
    session.commit()


def _refund(session, day, entry_id):
    return refund_intent_deposit(session, day["finance"], entry_id, paid_on=DAY, channel="cash",
                                 reason="买家放弃", today=DAY)


def _entry(db, entry):
    db.session.expire_all()
    return db.session.get(LaunchEntry, entry.id)


def _nothing_sold(db):
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Subscription)) == 0
    assert db.session.scalar(select(func.count()).select_from(Unit).where(Unit.status == "subscribed")) == 0


def test_r_lch_1_a_refund_while_the_buyer_is_choosing_is_refused_and_waits_for_his_slot(db, make_user):
    day = make_day(db.session, make_user)
    first = day["entries"][0]
    _received(db.session, day, first)
    start_selection(db.session, day["manager"], day["launch"].id, NOW)
    db.session.commit()
    assert _entry(db, first).selection_status == "choosing"
    with pytest.raises(RuleViolation) as refused:
        _refund(db.session, day, first.id)
    db.session.rollback()
    assert refused.value.rule == "R-LCH-1"
    assert "is choosing a unit now (his slot runs until 10:05)" in english(refused.value)
    assert _entry(db, first).status == "paid"
    assert db.session.scalar(select(func.count()).select_from(IntentPayment).where(
        IntentPayment.kind == "refund")) == 0
    # his slot ended: requeued, waiting again — now finance may refund, and his next turn puts him out
    advance(db.session, day["launch"].id, NOW + 6 * MIN)
    db.session.commit()
    assert _entry(db, first).selection_status == "waiting"
    voucher = _refund(db.session, day, first.id)
    db.session.commit()
    assert voucher.kind == "refund" and _entry(db, first).status == "refunded"
    at = NOW + 6 * MIN
    while _entry(db, first).selection_status == "waiting" and at < NOW + 60 * MIN:
        at += 6 * MIN
        advance(db.session, day["launch"].id, at)
        db.session.commit()
    assert _entry(db, first).selection_status == "out"  # his turn came: the card no longer lets him
    with pytest.raises(RuleViolation):
        choose(db.session, day["control"], first.id, day["units"][0].id, at)
    db.session.rollback()
    _nothing_sold(db)


@pytest.mark.parametrize("change", [{"status": "refunded"}, {"eligible": False}])
def test_r_lch_1_a_card_that_stopped_letting_him_choose_refuses_his_choice_inside_his_slot(db, make_user, change):
    """The deposit refunded (or the eligibility withdrawn) under the slot, by any path: the choice's own
    check and its turn's conditional UPDATE both ask the card — nothing is sold, the unit stays free."""
    day = make_day(db.session, make_user)
    first = day["entries"][0]
    start_selection(db.session, day["manager"], day["launch"].id, NOW)
    db.session.commit()
    db.session.execute(update(LaunchEntry).where(LaunchEntry.id == first.id).values(**change))
    db.session.commit()
    with pytest.raises(RuleViolation) as refused:
        choose(db.session, day["control"], first.id, day["units"][0].id, NOW + MIN)
    db.session.rollback()
    assert refused.value.rule == "R-LCH-1"
    assert english(refused.value).startswith("Card K0001 does not let its buyer choose")
    assert _entry(db, first).selection_status == "choosing"
    _nothing_sold(db)


def test_r_lch_1_the_turns_update_asks_the_card_too(db, make_user):
    """The guarded UPDATE itself (not only the check before it): a card refunded between the check and
    the UPDATE matches nothing."""
    from models.selection import _take_turn
    day = make_day(db.session, make_user)
    first = day["entries"][0]
    start_selection(db.session, day["manager"], day["launch"].id, NOW)
    db.session.commit()
    db.session.execute(update(LaunchEntry).where(LaunchEntry.id == first.id).values(status="refunded"))
    assert _take_turn(db.session, first.id, NOW + MIN, subscription_id=None) is False
    db.session.execute(update(LaunchEntry).where(LaunchEntry.id == first.id).values(status="paid", eligible=False))
    assert _take_turn(db.session, first.id, NOW + MIN, subscription_id=None) is False
    db.session.rollback()


def test_r_lch_1_a_card_expiring_at_midnight_during_the_slot_refuses_the_choice_after_midnight(db, make_user):
    """Card valid until 26 November; the slot opens at 23:58 office time (15:58 UTC) for 5 minutes: at
    23:59 he chooses, at 00:01 on the 27th (office time) he may not."""
    day = make_day(db.session, make_user, card_valid_until=DAY)
    first, second = day["entries"][:2]
    t0 = dt.datetime(2026, 11, 26, 15, 58)
    start_selection(db.session, day["manager"], day["launch"].id, t0)
    db.session.commit()
    sub = choose(db.session, day["control"], first.id, day["units"][0].id, t0 + MIN)
    db.session.commit()
    assert sub.subscribed_on == DAY
    with pytest.raises(RuleViolation) as refused:
        choose(db.session, day["control"], second.id, day["units"][1].id, t0 + 3 * MIN)
    db.session.rollback()
    assert refused.value.rule == "R-LCH-1"
    assert english(refused.value) == "Card K0002 expired on 2026-11-26: its buyer may no longer choose. (rule R-LCH-1)"
    assert _entry(db, second).selection_status == "choosing"
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Subscription)) == 1


# --- who is told -------------------------------------------------------------------------------

def _notes(db, kind=None):
    db.session.expire_all()
    query = select(Notification).order_by(Notification.id)
    if kind:
        query = query.where(Notification.kind == kind)
    return db.session.scalars(query).all()


def test_r_lch_3_the_agent_is_told_when_his_buyers_slot_opens_and_when_it_is_missed(db, make_user):
    day = make_day(db.session, make_user, entries=3, slot_size=2, missed_rule="requeue")
    start_selection(db.session, day["manager"], day["launch"].id, NOW)
    db.session.commit()
    opened = _notes(db, "launch_slot_open")
    entries = day["entries"]
    assert [(n.user_id, n.params["card"]) for n in opened] == [(entries[0].agent_id, "K0001"),
                                                               (entries[1].agent_id, "K0002")]
    link = f"/admin/launch_select/?launch={day['launch'].id}"
    assert all(n.link == link for n in opened)
    with force_locale("en"):
        assert opened[0].text == ("首开: the slot of card K0001 is open, until 10:05. "
                                  "Bring the buyer to choose now.")  # office time: 02:05 UTC
    # both slots end unused: requeued (told), the third opens (told) — in advance's transaction
    advance(db.session, day["launch"].id, NOW + 6 * MIN)
    db.session.commit()
    requeued = _notes(db, "launch_slot_requeued")
    assert [n.params["card"] for n in requeued] == ["K0001", "K0002"]
    assert [n.params["queue_no"] for n in requeued] == [4, 5]
    with force_locale("en"):
        assert requeued[0].text.startswith("首开: card K0001 missed its slot and goes to the end of the queue "
                                           "(number 4)")
    assert [n.params["card"] for n in _notes(db, "launch_slot_open")] == ["K0001", "K0002", "K0003", "K0001"]
    assert _notes(db, "launch_slot_open")[-1].params["until"] == "10:11"


def test_r_lch_3_the_agent_is_told_when_his_buyer_misses_for_good_or_is_put_out(db, make_user):
    day = make_day(db.session, make_user, entries=3, slot_size=1, missed_rule="out")
    db.session.execute(update(LaunchEntry).where(LaunchEntry.id == day["entries"][1].id).values(status="refunded"))
    db.session.commit()
    start_selection(db.session, day["manager"], day["launch"].id, NOW)
    db.session.commit()
    advance(db.session, day["launch"].id, NOW + 6 * MIN)
    db.session.commit()
    missed, out = _notes(db, "launch_slot_missed"), _notes(db, "launch_out")
    assert [(n.user_id, n.params["card"]) for n in missed] == [(day["entries"][0].agent_id, "K0001")]
    assert [(n.user_id, n.params["card"], n.params["_t"]) for n in out] == [
        (day["entries"][1].agent_id, "K0002", "launch_out.not_paid")]
    with force_locale("en"):
        assert missed[0].text == "首开: card K0001 missed its slot and is out of the selection."
        assert out[0].text == "首开: card K0002 is out of the selection: its intent deposit is not held."
    assert [n.params["card"] for n in _notes(db, "launch_slot_open")] == ["K0001", "K0003"]


def test_r_lch_3_a_run_with_nothing_to_do_tells_nobody(db, make_user):
    day = make_day(db.session, make_user)
    start_selection(db.session, day["manager"], day["launch"].id, NOW)
    db.session.commit()
    before = len(_notes(db))
    advance(db.session, day["launch"].id, NOW + MIN)
    advance(db.session, day["launch"].id, NOW + MIN)
    db.session.commit()
    assert len(_notes(db)) == before


# --- the race (PostgreSQL) ----------------------------------------------------------------------

@pytest.mark.postgres  # run in the PostgreSQL pass (tests/conftest.py), never skipped there
def test_r_lch_1_a_refund_and_a_choice_racing_on_one_card_end_in_exactly_one(app, db, make_user):
    """Finance refunds the card while its buyer chooses, at the same instant, each in its own session:
    the entry's row lock orders them and exactly one goes through. Whichever reaches the row first, it
    is the choice: a refund first is refused (he is choosing), a refund second is refused (he chose:
    convert instead) — never a refunded card holding a unit, never a refund of a chosen one."""
    from tests.support.race import race
    day = make_day(db.session, make_user)
    first = day["entries"][0]
    _received(db.session, day, first)
    start_selection(db.session, day["manager"], day["launch"].id, NOW)
    db.session.commit()
    entry_id, unit_id, control_id, finance_id = first.id, day["units"][0].id, day["control"].id, day["finance"].id

    def choice(session):
        from models import User
        sub = choose(session, session.get(User, control_id), entry_id, unit_id, NOW + MIN)
        session.commit()
        return ("chosen", sub.id)

    def refund(session):
        from models import User
        row = refund_intent_deposit(session, session.get(User, finance_id), entry_id, paid_on=DAY, channel="cash",
                                    reason="买家放弃", today=DAY)
        session.commit()
        return ("refunded", row.id)

    results = race(choice, refund, app=app, expected=(RuleViolation,), join=60)
    assert results[0][0] == "chosen" and isinstance(results[1], RuleViolation)
    assert results[1].rule == "R-LCH-1"
    entry = _entry(db, first)
    refunds = db.session.scalar(select(func.count()).select_from(IntentPayment).where(IntentPayment.kind == "refund"))
    subs = db.session.scalar(select(func.count()).select_from(Subscription))
    assert (entry.status, entry.selection_status, refunds, subs) == ("paid", "chosen", 0, 1)
