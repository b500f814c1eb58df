"""A deal's history (the subscription's detail page): every step of the subscription and of the
rows hanging from it, in the order they were recorded, read from the audit trail (R-ALL-2) —
its change requests too (R-CHG-1…4): each request, each step of its approval chain, and the change
applied to the deal (the plan regenerated, the money carried over, a refund).

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
from .changes import ChangeRequest, ChangeStep
from .contracts import ArchiveRecord, Contract, ContractStep, StampedCopy
from .deals import PriceApproval, Subscription
from .document_contexts import PLAN_CHANGES, change_terms, swapped_units
from .ladder import Extension, OverdueEvent
from .payments import CHANGE_ACTIONS, Instalment, Payment, Voucher
from .document_queue import Document, kind_label
from .labels import choice_label
from .money import format_money
from .permissions import ROLE_LABELS
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
    ("change_request", "resubmit_change"): _l("Change request resubmitted"),
    ("change_request", "withdraw_change"): _l("Change request withdrawn"),
    ("change_request", "approve_change"): _l("Change approved"),
    ("change_request", "reject_change"): _l("Change rejected"),
    ("change_request", "send_back_change"): _l("Change sent back"),
}

# A change applied to the deal (models.change_apply), by its audit action: one step per change.
APPLIED = {"swap_unit": _l("Change applied: unit swapped"), "change_buyers": _l("Change applied: buyers changed"),
           "change_payment_method": _l("Change applied: payment method changed"),
           "change_price": _l("Change applied: price changed"), "cancel_deal": _l("Change applied: deal cancelled")}
DECIDED = ("approve_change", "reject_change", "send_back_change")
NEW_PLAN = _l("Payment plan regenerated")

# Steps written as several rows at once, shown as one step listing them (a plan a change
# regenerated: its new lines, under the change's action).
GROUPED = {("instalment", "generate_plan"), ("contract_step", "sign_contract")} | {("instalment", a) for a in APPLIED}
TITLES.update({("instalment", a): NEW_PLAN for a in APPLIED})
TITLES.update({(entity, "cancel_deal"): _l("Request closed: the deal was cancelled")
               for entity in ("extension", "price_approval", "change_request")})

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
    "rescind": "rescinded", "request_change": "pending", "resubmit_change": "pending",
    "approve_change": "active", "reject_change": "withdrawn", "send_back_change": "warning",
    "withdraw_change": "withdrawn", "swap_unit": "signed", "change_buyers": "signed",
    "change_payment_method": "signed", "change_price": "signed", "cancel_deal": "forfeited",
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
    changes = rows(select(ChangeRequest).where(ChangeRequest.subscription_id == sub.id))
    subjects = {"subscription_agreement": [sub.id], "forfeit_notice": [sub.id],
                "receipt": list(payments), "payment_reminder": list(lines),
                "overdue_warning": list(events), "lawyer_letter": list(events),
                "signing_booking": list(contracts), "addendum": list(changes)}
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
        "change_request": changes,
        "change_step": rows(select(ChangeStep).where(ChangeStep.change_request_id.in_(changes))),
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
    if key == ("instalment", "generate_plan") or (audit.entity == "instalment" and audit.action in APPLIED):
        if _value(c, "seq") is None:
            return None  # a line of the plan the change replaced: the new plan's lines tell it
        text = gettext("%(seq)s. %(kind)s %(amount)s due %(due)s", seq=_value(c, "seq"),
                       kind=choice_label("instalment", "kind", _value(c, "kind") or ""),
                       amount=format_money(_value(c, "amount_due")), due=_value(c, "due_on") or "")
        if row is not None and row.status == "replaced":  # history, owed by nobody (R-CHG-2)
            text += " · " + str(choice_label("instalment", "status", "replaced"))
        return text
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


# --- change requests (R-CHG-1…4) ------------------------------------------------------------------

def change_summary(session: Session, change: ChangeRequest) -> str:
    """What a change does, in a line: "1栋-2301 → 2栋-1501", "张三 100% → 张三 50%, 李四 50%",
    "Instalments → Commercial mortgage", "¥1,500,000.00 → ¥1,450,000.00", "refund …, retained …"."""
    if change.kind == "unit_swap":
        old, new = swapped_units(session, change)
        return f'{old or "?"} → {new or "?"}'
    terms = {t["key"]: t for t in change_terms(session, change)}
    if change.kind == "cancellation":
        return gettext("refund %(refund)s, retained %(retained)s, fee %(fee)s", refund=terms["refund"]["after"],
                       retained=terms["retained"]["after"], fee=terms["fee"]["after"])
    term = terms.get({"payment_method": "payment_method", "buyers": "buyers"}.get(change.kind, "price"))
    return f'{term["before"]} → {term["after"]}' if term else ""


def _applied(session: Session, change: ChangeRequest) -> str:
    """The change as it was applied to the deal: the plan regenerated and the money it carried
    over, the buyers, or the cancellation's refund (R-CHG-2/3/4)."""
    text = f"{change} · {change_summary(session, change)}"
    if change.kind in PLAN_CHANGES:
        paid = (change.difference or {}).get("paid")
        paid = paid[1] if isinstance(paid, list) and len(paid) == 2 else paid
        text += " · " + gettext("the plan regenerated, %(amount)s carried over",
                                amount=format_money(paid if paid is not None else 0))
    return text


def _change_of(audit: Audit, rows) -> ChangeRequest | None:
    """The change request an applied change's row of the deal carried out: the one it names
    (last_change_id), else the first of that kind applied at or after the row was written (a deal
    has one open change at a time; the row and applied_at are written in one transaction)."""
    named = _value(audit.changes or {}, "last_change_id")
    if named in rows["change_request"]:
        return rows["change_request"][named]
    kinds = [k for k, a in CHANGE_ACTIONS.items() if a == audit.action]
    candidates = [c for c in rows["change_request"].values()
                  if c.kind in kinds and c.applied_at is not None and c.applied_at >= audit.at]
    return min(candidates, key=lambda c: (c.applied_at, c.id)) if candidates else None


def _describe_change(session: Session, audit: Audit, rows, applied: set) -> tuple[str, str, str] | None:
    """(title, detail, tone action) of a change request's row (asked, decided at a step, resubmitted,
    withdrawn, closed) or of a change applied to the deal (its row of the deal, under the change's
    action, models.payments.change_action); None for a row another tells."""
    c, entity = audit.changes or {}, audit.entity
    row_id = int(audit.entity_id) if audit.entity_id.isdigit() else None
    if entity == "subscription":  # the change applied: one step per change, whichever row tells it
        change = _change_of(audit, rows)
        if change is None or change.id in applied:
            return None
        applied.add(change.id)
        return str(APPLIED[audit.action]), _applied(session, change), audit.action
    change = rows["change_request"].get(row_id)
    if change is None:
        return None
    if audit.action in DECIDED:  # one step of the chain decided (its ChangeStep row names who)
        round_, seq = _value(c, "round"), c.get("step")
        seq = seq[0] if isinstance(seq, list) else seq
        step = next((s for s in rows["change_step"].values()
                     if s.change_request_id == change.id and s.round == round_ and s.seq == seq), None)
        role = _value(c, "role") or (step.role if step else "")
        role, who = ROLE_LABELS.get(role, role), step.decided_by.display_name if step else ""
        note = _value(c, "note") or (step.note if step else "")
        words = {"approve_change": gettext("%(no)s · %(role)s %(name)s approved", no=change, role=role, name=who),
                 "reject_change": gettext("%(no)s · %(role)s %(name)s rejected: %(note)s", no=change, role=role,
                                          name=who, note=note),
                 "send_back_change": gettext("%(no)s · %(role)s %(name)s sent back: %(note)s", no=change, role=role,
                                             name=who, note=note)}
        title = TITLES[(entity, audit.action)]
        if audit.action == "approve_change" and _value(c, "status") == "requested":
            title = _l("Step approved: on to the next approver")  # the chain goes on
        return str(title), words[audit.action], audit.action
    if audit.action in ("request_change", "resubmit_change"):
        reason = _value(c, "reason") or change.reason
        who = change.requested_by.display_name
        detail = gettext("%(summary)s (requested by %(name)s: %(reason)s)", summary=change_summary(session, change),
                         name=who, reason=reason)
        if audit.action == "request_change":
            title = gettext("%(kind)s request %(no)s", kind=choice_label("change_request", "kind", change.kind),
                            no=change)
            return title, detail, audit.action
        return str(TITLES[(entity, audit.action)]), f"{change} · {detail}", audit.action
    if audit.action == "withdraw_change":
        return str(TITLES[(entity, audit.action)]), f'{change} · {_value(c, "reason") or ""}'.strip(" ·"), audit.action
    status = _value(c, "status")
    if audit.action not in DECIDED and status in ("rejected", "withdrawn"):  # closed as the deal ended
        title = TITLES.get((entity, audit.action)) or _l("Change request closed")
        return str(title), f'{change} · {choice_label("change_request", "status", status)}', "withdraw_change"
    return None  # the figures a cancellation applied, written on the request: the applied step tells them


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
    steps, group, applied = [], None, set()
    for audit in audits:
        key, tone = (audit.entity, audit.action), audit.action
        if audit.entity == "change_request" or key in {("subscription", a) for a in APPLIED}:
            told = _describe_change(session, audit, rows, applied)
            if told is None:
                continue
            title, detail, tone = told
        else:
            detail = _describe(audit, rows)
            if detail is None:
                continue
            title = TITLES.get(key)
            if title is None:
                title = gettext("%(what)s changed", what=audit.entity)
        if key in GROUPED and group is not None and (group.entity, group.action) == key:
            group.detail += pgettext("list separator", "; ") + detail  # one step for the whole plan, its lines
            continue
        step = Step(at=audit.at, entity=audit.entity, action=audit.action, title=str(title),
                    detail=detail, who=names.get(audit.actor_id, gettext("the system")),
                    tone=TONES.get(tone, "pending"),
                    document_id=int(audit.entity_id) if audit.entity == "document"
                    and audit.action == "render_done" else None)
        group = step if key in GROUPED else None
        steps.append(step)
    return steps
