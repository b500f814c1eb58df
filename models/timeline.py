"""A deal's history (the subscription's detail page): every step of the subscription and of the
rows hanging from it, in the order they were recorded, read from the audit trail (R-ALL-2).

The audit rows are the source because they are complete and append-only: a step that left no
audit row did not happen. Rows that only echo another step (a plan line's paid amount after a
payment, a document's progress while rendering) are left out; what each remaining row means is
written by `_describe`.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

from flask_babel import gettext, lazy_gettext as _l, pgettext
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from .audit import Audit
from .base import office_time
from .contracts import ArchiveRecord, Contract, ContractStep, StampedCopy
from .deals import PriceApproval, Subscription
from .ladder import Extension, OverdueEvent
from .payments import Instalment, Payment, Voucher
from .document_queue import Document, kind_label
from .labels import choice_label
from .money import format_money
from .users import User

# The headline of each step, by (entity, action).
TITLES = {
    ("subscription", "subscribe"): _l("Subscription created"),
    ("subscription", "confirm"): _l("Confirmed by sales control"),
    ("subscription", "deposit"): _l("Deposit received: the subscription is in force"),
    ("subscription", "withdraw"): _l("Subscription withdrawn"),
    ("subscription", "forfeit"): _l("Deal forfeited"),
    ("subscription", "expire"): _l("Subscription expired: the deposit never came"),
    ("subscription", "rescind"): _l("Contract rescinded"),
    ("extension", "rescind"): _l("Extension request closed: the contract was rescinded"),
    ("price_approval", "withdraw"): _l("Price request closed: the subscription was withdrawn"),
    ("price_approval", "expire"): _l("Price request closed: the subscription expired"),
    ("extension", "withdraw"): _l("Extension request closed: the subscription was withdrawn"),
    ("extension", "expire"): _l("Extension request closed: the subscription expired"),
    ("extension", "forfeit"): _l("Extension request closed: the deal was forfeited"),
    ("overdue_event", "rescission"): _l("Signed deal on the forfeit day: rescission review"),
    ("overdue_event", "event_sent"): _l("Lawyer's letter sent"),
    ("overdue_event", "event_not_needed"): _l("Lawyer's letter not needed"),
    ("overdue_event", "event_continue"): _l("Rescission review: keep chasing"),
    ("overdue_event", "event_rescind"): _l("Rescission review: rescind"),
    ("voucher", "voucher_refund"): _l("Money refunded (voucher)"),
    ("voucher", "voucher_retained"): _l("Money retained (voucher)"),
    ("price_approval", "subscribe"): _l("Price below list: approval requested"),
    ("price_approval", "approve_price"): _l("Price approved by the vice-president"),
    ("price_approval", "reject_price"): _l("Price rejected by the vice-president"),
    ("instalment", "generate_plan"): _l("Payment plan generated"),
    ("instalment", "payment_follow_up"): _l("Agent's note on a plan line"),
    ("payment", "payment"): _l("Payment received"),
    ("payment", "reverse_payment"): _l("Payment reversed"),
    ("overdue_event", "reminder"): _l("Payment reminder"),
    ("overdue_event", "warning"): _l("Overdue warning"),
    ("overdue_event", "lawyer_letter"): _l("Lawyer's letter due"),
    ("overdue_event", "forfeit"): _l("Forfeit"),
    ("extension", "request_extension"): _l("Extension requested"),
    ("extension", "approve_extension"): _l("Extension approved"),
    ("extension", "reject_extension"): _l("Extension rejected"),
    ("document", "request_document"): _l("Document requested"),
    ("document", "render_done"): _l("Document ready"),
    ("document", "render_failed"): _l("Document failed"),
    ("contract", "book_signing"): _l("Signing booked"),
    ("contract", "sign_contract"): _l("Contract signed"),
    ("contract_step", "sign_contract"): _l("Post-signing steps opened"),
    ("contract", "archive_original"): _l("Original contract archived"),
    ("contract_step", "contract_step"): _l("Post-signing step updated"),
    ("archive_record", "archive_original"): _l("Original contract archived"),
    ("stamped_copy", "stamped_copy"): _l("Stamped copy issued"),
}

# Steps written as several rows at once, shown as one step listing them.
GROUPED = {("instalment", "generate_plan"), ("contract_step", "sign_contract")}

# Rows that repeat a step another row of the same transaction tells better: the subscription's
# status at signing (the contract's row has the number) and at a forfeit (the ladder's event has
# the ladder's date).
ECHOES = {("subscription", "sign_contract"), ("subscription", "forfeit"), ("contract", "rescind"),
          ("lead", "rescind")}

# The badge colour of each step (the board's status classes, see static/salesdesk.css).
TONES = {
    "subscribe": "draft", "confirm": "confirmed", "deposit": "active", "payment": "paid",
    "reverse_payment": "warning", "reminder": "pending", "warning": "warning",
    "lawyer_letter": "lawyer_letter", "forfeit": "forfeited", "withdraw": "withdrawn",
    "sign_contract": "signed", "book_signing": "subscribed", "request_extension": "pending",
    "approve_extension": "active", "reject_extension": "withdrawn", "approve_price": "active",
    "reject_price": "withdrawn", "render_failed": "failed", "expire": "expired", "rescission": "forfeited",
    "event_sent": "sent", "event_not_needed": "not_needed", "event_continue": "continue",
    "event_rescind": "rescind", "voucher_refund": "warning", "voucher_retained": "forfeited",
    "rescind": "rescinded",
}


@dataclasses.dataclass
class Step:
    at: dt.datetime  # when it was recorded (UTC)
    entity: str
    action: str
    title: str
    detail: str
    who: str
    tone: str
    document_id: int | None = None


def _value(changes: dict, key: str):
    """An inserted row's value, or the new value of an updated one ([before, after])."""
    value = changes.get(key)
    return value[1] if isinstance(value, list) and len(value) == 2 else value


def _related(session: Session, sub: Subscription) -> dict[str, dict[int, object]]:
    """Every row of the deal, by table and id."""
    def rows(stmt):
        return {row.id: row for row in session.scalars(stmt)}

    lines = rows(select(Instalment).where(Instalment.subscription_id == sub.id))
    payments = rows(select(Payment).where(Payment.subscription_id == sub.id))
    events = rows(select(OverdueEvent).where(OverdueEvent.instalment_id.in_(lines)))
    contracts = rows(select(Contract).where(Contract.subscription_id == sub.id))
    archive = rows(select(ArchiveRecord).where(ArchiveRecord.contract_id.in_(contracts)))
    subjects = {"subscription_agreement": [sub.id], "forfeit_notice": [sub.id],
                "receipt": list(payments), "payment_reminder": list(lines),
                "overdue_warning": list(events), "lawyer_letter": list(events),
                "signing_booking": list(contracts)}
    return {
        "subscription": {sub.id: sub},
        "instalment": lines,
        "payment": payments,
        "overdue_event": events,
        "extension": rows(select(Extension).where(Extension.subscription_id == sub.id)),
        "voucher": rows(select(Voucher).where(Voucher.subscription_id == sub.id)),
        "price_approval": rows(select(PriceApproval).where(PriceApproval.subscription_id == sub.id)),
        "contract": contracts,
        "contract_step": rows(select(ContractStep).where(ContractStep.contract_id.in_(contracts))),
        "archive_record": archive,
        "stamped_copy": rows(select(StampedCopy).where(StampedCopy.archive_record_id.in_(archive))),
        "document": rows(select(Document).where(or_(*(
            and_(Document.kind == kind, Document.subject_id.in_(ids))
            for kind, ids in subjects.items() if ids)))),
    }


def _line(rows, instalment_id) -> str:
    line = rows["instalment"].get(instalment_id)
    if line is None:
        return ""
    return gettext("line %(seq)d (%(kind)s, due %(due)s)", seq=line.seq,
                   kind=choice_label("instalment", "kind", line.kind), due=line.due_on.isoformat())


def _describe(audit: Audit, rows) -> str | None:
    """What an audit row says, in the user's language; None for rows that only echo a step."""
    c, key = audit.changes or {}, (audit.entity, audit.action)
    if key in ECHOES:
        return None
    row = rows[audit.entity].get(int(audit.entity_id)) if audit.entity_id.isdigit() else None
    if key == ("subscription", "subscribe"):
        return gettext("%(number)s · price %(price)s · deposit %(deposit)s · %(method)s",
                       number=c.get("number", ""), price=format_money(c.get("price")),
                       deposit=format_money(c.get("deposit")),
                       method=choice_label("subscription", "payment_method", c.get("payment_method", "")))
    if key == ("instalment", "generate_plan"):
        return gettext("%(seq)s. %(kind)s %(amount)s due %(due)s", seq=c.get("seq"),
                       kind=choice_label("instalment", "kind", c.get("kind", "")),
                       amount=format_money(c.get("amount_due")), due=c.get("due_on", ""))
    if key == ("instalment", "payment_follow_up"):
        return f'{_line(rows, int(audit.entity_id))}: {_value(c, "agent_note") or ""}'.strip(": ")
    if audit.entity == "instalment":
        return None  # paid amounts and statuses after a payment: the payment tells it
    if audit.entity == "payment":
        text = gettext("receipt %(no)s · %(amount)s · paid on %(paid_on)s · %(channel)s",
                       no=c.get("receipt_no") or "", amount=format_money(c.get("amount")),
                       paid_on=c.get("paid_on", ""), channel=choice_label("payment", "channel", c.get("channel", "")))
        original = rows["payment"].get(c.get("reverses_id"))
        if original is not None:
            text += " · " + gettext("reverses %(no)s: %(reason)s", no=original.receipt_no or "",
                                    reason=c.get("reason", ""))
        return text
    if audit.entity == "overdue_event":
        if row is None:
            return ""
        if audit.action.startswith("event_"):
            return _value(c, "note") or ""
        cause = gettext("signing overdue") if row.cause == "signing" else _line(rows, row.instalment_id)
        return gettext("ladder date %(on)s · %(cause)s", on=row.on.isoformat(), cause=cause)
    if audit.entity == "extension":
        if audit.action == "request_extension":
            line = _line(rows, c.get("instalment_id")) if c.get("instalment_id") else gettext("the signing date")
            return gettext("%(days)s days for %(line)s: %(reason)s", days=c.get("days"),
                           line=line, reason=c.get("reason", ""))
        new_due = _value(c, "new_due_on")
        return gettext("new due date %(due)s", due=new_due) if new_due else ""
    if audit.entity == "price_approval":
        if audit.action == "subscribe":
            return gettext("list %(list)s, agreed %(price)s: %(reason)s", list=format_money(c.get("list_price")),
                           price=format_money(c.get("price")), reason=c.get("reason", ""))
        return ""
    if audit.entity == "document":
        if audit.action not in ("request_document", "render_done", "render_failed"):
            return None  # queued → running: the request and the result tell it
        return f"{kind_label(row.kind)} · {row.title}" if row else ""
    if key == ("contract", "book_signing"):
        at = c.get("appointment_at")
        return gettext("%(kind)s · appointment %(at)s · sign by %(due)s",
                       kind=choice_label("contract", "kind", c.get("kind", "")),
                       at=office_time(dt.datetime.fromisoformat(at)) if at else "",
                       due=c.get("signing_due_on", ""))
    if key == ("contract", "sign_contract"):
        return gettext("contract %(number)s · signed on %(on)s", number=_value(c, "number") or "",
                       on=_value(c, "signed_on") or "")
    if audit.entity == "contract":
        return None
    if audit.entity == "contract_step":
        if row is None:
            return ""
        if audit.action == "sign_contract":
            return choice_label("contract_step", "kind", row.kind)
        status = _value(c, "status") or row.status
        return f'{choice_label("contract_step", "kind", row.kind)} · {choice_label("contract_step", "status", status)}'
    if audit.entity == "archive_record":
        return gettext("received %(on)s · kept at %(where)s", on=c.get("received_on", ""),
                       where=c.get("location", ""))
    if audit.entity == "stamped_copy":
        return gettext("issued on %(on)s", on=c.get("issued_on", ""))
    if key == ("subscription", "expire"):
        reason = _value(c, "reason") or ""
        try:  # since issue 19 the deposit's due date; before, finished Chinese text, shown as written
            return gettext("the deposit was due on %(due)s", due=dt.date.fromisoformat(reason).isoformat())
        except ValueError:
            return reason
    if key == ("subscription", "withdraw"):
        return _value(c, "reason") or ""
    if audit.entity == "voucher":
        return gettext("voucher %(no)s · %(amount)s · %(reason)s", no=c.get("number", ""),
                       amount=format_money(c.get("amount")), reason=c.get("reason", ""))
    return ""


def deal_timeline(session: Session, subscription_id: int) -> list[Step]:
    """The history of one deal, oldest first (see the module docstring)."""
    sub = session.get(Subscription, subscription_id)
    if sub is None:
        return []
    rows = _related(session, sub)
    wanted = [and_(Audit.entity == table, Audit.entity_id.in_([str(i) for i in ids]))
              for table, ids in rows.items() if ids]
    audits = session.scalars(select(Audit).where(or_(*wanted)).order_by(Audit.at, Audit.id)).all()
    names = {u.id: u.display_name for u in session.scalars(
        select(User).where(User.id.in_({a.actor_id for a in audits if a.actor_id})))}
    steps, group = [], None
    for audit in audits:
        detail = _describe(audit, rows)
        if detail is None:
            continue
        title = TITLES.get((audit.entity, audit.action))
        if title is None:
            title = gettext("%(what)s changed", what=audit.entity)
        key = (audit.entity, audit.action)
        if key in GROUPED and group is not None and (group.entity, group.action) == key:
            group.detail += pgettext("list separator", "; ") + detail  # one step for the whole plan, its lines
            continue
        step = Step(at=audit.at, entity=audit.entity, action=audit.action, title=str(title),
                    detail=detail, who=names.get(audit.actor_id, gettext("the system")),
                    tone=TONES.get(audit.action, "pending"),
                    document_id=int(audit.entity_id) if audit.entity == "document"
                    and audit.action == "render_done" else None)
        group = step if key in GROUPED else None
        steps.append(step)
    return steps
