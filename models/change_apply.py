"""Applying an approved change of a deal (R-CHG-1…4): what each kind does to the deal, its unit,
its plan and its money, and the figures shown before approval.

`check_proposal` reads what a request asks (RuleViolation on bad input, nothing written) and
returns it normalised and JSON-safe (money as "1234.50"); `difference` says what it would do to
the money (total price, paid, still due, before → after; the refund of a cancellation);
`apply_change` does it, called by models.change_requests.decide_change after the last approval,
in the caller's transaction, under the deal's lock. Every write of the deal's terms names the
approved request in `last_change_id` in the same UPDATE (the database's terms guard).

- unit_swap (换房, R-CHG-2): the new unit taken as a subscription takes one (a conditional UPDATE
  from `available`, backed by uq_subscription_live_unit), the old one back on sale, the plan
  regenerated at the new price with every payment carried over (models.payments.regenerate_plan).
- payment_method / price: the plan regenerated from the new method or price, the money kept; the
  down payment required before signing (R-CON-1) is re-evaluated: a booked signing stays booked,
  and the booking's refusal and the signing say what is now missing (models.contracts).
- buyers (R-CHG-3): models.changes.apply_buyers.
- cancellation (退房, R-CHG-4): the deal cancelled, its signed contracts rescinded, the unit back on sale,
  the customer's records kept apart, the money held on finance's settlement worklist with the
  refund and the retention approved (models.payments.settlement_proposal reads them).
"""
from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from . import changes
from .archive import keep_apart
from .audit import audit_context, record_many
from .base import utcnow
from .contracts import Contract
from .deals import LIVE_DEAL, PAYMENT_METHODS, decide_request, end_deal, locked_subscription, move_status
from .errors import RuleViolation
from .inventory import Unit
from .labels import choice_label
from .ladder import Extension
from .leads import Lead
from .money import format_money, parse_money
from .payments import (FEN, Instalment, Payment, change_action, method_for, money_held, plan_lines, regenerate_plan,
                       required_to_sign, tell_finance_of_money_held)
from .permissions import require
from .true_ups import may_cancel_by_true_up, void_true_ups_of_unit

CANCELLABLE = ("active", "contracted")  # after the deposit (R-CHG-4); before it, a deal is withdrawn


def _money(amount) -> str:
    return str(Decimal(amount).quantize(FEN))


def _proposal(proposal) -> dict:
    if not isinstance(proposal, dict):
        raise RuleViolation(_l("The change asks for nothing that can be read."), rule="R-CHG-1")
    return proposal


def _yes(value) -> bool:
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in ("1", "true", "yes", "on", "y")


def _target_unit(session, sub, proposal) -> Unit:
    try:
        unit_id = int(proposal.get("unit_id"))
    except (TypeError, ValueError):
        raise RuleViolation(_l("Choose the unit to move to."), rule="R-CHG-2") from None
    unit = session.get(Unit, unit_id)
    if unit is None:
        raise RuleViolation(_l("This unit does not exist."), rule="R-CHG-2")
    return unit


def _plan_checked(session, sub, price: Decimal, method_code: str) -> tuple:
    """The plan the change would make, refused as the plan itself would be (R-PAY-2, R-PAY-7)."""
    method = method_for(session, sub.project_id, method_code)
    return method, plan_lines(price, sub.deposit, sub.subscribed_on, sub.deposit_due_on or sub.subscribed_on,
                              method.lines)


def _price_covers(session, sub, price: Decimal, paid: Decimal) -> None:
    if price < paid:
        raise RuleViolation(_l("Paid %(paid)s exceeds the new price %(price)s: the change would owe the customer "
                               "money. Refund first, or choose another price.", paid=format_money(paid),
                               price=format_money(price)), rule="R-CHG-2")
    if price < sub.deposit:
        raise RuleViolation(_l("The new price is below the deposit agreed, %(deposit)s.",
                               deposit=format_money(sub.deposit)), rule="R-CHG-2")


def true_up_interest(session, sub, on: dt.date) -> Decimal:
    """R-AFT-3 (art. 20, 同时支付已付房价款利息): the interest on the price paid, owed with its refund
    when the buyer cancels beyond ±3 %: Σ over the deal's payments of the price (a reversal
    negative, on its own date) of amount × the project's annual rate (true_up_interest_percent) ×
    the days from its date to `on` (the cancellation's approval) / 365, rounded to the fen once."""
    rate = Decimal(sub.project.true_up_interest_percent or 0)
    total = Decimal("0")
    for amount, paid_on in session.execute(select(Payment.amount, Payment.paid_on).where(
            Payment.subscription_id == sub.id, Payment.charge_id.is_(None))):
        total += Decimal(amount) * max((on - paid_on).days, 0)
    return max((total * rate / Decimal("36500")).quantize(FEN, rounding=ROUND_HALF_UP), Decimal("0.00"))


def _cancellation_figures(session, sub, proposal, today: dt.date) -> dict:
    """R-CHG-4: refund = paid − the deposit (if the agreement retains it) − the fee; the rest retained.
    R-AFT-3: a buyer whose surveyed area is beyond ±3 % cancels by right (art. 20): the developer
    refunds all that was paid — no deposit retained, no fee — and the interest on the price paid
    to `today` (`true_up_interest`): the refund is then above what is held by the interest."""
    retain_deposit = _yes(proposal.get("retain_deposit"))
    fee = parse_money(proposal.get("fee") or "0", _l("The fee"), allow_zero=True, rule="R-CHG-4")
    interest = Decimal("0.00")
    if may_cancel_by_true_up(session, sub.id):
        retain_deposit, fee = False, Decimal("0")
        interest = true_up_interest(session, sub, today)
    paid = money_held(session, sub.id)  # on a live deal: what is paid
    kept = (sub.deposit if retain_deposit else Decimal("0")) + fee
    refund = paid - kept + interest
    if refund < 0:
        raise RuleViolation(_l("The deposit retained and the fee, %(kept)s, exceed what was paid, %(paid)s: the "
                               "refund cannot be negative.", kept=format_money(kept), paid=format_money(paid)),
                            rule="R-CHG-4")
    asked = proposal.get("refund")
    if asked not in (None, ""):
        asked = parse_money(asked, _l("The refund"), allow_zero=True, rule="R-CHG-4")
        if asked > paid + interest:
            raise RuleViolation(_l("A refund of %(refund)s is above what was paid, %(paid)s.",
                                   refund=format_money(asked), paid=format_money(paid)), rule="R-CHG-4")
        if asked != refund:
            raise RuleViolation(_l("The agreement gives a refund of %(refund)s: %(paid)s paid, less %(kept)s "
                                   "retained.", refund=format_money(refund), paid=format_money(paid),
                                   kept=format_money(kept)), rule="R-CHG-4")
    figures = {"retain_deposit": retain_deposit, "fee": _money(fee), "refund": _money(refund),
               "retained": _money(kept)}
    if interest:
        figures["interest"] = _money(interest)  # within the refund, above the money held
    return figures


def check_proposal(session, sub, kind: str, proposal, today: dt.date) -> dict:
    """What a change of `kind` asks of deal `sub`, checked and normalised (JSON-safe, money as
    "1234.50"); RuleViolation in the user's words when it cannot be done (nothing is written).
    Shapes: models.changes.ChangeRequest's docstring."""
    proposal = _proposal(proposal)
    paid = money_held(session, sub.id)  # on a live deal: what is paid
    if kind == "unit_swap":
        unit = _target_unit(session, sub, proposal)
        if unit.id == sub.unit_id:
            raise RuleViolation(_l("The deal is already on unit %(unit)s.", unit=str(unit)), rule="R-CHG-2")
        if unit.building.project_id != sub.project_id:
            raise RuleViolation(_l("Unit %(unit)s is in another project.", unit=str(unit)), rule="R-CHG-2")
        if unit.status != "available":
            raise RuleViolation(_l("Unit %(unit)s is not available (it is %(status)s).", unit=str(unit),
                                   status=choice_label("unit", "status", unit.status)), rule="R-CHG-2")
        given = proposal.get("price")
        price = unit.list_price if given in (None, "") else parse_money(given, _l("The price"), rule="R-CHG-2")
        floor = changes.manager_price_floor(sub.project, unit.list_price)
        if price < floor:
            raise RuleViolation(_l("A swap takes the new unit at its list price (%(list)s) or within the manager's "
                                   "authority; a lower price is a price change the vice-president approves.",
                                   list=format_money(unit.list_price)), rule="R-PRICE-2")
        _price_covers(session, sub, price, paid)
        _plan_checked(session, sub, price, sub.payment_method)
        return {"unit_id": unit.id, "price": _money(price)}
    if kind == "payment_method":
        code = proposal.get("payment_method")
        if code not in PAYMENT_METHODS:
            raise RuleViolation(_l("Choose the payment method."), rule="R-PAY-2")
        if code == sub.payment_method:
            raise RuleViolation(_l("The deal is already paid by %(method)s.",
                                   method=choice_label("subscription", "payment_method", code)), rule="R-PAY-2")
        _plan_checked(session, sub, sub.price, code)
        return {"payment_method": code}
    if kind == "price":
        price = parse_money(proposal.get("price"), _l("The price"), rule="R-CHG-1")
        if price == sub.price:
            raise RuleViolation(_l("The price is already %(price)s.", price=format_money(price)), rule="R-CHG-1")
        _price_covers(session, sub, price, paid)
        _plan_checked(session, sub, price, sub.payment_method)
        return {"price": _money(price)}
    if kind == "buyers":
        rows = changes.validate_buyers(proposal.get("buyers") or [], today)
        return {"buyers": [{key: (_money(value) if isinstance(value, Decimal) else value)
                            for key, value in row.items()} for row in rows]}
    if kind == "cancellation":
        if sub.status not in CANCELLABLE:
            raise RuleViolation(_l("Only a deal whose deposit is in is cancelled with a refund (this one is "
                                   "%(status)s); before the deposit it is withdrawn.",
                                   status=choice_label("subscription", "status", sub.status)), rule="R-CHG-4")
        return _cancellation_figures(session, sub, proposal, today)
    raise RuleViolation(_l("Choose the kind of change."), rule="R-CHG-1")


def difference(session, sub, kind: str, proposal, today: dt.date) -> dict:
    """What the change does to the deal's money, before → after, JSON-safe: {"price": [before,
    after], "paid": amount, "due": [before, after]} and, where they apply, "unit", "unit_id",
    "payment_method", "signing_required" (R-CON-1), "buyers", "refund", "retained", "fee". Read
    from the proposal as it stands, without the availability checks (a decision recomputes it, a
    rejection too, when the unit was taken meanwhile)."""
    proposal = _proposal(proposal)
    paid = money_held(session, sub.id)  # on a live deal: what is paid
    price, method_code = sub.price, sub.payment_method
    out: dict = {}
    if kind == "unit_swap":
        unit = _target_unit(session, sub, proposal)
        given = proposal.get("price")
        price = unit.list_price if given in (None, "") else parse_money(given, _l("The price"), rule="R-CHG-2")
        out.update(unit=[str(sub.unit), str(unit)], unit_id=[sub.unit_id, unit.id])
    elif kind == "payment_method":
        method_code = proposal.get("payment_method") or method_code
        out["payment_method"] = [sub.payment_method, method_code]
    elif kind == "price":
        price = parse_money(proposal.get("price"), _l("The price"), rule="R-CHG-1")
    elif kind == "buyers":
        out["buyers"] = [[f"{b.name} {_money(b.share)}%" for b in changes.current_buyers(session, sub.id)],
                         [f"{b.get('name')} {b.get('share')}%" for b in proposal.get("buyers") or []]]
    elif kind == "cancellation":  # the refund as the money stands today (a reversal meanwhile)
        figures = _cancellation_figures(session, sub, {key: proposal.get(key) for key in ("retain_deposit", "fee")},
                                        today)
        out.update(refund=figures["refund"], retained=figures["retained"], fee=figures["fee"])
        if "interest" in figures:
            out["interest"] = figures["interest"]
        out.update(price=[_money(sub.price), _money(sub.price)], paid=_money(paid),
                   due=[_money(sub.price - paid), "0.00"])
        return out
    out.update(price=[_money(sub.price), _money(price)], paid=_money(paid),
               due=[_money(sub.price - paid), _money(price - paid)])
    if kind in ("unit_swap", "payment_method", "price") and sub.status == "active":
        try:
            method, lines = _plan_checked(session, sub, price, method_code)
            now = _plan_checked(session, sub, sub.price, sub.payment_method)
        except RuleViolation:
            return out  # the plan cannot be made: check_proposal says why
        out["signing_required"] = [_money(required_to_sign(now[0], sub.price, [(k, a) for k, _, a in now[1]])),
                                   _money(required_to_sign(method, price, [(k, a) for k, _, a in lines]))]
    return out


def apply_change(session, by, change, today: dt.date):
    """Apply `change` (approved, not yet applied) to its deal in the caller's transaction (R-CHG-1…4).

    Called by models.change_requests.decide_change after the last approval; the deal is locked
    first (models.deals.locked_subscription, the one lock order). The proposal is checked again
    against the deal as it is now (the unit may have been taken meanwhile): RuleViolation, and
    the caller rolls the whole decision back. Returns the deal."""
    require(by, "change.decide")
    sub = locked_subscription(session, change.subscription_id)
    status, applied_at = session.execute(select(changes.ChangeRequest.status, changes.ChangeRequest.applied_at)
                                         .where(changes.ChangeRequest.id == change.id)).one()
    if status != "approved" or applied_at is not None:
        raise RuleViolation(_l("Only an approved change not yet applied can be applied."), rule="R-CHG-1")
    if sub.status not in LIVE_DEAL:
        raise RuleViolation(_l("This deal is %(status)s: the change can no longer be applied.",
                               status=choice_label("subscription", "status", sub.status)), rule="R-CHG-1")
    asked = dict(change.proposal or {})
    if change.kind == "cancellation":
        asked.pop("refund", None)  # recomputed from the money as it is now (a reversal meanwhile)
        asked.pop("retained", None)
        asked.pop("interest", None)
    proposal = check_proposal(session, sub, change.kind, asked, today)
    if change.kind == "unit_swap":
        _swap(session, by, sub, change, proposal, today)
    elif change.kind == "payment_method":
        regenerate_plan(session, by, sub, price=sub.price, payment_method=proposal["payment_method"],
                        deposit=sub.deposit, change=change, today=today)
    elif change.kind == "price":
        regenerate_plan(session, by, sub, price=Decimal(proposal["price"]), payment_method=sub.payment_method,
                        deposit=sub.deposit, change=change, today=today, price_reason=change.reason)
    elif change.kind == "buyers":
        changes.apply_buyers(session, by, sub, change)
    elif change.kind == "cancellation":
        _cancel(session, by, sub, change, proposal, today)
    else:  # pragma: no cover - the table's CHECK knows only these kinds
        raise RuleViolation(_l("Choose the kind of change."), rule="R-CHG-1")
    if change.kind in ("payment_method", "price", "unit_swap"):
        _close_extensions_of_replaced_lines(session, by, sub)
    session.expire(sub)
    return sub


def _swap(session, by, sub, change, proposal, today) -> None:
    """换房 in the caller's transaction (R-CHG-2, R-SC-2): the new unit taken by a conditional UPDATE
    from `available` (a concurrent subscription or hold wins or loses there, and the partial
    unique index backs it when the deal's unit_id moves), the old unit back on sale, the plan
    regenerated at the new price; audited as swap_unit with both units."""
    old_id, new_id, price = sub.unit_id, proposal["unit_id"], Decimal(proposal["price"])
    held_as = "signed" if sub.status == "contracted" else "subscribed"  # the deal's hold on a unit
    new_unit = session.get(Unit, new_id)
    taken = RuleViolation(_l("Unit %(unit)s has just been subscribed or held by someone else: the swap cannot be "
                             "made. Reject the request or send it back for another unit.", unit=str(new_unit)),
                          rule="R-CHG-2")
    try:
        with session.begin_nested():
            if session.execute(update(Unit).where(Unit.id == new_id, Unit.status == "available")
                               .values(status=held_as).execution_options(synchronize_session=False)).rowcount != 1:
                raise taken
            regenerate_plan(session, by, sub, price=price, payment_method=sub.payment_method, deposit=sub.deposit,
                            change=change, today=today, unit_id=new_id,
                            price_reason="" if price == new_unit.list_price else change.reason)
            if session.execute(update(Unit).where(Unit.id == old_id, Unit.status == held_as)
                               .values(status="available").execution_options(synchronize_session=False)).rowcount != 1:
                raise RuleViolation(_l("The deal's unit is no longer held by it; nothing was changed."), rule="R-CHG-2")
    except IntegrityError:
        raise taken from None
    record_many(session, "unit", change_action("unit_swap"), by,
                [(new_id, {"status": ["available", held_as], "subscription_id": [None, sub.id]}),
                 (old_id, {"status": [held_as, "available"], "subscription_id": [sub.id, None]})])
    void_true_ups_of_unit(session, by, sub.id, old_id, change_action("unit_swap"))  # R-AFT-3: the new unit's own
    for unit_id in (old_id, new_id):
        loaded = session.get(Unit, unit_id)
        if loaded is not None:
            session.expire(loaded)


def _cancel(session, by, sub, change, proposal, today) -> None:
    """退房 in the caller's transaction (R-CHG-4): the customer's records kept apart (reason
    cancellation, with the approved refund), the signed contracts rescinded, the customer back to a
    visited customer (as a withdrawal leaves them), the deal cancelled, the unit back on sale and
    the requests still waiting closed (models.deals.end_deal), finance told of the money held."""
    lead = session.get(Lead, sub.lead_id)
    unit_id, status = sub.unit_id, sub.status
    # Signed contracts are rescinded; a booking not signed stays as it was, as a forfeit leaves it
    # (the deal's status closes it: a booked contract of a dead deal cannot be signed).
    contracts = session.scalars(select(Contract).where(Contract.subscription_id == sub.id,
                                                       Contract.status.notin_(("booked", "rescinded")))
                                .with_for_update(of=Contract)).all()
    action = change_action("cancellation")
    with audit_context(session, actor=by, action=action):
        keep_apart(session, sub, lead, "cancellation", today, by, reason=change.reason,
                   refund=proposal["refund"], retained=proposal["retained"], fee=proposal["fee"])
        for contract in contracts:
            contract.status = "rescinded"
        if lead.stage in ("subscribed", "signed"):
            lead.stage = "visited"
        lead.notes = ((lead.notes + "\n") if lead.notes else "") + f"{sub.number}: {change.reason}"
        change.proposal = {**(change.proposal or {}), **proposal}  # the figures applied, for the settlement
        session.flush()
    if not move_status(session, sub, by, CANCELLABLE, "cancelled", action, reason=change.reason,
                       cancelled_at=utcnow(), last_change_id=change.id):
        raise RuleViolation(_l("This deal changed meanwhile; reload and try again."), rule="R-CHG-4")
    end_deal(session, sub.id, unit_id, by, action, unit_was="signed" if status == "contracted" else "subscribed")
    tell_finance_of_money_held(session, sub, {"_t": "settlement_due.cancel", "no": sub.number,
                                              "name": sub.customer_name,
                                              "retained": format_money(Decimal(proposal["retained"]))})


def _close_extensions_of_replaced_lines(session, by, sub) -> None:
    """Extensions still waiting on lines a change replaced are closed (rejected, audited): the
    new plan's lines are asked for afresh (R-PAY-6 counts per line)."""
    waiting = session.scalars(select(Extension.id).join(Instalment, Instalment.id == Extension.instalment_id)
                              .where(Extension.subscription_id == sub.id, Extension.status == "requested",
                                     Instalment.status == "replaced")).all()
    for extension_id in waiting:
        decide_request(session, Extension, extension_id, by, "rejected", "plan_replaced")
