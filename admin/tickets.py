"""After-sales care (R-SVC-1, R-SVC-2): tickets, their notes and photos, the overdue worklist,
satisfaction surveys, and the deal page's after-sales section.

Every step goes through the domain (models.tickets): the screens only choose what to show. A step
button shows to the roles whose operation allows it on tickets in a state where it applies; its
POST asks the domain again.
"""
from __future__ import annotations

from flask import abort, has_request_context, flash, jsonify, make_response, redirect, request, url_for
from flask_admin import expose
from flask_admin.helpers import get_form_data
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from wtforms import DateField, FileField, HiddenField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from models import Lead, Subscription, User, db
from models.base import office_today
from models.labels import EMPTY, choice_label
from models.permissions import can, can_do, scope_filter
from models.tickets import (OPEN_TICKET, Survey, Ticket, add_note, attach_file, attachments_of,
                            close_ticket, open_ticket, record_survey, reopen, resolve_ticket, route_ticket, start,
                            surveys_due, tickets_overdue, visible_attachment)

from .base import ReadOnlyView, SecureForm, row_id, run_domain, succeeded
from .deal_sections import deal_section
from .labels import CHOICES
from .step_actions import Decision, FormStep, decision_steps, form_steps
from .steps import StepButton

CUSTOMERS_SHOWN = 30  # customers a search offers at once


def _choices(entity, column, blank=False):
    return ([SelectChoice("", "—")] if blank else []) + [
        SelectChoice(value, label) for value, label in CHOICES[(entity, column)].items()]


def _staff():
    return [SelectChoice("", "—")] + [SelectChoice(str(u.id), u.display_name) for u in db.session.scalars(
        select(User).where(User.active.is_(True)).order_by(User.display_name, User.id))]


# --- forms ---------------------------------------------------------------------------------------
class TicketForm(SecureForm):
    """A new after-sales ticket: the customer (searched, scoped like the customers' grid), what,
    where, how it was reported and who works on it."""

    subscription_id = HiddenField()
    handover_id = HiddenField()
    lead_id = SelectField(_l("Customer"), coerce=str, validators=[DataRequired()], validate_choice=False)
    category = SelectField(_l("Kind of problem"), choices=_choices("ticket", "category"), validators=[DataRequired()])
    source = SelectField(_l("Reported by"), choices=_choices("ticket", "source"), validators=[DataRequired()])
    department = SelectField(_l("Responsible department"), choices=_choices("ticket", "department"),
                             validators=[DataRequired()])
    assigned_to_id = SelectField(_l("Assigned to"), validators=[Optional()], validate_choice=False)
    title = StringField(_l("Problem"), validators=[DataRequired(), Length(max=200)])
    location = StringField(_l("Where"), validators=[Optional(), Length(max=100)])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=4000)])


class RouteForm(SecureForm):
    ids = HiddenField(validators=[DataRequired()])
    department = SelectField(_l("Responsible department"), choices=_choices("ticket", "department"),
                             validators=[DataRequired()])
    assigned_to_id = SelectField(_l("Assigned to"), validators=[Optional()], validate_choice=False)
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=2000)])


class NoteForm(SecureForm):
    ids = HiddenField(validators=[DataRequired()])
    note = TextAreaField(_l("Note"), validators=[DataRequired(), Length(max=4000)])


class ResolveForm(SecureForm):
    ids = HiddenField(validators=[DataRequired()])
    resolution = TextAreaField(_l("How it was resolved"), validators=[DataRequired(), Length(max=4000)])


class CloseForm(SecureForm):
    ids = HiddenField(validators=[DataRequired()])
    feedback = TextAreaField(_l("What the customer was told"), validators=[DataRequired(), Length(max=4000)])
    feedback_on = DateField(_l("Told on"), validators=[DataRequired()])


class AttachForm(SecureForm):
    ticket_id = HiddenField(validators=[DataRequired()])
    file = FileField(_l("Photo or scan"))


class SurveyForm(SecureForm):
    subscription_id = HiddenField(validators=[DataRequired()])
    ticket_id = HiddenField()
    occasion = SelectField(_l("Occasion"), choices=_choices("survey", "occasion"), validators=[DataRequired()])
    overall = IntegerField(_l("Overall (1–5)"), validators=[DataRequired(), NumberRange(1, 5)])
    service = IntegerField(_l("Service (1–5)"), validators=[Optional(), NumberRange(1, 5)])
    quality = IntegerField(_l("Quality (1–5)"), validators=[Optional(), NumberRange(1, 5)])
    comment = TextAreaField(_l("Comment"), validators=[Optional(), Length(max=4000)])
    recorded_on = DateField(_l("Surveyed on"), validators=[DataRequired()])


# --- what the grids show -------------------------------------------------------------------------
def _overdue_ids() -> set[int]:
    from .rows import per_request
    return per_request(("tickets-overdue",), lambda: set(db.session.scalars(
        select(Ticket.id).where(tickets_overdue(office_today())))))


def _overdue_flag(view, context, ticket, name):
    if ticket.id in _overdue_ids():
        return Markup('<span class="badge badge-status status-overdue ticket-overdue">%s</span>') % gettext("Overdue")
    return EMPTY


def _number(view, context, ticket, name):
    return Markup('<a href="%s">%s</a>') % (url_for("ticket.details_view", id=ticket.id), ticket.number)


def _one():
    return _l("Select exactly one ticket.")


TICKET_STEPS = form_steps(
    FormStep("route", _l("Route"), RouteForm, one=_one(), title=_l("Route the ticket"),
             fill=lambda t: {"department": t.department, "assigned_to_id": str(t.assigned_to_id or "")},
             prepare=lambda form, rows: setattr(form.assigned_to_id, "choices", _staff()),
             run=lambda by, form, t: route_ticket(db.session, by, t.id, department=form.department.data,
                                                  assigned_to_id=form.assigned_to_id.data or None,
                                                  note=form.note.data),
             done=lambda form, t, result: gettext("Ticket %(number)s routed.", number=t.number),
             missing=_l("Choose the department.")),
    FormStep("note", _l("Add a note"), NoteForm, one=_one(),
             run=lambda by, form, t: add_note(db.session, by, t.id, form.note.data),
             done=lambda form, t, result: gettext("Note added to %(number)s.", number=t.number),
             missing=_l("Write the note.")),
    FormStep("resolve", _l("Resolve"), ResolveForm, one=_one(), title=_l("Resolve the ticket"),
             run=lambda by, form, t: resolve_ticket(db.session, by, t.id, form.resolution.data, today=office_today()),
             done=lambda form, t, result: gettext(
                 "Ticket %(number)s resolved; tell the customer, then close it.", number=t.number),
             missing=_l("Say how the problem was resolved.")),
    FormStep("close", _l("Close with feedback"), CloseForm, one=_one(), title=_l("Close after telling the customer"),
             fill=lambda t: {"feedback_on": office_today()},
             run=lambda by, form, t: close_ticket(db.session, by, t.id, form.feedback.data, form.feedback_on.data,
                                                  today=office_today()),
             done=lambda form, t, result: gettext("Ticket %(number)s closed.", number=t.number),
             missing=_l("Write what the customer was told of the outcome before closing.")),
    FormStep("reopen", _l("Reopen"), NoteForm, one=_one(), title=_l("Reopen: the customer is not satisfied"),
             run=lambda by, form, t: reopen(db.session, by, t.id, form.note.data, today=office_today()),
             done=lambda form, t, result: gettext("Ticket %(number)s reopened.", number=t.number),
             missing=_l("Say why the ticket is reopened.")))

START = decision_steps(lambda by, t, _: start(db.session, by, t.id),
                       lambda n: gettext("Work started on %(n)d tickets.", n=n),
                       Decision("start", _l("Start work"), _l("Start work on this ticket?"), True))


class TicketView(TICKET_STEPS, START, ReadOnlyView):
    """售后工单: customers' problems after the sale, routed, followed and closed after feedback
    (R-SVC-1). Agents see their customers' tickets and those assigned to them (Ticket.owned_by)."""

    verbs = frozenset({"list", "details", "export", "action"})
    column_list = ("number", "lead", "unit", "category", "department", "assigned_to", "status", "due_on", "overdue")
    column_details_list = ("number", "lead", "subscription", "unit", "category", "source", "department",
                           "assigned_to", "status", "title", "location", "description", "opened_on", "opened_by",
                           "due_on", "resolved_on", "resolution", "feedback_on", "feedback", "closed_on")
    column_export_list = ("number", "lead", "subscription", "unit", "category", "source", "department", "assigned_to",
                          "status", "title", "opened_on", "due_on", "resolved_on", "feedback_on", "closed_on")
    column_labels = {"number": _l("Ticket number"), "lead": _l("Customer"), "overdue": _l("Overdue"),
                     "title": _l("Problem"), "location": _l("Where")}
    column_filters = ("status", "category", "department", "source", "due_on", "opened_on", "project.name")
    column_searchable_list = ("number", "title", "lead.name")
    column_sortable_list = ("number", "status", "due_on", "opened_on", "category", "department")
    column_formatters = {"number": _number, "overdue": _overdue_flag,
                         "unit": lambda v, c, t, n: str(t.unit) if t.unit else EMPTY}
    column_formatters_export = {"unit": column_formatters["unit"],
                                "lead": lambda v, c, t, n: t.lead.name if t.lead else ""}
    details_template = "admin/ticket_details.html"
    list_template = "admin/ticket_list.html"
    extra_endpoints = {"route_view": "action", "note_view": "action", "resolve_view": "action",
                       "close_view": "action", "reopen_view": "action", "open_view": "action",
                       "customers_view": "action", "attach_view": "action", "attachment_view": "list"}
    operations = {"route": "ticket.route", "route_view": "ticket.route", "note": "ticket.work",
                  "note_view": "ticket.work", "resolve": "ticket.work", "resolve_view": "ticket.work",
                  "close": "ticket.close", "close_view": "ticket.close", "reopen": "ticket.work",
                  "reopen_view": "ticket.work", "start": "ticket.work", "open_view": "ticket.open",
                  "customers_view": "ticket.open", "attach_view": "ticket.work"}
    row_steps = (
        StepButton("start", "ticket.work", when=lambda t: t.status == "open", icon="fa-play"),
        StepButton("note", "ticket.work", when=lambda t: t.status != "closed", icon="fa-pencil"),
        StepButton("route", "ticket.route", when=lambda t: t.status != "closed", icon="fa-share"),
        StepButton("resolve", "ticket.work", when=lambda t: t.status in ("open", "in_progress"), icon="fa-wrench"),
        StepButton("close", "ticket.close", when=lambda t: t.status == "resolved", icon="fa-check"),
        StepButton("reopen", "ticket.work", when=lambda t: t.status in ("resolved", "closed"), icon="fa-undo",
                   style="warning"))

    def _mine(self, query):
        """?mine=1: the tickets assigned to the reader, not closed (the home page's link)."""
        if has_request_context() and request.args.get("mine"):
            query = query.filter(Ticket.assigned_to_id == current_user.id, Ticket.status.in_(OPEN_TICKET))
        return query

    def get_query(self):
        return self._mine(super().get_query()).options(joinedload(Ticket.lead), joinedload(Ticket.assigned_to),
                                                       joinedload(Ticket.unit))

    def get_count_query(self):
        return self._mine(super().get_count_query())

    def render(self, template, **kwargs):
        ticket = kwargs.get("model")
        kwargs.setdefault("may_open", can_do(current_user, "ticket.open"))
        if template == self.details_template and ticket is not None:
            kwargs.update(notes=ticket.notes, attachments=attachments_of(db.session, "ticket", ticket.id),
                          attach_form=AttachForm(ticket_id=ticket.id),
                          may_attach=can_do(current_user, "ticket.work") and ticket.status != "closed",
                          surveys=db.session.scalars(select(Survey).where(Survey.ticket_id == ticket.id)).all(),
                          overdue=ticket.id in _overdue_ids())
        return super().render(template, **kwargs)

    # --- a new ticket --------------------------------------------------------------------------
    def _customers(self, query: str, limit: int = CUSTOMERS_SHOWN):
        q = select(Lead).order_by(Lead.name, Lead.id).limit(limit)
        clause = scope_filter(Lead, current_user)
        if clause is not None:
            q = q.where(clause)
        if query:
            q = q.where(Lead.name.contains(query, autoescape=True) | Lead.phone.contains(query, autoescape=True))
        return db.session.scalars(q).all()

    @expose("/customers/")
    def customers_view(self):
        """The customers a search names, scoped like the customers' grid (an agent: his own)."""
        return jsonify([{"id": lead.id, "text": f"{lead.name} · {lead.project.name}"}
                        for lead in self._customers((request.args.get("q") or "").strip())])

    @expose("/open/", methods=("GET", "POST"))
    def open_view(self):
        form = TicketForm(get_form_data())
        form.assigned_to_id.choices = _staff()
        deal_id = row_id(request.values.get("subscription_id") or form.subscription_id.data or "")
        deal = None
        if deal_id:
            deal = db.session.scalar(select(Subscription).where(
                Subscription.id == deal_id, *([c] if (c := scope_filter(Subscription, current_user)) is not None
                                              else [])))
            if deal is None:
                abort(404)
            form.subscription_id.data = str(deal.id)
            form.lead_id.choices = [SelectChoice(str(deal.lead_id), deal.customer_name)]
            form.lead_id.data = str(deal.lead_id)
        else:
            sent = row_id(form.lead_id.data or "")
            leads = self._customers((request.values.get("q") or "").strip())
            if sent and sent not in {lead.id for lead in leads}:
                leads = [*self._customers_by_id(sent), *leads]
            form.lead_id.choices = [SelectChoice("", "—")] + [SelectChoice(str(lead.id), lead.name) for lead in leads]
        if request.method == "POST" and form.validate():
            ticket = run_domain(lambda by: open_ticket(
                db.session, by, lead_id=row_id(form.lead_id.data), category=form.category.data,
                source=form.source.data, department=form.department.data, title=form.title.data,
                description=form.description.data, location=form.location.data,
                subscription_id=deal.id if deal else None,
                handover_id=row_id(form.handover_id.data or "") or None,
                assigned_to_id=row_id(form.assigned_to_id.data or "") or None, today=office_today()))
            if succeeded(ticket):
                flash(gettext("Ticket %(number)s opened; due on %(due)s.", number=ticket.number, due=ticket.due_on),
                      "success")
                return redirect(url_for(".details_view", id=ticket.id))
        elif request.method == "POST":
            flash(gettext("Give the customer, the problem and the department."), "error")
        return self.render("admin/ticket_new.html", form=form, deal=deal, title=gettext("New after-sales ticket"),
                           q=request.values.get("q", ""))

    def _customers_by_id(self, lead_id):
        q = select(Lead).where(Lead.id == lead_id)
        clause = scope_filter(Lead, current_user)
        return db.session.scalars(q.where(clause) if clause is not None else q).all()

    # --- photos --------------------------------------------------------------------------------
    @expose("/attach/", methods=("POST",))
    def attach_view(self):
        form = AttachForm(get_form_data())
        ticket_id = row_id(form.ticket_id.data or "")
        upload = request.files.get("file")
        if not form.validate() or not ticket_id or upload is None:
            flash(gettext("Choose a photo or scan to attach."), "error")
        else:
            content = upload.read(ATTACHMENT_READ_LIMIT)
            result = run_domain(lambda by: attach_file(db.session, by, "ticket", ticket_id, upload.filename,
                                                       content))
            if succeeded(result):
                flash(gettext("%(name)s attached.", name=result.filename), "success")
        return redirect(url_for(".details_view", id=ticket_id) if ticket_id else url_for(".index_view"))

    @expose("/attachment/<int:attachment_id>/")
    def attachment_view(self, attachment_id: int):
        """A photo or scan, to those who may see its ticket or handover (role and row scope)."""
        row = visible_attachment(db.session, current_user, attachment_id)
        if row is None:
            abort(404)
        response = make_response(row.content)
        response.headers["Content-Type"] = row.content_type
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "private, no-store"
        response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
        disposition = "attachment" if row.content_type == "application/pdf" else "inline"
        from urllib.parse import quote
        response.headers["Content-Disposition"] = (f"{disposition}; filename=\"attachment-{row.id}\"; "
                                                   f"filename*=UTF-8''{quote(row.filename)}")
        return response


ATTACHMENT_READ_LIMIT = 5 * 1024 * 1024 + 1  # one byte more than allowed: enough to refuse a larger file


class TicketDueView(ReadOnlyView):
    """Tickets past their due date, the customer not yet told the outcome (R-SVC-1)."""

    entity = "ticket_due"
    choices_of = "ticket"
    verbs = frozenset({"list", "details"})
    column_list = ("number", "lead", "unit", "category", "department", "assigned_to", "status", "due_on")
    column_labels = TicketView.column_labels
    column_default_sort = ("due_on", False)
    column_searchable_list = ("number", "title", "lead.name")
    column_filters = ("status", "department", "project.name")
    column_formatters = {"number": _number, "unit": lambda v, c, t, n: str(t.unit) if t.unit else EMPTY}

    def _late(self, query):
        return query.filter(tickets_overdue(office_today()))

    def get_query(self):
        return self._late(super().get_query())

    def get_count_query(self):
        return self._late(super().get_count_query())


class TicketNoteView(ReadOnlyView):
    """Notes on tickets, dated, append-only."""

    verbs = frozenset({"list", "details"})
    column_list = ("ticket", "at", "by", "note")
    column_default_sort = ("at", True)
    column_searchable_list = ("note", "ticket.number")
    column_filters = ("at",)


# --- surveys -------------------------------------------------------------------------------------
class SurveyView(ReadOnlyView):
    """满意度回访 (R-SVC-2): surveys after signing, handover or a ticket; agents see their own deals'.
    /admin/survey/due/ lists the surveys waiting to be taken; /admin/survey/record/ records one."""

    verbs = frozenset({"list", "details", "export"})
    column_list = ("subscription", "agent", "occasion", "overall", "service", "quality", "comment", "recorded_on")
    column_filters = ("occasion", "overall", "recorded_on", "agent.display_name")
    column_searchable_list = ("subscription.number", "subscription.customer_name", "comment")
    column_sortable_list = ("occasion", "overall", "recorded_on")
    column_default_sort = ("recorded_on", True)
    list_template = "admin/survey_list.html"
    extra_endpoints = {"due_view": "list", "record_view": "list", "summary_view": "export"}
    operations = {"record_view": "survey.record"}

    def get_query(self):
        return super().get_query().options(joinedload(Survey.subscription), joinedload(Survey.agent))

    def render(self, template, **kwargs):
        if template == self.list_template and can(current_user, "survey", "export"):
            from models import Project
            kwargs["summary_projects"] = db.session.execute(
                select(Project.id, Project.name).order_by(Project.name)).all()
            kwargs["summary_form"] = SecureForm()
        return super().render(template, **kwargs)

    @expose("/summary/", methods=("POST",))
    def summary_view(self):
        """The satisfaction summary PDF of a project (R-SVC-2), through the document centre."""
        from .documents import request_and_enqueue
        form = SecureForm(get_form_data())
        project_id = row_id(request.form.get("project_id", ""))
        if not form.validate() or not project_id:
            flash(gettext("Choose the project."), "error")
            return redirect(url_for(".index_view"))
        return request_and_enqueue("survey_summary", [project_id])

    @expose("/due/")
    def due_view(self):
        """Surveys waiting (models.tickets.surveys_due): an agent sees his own deals'."""
        agent = None if scope_filter(Survey, current_user) is None else current_user.id
        return self.render("admin/survey_due.html", due=surveys_due(db.session, agent_id=agent),
                           title=gettext("Surveys due"), may_record=can_do(current_user, "survey.record"),
                           label=choice_label)

    @expose("/record/", methods=("GET", "POST"))
    def record_view(self):
        form = SurveyForm(get_form_data())
        deal_id = row_id(request.values.get("subscription_id") or form.subscription_id.data or "")
        clause = scope_filter(Subscription, current_user)
        deal = db.session.scalar(select(Subscription).where(Subscription.id == deal_id, *(
            [clause] if clause is not None else []))) if deal_id else None
        if deal is None:
            abort(404)
        if request.method == "GET":
            form.subscription_id.data = str(deal.id)
            form.occasion.data = request.args.get("occasion") or form.occasion.data
            form.ticket_id.data = request.args.get("ticket_id", "")
            form.recorded_on.data = office_today()
        elif form.validate():
            ticket_id = row_id(form.ticket_id.data or "") or None
            survey = run_domain(lambda by: record_survey(
                db.session, by, deal.id, occasion=form.occasion.data, overall=form.overall.data,
                service=form.service.data, quality=form.quality.data, comment=form.comment.data,
                ticket_id=ticket_id, recorded_on=form.recorded_on.data, today=office_today()))
            if succeeded(survey):
                flash(gettext("Survey recorded for %(number)s.", number=deal.number), "success")
                return redirect(url_for("subscription.details_view", id=deal.id))
        else:
            flash(gettext("Give the overall score, 1 to 5, and the date."), "error")
        return self.render("admin/deal_step.html", form=form, subscription=deal, title=gettext("Record a survey"),
                           action_url=url_for(".record_view"))


# --- the deal's page -----------------------------------------------------------------------------
def _deal_after_sales(sub):
    """The deal's tickets and surveys, with "New ticket" / "Record survey" for those who may."""
    see_tickets, see_surveys = can(current_user, "ticket", "list"), can(current_user, "survey", "list")
    if not (see_tickets or see_surveys):
        return None
    tickets = db.session.scalars(select(Ticket).where(Ticket.subscription_id == sub.id).order_by(Ticket.id)).all() \
        if see_tickets else []
    surveys = db.session.scalars(select(Survey).where(Survey.subscription_id == sub.id).order_by(Survey.id)).all() \
        if see_surveys else []
    due = [d for d in surveys_due(db.session, project_id=sub.project_id) if d["subscription"].id == sub.id] \
        if see_surveys else []
    return {"tickets": tickets, "surveys": surveys, "due": due,
            "may_open": can_do(current_user, "ticket.open"), "may_survey": can_do(current_user, "survey.record"),
            "overdue": {t.id for t in tickets} & _overdue_ids(), "label": choice_label}


deal_section("admin/deal/_after_sales.html", _deal_after_sales)
