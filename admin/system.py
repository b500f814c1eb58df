"""The system's screens: users and roles, each user's notifications, the audit trail."""
from __future__ import annotations

import datetime as dt
import re

from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from wtforms import PasswordField
from wtforms.validators import Optional

from models import RuleViolation, db
from models.base import office_time
from models.notifications import mark_read
from models.privacy import mask_data

from .base import ProtectedView, ReadOnlyView, run_domain
from .labels import AUDIT_ACTIONS, CHOICES, COLUMN_LABELS
from .steps import StepButton
from flask_admin.actions import action


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


class NotificationView(ReadOnlyView):
    """What the system told me: leads pooled or assigned, conflicts, feedback."""

    column_list = ("created_at", "message", "read_at")
    column_default_sort = ("id", True)
    column_sortable_list = ("created_at", "read_at")  # the text is rendered per reader, not stored
    column_details_list = ("created_at", "message", "link", "read_at")  # the text, not its stored values
    # In the reader's language (models.notifications.render), whatever the writer's.
    column_formatters = {"message": lambda v, c, m, n: Markup('<a href="%s">%s</a>') % (
        m.link or "#", m.text) if m.link.startswith("/") else m.text}
    column_formatters_export = {"message": lambda v, c, m, n: m.text}

    row_steps = (StepButton("read", None, when=lambda n: n.read_at is None, icon="fa-check", style="secondary"),)

    @action("read", _l("Mark as read"))
    def action_read(self, ids):
        run_domain(lambda by: mark_read(db.session, by, ids))


_RECORDED_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?")


def _audit_value(entity: str, key: str, value) -> str:
    """A recorded value as staff read it: a status by its label, nothing as a dash."""
    if value in (None, ""):
        return "—"
    if isinstance(value, bool):
        return gettext("Yes") if value else gettext("No")
    if isinstance(value, str) and _RECORDED_TIMESTAMP.fullmatch(value):
        return office_time(dt.datetime.fromisoformat(value))  # recorded in UTC (models.audit)
    if isinstance(value, str):
        # The entity's own labels, else the same column's of another table (a method line's kind).
        for labels in [CHOICES.get((entity, key), {})] + [v for (_, col), v in CHOICES.items() if col == key]:
            if value in labels:
                return str(labels[value])
    return str(value)


def _changes(view, context, model, name):
    """Each changed column by its label: before → after (an inserted row: its values)."""
    lines = []
    for key, value in mask_data(current_user, model.changes or {}).items():
        if isinstance(value, list) and len(value) == 2 and not isinstance(value[0], list):
            text = f"{_audit_value(model.entity, key, value[0])} → {_audit_value(model.entity, key, value[1])}"
        else:
            text = _audit_value(model.entity, key, value)
        label = COLUMN_LABELS.get(key) or COLUMN_LABELS.get(key.removesuffix("_id"), key)
        lines.append(Markup('<span class="text-muted">%s</span>: %s') % (label, text))
    return Markup("<br>").join(lines)


def _raw_changes(view, context, model, name):
    return str(mask_data(current_user, model.changes or {}))


_raw_changes.masks_personal_data = True


ENTITY_LABELS: dict = {"payment_allocation": _l("Payment allocations"), "receipt_counter": _l("Receipt numbers"),
                      "plan_line_template": _l("Payment method lines"), "sales_target": _l("Monthly targets")}
"""Table name -> the name of its grid in the menu; the grids' registry (admin/views.py) adds the
first grid of every table when it is built (it imports this module, so this one cannot read it)."""


class AuditView(ReadOnlyView):
    column_list = ("at", "actor", "entity", "entity_id", "action", "changes")
    column_filters = ("entity", "action", "actor_id", "at")
    column_default_sort = ("id", True)
    column_formatters = {
        "changes": _changes,
        "entity": lambda v, c, row, n: ENTITY_LABELS.get(row.entity, row.entity),
        "action": lambda v, c, row, n: AUDIT_ACTIONS.get(row.action, row.action),
    }
    # the raw record, personal data masked by the one rule
    column_formatters_export = {"changes": _raw_changes}
    column_labels = {"actor_id": _l("Who"), "actor": _l("Who")}
    can_set_page_size = False
