"""What each kind of document (PDF) shows, as plain values in Chinese: the deal, its buyers, its
plan and money, the ladder's letters, a signing booking, a customer's statement, a building's
board, the addendum of an approved change (R-CHG-3). Each
builder takes the subject and the office's `today` (models.documents.document_context reads the
clock once, at the edge). The PDF's board is the board of models.board, laid out for print.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import or_, select

from .audit import Audit
from .base import office_local
from .board import board
from .changes import ChangeStep, DealBuyer, current_buyers
from .charges import Charge
from .contracts import Contract
from .deals import LIVE_DEAL, Subscription
from .identity import DOCUMENT_NAMES_ZH, RESIDENT_ID
from .inventory import Unit
from .labels import choice_label
from .lottery import entrants_context as lottery_entrants_context  # issue 24: the lottery
from .lottery import result_context as lottery_result_context
from .ladder import OverdueEvent
from .launches import IntentPayment
from .money import format_money
from .payments import (Instalment, Payment, PaymentAllocation, Voucher, change_action, days_overdue, in_force,
                       net_lines, signing_gate)
from .permissions import ROLE_LABELS
from .privacy import mask_id_number, mask_phone
from .tickets import Ticket
from .true_ups import LIMIT_PERCENT, PAYABLE_DAYS, TrueUp

def _label(entity: str, column: str, value) -> str:
    return str(choice_label(entity, column, value))


def project_context(project) -> dict:
    return {"name": project.name, "developer": project.developer, "city": project.city,
            "address": project.address, "warning_day": project.warning_day,
            "lawyer_letter_day": project.lawyer_letter_day, "forfeit_day": project.forfeit_day}


def _unit(unit) -> dict:
    return {"building": unit.building.name, "number": unit.number, "floor": unit.floor,
            "layout": unit.layout, "area": unit.area, "list_price": unit.list_price}


def _id_document(id_type) -> str:
    return DOCUMENT_NAMES_ZH.get(id_type, DOCUMENT_NAMES_ZH[RESIDENT_ID])


def _customer(sub) -> dict:
    return {"name": sub.customer_name or sub.lead.name, "phone": sub.lead.phone,
            "id_number": sub.customer_id_number, "address": sub.customer_address,
            "id_document": _id_document(sub.customer_id_type)}


def _buyer(buyer: DealBuyer) -> dict:
    """A buyer (权益人) as the documents print one: in full, as the agreement prints its customer
    (the customer's own signed papers; the screens mask, models.privacy)."""
    return {"name": buyer.name, "id_document": _id_document(buyer.id_type), "id_number": buyer.id_number,
            "phone": buyer.phone, "share": buyer.share}


def _buyers(session, sub) -> list[dict]:
    """The deal's current buyers with their shares (R-CHG-3; models.changes.current_buyers); a deal
    without buyer rows is its agreement's customer, whole."""
    buyers = [_buyer(b) for b in current_buyers(session, sub.id)]
    if buyers:
        return buyers
    c = _customer(sub)
    return [{"name": c["name"], "id_document": c["id_document"], "id_number": c["id_number"],
             "phone": c["phone"], "share": Decimal("100")}]


def _lines(session, sub, today: dt.date, plan_no: int | None = None) -> list[dict]:
    """The lines of the deal's plan in force (or of plan `plan_no`): a plan a change replaced is
    history, owed by nobody (R-CHG-2)."""
    lines = session.scalars(select(Instalment).where(Instalment.subscription_id == sub.id,
                                                     in_force() if plan_no is None else Instalment.plan_no == plan_no)
                            .order_by(Instalment.seq)).all()
    return [{"seq": i.seq, "kind": _label("instalment", "kind", i.kind), "due_on": i.due_on,
             "extended_due_on": i.extended_due_on, "amount_due": i.amount_due,
             "amount_paid": i.amount_paid, "balance": i.amount_due - i.amount_paid,
             "status": _label("instalment", "status", i.status),
             "days_overdue": days_overdue(i, today, sub.status)} for i in lines]


def _deal(session, sub) -> dict:
    return {"number": sub.number, "price": sub.price, "deposit": sub.deposit,
            "status": _label("subscription", "status", sub.status),
            "payment_method": _label("subscription", "payment_method", sub.payment_method),
            "subscribed_on": sub.subscribed_on, "deposit_due_on": sub.deposit_due_on,
            "agent": sub.agent.display_name, "unit": _unit(sub.unit), "customer": _customer(sub),
            "buyers": _buyers(session, sub)}


def _line_context(session, line, today) -> dict:
    due = line.extended_due_on or line.due_on
    return {"kind": _label("instalment", "kind", line.kind), "due_on": due,
            "amount_due": line.amount_due, "amount_paid": line.amount_paid,
            "balance": line.amount_due - line.amount_paid, "days_overdue": max((today - due).days, 0)}


def _subscription_agreement(session, sub, today) -> dict:
    return {"deal": _deal(session, sub), "lines": _lines(session, sub, today),
            "checked_by": sub.checked_by.display_name if sub.checked_by else "",
            "checked_on": office_local(sub.checked_at).date() if sub.checked_at else None,
            "price_reason": sub.price_reason}


def _receipt(session, payment, today) -> dict:
    sub = payment.subscription
    allocations = session.execute(
        select(Instalment.seq, Instalment.kind, PaymentAllocation.amount)
        .join(Instalment, Instalment.id == PaymentAllocation.instalment_id)
        .where(PaymentAllocation.payment_id == payment.id).order_by(Instalment.seq)).all()
    reversed_no = session.scalar(select(Payment.receipt_no).where(Payment.id == payment.reverses_id)) \
        if payment.reverses_id else None
    if payment.charge_id is not None:  # a late fee or a true-up paid (R-AFT-1, R-AFT-3): no plan line
        charge = session.get(Charge, payment.charge_id)
        seq = session.scalar(select(Instalment.seq).where(Instalment.id == charge.instalment_id)) \
            if charge.instalment_id else None
        what = CHARGE_NAMES_ZH.get(charge.kind, charge.kind)
        allocations = [(seq or "—", f"{what}（第{seq}期逾期）" if seq else what, payment.amount)]
    else:
        allocations = [(seq, _label("instalment", "kind", kind), amount) for seq, kind, amount in net_lines(allocations)]
    return {"deal": _deal(session, sub), "payment": {
        "receipt_no": payment.receipt_no or "", "amount": payment.amount, "paid_on": payment.paid_on,
        "channel": _label("payment", "channel", payment.channel), "bank_ref": payment.bank_ref or "",
        "recorded_by": payment.recorded_by.display_name, "reason": payment.reason,
        "reverses": reversed_no, "is_reversal": payment.reverses_id is not None},
        "allocations": [{"kind": kind, "seq": seq, "amount": amount} for seq, kind, amount in allocations]}


# A charge as the office's papers name it (R-AFT-1, R-AFT-3).
CHARGE_NAMES_ZH = {"late_fee": "滞纳金", "area_true_up": "面积补差款"}


def _charges(session, sub) -> list[dict]:
    """The deal's charges as the statement shows them: a late fee per plan line (its days, daily
    rate, amount, waived, paid, outstanding — models.charges.late_fee's definition), true-ups."""
    rows = session.execute(select(Charge, Instalment.seq, Instalment.kind)
                           .outerjoin(Instalment, Instalment.id == Charge.instalment_id)
                           .where(Charge.subscription_id == sub.id).order_by(Instalment.seq, Charge.id)).all()
    return [{"kind": CHARGE_NAMES_ZH.get(c.kind, c.kind), "is_late_fee": c.kind == "late_fee", "seq": seq,
             "line": _label("instalment", "kind", kind) if kind else "", "days": c.days, "rate": c.rate_percent,
             "cap": c.cap, "accrued_through": c.accrued_through, "amount": c.amount, "waived": c.waived,
             "paid": c.paid, "outstanding": c.outstanding} for c, seq, kind in rows]


def _payment_reminder(session, line, today) -> dict:
    return {"deal": _deal(session, line.subscription), "line": _line_context(session, line, today),
            "today": today}


def _overdue_letter(session, event, today) -> dict:
    line = event.instalment
    sub = line.subscription
    project = sub.project
    context = {"deal": _deal(session, sub), "line": _line_context(session, line, event.on),
               "event": {"on": event.on, "due_on": event.due_on, "cause": event.cause,
                         "days": (event.on - event.due_on).days},
               "lawyer_letter_on": event.due_on + dt.timedelta(days=project.lawyer_letter_day),
               "forfeit_on": event.due_on + dt.timedelta(days=project.forfeit_day)}
    if event.cause == "signing":
        required, paid = signing_gate(session, sub)
        context["signing"] = {"required": required, "paid": paid}
    return context


def _forfeit_notice(session, sub, today) -> dict:
    event = session.scalar(select(OverdueEvent).join(OverdueEvent.instalment)
                           .where(OverdueEvent.level == "forfeit",
                                  OverdueEvent.instalment.has(subscription_id=sub.id))
                           .order_by(OverdueEvent.id.desc()).limit(1))
    lines = _lines(session, sub, today)
    return {"deal": _deal(session, sub), "lines": lines,
            "paid": sum((line["amount_paid"] for line in lines), Decimal("0")),
            "forfeited_on": event.on if event else (office_local(sub.forfeited_at).date() if sub.forfeited_at else None),
            "cause": event.cause if event else "payment",
            "line": _line_context(session, event.instalment, event.on) if event else None}


def _signing_booking(session, contract, today) -> dict:
    sub = contract.subscription
    required, paid = signing_gate(session, sub)
    at = office_local(contract.appointment_at)  # the office's wall clock, as the customer reads it
    return {"deal": _deal(session, sub), "contract": {
        "kind": _label("contract", "kind", contract.kind), "appointment_at": at,
        "booked_on": contract.booked_on, "signing_due_on": contract.signing_due_on,
        "lawyer": contract.lawyer.display_name if contract.lawyer else "",
        "status": _label("contract", "status", contract.status)},
        "checklist": [line.strip() for line in (contract.checklist or "").splitlines() if line.strip()],
        "required": required, "paid": paid}


def _statement(session, lead, today) -> dict:
    deals = []
    for sub in session.scalars(select(Subscription).where(Subscription.lead_id == lead.id)
                               .order_by(Subscription.id)).all():
        payments = session.scalars(select(Payment).where(Payment.subscription_id == sub.id)
                                   .order_by(Payment.paid_on, Payment.id)).all()
        lines = _lines(session, sub, today)
        vouchers = session.scalars(select(Voucher).where(Voucher.subscription_id == sub.id)
                                   .order_by(Voucher.id)).all()
        live = sub.status in LIVE_DEAL
        due = sum((line["amount_due"] for line in lines), Decimal("0"))
        paid = sum((line["amount_paid"] for line in lines), Decimal("0"))
        charges = _charges(session, sub)
        charges_owed = sum((c["outstanding"] for c in charges), Decimal("0")) if live else Decimal("0")
        deals.append({**_deal(session, sub), "lines": lines, "live": live, "charges": charges,
                      "charges_owed": charges_owed, "payments": [
            {"receipt_no": p.receipt_no or "", "paid_on": p.paid_on, "amount": p.amount,
             "channel": _label("payment", "channel", p.channel), "reversal": p.reverses_id is not None,
             "reason": p.reason} for p in payments],
            "vouchers": [{"number": v.number, "kind": _label("voucher", "kind", v.kind), "issued_on": v.issued_on,
                          "amount": v.amount, "reason": v.reason} for v in vouchers],
            "due": due, "paid": paid,
            # Money owed now (models.payments.overdue_on's definition): nothing on a deal that is over.
            "owed": due - paid if live else Decimal("0"),
            "owed_in_all": (due - paid if live else Decimal("0")) + charges_owed,  # with late fees, true-ups
            "overdue": sum((line["balance"] for line in lines if line["days_overdue"]), Decimal("0"))})
    return {"customer": {"name": lead.name, "phone": lead.phone}, "deals": deals,
            "agent": lead.owner.display_name if lead.owner else ""}


def _board(session, building, today) -> dict:
    """The building's board as printed: models.board.board's cells and counts (the one grid and
    sell-through), laid out by the positions the building uses."""
    data = board(session, building.project_id, building.id)
    floors = data["grids"][0]["floors"] if data["grids"] else []
    positions = sorted({row.position for _, row_cells in floors for row in row_cells})
    rows = []
    for floor, row_cells in floors:
        cells = {row.position: {"number": row.number, "status": row.status, "layout": row.layout,
                                "area": row.area, "price": row.list_price} for row in row_cells}
        rows.append((floor, [cells.get(p) for p in positions]))
    return {"building": {"name": building.name, "floors": building.floors},
            "rows": rows, "positions": positions, "counts": data["counts"], "total": data["total"],
            "sold": data["sold"], "saleable": data["saleable"], "sell_through": data["sell_through"],
            "status_labels": {s: _label("unit", "status", s) for s in data["counts"]}}


# --- the addendum (补充协议) of an approved change (R-CHG-1…4) ---------------------------------------

PLAN_CHANGES = ("unit_swap", "payment_method", "price")  # kinds that start the deal's next plan


def _pair(value) -> tuple:
    """A [before, after] pair of models.change_apply.difference, or one value for both."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return value[0], value[1]
    return value, value


def _amount(value):
    return None if value in (None, "") else Decimal(str(value))


def _unit_text(unit) -> dict:
    return {"label": str(unit), "floor": unit.floor, "area": unit.area, "layout": unit.layout}


def swapped_units(session, change) -> tuple:
    """The units of a unit swap, before and after (Unit rows; None when unknown): the deal's when
    it was asked (`before`) and the one asked for (`proposal`)."""
    before, after = (change.before or {}).get("unit_id"), (change.proposal or {}).get("unit_id")
    return (session.get(Unit, before) if before else None, session.get(Unit, after) if after else None)


def _applied_row(session, change) -> dict:
    """The changes of the deal's audit row that applied `change` (models.payments.change_action):
    {column: [before, after]}, e.g. plan_no, unit_id, price, status; {} when there is none. A deal
    has one open change at a time, so it is the last row of that action up to the change's
    applied_at (the same transaction)."""
    if change.applied_at is None:
        return {}
    changes = session.scalar(select(Audit.changes).where(
        Audit.entity == "subscription", Audit.entity_id == str(change.subscription_id),
        Audit.action == change_action(change.kind), Audit.at <= change.applied_at)
        .order_by(Audit.at.desc(), Audit.id.desc()).limit(1))
    return changes or {}


def change_plan_no(session, change) -> int | None:
    """The plan an applied swap, method or price change started (R-CHG-2: plan_no + 1, in the same
    UPDATE as the deal's new terms)."""
    if change.kind not in PLAN_CHANGES or change.applied_at is None:
        return None
    plan_no = _applied_row(session, change).get("plan_no")
    return plan_no[1] if isinstance(plan_no, list) else None


def change_buyers(session, change) -> tuple[list[dict], list[dict]]:
    """The buyers a buyer change ended and those it added (R-CHG-3: the former ones are kept)."""
    rows = session.scalars(select(DealBuyer).where(DealBuyer.subscription_id == change.subscription_id,
                                                   or_(DealBuyer.ended_by_change_id == change.id,
                                                       DealBuyer.added_by_change_id == change.id))
                           .order_by(DealBuyer.seq, DealBuyer.id)).all()
    return ([_buyer(b) for b in rows if b.ended_by_change_id == change.id],
            [_buyer(b) for b in rows if b.added_by_change_id == change.id])


def buyers_text(buyers) -> str:
    """Buyers with their shares in a line: "张三 50%, 李四 50%" (rows of _buyer or of a proposal)."""
    return ", ".join(f'{b["name"]} {format(Decimal(str(b.get("share") or 0)).normalize(), "f")}%' for b in buyers)


def _buyers_after(session, change) -> list[dict]:
    """The deal's buyers once `change` was applied: those added by then and not ended by then."""
    if change.applied_at is None:
        return _buyers(session, change.subscription)
    rows = session.scalars(select(DealBuyer).where(
        DealBuyer.subscription_id == change.subscription_id, DealBuyer.created_at <= change.applied_at,
        or_(DealBuyer.ended_at.is_(None), DealBuyer.ended_at > change.applied_at))
        .order_by(DealBuyer.seq, DealBuyer.id)).all()
    return [_buyer(b) for b in rows] or _buyers(session, change.subscription)


def change_terms(session, change) -> list[dict]:
    """Every term an approved change changed, before → after, as the addendum and the deal's
    history read them: {"key", "before", "after"} with values written out (units, money, labels)."""
    diff, proposal, before = change.difference or {}, change.proposal or {}, change.before or {}
    terms = []

    def add(key, old, new):
        if old != new:
            terms.append({"key": key, "before": "" if old is None else str(old),
                          "after": "" if new is None else str(new)})

    def money(key, pair):
        old, new = (_amount(v) for v in pair)
        add(key, format_money(old) if old is not None else None, format_money(new) if new is not None else None)

    if change.kind == "unit_swap":
        old, new = swapped_units(session, change)
        old, new = (_unit_text(u) if u else {} for u in (old, new))
        add("unit", old.get("label"), new.get("label"))
        add("floor", old.get("floor"), new.get("floor"))
        add("area", f'{old["area"]} ㎡' if old.get("area") is not None else None,
            f'{new["area"]} ㎡' if new.get("area") is not None else None)
        add("layout", old.get("layout"), new.get("layout"))
    if change.kind == "buyers":
        former, added = change_buyers(session, change)
        add("buyers", buyers_text(former or before.get("buyers") or []),
            buyers_text(added or proposal.get("buyers") or []))
    if change.kind == "payment_method":
        old, new = _pair(diff.get("payment_method"))
        old = old or before.get("payment_method")
        new = proposal.get("payment_method", new)
        add("payment_method", _label("subscription", "payment_method", old) if old else None,
            _label("subscription", "payment_method", new) if new else None)
    if change.kind != "cancellation":
        price = diff.get("price") if diff.get("price") is not None else [before.get("price"), proposal.get("price")]
        money("price", _pair(price))
        if diff.get("due") is not None:
            money("due", _pair(diff["due"]))
    else:
        status = _applied_row(session, change).get("status") or [before.get("status") or "active", "cancelled"]
        add("status", _label("subscription", "status", status[0]), _label("subscription", "status", status[1]))
        paid = _pair(diff.get("paid", before.get("paid")))[0]
        terms.append({"key": "paid", "before": format_money(_amount(paid)), "after": format_money(_amount(paid))})
        for key in ("refund", "retained", "fee"):  # as applied (the proposal keeps them), else as asked
            value = proposal.get(key, diff.get(key))
            value = _pair(value)[1]
            terms.append({"key": key, "before": "", "after": format_money(_amount(value) or Decimal("0"))})
    return terms


def _addendum(session, change, today) -> dict:
    sub = change.subscription
    former, added = change_buyers(session, change) if change.kind == "buyers" else ([], [])
    plan_no = change_plan_no(session, change)
    steps = session.scalars(select(ChangeStep).where(ChangeStep.change_request_id == change.id,
                                                     ChangeStep.round == change.round,
                                                     ChangeStep.decision == "approved")
                            .order_by(ChangeStep.seq)).all()
    contract = session.scalar(select(Contract.number).where(Contract.subscription_id == sub.id,
                                                            Contract.number.is_not(None))
                              .order_by(Contract.id.desc()).limit(1))  # a cancellation names the one it ends
    paid = _pair((change.difference or {}).get("paid"))[1]
    return {"deal": _deal(session, sub), "contract_number": contract or "",
            "change": {"number": str(change), "kind": change.kind,
                       "kind_label": _label("change_request", "kind", change.kind), "reason": change.reason,
                       "requested_by": change.requested_by.display_name,
                       "requested_on": office_local(change.requested_at).date(),
                       "applied_on": office_local(change.applied_at).date() if change.applied_at else None,
                       "retain_deposit": bool((change.proposal or {}).get("retain_deposit"))},
            "buyers": _buyers_after(session, change), "terms": change_terms(session, change),
            "former_buyers": former, "new_buyers": added,
            "plan": _lines(session, sub, today, plan_no) if plan_no else [],
            "carried_over": _amount(paid) if plan_no else None,
            "plan_replaced": bool(plan_no) and plan_no != sub.plan_no,  # a later change replaced it
            "approvals": [{"role": str(ROLE_LABELS.get(s.role, s.role)), "name": s.decided_by.display_name,
                           "on": office_local(s.decided_at).date()} for s in steps]}


def _handover(session, handover, today) -> dict:
    """The handover notice and record (R-AFT-4): the deal, the project's handover period, the
    appointment (office time), the keys and the checklist with its results and defects."""
    sub = handover.subscription
    project = sub.project
    items = []
    for item in handover.items:
        ticket = session.get(Ticket, item.ticket_id) if item.ticket_id else None
        items.append({"seq": item.seq, "item": item.item, "passed": item.passed, "note": item.note,
                      "ticket": ticket.number if ticket else "",
                      "ticket_status": _label("ticket", "status", ticket.status) if ticket else ""})
    return {"deal": _deal(session, sub), "handover": {
        "status": _label("handover", "status", handover.status), "notified_on": handover.notified_on,
        "appointment_at": office_local(handover.appointment_at), "inspected_on": handover.inspected_on,
        "keys_handed_on": handover.keys_handed_on, "keys_count": handover.keys_count,
        "meter_readings": [line.strip() for line in (handover.meter_readings or "").splitlines() if line.strip()],
        "signed_by": handover.signed_by,
        "handed_over_by": handover.handed_over_by.display_name if handover.handed_over_by else "",
        "starts_on": project.handover_starts_on, "ends_on": project.handover_ends_on},
        "items": items, "defects": [i for i in items if i["passed"] is False]}
# --- the satisfaction survey summary of a project (R-SVC-2) ---------------------------------------

def _survey_summary(session, project, today) -> dict:
    """A project's satisfaction: this month and the last 12 months (this one included) per agent —
    surveys, averages, satisfied % — and the comments of the low scores (models.tickets)."""
    from .tickets import month_bounds, survey_results
    first, nxt = month_bounds(today)
    year_from = (first.replace(day=1) - dt.timedelta(days=1))
    for _ in range(10):
        year_from = year_from.replace(day=1) - dt.timedelta(days=1)
    year_from = year_from.replace(day=1)
    month = survey_results(session, project_id=project.id, since=first, until=nxt)
    year = survey_results(session, project_id=project.id, since=year_from, until=nxt)
    return {"month": {"from": first, "to": nxt - dt.timedelta(days=1), **month},
            "year": {"from": year_from, "to": nxt - dt.timedelta(days=1), **year}}
def _true_up_notice(session, true_up: TrueUp, today) -> dict:
    """The area true-up notice (面积补差通知书, R-AFT-3): the areas, the ratio, the contract unit
    price, the computation part by part (art. 20), what the buyer pays by when or what the
    developer refunds, and the right to cancel beyond ±3 %."""
    sub = true_up.subscription
    charge = session.scalar(select(Charge).where(Charge.true_up_id == true_up.id))
    voucher = session.scalar(select(Voucher).where(Voucher.true_up_id == true_up.id))
    c, s, p = true_up.contract_area, true_up.surveyed_area, true_up.unit_price
    share = LIMIT_PERCENT / 100
    band = "within" if not true_up.may_cancel else ("above" if s > c else "below")
    return {"deal": _deal(session, sub),
            "t": {"contract_area": c, "surveyed_area": s, "difference": s - c, "ratio": true_up.ratio_percent,
                  "unit_price": p, "buyer_pays": true_up.buyer_pays, "refund": true_up.refund,
                  "refund_double_part": true_up.refund_double_part,
                  "refund_share_part": true_up.refund - true_up.refund_double_part,
                  "developer_bears": true_up.developer_bears, "may_cancel": true_up.may_cancel, "band": band,
                  "limit": LIMIT_PERCENT, "share_area": (c * share).quantize(Decimal("0.0001")),
                  "interest_percent": sub.project.true_up_interest_percent.normalize(),
                  "beyond_area": (abs(s - c) - c * share).quantize(Decimal("0.0001")),
                  "surveyed_on": true_up.batch.surveyed_on if true_up.batch else sub.unit.surveyed_on,
                  "status": _label("true_up", "status", true_up.status)},
            "due_on": charge.due_on if charge else (true_up.applied_on or today) + dt.timedelta(days=PAYABLE_DAYS),
            "voucher": {"number": voucher.number, "issued_on": voucher.issued_on} if voucher else None}


# --- a monthly commission statement (R-COM-2) -------------------------------------------------------

def _commission_statement(session, st, today) -> dict:
    """The statement of one payee's month: the lines by stage (deal, kind, base, amount), the
    clawbacks, the drawn totals (models.commission_statements), who approved and when."""
    from .commission_statements import payee_name, statement_lines
    lines = statement_lines(session, st)
    stages = []
    for stage in ("subscribed", "signed", "down_payment", "disbursed"):
        of_stage = [dict(line, kind_label=_label("commission_line", "kind", line["kind"]),
                         role_label=_label("commission_line", "role", line["role"]))
                    for line in lines if line["stage"] == stage]
        if of_stage:
            stages.append({"stage": _label("commission_line", "stage", stage), "lines": of_stage,
                           "total": sum((line["amount"] for line in of_stage), Decimal("0"))})
    return {"st": {"month": st.month.strftime("%Y-%m"), "payee": payee_name(session, st),
                   "payee_kind": "渠道" if st.payee_company_id else "个人",
                   "status": _label("commission_statement", "status", st.status), "approved": st.status == "approved",
                   "earned": st.earned, "clawed_back": st.clawed_back, "total": st.total,
                   "line_count": st.line_count, "needs_vp": st.needs_vp,
                   "approved_by": st.approved_by.display_name if st.approved_by else "",
                   "approved_at": office_local(st.approved_at)},
            "stages": stages}


# --- the intent registration card (认筹卡, R-LCH-1) ----------------------------------------------------

def _intent_card(session, entry, today) -> dict:
    """A buyer's card: its number, the launch and its dates, the buyer (the phone and the ID number
    masked: the card is handed over and shown at the door, R-ALL-1), the eligibility answers and
    the group, the deposit and its receipt."""
    launch = entry.launch
    deposit = session.scalar(select(IntentPayment).where(IntentPayment.entry_id == entry.id,
                                                         IntentPayment.kind == "deposit"))
    return {"card": {
        "number": entry.number, "launch": launch.name, "buildings": "、".join(b.name for b in launch.buildings),
        "registration": f"{launch.registration_opens_on.isoformat()} 至 {launch.registration_closes_on.isoformat()}",
        "selection_on": launch.selection_on, "valid_until": launch.card_valid_until,
        "name": entry.name, "phone": mask_phone(entry.phone), "id_document": _id_document(entry.id_type),
        "id_number": mask_id_number(entry.id_number), "group": _label("launch_entry", "group_name", entry.group_name),
        "grouped": bool(launch.groups_ordered), "eligible": bool(entry.eligible),
        "answers": [{"question": q, "yes": bool((entry.answers or {}).get(q))} for q in (launch.questions or [])],
        "status": _label("launch_entry", "status", entry.status), "agent": entry.agent.display_name,
        "registered_at": office_local(entry.registered_at), "deposit": launch.intent_deposit,
        "receipt": deposit.number if deposit else "", "paid_on": deposit.paid_on if deposit else None}}


BUILDERS = {"subscription_agreement": _subscription_agreement, "receipt": _receipt,
            "payment_reminder": _payment_reminder, "overdue_warning": _overdue_letter,
            "lawyer_letter": _overdue_letter, "forfeit_notice": _forfeit_notice,
            "signing_booking": _signing_booking, "statement": _statement, "board": _board,
            "addendum": _addendum, "handover_notice": _handover, "handover_record": _handover,
            "survey_summary": _survey_summary, "true_up_notice": _true_up_notice,
            "commission_statement": _commission_statement,
            "intent_card": _intent_card}

# issue 24: the lottery's documents (R-LCH-2), built by models.lottery
BUILDERS.update({"lottery_entrants": lottery_entrants_context, "lottery_result": lottery_result_context})
