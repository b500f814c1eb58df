"""The sales floor's front desk (R-RCP-1, R-RCP-2): the rotation screen at /admin/rotation/ (who is
on duty, who is next, the check-in box, the reception form, the moves and exceptions), the
manager's day at /admin/rotation_event/ and the visit register at /admin/visit/.

Thin: every move is a function of models.reception, run through `run_domain`."""
from __future__ import annotations

from flask import flash, jsonify, redirect, request
from flask_admin import expose
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from models import Project, RuleViolation, User, db
from models.leads import protection_text
from models.base import office_time, office_today
from models.labels import choice_label
from models.permissions import can_do
from models.reception import (ROTATION_EXCEPTIONS, VISIT_CHANNELS, RotationEntry, RotationEvent, Visit, check_phone,
                              day_rotation, finish_reception, make_up_turn, move, next_free, open_receptions, receive,
                              rotation_fairness, skip_turn, visit_minutes)
from models.submissions import new_key
from models.users import users_with_roles

from .base import ProtectedPage, ReadOnlyView, row_id, run_domain, succeeded


def _manages() -> bool:
    return current_user.has_role("admin", "sales_manager")


def answer_text(answer: dict) -> str:
    """The check-in answer as the desk reads it (R-RCP-2, R-COM-1)."""
    if answer["status"] == "new":
        text = gettext("New visitor: not a customer of this project yet.")
    else:
        text = str(protection_text(answer["status"], answer["owner"], answer["until"]))
    if answer["channel"]:
        text += " " + gettext("Registered by the channel %(channel)s, valid until %(until)s.",
                              channel=answer["channel"], until=answer["channel_until"])
    return text


class RotationPage(ProtectedPage):
    """The front desk's screen (接待轮序, R-RCP-1): big, legible, refreshing itself every 15 s
    (static/rotation.js reloads the panel; no inline script under the CSP)."""

    entity = "rotation"
    verb_of = {"index": "list", "panel": "list", "check": "list", "move_view": "action",
               "receive_view": "action", "finish_view": "action", "skip_view": "action", "make_up_view": "action"}

    def _project(self, value=None):
        projects = list(db.session.scalars(select(Project).order_by(Project.id)))
        chosen = row_id(value if value is not None else request.args.get("project"))
        return next((p for p in projects if p.id == chosen), projects[0] if projects else None), projects

    def _panel_context(self, project):
        today = office_today()
        entries = day_rotation(db.session, project.id, today) if project else []
        turn = next_free(db.session, project.id, today) if project else None
        receiving = open_receptions(db.session, project.id, today) if project else {}
        position = {e.id: i for i, e in enumerate([e for e in entries if e.status == "free"], start=1)}
        return {"entries": entries, "turn": turn, "receiving": receiving, "position": position, "today": today,
                "minutes": visit_minutes, "office_time": office_time, "manages": _manages(),
                "me": current_user.id, "project": project, "label": choice_label}

    @expose("/")
    def index(self):
        project, projects = self._project()
        ids = users_with_roles(db.session, {"agent"}) if _manages() else []
        agents = list(db.session.scalars(select(User).where(User.id.in_(ids)).order_by(User.display_name)))
        phone = (request.args.get("phone") or "").strip()
        answer = None
        if phone and project:
            try:
                answer = answer_text(check_phone(db.session, current_user, project.id, phone))
            except RuleViolation as exc:
                answer = str(exc)
        return self.render("admin/rotation.html", projects=projects, agents=agents, phone=phone, answer=answer,
                           channels=[(c, choice_label("visit", "channel", c)) for c in VISIT_CHANNELS],
                           key=new_key(), may_receive=can_do(current_user, "rotation.assign"),
                           **self._panel_context(project))

    @expose("/panel")
    def panel(self):
        """The screen's live part, for the page to refresh itself."""
        project, _ = self._project()
        return self.render("admin/_rotation_panel.html", **self._panel_context(project))

    @expose("/check")
    def check(self):
        """The check-in answer as JSON (visit.check_phone): role-checked here and in the domain;
        it names the owner and the registering channel only, the phone masked by the one rule."""
        project, _ = self._project()
        if project is None:
            return jsonify({"error": gettext("Choose the project.")}), 400
        try:
            answer = check_phone(db.session, current_user, project.id, request.args.get("phone", ""))
        except RuleViolation as exc:
            return jsonify({"error": str(exc)}), 400
        answer.pop("owner_id", None)
        return jsonify({**answer, "text": answer_text(answer)})

    def _back(self, project_id):
        return redirect(self.get_url(".index", project=project_id))

    @expose("/move", methods=("POST",))
    def move_view(self):
        project, _ = self._project(request.form.get("project", ""))
        what, agent = request.form.get("move", ""), row_id(request.form.get("agent_id", ""))
        if project and succeeded(run_domain(lambda by: move(db.session, by, project.id, what, agent_id=agent,
                                                            reason=request.form.get("reason", "")))):
            flash(gettext("The rotation is updated."), "success")
        return self._back(project.id if project else None)

    @expose("/receive", methods=("POST",))
    def receive_view(self):
        form = request.form
        project, _ = self._project(form.get("project", ""))
        if project is None:
            return self._back(None)
        visit = run_domain(lambda by: receive(
            db.session, by, project_id=project.id, phone=form.get("phone", ""), channel=form.get("channel", ""),
            party_size=form.get("party_size", "1"), name=form.get("name", ""), mode=form.get("mode", "turn"),
            agent_id=row_id(form.get("agent_id", "")), reason=form.get("reason", ""), notes=form.get("notes", ""),
            key=form.get("submission_key")))
        if succeeded(visit):
            flash(gettext("%(agent)s receives the visitor.", agent=visit.received_by.display_name), "success")
        return self._back(project.id)

    @expose("/finish", methods=("POST",))
    def finish_view(self):
        project, _ = self._project(request.form.get("project", ""))
        visit_id = row_id(request.form.get("visit_id", "")) or 0
        if succeeded(run_domain(lambda by: finish_reception(db.session, by, visit_id))):
            flash(gettext("The reception is finished."), "success")
        return self._back(project.id if project else None)

    @expose("/skip", methods=("POST",))
    def skip_view(self):
        project, _ = self._project(request.form.get("project", ""))
        if project and succeeded(run_domain(lambda by: skip_turn(db.session, by, project.id,
                                                                 request.form.get("reason", "")))):
            flash(gettext("The turn is passed over."), "success")
        return self._back(project.id if project else None)

    @expose("/make_up", methods=("POST",))
    def make_up_view(self):
        project, _ = self._project(request.form.get("project", ""))
        agent = row_id(request.form.get("agent_id", "")) or 0
        if project and succeeded(run_domain(lambda by: make_up_turn(db.session, by, project.id, agent,
                                                                    request.form.get("reason", "")))):
            flash(gettext("The make-up turn is given."), "success")
        return self._back(project.id if project else None)


def _kind_marked(view, context, model, name):
    """An exception (skip, out of turn, make-up, on behalf) stands out in the manager's day."""
    text = escape(choice_label("rotation_event", "kind", model.kind))
    if model.kind in ROTATION_EXCEPTIONS:
        return Markup('<span class="badge badge-warning rotation-exception">%s</span>') % text
    return text


class RotationEventView(ReadOnlyView):
    """The manager's day (R-RCP-1): every turn, move and exception of the rotation, with reasons."""

    verbs = frozenset({"list", "details", "export"})
    column_list = ("day", "at", "project", "agent", "kind", "turn_of", "reason", "by")
    column_filters = ("day", "kind", "agent.display_name", "project.name")
    column_sortable_list = ("day", "at", "kind")
    column_default_sort = ("id", True)
    column_formatters = {"kind": _kind_marked}
    column_export_list = ("day", "at", "project", "agent", "kind", "turn_of", "reason", "by")
    column_formatters_export = {"kind": lambda v, c, m, n: str(choice_label("rotation_event", "kind", m.kind))}
    list_template = "admin/rotation_event_list.html"

    def render(self, template, **kwargs):
        if template == self.list_template:  # today's figures per project above the events
            today = office_today()
            projects = db.session.scalars(select(Project).where(Project.id.in_(
                select(RotationEntry.project_id).where(RotationEntry.day == today))).order_by(Project.id))
            kwargs["fairness"] = [(p, rotation_fairness(db.session, p.id, today, today)) for p in projects]
            kwargs["label"] = choice_label
        return super().render(template, **kwargs)

    def get_query(self):
        return super().get_query().options(joinedload(RotationEvent.agent), joinedload(RotationEvent.turn_of),
                                           joinedload(RotationEvent.by), joinedload(RotationEvent.project))


def _duration(view, context, model, name):
    return gettext("%(n)s min", n=visit_minutes(model)) if model.ended_at else gettext("in progress")


def _yes_no(view, context, model, name):
    return gettext("Yes") if getattr(model, name) else gettext("No")


class VisitView(ReadOnlyView):
    """The visit register (R-RCP-2): every visit, first or return, its channel, party size, who
    received it (and for whom), arrival and duration. Agents see the visits they received or whose
    customer is theirs (Visit.owned_by)."""

    verbs = frozenset({"list", "details", "export"})
    column_list = ("arrived_at", "project", "lead", "phone", "kind", "channel", "party_size", "received_by",
                   "on_behalf_of", "in_turn", "duration")
    column_details_list = ("arrived_at", "ended_at", "project", "lead", "phone", "kind", "channel", "party_size",
                           "received_by", "on_behalf_of", "in_turn", "registered_by", "notes")
    column_export_list = ("arrived_at", "ended_at", "project", "phone", "kind", "channel", "party_size",
                          "received_by", "on_behalf_of", "in_turn")
    column_filters = ("arrived_at", "kind", "channel", "received_by.display_name", "project.name")
    column_sortable_list = ("arrived_at", "kind", "channel", "party_size")
    column_default_sort = ("arrived_at", True)
    column_formatters = {"duration": _duration}
    column_formatters_export = {"in_turn": _yes_no}
    # a visit's own words: the generic labels of these names mean something else elsewhere
    # ("ended_at" a removal, "channel" a way of following up)
    column_labels = {"ended_at": _l("Reception ended"), "channel": _l("Visit channel"), "kind": _l("Visit kind")}

    def get_query(self):
        return super().get_query().options(joinedload(Visit.received_by), joinedload(Visit.on_behalf_of),
                                           joinedload(Visit.project), joinedload(Visit.lead))

