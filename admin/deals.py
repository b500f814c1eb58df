"""Subscriptions and price approvals: the agreement form, confirmation, deposit, withdrawal, payment,
booking the signing; and the kept records of deals that ended without a sale."""
from __future__ import annotations

from flask import flash, request
from markupsafe import Markup, escape
from flask_admin.helpers import get_form_data
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from sqlalchemy.orm import joinedload
from wtforms.fields.choices import SelectChoice

from models import Lead, PriceApproval, Subscription, Unit, db
from models.base import office_today
from models.deals import (WITHDRAWABLE, confirm_refusal, confirm_subscription, decide_price, subscribe,
                          withdraw_subscription)
from models.payments import record_deposit
from models.labels import choice_label
from models.contracts import book_signing, booking_refusal
from models.money import format_money
from models.payments import record_payment
from models.archive import customer_of, kept_record, unit_of
from models.timeline import deal_timeline
from models.identity import id_document_problem
from models.leads import customers_for_unit
from models.permissions import sees_whole
from models.privacy import mask_value

from .base import ReadOnlyView, money_formatter, row_id, run_domain
from .filters import AgentFilter
from .step_actions import Decision, FormStep, decision_steps, form_steps
from .steps import StepButton
from .deal_sections import sections_for
from .changes import REQUEST_BUTTONS, REQUEST_STEPS, REQUESTS, deal_context, status_with_change
from .documents import DocumentButton, document_actions
from .forms import BookingForm, DepositForm, PaymentForm, ReasonForm, SubscriptionForm
from .money import payment_choices


def _prefill(lead: Lead) -> dict:
    """What the agreement form takes from the customer: the document's kind, its number (whole
    only to a role that reads it whole — for the others the field stays empty, which means the
    registered number, named masked), the address, and a line naming the customer."""
    whole = sees_whole(current_user, "id_number")
    valid = lead.id_number and id_document_problem(lead.id_type, lead.id_number) is None
    if lead.id_number:
        note = gettext("%(name)s · %(phone)s · registered %(kind)s %(number)s", name=lead.name,
                       phone=mask_value(current_user, "phone", lead.phone),
                       kind=choice_label("lead", "id_type", lead.id_type),
                       number=mask_value(current_user, "id_number", lead.id_number))
        note += " · " + (gettext("leave the number empty to use it") if valid and not whole else
                         "" if valid else gettext("not valid: enter the customer's valid document"))
    else:
        note = gettext("%(name)s · %(phone)s · no identity document registered yet", name=lead.name,
                       phone=mask_value(current_user, "phone", lead.phone))
    return {"data-id-type": lead.id_type, "data-id-number": lead.id_number if whole and valid else "",
            "data-address": lead.address or "", "data-id-note": note.rstrip(" ·")}


def _open_lines(form, subs) -> None:
    """The plan lines a payment may go to: the deal's open lines (or none chosen: the oldest first)."""
    if len(subs) == 1:
        payment_choices(form, subs[0])


def _of_the_deal(sub) -> dict:
    return {"subscription": sub}


SUBSCRIPTION_STEPS = form_steps(
    FormStep("deposit", _l("Record the deposit (finance)"), DepositForm, title=_l("Record the deposit"),
             one=_l("Select exactly one subscription to record its deposit."), again=True, key_field="subscription_id",
             unknown=_l("This subscription does not exist."), context=_of_the_deal,
             fill=lambda sub: {"amount": sub.deposit, "paid_on": office_today()},
             run=lambda by, form, sub: record_deposit(
                 db.session, by, sub.id, amount=form.amount.data, paid_on=form.paid_on.data,
                 channel=form.channel.data, bank_ref=form.bank_ref.data, key=form.sent_key()),
             done=lambda form, sub, payment: gettext("Deposit recorded, receipt %(no)s.", no=payment.receipt_no)),
    FormStep("payment", _l("Record a payment (finance)"), PaymentForm, title=_l("Record a payment"),
             one=_l("Select exactly one subscription to record a payment."), again=True, key_field="subscription_id",
             unknown=_l("This subscription does not exist."), context=_of_the_deal, prepare=_open_lines,
             fill=lambda sub: {"paid_on": office_today()},
             run=lambda by, form, sub: record_payment(
                 db.session, by, sub.id, amount=form.amount.data, paid_on=form.paid_on.data,
                 channel=form.channel.data, bank_ref=form.bank_ref.data,
                 instalment_id=int(form.instalment_id.data) if form.instalment_id.data else None,
                 key=form.sent_key()),
             done=lambda form, sub, payment: gettext("Payment recorded, receipt %(no)s.", no=payment.receipt_no)),
    FormStep("withdraw", _l("Withdraw (before the deposit)"), ReasonForm, title=_l("Withdraw"),
             context=lambda subs: {"subscriptions": subs},
             run=lambda by, form, subs: [withdraw_subscription(db.session, by, s.id, form.reason.data) for s in subs],
             done=lambda form, subs, result: gettext("%(n)d subscriptions withdrawn; their units are available "
                                                     "again.", n=len(subs)),
             missing=_l("Say why, and select at least one subscription.")),
    FormStep("book", _l("Book the signing"), BookingForm,
             one=_l("Select exactly one subscription to book its signing."),
             context=_of_the_deal,
             run=lambda by, form, sub: book_signing(db.session, by, sub.id, appointment_at=form.appointment_at.data,
                                                    kind=form.kind.data),
             done=lambda form, sub, contract: gettext(
                 "Signing booked for %(at)s; the customer brings: %(checklist)s",
                 at=f"{form.appointment_at.data:%Y-%m-%d %H:%M}", checklist="、".join(contract.checklist.splitlines())),
             missing=_l("Choose the kind of contract and the appointment.")))


CONFIRMATION = decision_steps(
    lambda by, sub, _: confirm_subscription(db.session, by, sub.id),
    lambda n: gettext("%(n)d subscriptions confirmed.", n=n),
    Decision("confirm", _l("Confirm (sales control)"), _l("Confirm the selected subscriptions against sales control?"),
             None))


class SubscriptionView(document_actions("subscription_agreement", "forfeit_notice"), SUBSCRIPTION_STEPS, CONFIRMATION,
                       REQUEST_STEPS, ReadOnlyView):
    """认购单. Created from the board by an agent; each later step by its role, in order (R-SUB-2)."""

    column_list = ("number", "project", "unit", "lead", "agent", "price", "deposit",
                   "payment_method", "status", "subscribed_on", "checked_by")
    column_labels = {"number": _l("Subscription number")}
    column_searchable_list = ("number", "customer_name", "unit.number", "lead.phone")
    unit_search = "unit"
    column_filters = ("status", "payment_method", "subscribed_on", "project.name",
                      AgentFilter(Subscription.agent_id))
    column_details_list = ("number", "status", "project", "unit", "lead", "agent", "price", "deposit",
                           "payment_method", "subscribed_on", "deposit_due_on", "customer_name",
                           "customer_id_type", "customer_address", "price_reason", "checked_by", "checked_at",
                           "withdrawn_at", "forfeited_at", "expired_at", "rescinded_at",
                           "created_at")  # never the ID number
    extra_endpoints = {"deposit_view": "action", "withdraw_view": "action", "payment_view": "action",
                       "book_view": "action", **{f"{name}_view": "action" for name in REQUESTS}}
    # A change of the deal (R-CHG-1): its form and its POST only to roles that may request one.
    operations = {**{name: "change.request" for name in REQUESTS},
                  **{f"{name}_view": "change.request" for name in REQUESTS}}
    details_template = "admin/subscription_details.html"
    column_extra_row_actions = [DocumentButton("subscription_agreement"), DocumentButton("forfeit_notice")]
    row_steps = (
        StepButton("confirm", "subscription.confirm", when=lambda s: s.status == "draft",
                   why_not=lambda s: confirm_refusal(db.session, s), explain=("R-PRICE-2",)),
        StepButton("deposit", "subscription.deposit", when=lambda s: s.status == "confirmed", icon="fa-money"),
        StepButton("payment", "payment.record", when=lambda s: s.status in ("active", "contracted"),
                   icon="fa-money"),
        StepButton("book", "contract.book", icon="fa-calendar",  # booking again moves the appointment
                   when=lambda s: s.status == "active" and all(c.status == "booked" for c in s.contracts),
                   why_not=lambda s: booking_refusal(db.session, current_user, s), explain=("R-CON-1",)),
        StepButton("withdraw", "subscription.withdraw", when=lambda s: s.status in WITHDRAWABLE,
                   icon="fa-undo", style="danger"),
        *REQUEST_BUTTONS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The deal's status reads "Active · change pending" while a change waits (R-CHG-1).
        self.column_formatters = {**self.column_formatters,
                                  "status": _with_handover(status_with_change(self.column_formatters["status"]))}

    def render(self, template, **kwargs):
        if template == self.details_template and kwargs.get("model") is not None:
            kwargs["timeline"] = deal_timeline(db.session, kwargs["model"].id)
            kwargs.update(deal_context(kwargs["model"]))
            kwargs["deal_sections"] = sections_for(kwargs["model"])
        return super().render(template, **kwargs)

    # --- the agreement ------------------------------------------------------------------------
    def create_form(self, obj=None):
        form = SubscriptionForm(get_form_data())
        unit_id = request.args.get("unit_id") or form.unit_id.data
        unit = db.session.get(Unit, row_id(unit_id)) if row_id(unit_id) else None
        form.unit_id.data = unit.id if unit else ""
        if unit is None:
            form.lead_id.choices = []
            return form
        project_id = unit.building.project_id
        leads = customers_for_unit(db.session, current_user, project_id, "subscribe", 500)
        form.lead_id.choices = [SelectChoice(lead.id, str(lead), render_kw=_prefill(lead)) for lead in leads]
        if request.method == "GET":
            form.price.data = unit.list_price
            form.subscribed_on.data = office_today()
            # The customer's own document, name and phone (issue 19, item 13): the customer the
            # link names, or the one the unit is held for, or the first of the list.
            chosen = row_id(request.args.get("lead_id")) or unit.held_for_lead_id
            lead = next((l for l in leads if l.id == chosen), leads[0] if leads else None)
            if lead is not None:
                form.lead_id.data = lead.id
                prefill = _prefill(lead)
                form.id_type.data = prefill["data-id-type"]
                form.id_number.data = prefill["data-id-number"]
                form.address.data = prefill["data-address"]
                form.id_number.description = escape(prefill["data-id-note"])  # shown |safe by Flask-Admin
        form.lead_id.description = gettext(
            "Unit %(unit)s · %(layout)s · %(area)s m² · list price %(price)s · %(status)s",
            unit=str(unit), layout=unit.layout, area=unit.area, price=format_money(unit.list_price),
            status=choice_label("unit", "status", unit.status))
        form.price.description = gettext("The list price is %(price)s; a lower price needs the "
                                         "vice-president's approval.", price=format_money(unit.list_price))
        return form

    def create_model(self, form):
        if not str(form.unit_id.data).isdigit():
            flash(gettext("Choose a unit on the sales-control board first."), "error")
            return False
        return run_domain(lambda by: subscribe(
            db.session, by, unit_id=int(form.unit_id.data), lead_id=form.lead_id.data,
            payment_method=form.payment_method.data, deposit=form.deposit.data,
            id_type=form.id_type.data, id_number=form.id_number.data, address=form.address.data,
            price=form.price.data,
            price_reason=form.price_reason.data, subscribed_on=form.subscribed_on.data,
            deposit_due_on=form.deposit_due_on.data))


def _with_handover(inner):
    """The deal's status on the grid, with "handed over" once the keys are (R-AFT-4)."""
    def formatter(view, context, sub, name):
        shown = inner(view, context, sub, name)
        if sub.handed_over_on is None:
            return shown
        return Markup('%s <span class="badge badge-status status-handed_over" title="%s">%s</span>') % (
            shown, sub.handed_over_on, gettext("Handed over"))
    return formatter


def deal_unit(view, context, row, name):
    """The deal's unit by its displayed name ("1栋-2301")."""
    return str(row.subscription.unit)


def _percent(view, context, row, name):
    return f"{getattr(row, name)}%"


PRICE_DECISIONS = decision_steps(
    lambda by, price_request, approve: decide_price(db.session, by, price_request.id, approve),
    lambda n: gettext("%(n)d price requests decided.", n=n),
    Decision("approve", _l("Approve the price"), _l("Approve these prices below the list price?"), True),
    Decision("reject", _l("Reject the price"), _l("Reject these prices? The agent must agree the list price "
                                                  "with the customer, or withdraw."), False))


class PriceApprovalView(PRICE_DECISIONS, ReadOnlyView):
    """Prices below the list price, waiting for the vice-president (R-PRICE-2)."""

    column_list = ("subscription", "subscription.customer_name", "unit", "subscription.agent", "list_price",
                   "price", "discount", "discount_percent", "reason", "status", "requested_at", "decided_at")
    column_details_list = column_export_list = column_list
    column_sortable_list = (("subscription", "subscription.number"),
                            ("subscription.customer_name", "subscription.customer_name"),
                            ("unit", "subscription.unit.number"),
                            ("subscription.agent", "subscription.agent.display_name"),
                            "list_price", "price", "discount", "discount_percent", "status", "requested_at",
                            "decided_at")
    column_searchable_list = ("subscription.number", "subscription.customer_name")
    column_filters = ("status",)
    column_formatters = column_formatters_detail = {
        "unit": deal_unit, "discount": money_formatter, "discount_percent": _percent}
    column_formatters_export = {"unit": deal_unit, "discount": money_formatter, "discount_percent": _percent}
    unit_search = "subscription.unit"
    row_steps = (StepButton("approve", "price.decide", when=lambda r: r.status == "requested"),
                 StepButton("reject", "price.decide", when=lambda r: r.status == "requested", icon="fa-times", style="danger"))

    def get_query(self):
        # The deal's unit (with its building) and agent with the page: one query, not three a row.
        deal = joinedload(PriceApproval.subscription)
        return super().get_query().options(deal.joinedload(Subscription.unit).joinedload(Unit.building),
                                           deal.joinedload(Subscription.agent))


def _kept_customer(view, context, row, name):
    """The customer as kept: name and phone, the phone masked for the reader (models/privacy.py)."""
    return customer_of(current_user, row.snapshot or {})


_kept_customer.masks_personal_data = True


class LeadArchiveView(ReadOnlyView):
    """挞定/退订客户档案: each deal that ended without a sale (forfeited, withdrawn, rescinded),
    its customer's records kept apart (R-PAY-5), read as a record (models/archive.py)."""

    column_list = ("subscription.number", "customer", "unit", "reason", "archived_at")
    column_sortable_list = ("archived_at", "reason", ("subscription.number", "subscription.number"))
    column_default_sort = ("archived_at", True)
    column_searchable_list = ("subscription.number", "lead.name")
    column_labels = {"lead.name": _l("Customer name")}
    column_filters = ("reason", "archived_at")
    column_formatters = {"customer": _kept_customer,
                         "unit": lambda v, c, row, n: unit_of(db.session, row.snapshot or {})}
    details_template = "admin/archive_details.html"

    def render(self, template, **kwargs):
        row = kwargs.get("model")
        if template == self.details_template and row is not None:
            kwargs["record"] = kept_record(db.session, current_user, row, self.column_labels)
            kwargs["timeline"] = deal_timeline(db.session, row.subscription_id) if row.subscription_id else []
        return super().render(template, **kwargs)
