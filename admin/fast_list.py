"""Every Flask-Admin and Flask-Babel internal the project overrides, patches or copies, in one place.

The project's grids are Flask-Admin 2's ModelView made faster and stricter (issue 11: rows first,
the count only when needed, n-gram search, deep pages by their ids, filters translated once per
language, exports audited and streamed from plain values). Doing so means overriding methods whose
names start with "_" and patching module functions: nothing upstream promises they stay. They are
all here, so that an upgrade has one file to re-read:

* `FastList`, the mixin the project's base grid (`admin.base.ProtectedView`) inherits before
  Flask-Admin's ModelView: every private-method override, and thin public readers of the private
  attributes other modules need (`action_text`, `choices_map`, `field_value`).
* `install(app)`, called once from `admin.init_app`: the module-level patches.
* `PINNED` and `UPSTREAM`: the versions this was written against and, for every upstream function
  we override, patch or read and every upstream template we copied or extend, the sha256 of its
  source (first 16 hex digits) and what we rely on. tests/test_fast_list.py fails when a version
  or a digest moves, naming the piece to re-check.

Documented override points stay where they are: `_handle_view` (Flask-Admin's documented hook
"executed before calling any view method", the one its docs override for access control) in
admin/base.py and admin/__init__.py. The copied templates keep the paths that override
Flask-Admin's (templates/admin/...): Jinja finds them by name.

Flask-Babel's catalogue look-up, patched (admin/i18n.py) until issue 20, is no longer patched:
bench/babel_catalogue.py, with and without it in the same run, measured under 5 % of a grid page
and of the dashboard; it keeps a copy of the patch to measure again.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import inspect
import mimetypes
from collections import OrderedDict

from flask import Response, abort, has_request_context
from flask_admin._compat import csv_encode
from flask_admin.contrib.sqla.ajax import QueryAjaxModelLoader
from flask_admin.contrib.sqla.tools import parse_like_term
from flask_babel import get_locale, gettext
from flask_login import current_user
from sqlalchemy import Unicode, cast, or_, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import joinedload
from markupsafe import escape
from werkzeug.utils import secure_filename

from models import db
from models.dialect import is_postgresql
from models.permissions import scope_filter, sees_whole
from models.privacy import kind_of
from models.inventory import unit_names_like
from models.search import gram_indexed, narrowed, phone_term, search_text

# Flask-Babel: nothing private is used any more (its catalogue patch was dropped in issue 20,
# bench/babel_catalogue.py); pinned all the same, for the lazy strings admin/rows.py reads.
PINNED = {"flask_admin": "2.2.1", "flask_babel": "4.0.0"}

# Upstream piece -> (sha256 of its source or text, first 16 hex digits; what we rely on).
# A function is "module:qualname"; a template is "template:<path under flask_admin/templates>".
UPSTREAM: dict[str, tuple[str, str]] = {
    # --- overridden (FastList) ---------------------------------------------------------------
    "flask_admin.contrib.sqla.view:ModelView.get_list": (
        "7e7235cbc8ce57ce",
        "FastList.get_list is a reordered copy: same steps (_apply_search, _apply_filters, "
        "_auto_joins, _apply_sorting, _apply_pagination) and same (count, rows) result"),
    "flask_admin.contrib.sqla.view:ModelView._apply_search": (
        "2c01e5aa3767aedd",
        "FastList._apply_search is a copy (each word in any of _search_fields, joined by "
        "_apply_path_joins, ILIKE) with the n-gram index, masked columns matched whole, unit names"),
    "flask_admin.contrib.sqla.view:ModelView._apply_pagination": (
        "1de11beb4dd2cd2f",
        "FastList._apply_pagination calls it for shallow pages; deep pages use limit/offset alike"),
    "flask_admin.model.base:BaseModelView._get_list_extra_args": (
        "6302de06c10ccc71",
        "FastList._get_list_extra_args calls it and reads ViewArgs.page"),
    "flask_admin.model.base:BaseModelView._get_filter_groups": (
        "d6c8d411822bb462",
        "FastList._get_filter_groups returns the same OrderedDict(label -> [filter dicts]) from "
        "_filter_groups' items (group.label, group.filters: operation, options)"),
    "flask_admin.model.base:FilterGroup.non_lazy": (
        "ad17afda31739d85",
        "FastList._get_filter_groups does what it does (labels and options as text), once per language"),
    "flask_admin.contrib.sqla.view:ModelView._create_ajax_loader": (
        "d1903f20c434abea",
        "FastList._create_ajax_loader returns a ScopedAjaxLoader (a QueryAjaxModelLoader) instead"),
    "flask_admin.contrib.sqla.ajax:QueryAjaxModelLoader.get_query": (
        "d5f1fcde4386880f", "ScopedAjaxLoader.get_query filters what it returns"),
    "flask_admin.contrib.sqla.ajax:QueryAjaxModelLoader.get_one": (
        "370a809c9eae8878", "ScopedAjaxLoader.get_one replaces it (by get_query, so scoped)"),
    "flask_admin.model.base:BaseModelView._export_csv": (
        "ef0f1091487cb0af",
        "FastList._export_csv writes the same CSV (titles, then csv_encode'd values) from plain values"),
    "flask_admin.model.base:BaseModelView._export_tablib": (
        "0aa4b1f2dbaeb1db", "FastList._export_tablib writes the same tablib Dataset from plain values"),
    # --- called or read (FastList, admin/rows.py) ----------------------------------------------
    "flask_admin.model.base:BaseModelView._export_data": (
        "f45d6dd506bf9d68", "FastList.export_data: (count, rows) of the export, by get_list"),
    "flask_admin.model.base:BaseModelView._get_field_value": (
        "420ec27dde3a8ba0", "FastList.field_value: a cell's raw value"),
    "flask_admin.model.base:BaseModelView._get_list_value": (
        "9ef8cf112ec80abe",
        "admin/rows.py RowKit.value does what it does: column formatter or field value, its choice "
        "label from _column_choices_map, else the first matching column_type_formatters entry"),
    "flask_admin.model.base:BaseModelView._refresh_cache": (
        "1ef2ec6ba80b5e8f", "FastList.choices_map reads _column_choices_map, which this builds"),
    "flask_admin.actions:ActionsMixin.init_actions": (
        "787b1cc5b47bbc32", "FastList.action_text reads _actions_data[name] = (method, text, confirmation)"),
    "flask_admin.model.template:BaseListRowAction": (
        "88a3a5f2411e49ad",
        "admin/steps.py StepButton and admin/documents.py DocumentButton subclass it: "
        "render(context, row_id, row) and the row-action list Flask-Admin builds from "
        "column_extra_row_actions"),
    "flask_admin.model.template:ViewRowAction": (
        "66f784c403d37f9d", "admin/rows.py renders rows fast only for these exact types (FAST)"),
    "flask_admin.model.template:EditRowAction": (
        "a7fc239e595ec895", "admin/rows.py renders rows fast only for these exact types (FAST)"),
    "flask_admin.model.template:DeleteRowAction": (
        "ff5b9ac4b3f8d10b", "admin/rows.py renders rows fast only for these exact types (FAST)"),
    "flask_admin._compat:csv_encode": ("9296c8a9b1023bcb", "the exports' cells and titles"),
    "flask_admin.form:BaseForm": (
        "68678eb164746e71", "admin_form_translations() reads BaseForm.Meta._translations (wtforms' "
        "messages in Flask-Admin's catalogue), admin.base.SecureForm's translations"),
    "flask_admin.base:Admin.add_view": (
        "683234ac1830a164", "registered_views() reads Admin._views, the views in the order added"),
    # --- documented hooks overridden where they are (exceptions of tests/test_fast_list.py) ----
    "flask_admin.base:BaseView._handle_view": (
        "8102d997b55fa25d",
        "the documented hook run before every view method (returns a response to stop it); "
        "admin.base.ProtectedView/ProtectedPage and admin.DashboardView check roles there"),
    # --- patched (install) -------------------------------------------------------------------
    "flask_admin.helpers:get_redirect_target": (
        "14a409bbad9b7ea9",
        "install() replaces the names flask_admin.model.base and flask_admin.actions imported from "
        "flask_admin.helpers by admin.auth.redirect_target (same signature: param_name='url')"),
    "flask_babel.speaklater:LazyString": (
        "9a81ab1de83f33e7",
        "admin/rows.py tells a translated label by isinstance(value, LazyString) and reads its text "
        "by str() once per page"),
    # --- templates copied (templates/admin/...) or extended -----------------------------------
    "template:bootstrap4/admin/model/list.html": (
        "21003d92feb9a75c",
        "templates/admin/model/grid.html extends it: blocks list_header and list_row; admin/rows.py "
        "renders its rows' cells and buttons with the same markup (tests/test_scale.py)"),
    "template:bootstrap4/admin/model/row_actions.html": (
        "4dc1ade152ecd029",
        "templates/admin/model/row_actions.html is a copy (no inline event handler); admin/rows.py "
        "writes the same buttons"),
    "template:bootstrap4/admin/lib.html": (
        "21a2c36fee3e1984",
        "admin/rows.py writes the delete button's form as lib.html's macros do (hidden id, url, csrf)"),
    "template:bootstrap4/admin/model/layout.html": (
        "9801f7f6e21b6dfe",
        "templates/admin/model/layout.html is a copy (no inline handler; names for screen readers)"),
    "template:bootstrap4/admin/model/inline_list_base.html": (
        "9385d36000f838cd", "templates/admin/model/inline_list_base.html is a copy (no inline handler)"),
    "template:bootstrap4/admin/actions.html": (
        "685288ebd9108462", "templates/admin/actions.html is a copy (no inline handler)"),
    "template:bootstrap4/admin/base.html": (
        "a6add6a45c2ac3c5",
        "templates/admin/base.html is a copy (<html lang>, one <main>, the menu button's aria-label)"),
    "template:bootstrap4/admin/static.html": (
        "efbdfee9e7f4eef8",
        "templates/admin/static.html replaces its url() macro (admin/menu.py static_url)"),
}


def upstream_source(name: str) -> str:
    """The source of an upstream function (`module:qualname`) or the text of an upstream template
    (`template:path`), as installed."""
    import importlib
    from pathlib import Path

    if name.startswith("template:"):
        import flask_admin
        return (Path(flask_admin.__file__).parent / "templates" / name.split(":", 1)[1]).read_text("utf-8")
    module, qualname = name.split(":")
    target = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return inspect.getsource(target)


def upstream_digest(name: str) -> str:
    return hashlib.sha256(upstream_source(name).encode("utf-8")).hexdigest()[:16]


MAX_PAGE = 10 ** 9  # past any grid; a larger ?page= is a bad request (400), not an SQL offset overflow


class EstimatedCount(int):
    """A grid's row count that is PostgreSQL's estimate: it reads "约 1,000,000" on the page."""

    def __html__(self) -> str:
        return str(escape(gettext("about %(n)s", n=f"{int(self):,}")))

    __str__ = __html__


def _viewer():
    return current_user if has_request_context() else None


def _reads_database(options) -> bool:
    """Whether a filter's options are read from the database on each page (an object of its
    own, such as admin.filters._Agents) rather than fixed (a list)."""
    return bool(options) and not isinstance(options, (list, tuple))


def _option_texts(options):
    """A filter's options as (value, text), the text translated."""
    return [(value, str(label)) for value, label in options] if options else options


@functools.cache
def _gram_indexed() -> frozenset[tuple[str, str]]:
    return frozenset(gram_indexed(db.metadata))


def admin_form_translations():
    """Flask-Admin's translations of WTForms' own messages ("This field is required."…), for a
    form's Meta.get_translations."""
    from flask_admin.form import BaseForm
    return BaseForm.Meta._translations


def registered_views(admin) -> list:
    """The views added to a Flask-Admin `Admin`, in the order added (the menu's order)."""
    return admin._views


class ScopedAjaxLoader(QueryAjaxModelLoader):
    """Flask-Admin's ajax lookup ignores the view's get_query: this one applies row scoping."""

    def _scoped(self, query):
        clause = scope_filter(self.model, current_user)
        return query if clause is None else query.filter(clause)

    def get_query(self):
        return self._scoped(super().get_query())

    def get_one(self, pk):
        with db.session.no_autoflush:
            return self.get_query().filter(getattr(self.model, self.pk) == pk).one_or_none()


class FastList:
    """Flask-Admin's ModelView internals, overridden. Put before ModelView in the bases.

    The host view may provide `_estimated_count()` (PostgreSQL's estimate to show instead of
    counting, or None), `deep_page_from()` (rows skipped from which a page is found by its ids
    first, or None), `unit_search` (search by a unit's displayed name), and must provide
    `_export_rows(export_type)` (the export's cells, checked and audited)."""

    unit_search: str | None = None

    # --- readers of Flask-Admin's private attributes, for the rest of the project -----------
    def action_text(self, name: str) -> tuple[str, str | None]:
        """An action's (text, confirmation) as declared by @action."""
        _, text, confirmation = self._actions_data[name]
        return text, confirmation

    def choices_map(self) -> dict:
        """The column_choices of the view as {column: {value: label}}."""
        return self._column_choices_map

    def field_value(self, model, name):
        """A cell's raw value (before any formatter)."""
        return self._get_field_value(model, name)

    def listed_columns(self):
        return self._list_columns

    def details_columns(self):
        return self._details_columns

    def export_columns(self):
        return self._export_columns

    def export_data(self):
        """The rows an export delivers, by the grid's filters, search and sort: (count, rows)."""
        return self._export_data()

    # --- the list ----------------------------------------------------------------------------
    def _estimated_count(self) -> int | None:
        return None

    def deep_page_from(self) -> int | None:
        return None

    def get_list(self, page, sort_column, sort_desc, search, filters, execute=True, page_size=None):
        """Flask-Admin's, in another order: the page's rows first, then the count only if
        neither the rows (a first page that is not full) nor PostgreSQL's estimate
        (`_estimated_count`) tells it. A search that finds one customer runs one query, not two."""
        joins, count_joins = {}, {}
        query = self.get_query()
        estimate = None if self.simple_list_pager else self._estimated_count()
        count_query = self.get_count_query() if not self.simple_list_pager and estimate is None else None
        if self._search_supported and search:
            query, count_query, joins, count_joins = self._apply_search(
                query, count_query, joins, count_joins, search)
        if filters and self._filters:
            query, count_query, joins, count_joins = self._apply_filters(
                query, count_query, joins, count_joins, filters)
        for join in self._auto_joins:
            query = query.options(joinedload(join))
        query, joins = self._apply_sorting(query, joins, sort_column, sort_desc)
        # Rows tied on the sort (payments of one day) in one order on every page and every way a
        # page is found (plainly or ids first): PostgreSQL returns ties in any order otherwise.
        query = query.order_by(self.model.id)
        query = self._apply_pagination(query, page, page_size)
        if not execute:
            count = count_query.scalar() if count_query is not None else estimate
            return count, query
        rows = query.all()
        size = self.page_size if page_size is None else page_size
        if estimate is not None:
            count = EstimatedCount(estimate)
        elif count_query is None:
            count = None
        elif not page and (not size or len(rows) < size):
            count = len(rows)
        else:
            count = count_query.scalar()
        return count, rows

    def _apply_search(self, query, count_query, joins, count_joins, search):
        """Flask-Admin's search (each word in any searchable column, by ILIKE; a personal column
        the user reads masked only by its whole value), with the n-gram index in front on PostgreSQL when every searchable column has one
        (models/search.py): a customer found by name or phone among 200,000 in ~1 ms of SQL
        instead of a ~100 ms scan."""
        indexed = _gram_indexed()
        grams = is_postgresql(db.session) and all(
            (getattr(field, "table", None) is not None and (field.table.name, field.key) in indexed)
            for field, _ in self._search_fields)
        # A personal column the user reads masked (the VP's 139****5678) is matched whole, never
        # by a part: "1390", "1391"… would otherwise tell its hidden digits one by one.
        whole_only = {field.key for field, _ in self._search_fields
                      if kind_of(field.key) and not sees_whole(_viewer(), kind_of(field.key))}
        # Terms read like the data (issue 19, item 5): full-width as ASCII, a phone's separators
        # dropped for the phone columns (so the whole-only match above compares stored digits).
        for term in search_text(search).split():
            pattern = parse_like_term(term)
            clauses, count_clauses = [], []
            if self.unit_search:  # a unit by its displayed name, "1栋-2301"
                by_unit = self._rows_of_units(unit_names_like(pattern))
                clauses.append(by_unit)
                count_clauses.append(by_unit)
            for field, path in self._search_fields:
                query, joins, alias = self._apply_path_joins(query, joins, path, inner_join=False)
                count_alias = None
                if count_query is not None:
                    count_query, count_joins, count_alias = self._apply_path_joins(
                        count_query, count_joins, path, inner_join=False)
                for target, into in ((field if alias is None else getattr(alias, field.key), clauses),
                                     (field if count_alias is None else getattr(count_alias, field.key),
                                      count_clauses)):
                    typed = phone_term(term) if kind_of(field.key) == "phone" else term
                    if field.key in whole_only:
                        into.append(target == typed)
                        continue
                    clause = cast(target, Unicode).ilike(parse_like_term(typed))
                    into.append(narrowed(target, typed, clause) if grams else clause)
            query = query.filter(or_(*clauses))
            if count_query is not None:
                count_query = count_query.filter(or_(*count_clauses))
        return query, count_query, joins, count_joins

    def _rows_of_units(self, unit_ids):
        """A WHERE clause: this grid's rows whose unit (reached by the relationships named in
        `unit_search`, e.g. "subscription.unit") is one of the SELECT `unit_ids`."""
        steps, cls = [], self.model
        for name in self.unit_search.split("."):
            relationship = sa_inspect(cls).relationships[name]
            steps.append((cls, relationship))
            cls = relationship.mapper.class_
        ids = unit_ids
        for n, (cls, relationship) in enumerate(reversed(steps)):
            ((local, _remote),) = relationship.local_remote_pairs
            clause = getattr(cls, local.key).in_(ids)
            if n == len(steps) - 1:
                return clause
            ids = select(cls.id).where(clause)

    def _apply_pagination(self, query, page, page_size):
        """A deep page (page 1,000 of a million rows) by a deferred join: the page's ids first,
        by the same filters and order but without loading anything (the eager joins of the
        neighbours would be made for every skipped row), then those rows with their neighbours."""
        size = page_size or self.page_size
        deep = self.deep_page_from()
        if not page or not size or deep is None or page * size < deep:
            return super()._apply_pagination(query, page, page_size)
        ids = [row_id for (row_id,) in query.enable_eagerloads(False).with_entities(self.model.id)
               .offset(page * size).limit(size)]
        return query.filter(self.model.id.in_(ids)).limit(size)

    def _get_list_extra_args(self):
        """The grid's address as typed: a page below zero or past MAX_PAGE is a bad request (400)
        instead of a negative or overflowing SQL offset; a page that is not a number is page 1
        (Flask-Admin's reading), a sort column that does not exist no sort."""
        args = super()._get_list_extra_args()
        if not 0 <= args.page <= MAX_PAGE:
            abort(400)
        return args

    # --- the grid's filters, translated once per language ----------------------------------
    def _get_filter_groups(self):
        """Flask-Admin's list of filters for the page (names, operations, options as text).
        It translated every one on every page (~1.5 ms); this keeps the text per language and
        reads only options that come from the database (e.g. the agents' names) each time."""
        if not self._filter_groups:
            return None
        language = str(get_locale())
        by_language = self.__dict__.setdefault("_filter_texts", {})
        texts = by_language.get(language)
        if texts is None:
            texts = by_language[language] = [
                (str(group.label), [{**item, "operation": str(item["operation"]),
                                     "options": item["options"] if _reads_database(item["options"])
                                     else _option_texts(item["options"])} for item in group.filters])
                for group in self._filter_groups.values()]
        return OrderedDict((label, [{**item, "options": _option_texts(item["options"])}
                                    if _reads_database(item["options"]) else item for item in items])
                           for label, items in texts)

    # --- ajax lookups: scoped ---------------------------------------------------------------
    def _create_ajax_loader(self, name, options):
        remote_model = getattr(self.model, name).property.mapper.class_
        return ScopedAjaxLoader(name, db, remote_model, **options)

    # --- export: from plain values, read while the session is open --------------------------
    def _export_headers(self, export_type: str) -> dict:
        """The file named after the grid in the reader's language ("客户登记_…csv" or
        "Customers_…csv"): the name in UTF-8 (RFC 5987), an ASCII fallback for old clients."""
        from urllib.parse import quote
        name = self.get_export_name(export_type=export_type)
        fallback = secure_filename(name).lstrip("_") or f"export.{export_type}"
        return {"Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}",
                "Cache-Control": "private, no-store"}

    def export_cells(self, rows) -> list[list]:
        """The exported rows' cells as text, as Flask-Admin's exports write them."""
        columns = [name for name, _ in self._export_columns]
        return [[csv_encode(self.get_export_value(row, name)) for name in columns] for row in rows]

    def _export_csv(self, return_url):
        """Flask-Admin's CSV stream, from plain values (`_export_rows`) instead of ORM rows."""
        values = self._export_rows("csv")
        titles = [csv_encode(label) for _, label in self._export_columns]

        class Echo:
            def write(self, value):
                return value

        writer = csv.writer(Echo())

        def generate():
            yield writer.writerow(titles)
            for row in values:
                yield writer.writerow(row)

        return Response(generate(), headers=self._export_headers("csv"), mimetype="text/csv")

    def _export_tablib(self, export_type, return_url):
        """Flask-Admin's XLSX (tablib), from the same plain values."""
        import tablib
        values = self._export_rows(export_type)
        data = tablib.Dataset(*[tuple(row) for row in values],
                              headers=[csv_encode(label) for _, label in self._export_columns])
        mimetype, encoding = mimetypes.guess_type(f"x.{export_type}")
        mimetype = mimetype or "application/octet-stream"
        return Response(data.export(format=export_type), headers=self._export_headers(export_type),
                        mimetype=f"{mimetype}; charset={encoding}" if encoding else mimetype)


# Module-level patches, by `install`: (module, name, replacement's dotted path).
PATCHES = (
    ("flask_admin.model.base", "get_redirect_target", "admin.auth.redirect_target"),
    ("flask_admin.actions", "get_redirect_target", "admin.auth.redirect_target"),
)


def babel_domains(app) -> tuple:
    """Flask-Babel's domain of our messages and Flask-Admin's. (Flask-Babel's catalogue look-up
    is no longer patched: bench/babel_catalogue.py measured it below 5 % of a page.)"""
    from flask_admin.babel import domain as admin_domain
    with app.app_context():
        return app.extensions["babel"].instance.domain_instance, admin_domain


def install(app) -> None:
    """The patches of Flask-Admin's internals, once per process (idempotent).

    Every Flask-Admin view (create, edit, details, delete, actions) returns only to a path on
    this site (admin/auth.py, redirect_target), never to what its own looser check admits."""
    import importlib
    for module, name, replacement in PATCHES:
        owner, attr = replacement.rsplit(".", 1)
        setattr(importlib.import_module(module), name, getattr(importlib.import_module(owner), attr))
