"""The steps of the grids, written once each as data (the buttons that take them are admin/steps.py).

`form_steps(FormStep(...), ...)` makes, per step, the @action that opens the step's form for the
selected rows and the POST endpoint that runs it through the domain; `decision_steps(...)` makes
the actions that decide the selected rows at once (approve/reject, keep/transfer, withhold/put
back). Both are mixins, like `admin.documents.document_actions`; the view keeps its `row_steps`
(the buttons) and its `extra_endpoints` (the verb guarding each POST endpoint).

(Not in admin/steps.py: admin/base.py imports its StepButton, and this module needs base's
run_domain.)
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from flask import flash
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.helpers import get_form_data

from .base import ALREADY_DONE, run_domain, succeeded


def selected_rows(view, ids) -> list:
    """The rows of the view's own query (the user's row scope) among `ids`."""
    return view.get_query().filter(view.model.id.in_([int(i) for i in ids])).all()


def posted_rows(view, ids) -> list:
    """The rows a step's POST names: the view's `posted_rows` when it has one (a worklist finds
    its rows by the user's scope alone), else `selected_rows`."""
    if hasattr(view, "posted_rows"):
        return view.posted_rows(ids)
    return selected_rows(view, ids) if ids else []


def posted_ids(form, field: str = "ids") -> list[int]:
    """The row ids a step's form sends back in a hidden field (`ids`, or the step's `key_field`):
    "3,5,8" -> [3, 5, 8]."""
    return [int(i) for i in (form[field].data or "").split(",") if i.isdigit()]


class FormStep:
    """A step that needs a few fields first: its action (`name`, `text` in the action menu) opens
    `form_class` (titled `title`, default `text`) for the selected rows; the form's POST, at
    `url` (default /<name>/, endpoint `<name>_view`), runs `run(by, form, subject)` through the
    domain and flashes `done(form, subject, result)`; an invalid form or no rows flash `missing`.

    The subject is the one row when `one` is given (the message when the selection is not one
    row), else the list of rows. Messages are lazy strings (`_l`), translated when shown.
    `fill(subject)` gives the form's first values (besides `ids`), `context(subject)` what the
    page shows above the form, `prepare(form, rows)` sets choices read from the database (called
    on the form shown and on the form posted, before it is read).

    A money form (`again=True`) is shown again, as sent and with its errors, when it is invalid
    or the domain refuses it (not when it was sent before: ALREADY_DONE goes back); rows that
    cannot be found flash `unknown` and go back (without `unknown`, the form is shown again).
    `first(subject)` adds to the page only when the form is first opened (a settlement's
    proposal); `key_field` names the hidden field carrying the rows' ids (default `ids`).
    `form_for(rows)` picks the form by the rows (a change request's resubmission takes its kind's
    form; `form_class` is then the form the rows' ids are read from); `template` the page. A form
    posted by its `refresh` button (a chooser's: "show its units") is shown again with the choices
    `prepare` sets for what it sent, and nothing is run.

        FormStep("pause", _l("Pause the follow-up"), PauseForm, one=_l("Select exactly one customer."),
                 run=lambda by, form, lead: pause_follow_up(db.session, by, lead.id, ...),
                 done=lambda form, lead, result: gettext("Follow-up paused until %(until)s.", ...),
                 missing=_l("Give the date the pause ends and the reason."))
    """

    def __init__(self, name: str, text, form_class, *, run: Callable, done: Callable, missing=None,
                 one=None, title=None, url: str | None = None, fill: Callable | None = None,
                 context: Callable | None = None, prepare: Callable | None = None, confirmation=None,
                 again: bool = False, unknown=None, first: Callable | None = None, key_field: str = "ids",
                 form_for: Callable | None = None, template: str = "admin/deal_step.html"):
        self.name, self.text, self.form_class = name, text, form_class
        self.run, self.done, self.missing, self.one = run, done, missing, one
        self.title, self.url, self.confirmation = title if title is not None else text, url or f"/{name}/", confirmation
        self.fill, self.context, self.prepare = fill, context, prepare
        self.again, self.unknown, self.first, self.key_field = again, unknown, first, key_field
        self.form_for, self.template = form_for, template

    def title_for(self, view):
        return self.title(view) if callable(self.title) else self.title

    def subject(self, rows):
        return rows[0] if self.one is not None else rows

    def enough(self, rows) -> bool:
        return len(rows) == 1 if self.one is not None else bool(rows)

    def page(self, view, form, rows, opening: bool = False):
        context = self.context(self.subject(rows)) if self.context and rows else {}
        if opening and self.first:
            context.update(self.first(self.subject(rows)))
        return view.render(self.template, form=form, title=self.title_for(view),
                           action_url=view.get_url(f".{self.name}_view"), **context)

    def open(self, view, ids):
        """The action: the form for the selected rows."""
        rows = selected_rows(view, ids)
        if self.one is not None and len(rows) != 1:
            flash(str(self.one), "error")
            return None
        form_class = self.form_for(rows) if self.form_for else self.form_class
        form = form_class(**{self.key_field: ",".join(str(r.id) for r in rows)},
                               **(self.fill(self.subject(rows)) if self.fill else {}))
        if self.prepare:
            self.prepare(form, rows)
        return self.page(view, form, rows, opening=True)

    def post(self, view):
        """The form's POST: the step through the domain, then back where the form was opened."""
        form = self.form_class(get_form_data())
        rows = posted_rows(view, posted_ids(form, self.key_field))
        if self.form_for:
            form = self.form_for(rows)(get_form_data())
        if self.prepare:
            self.prepare(form, rows)
        if self.enough(rows) and getattr(getattr(form, "refresh", None), "data", False):
            return self.page(view, form, rows)  # a chooser's button: the form again, nothing run
        if self.again:
            return self._post_again(view, form, rows)
        if not self.enough(rows) or not form.validate():
            flash(str(self.missing), "error")
        else:
            subject = self.subject(rows)
            result = run_domain(lambda by: self.run(by, form, subject))
            if succeeded(result):
                flash(self.done(form, subject, result), "success")
        return view.back()

    def _post_again(self, view, form, rows):
        if not self.enough(rows) and self.unknown is not None:
            flash(str(self.unknown), "error")
            return view.back()
        if not self.enough(rows) or not form.validate():
            return self.page(view, form, rows)
        subject = self.subject(rows)
        result = run_domain(lambda by: self.run(by, form, subject))
        if succeeded(result):
            flash(self.done(form, subject, result), "success")
        elif result is not ALREADY_DONE:
            return self.page(view, form, rows)
        return view.back()


def form_steps(*steps: FormStep):
    """A mixin with, per step, the action `<name>` that opens its form and the POST endpoint
    `<name>_view` that runs it (the view's `extra_endpoints` names the verb guarding it)."""
    attrs: dict = {}
    for step in steps:
        def open_form(self, ids, step=step):
            return step.open(self, ids)

        def run_form(self, step=step):
            return step.post(self)

        open_form.__name__, run_form.__name__ = f"action_{step.name}", f"{step.name}_view"
        attrs[open_form.__name__] = action(step.name, step.text, step.confirmation)(open_form)
        attrs[run_form.__name__] = expose(step.url, methods=("POST",))(run_form)
    return type("FormSteps", (), attrs)


class Decision(NamedTuple):
    """One of a decision's actions: its name, text and confirmation, and the value it decides."""

    name: str
    text: object
    confirmation: object
    value: object


def decision_steps(decide: Callable, done: Callable, *decisions: Decision, after: Callable | None = None):
    """A mixin with one action per decision, each deciding every selected row at once through
    the domain, `decide(by, row, value)`, then flashing `done(n)` (n rows decided) and, once
    committed, calling `after(results)` if given:

        decision_steps(lambda by, row, approve: decide_price(db.session, by, row.id, approve),
                       lambda n: gettext("%(n)d price requests decided.", n=n),
                       Decision("approve", _l("Approve the price"), _l("Approve these…?"), True),
                       Decision("reject", _l("Reject the price"), _l("Reject these…?"), False))
    """
    attrs: dict = {}
    for decision in decisions:
        def run(self, ids, value=decision.value):
            rows = selected_rows(self, ids)
            results = run_domain(lambda by: [decide(by, row, value) for row in rows]) if rows else None
            if rows and succeeded(results):
                flash(done(len(rows)), "success")
                if after is not None:  # what follows the commit (documents handed to the workers)
                    after(results)

        run.__name__ = f"action_{decision.name}"
        attrs[run.__name__] = action(decision.name, decision.text, decision.confirmation)(run)
    return type("DecisionSteps", (), attrs)


