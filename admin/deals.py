"""Subscriptions and price approvals: the agreement form, confirmation, deposit, withdrawal."""
from __future__ import annotations

from flask import flash, request
from markupsafe import escape
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.helpers import get_form_data
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from sqlalchemy.orm import joinedload
from wtforms.fields.choices import SelectChoice

from models import (ArchiveRecord, Contract, ContractStep, Lead, PriceApproval, Subscription,
                    Unit, db)
from models.base import office_today
from models.deals import (WITHDRAWABLE, confirm_refusal, confirm_subscription, decide_price, subscribe,
                          withdraw_subscription)
from models.payments import record_deposit
from models.labels import choice_label
from models.contracts import (book_signing, booking_refusal, issue_stamped_copy, receive_original,
                              sign_contract, step_refusal, steps_late, update_step)
from models.ladder import request_signing_extension, signing_extension_refusal
from models.money import format_money
from models.payments import record_payment
from models.timeline import deal_timeline
from models.identity import id_document_problem
from models.leads import customers_for_unit
from models.permissions import sees_whole
from models.privacy import mask_value

from .base import ALREADY_DONE, ReadOnlyView, money_formatter, row_id, run_domain
from .filters import AgentFilter, of_agent
from .steps import StepButton
from .documents import DocumentButton, document_actions
from .forms import (BookingForm, DepositForm, ExtensionRequestForm, OriginalForm, PaymentForm, ReasonForm,
                    SigningForm, StampedCopyForm, StepForm, SubscriptionForm)
from .money import payment_choices, payment_form



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


class SubscriptionView(document_actions("subscription_agreement", "forfeit_notice"), ReadOnlyView):
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
                       "book_view": "action"}
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
                   icon="fa-undo", style="danger"))

    def render(self, template, **kwargs):
        if template == self.details_template and kwargs.get("model") is not None:
            kwargs["timeline"] = deal_timeline(db.session, kwargs["model"].id)
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

    # --- the steps after it, each by its role ---------------------------------------------------
    def _selected(self, ids):
        return self.get_query().filter(Subscription.id.in_([int(i) for i in ids])).all()

    @action("confirm", _l("Confirm (sales control)"),
            _l("Confirm the selected subscriptions against sales control?"))
    def action_confirm(self, ids):
        subs = self._selected(ids)
        if run_domain(lambda by: [confirm_subscription(db.session, by, s.id) for s in subs]):
            flash(gettext("%(n)d subscriptions confirmed.", n=len(subs)), "success")

    @action("deposit", _l("Record the deposit (finance)"))
    def action_deposit(self, ids):
        subs = self._selected(ids)
        if len(subs) != 1:
            flash(gettext("Select exactly one subscription to record its deposit."), "error")
            return None
        sub = subs[0]
        form = DepositForm(subscription_id=sub.id, amount=sub.deposit, paid_on=office_today())
        return self.render("admin/deal_step.html", form=form, subscription=sub,
                           action_url=self.get_url(".deposit_view"), title=_l("Record the deposit"))

    @expose("/deposit/", methods=("POST",))
    def deposit_view(self):
        form = DepositForm(get_form_data())
        sub = self.get_query().filter(Subscription.id == int(form.subscription_id.data or 0)).one_or_none() \
            if str(form.subscription_id.data or "").isdigit() else None
        if sub is None:
            flash(gettext("This subscription does not exist."), "error")
        elif not form.validate():
            return self.render("admin/deal_step.html", form=form, subscription=sub,
                               action_url=self.get_url(".deposit_view"), title=_l("Record the deposit"))
        else:
            payment = run_domain(lambda by: record_deposit(
                db.session, by, sub.id, amount=form.amount.data, paid_on=form.paid_on.data,
                channel=form.channel.data, bank_ref=form.bank_ref.data, key=form.sent_key()))
            if payment:
                flash(gettext("Deposit recorded, receipt %(no)s.", no=payment.receipt_no), "success")
            elif payment is not ALREADY_DONE:
                return self.render("admin/deal_step.html", form=form, subscription=sub,
                                   action_url=self.get_url(".deposit_view"),
                                   title=_l("Record the deposit"))
        return self.back()

    @action("withdraw", _l("Withdraw (before the deposit)"))
    def action_withdraw(self, ids):
        subs = self._selected(ids)
        form = ReasonForm(ids=",".join(str(s.id) for s in subs))
        return self.render("admin/deal_step.html", form=form, subscriptions=subs,
                           action_url=self.get_url(".withdraw_view"), title=_l("Withdraw"))

    @expose("/withdraw/", methods=("POST",))
    def withdraw_view(self):
        form = ReasonForm(get_form_data())
        ids = [i for i in (form.ids.data or "").split(",") if i.isdigit()]
        subs = self._selected(ids) if ids else []
        if not form.validate() or not subs:
            flash(gettext("Say why, and select at least one subscription."), "error")
        elif run_domain(lambda by: [withdraw_subscription(db.session, by, s.id, form.reason.data)
                                    for s in subs]):
            flash(gettext("%(n)d subscriptions withdrawn; their units are available again.",
                          n=len(subs)), "success")
        return self.back()


    @action("payment", _l("Record a payment (finance)"))
    def action_payment(self, ids):
        subs = self._selected(ids)
        if len(subs) != 1:
            flash(gettext("Select exactly one subscription to record a payment."), "error")
            return None
        return self.render("admin/deal_step.html", form=payment_form(subs[0]), subscription=subs[0],
                           action_url=self.get_url(".payment_view"), title=_l("Record a payment"))

    @expose("/payment/", methods=("POST",))
    def payment_view(self):
        form = PaymentForm(get_form_data())
        sub_id = form.subscription_id.data
        sub = self.get_query().filter(Subscription.id == int(sub_id)).one_or_none() \
            if str(sub_id or "").isdigit() else None
        if sub is None:
            flash(gettext("This subscription does not exist."), "error")
            return self.back()
        payment_choices(form, sub)
        if form.validate():
            payment = run_domain(lambda by: record_payment(
                db.session, by, sub.id, amount=form.amount.data, paid_on=form.paid_on.data,
                channel=form.channel.data, bank_ref=form.bank_ref.data,
                instalment_id=int(form.instalment_id.data) if form.instalment_id.data else None,
                key=form.sent_key()))
            if payment:
                flash(gettext("Payment recorded, receipt %(no)s.", no=payment.receipt_no), "success")
                return self.back()
            if payment is ALREADY_DONE:
                return self.back()
        return self.render("admin/deal_step.html", form=form, subscription=sub,
                           action_url=self.get_url(".payment_view"), title=_l("Record a payment"))


    @action("book", _l("Book the signing"))
    def action_book(self, ids):
        subs = self._selected(ids)
        if len(subs) != 1:
            flash(gettext("Select exactly one subscription to book its signing."), "error")
            return None
        return self.render("admin/deal_step.html", form=BookingForm(ids=str(subs[0].id)),
                           subscription=subs[0], action_url=self.get_url(".book_view"),
                           title=_l("Book the signing"))

    @expose("/book/", methods=("POST",))
    def book_view(self):
        form = BookingForm(get_form_data())
        subs = self._selected([i for i in (form.ids.data or "").split(",") if i.isdigit()])
        if not form.validate() or len(subs) != 1:
            flash(gettext("Choose the kind of contract and the appointment."), "error")
        else:
            contract = run_domain(lambda by: book_signing(
                db.session, by, subs[0].id, appointment_at=form.appointment_at.data, kind=form.kind.data))
            if contract:
                flash(gettext("Signing booked for %(at)s; the customer brings: %(checklist)s",
                              at=f"{form.appointment_at.data:%Y-%m-%d %H:%M}",
                              checklist="、".join(contract.checklist.splitlines())), "success")
        return self.back()


def _deal_unit(view, context, row, name):
    """The deal's unit by its displayed name ("1栋-2301")."""
    return str(row.subscription.unit)


def _percent(view, context, row, name):
    return f"{getattr(row, name)}%"


class PriceApprovalView(ReadOnlyView):
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
        "unit": _deal_unit, "discount": money_formatter, "discount_percent": _percent}
    column_formatters_export = {"unit": _deal_unit, "discount": money_formatter, "discount_percent": _percent}
    unit_search = "subscription.unit"
    row_steps = (StepButton("approve", "price.decide", when=lambda r: r.status == "requested"),
                 StepButton("reject", "price.decide", when=lambda r: r.status == "requested", icon="fa-times", style="danger"))

    def get_query(self):
        # The deal's unit (with its building) and agent with the page: one query, not three a row.
        deal = joinedload(PriceApproval.subscription)
        return super().get_query().options(deal.joinedload(Subscription.unit).joinedload(Unit.building),
                                           deal.joinedload(Subscription.agent))

    def _decide(self, ids, approve):
        rows = self.get_query().filter(PriceApproval.id.in_([int(i) for i in ids])).all()
        if run_domain(lambda by: [decide_price(db.session, by, r.id, approve) for r in rows]):
            flash(gettext("%(n)d price requests decided.", n=len(rows)), "success")

    @action("approve", _l("Approve the price"), _l("Approve these prices below the list price?"))
    def action_approve(self, ids):
        self._decide(ids, True)

    @action("reject", _l("Reject the price"), _l("Reject these prices? The agent must agree the list price "
                                                 "with the customer, or withdraw."))
    def action_reject(self, ids):
        self._decide(ids, False)


class ContractView(document_actions("signing_booking"), ReadOnlyView):
    """合同: booked from the payment progress, entered by the lawyer after signing (R-CON-2/4)."""

    column_list = ("number", "subscription", "subscription.customer_name", "unit", "kind", "status",
                   "appointment_at", "signing_due_on", "signed_on", "bank", "lawyer")
    column_labels = {"number": _l("Contract number")}
    column_sortable_list = ("number", ("subscription", "subscription.number"),
                            ("subscription.customer_name", "subscription.customer_name"),
                            ("unit", "subscription.unit.number"), "kind", "status", "appointment_at",
                            "signing_due_on", "signed_on", "bank", ("lawyer", "lawyer.display_name"))
    column_formatters = column_formatters_export = {"unit": _deal_unit}
    column_searchable_list = ("number", "subscription.number", "subscription.customer_name")
    unit_search = "subscription.unit"
    column_filters = ("status", "kind", "signed_on", "appointment_at", "subscription.project.name",
                      AgentFilter(Contract.subscription_id, where=of_agent(Contract.subscription_id)))
    extra_endpoints = {"sign_view": "action", "original_view": "action", "signing_extension_view": "action"}
    column_extra_row_actions = [DocumentButton("signing_booking")]
    row_steps = (StepButton("sign", "contract.sign", when=lambda c: c.status == "booked", icon="fa-pencil"),
                 StepButton("signing_extension", "signing.extension.request", icon="fa-clock-o",
                            why_not=lambda c: signing_extension_refusal(current_user, c)),
                 StepButton("original", "contract.archive", when=lambda c: c.status == "registered", icon="fa-archive"))

    def get_query(self):
        # The deal's unit (with its building) with the page: one query, not two a row.
        return super().get_query().options(
            joinedload(Contract.subscription).joinedload(Subscription.unit).joinedload(Unit.building))

    @action("signing_extension", _l("Request more time to sign"))
    def action_signing_extension(self, ids):
        rows = self.get_query().filter(Contract.id.in_([int(i) for i in ids])).all()
        if len(rows) != 1:
            flash(gettext("Select exactly one contract."), "error")
            return None
        return self.render("admin/deal_step.html", form=ExtensionRequestForm(ids=str(rows[0].id)),
                           subscription=rows[0].subscription, action_url=self.get_url(".signing_extension_view"),
                           title=_l("Request more time to sign"))

    @expose("/signing-extension/", methods=("POST",))
    def signing_extension_view(self):
        form = ExtensionRequestForm(get_form_data())
        ids = [int(i) for i in (form.ids.data or "").split(",") if i.isdigit()]
        rows = self.get_query().filter(Contract.id.in_(ids)).all() if ids else []
        if not form.validate() or len(rows) != 1:
            flash(gettext("Give the days (1 to 365) and the reason, and select at least one line."), "error")
        elif run_domain(lambda by: request_signing_extension(db.session, by, rows[0].id, form.days.data,
                                                             form.reason.data)):
            flash(gettext("Extension of the signing date requested; whoever decides it has been told."), "success")
        return self.back()

    @action("original", _l("Receive the original (archive)"))
    def action_original(self, ids):
        rows = self.get_query().filter(Contract.id.in_([int(i) for i in ids])).all()
        if len(rows) != 1:
            flash(gettext("Select exactly one contract."), "error")
            return None
        form = OriginalForm(ids=str(rows[0].id), received_on=office_today())
        return self.render("admin/deal_step.html", form=form, subscription=rows[0].subscription,
                           action_url=self.get_url(".original_view"), title=_l("Receive the original"))

    @expose("/original/", methods=("POST",))
    def original_view(self):
        form = OriginalForm(get_form_data())
        ids = [int(i) for i in (form.ids.data or "").split(",") if i.isdigit()]
        rows = self.get_query().filter(Contract.id.in_(ids)).all() if ids else []
        if not form.validate() or len(rows) != 1:
            flash(gettext("Give the date received and where the original is kept."), "error")
        elif run_domain(lambda by: receive_original(db.session, by, rows[0].id, received_on=form.received_on.data,
                                                    location=form.location.data)):
            flash(gettext("Original archived."), "success")
        return self.back()

    @action("sign", _l("Enter the signed contract (lawyer)"))
    def action_sign(self, ids):
        rows = self.get_query().filter(Contract.id.in_([int(i) for i in ids])).all()
        if len(rows) != 1:
            flash(gettext("Select exactly one contract."), "error")
            return None
        form = SigningForm(ids=str(rows[0].id), signed_on=office_today())
        return self.render("admin/deal_step.html", form=form, subscription=rows[0].subscription,
                           action_url=self.get_url(".sign_view"), title=_l("Enter the signed contract"))

    @expose("/sign/", methods=("POST",))
    def sign_view(self):
        form = SigningForm(get_form_data())
        ids = [int(i) for i in (form.ids.data or "").split(",") if i.isdigit()]
        rows = self.get_query().filter(Contract.id.in_(ids)).all() if ids else []
        if not form.validate() or len(rows) != 1:
            flash(gettext("Enter the contract number and the signing date."), "error")
        elif run_domain(lambda by: sign_contract(db.session, by, rows[0].id, number=form.number.data,
                                                 signed_on=form.signed_on.data, bank=form.bank.data)):
            flash(gettext("Contract %(number)s entered.", number=form.number.data), "success")
        return self.back()


class ContractStepView(ReadOnlyView):
    """签约后办理进度 (R-CON-6): the lawyer enters progress; agents read their customers' steps."""

    column_list = ("contract", "kind", "status", "promised_on", "done_on", "customer_action", "notes")
    column_filters = ("status", "kind", "promised_on")
    column_searchable_list = ("contract.number", "contract.subscription.customer_name")
    unit_search = "contract.subscription.unit"
    column_default_sort = ("promised_on", False)
    extra_endpoints = {"step_view": "action"}
    row_steps = (StepButton("step", "contract.step", icon="fa-pencil",
                            when=lambda s: s.status != "done" and s.contract.status != "rescinded",
                            why_not=lambda s: step_refusal(s, "in_progress"), explain=("R-CON-6",)),)

    @action("step", _l("Enter the progress (lawyer)"))
    def action_step(self, ids):
        rows = self.get_query().filter(ContractStep.id.in_([int(i) for i in ids])).all()
        if len(rows) != 1:
            flash(gettext("Select exactly one step."), "error")
            return None
        step = rows[0]
        form = StepForm(ids=str(step.id), status=step.status, promised_on=step.promised_on,
                        done_on=step.done_on, customer_action=step.customer_action, notes=step.notes)
        return self.render("admin/deal_step.html", form=form, subscription=step.contract.subscription,
                           action_url=self.get_url(".step_view"), title=_l("Enter the progress"))

    @expose("/step/", methods=("POST",))
    def step_view(self):
        form = StepForm(get_form_data())
        ids = [int(i) for i in (form.ids.data or "").split(",") if i.isdigit()]
        rows = self.get_query().filter(ContractStep.id.in_(ids)).all() if ids else []
        if not form.validate() or len(rows) != 1:
            flash(gettext("Choose the status of the step."), "error")
        elif run_domain(lambda by: update_step(
                db.session, by, rows[0].id, status=form.status.data, promised_on=form.promised_on.data,
                done_on=form.done_on.data, customer_action=form.customer_action.data, notes=form.notes.data)):
            flash(gettext("Progress saved."), "success")
        return self.back()


class ContractStepDueView(ReadOnlyView):
    """Procedures past their promised date, not done: the lawyer's worklist (R-CON-6)."""

    entity = "contract_step_due"
    choices_of = "contract_step"
    verbs = frozenset({"list", "details"})
    column_list = ("contract", "kind", "status", "promised_on", "customer_action")
    column_default_sort = ("promised_on", False)
    column_searchable_list = ("contract.number", "contract.subscription.customer_name")
    unit_search = "contract.subscription.unit"

    def _late(self, query):
        return query.filter(steps_late(office_today()))

    def get_query(self):
        return self._late(super().get_query())

    def get_count_query(self):
        return self._late(super().get_count_query())


class ArchiveRecordView(ReadOnlyView):
    """合同档案 — the contract register (R-CON-7): originals received, stamped copies issued."""

    column_list = ("contract", "received_on", "location", "notes")
    column_filters = ("received_on", "location")
    column_searchable_list = ("location", "contract.number")
    unit_search = "contract.subscription.unit"
    extra_endpoints = {"copy_view": "action"}
    row_steps = (StepButton("copy", "contract.archive", icon="fa-files-o"),)

    @action("copy", _l("Issue a stamped copy (archive)"))
    def action_copy(self, ids):
        rows = self.get_query().filter(ArchiveRecord.id.in_([int(i) for i in ids])).all()
        if len(rows) != 1:
            flash(gettext("Select exactly one contract."), "error")
            return None
        form = StampedCopyForm(ids=str(rows[0].id), issued_on=office_today())
        _staff_choices(form)
        return self.render("admin/deal_step.html", form=form, subscription=rows[0].contract.subscription,
                           action_url=self.get_url(".copy_view"), title=_l("Issue a stamped copy"))

    @expose("/copy/", methods=("POST",))
    def copy_view(self):
        form = StampedCopyForm(get_form_data())
        _staff_choices(form)
        ids = [int(i) for i in (form.ids.data or "").split(",") if i.isdigit()]
        rows = self.get_query().filter(ArchiveRecord.id.in_(ids)).all() if ids else []
        if not form.validate() or len(rows) != 1:
            flash(gettext("Choose who receives the copy and when."), "error")
        elif run_domain(lambda by: issue_stamped_copy(db.session, by, rows[0].id, to_user_id=form.to_user_id.data,
                                                      issued_on=form.issued_on.data, note=form.note.data)):
            flash(gettext("Stamped copy recorded."), "success")
        return self.back()


def _staff_choices(form):
    from models import User
    form.to_user_id.choices = [SelectChoice(u.id, str(u)) for u in
                               db.session.query(User).filter(User.active.is_(True)).order_by(User.username)]


class StampedCopyView(ReadOnlyView):
    column_list = ("record", "issued_to", "issued_on", "note")
    column_labels = {"record": _l("Contract archive"), "issued_to": _l("Given to"),
                     "issued_on": _l("Issued on"), "note": _l("Notes")}
