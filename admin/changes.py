"""Deal changes (R-CHG-1…5): requesting a change from the deal, the change requests and their
approval steps, and a deal's buyers (权益人).

Every step goes through the domain (models.change_requests): the screens only choose what to show.
A button shows where the domain says the user may take the step now (`decision_refusal`, or the
requester for a resubmission or a withdrawal); its POST asks the domain again.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from flask import flash, has_request_context, request
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup, escape
from sqlalchemy import case, func, select
from sqlalchemy.orm import joinedload
from wtforms.fields.choices import SelectChoice

from jobs.documents import QueueUnavailable, enqueue_documents
from models import Building, Document, Subscription, Unit, db
from models.base import office_today
from models.change_requests import (CHANGEABLE, FIXED_BY_CONTRACT, decide_change, decision_refusal, request_change,
                                    resubmit_change, withdraw_change)
from models.changes import OPEN_CHANGE, ChangeRequest, DealBuyer, current_buyers, open_change
from models.labels import EMPTY, choice_label
from models.money import format_money
from models.permissions import role_label, sees_whole
from models.privacy import mask_value

from .base import ReadOnlyView
from .forms import (BuyersForm, CancellationForm, ChangeForm, DecisionForm, MethodForm, PriceForm, ReasonForm,
                    SwapForm)
from .rows import per_request
from .step_actions import Decision, FormStep, decision_steps, form_steps
from .steps import StepButton

# Money in a proposal, `before` or a difference.
MONEY_KEYS = ("price", "fee", "refund", "retained", "paid", "due")


# --- what a deal's page and grid read ----------------------------------------------------------
def pending_deals() -> set[int]:
    """The deals with a change waiting (R-CHG-1), read once per page for its rows."""
    return per_request(("pending-changes",), lambda: set(db.session.scalars(
        select(ChangeRequest.subscription_id).where(ChangeRequest.status.in_(OPEN_CHANGE)))))


def may_change(sub) -> bool:
    """A request button applies: a deal whose terms may change (models.change_requests) with no
    change waiting."""
    return sub.status in CHANGEABLE and sub.id not in pending_deals()


def may_change_term(kind: str):
    """The same, for a kind the signed contract fixes (the unit, the price): not once contracted."""
    return lambda sub: may_change(sub) and not (sub.status == "contracted" and kind in FIXED_BY_CONTRACT)


def waiting_for(change) -> str:
    """Whose step it is now: the role of the current step, the requester after a send-back, "—"
    once closed."""
    if change.status == "requested" and change.step < len(change.roles):
        return str(role_label(change.roles[change.step]))
    if change.status == "sent_back":
        return gettext("The requester (%(name)s)", name=change.requested_by.display_name)
    return EMPTY


def pending_banner(change) -> str:
    """"BG-000012 Unit swap, waiting for Sales manager": the deal's page."""
    return gettext("%(number)s %(kind)s, waiting for %(who)s", number=str(change),
                   kind=choice_label("change_request", "kind", change.kind), who=waiting_for(change))


def status_with_change(inner):
    """The deal's status on the grid, with "change pending" while a change waits."""
    def formatter(view, context, sub, name):
        shown = inner(view, context, sub, name)
        if sub.id not in pending_deals():
            return shown
        return Markup("%s <span class=\"badge badge-status status-change_pending\">%s</span>") % (
            shown, gettext("Change pending"))
    return formatter


def _share(value) -> str:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    text = f"{number:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def buyer_rows(sub) -> list[dict]:
    """The deal's current buyers as rows of the buyers' form, whole (`_shown` masks them for the
    reader); a deal from before buyers were kept: its customer, 100 %."""
    buyers = current_buyers(db.session, sub.id)
    rows = [{"name": b.name, "id_type": b.id_type, "id_number": b.id_number, "phone": b.phone,
             "share": _share(b.share)} for b in buyers]
    if not rows:
        rows = [{"name": sub.customer_name, "id_type": sub.customer_id_type,
                 "id_number": sub.customer_id_number or "", "phone": sub.lead.phone if sub.lead else "",
                 "share": "100"}]
    return rows


def _shown(rows: list[dict]) -> list[dict]:
    return [{**row, "id_number": mask_value(current_user, "id_number", row.get("id_number") or ""),
             "phone": mask_value(current_user, "phone", row.get("phone") or "")} for row in rows]


def _unmasked(row: dict, known: list[dict], index: int) -> dict:
    """A buyer row as sent: an ID number or phone left as the form showed it masked is the known
    buyer's own (the one at the same place first, else the only one it can be)."""
    row = dict(row)
    for key in ("id_number", "phone"):
        value = row.get(key) or ""
        if not value or sees_whole(current_user, key) or "*" not in value:
            continue
        matches = [k.get(key) for k in known if k.get(key) and mask_value(current_user, key, k.get(key)) == value]
        same_place = known[index].get(key) if index < len(known) else None
        if same_place in matches:
            row[key] = same_place
        elif len(set(matches)) == 1:
            row[key] = matches[0]
    return row


# --- one form per kind ---------------------------------------------------------------------------
def _unit_label(unit) -> str:
    return f"{unit} · {unit.layout} · {_share(unit.area)} m² · {format_money(unit.list_price)}"


# A part of the swap's chooser lists at most this many units: a building, or a large building's
# floors a range at a time (every unit on sale is reachable, none in a select of thousands).
PART_UNITS = 500


def _parts(sub) -> list[tuple[str, str]]:
    """The chooser of a swap's new unit: (value "building:lowest-highest floor", label) for the
    project's units on sale now, a building per part, a large one's floors split in order."""
    rows = db.session.execute(
        select(Building.id, Building.name, Unit.floor, func.count(Unit.id))
        .join(Unit, Unit.building_id == Building.id).where(*_on_sale(sub))
        .group_by(Building.id, Building.name, Unit.floor).order_by(Building.name, Building.id, Unit.floor)).all()
    parts: list[list] = []  # [building id, name, lowest floor, highest floor, units]
    for building_id, name, floor, n in rows:
        last = parts[-1] if parts else None
        if last and last[0] == building_id and last[4] + n <= PART_UNITS:
            last[3], last[4] = floor, last[4] + n
        else:
            parts.append([building_id, name, floor, floor, n])
    split = {p[0] for p in parts if sum(q[0] == p[0] for q in parts) > 1}
    return [(f"{b}:{low}-{high}",
             gettext("%(building)s, floors %(low)d–%(high)d (%(n)d on sale)", building=name, low=low, high=high, n=n)
             if b in split else gettext("%(building)s (%(n)d on sale)", building=name, n=n))
            for b, name, low, high, n in parts]


def _on_sale(sub) -> tuple:
    """Units a swap of `sub` may go to: the project's on sale now, not the deal's own."""
    return (Building.project_id == sub.project_id, Unit.status == "available", Unit.id != sub.unit_id)


def _unit_choices(form, sub) -> None:
    """The new unit of a swap (R-CHG-2), chosen part by part: the part sent (else the part of the
    unit sent or proposed, else of the deal's own unit, else the first), then the units on sale of
    that part. A unit on sale anywhere in the project is taken as sent (chosen before the part was
    changed); the domain takes the chosen one under the subscription's guard
    (models.change_apply.check_proposal refuses a unit gone or foreign)."""
    parts = _parts(sub)
    form.part.choices = [SelectChoice(value, label) for value, label in parts]
    sent = str(form.unit_id.data or "")
    unit = db.session.execute(select(Unit.id, Unit.building_id, Unit.floor).join(Building).where(
        Unit.id == int(sent), *_on_sale(sub))).first() if sent.isdigit() and len(sent) < 12 else None

    def part_of(building_id, floor):
        return next((value for value, _ in parts if _holds(value, building_id, floor)), None)

    chosen = str(form.part.data or "")
    if chosen not in {value for value, _ in parts}:
        chosen = ((unit and part_of(unit.building_id, unit.floor)) or part_of(sub.unit.building_id, sub.unit.floor)
                  or next((value for value, _ in parts if value.startswith(f"{sub.unit.building_id}:")), None)
                  or (parts[0][0] if parts else ""))
    form.part.data = chosen
    units = []
    if chosen:
        building_id, floors = chosen.split(":")
        low, high = (int(x) for x in floors.split("-"))
        units = db.session.scalars(
            select(Unit).join(Building).options(joinedload(Unit.building))
            .where(*_on_sale(sub), Unit.building_id == int(building_id), Unit.floor.between(low, high))
            .order_by(Unit.floor, Unit.position, Unit.number)).all()
    if unit is not None and unit.id not in {u.id for u in units}:
        units.append(db.session.get(Unit, unit.id))
    form.unit_id.choices = [SelectChoice("", "—")] + [SelectChoice(str(u.id), _unit_label(u)) for u in units]


def _holds(part: str, building_id: int, floor: int) -> bool:
    """Part "building:lowest-highest" holds a unit of that building and floor."""
    building, floors = part.split(":")
    low, high = (int(x) for x in floors.split("-"))
    return building == str(building_id) and low <= floor <= high


def _money_text(value) -> str:
    return format_money(value) if value not in (None, "") else ""


class Kind(NamedTuple):
    """A kind of change on the screens: its form, its first values (from the deal, or from the
    request sent back), the proposal read from the form, and the choices the form needs."""

    form: type
    fill: object  # (sub, proposal | None) -> dict
    proposal: object  # (form, known buyers) -> dict
    prepare: object = None  # (form, sub) -> None


def _buyers_proposal(form, known) -> dict:
    rows = []
    for entry in form.buyers.entries:
        row = entry.form
        if row.is_empty():
            continue
        rows.append(_unmasked({k: (row[k].data or "").strip() for k in ("name", "id_type", "id_number", "phone",
                                                                        "share")}, known, len(rows)))
    return {"buyers": rows}


KINDS = {
    "unit_swap": Kind(
        SwapForm,
        lambda sub, proposal: {"unit_id": str((proposal or {}).get("unit_id") or "")},
        lambda form, known: {"unit_id": int(form.unit_id.data) if str(form.unit_id.data).isdigit() else None},
        lambda form, sub: _unit_choices(form, sub)),
    "buyers": Kind(
        BuyersForm,
        lambda sub, proposal: {"buyers": _shown(proposal["buyers"] if proposal else buyer_rows(sub))},
        _buyers_proposal),
    "payment_method": Kind(
        MethodForm,
        lambda sub, proposal: {"payment_method": (proposal or {}).get("payment_method") or sub.payment_method},
        lambda form, known: {"payment_method": form.payment_method.data}),
    "price": Kind(
        PriceForm,
        lambda sub, proposal: {"price": Decimal(str((proposal or {}).get("price") or sub.price))},
        lambda form, known: {"price": f"{form.price.data:.2f}" if form.price.data is not None else None}),
    "cancellation": Kind(
        CancellationForm,
        lambda sub, proposal: {"retain_deposit": bool((proposal or {}).get("retain_deposit")),
                               "fee": Decimal(str(proposal["fee"])) if proposal and proposal.get("fee") else None},
        lambda form, known: {"retain_deposit": bool(form.retain_deposit.data),
                             "fee": f"{form.fee.data:.2f}" if form.fee.data is not None else "0.00"}),
}


def _known_buyers(sub, change=None) -> list[dict]:
    """The buyers the form may have shown masked: the request's proposal, then the deal's."""
    proposed = list((change.proposal or {}).get("buyers") or []) if change is not None else []
    return proposed + buyer_rows(sub)


def _deal_page(sub) -> dict:
    """What a change's form shows above it: the deal and its terms now."""
    return {"subscription": sub, "method": choice_label("subscription", "payment_method", sub.payment_method)}


def _requested(form, sub, change) -> str:
    return gettext("Change %(number)s requested, waiting for %(who)s.", number=str(change), who=waiting_for(change))


def _request_step(kind: str, name: str, text) -> FormStep:
    spec = KINDS[kind]
    return FormStep(
        name, text, spec.form, one=_l("Select exactly one subscription."), again=True,
        unknown=_l("This subscription does not exist."), template="admin/change_step.html",
        context=lambda sub: _deal_page(sub),
        fill=lambda sub: spec.fill(sub, None),
        prepare=(lambda form, rows: spec.prepare(form, rows[0]) if rows else None) if spec.prepare else None,
        run=lambda by, form, sub: request_change(
            db.session, by, sub.id, kind, reason=form.reason.data, proposal=spec.proposal(form, _known_buyers(sub)),
            key=form.sent_key(), today=office_today()),
        done=_requested)


# The request steps of a deal (SubscriptionView), one per kind: name -> kind.
REQUESTS = {"change_unit": "unit_swap", "change_buyers": "buyers", "change_method": "payment_method",
            "change_price": "price", "cancel_deal": "cancellation"}
REQUEST_STEPS = form_steps(
    _request_step("unit_swap", "change_unit", _l("Swap the unit")),
    _request_step("buyers", "change_buyers", _l("Change the buyers")),
    _request_step("payment_method", "change_method", _l("Change the payment method")),
    _request_step("price", "change_price", _l("Change the price")),
    _request_step("cancellation", "cancel_deal", _l("Cancel with refund")))
REQUEST_BUTTONS = (
    StepButton("change_unit", "change.request", when=may_change_term("unit_swap"), icon="fa-exchange"),
    StepButton("change_buyers", "change.request", when=may_change, icon="fa-users"),
    StepButton("change_method", "change.request", when=may_change, icon="fa-credit-card"),
    StepButton("change_price", "change.request", when=may_change_term("price"), icon="fa-tag"),
    StepButton("cancel_deal", "change.request", when=may_change, icon="fa-ban", style="danger"))


def deal_context(sub) -> dict:
    """What the deal's page shows besides its fields: its buyers, current and former, and the
    change waiting."""
    buyers = db.session.scalars(select(DealBuyer).where(DealBuyer.subscription_id == sub.id)
                                .order_by(DealBuyer.ended_at.is_not(None), DealBuyer.ended_at.desc(),
                                          DealBuyer.seq)).all()
    return {"buyers": [b for b in buyers if b.ended_by_change_id is None],
            "former_buyers": [b for b in buyers if b.ended_by_change_id is not None],
            "pending_change": open_change(db.session, sub.id), "pending_banner": pending_banner,
            "masked": lambda key, value: mask_value(current_user, key, value), "share": _share,
            "buyer_id_type": lambda buyer: choice_label("deal_buyer", "id_type", buyer.id_type)}


# --- the change requests ------------------------------------------------------------------------
PROPOSAL_LABELS = {"unit_id": _l("Unit"), "unit": _l("Unit"), "buyers": _l("Buyers"),
                   "payment_method": _l("Payment method"), "price": _l("Price"),
                   "retain_deposit": _l("Retain the deposit"), "fee": _l("Fee"), "refund": _l("Refund"),
                   "retained": _l("Retained"), "paid": _l("Paid so far"), "due": _l("Still due")}
DIFFERENCE_LABELS = {"price": _l("Total price"), "paid": _l("Paid so far"), "due": _l("Still due"),
                     "refund": _l("Refund"), "retained": _l("Retained"), "fee": _l("Fee"),
                     "signing_required": _l("To pay before signing")}
# The difference's parts in the order people read them; the grid's one line leaves out the long ones.
DIFFERENCE_ORDER = ("unit", "payment_method", "buyers", "price", "paid", "due", "signing_required", "refund",
                    "retained", "fee")
IN_ONE_LINE = ("unit", "payment_method", "price", "paid", "due", "refund", "retained", "fee")


def _unit_name(value) -> str:
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        unit = db.session.get(Unit, int(value))
        return str(unit) if unit is not None else str(value)
    return str(value) if value not in (None, "") else EMPTY


def buyer_line(buyer: dict) -> str:
    """One buyer as a line: name · document · number · phone · share (masked for the reader)."""
    parts = [buyer.get("name") or EMPTY, str(choice_label("deal_buyer", "id_type", buyer.get("id_type") or "")),
             mask_value(current_user, "id_number", buyer.get("id_number") or ""),
             mask_value(current_user, "phone", buyer.get("phone") or ""), f"{_share(buyer.get('share', ''))} %"]
    return " · ".join(p for p in parts if p)


def shown_value(key: str, value):
    """A proposal's or `before`'s value as people read it (money, units, methods, buyers masked)."""
    if value is None or value == "" or value == []:
        return EMPTY
    if key in ("unit_id", "unit"):
        return _unit_name(value)
    if key == "payment_method":
        return str(choice_label("subscription", "payment_method", value))
    if key == "buyers":
        return Markup("<br>").join(escape(buyer_line(b)) for b in value if isinstance(b, dict))
    if isinstance(value, bool):
        return gettext("Yes") if value else gettext("No")
    if key in MONEY_KEYS:
        return _money_text(value)
    return str(value)


# A proposal's key and the key of the same term in `before`, where they differ.
BEFORE_KEYS = {"unit_id": ("unit_id", "unit"), "payment_method": ("payment_method", "method")}


def _before(change, key):
    """The deal's term `key` when the change was asked for; the deal's own while it is not applied
    (a request recorded without that term)."""
    before = change.before or {}
    for name in BEFORE_KEYS.get(key, (key,)):
        if name in before:
            return before[name]
    if change.applied_at is not None:
        return None
    sub = change.subscription
    return {"unit_id": sub.unit_id, "payment_method": sub.payment_method, "price": sub.price,
            "buyers": buyer_rows(sub) if key == "buyers" else None}.get(key)


def before_after(change) -> list[tuple]:
    """The details' table: every field of the proposal against the deal's terms before."""
    return [(PROPOSAL_LABELS.get(key, key), shown_value(key, _before(change, key)), shown_value(key, value))
            for key, value in (change.proposal or {}).items()]


def _difference_part(key, value) -> str:
    if key == "buyers" and isinstance(value, (list, tuple)) and len(value) == 2:
        return " → ".join("、".join(str(b) for b in side) if isinstance(side, list) else str(side) for side in value)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        first, then = value
        if key in ("unit", "unit_id", "payment_method"):
            first, then = shown_value(key, first), shown_value(key, then)
        else:
            first, then = _money_text(first), _money_text(then)
        return f"{first} → {then}" if first != then else str(first)
    return str(shown_value(key, value))


def difference_items(change, keys=DIFFERENCE_ORDER) -> list[tuple[str, str]]:
    """The difference as (label, text): total price, paid, still due; unit, method and buyers
    where they change; refund, retained and fee for a cancellation (models.change_apply.difference)."""
    difference = change.difference or {}
    return [(str(DIFFERENCE_LABELS.get(k) or PROPOSAL_LABELS.get(k, k)), _difference_part(k, difference[k]))
            for k in keys if k in difference]


def difference_line(change) -> str:
    """总价 ¥1,200,000.00 → ¥1,250,000.00 · 已付 ¥400,000.00 · 待付 ¥800,000.00 → ¥850,000.00"""
    return " · ".join(f"{label} {text}" for label, text in difference_items(change, IN_ONE_LINE))


def _number(view, context, change, name):
    return str(change)


def _deal(attribute):
    def formatter(view, context, change, name):
        value = getattr(change.subscription, attribute)
        return str(value) if value is not None else ""
    return formatter


def _changed(form, change, result) -> str:
    return gettext("%(number)s: %(status)s.", number=str(result),
                   status=choice_label("change_request", "status", result.status))


def _decidable(change) -> bool:
    """The user may decide the request's current step now (the domain's own answer, asked once a
    page for each request: three buttons read it)."""
    return change.status == "requested" and per_request(
        ("change-decidable", change.id), lambda: decision_refusal(db.session, current_user, change) is None)


def _requester(change) -> bool:
    return change.requested_by_id == current_user.id


def _one_change() -> object:
    return _l("Select exactly one change request.")


def _change_page(change) -> dict:
    return {**_deal_page(change.subscription), "change": change}


def _decision_step(name: str, text, decision: str) -> FormStep:
    return FormStep(
        name, text, DecisionForm, one=_one_change(), again=True, context=_change_page,
        unknown=_l("This change request does not exist."),
        run=lambda by, form, change: decide_change(db.session, by, change.id, decision, note=form.note.data,
                                                   key=form.sent_key(), today=office_today()),
        done=_changed)


def _resubmit_form(rows):
    return KINDS[rows[0].kind].form if rows and rows[0].kind in KINDS else ChangeForm


CHANGE_STEPS = form_steps(
    _decision_step("reject", _l("Reject"), "reject"),
    _decision_step("send_back", _l("Send back"), "send_back"),
    FormStep("resubmit", _l("Resubmit"), ChangeForm, one=_one_change(), again=True, form_for=_resubmit_form,
             template="admin/change_step.html", unknown=_l("This change request does not exist."),
             context=_change_page,
             fill=lambda change: {**KINDS[change.kind].fill(change.subscription, change.proposal),
                                  "reason": change.reason},
             prepare=lambda form, rows: (KINDS[rows[0].kind].prepare(form, rows[0].subscription)
                                         if rows and KINDS[rows[0].kind].prepare else None),
             run=lambda by, form, change: resubmit_change(
                 db.session, by, change.id, reason=form.reason.data,
                 proposal=KINDS[change.kind].proposal(form, _known_buyers(change.subscription, change)),
                 key=form.sent_key(), today=office_today()),
             done=_changed),
    FormStep("withdraw", _l("Withdraw the request"), ReasonForm, one=_one_change(), context=_change_page,
             run=lambda by, form, change: withdraw_change(db.session, by, change.id, reason=form.reason.data),
             done=_changed, missing=_l("Say why.")))

def _send_addenda(changes) -> None:
    """The addenda the last approvals requested (models.change_requests.decide_change), handed to
    the workers once committed; with the queue down they stay queued for the sweep to send."""
    applied = [change.id for change in changes if change.status == "approved"]
    if not applied:
        return
    documents = db.session.scalars(select(Document).where(
        Document.kind == "addendum", Document.subject_id.in_(applied), Document.status == "queued",
        Document.job_id.is_(None))).all()
    try:
        enqueue_documents(db.session, documents)
    except QueueUnavailable:
        flash(gettext("The addendum is recorded but the job queue cannot be reached; it will be rendered as soon "
                      "as it is back."), "warning")


APPROVAL = decision_steps(
    lambda by, change, decision: decide_change(db.session, by, change.id, decision, today=office_today()),
    lambda n: gettext("Approval recorded on %(n)d change requests.", n=n),
    Decision("approve", _l("Approve"), _l("Approve this change of the deal?"), "approve"),
    after=_send_addenda)


class ChangeRequestView(CHANGE_STEPS, APPROVAL, ReadOnlyView):
    """变更申请: every change of a live deal, its approval steps and what it does to the money
    (R-CHG-1). Agents see their own deals' requests (ChangeRequest.owned_by)."""

    verbs = frozenset({"list", "details", "export", "action"})
    column_list = ("number", "subscription", "customer", "unit", "kind", "status", "waiting_for",
                   "requested_by", "requested_at", "figures")
    column_details_list = ("number", "subscription", "customer", "unit", "kind", "status", "waiting_for",
                           "reason", "requested_by", "requested_at", "decision_note", "decided_by", "decided_at",
                           "applied_at")
    column_export_list = ("number", "subscription", "customer", "unit", "kind", "status", "waiting_for",
                          "reason", "requested_by", "requested_at", "figures", "decision_note", "decided_at")
    column_labels = {"number": _l("Change number")}
    column_sortable_list = ("kind", "status", "requested_at", ("subscription", "subscription.number"))
    column_searchable_list = ("subscription.number", "subscription.customer_name")
    unit_search = "subscription.unit"
    column_filters = ("status", "kind", "subscription.project.name", "requested_at")
    column_formatters = {
        "number": _number, "customer": _deal("customer_name"), "unit": _deal("unit"),
        "waiting_for": lambda v, c, change, n: waiting_for(change),
        "figures": lambda v, c, change, n: difference_line(change)}
    column_formatters_export = {**column_formatters}
    details_template = "admin/change_request_details.html"
    extra_endpoints = {"reject_view": "action", "send_back_view": "action", "resubmit_view": "action",
                       "withdraw_view": "action"}
    operations = {"approve": "change.decide", "reject": "change.decide", "send_back": "change.decide",
                  "reject_view": "change.decide", "send_back_view": "change.decide",
                  "resubmit": "change.request", "resubmit_view": "change.request",
                  "withdraw": "change.withdraw", "withdraw_view": "change.withdraw"}
    row_steps = (
        StepButton("approve", "change.decide", when=_decidable),
        StepButton("reject", "change.decide", when=_decidable, icon="fa-times", style="danger"),
        StepButton("send_back", "change.decide", when=_decidable, icon="fa-reply", style="warning"),
        StepButton("resubmit", "change.request", when=lambda c: c.status == "sent_back" and _requester(c),
                   icon="fa-repeat"),
        StepButton("withdraw", "change.withdraw", when=lambda c: c.status in OPEN_CHANGE and _requester(c),
                   icon="fa-undo", style="danger"))

    def get_query(self):
        query = super().get_query().options(
            joinedload(ChangeRequest.subscription).joinedload(Subscription.unit).joinedload(Unit.building),
            joinedload(ChangeRequest.requested_by))
        if has_request_context() and not request.args.get("sort"):
            # Waiting first, newest first (a column chosen to sort by comes after: Flask-Admin's).
            query = query.order_by(case((ChangeRequest.status.in_(OPEN_CHANGE), 0), else_=1),
                                   ChangeRequest.requested_at.desc())
        return query

    def render(self, template, **kwargs):
        change = kwargs.get("model")
        if template == self.details_template and change is not None:
            kwargs.update(before_after=before_after(change), difference=difference_items(change),
                          steps=change.steps, role_name=role_label,
                          decision_name=lambda value: choice_label("change_step", "decision", value))
        return super().render(template, **kwargs)


class DealBuyerView(ReadOnlyView):
    """权益人: a deal's buyers and their shares, current first; former buyers kept (R-CHG-3)."""

    verbs = frozenset({"list", "details"})
    column_list = ("subscription", "seq", "name", "id_type", "id_number", "phone", "share", "added_by_change",
                   "ended_at")
    column_details_list = column_list + ("created_at",)
    column_searchable_list = ("subscription.number", "name")
    unit_search = "subscription.unit"
    column_filters = ("subscription.project.name", "ended_at")
    column_sortable_list = ("seq", "name", "ended_at", ("subscription", "subscription.number"))
    column_formatters = {
        "share": lambda v, c, buyer, n: f"{_share(buyer.share)} %",
        "added_by_change": lambda v, c, buyer, n: (f"BG-{buyer.added_by_change_id:06d}"
                                                   if buyer.added_by_change_id else EMPTY)}
    # ended_at: the base view's one writer of times (office time, "—" for a current buyer)

    def get_query(self):
        query = super().get_query().options(joinedload(DealBuyer.subscription))
        if has_request_context() and not request.args.get("sort"):
            query = query.order_by(DealBuyer.ended_at.is_not(None), DealBuyer.subscription_id.desc(),
                                   DealBuyer.seq)
        return query
