"""The selection (选房) of an opening day, in timed slots (R-LCH-3, R-SC-2).

Once drawn (R-LCH-2: each entry's `position`, its `queue_no` the same), the launch's selection
starts (`start_selection`): `slot_size` entries at a time are `choosing`, each for
`slot_minutes`, in `queue_no` order. `advance` moves it on — called every ~15 s by the scheduled
job (jobs/selection.py), and lazily by the selection page, the big screen and a choice whose turn
seems not to have come — under the launch row's lock:

- an entry whose slot ended without a choice missed it: by the launch's `missed_rule`, to the end
  of the queue (`requeue`: queue_no = last + 1, waiting again; a second miss is final) or out; an
  entry out for a missed slot reads `missed`, one out for any other reason `out`;
- the free places are filled from `waiting`, in queue order; an entry that may not choose (its
  intent deposit not received, not eligible, its card expired) goes `out`, the reason audited.

A choice (`choose`) IS the subscription: one transaction takes the buyer's turn by a conditional
UPDATE (`choosing` and inside his slot) and makes the deal through the same guarded function as
the screens (models.deals.place_subscription: the unit's conditional UPDATE and the partial
unique index) — a unit gone meanwhile rolls the turn back with it, and the buyer chooses again.
The caller commits.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from flask_babel import gettext, lazy_gettext as _l
from sqlalchemy import and_, case, exists, func, literal, select, update

from .audit import record_many
from .base import office_local, office_time, utcnow
from .board import is_sold, saleable, sold_join
from .deals import PAYMENT_METHODS, UnitTaken, place_subscription
from .errors import RuleViolation
from .inventory import Unit
from .labels import choice_label
from .launches import IntentPayment, Launch, LaunchBuilding, LaunchEntry, may_not_choose
from .notifications import MESSAGES, notify
from .permissions import require, sees_all_rows
from .users import User

# why an entry was put out of the selection (audited with it)
OUT_REASONS = ("not_paid", "not_eligible", "card_expired", "closed")


class UnitGone(RuleViolation):
    """The unit was chosen by someone else first; the buyer is still choosing and may pick another
    unit within his slot (R-LCH-3, R-SC-2)."""


class UnitBusy(UnitGone):
    """Another buyer's choice holds the unit at this moment (its transaction is open): answered at
    once rather than after the winner commits; the buyer chooses another unit (R-SC-2)."""


def _today(now: dt.datetime) -> dt.date:
    return office_local(now).date()


def _launch(session, launch_id: int, lock: bool = False) -> Launch:
    query = select(Launch).where(Launch.id == launch_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    launch = session.scalar(query)
    if launch is None:
        raise RuleViolation(_l("This launch does not exist."), rule="R-LCH-3")
    return launch


# --- the slots --------------------------------------------------------------------------------

def start_selection(session, by: User, launch_id: int, now: dt.datetime | None = None) -> Launch:
    """The drawn launch's selection begins (drawn → selecting); the first slots open (R-LCH-3)."""
    require(by, "launch.run")
    now = now or utcnow()
    launch = _launch(session, launch_id, lock=True)
    if launch.status != "drawn":
        raise RuleViolation(_l("Only a drawn launch can start its selection (it is %(status)s).",
                               status=choice_label("launch", "status", launch.status)), rule="R-LCH-3")
    session.execute(update(Launch).where(Launch.id == launch.id, Launch.status == "drawn")
                    .values(status="selecting", selection_started_at=now)
                    .execution_options(synchronize_session=False))
    record_many(session, "launch", "selection_start", by,
                [(launch.id, {"status": ["drawn", "selecting"], "selection_started_at": [None, now]})])
    # the queue is the draw's order (R-LCH-2), where the draw did not copy it already
    session.execute(update(LaunchEntry).where(LaunchEntry.launch_id == launch.id, LaunchEntry.queue_no.is_(None),
                                              LaunchEntry.position.is_not(None))
                    .values(queue_no=LaunchEntry.position).execution_options(synchronize_session=False))
    session.expire(launch)
    advance(session, launch.id, now)
    return launch


def _due(session, launch_id: int, now: dt.datetime) -> bool:
    """Whether `advance` has anything to do: one cheap read, no lock (the page, the screen and the
    job call it every few seconds)."""
    entries = LaunchEntry.__table__.c
    ended = exists().where(entries.launch_id == launch_id, entries.selection_status == "choosing",
                           entries.slot_ends_at <= now)
    choosing = (select(func.count()).select_from(LaunchEntry.__table__)
                .where(entries.launch_id == launch_id, entries.selection_status == "choosing").scalar_subquery())
    waiting = exists().where(entries.launch_id == launch_id, entries.selection_status == "waiting",
                             entries.queue_no.is_not(None))
    return bool(session.scalar(select(literal(True)).where(
        Launch.id == launch_id, Launch.status == "selecting",
        ended | and_(choosing < Launch.slot_size, waiting))))


def _out_reason(entry, launch: Launch, today: dt.date) -> str | None:
    return may_not_choose(entry.status, entry.eligible, launch.card_valid_until, today)


def advance(session, launch_id: int, now: dt.datetime | None = None) -> dict:
    """Move the selection on at `now` (R-LCH-3): missed slots handled by the launch's rule, free
    places filled in queue order, entries that may not choose put out with the reason. Idempotent
    (a second call at the same `now` finds nothing to do) and cheap when nothing is due. Returns
    what it did: {"missed": n, "requeued": n, "opened": n, "out": n}."""
    now = now or utcnow()
    done = {"missed": 0, "requeued": 0, "opened": 0, "out": 0}
    if not _due(session, launch_id, now):
        return done
    launch = _launch(session, launch_id, lock=True)
    if launch.status != "selecting":
        return done
    _handle_missed(session, launch, now, done)
    _fill(session, launch, now, done)
    return done


def _handle_missed(session, launch: Launch, now: dt.datetime, done: dict) -> None:
    ended = session.execute(select(LaunchEntry.id, LaunchEntry.missed_count, LaunchEntry.queue_no,
                                   LaunchEntry.agent_id, LaunchEntry.number).where(
        LaunchEntry.launch_id == launch.id, LaunchEntry.selection_status == "choosing",
        LaunchEntry.slot_ends_at <= now).order_by(LaunchEntry.queue_no)).all()
    if not ended:
        return
    last = session.scalar(select(func.max(LaunchEntry.queue_no)).where(LaunchEntry.launch_id == launch.id)) or 0
    rows = []
    for entry_id, missed_count, queue_no, agent_id, number in ended:
        requeue = launch.missed_rule == "requeue" and missed_count == 0
        values = {"missed_count": missed_count + 1, "slot_starts_at": None, "slot_ends_at": None,
                  "selection_status": "waiting" if requeue else "missed"}
        if requeue:
            last += 1
            values["queue_no"] = last
        matched = session.execute(update(LaunchEntry).where(
            LaunchEntry.id == entry_id, LaunchEntry.selection_status == "choosing", LaunchEntry.slot_ends_at <= now)
            .values(**values).execution_options(synchronize_session=False)).rowcount
        if matched != 1:
            continue  # chose at the last moment
        done["requeued" if requeue else "missed"] += 1
        changes = {"selection_status": ["choosing", values["selection_status"]],
                   "missed_count": [missed_count, missed_count + 1]}
        if requeue:
            changes["queue_no"] = [queue_no, last]
        rows.append((entry_id, changes))
        _tell(session, launch, agent_id, "launch_slot_requeued" if requeue else "launch_slot_missed",
              {"card": number, "queue_no": last} if requeue else {"card": number})
    record_many(session, "launch_entry", "selection_missed", None, rows)


def _fill(session, launch: Launch, now: dt.datetime, done: dict) -> None:
    today = _today(now)
    ends = now + dt.timedelta(minutes=launch.slot_minutes)
    free = launch.slot_size - session.scalar(select(func.count()).select_from(LaunchEntry).where(
        LaunchEntry.launch_id == launch.id, LaunchEntry.selection_status == "choosing"))
    opened, put_out = [], []
    while free > 0:
        candidates = session.execute(select(
            LaunchEntry.id, LaunchEntry.status, LaunchEntry.eligible, LaunchEntry.queue_no, LaunchEntry.agent_id,
            LaunchEntry.number).where(
            LaunchEntry.launch_id == launch.id, LaunchEntry.selection_status == "waiting",
            LaunchEntry.queue_no.is_not(None)).order_by(LaunchEntry.queue_no).limit(free)).all()
        if not candidates:
            break
        moved = 0
        for entry in candidates:
            reason = _out_reason(entry, launch, today)
            values = ({"selection_status": "out"} if reason else
                      {"selection_status": "choosing", "slot_starts_at": now, "slot_ends_at": ends})
            matched = session.execute(update(LaunchEntry).where(
                LaunchEntry.id == entry.id, LaunchEntry.selection_status == "waiting")
                .values(**values).execution_options(synchronize_session=False)).rowcount
            if matched != 1:
                continue
            moved += 1
            if reason:
                put_out.append((entry.id, {"selection_status": ["waiting", "out"], "reason": [None, reason]}))
                _tell(session, launch, entry.agent_id, "launch_out", {"card": entry.number, "_t": f"launch_out.{reason}"})
            else:
                free -= 1
                _tell(session, launch, entry.agent_id, "launch_slot_open",
                      {"card": entry.number, "until": office_time(ends, "%H:%M")})
                opened.append((entry.id, {"selection_status": ["waiting", "choosing"], "slot_starts_at": [None, now],
                                          "slot_ends_at": [None, ends]}))
        if not moved:  # the rows changed under us (nothing else writes them under the launch's lock)
            break
    record_many(session, "launch_entry", "selection_out", None, put_out)
    record_many(session, "launch_entry", "selection_slot", None, opened)
    done["opened"] += len(opened)
    done["out"] += len(put_out)


def _tell(session, launch: Launch, agent_id: int, kind: str, params: dict) -> None:
    """The entry's agent is told what the selection did to his buyer's card, with the transaction that
    did it, and led to the selection page."""
    notify(session, [agent_id], kind, {**params, "launch": launch.name}, f"/admin/launch_select/?launch={launch.id}")


MESSAGES.update({
    "launch_slot_open": lambda p: gettext(
        "%(launch)s: the slot of card %(card)s is open, until %(until)s. Bring the buyer to choose now.", **p),
    "launch_slot_requeued": lambda p: gettext(
        "%(launch)s: card %(card)s missed its slot and goes to the end of the queue (number %(queue_no)s); "
        "a second miss is final.", **p),
    "launch_slot_missed": lambda p: gettext(
        "%(launch)s: card %(card)s missed its slot and is out of the selection.", **p),
    "launch_out.not_paid": lambda p: gettext(
        "%(launch)s: card %(card)s is out of the selection: its intent deposit is not held.", **p),
    "launch_out.not_eligible": lambda p: gettext(
        "%(launch)s: card %(card)s is out of the selection: the buyer is not eligible to buy.", **p),
    "launch_out.card_expired": lambda p: gettext(
        "%(launch)s: card %(card)s is out of the selection: the card has expired.", **p),
})


def move_on(session, by, launch_id: int, now: dt.datetime | None = None) -> dict:
    """Sales control or the manager moves the selection on by hand (launch.run): `advance`, with the
    caller's role checked here, as the scheduled job's and the pages' lazy runs need no caller."""
    require(by, "launch.run")
    return advance(session, launch_id, now)


def close_launch(session, by: User, launch_id: int, now: dt.datetime | None = None) -> Launch:
    """The selection ends (selecting → closed); whoever is still waiting or choosing is out."""
    require(by, "launch.run")
    now = now or utcnow()
    launch = _launch(session, launch_id, lock=True)
    matched = session.execute(update(Launch).where(Launch.id == launch.id, Launch.status == "selecting")
                              .values(status="closed", closed_at=now)
                              .execution_options(synchronize_session=False)).rowcount
    if matched != 1:
        raise RuleViolation(_l("Only a launch in selection can be closed (it is %(status)s).",
                               status=choice_label("launch", "status", launch.status)), rule="R-LCH-3")
    record_many(session, "launch", "selection_close", by,
                [(launch.id, {"status": ["selecting", "closed"], "closed_at": [None, now]})])
    left = session.execute(select(LaunchEntry.id, LaunchEntry.selection_status).where(
        LaunchEntry.launch_id == launch.id, LaunchEntry.selection_status.in_(("waiting", "choosing")))).all()
    session.execute(update(LaunchEntry).where(LaunchEntry.id.in_([i for i, _ in left]),
                                              LaunchEntry.selection_status.in_(("waiting", "choosing")))
                    .values(selection_status="out", slot_ends_at=case(
                        (LaunchEntry.selection_status == "choosing", now), else_=LaunchEntry.slot_ends_at))
                    .execution_options(synchronize_session=False))
    record_many(session, "launch_entry", "selection_out", by,
                [(i, {"selection_status": [status, "out"], "reason": [None, "closed"]}) for i, status in left])
    session.expire(launch)
    return launch


# --- the choice -------------------------------------------------------------------------------

def may_choose_for(by: User, entry: LaunchEntry) -> bool:
    """An agent chooses for his own entries; the manager and a kiosk at sales control for any."""
    return sees_all_rows(by) or entry.agent_id == by.id


class _TurnLost(Exception):
    """The turn's guarded UPDATE matched nothing: the selection moved on meanwhile."""


def _in_slot(entry: LaunchEntry, now: dt.datetime) -> bool:
    return entry.selection_status == "choosing" and entry.slot_ends_at is not None and entry.slot_ends_at > now


def _take_turn(session, entry_id: int, now: dt.datetime, subscription_id: int) -> bool:
    """The buyer's turn, taken by the one conditional UPDATE that decides it (R-LCH-3)."""
    return session.execute(update(LaunchEntry).where(
        LaunchEntry.id == entry_id, LaunchEntry.selection_status == "choosing", LaunchEntry.slot_ends_at > now,
        LaunchEntry.status == "paid", LaunchEntry.eligible.is_(True))  # the card still lets him (R-LCH-1)
        .values(selection_status="chosen", chosen_at=now, subscription_id=subscription_id)
        .execution_options(synchronize_session=False)).rowcount == 1


def choose(session, by: User, entry_id: int, unit_id: int, now: dt.datetime | None = None,
           payment_method: str = "one_off"):
    """The buyer of `entry_id`, in his slot, chooses `unit_id` (R-LCH-3, R-SC-2): the subscription
    (a draft for sales control to confirm, its plan generated) for the entry's agent, at the list
    price, the launch's intent deposit as its deposit, the buyer's identity and address from his
    registration. Refused out of turn, before or after his slot (the message says when it is), for
    a unit not offered at the launch; UnitGone when someone else took the unit first (nothing
    written: he is still choosing). Returns the Subscription.

    The winning path is lean (it must reach hundreds of choices a second): the entry as loaded
    says whether his slot runs (the selection is moved on first only when it does not seem to);
    then, in one savepoint, the deal (the unit's conditional UPDATE and the partial unique index
    decide between buyers of one unit) and the turn's conditional UPDATE (choosing, inside the
    slot: it decides between the buyer and the clock) — either failing undoes both."""
    require(by, "launch.choose")
    now = now or utcnow()
    entry = session.get(LaunchEntry, entry_id) if entry_id else None
    if entry is None or not may_choose_for(by, entry):
        raise RuleViolation(_l("This registration does not exist, or is not one of yours."), rule="R-ALL-1")
    launch = session.get(Launch, entry.launch_id)
    if launch.status != "selecting":
        raise RuleViolation(_l("The selection of %(launch)s is not open (it is %(status)s).", launch=launch.name,
                               status=choice_label("launch", "status", launch.status)), rule="R-LCH-3")
    if payment_method not in PAYMENT_METHODS:
        raise RuleViolation(_l("Choose the payment method."), rule="R-SUB-1")
    seen = (entry.selection_status, entry.slot_ends_at)
    if not _in_slot(entry, now):
        advance(session, launch.id, now)  # his slot may have opened since the last run
        session.refresh(entry)
        if not _in_slot(entry, now):
            raise _not_now(session, entry, launch, now, seen)
    today, until = _today(now), entry.slot_ends_at
    refused = _may_not(entry, launch, today)
    if refused is not None:
        raise refused
    unit = _claim_unit(session, launch.id, unit_id, entry.lead_id, entry.slot_ends_at) if unit_id else None
    if unit is None:
        raise RuleViolation(_l("This unit is not offered at this launch."), rule="R-LCH-3")
    unit_number = unit.number
    try:
        with session.begin_nested():
            subscription = place_subscription(
                session, by, agent_id=entry.agent_id, unit=unit, lead=entry.lead,
                payment_method=payment_method, deposit=launch.intent_deposit, id_type=entry.id_type,
                id_number=entry.id_number, address=entry.address or entry.lead.address or "",
                subscribed_on=today, today=today)
            if not _take_turn(session, entry.id, now, subscription.id):
                raise _TurnLost
    except UnitTaken:
        raise _gone(unit_number, until) from None
    except _TurnLost:
        raise _not_now(session, entry, launch, now, seen) from None
    record_many(session, "launch_entry", "selection_choose", by,
                [(entry.id, {"selection_status": ["choosing", "chosen"], "chosen_at": [None, now],
                             "unit_id": [None, unit_id], "subscription_id": [None, subscription.id]})])
    session.expire(entry)
    return subscription


def _gone(unit_number: str, until: dt.datetime | None) -> UnitGone:
    return UnitGone(_l("Unit %(unit)s is gone: someone chose it first. Choose another unit; your "
                       "slot runs until %(until)s.", unit=unit_number,
                       until=office_time(until, "%H:%M:%S") if until else "—"), rule="R-SC-2")


def _claim_unit(session, launch_id: int, unit_id: int, lead_id: int, until: dt.datetime | None) -> Unit | None:
    """The unit offered at the launch, locked for this choice without waiting (R-SC-2); None when
    the launch does not offer it. A loser is answered at once instead of queueing behind the
    winner's open transaction: a unit already sold (or held for another customer) is gone by a
    plain read; a unit another buyer's choice holds locked right now (FOR UPDATE … SKIP LOCKED
    finds no row) is "being chosen" (UnitBusy). The lock is an early answer, not the guarantee:
    place_subscription's conditional UPDATE and the partial unique index still decide."""
    offered = select(Unit).join(LaunchBuilding, and_(
        LaunchBuilding.building_id == Unit.building_id, LaunchBuilding.launch_id == launch_id)).where(Unit.id == unit_id)
    unit = session.scalar(offered.with_for_update(of=Unit, skip_locked=True))
    if unit is None:
        seen = session.execute(select(Unit.number, Unit.status, Unit.held_for_lead_id).join(LaunchBuilding, and_(
            LaunchBuilding.building_id == Unit.building_id, LaunchBuilding.launch_id == launch_id))
            .where(Unit.id == unit_id)).first()
        if seen is None:
            return None
        if seen.status in ("subscribed", "signed") or (seen.status == "held" and seen.held_for_lead_id != lead_id):
            raise _gone(seen.number, until)
        raise UnitBusy(_l("Unit %(unit)s is being chosen by another buyer right now. Choose another unit; your "
                          "slot runs until %(until)s.", unit=seen.number,
                          until=office_time(until, "%H:%M:%S") if until else "—"), rule="R-SC-2")
    if unit.status in ("subscribed", "signed") or (unit.status == "held" and unit.held_for_lead_id != lead_id):
        raise _gone(unit.number, until)
    return unit
def _may_not(entry: LaunchEntry, launch: Launch, today: dt.date) -> RuleViolation | None:
    """Why the buyer's card no longer lets him choose today, though his slot runs (R-LCH-1: his intent
    deposit refunded, his eligibility withdrawn, his card expired at midnight), or None."""
    reason = may_not_choose(entry.status, entry.eligible, launch.card_valid_until, today)
    if reason == "not_paid":
        return RuleViolation(_l("Card %(number)s does not let its buyer choose: its intent deposit is not held "
                                "(it is %(status)s).", number=entry.number,
                                status=choice_label("launch_entry", "status", entry.status)), rule="R-LCH-1")
    if reason == "not_eligible":
        return RuleViolation(_l("Card %(number)s does not let its buyer choose: he is not eligible to buy.",
                                number=entry.number), rule="R-LCH-1")
    if reason == "card_expired":
        return RuleViolation(_l("Card %(number)s expired on %(until)s: its buyer may no longer choose.",
                                number=entry.number, until=launch.card_valid_until.isoformat()), rule="R-LCH-1")
    return None


def _not_now(session, entry: LaunchEntry, launch: Launch, now: dt.datetime, seen: tuple) -> RuleViolation:
    """Why the buyer may not choose now, saying when his slot is (R-LCH-3). `seen`: his selection
    status and slot end as they were before the choice (the selection moved on since)."""
    session.refresh(entry)
    status = entry.selection_status
    refused = _may_not(entry, launch, _today(now)) if status == "choosing" else None
    if refused is not None:
        return refused
    if status == "chosen":
        return RuleViolation(_l("%(number)s has already chosen.", number=entry.number), rule="R-LCH-3")
    ended = entry.slot_ends_at if status == "choosing" else (seen[1] if seen[0] == "choosing" else None)
    if ended is not None and ended <= now:
        return RuleViolation(_l("The slot of %(number)s ended at %(end)s; the launch's rule for a missed slot "
                                "applies (%(rule)s).", number=entry.number, end=office_time(ended, "%H:%M:%S"),
                                rule=choice_label("launch", "missed_rule", launch.missed_rule)), rule="R-LCH-3")
    if status == "waiting" and entry.queue_no is not None:
        ahead = session.scalar(select(func.count()).select_from(LaunchEntry).where(
            LaunchEntry.launch_id == launch.id, LaunchEntry.selection_status == "waiting",
            LaunchEntry.queue_no < entry.queue_no))
        # at the latest: each place frees when its slot ends, the buyers before him taking theirs whole
        ends = sorted(session.scalars(select(LaunchEntry.slot_ends_at).where(
            LaunchEntry.launch_id == launch.id, LaunchEntry.selection_status == "choosing")))
        ends += [now] * max(launch.slot_size - len(ends), 0)
        slot = dt.timedelta(minutes=launch.slot_minutes)
        latest = max(ends[ahead % launch.slot_size], now) + slot * (ahead // launch.slot_size)
        return RuleViolation(_l("It is not the turn of %(number)s yet: %(ahead)d buyers wait before him, %(size)d "
                                "choose at a time, %(minutes)d minutes each. His slot opens at %(latest)s at the "
                                "latest.", number=entry.number, ahead=ahead, size=launch.slot_size,
                                minutes=launch.slot_minutes, latest=office_time(latest, "%H:%M")), rule="R-LCH-3")
    if status == "missed":
        return RuleViolation(_l("%(number)s missed his slot and is out of the selection.", number=entry.number),
                             rule="R-LCH-3")
    return RuleViolation(_l("%(number)s is not in the selection (%(status)s).", number=entry.number,
                            status=choice_label("launch_entry", "selection_status", status)), rule="R-LCH-3")


# --- what the pages read ------------------------------------------------------------------------

def building_ids(session, launch_id: int) -> list[int]:
    return list(session.scalars(select(LaunchBuilding.building_id).where(LaunchBuilding.launch_id == launch_id)
                                .order_by(LaunchBuilding.building_id)))


def available_units(session, launch_id: int) -> list:
    """The units on offer now in the launch's buildings (the picker): id, building, number, floor,
    layout, area, list price."""
    from .inventory import Building
    return session.execute(select(Unit.id, Building.name.label("building"), Unit.number, Unit.floor, Unit.layout,
                                  Unit.area, Unit.list_price)
                           .join(Building, Building.id == Unit.building_id)
                           .join(LaunchBuilding, and_(LaunchBuilding.building_id == Unit.building_id,
                                                      LaunchBuilding.launch_id == launch_id))
                           .where(Unit.status == "available")
                           .order_by(Building.name, Unit.floor.desc(), Unit.position)).all()


def slot_state(session, launch_id: int, now: dt.datetime, next_count: int = 10) -> dict:
    """The current slot (who chooses, until when), the next in the queue and the counts."""
    choosing = session.scalars(select(LaunchEntry).where(
        LaunchEntry.launch_id == launch_id, LaunchEntry.selection_status == "choosing")
        .order_by(LaunchEntry.queue_no)).all()
    upcoming = session.scalars(select(LaunchEntry).where(
        LaunchEntry.launch_id == launch_id, LaunchEntry.selection_status == "waiting",
        LaunchEntry.queue_no.is_not(None)).order_by(LaunchEntry.queue_no).limit(next_count)).all()
    return {"choosing": choosing, "next": upcoming, "queue": queue_counts(session, launch_id)}


def queue_counts(session, launch_id: int) -> dict:
    from .launches import SELECTION_STATUSES
    counts = dict(session.execute(select(LaunchEntry.selection_status, func.count()).where(
        LaunchEntry.launch_id == launch_id).group_by(LaunchEntry.selection_status)).all())
    return {s: counts.get(s, 0) for s in SELECTION_STATUSES}


def sell_through(session, launch_id: int) -> list[dict]:
    """Sold and remaining by building and layout of the launch, by the one definition of sold
    (models.board: sold_join, is_sold, saleable): units, for sale, sold (a live deal), chosen and
    waiting for sales control (a draft), remaining (for sale, neither)."""
    from .inventory import Building
    draft, joined = sold_join()
    taken_by_draft = and_(Unit.status.in_(("subscribed", "signed")), draft.id.is_not(None))
    rows = session.execute(
        select(Building.id, Building.name, Unit.layout, func.count(Unit.id),
               func.sum(case((saleable(), 1), else_=0)), func.sum(case((is_sold(draft), 1), else_=0)),
               func.sum(case((taken_by_draft, 1), else_=0)))
        .join(Building, Building.id == Unit.building_id)
        .join(LaunchBuilding, and_(LaunchBuilding.building_id == Building.id, LaunchBuilding.launch_id == launch_id))
        .outerjoin(draft, joined)
        .group_by(Building.id, Building.name, Unit.layout).order_by(Building.name, Unit.layout)).all()
    out = []
    for building_id, building, layout, units, for_sale, sold, drafts in rows:
        for_sale, sold, drafts = for_sale or 0, sold or 0, drafts or 0
        out.append({"building_id": building_id, "building": building, "layout": layout, "units": units,
                    "saleable": for_sale, "sold": sold, "awaiting": drafts,
                    "remaining": max(for_sale - sold - drafts, 0)})
    return out


def control_room(session, launch_id: int) -> dict:
    """The day's figures (R-LCH-3): sold / remaining by building and by layout, the queue, slots
    missed, intent deposits converted, sales per minute (office time)."""
    lines = sell_through(session, launch_id)
    by_building: dict[int, dict] = {}
    by_layout: dict[str, dict] = {}
    keys = ("units", "saleable", "sold", "awaiting", "remaining")
    for line in lines:
        b = by_building.setdefault(line["building_id"], {"building": line["building"], **{k: 0 for k in keys}})
        lay = by_layout.setdefault(line["layout"], {"layout": line["layout"], **{k: 0 for k in keys}})
        for k in keys:
            b[k] += line[k]
            lay[k] += line[k]
    totals = {k: sum(line[k] for line in lines) for k in keys}
    missed = session.scalar(select(func.coalesce(func.sum(LaunchEntry.missed_count), 0)).where(
        LaunchEntry.launch_id == launch_id)) or 0
    converted, converted_sum = session.execute(select(func.count(IntentPayment.id),
                                                      func.coalesce(func.sum(IntentPayment.amount), 0))
                                               .join(LaunchEntry, LaunchEntry.id == IntentPayment.entry_id)
                                               .where(LaunchEntry.launch_id == launch_id,
                                                      IntentPayment.kind == "conversion")).one()
    per_minute: dict[str, int] = {}
    for (chosen_at,) in session.execute(select(LaunchEntry.chosen_at).where(
            LaunchEntry.launch_id == launch_id, LaunchEntry.chosen_at.is_not(None),
            LaunchEntry.selection_status == "chosen").order_by(LaunchEntry.chosen_at)):
        minute = office_time(chosen_at, "%Y-%m-%d %H:%M")
        per_minute[minute] = per_minute.get(minute, 0) + 1
    return {"buildings": list(by_building.values()), "layouts": sorted(by_layout.values(), key=lambda r: r["layout"]),
            "totals": totals, "queue": queue_counts(session, launch_id), "missed_slots": int(missed),
            "converted": int(converted), "converted_sum": Decimal(converted_sum or 0),
            "per_minute": sorted(per_minute.items())}


def launches_selecting(session) -> list[int]:
    return list(session.scalars(select(Launch.id).where(Launch.status == "selecting").order_by(Launch.id)))
