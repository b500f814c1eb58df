"""External channels (issue 23, R-COM-1, 渠道报备): the companies and their people, the
registrations (a channel's person sees and registers only his own), and the conflicts the manager
decides with both sides shown."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.helpers import get_form_data
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from wtforms import HiddenField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from models import ChannelCompany, ChannelConflict, ChannelMember, ChannelRegistration, Lead, Project, User, db
from models.base import office_time
from models.channels import (ChannelRefused, add_member, register_customer, resolve_conflict,
                             set_company_active, withdraw_registration)
from models.labels import choice_label
from models.privacy import mask_value
from models.users import Role, user_role

from .base import ProtectedView, ReadOnlyView, SecureForm, run_domain, succeeded
from .forms import KeyedForm
from .step_actions import Decision, FormStep, decision_steps, form_steps
from .steps import StepButton

# --- companies -----------------------------------------------------------------------------------

COMPANY_DECISIONS = decision_steps(
    lambda by, company, active: set_company_active(db.session, by, company.id, active),
    lambda n: gettext("%(n)d channel companies changed.", n=n),
    Decision("deactivate", _l("Deactivate"),
             _l("Deactivate these companies? Their people can no longer sign in or register customers."), False),
    Decision("activate", _l("Activate"), _l("Activate these companies again?"), True))


class ChannelCompanyView(COMPANY_DECISIONS, ProtectedView):
    """The managed list of channel companies (渠道公司); deactivating one is a step, not an edit."""

    column_list = ("id", "name", "contact_name", "contact_phone", "active", "created_at")
    column_searchable_list = ("name",)
    column_filters = ("active",)
    column_labels = {"active": _l("Company active")}  # "Active" is a deal's status in Chinese (定金已付)
    column_default_sort = ("name", False)
    form_columns = ("name", "contact_name", "contact_phone")
    form_readonly = ("active", "created_at")
    form_args = {"name": {"validators": [DataRequired(), Length(max=100)]}}
    action_verbs = {"deactivate": "edit", "activate": "edit"}
    operations = {"deactivate": "channel.manage", "activate": "channel.manage"}
    row_steps = (StepButton("deactivate", "channel.manage", when=lambda c: c.active, icon="fa-ban", style="warning"),
                 StepButton("activate", "channel.manage", when=lambda c: not c.active, icon="fa-check"))


# --- their people --------------------------------------------------------------------------------

class MemberForm(SecureForm):
    """A person of a channel company: a new account, or an existing channel account."""

    company = SelectField(_l("Channel company"), coerce=int, validators=[DataRequired()])
    existing = SelectField(_l("Existing channel account (or create a new one below)"), coerce=int,
                           validators=[Optional()])
    username = StringField(_l("Username"), validators=[Optional(), Length(max=64)])
    display_name = StringField(_l("Name"), validators=[Optional(), Length(max=100)])
    password = PasswordField(_l("Password"), validators=[Optional(), Length(max=200)])


def _member_choices(form) -> None:
    form.company.choices = [SelectChoice(c.id, c.name) for c in db.session.scalars(
        select(ChannelCompany).where(ChannelCompany.active.is_(True)).order_by(ChannelCompany.name))]
    free = db.session.scalars(
        select(User).join(user_role, user_role.c.user_id == User.id).join(Role, Role.id == user_role.c.role_id)
        .where(Role.name == "channel", User.id.not_in(select(ChannelMember.user_id))).order_by(User.username))
    form.existing.choices = [SelectChoice(0, "—")] + [SelectChoice(u.id, str(u)) for u in free]


class ChannelMemberView(ReadOnlyView):
    """Who works for which channel company: a person belongs to exactly one."""

    column_list = ("user", "company", "created_at")
    column_filters = ("company.name",)
    column_default_sort = ("created_at", True)
    form = MemberForm

    def create_form(self, obj=None):
        form = MemberForm(get_form_data())
        _member_choices(form)
        return form

    def create_model(self, form):
        return run_domain(lambda by: add_member(
            db.session, by, company_id=form.company.data, user_id=form.existing.data or None,
            username=form.username.data, password=form.password.data, display_name=form.display_name.data))


# --- registrations -------------------------------------------------------------------------------

class RegisterForm(KeyedForm):
    """A channel's registration (报备) of a customer before the visit."""

    project = SelectField(_l("Project"), coerce=int, validators=[DataRequired()])
    customer_name = StringField(_l("Customer name"), validators=[DataRequired(), Length(max=100)])
    phone = StringField(_l("Phone"), validators=[DataRequired(), Length(max=30)])


REGISTRATION_DECISIONS = decision_steps(
    lambda by, registration, _: withdraw_registration(db.session, by, registration.id),
    lambda n: gettext("%(n)d registrations withdrawn.", n=n),
    Decision("withdraw", _l("Withdraw"), _l("Withdraw these registrations?"), None))


class ChannelRegistrationView(REGISTRATION_DECISIONS, ReadOnlyView):
    """Channels' registrations. A channel's person sees only his own (ChannelRegistration.owned_by)
    and registers here; the office sees them all."""

    column_list = ("id", "project", "company", "registered_by", "customer_name", "phone", "registered_at",
                   "valid_until", "status", "confirmed_at")
    column_details_list = ("id", "project", "company", "registered_by", "customer_name", "phone", "registered_at",
                           "registered_on", "valid_until", "status", "lead", "confirmed_at")
    column_export_list = column_details_list
    column_searchable_list = ("customer_name", "phone")
    column_filters = ("status", "registered_on", "valid_until", "project.name")
    list_template = "admin/channel_registration_list.html"
    extra_endpoints = {"register_view": "action"}
    operations = {"register_view": "channel.register", "withdraw": "channel.withdraw"}
    row_steps = (StepButton("withdraw", "channel.withdraw", when=lambda r: r.status == "valid", icon="fa-undo",
                            style="secondary"),)

    def render(self, template, **kwargs):
        if template == self.list_template:
            from models.permissions import can_do
            kwargs.setdefault("may_register", can_do(current_user, "channel.register"))
        return super().render(template, **kwargs)

    @expose("/register/", methods=("GET", "POST"))
    def register_view(self):
        form = RegisterForm(get_form_data())
        form.project.choices = [SelectChoice(p.id, p.name) for p in
                                db.session.scalars(select(Project).order_by(Project.name))]
        if request.method == "POST" and form.validate():
            registration = run_domain(lambda by: register_customer(
                db.session, by, project_id=form.project.data, customer_name=form.customer_name.data,
                phone=form.phone.data, key=form.sent_key()), keep_on=(ChannelRefused,))
            if succeeded(registration) and registration:
                flash(gettext("Registered: the registration is valid until %(until)s (a visit by then confirms it).",
                              until=registration.valid_until.isoformat()), "success")
                return redirect(url_for(".index_view"))
            if not succeeded(registration):
                return redirect(url_for(".index_view"))
        elif request.method == "POST":
            flash(gettext("Give the project, the customer's name and phone."), "error")
        return self.render("admin/deal_step.html", form=form, title=gettext("Register a customer"),
                           action_url=url_for(".register_view"))


# --- conflicts -----------------------------------------------------------------------------------

def _when(value) -> str:
    return office_time(value)


def _phone(value) -> str:
    return mask_value(current_user, "phone", value)


def _side(registration) -> str:
    return " · ".join([registration.company.name, registration.registered_by.display_name,
                       _when(registration.registered_at)])


def _first(view, context, model, name):
    """The side that was there first: a channel's registration, or the project's customer."""
    parts = []
    first = model.against_registration
    if first is not None:
        parts.append(gettext("Registered by %(side)s, valid until %(until)s (%(status)s)", side=_side(first),
                             until=first.valid_until.isoformat(),
                             status=choice_label("channel_registration", "status", first.status)))
    lead = model.against_lead
    if lead is not None:
        parts.append(gettext("Customer of the project: agent %(owner)s, registered %(when)s, protected until "
                             "%(until)s", owner=lead.owner.display_name if lead.owner else gettext("public pool"),
                             when=_when(lead.registered_at),
                             until=lead.protected_until.isoformat() if lead.protected_until else "—"))
    return "; ".join(parts)


def _field(path):
    def formatter(view, context, model, name):
        value = model
        for part in path.split("."):
            value = getattr(value, part, None) if value is not None else None
        if value is None:
            return ""
        if hasattr(value, "hour"):
            return _when(value)
        if path.endswith("status"):
            return str(choice_label("channel_registration", "status", value))
        if path.endswith("phone"):
            return _phone(value)
        if hasattr(value, "isoformat"):
            return value.isoformat()
        return getattr(value, "display_name", None) or str(value)
    return formatter


class DecideForm(SecureForm):
    ids = HiddenField(validators=[DataRequired()])
    decision = SelectField(_l("Decision"), choices=[
        ("keep", _l("Keep the first (registration or customer)")),
        ("award", _l("Award the customer to the later registration"))], validators=[DataRequired()])
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=2000)])


CONFLICT_STEPS = form_steps(FormStep(
    "decide", _l("Decide the conflict"), DecideForm, one=_l("Select exactly one conflict."),
    run=lambda by, form, conflict: resolve_conflict(db.session, by, conflict.id, form.decision.data,
                                                    form.reason.data),
    done=lambda form, conflict, result: gettext("Conflict decided."),
    missing=_l("Choose the decision and give the reason.")))

_DETAIL_PATHS = {
    "project_name": "registration.project.name",
    "refused_company": "registration.company.name", "refused_by": "registration.registered_by",
    "refused_at": "registration.registered_at", "refused_customer": "registration.customer_name",
    "refused_phone": "registration.phone",
    "first_company": "against_registration.company.name", "first_by": "against_registration.registered_by",
    "first_at": "against_registration.registered_at", "first_valid_until": "against_registration.valid_until",
    "first_status": "against_registration.status", "first_customer": "against_registration.customer_name",
    "customer_owner": "against_lead.owner", "customer_registered_at": "against_lead.registered_at",
    "customer_protected_until": "against_lead.protected_until",
}


def _refused(view, context, model, name):
    return _side(model.registration)


class ChannelConflictView(CONFLICT_STEPS, ReadOnlyView):
    """Refused registrations, for the manager to decide with both sides shown (R-COM-1)."""

    column_list = ("id", "project_name", "refused", "refused_customer", "refused_phone", "first", "status",
                   "decided_by", "decided_at", "reason")
    column_details_list = ("id", "status", *_DETAIL_PATHS, "decided_by", "decided_at", "reason",
                           "created_at")
    column_filters = ("status",)
    column_sortable_list = ("id", "status", "decided_at")
    column_formatters = {"refused": _refused, "first": _first,
                         **{name: _field(path) for name, path in _DETAIL_PATHS.items()}}
    column_formatters_detail = column_formatters
    extra_endpoints = {"decide_view": "action"}
    operations = {"decide": "channel.resolve", "decide_view": "channel.resolve"}
    row_steps = (StepButton("decide", "channel.resolve", when=lambda c: c.status == "open", icon="fa-gavel"),)

    def get_query(self):
        later = joinedload(ChannelConflict.registration)
        first = joinedload(ChannelConflict.against_registration)
        return super().get_query().options(
            later.joinedload(ChannelRegistration.company), later.joinedload(ChannelRegistration.registered_by),
            later.joinedload(ChannelRegistration.project),
            first.joinedload(ChannelRegistration.company), first.joinedload(ChannelRegistration.registered_by),
            joinedload(ChannelConflict.against_lead).joinedload(Lead.owner))
