"""The one base view every grid derives from: roles per verb, row scoping, CSRF, read-only money.

Knobs a subclass sets (all optional)::

    class LeadView(ProtectedView):
        entity = "lead"                 # key in models.permissions.PERMISSIONS (default: table name)
        column_list = ("name", "phone") # as in Flask-Admin
        form_readonly = ("owner",)      # more columns never written by the generic form
        action_verbs = {"document_receipt": "list"}  # actions open to another verb than "action"
        operations = {"approve": "change.decide"}  # the domain operation an action or endpoint also
                                        # needs (models.permissions.OPERATIONS): others get 403
        row_steps = (StepButton("confirm", "subscription.confirm", when=lambda s: s.status == "draft"),)
                                        # an action as a button on the rows (and detail page)
                                        # where it applies; see admin/steps.py

Roles come from ``models.permissions`` (one table); every endpoint of the view checks them
in ``_handle_view`` — list, details, create, edit, delete, action, export, ajax.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from flask import abort, current_app, flash, has_request_context, redirect, request, url_for
from flask_admin import BaseView
from flask_admin.actions import action
from flask_admin.contrib.sqla import ModelView
from flask_admin.form import BaseForm
from flask_admin.theme import Bootstrap4Theme
from flask_admin.contrib.sqla.typefmt import DEFAULT_FORMATTERS, EXPORT_FORMATTERS
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import JSON, Numeric, func, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import DataError, IntegrityError
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_admin.model import filters as model_filters
from flask_admin.contrib.sqla.form import AdminModelConverter
from flask_admin.model.form import converts
from flask_admin.contrib.sqla.fields import QuerySelectField, QuerySelectMultipleField
from markupsafe import Markup
from werkzeug.routing import IntegerConverter
from wtforms.fields import DecimalField

from models import RuleViolation, db
from models.base import office_time, office_to_utc
from models.money import format_money
from models.dialect import is_postgresql, row_estimate
from spreadsheets import neutralise_formula
from models.permissions import can, can_do, may_export_personal_data, scope_filter, sees_whole
from models.privacy import MASKS, kind_of, mask_data, mask_value

from . import rows
from .auth import redirect_target
from .fast_list import FastList, admin_form_translations
from .labels import CHOICES, COLUMN_LABELS, EMPTY, choice_formatters
from .steps import StepButton

THEME = Bootstrap4Theme(swatch="default", fluid=True)

# Rows from which an unfiltered grid shows PostgreSQL's estimate ("约 50,000") instead of counting them
# (counting costs ~3 ms at 50,000 rows, ~60 ms at a million).
ESTIMATE_FROM = 20_000
# Rows skipped from which a page is found by its ids first (admin/fast_list.py, _apply_pagination).
DEFER_FROM = 3_000
# Row ids are 64-bit integers: a larger number in an address names no row (404), and must not
# reach the database, which refuses it with an error (SQLite: OverflowError; PostgreSQL: out of range).
MAX_ID = 2 ** 63 - 1


class RowIdConverter(IntegerConverter):
    """`<int:...>` in every route: 1 .. MAX_ID, so an id beyond 64 bits is a plain 404."""

    def __init__(self, map, fixed_digits=0, min=None, max=None, signed=False):
        super().__init__(map, fixed_digits, 0 if min is None else min, MAX_ID if max is None else max, signed)


def row_id(value) -> int | None:
    """A row id typed into an address or form as an int, or None if it cannot name a row."""
    text = str(value if value is not None else "").strip()
    return int(text) if text.isascii() and text.isdigit() and 0 < int(text) <= MAX_ID else None

# Which permission verb guards each Flask-Admin endpoint of a ModelView.
VERB_OF_ENDPOINT = {
    "index_view": "list",
    "details_view": "details",
    "create_view": "create",
    "edit_view": "edit",
    "delete_view": "delete",
    "action_view": "action",
    "export": "export",
    "ajax_lookup": "list",
    "ajax_update": "edit",
}

def _is_money(column) -> bool:
    return isinstance(column.type, Numeric) and column.type.scale == 2 and column.type.precision == 14


def money_formatter(view, context, model, name):
    """Money as staff write it: ¥1,234,567.00, -¥200,000.00 (empty when there is none)."""
    return format_money(getattr(model, name))


def _local_datetime(view, value, name=None):
    """Grid cells and exports: a stored (UTC) timestamp in the office's time zone (models.base)."""
    return office_time(value)


# Nothing reads as a dash on grids and detail pages (models/labels.py, the one rule); exports keep
# an empty cell.
TYPE_FORMATTERS = {**DEFAULT_FORMATTERS, type(None): lambda view, value, name=None: EMPTY,
                   dt.datetime: _local_datetime}
EXPORT_TYPE_FORMATTERS = {**EXPORT_FORMATTERS, dt.datetime: _local_datetime}


def _typed_in_office_time(filter_class):
    """A date-time filter reading what a person types as office time (the grid shows office time):
    the value is turned into the naive UTC the columns store before the query uses it."""
    class OfficeTime(filter_class):
        def clean(self, value):
            cleaned = super().clean(value)
            if isinstance(cleaned, list):
                return [office_to_utc(moment) for moment in cleaned]
            return office_to_utc(cleaned)
    OfficeTime.__name__ = f"OfficeTime{filter_class.__name__}"
    return OfficeTime


class OfficeTimeFilterConverter(sqla_filters.FilterConverter):
    datetime_filters = tuple(
        _typed_in_office_time(cls) if issubclass(cls, (model_filters.BaseDateTimeFilter,
                                                       model_filters.BaseDateTimeBetweenFilter)) else cls
        for cls in sqla_filters.FilterConverter.datetime_filters)


# What the database said when a value does not fit its column (a number too large, a text too
# long, a date out of range): nothing was saved.
OUT_OF_RANGE = _l("A value is too long or out of range (a number too large, a text too long or a "
                  "date outside the calendar). Nothing was saved; please correct it.")


class _AlreadyDone:
    """What `run_domain` returns when a money form was sent again: nothing was done now, the first
    sending's result stands (models.submissions). False in a test, like a refusal."""

    def __bool__(self) -> bool:
        return False


ALREADY_DONE = _AlreadyDone()


class _Refused:
    """What `run_domain` returns when the domain refused (the refusal is flashed already). False in
    a test; tell it from a result that is None, 0 or empty by `succeeded` or `is REFUSED`."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "REFUSED"


REFUSED = _Refused()


def succeeded(result) -> bool:
    """Whether `run_domain`'s result is the domain's own (neither refused nor sent again)."""
    return result is not REFUSED and result is not ALREADY_DONE


def run_domain(operation, keep_on: tuple = ()):
    """Run a domain operation as the current user and commit; show a refusal, in the user's
    language, as a flash and roll back. Returns the operation's result whatever it is (None, 0,
    an empty list), REFUSED if refused, or ALREADY_DONE when a money form was sent again (told as
    information, not as an error).

    Refusals of the types in `keep_on` still commit: the operation recorded something worth
    keeping (a duplicate registration's conflict, for instance).
    """
    from models.submissions import AlreadySubmitted
    try:
        result = operation(current_user._get_current_object())
        db.session.commit()
        return result
    except AlreadySubmitted as exc:
        db.session.rollback()
        flash(str(exc), "info")
        return ALREADY_DONE
    except RuleViolation as exc:
        if isinstance(exc, keep_on):
            db.session.commit()
        else:
            db.session.rollback()
        flash(str(exc), "error")
        return REFUSED
    except DataError:
        db.session.rollback()
        flash(OUT_OF_RANGE, "error")
        return REFUSED


def _viewer():
    return current_user if has_request_context() else None


def masked(inner=None):
    """A column formatter that shows personal data by the one rule (models/privacy.py): the
    column's value (or `inner`'s) whole or masked for the user; JSON with every personal key in
    it masked."""
    def formatter(view, context, model, name):
        value = view.field_value(model, name) if inner is None else inner(view, context, model, name)
        if kind_of(name):
            return mask_value(_viewer(), name, value)
        return mask_data(_viewer(), value)

    formatter.masks_personal_data = True
    return formatter


class SecureForm(BaseForm):
    """Flask-Admin's form base with Flask-WTF's CSRF token (the one CSRFProtect checks)."""

    class Meta(FlaskForm.Meta):
        def get_translations(self, form):
            return admin_form_translations()  # Flask-Admin's own (wtforms messages)


class FiniteDecimalField(DecimalField):
    """A number that fits its column (areas, percentages): NaN, infinities and numbers too large
    for Numeric(precision, scale) are refused under the field instead of reaching the database
    (SQLite would keep "inf" as Infinity, PostgreSQL refuses it with an error)."""

    def __init__(self, *args, limit: Decimal | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.limit = limit

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        if self.data is None:
            return
        if not self.data.is_finite():
            self.data = None
            raise ValueError(gettext("Enter a number written with digits, e.g. 120.5."))
        if self.limit is not None and abs(self.data) >= self.limit:
            self.data = None
            raise ValueError(gettext("This number must be less than %(limit)s.", limit=f"{self.limit:,}"))


class ModelConverter(AdminModelConverter):
    """Flask-Admin's form converter, with numbers kept finite and within their column."""

    @converts("Numeric")
    def handle_decimal_types(self, column, field_args, **extra):
        field_args.setdefault("places", None)
        kind = column.type
        limit = Decimal(10) ** (kind.precision - kind.scale) if kind.precision and kind.scale is not None else None
        return FiniteDecimalField(limit=limit, **field_args)


class ProtectedView(FastList, ModelView):
    """Base of every grid. See the module docstring for the knobs; Flask-Admin's internals it
    overrides are in admin/fast_list.py (FastList)."""

    entity: str | None = None
    verbs: frozenset[str] | None = None  # limit the view to these verbs, e.g. {"list", "details"}
    extra_endpoints: dict[str, str] = {}  # verb guarding each extra @expose method, by name
    action_verbs: dict[str, str] = {}  # verb an action needs instead of "action", by action name
    operations: dict[str, str] = {}  # domain operation an action or endpoint also needs, by name
    form_readonly: tuple[str, ...] = ()
    row_steps: tuple[StepButton, ...] = ()
    # The relationships from a row to its unit ("unit", "subscription.unit"…): the grid's search
    # then finds rows by the unit's displayed name, "1栋-2301" (issue 19, item 5).
    unit_search: str | None = None
    # A view whose own get_count_query leaves out only a few rows of its table (the plan grid: the
    # lines a change replaced) may still show the table's estimate when seen whole, e.g.
    # estimate_whole_table = True; otherwise a view that narrows its count counts.
    estimate_whole_table: bool = False

    form_base_class = SecureForm
    model_form_converter = ModelConverter
    list_template = "admin/model/grid.html"
    details_template = "admin/details.html"
    column_type_formatters = TYPE_FORMATTERS
    filter_converter = OfficeTimeFilterConverter()  # what people type into a time filter is office time
    column_type_formatters_detail = TYPE_FORMATTERS
    column_type_formatters_export = EXPORT_TYPE_FORMATTERS
    page_size = 30
    page_size_options = (30, 50, 100)
    can_set_page_size = True
    column_display_pk = True
    column_default_sort = ("id", True)
    export_types = ["csv", "xlsx"]
    export_max_rows = 10_000

    def __init__(self, model, session=None, **kwargs):
        self.entity = self.entity or model.__tablename__
        self.choices_of = getattr(self, "choices_of", None) or model.__tablename__
        self.column_labels = {**COLUMN_LABELS, **(self.column_labels or {})}
        money = [c.key for c in model.__table__.columns if _is_money(c)]
        self.column_formatters = {**choice_formatters(self.choices_of),
                                  **{name: money_formatter for name in money},
                                  **(self.column_formatters or {})}
        self.column_choices = {
            **{col: list(labels.items()) for (ent, col), labels in CHOICES.items()
               if ent == self.choices_of},
            **(self.column_choices or {})}
        self.form_choices = {**self.column_choices, **(self.form_choices or {})}
        self.column_formatters_export = {
            **choice_formatters(self.choices_of, html=False), **(self.column_formatters_export or {})}
        # Statuses and money change only through domain functions: never in a generic form.
        protected = [c.key for c in model.__table__.columns if c.key == "status" or _is_money(c)]
        self.form_excluded_columns = sorted(
            set(self.form_excluded_columns or ()) | set(protected) | set(self.form_readonly))
        if self.form_columns:
            self.form_columns = [c for c in self.form_columns if c not in self.form_excluded_columns]
        if self.column_select_related_list is None and self.column_list:
            # Load the rows' many-to-one neighbours with the page: one query, not one per row.
            to_one = {r.key for r in sa_inspect(model).relationships if r.direction.name == "MANYTOONE"}
            self.column_select_related_list = [getattr(model, c) for c in self.column_list if c in to_one]
        # The row's steps first, then its documents (the eye of the details comes before both).
        self.column_extra_row_actions = [*self.row_steps, *(self.column_extra_row_actions or [])]
        super().__init__(model, session or db, **kwargs)
        self._mask_personal_data()

    # --- personal data: one rule on the grid, the details and the export (models/privacy.py) ---
    def _personal_columns(self, columns) -> list[str]:
        json_columns = {c.key for c in self.model.__table__.columns if isinstance(c.type, JSON)}
        return [name for name, _ in columns
                if isinstance(name, str) and (kind_of(name) or name in json_columns)]

    def _mask_personal_data(self):
        """Every column that holds personal data (a phone, an ID number, or recorded JSON that may
        carry them) is shown through `masked`, whichever view declares it: a new view is covered."""
        for attr, columns in (("column_formatters", self.listed_columns()),
                              ("column_formatters_detail", self.details_columns()),
                              ("column_formatters_export", self.export_columns())):
            formatters = dict(getattr(self, attr) or {})
            for name in self._personal_columns(columns):
                inner = formatters.get(name)
                if not getattr(inner, "masks_personal_data", False):
                    formatters[name] = masked(inner)
            setattr(self, attr, formatters)

    # --- steps on the row and on its detail page ---------------------------------------------
    def step_buttons(self, row) -> Markup:
        """The buttons of `row` for its detail page: its steps, then its documents."""
        pk = self.get_pk_value(row)
        parts = [b.button(self, pk, row, size="md") if isinstance(b, StepButton) else b.render(None, pk, row)
                 for b in self.column_extra_row_actions]
        return Markup("").join(parts)

    # --- the grid's rows (admin/rows.py) ------------------------------------------------------
    def fast_rows(self, row_actions) -> bool:
        return rows.fast_rows(self, row_actions)

    def render_row(self, row, list_columns, row_actions, bulk, return_url) -> Markup:
        return rows.render_row(self, row, list_columns, row_actions, bool(bulk), return_url)

    def back(self):
        """Where a step's form goes when done: the page it was opened from (a detail page, a
        filtered list), else the list."""
        return redirect(redirect_target() or self.get_url(".index_view"))

    # --- roles -----------------------------------------------------------------------------
    def _allowed(self, verb: str) -> bool:
        if self.verbs is not None and verb not in self.verbs:
            return False
        if not has_request_context():
            return True  # Flask-Admin builds its caches at start-up only for verbs it sees allowed
        return can(current_user, self.entity, verb)

    def is_accessible(self) -> bool:
        return current_user.is_authenticated and self._allowed("list")

    def _handle_view(self, name, **kwargs):  # Flask-Admin's documented hook (admin/fast_list.py)
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        verb = {**VERB_OF_ENDPOINT, **self.extra_endpoints}.get(name)
        if name == "action_view":
            verb = self.action_verbs.get(request.form.get("action", ""), verb)
        if verb is None or not self._allowed(verb):
            abort(403)
        operation = self.operations.get(request.form.get("action", "") if name == "action_view" else name)
        if operation and not can_do(current_user, operation):
            abort(403)
        if name == "export" and not self.can_export:
            abort(403)  # e.g. an agent asking for customers' phones (may_export_personal_data)
        if name == "ajax_update" and not self.column_editable_list:
            abort(404)
        return None

    @property
    def can_create(self):
        return self._allowed("create")

    @property
    def can_edit(self):
        return self._allowed("edit")

    @property
    def can_delete(self):
        return self._allowed("delete")

    @property
    def can_export(self):
        if not self._allowed("export"):
            return False
        if not has_request_context() or not self._delivers_personal_data():
            return True
        # The button shows where the user may export personal data of some project's rows; the
        # export itself checks the projects of the rows it delivers (`_export_rows`).
        from models import Project
        allowing = db.session.scalars(select(Project).where(
            Project.agents_may_export_personal_data.is_(True)).limit(1)).all()
        return may_export_personal_data(current_user) or may_export_personal_data(current_user, allowing)

    @property
    def can_view_details(self):
        return self._allowed("details")

    def is_action_allowed(self, name: str) -> bool:
        if name in self.operations and has_request_context() and not can_do(current_user, self.operations[name]):
            return False
        if name in self.action_verbs:
            return self._allowed(self.action_verbs[name])
        if name == "delete":
            return self._allowed("delete") and self._allowed("action")
        return self._allowed("action") and super().is_action_allowed(name)

    def handle_action(self, return_view=None):
        # Row ids come from the browser: anything but whole numbers is refused before any query.
        if not all(i.isdigit() for i in request.form.getlist("rowid")):
            flash(gettext("The selection was not understood; nothing was changed."), "error")
            return redirect(self.get_url(".index_view"))
        return super().handle_action(return_view)

    @action("delete", _l("Delete"), _l("Are you sure you want to delete selected records?"))
    def action_delete(self, ids):
        # Flask-Admin binds the ids as text, which PostgreSQL refuses to compare with integers.
        return super().action_delete([int(i) for i in ids])

    # --- row scoping: get_query, get_count_query AND get_one go together --------------------
    def _scope(self, query, model=None):
        clause = scope_filter(model or self.model, current_user)
        return query if clause is None else query.filter(clause)

    def get_query(self):
        return self._scope(super().get_query())

    def get_count_query(self):
        # func.count(), not count('*'): Flask-Admin's version sends '*' as a bound parameter.
        return self._scope(db.session.query(func.count()).select_from(self.model))

    def _estimated_count(self) -> int | None:
        """PostgreSQL's own row estimate for a big table seen whole (no filter, no search, every
        row visible to the user): counting a million rows costs ~60 ms a page (50,000 units
        ~3 ms), the estimate nothing. It shows as an estimate ("约 1,000,000"). Views that
        narrow the count themselves (their own get_count_query) count, unless they say their
        narrowing is slight (`estimate_whole_table`)."""
        if ((type(self).get_count_query is not ProtectedView.get_count_query and not self.estimate_whole_table)
                or not is_postgresql(db.session) or not has_request_context()
                or request.args.get("search") or any(k.startswith("flt") for k in request.args)
                or scope_filter(self.model, current_user) is not None):
            return None
        estimate = row_estimate(db.session, self.model.__tablename__)
        return estimate if estimate and estimate >= ESTIMATE_FROM else None

    def search_placeholder(self):
        placeholder = super().search_placeholder()
        return f"{placeholder}, {gettext('Unit')}" if placeholder and self.unit_search else placeholder

    def deep_page_from(self) -> int:
        return DEFER_FROM

    def get_one(self, id):
        pk = row_id(id)
        if pk is None:
            abort(404)
        obj = self.get_query().filter(self.model.id == pk).one_or_none()
        if obj is None:
            abort(404)  # another agent's row looks exactly like a missing one
        return obj

    # --- forms ----------------------------------------------------------------------------
    def _scope_pickers(self, form):
        """Relationship pickers list only rows the user may see (e.g. an agent's own leads)."""
        for field in form:
            if isinstance(field, (QuerySelectField, QuerySelectMultipleField)) and field.query_factory:
                query = field.query_factory()
                target = query.column_descriptions[0]["entity"]
                field.query = self._scope(query, target)
        return form

    def create_form(self, obj=None):
        return self._scope_pickers(super().create_form(obj))

    def edit_form(self, obj=None):
        return self._scope_pickers(super().edit_form(obj))

    def handle_view_exception(self, exc: Exception) -> bool:
        if isinstance(exc, RuleViolation):
            flash(str(exc), "error")
            return True
        if isinstance(exc, DataError):
            db.session.rollback()
            flash(OUT_OF_RANGE, "error")
            return True
        if isinstance(exc, IntegrityError):
            db.session.rollback()
            flash(gettext("This would break a rule of the database (a duplicate or a missing "
                          "reference). Nothing was saved."), "error")
            return True
        if super().handle_view_exception(exc):  # a form's ValidationError: its own message
            return True
        # Anything else: logged for us, a plain sentence for the user (Flask-Admin would flash
        # the exception's text, SQL and all).
        current_app.logger.exception("%s failed in %s", request.endpoint, type(self).__name__)
        db.session.rollback()
        flash(gettext("The server could not finish the request. Nothing was saved; please try "
                      "again, and tell an administrator if it happens again."), "error")
        return True

    # --- export ---------------------------------------------------------------------------
    def _delivers_personal_data(self) -> bool:
        """Whether this view's export would give the user personal data whole (a kind of it the
        user reads unmasked, models.permissions.sees_whole)."""
        kinds: set[str] = set()
        for name in self._personal_columns(self.export_columns()):
            kinds |= {kind_of(name)} if kind_of(name) else set(MASKS)
        return any(sees_whole(_viewer(), kind) for kind in kinds)

    def _projects_of(self, rows):
        """The projects the exported rows belong to, or None when a row's project is not known."""
        from models import Project
        ids = {getattr(row, "project_id", None) for row in rows}
        if None in ids:
            return None
        return db.session.scalars(select(Project).where(Project.id.in_(ids))).all() if ids else []

    def _export_rows(self, export_type: str) -> list[list]:
        """The export's cells as plain values, read while the request's session is open: the file
        is streamed after the view returns (and the audit row is committed), when the ORM rows
        would be expired or detached. The audit row records the rows delivered, counted here
        from these very values."""
        from models.exports import audit_export
        _, data = self.export_data()
        personal = self._delivers_personal_data()
        if personal and not may_export_personal_data(current_user, self._projects_of(data)):
            abort(403)
        values = self.export_cells(data)
        filters = {k: v for k, v in request.args.items() if k != "url"}
        audit_export(db.session, current_user, self.entity, export_type, filters, len(values),
                     personal=personal)
        db.session.commit()
        return values

    def get_export_value(self, model, name):
        return neutralise_formula(super().get_export_value(model, name))


class ReadOnlyView(ProtectedView):
    """A grid whose rows only domain functions write (money, ladder events, audit)."""

    column_editable_list = None


class ProtectedPage(BaseView):
    """A custom (non-grid) page with the same role checks: `entity` in PERMISSIONS, and
    `verb_of` mapping each exposed method name to a verb (default "list")."""

    entity: str = ""
    verb_of: dict[str, str] = {}

    def is_accessible(self) -> bool:
        return current_user.is_authenticated and can(current_user, self.entity, "list")

    def _handle_view(self, name, **kwargs):  # Flask-Admin's documented hook (admin/fast_list.py)
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        if not can(current_user, self.entity, self.verb_of.get(name, "list")):
            abort(403)
        return None
