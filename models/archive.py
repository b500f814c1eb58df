"""The customers' archive of deals that ended without a sale (挞定/退订/解约 客户档案, R-PAY-5).

When a deal is forfeited, withdrawn or rescinded, everything the office knew of the customer
and the deal is kept apart as a snapshot (`LeadArchive.snapshot`, JSON) that is never changed or
deleted. `snapshot` writes it (one shape for every way out); `kept_record` reads one back as the
record staff read: customer, deal, payment plan, payments — each value by its label, personal
data masked for the reader by the one rule (models/privacy.py). The deal's history comes from
the audit trail (models/timeline.py), which is append-only.

Below the deal (models.deals, models.payments, models.ladder and models.contracts all end deals and
keep them apart here), it imports none of them: the snapshot reads the deal's plan and payments
through the deal's own relationships (`Subscription.instalments`, `Subscription.payments`).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import InvalidOperation

from flask_babel import lazy_gettext as _l

from .inventory import Unit
from .labels import EMPTY, choice_label
from .leads import LeadArchive
from .money import format_money
from .privacy import mask_value
from .users import User

# Why a deal's customer was kept apart (LeadArchive.reason); labels in models/labels.py.
REASONS = ("forfeit", "withdrawal", "rescission", "cancellation")


def snapshot(session, sub, lead, ended_on: dt.date) -> dict:
    """Everything the office knew of the customer and the deal when it ended (R-PAY-5, R-ALL-2):
    codes and plain values (labels are the reader's language, chosen when read)."""
    session.expire(sub, ["instalments", "payments"])  # read afresh, in the caller's transaction
    instalments, payments = sub.instalments, sub.payments
    receipts = {p.id: p.receipt_no for p in payments}
    return {
        "ended_on": ended_on.isoformat(),
        "customer": {"name": lead.name, "phone": lead.phone, "id_type": sub.customer_id_type,
                     "id_number": sub.customer_id_number,
                     "address": sub.customer_address, "source": lead.source, "needs": lead.needs,
                     "purpose": lead.purpose, "budget_wan": lead.budget_wan},
        "subscription": {"number": sub.number, "unit_id": sub.unit_id, "unit": str(sub.unit) if sub.unit else None,
                         "project": sub.project.name if sub.project else None,
                         "price": str(sub.price), "deposit": str(sub.deposit),
                         "payment_method": sub.payment_method, "status": sub.status,
                         "subscribed_on": sub.subscribed_on.isoformat(), "agent_id": sub.agent_id,
                         "agent": sub.agent.display_name if sub.agent else None},
        "instalments": [{"seq": i.seq, "kind": i.kind, "due_on": i.due_on.isoformat(),
                         "extended_due_on": i.extended_due_on.isoformat() if i.extended_due_on else None,
                         "amount_due": str(i.amount_due), "amount_paid": str(i.amount_paid),
                         "status": i.status}
                        for i in instalments],
        "payments": [{"receipt_no": p.receipt_no, "amount": str(p.amount), "paid_on": p.paid_on.isoformat(),
                      "channel": p.channel, "reverses_id": p.reverses_id,
                      "reverses": receipts.get(p.reverses_id) if p.reverses_id else None}
                     for p in payments],
    }


def keep_apart(session, sub, lead, why: str, ended_on: dt.date, by=None, **extra):
    """The archive row of a deal that ended (`why`: forfeit, withdrawal, rescission), in the
    caller's transaction; `extra` joins the snapshot (the reason a person gave)."""
    row = LeadArchive(lead_id=lead.id, subscription_id=sub.id, reason=why,
                      archived_by_id=by.id if by is not None else None,
                      snapshot={**snapshot(session, sub, lead, ended_on), **extra})
    session.add(row)
    return row


# --- reading a kept record ------------------------------------------------------------------


@dataclasses.dataclass
class Section:
    title: str
    fields: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (label, text)
    columns: list[str] = dataclasses.field(default_factory=list)  # a table's headings
    rows: list[list[str]] = dataclasses.field(default_factory=list)


def _text(value) -> str:
    return EMPTY if value in (None, "") else str(value)


def _yuan(value) -> str:
    if value in (None, ""):
        return EMPTY
    try:
        return format_money(value)  # the one money writer: a reversal reads -¥10,000.00, never ¥-
    except InvalidOperation:
        return str(value)


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value) -> list:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def customer_of(viewer, data: dict) -> str:
    """A kept customer as the list shows them: name and phone (masked for the reader)."""
    customer = _dict(data.get("customer"))
    phone = mask_value(viewer, "phone", customer.get("phone"))
    return " ".join(str(v) for v in (customer.get("name") or data.get("name"), phone) if v) or EMPTY


def unit_of(session, data: dict) -> str:
    """The unit by its displayed name (1栋-2301), read from the unit row for older snapshots."""
    deal = _dict(data.get("subscription"))
    if deal.get("unit"):
        return str(deal["unit"])
    unit = session.get(Unit, deal["unit_id"]) if isinstance(deal.get("unit_id"), int) else None
    return str(unit) if unit is not None else EMPTY


def kept_record(session, viewer, row, labels: dict) -> list[Section]:
    """One archive row as the record staff read (`labels`: the column labels of the grids)."""
    data = _dict(row.snapshot)
    customer, deal = _dict(data.get("customer")), _dict(data.get("subscription"))

    def label(key):
        return str(labels.get(key, key))

    def personal(key, value):
        return _text(mask_value(viewer, key, value))

    agent = deal.get("agent")
    if not agent and isinstance(deal.get("agent_id"), int):
        user = session.get(User, deal["agent_id"])
        agent = user.display_name if user else None
    budget = customer.get("budget_wan")
    sections = [
        Section(str(_l("Customer")), [
            (label("customer_name"), _text(customer.get("name") or data.get("name"))),
            (label("phone"), personal("phone", customer.get("phone"))),
            (label("id_type"), _text(choice_label("lead", "id_type", customer.get("id_type") or "resident_id"))),
            (label("id_number"), personal("id_number", customer.get("id_number"))),
            (label("address"), _text(customer.get("address"))),
            (label("source"), _text(choice_label("lead", "source", customer.get("source")))),
            (label("purpose"), _text(choice_label("lead", "purpose", customer.get("purpose")))),
            (label("budget_wan"), _text(budget)),
            (label("needs"), _text(customer.get("needs"))),
        ]),
        Section(str(_l("Deal")), [
            (label("subscription.number"), _text(deal.get("number"))),
            (label("project"), _text(deal.get("project"))),
            (label("unit"), unit_of(session, data)),
            (label("price"), _yuan(deal.get("price"))),
            (label("deposit"), _yuan(deal.get("deposit"))),
            (label("payment_method"), _text(choice_label("subscription", "payment_method",
                                                         deal.get("payment_method")))),
            (label("subscribed_on"), _text(deal.get("subscribed_on"))),
            (label("agent"), _text(agent)),
            (label("reason"), _text(choice_label("lead_archive", "reason", row.reason))),
            (str(_l("Ended on")), _text(data.get("ended_on") or data.get("forfeited_on"))),
        ] + ([(str(_l("Why")), _text(data.get("reason")))] if data.get("reason") else [])),
    ]
    lines = _list(data.get("instalments"))
    sections.append(Section(str(_l("Payment plan")), columns=[
        label("seq"), label("kind"), label("due_on"), label("extended_due_on"), label("amount_due"),
        label("amount_paid"), label("status")], rows=[
        [_text(i.get("seq")), _text(choice_label("instalment", "kind", i.get("kind"))), _text(i.get("due_on")),
         _text(i.get("extended_due_on")), _yuan(i.get("amount_due")), _yuan(i.get("amount_paid")),
         _text(choice_label("instalment", "status", i.get("status")))] for i in lines]))
    payments = _list(data.get("payments"))
    if any(p.get("reverses_id") and not p.get("reverses") for p in payments):  # snapshots before issue 19
        ids = {p["reverses_id"] for p in payments if isinstance(p.get("reverses_id"), int)}
        # a reversal reverses a payment of the same deal (models.payments.reverse_payment)
        receipts = {p.id: p.receipt_no for p in (row.subscription.payments if row.subscription else ())
                    if p.id in ids}
        payments = [{**p, "reverses": p.get("reverses") or receipts.get(p.get("reverses_id"))} for p in payments]
    sections.append(Section(str(_l("Payments")), columns=[
        label("receipt_no"), label("amount"), label("paid_on"), label("channel"), label("reverses")], rows=[
        [_text(p.get("receipt_no")), _yuan(p.get("amount")), _text(p.get("paid_on")),
         _text(choice_label("payment", "channel", p.get("channel"))), _text(p.get("reverses"))]
        for p in payments]))
    return sections
