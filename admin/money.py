"""Finance's and agents' steps on plans and payments: record, reverse, note, extend."""
from __future__ import annotations

from flask import flash
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_admin.helpers import get_form_data
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from wtforms.fields.choices import SelectChoice

from models import Extension, Instalment, Payment, PlanLineTemplate, db
from models.base import office_today
from models.deals import overdue_on
from models.ladder import (LADDER_SUBSCRIPTIONS, decide_extension, decider_refusal, ladder_level,
                           request_extension)
from models.labels import choice_label
from models.payments import note_on_instalment, reverse_payment, validate_method_lines

from .documents import DocumentButton, document_actions
from .base import ProtectedView, ReadOnlyView, run_domain
from .filters import AgentFilter, of_agent, of_agent_line
from .steps import StepButton
from .forms import ExtensionRequestForm, NoteForm, PaymentForm, ReasonForm  # noqa: F401



def _overdue_badge(line):
    """Days past the (extended) due date of an open line, as the ladder counts them (R-PAY-5)."""
    days = (office_today() - (line.extended_due_on or line.due_on)).days
    if line.status == "paid" or days <= 0:
        return ""
    level = ladder_level(line.subscription.project, days)
    tone = {"forfeit": "forfeited", None: "held"}.get(level, level)  # the badge colours of the ladder
    return Markup('<span class="badge badge-status status-%s">%s</span>') % (
        tone, gettext("%(n)d days", n=days))


def _ids(form):
    return [int(i) for i in (form.ids.data or "").split(",") if i.isdigit()]


class StepMixin:
    """Actions that need a few fields first: the action renders a form; its POST runs the step."""

    def _step_form(self, form, title, endpoint, **context):
        return self.render("admin/deal_step.html", form=form, title=title,
                           action_url=self.get_url(endpoint), **context)

    def _rows(self, model, ids):
        return self.get_query().filter(model.id.in_([int(i) for i in ids])).all()


class OverdueFilter(BaseSQLAFilter):
    """Open lines past their (effective) due date, or the rest."""

    def apply(self, query, value, alias=None):
        overdue = overdue_on(office_today())
        return query.filter(overdue if value == "1" else ~overdue)

    def operation(self):
        return gettext("is")


class InstalmentView(document_actions("payment_reminder"), StepMixin, ReadOnlyView):
    """付款计划: agents see their customers' lines, note what the customer said, ask for time."""

    column_list = ("subscription", "subscription.customer_name", "subscription.agent", "seq", "kind",
                   "due_on", "extended_due_on", "amount_due", "amount_paid", "status", "overdue_days",
                   "agent_note")
    column_searchable_list = ("subscription.number", "subscription.customer_name")
    column_filters = ("status", "kind", "due_on", "extended_due_on", "subscription.project.name",
                      "subscription.payment_method",
                      OverdueFilter(Instalment.id, _l("Overdue"), options=(("1", _l("Yes")), ("0", _l("No")))),
                      AgentFilter(Instalment.subscription_id, where=of_agent(Instalment.subscription_id)))
    column_formatters = {"overdue_days": lambda v, c, line, n: _overdue_badge(line)}
    column_default_sort = ("due_on", False)
    extra_endpoints = {"note_view": "action", "extension_view": "action"}
    column_extra_row_actions = [DocumentButton("payment_reminder")]
    row_steps = (StepButton("note", "instalment.note", when=lambda i: i.status != "paid", icon="fa-comment-o"),
                 StepButton("extension", "extension.request", when=lambda i: i.status != "paid"
                            and i.subscription.status in LADDER_SUBSCRIPTIONS, icon="fa-clock-o"))

    @action("note", _l("Record what the customer said"))
    def action_note(self, ids):
        rows = self._rows(Instalment, ids)
        return self._step_form(NoteForm(ids=",".join(str(r.id) for r in rows)),
                               _l("Record what the customer said"), ".note_view", lines=rows)

    @expose("/note/", methods=("POST",))
    def note_view(self):
        form = NoteForm(get_form_data())
        rows = self._rows(Instalment, _ids(form)) if form.validate() else []
        if rows and run_domain(lambda by: [note_on_instalment(db.session, by, r.id, form.note.data)
                                           for r in rows]):
            flash(gettext("Noted on %(n)d plan lines.", n=len(rows)), "success")
        elif not rows:
            flash(gettext("Write what the customer said, and select at least one line."), "error")
        return self.back()

    @action("extension", _l("Request an extension"))
    def action_extension(self, ids):
        rows = self._rows(Instalment, ids)
        return self._step_form(ExtensionRequestForm(ids=",".join(str(r.id) for r in rows)),
                               _l("Request an extension"), ".extension_view", lines=rows)

    @expose("/extension/", methods=("POST",))
    def extension_view(self):
        form = ExtensionRequestForm(get_form_data())
        rows = self._rows(Instalment, _ids(form)) if form.validate() else []
        if rows and run_domain(lambda by: [request_extension(db.session, by, r.id, form.days.data,
                                                             form.reason.data) for r in rows]):
            flash(gettext("Extension requested for %(n)d plan lines.", n=len(rows)), "success")
        elif not rows:
            flash(gettext("Give the days (1 to 365) and the reason, and select at least one line."),
                  "error")
        return self.back()


class PaymentView(document_actions("receipt"), StepMixin, ReadOnlyView):
    """收款记录: never edited or deleted; a correction is a reversal (R-PAY-1)."""

    column_list = ("receipt_no", "subscription", "subscription.customer_name", "instalment", "amount",
                   "paid_on", "channel", "bank_ref", "reverses", "reason", "recorded_by", "recorded_at")
    column_searchable_list = ("receipt_no", "bank_ref", "subscription.number", "subscription.customer_name")
    column_filters = ("channel", "paid_on", "recorded_at", "subscription.project.name",
                      "subscription.payment_method",
                      AgentFilter(Payment.subscription_id, where=of_agent(Payment.subscription_id)))
    column_labels = {"channel": _l("Payment channel")}
    column_formatters = column_formatters_export = {  # the original's receipt number, not its id
        "reverses": lambda view, context, payment, name: payment.reverses.receipt_no if payment.reverses else ""}
    extra_endpoints = {"reverse_view": "action"}
    column_extra_row_actions = [DocumentButton("receipt"),
                                DocumentButton("statement", subject=lambda row: row.subscription.lead_id)]
    row_steps = (StepButton("reverse", "payment.reverse", when=lambda p: p.amount > 0 and p.reverses_id is None,
                            icon="fa-undo", style="danger"),)

    @action("reverse", _l("Reverse (a correction)"))
    def action_reverse(self, ids):
        rows = self._rows(Payment, ids)
        return self._step_form(ReasonForm(ids=",".join(str(r.id) for r in rows)),
                               _l("Reverse (a correction)"), ".reverse_view", payments=rows)

    @expose("/reverse/", methods=("POST",))
    def reverse_view(self):
        form = ReasonForm(get_form_data())
        rows = self._rows(Payment, _ids(form)) if form.validate() else []
        if rows and run_domain(lambda by: [reverse_payment(db.session, by, r.id, form.reason.data)
                                           for r in rows]):
            flash(gettext("%(n)d payments reversed; the balances are restored.", n=len(rows)), "success")
        elif not rows:
            flash(gettext("Say why, and select at least one payment."), "error")
        return self.back()


def _decidable(extension) -> bool:
    """Waiting, and within what the current user may decide (the VP beyond the manager's limit)."""
    return extension.status == "requested" and decider_refusal(current_user, extension) is None


class ExtensionView(ReadOnlyView):
    """延期申请: up to the project's limit the sales manager decides, beyond it the VP (R-PAY-6)."""

    column_list = ("instalment", "instalment.subscription.customer_name", "instalment.subscription.agent",
                   "days", "reason", "status", "requested_at", "decided_at", "new_due_on")
    column_filters = ("status", "requested_at", AgentFilter(Extension.instalment_id, where=of_agent_line(Extension.instalment_id)))
    row_steps = (StepButton("approve", None, when=_decidable),
                 StepButton("reject", None, when=_decidable, icon="fa-times", style="danger"))

    def _decide(self, ids, approve):
        rows = self.get_query().filter(Extension.id.in_([int(i) for i in ids])).all()
        if run_domain(lambda by: [decide_extension(db.session, by, r.id, approve) for r in rows]):
            flash(gettext("%(n)d extensions decided.", n=len(rows)), "success")

    @action("approve", _l("Approve"), _l("Approve the selected extensions?"))
    def action_approve(self, ids):
        self._decide(ids, True)

    @action("reject", _l("Reject"), _l("Reject the selected extensions? The original due dates stay."))
    def action_reject(self, ids):
        self._decide(ids, False)


class PaymentMethodView(ProtectedView):
    """A project's payment methods and their lines (R-PAY-2, R-PAY-7): the % add up to 100."""

    column_list = ("project", "code", "name", "active")
    column_filters = ("project.name", "code")
    form_columns = ("project", "code", "name", "active")
    inline_models = ((PlanLineTemplate, {"form_columns": ("id", "seq", "kind", "percent", "fixed_amount",
                                                          "due_offset_days", "due_on")}),)

    def on_model_change(self, form, model, is_created):
        validate_method_lines(sorted(model.lines, key=lambda line: line.seq))


def payment_choices(form, sub):
    lines = db.session.query(Instalment).filter(Instalment.subscription_id == sub.id,
                                                Instalment.status != "paid").order_by(Instalment.seq)
    form.instalment_id.choices = [SelectChoice("", "—")] + [
        SelectChoice(str(line.id), f"#{line.seq} {choice_label('instalment', 'kind', line.kind)} "
                                   f"{line.due_on} ¥{line.amount_due - line.amount_paid:,.2f}")
        for line in lines]


def payment_form(sub):
    form = PaymentForm(subscription_id=sub.id, paid_on=office_today())
    payment_choices(form, sub)
    return form
