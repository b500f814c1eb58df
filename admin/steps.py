"""State changes as buttons where the work is: on the row of a grid and on the row's detail page.

A `StepButton` POSTs one of the view's @actions for its row, with the CSRF token, through the
same `action_view` as the bulk menu, so the role check, the row scoping and the domain function
are the ones the menu uses. The button shows only to roles allowed the domain operation
(`operation`, in models.permissions.OPERATIONS; else the view's action right) and only on rows in
a state where the step applies (`when`). Where the domain has a "why not" function for the step
(`why_not`, e.g. models.deals.confirm_refusal), the button asks that same function, so the page
and the rule never disagree: a refusal whose rule is in `explain` (money still missing, a price
waiting for the vice-president) shows the button disabled with the reason; any other hides it.
The domain function still decides, and a refusal comes back as a message saying why.

Steps that change something at once ask first (`static/salesdesk.js` shows the action's
confirmation text); steps that need details open their form, whose Save is the confirmation.
"""
from __future__ import annotations

from typing import Callable
from urllib.parse import urlencode

from flask import request, url_for
from flask_admin.model.template import BaseListRowAction
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

from models.permissions import can, can_do

from .rows import fill, per_request, slotted


class StepButton(BaseListRowAction):
    """A button for the action `name` of the view, on rows where `when(row)` holds.

        row_steps = (StepButton("confirm", "subscription.confirm", when=lambda s: s.status == "draft"),)
    """

    renders_itself = True  # admin/rows.py's fast rows call its button(view, row_id, row)

    def __init__(self, name: str, operation: str | None, when: Callable[[object], bool] | None = None,
                 icon: str = "fa-check", style: str = "primary",
                 why_not: Callable[[object], object] | None = None, explain: tuple[str, ...] = ()):
        super().__init__()
        self.name, self.operation, self.when = name, operation, when
        self.icon, self.style = icon, style
        self.why_not, self.explain = why_not, explain

    def allowed(self, view) -> bool:
        """Whether the user may take this step at all (worked out once per page)."""
        return per_request(("step", id(view), self.name), lambda: view.is_action_allowed(self.name) and (
            not self.operation or can_do(current_user, self.operation)))

    def applies(self, view, row) -> bool:
        return self.allowed(view) and (self.when is None or bool(self.when(row)))

    def button(self, view, row_id, row, size: str = "sm") -> Markup:
        if not self.applies(view, row):
            return Markup("")
        refusal = self.why_not(row) if self.why_not is not None else None
        if refusal is not None:
            return self._refused(view, refusal, size) if getattr(refusal, "rule", None) in self.explain else Markup("")
        return fill(per_request(("step-button", id(view), self.name, size), lambda: self._form(view, size)), row_id)

    def _refused(self, view, refusal, size: str) -> Markup:
        """The step, disabled, with the domain's reason: on the row as its title, on the row's
        page also as text under it."""
        text, _ = view.action_text(self.name)
        button = Markup('<span class="d-inline-block step-refused" title="%s"><button type="button" '
                        'class="btn btn-%s btn-outline-secondary text-nowrap mr-1 mb-1" data-step="%s" disabled>'
                        '<span class="fa %s"></span> %s</button></span>') % (
            str(refusal), size, self.name, self.icon, text)
        if size == "md":
            button += Markup('<div class="small text-muted step-why">%s</div>') % str(refusal)
        return button

    def _form(self, view, size: str) -> tuple[str, str]:
        """The button's form before and after the row's id (built once per page)."""
        text, confirmation = view.action_text(self.name)
        return slotted(Markup(
            '<form class="step-form d-inline" method="POST" action="%s">'
            '<input type="hidden" name="csrf_token" value="%s">'
            '<input type="hidden" name="action" value="%s">'
            '<input type="hidden" name="rowid" value="\0">'
            '<input type="hidden" name="url" value="%s">'
            '<button type="submit" class="btn btn-%s btn-outline-%s text-nowrap mr-1 mb-1" '
            'data-step="%s"%s><span class="fa %s"></span> %s</button></form>') % (
                view.get_url(".action_view"), generate_csrf(), self.name, request.full_path.rstrip("?"),
                size, self.style, self.name,
                Markup(' data-confirm="%s"') % confirmation if confirmation else "",
                self.icon, text))

    def render(self, context, row_id, row):
        return self.button(context.resolve("admin_view"), row_id, row)


class LinkButton(StepButton):
    """A button on the row (and its detail page) that opens another view's form for the row,
    e.g. "record a follow-up" for a customer: a link to `endpoint` with the row's id as `param`
    and the page it is on as the way back (`url`). Shown to roles that may open that form
    (`verb` on `entity`) and run the domain operation (`operation`), on rows where `when(row)`
    holds. The form it opens checks the row's scope again: the address alone proves nothing.

        LinkButton("follow_up", "follow_up.create_view", "lead_id", _l("Record follow-up"),
                   entity="follow_up", operation="lead.follow_up", when=lambda lead: ...)
    """

    def __init__(self, name: str, endpoint: str, param: str, text, *, entity: str, verb: str = "create",
                 operation: str | None = None, when: Callable[[object], bool] | None = None,
                 icon: str = "fa-plus", style: str = "primary"):
        super().__init__(name, operation, when=when, icon=icon, style=style)
        self.endpoint, self.param, self.text = endpoint, param, text
        self.entity, self.verb = entity, verb

    def allowed(self, view) -> bool:
        return per_request(("link", self.name, self.endpoint), lambda: can(current_user, self.entity, self.verb) and (
            not self.operation or can_do(current_user, self.operation)))

    def button(self, view, row_id, row, size: str = "sm") -> Markup:
        if not self.applies(view, row):
            return Markup("")
        return fill(per_request(("link-button", self.name, size), lambda: self._link(size)), row_id)

    def _link(self, size: str) -> tuple[str, str]:
        """The link before and after the row's id (built once per page)."""
        back = urlencode({"url": request.full_path.rstrip("?")})
        return slotted(Markup(
            '<a class="btn btn-%s btn-outline-%s text-nowrap mr-1 mb-1" data-link="%s" href="%s?%s=\0&amp;%s">'
            '<span class="fa %s"></span> %s</a>') % (
                size, self.style, self.name, url_for(self.endpoint), self.param, back, self.icon, self.text))
