"""按揭 screens (R-AFT-2): banks, the mortgage files and their steps, the stuck files' worklist,
the ageing per bank and stage, and the deal page's mortgage section. Every change goes through
models.loans; the grids check PERMISSIONS (bank, loan_file, loan_stuck, loan_ageing)."""
from __future__ import annotations

from flask import flash, redirect, request
from flask_admin import expose
from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from wtforms import DateField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from models import Subscription, db
from models.base import office_today
from models.labels import choice_label
from models.loans import (LOAN_LINE_KINDS, LOAN_STAGES, MOVABLE_STAGES, Bank, LoanFile, ageing, close_file,
                          disburse, move_stage, open_loan_file, open_refusal, set_missing, stuck)
from models.money import format_money
from models.permissions import can, can_do, scope_filter

from .base import ProtectedPage, ProtectedView, ReadOnlyView, SecureForm, row_id, run_domain, succeeded
from .deal_sections import deal_section
from .forms import KeyedForm, MoneyField
from .labels import CHOICES
from .step_actions import FormStep, form_steps
from .steps import StepButton


def _choices(column):
    return [SelectChoice(value, label) for value, label in CHOICES[("loan_file", column)].items()]


def _banks(form, rows=()):
    form.bank_id.choices = [SelectChoice(b.id, str(b)) for b in
                            db.session.scalars(select(Bank).where(Bank.active.is_(True)).order_by(Bank.name))]


class OpenFileForm(SecureForm):
    subscription_id = HiddenField(validators=[DataRequired()])
    line_kind = SelectField(_l("Plan line"), choices=_choices("line_kind"), validators=[DataRequired()])
    loan_kind = SelectField(_l("Loan kind"), choices=_choices("loan_kind"), validators=[DataRequired()])
    bank_id = SelectField(_l("Bank"), coerce=int, validators=[DataRequired()])
    missing = TextAreaField(_l("What the customer must still supply"), validators=[Optional(), Length(max=2000)])


class StageForm(KeyedForm):
    ids = HiddenField(validators=[DataRequired()])
    stage = SelectField(_l("Stage reached"), choices=[], validators=[DataRequired()])
    on = DateField(_l("Date"), validators=[DataRequired()])
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=2000)])
    missing = TextAreaField(_l("What the customer must still supply"), validators=[Optional(), Length(max=2000)])


class MissingForm(SecureForm):
    ids = HiddenField(validators=[DataRequired()])
    missing = TextAreaField(_l("What the customer must still supply (empty: nothing)"),
                            validators=[Optional(), Length(max=2000)])


class DisburseForm(KeyedForm):
    ids = HiddenField(validators=[DataRequired()])
    amount = MoneyField(_l("Amount (empty: the loan line's balance)"), validators=[Optional()])
    paid_on = DateField(_l("Paid on"), validators=[DataRequired()])
    bank_ref = StringField(_l("Bank reference"), validators=[Optional(), Length(max=60)])


class CloseForm(SecureForm):
    ids = HiddenField(validators=[DataRequired()])
    reason = TextAreaField(_l("Reason (the bank's refusal, the customer's decision)"),
                           validators=[DataRequired(), Length(max=2000)])


def _next(file) -> str | None:
    if file.status != "open":
        return None
    following = LOAN_STAGES[LOAN_STAGES.index(file.stage) + 1]
    return following if following in MOVABLE_STAGES else None


def _stage_choice(form, rows):
    following = _next(rows[0]) if len(rows) == 1 else None
    form.stage.choices = ([SelectChoice(following, str(choice_label("loan_file", "stage", following)))]
                          if following else [])


def _file_page(file) -> dict:
    return {"subscription": file.subscription}


ONE = _l("Select exactly one mortgage file.")
LOAN_STEPS = form_steps(
    FormStep("next_stage", _l("Next stage"), StageForm, one=ONE, again=True, context=_file_page,
             prepare=_stage_choice, unknown=_l("This mortgage file does not exist."),
             fill=lambda file: {"on": office_today(), "missing": file.missing},
             run=lambda by, form, file: move_stage(db.session, by, file.id, form.stage.data, on=form.on.data,
                                                   note=form.note.data, missing=form.missing.data or "",
                                                   key=form.sent_key(), today=office_today()),
             done=lambda form, file, result: gettext("The file is at “%(stage)s”.",
                                                     stage=choice_label("loan_file", "stage", result.stage))),
    FormStep("missing", _l("Customer must supply"), MissingForm, one=ONE, context=_file_page,
             fill=lambda file: {"missing": file.missing},
             run=lambda by, form, file: set_missing(db.session, by, file.id, form.missing.data or ""),
             done=lambda form, file, result: gettext("Recorded; the agent is told."),
             missing=ONE),
    FormStep("disburse", _l("Disburse"), DisburseForm, one=ONE, again=True, context=_file_page,
             unknown=_l("This mortgage file does not exist."), fill=lambda file: {"paid_on": office_today()},
             run=lambda by, form, file: disburse(db.session, by, file.id, amount=form.amount.data,
                                                 paid_on=form.paid_on.data, bank_ref=form.bank_ref.data or None,
                                                 key=form.sent_key(), today=office_today()),
             done=lambda form, file, payment: gettext("Disbursement recorded: receipt %(no)s, %(amount)s.",
                                                      no=payment.receipt_no, amount=format_money(payment.amount))),
    FormStep("close", _l("Close"), CloseForm, one=ONE, context=_file_page,
             run=lambda by, form, file: close_file(db.session, by, file.id, form.reason.data),
             done=lambda form, file, result: gettext("The file is closed: the deal needs a change of payment "
                                                     "method (a change request)."),
             missing=_l("Say why the mortgage file is closed.")))


def _receipt(file) -> str:
    from models.payments import Payment
    payment = db.session.get(Payment, file.payment_id) if file.payment_id else None
    return f"{payment.receipt_no} {format_money(payment.amount)}" if payment else "—"


def _days(view, context, file, name):
    return (office_today() - file.stage_since).days if file.status == "open" else "—"


def _stages(view, context, file, name):
    rows = "".join(str(Markup("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>").format(
        choice_label("loan_file", "stage", s.stage), s.on.isoformat(), s.by, s.note)) for s in file.stages)
    return Markup('<table class="table table-sm loan-stages"><tbody>' + rows + "</tbody></table>")


class StuckFilter(BaseSQLAFilter):
    """Stuck (R-AFT-2): the files models.loans.stuck names, nothing else."""

    def __init__(self, column, name=_l("Stuck")):
        super().__init__(column, name, options=(("1", _l("Yes")),))

    def apply(self, query, value, alias=None):
        return query.filter(stuck(db.session, office_today()))

    def operation(self):
        return gettext("is")


def _open_file(f):
    return f.status == "open"


class LoanFileView(LOAN_STEPS, ReadOnlyView):
    """按揭档案: one per loan line, its bank, stage, days in stage and what is missing (R-AFT-2);
    agents see their own deals' files (LoanFile.owned_by)."""

    verbs = frozenset({"list", "details", "export", "action"})
    column_list = ("subscription", "customer", "bank", "loan_kind", "line_kind", "amount", "stage", "days_in_stage",
                   "status", "missing")
    column_details_list = ("subscription", "customer", "bank", "loan_kind", "line_kind", "amount", "stage",
                           "stage_since", "days_in_stage", "status", "missing", "payment", "opened_by", "created_at",
                           "history")
    column_export_list = ("subscription", "customer", "bank", "loan_kind", "line_kind", "amount", "stage",
                          "stage_since", "days_in_stage", "status", "missing")
    column_labels = {"customer": _l("Customer"), "days_in_stage": _l("Days in stage"), "history": _l("Stages"),
                     "payment": _l("Disbursement receipt")}
    column_sortable_list = ("stage", "stage_since", "amount", "status", ("subscription", "subscription.number"))
    column_default_sort = ("stage_since", False)
    column_searchable_list = ("subscription.number", "subscription.customer_name")
    unit_search = "subscription.unit"
    column_filters = ("bank.name", "stage", "status", "loan_kind", StuckFilter(LoanFile.id))
    column_formatters = {
        "customer": lambda v, c, file, n: file.subscription.customer_name,
        "days_in_stage": _days, "history": _stages,
        "payment": lambda v, c, file, n: _receipt(file)}
    column_formatters_export = {"customer": lambda v, c, file, n: file.subscription.customer_name,
                                "days_in_stage": _days}
    extra_endpoints = {"next_stage_view": "action", "missing_view": "action", "disburse_view": "action",
                       "close_view": "action", "open_view": "action"}
    operations = {"next_stage": "loan.stage", "next_stage_view": "loan.stage", "missing": "loan.stage",
                  "missing_view": "loan.stage", "disburse": "loan.disburse", "disburse_view": "loan.disburse",
                  "close": "loan.stage", "close_view": "loan.stage", "open_view": "loan.open"}
    row_steps = (
        StepButton("next_stage", "loan.stage", when=lambda f: _next(f) is not None, icon="fa-forward"),
        StepButton("missing", "loan.stage", when=_open_file, icon="fa-list", style="secondary"),
        StepButton("disburse", "loan.disburse", when=lambda f: f.status == "open" and f.stage == "mortgage_registered",
                   icon="fa-money"),
        StepButton("close", "loan.stage", when=_open_file, icon="fa-times", style="danger"))

    def get_query(self):
        return super().get_query().options(joinedload(LoanFile.subscription), joinedload(LoanFile.bank))

    @expose("/open/", methods=("GET", "POST"))
    def open_view(self):
        """Open a file on a deal (from the deal's page)."""
        form = OpenFileForm(request.form if request.method == "POST" else None,
                            subscription_id=request.args.get("subscription_id", ""))
        _banks(form)
        sub = db.session.get(Subscription, row_id(form.subscription_id.data or "") or 0)
        if sub is None or (scope_filter(Subscription, current_user) is not None
                           and sub.agent_id != current_user.id):
            flash(gettext("This subscription does not exist."), "error")
            return redirect(self.get_url(".index_view"))
        if request.method == "POST" and form.validate():
            file = run_domain(lambda by: open_loan_file(
                db.session, by, sub.id, line_kind=form.line_kind.data, bank_id=form.bank_id.data,
                loan_kind=form.loan_kind.data, missing=form.missing.data or "", today=office_today()))
            if succeeded(file):
                flash(gettext("Mortgage file opened."), "success")
                return redirect(f"/admin/subscription/details/?id={sub.id}")
        return self.render("admin/deal_step.html", form=form, title=gettext("Open mortgage file"),
                           action_url=self.get_url(".open_view"), subscription=sub)


class LoanStuckView(LoanFileView):
    """Stuck mortgage files (R-AFT-2): in a stage beyond the project's limit — the worklist of
    finance and the lawyer (and the manager's, the VP's view)."""

    entity = "loan_stuck"
    choices_of = "loan_file"
    verbs = frozenset({"list", "details", "action"})
    column_list = ("subscription", "customer", "bank", "stage", "stage_since", "days_in_stage", "missing")
    column_filters = ("bank.name", "stage")
    column_default_sort = ("stage_since", False)

    def _stuck(self, query):
        return query.filter(stuck(db.session, office_today()))

    def get_query(self):
        return self._stuck(super().get_query())

    def get_count_query(self):
        return self._stuck(super().get_count_query())

    def posted_rows(self, ids):
        return LoanFileView.get_query(self).filter(LoanFile.id.in_(ids)).all() if ids else []


class BankView(ProtectedView):
    """The banks (and provident-fund centres) the office works with: a managed list; an inactive
    bank is not offered for new files."""

    verbs = frozenset({"list", "details", "create", "edit"})
    column_list = ("name", "branch", "contact", "active")
    form_columns = ("name", "branch", "contact", "active")
    column_searchable_list = ("name",)
    column_default_sort = ("name", False)


class LoanAgeingPage(ProtectedPage):
    """Mortgage ageing (R-AFT-2): files in progress per bank and stage — count, amount, average and
    longest days in stage, and how many are stuck (a link to them)."""

    entity = "loan_ageing"

    @expose("/")
    def index(self):
        rows = ageing(db.session, office_today())
        return self.render("admin/loan_ageing.html", rows=rows,
                           stage_name=lambda s: choice_label("loan_file", "stage", s),
                           may_see_stuck=can(current_user, "loan_stuck", "list"))


def _deal_loans(sub) -> dict | None:
    """The deal page's mortgage section: its files and their stages; Open for those who may."""
    from models.payments import Instalment, in_force
    if not can(current_user, "loan_file", "list"):
        return None
    lines = db.session.scalars(select(Instalment.kind).where(Instalment.subscription_id == sub.id, in_force(),
                                                             Instalment.kind.in_(LOAN_LINE_KINDS))).all()
    files = db.session.scalars(select(LoanFile).where(LoanFile.subscription_id == sub.id)
                               .order_by(LoanFile.id)).all()
    if not lines and not files:
        return None
    openable = [kind for kind in lines if can_do(current_user, "loan.open")
                and open_refusal(db.session, sub, kind) is None]
    return {"files": files, "openable": bool(openable), "subscription": sub, "today": office_today(),
            "label": choice_label}


deal_section("admin/deal/_loans.html", _deal_loans)
