"""Late fees and other charges (R-AFT-1, R-AFT-3): the grid of what buyers owe beside the plan,
finance's payment of any charge, the requests to waive a late fee and their decisions, and the
deal page's section listing a deal's charges."""
from __future__ import annotations

from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user

from models import Charge, LateFeeWaiver, db
from models.base import office_today
from models.charges import OUTSTANDING, charges_owed, decide_waiver, record_charge_payment, request_waiver, waiver_refusal
from models.deals import works_on_deal
from models.labels import choice_label
from models.money import format_money
from models.permissions import can, can_do

from .base import ReadOnlyView
from .deal_sections import deal_section
from .filters import AgentFilter, of_agent
from .forms import ChargePaymentForm, WaiverRequestForm
from .step_actions import Decision, FormStep, decision_steps, form_steps
from .steps import StepButton


class OutstandingFilter(BaseSQLAFilter):
    """Charges still owed on a live deal (models.charges.charges_owed), or the rest."""

    def apply(self, query, value, alias=None):
        owed = charges_owed()
        return query.filter(owed if value == "1" else ~owed)

    def operation(self):
        return gettext("is")


def _charge_of(charge) -> dict:
    return {"charge": charge}


CHARGE_STEPS = form_steps(
    FormStep("pay", _l("Record a payment of the charge"), ChargePaymentForm, one=_l("Select exactly one charge."),
             again=True, context=_charge_of,
             fill=lambda charge: {"amount": charge.outstanding, "paid_on": office_today(), "channel": "bank_transfer"},
             run=lambda by, form, charge: record_charge_payment(
                 db.session, by, charge.id, amount=form.amount.data, paid_on=form.paid_on.data,
                 channel=form.channel.data, bank_ref=form.bank_ref.data, key=form.sent_key()),
             done=lambda form, charge, payment: gettext("Receipt %(no)s: %(amount)s paid on the charge.",
                                                        no=payment.receipt_no, amount=format_money(payment.amount))),
    FormStep("waive", _l("Ask to waive the late fee"), WaiverRequestForm, one=_l("Select exactly one charge."),
             context=_charge_of, fill=lambda charge: {"amount": charge.outstanding},
             run=lambda by, form, charge: request_waiver(db.session, by, charge.id, form.amount.data, form.reason.data),
             done=lambda form, charge, waiver: gettext("Waiver of %(amount)s requested.",
                                                       amount=format_money(waiver.amount)),
             missing=_l("Give the amount and the reason.")))


def _outstanding(view, context, charge, name):
    return format_money(charge.outstanding)


class ChargeView(CHARGE_STEPS, ReadOnlyView):
    """滞纳金及其他款项: late fees accrued by the daily run and true-ups, what was waived and paid,
    what is outstanding; finance records payments, the deal's people ask for a waiver."""

    column_list = ("subscription", "subscription.customer_name", "subscription.agent", "kind", "instalment",
                   "days", "rate_percent", "amount", "waived", "paid", "outstanding", "accrued_through", "note")
    column_details_list = column_list + ("cap", "due_on", "created_at")
    column_export_list = column_list
    column_searchable_list = ("subscription.number", "subscription.customer_name")
    unit_search = "subscription.unit"
    column_filters = ("kind", "accrued_through", "subscription.project.name",
                      OutstandingFilter(Charge.id, _l("Outstanding"), options=(("1", _l("Yes")), ("0", _l("No")))),
                      AgentFilter(Charge.subscription_id, where=of_agent(Charge.subscription_id)))
    column_labels = {"rate_percent": _l("Late fee per day (%)"), "accrued_through": _l("Counted through"),
                     "days": _l("Days late")}
    column_formatters = {"outstanding": _outstanding}
    column_formatters_export = {"outstanding": lambda v, c, charge, n: str(charge.outstanding)}
    column_sortable_list = ("amount", "waived", "paid", "days", "accrued_through", "kind")
    column_default_sort = ("id", True)
    extra_endpoints = {"pay_view": "action", "waive_view": "action"}
    operations = {"pay": "charge.pay", "pay_view": "charge.pay",
                  "waive": "late_fee.waive_request", "waive_view": "late_fee.waive_request"}
    row_steps = (StepButton("pay", "charge.pay", when=lambda c: c.outstanding > 0, icon="fa-money"),
                 StepButton("waive", "late_fee.waive_request", icon="fa-eraser",
                            when=lambda c: c.kind == "late_fee" and c.outstanding > 0))


def _decidable(waiver) -> bool:
    return waiver.status == "requested" and waiver_refusal(current_user, waiver) is None


WAIVER_DECISIONS = decision_steps(
    lambda by, waiver, approve: decide_waiver(db.session, by, waiver.id, approve),
    lambda n: gettext("%(n)d late-fee waivers decided.", n=n),
    Decision("approve", _l("Approve"), _l("Approve the selected waivers?"), True),
    Decision("reject", _l("Reject"), _l("Reject the selected waivers? The late fee stays owed."), False))


class LateFeeWaiverView(WAIVER_DECISIONS, ReadOnlyView):
    """滞纳金减免: the manager decides within the project's limit per deal in total, the VP beyond;
    never the requester (R-AFT-1)."""

    column_list = ("subscription", "subscription.customer_name", "charge", "amount", "reason", "needs_vp", "status",
                   "requested_by", "requested_at", "decided_by", "decided_at")
    column_searchable_list = ("subscription.number", "subscription.customer_name")
    unit_search = "subscription.unit"
    column_filters = ("status", "needs_vp", "requested_at",
                      AgentFilter(LateFeeWaiver.subscription_id, where=of_agent(LateFeeWaiver.subscription_id)))
    column_labels = {"needs_vp": _l("Needs the vice-president")}
    row_steps = (StepButton("approve", "late_fee.waive", when=_decidable),
                 StepButton("reject", "late_fee.waive", when=_decidable, icon="fa-times", style="danger"))


def _deal_charges(sub):
    """The deal page's section: the deal's charges (late fees and true-ups, generically), with Pay
    for finance and Ask to waive for the deal's people; None for those who may not see charges."""
    if not can(current_user, "charge", "list") or not works_on_deal(current_user, sub):
        return None
    charges = db.session.query(Charge).filter(Charge.subscription_id == sub.id).order_by(Charge.id).all()
    if not charges:
        return None
    rows = [{"id": c.id, "kind": c.kind, "kind_label": choice_label("charge", "kind", c.kind),
             "line": f"#{c.instalment.seq} {choice_label('instalment', 'kind', c.instalment.kind)}" if c.instalment else "",
             "days": c.days, "amount": c.amount, "waived": c.waived, "paid": c.paid, "outstanding": c.outstanding}
            for c in charges]
    return {"charges": rows, "owed": sum((c.outstanding for c in charges if c.outstanding > 0), 0),
            "may_pay": can_do(current_user, "charge.pay") and can(current_user, "charge", "action"),
            "may_waive": can_do(current_user, "late_fee.waive_request") and can(current_user, "charge", "action")}


deal_section("admin/deal/_charges.html", _deal_charges)
__all__ = ["ChargeView", "LateFeeWaiverView", "OUTSTANDING"]
