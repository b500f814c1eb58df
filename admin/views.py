"""One grid per entity, at /admin/<table>/. Thin: state changes belong to models/."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup, escape
from wtforms import PasswordField
from wtforms.validators import Optional

from models import (ArchiveRecord, Audit, Building, Contract, ContractStep, Document, Extension,
                    FollowUp, Instalment, Lead, LeadArchive, OverdueEvent, Payment, Project, Role,
                    RuleViolation, Subscription, Unit, User)
from models.leads import mask_id_number, normalise_phone
from models.permissions import sees_id_number

from .base import ProtectedView, ReadOnlyView


def _money(view, context, model, name):
    value = getattr(model, name)
    return "" if value is None else f"¥{value:,.2f}"


def _id_number(view, context, model, name):
    value = getattr(model, name)
    return value if sees_id_number(current_user) else mask_id_number(value)


class UserView(ProtectedView):
    column_list = ("id", "username", "display_name", "roles", "active", "last_login_at")
    column_searchable_list = ("username", "display_name")
    column_filters = ("active",)
    column_details_exclude_list = ("password_hash", "session_token")
    column_export_exclude_list = ("password_hash", "session_token")
    form_columns = ("username", "display_name", "roles", "active")
    column_labels = {"active": _l("Account enabled")}
    form_extra_fields = {"new_password": PasswordField(_l("New password"), validators=[Optional()])}

    def on_model_change(self, form, model, is_created):
        if form.new_password.data:
            model.set_password(form.new_password.data)
        elif is_created:
            raise RuleViolation(_l("A new account needs a password."))


class RoleView(ReadOnlyView):
    column_list = ("id", "name")
    column_default_sort = ("id", False)

    def _name(view, context, model, name):
        return str(model)

    column_formatters = {"name": _name}


class ProjectView(ProtectedView):
    column_list = ("code", "name", "developer", "city", "is_agency", "warning_day",
                   "lawyer_letter_day", "forfeit_day", "extension_limit_days")
    column_searchable_list = ("code", "name")
    form_excluded_columns = ("buildings", "created_at")


class BuildingView(ProtectedView):
    column_list = ("id", "project", "name", "floors")
    column_filters = ("project.name",)
    form_columns = ("project", "name", "floors")


class UnitView(ProtectedView):
    column_list = ("id", "building", "number", "floor", "position", "layout", "area",
                   "list_price", "status")
    column_filters = ("status", "layout", "building.name", "floor")
    column_searchable_list = ("number",)
    column_formatters = {"list_price": _money}
    form_columns = ("building", "floor", "position", "number", "layout", "area")
    form_readonly = ("held_for_lead_id", "held_until")


class LeadView(ProtectedView):
    column_list = ("id", "name", "phone", "project", "source", "stage", "owner",
                   "next_follow_up_on", "registered_at")
    column_searchable_list = ("name", "phone")
    column_filters = ("stage", "source", "next_follow_up_on", "project.name")
    column_labels = {"name": _l("Customer name")}
    column_formatters = {"id_number": _id_number}
    column_formatters_export = {"id_number": _id_number}
    column_formatters_detail = {"id_number": _id_number}
    form_columns = ("project", "name", "phone", "id_number", "address", "source", "needs", "notes",
                    "next_follow_up_on")
    form_readonly = ("stage", "owner", "registered_by", "registered_at")

    def on_model_change(self, form, model, is_created):
        model.phone = normalise_phone(model.phone)
        if is_created:
            model.registered_by_id = current_user.id
            if current_user.has_role("agent"):
                model.owner_id = current_user.id  # R-LEAD-1: the registering agent owns the lead


class FollowUpView(ProtectedView):
    column_list = ("id", "lead", "agent", "at", "channel", "content", "next_on", "manager_feedback")
    column_filters = ("channel", "at", "next_on")
    form_columns = ("lead", "channel", "content", "outcome", "next_on")

    def on_model_change(self, form, model, is_created):
        if is_created:
            model.agent_id = current_user.id


class SubscriptionView(ReadOnlyView):
    column_list = ("number", "project", "unit", "lead", "agent", "price", "deposit",
                   "payment_method", "status", "subscribed_on")
    column_searchable_list = ("number",)
    column_filters = ("status", "payment_method", "subscribed_on", "project.name")
    column_formatters = {"price": _money, "deposit": _money}


class InstalmentView(ReadOnlyView):
    column_list = ("subscription", "seq", "kind", "due_on", "extended_due_on", "amount_due",
                   "amount_paid", "status")
    column_filters = ("status", "kind", "due_on")
    column_formatters = {"amount_due": _money, "amount_paid": _money}


class PaymentView(ReadOnlyView):
    column_list = ("receipt_no", "subscription", "instalment", "amount", "paid_on", "channel",
                   "bank_ref", "reverses_id", "recorded_by", "recorded_at")
    column_searchable_list = ("receipt_no", "bank_ref")
    column_labels = {"channel": _l("Payment channel")}
    column_filters = ("channel", "paid_on")
    column_formatters = {"amount": _money}


class ExtensionView(ReadOnlyView):
    column_list = ("instalment", "days", "reason", "status", "requested_at", "decided_at", "new_due_on")
    column_filters = ("status",)


class OverdueEventView(ReadOnlyView):
    column_list = ("instalment", "due_on", "level", "on", "created_at")
    column_filters = ("level", "on")


class ContractView(ReadOnlyView):
    column_list = ("number", "subscription", "kind", "status", "appointment_at", "signed_on", "lawyer")
    column_searchable_list = ("number",)
    column_filters = ("status", "kind", "signed_on")


class ContractStepView(ReadOnlyView):
    column_list = ("contract", "kind", "status", "promised_on", "done_on", "customer_action")
    column_filters = ("status", "kind", "promised_on")


class ArchiveRecordView(ReadOnlyView):
    column_list = ("contract", "received_on", "location", "stamped_copy_on")


class LeadArchiveView(ReadOnlyView):
    column_list = ("id", "lead", "subscription_id", "reason", "archived_at")
    column_filters = ("reason", "archived_at")


class DocumentView(ReadOnlyView):
    column_list = ("id", "kind", "subject_id", "status", "size", "requested_by", "created_at",
                   "finished_at")
    column_filters = ("kind", "status")


def _changes(view, context, model, name):
    items = (model.changes or {}).items()
    return Markup("<br>").join(Markup("<code>%s</code>: %s") % (k, escape(str(v))) for k, v in items)


class AuditView(ReadOnlyView):
    column_list = ("at", "actor_id", "entity", "entity_id", "action", "changes")
    column_filters = ("entity", "action", "actor_id", "at")
    column_default_sort = ("id", True)
    column_formatters = {"changes": _changes}
    column_labels = {"actor_id": _l("Who")}
    can_set_page_size = False


# (model, view class, menu name, menu category)
VIEWS = [
    (Lead, LeadView, _l("Customers"), _l("Sales")),
    (FollowUp, FollowUpView, _l("Follow-ups"), _l("Sales")),
    (Subscription, SubscriptionView, _l("Subscriptions"), _l("Sales")),
    (LeadArchive, LeadArchiveView, _l("Kept records of cancelled deals"), _l("Sales")),
    (Project, ProjectView, _l("Projects"), _l("Sales control")),
    (Building, BuildingView, _l("Buildings"), _l("Sales control")),
    (Unit, UnitView, _l("Units"), _l("Sales control")),
    (Instalment, InstalmentView, _l("Payment plans"), _l("Finance")),
    (Payment, PaymentView, _l("Payments"), _l("Finance")),
    (Extension, ExtensionView, _l("Extensions"), _l("Finance")),
    (OverdueEvent, OverdueEventView, _l("Overdue events"), _l("Finance")),
    (Contract, ContractView, _l("Contracts"), _l("Contracts")),
    (ContractStep, ContractStepView, _l("Post-signing steps"), _l("Contracts")),
    (ArchiveRecord, ArchiveRecordView, _l("Contract archive"), _l("Contracts")),
    (Document, DocumentView, _l("Documents"), _l("System")),
    (User, UserView, _l("Users"), _l("System")),
    (Role, RoleView, _l("Roles"), _l("System")),
    (Audit, AuditView, _l("Audit trail"), _l("System")),
]
