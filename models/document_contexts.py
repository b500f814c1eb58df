"""What each kind of document (PDF) shows, as plain values in Chinese: the deal, its plan and
money, the ladder's letters, a signing booking, a customer's statement, a building's board. Each
builder takes the subject and the office's `today` (models.documents.document_context reads the
clock once, at the edge). The PDF's board is the board of models.board, laid out for print.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select

from .base import office_local
from .board import board
from .deals import LIVE_DEAL, Subscription
from .identity import DOCUMENT_NAMES_ZH, RESIDENT_ID
from .labels import choice_label
from .ladder import OverdueEvent
from .payments import Instalment, Payment, PaymentAllocation, Voucher, days_overdue, in_force, net_lines, signing_gate

def _label(entity: str, column: str, value) -> str:
    return str(choice_label(entity, column, value))


def project_context(project) -> dict:
    return {"name": project.name, "developer": project.developer, "city": project.city,
            "address": project.address, "warning_day": project.warning_day,
            "lawyer_letter_day": project.lawyer_letter_day, "forfeit_day": project.forfeit_day}


def _unit(unit) -> dict:
    return {"building": unit.building.name, "number": unit.number, "floor": unit.floor,
            "layout": unit.layout, "area": unit.area, "list_price": unit.list_price}


def _customer(sub) -> dict:
    return {"name": sub.customer_name or sub.lead.name, "phone": sub.lead.phone,
            "id_number": sub.customer_id_number, "address": sub.customer_address,
            "id_document": DOCUMENT_NAMES_ZH.get(sub.customer_id_type, DOCUMENT_NAMES_ZH[RESIDENT_ID])}


def _lines(session, sub, today: dt.date) -> list[dict]:
    lines = session.scalars(select(Instalment).where(Instalment.subscription_id == sub.id, in_force())
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
            "agent": sub.agent.display_name, "unit": _unit(sub.unit), "customer": _customer(sub)}


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
    return {"deal": _deal(session, sub), "payment": {
        "receipt_no": payment.receipt_no or "", "amount": payment.amount, "paid_on": payment.paid_on,
        "channel": _label("payment", "channel", payment.channel), "bank_ref": payment.bank_ref or "",
        "recorded_by": payment.recorded_by.display_name, "reason": payment.reason,
        "reverses": reversed_no, "is_reversal": payment.reverses_id is not None},
        "allocations": [{"kind": _label("instalment", "kind", kind), "seq": seq, "amount": amount}
                        for seq, kind, amount in net_lines(allocations)]}


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
        deals.append({**_deal(session, sub), "lines": lines, "live": live, "payments": [
            {"receipt_no": p.receipt_no or "", "paid_on": p.paid_on, "amount": p.amount,
             "channel": _label("payment", "channel", p.channel), "reversal": p.reverses_id is not None,
             "reason": p.reason} for p in payments],
            "vouchers": [{"number": v.number, "kind": _label("voucher", "kind", v.kind), "issued_on": v.issued_on,
                          "amount": v.amount, "reason": v.reason} for v in vouchers],
            "due": due, "paid": paid,
            # Money owed now (models.payments.overdue_on's definition): nothing on a deal that is over.
            "owed": due - paid if live else Decimal("0"),
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


BUILDERS = {"subscription_agreement": _subscription_agreement, "receipt": _receipt,
            "payment_reminder": _payment_reminder, "overdue_warning": _overdue_letter,
            "lawyer_letter": _overdue_letter, "forfeit_notice": _forfeit_notice,
            "signing_booking": _signing_booking, "statement": _statement, "board": _board}
