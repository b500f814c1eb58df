"""Opening day (开盘, issue 24), intent registration (R-LCH-1): the launches (the manager makes and
edits them), the buyers' registrations (认筹: agents register and see their own; finance receives,
refunds and converts the intent deposit from the registration's row or page; the card's PDF) and
the intent deposit's ledger, read-only with its export."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_admin.helpers import get_form_data
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from wtforms import BooleanField, DateField, HiddenField, IntegerField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from models import Building, Launch, LaunchEntry, Project, db
from models.base import office_today
from models.identity import ID_TYPES
from models.labels import choice_label
from models.launches import (INTENT_CHANNELS, LAUNCH_FIELDS, convert_intent_deposit, create_launch, entry_may_choose,
                             record_intent_deposit, refund_due, refund_intent_deposit, register_entry, update_launch)
from models.money import format_money
from models.permissions import can_do

from .base import ALREADY_DONE, ProtectedView, ReadOnlyView, SecureForm, run_domain, succeeded
from .documents import DocumentButton, document_actions
from .forms import KeyedForm, MoneyField
from .labels import CHOICES
from .step_actions import FormStep, form_steps
from .steps import StepButton


def _choices(entity, column, values=None):
    labels = CHOICES[(entity, column)]
    return [SelectChoice(value, labels[value]) for value in (values or labels)]


# --- launches ------------------------------------------------------------------------------------

class LaunchForm(SecureForm):
    """A launch (开盘): the project's buildings, the dates, the deposit, the questions, the selection."""

    project = SelectField(_l("Project"), coerce=int, validators=[DataRequired()])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    buildings = SelectMultipleField(_l("Buildings offered"), coerce=int, validators=[DataRequired()])
    registration_opens_on = DateField(_l("Registration opens on"), validators=[DataRequired()])
    registration_closes_on = DateField(_l("Registration closes on"), validators=[DataRequired()])
    selection_on = DateField(_l("Opening day (selection)"), validators=[DataRequired()])
    intent_deposit = MoneyField(_l("Intent deposit"), validators=[InputRequired()])
    card_valid_until = DateField(_l("Card valid until"), validators=[DataRequired()])
    questions = TextAreaField(_l("Eligibility questions (one per line; the buyer answers yes or no)"),
                              validators=[Optional(), Length(max=5000)])
    groups_ordered = BooleanField(_l("First-home buyers are drawn first"))
    slot_minutes = IntegerField(_l("Slot length (minutes)"), default=5, validators=[InputRequired(), NumberRange(1, 240)])
    slot_size = IntegerField(_l("Buyers choosing at once"), default=10, validators=[InputRequired(), NumberRange(1, 1000)])
    missed_rule = SelectField(_l("A buyer who misses his slot"), choices=_choices("launch", "missed_rule"),
                              validators=[DataRequired()])


def _launch_choices(form, project_id=None) -> None:
    form.project.choices = [SelectChoice(p.id, p.name) for p in db.session.scalars(select(Project).order_by(Project.name))]
    query = select(Building).join(Project, Project.id == Building.project_id).order_by(Project.name, Building.name)
    if project_id:
        query = query.where(Building.project_id == project_id)
    form.buildings.choices = [SelectChoice(b.id, f"{b.project.name} {b.name}") for b in db.session.scalars(query)]


def _fields(form) -> dict:
    values = {name: form[name].data for name in LAUNCH_FIELDS if name in form}
    values["building_ids"] = form.buildings.data or []
    return values


class LaunchView(ProtectedView):
    """开盘活动: the manager makes a launch and edits it while it takes registrations (then only the
    selection's settings); everyone on the floor reads it (R-LCH-1)."""

    column_list = ("id", "project", "name", "status", "registration_opens_on", "registration_closes_on",
                   "selection_on", "intent_deposit", "card_valid_until", "groups_ordered", "slot_minutes",
                   "slot_size", "missed_rule")
    column_details_list = column_list + ("buildings", "questions", "published_at", "drawn_at", "created_by",
                                         "created_at")
    column_export_list = column_list
    column_searchable_list = ("name",)
    column_filters = ("status", "selection_on", "project.name")
    column_formatters = {"questions": lambda v, c, launch, n: "；".join(launch.questions or []),
                         "buildings": lambda v, c, launch, n: "、".join(b.name for b in launch.buildings)}
    form = LaunchForm
    can_delete = False

    def create_form(self, obj=None):
        form = LaunchForm(get_form_data())
        _launch_choices(form)
        return form

    def edit_form(self, obj=None):
        data = get_form_data()
        if data is None and obj is not None:
            form = LaunchForm(project=obj.project_id, buildings=[b.id for b in obj.buildings],
                              questions="\n".join(obj.questions or []),
                              **{n: getattr(obj, n) for n in LAUNCH_FIELDS if n not in ("building_ids", "questions")})
        else:
            form = LaunchForm(data)
        _launch_choices(form, obj.project_id if obj is not None else None)
        form.project.choices = [c for c in form.project.choices if obj is None or c.value == obj.project_id]
        form.project.data = obj.project_id if obj is not None else form.project.data
        return form

    def create_model(self, form):
        return run_domain(lambda by: create_launch(db.session, by, project_id=form.project.data, **_fields(form)))

    def update_model(self, form, model):
        return succeeded(run_domain(lambda by: update_launch(db.session, by, model.id, **_fields(form))))


# --- registrations -------------------------------------------------------------------------------

class RefundDueFilter(BaseSQLAFilter):
    """Paid cards past their expiry, never converted: their deposits are owed back (R-LCH-1)."""

    def apply(self, query, value, alias=None):
        due = refund_due()
        return query.filter(due if value == "1" else ~due)

    def operation(self):
        return gettext("is")


class EntryForm(KeyedForm):
    """A buyer's intent registration (认筹): who he is and his answers (the launch's questions are
    added per launch, `_entry_form`)."""

    launch_id = HiddenField(validators=[DataRequired()])
    name = StringField(_l("Customer name"), validators=[DataRequired(), Length(max=80)])
    phone = StringField(_l("Phone"), validators=[DataRequired(), Length(max=30)])
    id_type = SelectField(_l("ID document"), choices=_choices("subscription", "customer_id_type", ID_TYPES),
                          default="resident_id", validators=[DataRequired()])
    id_number = StringField(_l("ID number"), validators=[DataRequired(), Length(max=40)])
    address = StringField(_l("Address"), validators=[DataRequired(), Length(max=200)])
    first_home = BooleanField(_l("First home (buys his first home)"))


def _entry_form(launch: Launch):
    """The registration form of `launch`: a yes/no for each of its eligibility questions."""
    attrs = {f"answer_{i}": SelectField(question, choices=[SelectChoice("", "—"), SelectChoice("yes", _l("Yes")),
                                                           SelectChoice("no", _l("No"))],
                                        validators=[DataRequired()])
             for i, question in enumerate(launch.questions or [])}
    return type("LaunchEntryForm", (EntryForm,), attrs)


class IntentDepositForm(KeyedForm):
    ids = HiddenField(validators=[DataRequired()])
    paid_on = DateField(_l("Paid on"), validators=[DataRequired()])
    channel = SelectField(_l("Payment channel"), choices=_choices("payment", "channel", INTENT_CHANNELS),
                          validators=[DataRequired()])


class IntentRefundForm(KeyedForm):
    ids = HiddenField(validators=[DataRequired()])
    paid_on = DateField(_l("Refunded on"), validators=[DataRequired()])
    channel = SelectField(_l("Refunded by"), choices=_choices("payment", "channel", INTENT_CHANNELS),
                          validators=[DataRequired()])
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=2000)])


class IntentConvertForm(KeyedForm):
    ids = HiddenField(validators=[DataRequired()])


def _entry_page(entry) -> dict:
    return {"entry": entry}


_ONE = _l("Select exactly one registration.")
ENTRY_STEPS = form_steps(
    FormStep("deposit", _l("Receive the intent deposit"), IntentDepositForm, one=_ONE, again=True, context=_entry_page,
             fill=lambda entry: {"paid_on": office_today(), "channel": "pos"},
             run=lambda by, form, entry: record_intent_deposit(db.session, by, entry.id, paid_on=form.paid_on.data,
                                                               channel=form.channel.data, key=form.sent_key()),
             done=lambda form, entry, row: gettext("Receipt %(no)s: intent deposit %(amount)s of card %(card)s.",
                                                   no=row.number, amount=format_money(row.amount), card=entry.number)),
    FormStep("refund", _l("Refund the intent deposit"), IntentRefundForm, one=_ONE, again=True, context=_entry_page,
             fill=lambda entry: {"paid_on": office_today(), "channel": "bank_transfer"},
             run=lambda by, form, entry: refund_intent_deposit(
                 db.session, by, entry.id, paid_on=form.paid_on.data, channel=form.channel.data,
                 reason=form.reason.data, key=form.sent_key()),
             done=lambda form, entry, row: gettext("Voucher %(no)s: %(amount)s of card %(card)s refunded.",
                                                   no=row.number, amount=format_money(row.amount), card=entry.number)),
    FormStep("convert", _l("Convert into the deal's deposit"), IntentConvertForm, one=_ONE, again=True,
             context=_entry_page,
             run=lambda by, form, entry: convert_intent_deposit(db.session, by, entry.id, key=form.sent_key()),
             done=lambda form, entry, row: gettext("Receipt %(no)s: %(amount)s of card %(card)s converted into the "
                                                   "deposit of the deal.", no=row.number,
                                                   amount=format_money(row.amount), card=entry.number)))


def _answers(view, context, entry, name):
    yes, no = gettext("Yes"), gettext("No")
    return "；".join(f"{q}：{yes if a else no}" for q, a in (entry.answers or {}).items())


def _may_choose(view, context, entry, name):
    return gettext("Yes") if entry_may_choose(entry, office_today()) else gettext("No")


class LaunchEntryView(document_actions("intent_card"), ENTRY_STEPS, ReadOnlyView):
    """认筹登记: agents register their customers and see their own; finance receives, refunds and
    converts the intent deposit (R-LCH-1). Phones and ID numbers masked by the one rule."""

    column_list = ("number", "launch", "name", "phone", "id_number", "agent", "group_name", "eligible", "status",
                   "selection_status", "position", "registered_at")
    column_details_list = ("number", "launch", "lead", "name", "phone", "id_type", "id_number", "address", "answers",
                           "eligible", "may_choose", "group_name", "agent", "status", "registered_at", "position",
                           "selection_status", "queue_no", "subscription", "chosen_at")
    column_export_list = column_list
    column_searchable_list = ("number", "name", "phone")
    column_filters = ("launch.name", "status", "eligible", "group_name", "selection_status", "registered_at",
                      RefundDueFilter(LaunchEntry.id, _l("Refund due (card expired)"),
                                      options=(("1", _l("Yes")), ("0", _l("No")))))
    column_labels = {"number": _l("Card number"), "may_choose": _l("May choose today"),
                     "answers": _l("Eligibility answers")}
    column_formatters = {"answers": _answers, "may_choose": _may_choose}
    column_formatters_export = {"answers": _answers}
    column_default_sort = ("id", True)
    list_template = "admin/launch_entry_list.html"
    extra_endpoints = {"register_view": "action", "deposit_view": "action", "refund_view": "action",
                       "convert_view": "action"}
    operations = {"register_view": "launch.register", "deposit": "launch.deposit", "deposit_view": "launch.deposit",
                  "refund": "launch.refund", "refund_view": "launch.refund", "convert": "launch.convert",
                  "convert_view": "launch.convert"}
    column_extra_row_actions = [DocumentButton("intent_card")]
    row_steps = (
        StepButton("deposit", "launch.deposit", when=lambda e: e.status == "registered", icon="fa-money"),
        StepButton("convert", "launch.convert", when=lambda e: e.status == "paid" and e.subscription_id is not None,
                   icon="fa-exchange"),
        StepButton("refund", "launch.refund", when=lambda e: e.status in ("paid", "converted"), icon="fa-undo",
                   style="warning"),
    )

    def render(self, template, **kwargs):
        if template == self.list_template:
            kwargs.setdefault("may_register", can_do(current_user, "launch.register"))
        return super().render(template, **kwargs)

    @expose("/register/", methods=("GET", "POST"))
    def register_view(self):
        """The registration page: the launch chosen (those taking registrations today), then the
        buyer and his answers (R-LCH-1)."""
        today = office_today()
        launches = db.session.scalars(select(Launch).where(
            Launch.status == "registration", Launch.registration_opens_on <= today,
            Launch.registration_closes_on >= today).order_by(Launch.selection_on, Launch.id)).all()
        wanted = request.values.get("launch_id", "")
        launch = next((la for la in launches if str(la.id) == wanted), launches[0] if launches else None)
        if launch is None:
            flash(gettext("No launch takes registrations today."), "error")
            return redirect(url_for(".index_view"))
        form_class = _entry_form(launch)
        form = form_class(get_form_data() if request.method == "POST" else None, launch_id=launch.id)
        if request.method == "POST" and form.validate():
            answers = {q: form[f"answer_{i}"].data == "yes" for i, q in enumerate(launch.questions or [])}
            entry = run_domain(lambda by: register_entry(
                db.session, by, launch_id=launch.id, name=form.name.data, phone=form.phone.data,
                id_type=form.id_type.data, id_number=form.id_number.data, address=form.address.data,
                answers=answers, first_home=form.first_home.data, key=form.sent_key()))
            if succeeded(entry):
                if entry.eligible:
                    flash(gettext("Registered: card %(card)s. Finance receives the intent deposit of %(amount)s.",
                                  card=entry.number, amount=format_money(launch.intent_deposit)), "success")
                else:
                    flash(gettext("Registered: card %(card)s, not eligible (an eligibility question was answered "
                                  "no): the buyer cannot choose on the opening day.", card=entry.number), "warning")
                return redirect(url_for(".details_view", id=entry.id))
            if entry is ALREADY_DONE:
                return redirect(url_for(".index_view"))
        return self.render("admin/launch_register.html", form=form, launch=launch, launches=launches,
                           title=gettext("Register a buyer for a launch"),
                           action_url=url_for(".register_view", launch_id=launch.id))


# --- the intent deposit's ledger -----------------------------------------------------------------

class IntentPaymentView(ReadOnlyView):
    """认筹金台账: every intent deposit received (receipt), refunded (voucher) or converted into a
    deal's deposit (its receipt), never edited (R-LCH-1); exported with the grids' machinery."""

    column_list = ("number", "kind", "entry", "entry.name", "entry.launch", "amount", "paid_on", "channel",
                   "subscription", "reason", "recorded_by", "recorded_at")
    column_details_list = column_list
    column_export_list = column_list
    column_searchable_list = ("number", "entry.number", "entry.name")
    column_filters = ("kind", "paid_on", "channel", "entry.launch.name")
    column_labels = {"entry": _l("Card number"), "entry.number": _l("Card number"), "entry.name": _l("Customer name"), "entry.launch": _l("Launch"),
                     "channel": _l("Payment channel")}
    column_default_sort = ("id", True)
    column_formatters = {"channel": lambda v, c, row, n: choice_label("payment", "channel", row.channel)
                         if row.channel else ""}
    column_formatters_export = column_formatters


__all__ = ["IntentPaymentView", "LaunchEntryView", "LaunchView"]
