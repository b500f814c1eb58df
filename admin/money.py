"""Finance's and agents' steps on plans and payments: record, reverse, note, extend."""
from __future__ import annotations

from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from wtforms.fields.choices import SelectChoice

from sqlalchemy.orm import selectinload

from models import (Extension, Instalment, OverdueEvent, Payment, PaymentAllocation, PlanLineTemplate,
                    Voucher, db)
from models.base import office_today
from models.deals import DEAD_DEAL
from models.payments import OPEN_LINE, days_overdue, in_force, open_line, overdue_on
from models.ladder import decide_extension, decider_refusal, extension_refusal, ladder_level, request_extension
from models.labels import choice_label
from models.money import format_money
from models.payments import (awaiting_settlement, note_on_instalment, payment_lines_paid, record_voucher,
                             reverse_payment,
                             settlement_proposal, validate_method_lines)
from models.worklists import handle_event, letters_to_send, outcomes_of, rescissions_to_decide

from .documents import DocumentButton, document_actions
from .base import ProtectedView, ReadOnlyView
from .filters import AgentFilter, of_agent, of_agent_line
from .step_actions import Decision, FormStep, decision_steps, form_steps
from .steps import StepButton
from .forms import EventForm, ExtensionRequestForm, MoneyField, NoteForm, ReversalForm, VoucherForm


def _overdue_badge(line):
    """Days past the (extended) due date of an open line, as the ladder counts them (R-PAY-5); a
    line of a deal that is over shows the deal's status instead: it is owed by nobody."""
    sub = line.subscription
    if sub.status in DEAD_DEAL and line.status in OPEN_LINE:
        return Markup('<span class="badge badge-status status-%s">%s</span>') % (
            sub.status, choice_label("subscription", "status", sub.status))
    days = days_overdue(line, office_today(), sub.status)
    if not days:
        return ""
    level = ladder_level(line.subscription.project, days)
    tone = {"forfeit": "forfeited", None: "held"}.get(level, level)  # the badge colours of the ladder
    return Markup('<span class="badge badge-status status-%s">%s</span>') % (
        tone, gettext("%(n)d days", n=days))


class OverdueFilter(BaseSQLAFilter):
    """Open lines past their (effective) due date, or the rest."""

    def apply(self, query, value, alias=None):
        overdue = overdue_on(office_today())
        return query.filter(overdue if value == "1" else ~overdue)

    def operation(self):
        return gettext("is")


def _listing(lines) -> dict:
    return {"lines": lines}


PLAN_LINE_STEPS = form_steps(
    FormStep("note", _l("Record what the customer said"), NoteForm, context=_listing,
             run=lambda by, form, lines: [note_on_instalment(db.session, by, r.id, form.note.data) for r in lines],
             done=lambda form, lines, result: gettext("Noted on %(n)d plan lines.", n=len(lines)),
             missing=_l("Write what the customer said, and select at least one line.")),
    FormStep("extension", _l("Request an extension"), ExtensionRequestForm, context=_listing,
             run=lambda by, form, lines: [request_extension(db.session, by, r.id, form.days.data, form.reason.data)
                                          for r in lines],
             done=lambda form, lines, result: gettext("Extension requested for %(n)d plan lines.", n=len(lines)),
             missing=_l("Give the days (1 to 365) and the reason, and select at least one line.")))


class InstalmentView(document_actions("payment_reminder"), PLAN_LINE_STEPS, ReadOnlyView):
    """付款计划: agents see their customers' lines, note what the customer said, ask for time."""

    column_list = ("subscription", "subscription.customer_name", "subscription.agent", "seq", "kind",
                   "due_on", "extended_due_on", "amount_due", "amount_paid", "status", "overdue_days",
                   "late_fee", "agent_note")
    column_searchable_list = ("subscription.number", "subscription.customer_name")
    unit_search = "subscription.unit"
    column_filters = ("status", "kind", "due_on", "extended_due_on", "subscription.project.name",
                      "subscription.payment_method",
                      OverdueFilter(Instalment.id, _l("Overdue"), options=(("1", _l("Yes")), ("0", _l("No")))),
                      AgentFilter(Instalment.subscription_id, where=of_agent(Instalment.subscription_id)))
    column_formatters = {"overdue_days": lambda v, c, line, n: _overdue_badge(line),
                         # its late fee still outstanding (R-AFT-1): beside the line, never in its balance
                         "late_fee": lambda v, c, line, n: format_money(line.late_fee.outstanding)
                         if line.late_fee is not None and line.late_fee.outstanding else ""}
    column_formatters_export = {"late_fee": lambda v, c, line, n: str(line.late_fee.outstanding)
                                if line.late_fee is not None else ""}
    column_default_sort = ("due_on", False)
    extra_endpoints = {"note_view": "action", "extension_view": "action"}
    column_extra_row_actions = [DocumentButton("payment_reminder")]
    row_steps = (StepButton("note", "instalment.note", when=lambda i: i.status in OPEN_LINE, icon="fa-comment-o"),
                 StepButton("extension", "extension.request", icon="fa-clock-o",
                            why_not=lambda i: extension_refusal(current_user, i)))

    # The plan in force (R-CHG-2): the lines a change replaced are the deal's history, not owed.
    # They are few: seen whole, the grid shows the table's estimate as before.
    estimate_whole_table = True

    def get_query(self):
        return super().get_query().filter(in_force()).options(selectinload(Instalment.late_fee))

    def get_count_query(self):
        return super().get_count_query().filter(in_force())



REVERSAL_STEP = form_steps(FormStep(
    "reverse", _l("Reverse (a correction)"), ReversalForm, context=lambda payments: {"payments": payments},
    run=lambda by, form, payments: [reverse_payment(db.session, by, r.id, form.reason.data, key=form.sent_key())
                                    for r in payments],
    done=lambda form, payments, result: gettext("%(n)d payments reversed; the balances are restored.",
                                                n=len(payments)),
    missing=_l("Say why, and select at least one payment.")))


class PaymentView(document_actions("receipt"), REVERSAL_STEP, ReadOnlyView):
    """收款记录: never edited or deleted; a correction is a reversal (R-PAY-1)."""

    column_list = ("receipt_no", "subscription", "subscription.customer_name", "instalment", "amount",
                   "paid_on", "channel", "bank_ref", "reverses", "reason", "recorded_by", "recorded_at")
    column_searchable_list = ("receipt_no", "bank_ref", "subscription.number", "subscription.customer_name")
    unit_search = "subscription.unit"
    column_filters = ("channel", "paid_on", "recorded_at", "subscription.project.name",
                      "subscription.payment_method",
                      AgentFilter(Payment.subscription_id, where=of_agent(Payment.subscription_id)))
    column_details_list = column_list
    column_labels = {"channel": _l("Payment channel")}
    column_formatters = column_formatters_export = {  # the original's receipt number, not its id
        "reverses": lambda view, context, payment, name: payment.reverses.receipt_no if payment.reverses else "",
        # the plan lines the payment paid (allocated to the oldest open lines, or to the chosen one)
        "instalment": lambda view, context, payment, name: payment_lines_paid(payment)}
    extra_endpoints = {"reverse_view": "action"}
    column_extra_row_actions = [DocumentButton("receipt"),
                                DocumentButton("statement", subject=lambda row: row.subscription.lead_id)]
    row_steps = (StepButton("reverse", "payment.reverse", when=lambda p: p.amount > 0 and p.reverses_id is None,
                            icon="fa-undo", style="danger"),)

    def get_query(self):
        # The lines each payment paid, for the page in one more query (not one per row).
        return super().get_query().options(
            selectinload(Payment.allocations).joinedload(PaymentAllocation.instalment))



def _decidable(extension) -> bool:
    """Waiting, and within what the current user may decide (the VP beyond the manager's limit,
    counted over every extension of the same line): the domain's own decider_refusal."""
    return extension.status == "requested" and decider_refusal(current_user, extension) is None


EXTENSION_DECISIONS = decision_steps(
    lambda by, extension, approve: decide_extension(db.session, by, extension.id, approve),
    lambda n: gettext("%(n)d extensions decided.", n=n),
    Decision("approve", _l("Approve"), _l("Approve the selected extensions?"), True),
    Decision("reject", _l("Reject"), _l("Reject the selected extensions? The original due dates stay."), False))


class ExtensionView(EXTENSION_DECISIONS, ReadOnlyView):
    """延期申请: of a plan line or of a signing date. Up to the project's limit in total the sales
    manager decides, beyond it the VP (R-PAY-6)."""

    column_list = ("subscription", "subscription.customer_name", "subscription.agent", "instalment", "contract",
                   "days", "reason", "status", "requested_at", "decided_at", "new_due_on")
    column_labels = {"contract": _l("Signing of contract")}
    column_searchable_list = ("subscription.number", "subscription.customer_name")
    unit_search = "subscription.unit"
    column_filters = ("status", "requested_at", AgentFilter(Extension.subscription_id,
                                                            where=of_agent(Extension.subscription_id)))
    row_steps = (StepButton("approve", "extension.decide", when=_decidable),
                 StepButton("reject", "extension.decide", when=_decidable, icon="fa-times", style="danger"))


class WorklistView(ReadOnlyView):
    """What waits for a person: the rows of `waiting` (a WHERE clause of models.worklists or
    models.payments), exactly those the home page counts. Its step's POST finds its row by the
    user's scope alone (`posted_rows`, read by admin.step_actions): sent again after the row left
    the list, it still reaches the domain, which says it was done already."""

    verbs = frozenset({"list", "details", "action"})
    waiting = None

    def get_query(self):
        return super().get_query().filter(self.waiting())

    def get_count_query(self):
        return super().get_count_query().filter(self.waiting())

    def posted_rows(self, ids):
        return ReadOnlyView.get_query(self).filter(self.model.id.in_(ids)).all() if ids else []


def _outcome_choices(form, events) -> None:
    """What may be recorded for the event: the outcomes of its level (models.worklists)."""
    if len(events) == 1:
        form.outcome.choices = [SelectChoice(o, str(choice_label("overdue_event", "outcome", o)))
                                for o in outcomes_of(events[0].level)]


HANDLE_STEP = form_steps(FormStep(
    "handle", _l("Record what was done"), EventForm, title=lambda view: view.name,
    one=_l("Select exactly one line."), prepare=_outcome_choices,
    context=lambda event: {"subscription": event.instalment.subscription},
    run=lambda by, form, event: handle_event(db.session, by, event.id, form.outcome.data, form.note.data),
    done=lambda form, event, result: gettext("Recorded."),
    missing=_l("Choose what was done.")))


class EventWorklist(HANDLE_STEP, WorklistView):
    """Ladder events that wait for a person; `handle` records what was done, through the domain."""

    column_list = ("instalment", "instalment.subscription.customer_name", "instalment.subscription.agent",
                   "cause", "due_on", "on", "late", "balance")
    column_labels = {"on": _l("Ladder date"), "late": _l("Days overdue"), "balance": _l("Unpaid balance")}
    column_formatters = {
        "late": lambda v, c, e, n: gettext("%(n)d days", n=(office_today() - e.due_on).days),
        "balance": lambda v, c, e, n: format_money(e.instalment.amount_due - e.instalment.amount_paid)
        if e.cause == "payment" else "—"}
    column_default_sort = ("on", False)
    column_searchable_list = ("instalment.subscription.number", "instalment.subscription.customer_name")
    unit_search = "instalment.subscription.unit"
    extra_endpoints = {"handle_view": "action"}



class OverdueEventView(document_actions("overdue_warning", "lawyer_letter"), ReadOnlyView):
    column_list = ("instalment", "instalment.subscription.customer_name", "instalment.subscription.agent",
                   "due_on", "level", "cause", "on", "outcome", "handled_by", "handled_on", "handling_note")
    column_labels = {"on": _l("Ladder date")}
    column_filters = ("level", "cause", "on", "outcome", AgentFilter(OverdueEvent.instalment_id,
                                                                 where=of_agent_line(OverdueEvent.instalment_id)))
    column_extra_row_actions = [DocumentButton("overdue_warning"), DocumentButton("lawyer_letter")]


class LawyerLetterDueView(document_actions("lawyer_letter"), EventWorklist):
    """待发律师函: the ladder prompted a lawyer's letter (R-PAY-5); the lawyer sends it and marks it."""

    entity = "lawyer_letter_due"
    choices_of = "overdue_event"
    waiting = staticmethod(letters_to_send)
    column_extra_row_actions = [DocumentButton("lawyer_letter")]
    row_steps = (StepButton("handle", "letter.mark_sent", icon="fa-envelope"),)


class RescissionView(EventWorklist):
    """解约审议: a signed deal's line reached the forfeit day; the ladder never forfeits a signed
    contract — the manager, the lawyer or the vice-president decides (R-PAY-4, R-PAY-5)."""

    entity = "rescission"
    choices_of = "overdue_event"
    waiting = staticmethod(rescissions_to_decide)
    row_steps = (StepButton("handle", "rescission.decide", icon="fa-gavel", style="danger"),)


def _held(view, context, sub, name):
    # The row as this request's grid query loaded it: held_amount itself (the kept figure,
    # models.payments), no second query per row.
    return format_money(sub.held)


def _proposal(view, context, sub, name):
    proposal = settlement_proposal(db.session, sub)
    return gettext("refund %(refund)s, retain %(retain)s", refund=format_money(proposal['refund']),
                   retain=format_money(proposal['retain']))


def _voucher_of(sub) -> dict:
    """The voucher the agreement proposes: a refund if anything is to be refunded, else a retention."""
    proposal = settlement_proposal(db.session, sub)
    kind = "refund" if proposal["refund"] else "retained"
    return {"kind": kind, "amount": proposal["refund" if kind == "refund" else "retain"], "issued_on": office_today(),
            "channel": "bank_transfer" if kind == "refund" else ""}


VOUCHER_STEP = form_steps(FormStep(
    "voucher", _l("Refund or retain (voucher)"), VoucherForm, one=_l("Select exactly one deal."), again=True,
    fill=_voucher_of, context=lambda sub: {"subscription": sub},
    first=lambda sub: {"proposal": settlement_proposal(db.session, sub)},
    run=lambda by, form, sub: record_voucher(
        db.session, by, sub.id, kind=form.kind.data, amount=form.amount.data, issued_on=form.issued_on.data,
        channel=form.channel.data or None, reason=form.reason.data, key=form.sent_key()),
    done=lambda form, sub, voucher: gettext("Voucher %(no)s recorded.", no=voucher.number)))


class SettlementView(VOUCHER_STEP, WorklistView):
    """待结算: money still held on deals that are over (forfeited, withdrawn, expired, rescinded),
    until finance refunds it or retains it as the agreement says, by a numbered voucher (R-CHG-5)."""

    entity = "settlement"
    choices_of = "subscription"
    waiting = staticmethod(awaiting_settlement)
    column_list = ("number", "customer_name", "unit", "agent", "status", "deposit", "held", "proposal")
    column_details_list = ("number", "status", "customer_name", "unit", "agent", "price", "deposit", "payment_method",
                           "subscribed_on", "forfeited_at", "withdrawn_at", "expired_at", "rescinded_at", "held",
                           "proposal")  # never the ID number: shown as SubscriptionView shows the deal
    column_labels = {"number": _l("Subscription number"), "held": _l("Money held"),
                     "proposal": _l("As the agreement says")}
    column_formatters = {"held": _held, "proposal": _proposal}
    column_searchable_list = ("number", "customer_name")
    unit_search = "unit"
    extra_endpoints = {"voucher_view": "action"}
    row_steps = (StepButton("voucher", "settlement.record", icon="fa-money"),)


class VoucherView(ReadOnlyView):
    """退款/没收凭证: numbered, never edited or deleted (R-CHG-5)."""

    column_list = ("number", "subscription", "subscription.customer_name", "kind", "amount", "issued_on",
                   "channel", "reason", "recorded_by", "recorded_at")
    column_searchable_list = ("number", "subscription.number", "subscription.customer_name")
    unit_search = "subscription.unit"
    column_filters = ("kind", "issued_on", AgentFilter(Voucher.subscription_id, where=of_agent(Voucher.subscription_id)))
    column_labels = {"number": _l("Voucher number"), "issued_on": _l("Date"), "channel": _l("Refunded by")}


class PaymentMethodView(ProtectedView):
    """A project's payment methods and their lines (R-PAY-2, R-PAY-7): the % add up to 100."""

    column_list = ("project", "code", "name", "active")
    column_filters = ("project.name", "code")
    form_columns = ("project", "code", "name", "active", "signing_checklist")
    column_labels = {"signing_checklist": _l("To bring to the signing with this method (one per line)")}
    form_widget_args = {"signing_checklist": {"rows": 4}}
    inline_models = ((PlanLineTemplate, {"form_columns": ("id", "seq", "kind", "percent", "fixed_amount",
                                                          "due_offset_days", "due_on"),
                                         "form_overrides": {"fixed_amount": MoneyField}}),)

    def on_model_change(self, form, model, is_created):
        validate_method_lines(sorted(model.lines, key=lambda line: line.seq))


def payment_choices(form, sub):
    lines = db.session.query(Instalment).filter(Instalment.subscription_id == sub.id,
                                                open_line()).order_by(Instalment.seq)
    form.instalment_id.choices = [SelectChoice("", "—")] + [
        SelectChoice(str(line.id), f"#{line.seq} {choice_label('instalment', 'kind', line.kind)} "
                                   f"{line.due_on} {format_money(line.amount_due - line.amount_paid)}")
        for line in lines]
