"""A grid's rows rendered in Python, one string per row, instead of Flask-Admin's per-cell and
per-button Jinja macros: the same markup, about a third of the time (a page of 30 rows went from
~20 ms of template to ~6 ms; see BENCHMARKS.md, "Grids").

What does not change per row — URLs without the id, the CSRF token, translated titles, whether
the user may use a step at all — is worked out once per page (`RowKit`); a row is then string
formatting. Row buttons of types this module does not know, and editable columns, keep
Flask-Admin's template (`fast_rows` says which way a page goes).
"""
from __future__ import annotations

from urllib.parse import urlencode

from flask import g, has_app_context
from flask_admin.babel import gettext as admin_gettext
from flask_admin.model.template import DeleteRowAction, EditRowAction, ViewRowAction
from flask_babel import gettext
from flask_babel.speaklater import LazyString
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup, escape


ID_SLOT = "\0"  # where a row's id goes in a button built once per page (no value we fill in holds NUL)


def slotted(markup: Markup) -> tuple[str, str]:
    """A button's markup, built once per page with ID_SLOT for the row's id, as the text before
    and after that slot."""
    head, tail = str(markup).split(ID_SLOT, 1)
    return head, tail


def fill(slots: tuple[str, str], row_id) -> Markup:
    """The button of one row: its id, escaped, in the slot."""
    return Markup(f"{slots[0]}{escape(row_id)}{slots[1]}")


def per_request(key, make):
    """`make()` once per request for `key` (kept on flask.g; outside an app context, each time)."""
    if not has_app_context():
        return make()
    cache = g.setdefault("_per_request", {})
    if key not in cache:
        cache[key] = make()
    return cache[key]


class RowKit:
    """What every row of one page shares."""

    def __init__(self, view, return_url: str):
        self.view = view
        back = "&" + urlencode({"url": return_url}) if return_url else ""
        link = Markup('<a class="icon" href="%s?id=\0%s" title="%s"><span class="fa %s"></span></a>')
        self.details = slotted(link % (view.get_url(".details_view"), back, admin_gettext("View Record"),
                                       "fa-eye glyphicon glyphicon-eye-open"))
        self.edit = slotted(link % (view.get_url(".edit_view"), back, admin_gettext("Edit Record"),
                                    "fa-pencil glyphicon glyphicon-pencil"))
        self.delete = slotted(Markup(
            '<form class="icon" method="POST" action="%s">'
            '<input id="id" name="id" type="hidden" value="\0">'
            '<input id="url" name="url" type="hidden" value="%s">'
            '<input id="csrf_token" name="csrf_token" type="hidden" value="%s">'
            '<button data-confirm="%s" title="%s"><span class="fa fa-trash glyphicon glyphicon-trash">'
            '</span></button></form>') % (
            view.get_url(".delete_view"), return_url or "", generate_csrf(),
            admin_gettext("Are you sure you want to delete this record?"), admin_gettext("Delete Record")))
        # Named for screen readers in the page's language, as templates/admin/model/grid.html
        # names Flask-Admin's own.
        self.checkbox = slotted(Markup('<td><input type="checkbox" name="rowid" class="action-checkbox" '
                                       'aria-label="%s" value="\0" title="%s" /></td>') % (
            gettext("Select this row"), admin_gettext("Select record")))
        self.formatters, self.choices = view.column_formatters, view.choices_map()
        self.type_formatters: dict[type, object] = {}  # by a value's type: the first that matches
        self.plains: dict[int, str] = {}  # a lazy (translated) value's text, by the object's id
        self.cells: dict[str, str] = {}
        self.keep: list = []  # the lazy values themselves, so their ids stay theirs

    def value(self, row, column):
        """What Flask-Admin's `_get_list_value` returns for the cell (column formatter, else the
        field; its choice label; else its type's formatter), with each type's formatter found
        once per page rather than by ~10 isinstance tests a cell."""
        view = self.view
        formatter = self.formatters.get(column)
        value = formatter(view, None, row, column) if formatter is not None else view.field_value(row, column)
        choices = self.choices.get(column)
        if choices:  # looked up by the text of a translated label (the same match, one gettext a page)
            return choices.get(self.plain(value) if isinstance(value, LazyString) else value) or value
        kind = type(value)
        if kind not in self.type_formatters:
            self.type_formatters[kind] = next((f for t, f in view.column_type_formatters.items()
                                               if isinstance(value, t)), None)
        type_formatter = self.type_formatters[kind]
        return value if type_formatter is None else type_formatter(view, value, column)

    def cell(self, column: str) -> str:
        """The opening tag of the column's cells."""
        tag = self.cells.get(column)
        if tag is None:
            tag = self.cells[column] = f'<td class="col-{escape(column)}">'
        return tag

    def plain(self, value) -> str:
        """A translated label's text, once per page (translating costs ~5 µs a time)."""
        key = id(value)
        if key not in self.plains:
            self.keep.append(value)
            self.plains[key] = str(value)
        return self.plains[key]

    def text(self, value) -> str:
        """The escaped text of a cell's value; translated labels are looked up once per page."""
        return str(escape(self.plain(value) if isinstance(value, LazyString) else value))


FAST = (ViewRowAction, EditRowAction, DeleteRowAction)


def fast_rows(view, row_actions) -> bool:
    """Whether this page's rows can be rendered here (every button known, nothing edited in place)."""
    return not view.column_editable_list and all(
        type(a) in FAST or getattr(a, "renders_itself", False) for a in row_actions)


def render_row(view, row, list_columns, row_actions, bulk: bool, return_url: str) -> Markup:
    """One row's cells, as Flask-Admin's list template would render them."""
    kit = per_request(("rows", id(view)), lambda: RowKit(view, return_url))
    pk = view.get_pk_value(row)
    parts = [fill(kit.checkbox, pk)] if bulk else []
    if view.column_display_actions:
        buttons = []
        for action in row_actions:
            kind = type(action)
            if kind is ViewRowAction:
                buttons.append(fill(kit.details, pk))
            elif kind is EditRowAction:
                buttons.append(fill(kit.edit, pk))
            elif kind is DeleteRowAction:
                buttons.append(fill(kit.delete, pk))
            elif hasattr(action, "button"):  # a step (admin/steps.py)
                buttons.append(action.button(view, pk, row))
            else:  # a document (admin/documents.py)
                buttons.append(action.render(None, pk, row))
        # a space between buttons, as the template's loop leaves one (else they touch)
        parts.append('<td class="list-buttons-column">' + "\n".join(b for b in buttons if b) + "</td>")
    for column, _ in list_columns:
        parts.append(f'{kit.cell(column)}{kit.text(kit.value(row, column))}</td>')
    return Markup("".join(parts))
