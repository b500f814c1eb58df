"""The sales screens of customers: the customer grid (registration, assignment, pauses), the
follow-ups due and recorded, duplicate registrations, and customers' questions with the answer sheet."""
from __future__ import annotations

import datetime as dt

from flask import abort, flash, redirect, request
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.helpers import is_form_submitted
from babel.lists import format_list
from flask_babel import get_locale, gettext, lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup, escape
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload
from wtforms import HiddenField
from wtforms.validators import DataRequired, NumberRange, Optional

from models import CustomerQuestion, Lead, LeadConflict, Project, Role, RuleViolation, User, db
from models.base import office_today
from models.identity import RESIDENT_ID, id_document_problem, normalise_id_number, validate_id_document
from models.leads import (OPEN_STAGES, DuplicateLead, answer_topic, ask_question, assign_leads,
                          distribute_leads, give_feedback, mask_id_number, open_lead_load,
                          last_follow_ups, pause_follow_up, record_follow_up, register_lead, resolve_conflict,
                          validate_phone, works_on)
from models.labels import choice_label
from models.permissions import scope_filter, sees_all_rows, sees_id_number
from models.submissions import new_key

from .base import REFUSED, ProtectedPage, ProtectedView, ReadOnlyView, row_id, run_domain
from .labels import choice_formatters
from .rows import per_request
from .step_actions import Decision, FormStep, decision_steps, form_steps
from .steps import LinkButton, StepButton
from .filters import AgentFilter
from .documents import DocumentButton, document_actions
from .forms import PauseForm


def _records_follow_up_on(lead) -> bool:
    """Whether the current user may record a follow-up with this customer (models.leads.works_on)."""
    return works_on(current_user, lead)


# "Record follow-up" on a customer's row and page: the follow-up form, prefilled with the customer.
RECORD_FOLLOW_UP = LinkButton("follow_up", "follow_up.create_view", "lead_id", _l("Record follow-up"),
                              entity="follow_up", operation="lead.follow_up", when=_records_follow_up_on,
                              icon="fa-phone")


PAUSE_STEP = form_steps(FormStep(
    "pause", _l("Pause the follow-up"), PauseForm, one=_l("Select exactly one customer."),
    run=lambda by, form, lead: pause_follow_up(db.session, by, lead.id, form.until.data, form.reason.data),
    done=lambda form, lead, paused: gettext("Follow-up paused until %(until)s.", until=form.until.data),
    missing=_l("Give the date the pause ends and the reason.")))


class LeadView(document_actions("statement"), PAUSE_STEP, ProtectedView):
    column_list = ("id", "name", "phone", "project", "source", "stage", "owner",
                   "next_follow_up_on", "last_activity_at")
    column_searchable_list = ("name", "phone")
    column_filters = ("stage", "source", "owner_id", "next_follow_up_on", "project.name",
                      AgentFilter(Lead.owner_id), "registered_at")
    column_labels = {"name": _l("Customer name"), "owner_id": _l("Agent (empty: public pool)")}
    # phone and id_number: shown by the one rule of models/privacy.py (ProtectedView masks them)
    column_details_exclude_list = ("pooled_at",)
    form_columns = ("project", "name", "phone", "id_type", "id_number", "address", "source", "budget_wan",
                    "wanted_layout", "wanted_area", "purpose", "needs", "notes")
    form_readonly = ("stage", "owner", "registered_by", "registered_at", "last_activity_at",
                     "pooled_at", "next_follow_up_on")
    form_args = {"name": {"validators": [DataRequired()]}, "phone": {"validators": [DataRequired()]},
                 "budget_wan": {"validators": [Optional(), NumberRange(min=1)]}}
    extra_endpoints = {"assign_view": "action", "pause_view": "action"}
    # A statement lists a customer's deals and payments: offered once there is a deal.
    column_extra_row_actions = [DocumentButton("statement", when=lambda lead: lead.stage in ("subscribed", "signed"))]
    row_steps = (StepButton("assign", "lead.assign", when=lambda lead: lead.owner_id is None, icon="fa-user-plus"),
                 StepButton("pause", "lead.pause", when=lambda lead: lead.stage in OPEN_STAGES, icon="fa-pause",
                            style="secondary"),
                 RECORD_FOLLOW_UP)

    def create_model(self, form):
        """Registration goes through the domain (R-LEAD-1, R-LEAD-5), not a generic insert."""
        return run_domain(lambda by: register_lead(
            db.session, by, project_id=form.project.data.id, name=form.name.data,
            phone=form.phone.data, source=form.source.data, id_type=form.id_type.data,
            id_number=form.id_number.data,
            address=form.address.data, budget_wan=form.budget_wan.data,
            wanted_layout=form.wanted_layout.data, wanted_area=form.wanted_area.data,
            purpose=form.purpose.data or None, needs=form.needs.data, notes=form.notes.data),
            keep_on=(DuplicateLead,))  # the conflict is kept for the manager; no second lead

    def edit_form(self, obj=None):
        form = super().edit_form(obj)
        if not sees_id_number(current_user) and "id_number" in form:
            # Roles that see masked numbers may replace the number, never read it back.
            form.id_number.data = ""
            form.id_number.description = gettext("Leave empty to keep the registered number: %(masked)s",
                                                 masked=mask_id_number(obj.id_number) if obj else "")
        problem = obj is not None and obj.id_number and id_document_problem(obj.id_type, obj.id_number)
        if problem:  # a number registered before one validator read them all (issue 19, item 13)
            form.id_number.description = escape(" ".join(filter(None, (
                str(form.id_number.description or ""),
                gettext("The registered number is not valid (%(problem)s): enter the customer's valid "
                        "document number to save this customer.", problem=problem)))))
        return form

    def update_model(self, form, model):
        if not sees_id_number(current_user) and not (form.id_number.data or "").strip():
            form.id_number.data = model.id_number
        return super().update_model(form, model)

    def on_model_change(self, form, model, is_created):
        model.phone = validate_phone(model.phone)
        # The one validator of identity documents (models/identity.py), also for a number kept
        # as registered: an invalid older one must be put right before the customer is saved.
        if normalise_id_number(model.id_number):
            model.id_type, model.id_number = validate_id_document(model.id_type, model.id_number)
        else:
            model.id_type, model.id_number = model.id_type or RESIDENT_ID, None

    @action("assign", _l("Assign to agents"))
    def action_assign(self, ids):
        return self._assign_form([int(i) for i in ids], key=new_key())

    def _assign_form(self, ids, chosen=(), mode="one", key=""):
        """The bulk assignment's form (R-LEAD-2): the selected customers (ticked), the agents with
        their open customers now, how to split. Shown again as sent after any refusal, so
        nothing chosen is lost; the one-time key stays the same (a refusal used nothing of it)."""
        leads = self.get_query().filter(Lead.id.in_(ids)).order_by(Lead.id).all() if ids else []
        agents = db.session.execute(
            select(User).join(User.roles).where(Role.name == "agent", User.active.is_(True))
            .order_by(User.username)).scalars().all()
        load = open_lead_load(db.session, [a.id for a in agents])
        return self.render("admin/lead_assign.html", leads=leads, count=len(leads),
                           agents=[(a, load[a.id]) for a in agents], chosen=set(chosen),
                           mode=mode if mode in ("one", "even", "shares") else "one", key=key)

    @expose("/assign/", methods=("POST",))
    def assign_view(self):
        # The customers: ticked boxes named "ids" (or one comma-separated "ids", as older forms sent them).
        ids = list(dict.fromkeys(int(i) for value in request.form.getlist("ids") for i in value.split(",")
                                 if row_id(i) is not None))
        agent_ids = list(dict.fromkeys(row_id(a) for a in request.form.getlist("agent") if row_id(a) is not None))
        mode, key = request.form.get("mode", "one"), request.form.get("submission_key", "")
        if mode in ("even", "shares"):
            spread = run_domain(lambda by: distribute_leads(db.session, by, ids, agent_ids, key=key,
                                                            equal_shares=mode == "shares"))
            if spread:
                flash(self._spread_message(agent_ids, spread, mode), "success")
        else:
            def assign_to_one(by):
                if len(agent_ids) != 1:
                    raise RuleViolation(_l("Choose exactly one agent, or spread over the chosen agents."),
                                        rule="R-LEAD-2")
                return assign_leads(db.session, by, ids, agent_ids[0], key=key)
            spread = run_domain(assign_to_one)
            if spread:
                flash(gettext("%(n)d customers were assigned to %(agent)s.", n=spread,
                              agent=db.session.get(User, agent_ids[0]).display_name), "success")
        if spread is REFUSED:  # refused: the same form again, with everything chosen kept
            return self._assign_form(ids, agent_ids, mode, key)
        return self.back()

    @staticmethod
    def _spread_message(agent_ids, spread, mode) -> str:
        """Who got how many, every chosen agent named (one who got none as well), with the open
        customers each holds now: what "by current load" did."""
        agents = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(agent_ids)))}
        load = open_lead_load(db.session, agent_ids)
        parts = [gettext("%(agent)s %(n)d (now %(load)d open)", agent=agents[a].display_name,
                         n=spread.get(a, 0), load=load[a]) for a in agent_ids]
        if mode == "shares":
            return gettext("%(n)d customers were shared equally over the chosen agents: %(parts)s.",
                           n=sum(spread.values()), parts=format_list(parts, locale=get_locale()))
        return gettext("%(n)d customers were spread over the chosen agents by their current load: %(parts)s.",
                       n=sum(spread.values()), parts=format_list(parts, locale=get_locale()))


def _overdue_days(view, context, model, name):
    days = (office_today() - model.next_follow_up_on).days if model.next_follow_up_on else 0
    return Markup('<span class="badge badge-danger">%d</span>') % days if days > 0 else \
        gettext("Due today")


class FollowUpDueView(ProtectedView):
    """Leads whose next follow-up is today or overdue (R-LEAD-3): an agent's own, all for managers."""

    entity = "follow_up_due"
    choices_of = "lead"
    verbs = frozenset({"list", "details"})
    column_list = ("name", "phone", "project", "stage", "owner", "next_follow_up_on", "overdue_days",
                   "last_activity_at")
    column_default_sort = ("next_follow_up_on", False)
    column_sortable_list = ("name", "next_follow_up_on", "last_activity_at")
    column_formatters = {"overdue_days": _overdue_days}
    column_labels = {"name": _l("Customer name")}
    column_details_list = ("name", "phone", "project", "stage", "owner", "next_follow_up_on",
                           "needs", "notes")
    row_steps = (RECORD_FOLLOW_UP,)

    def _due(self, query):
        return query.filter(Lead.next_follow_up_on <= office_today(), Lead.owner_id.is_not(None),
                            Lead.stage.in_(OPEN_STAGES))

    def get_query(self):
        return self._due(super().get_query())

    def get_count_query(self):
        return self._due(super().get_count_query())


class FollowUpView(ProtectedView):
    column_list = ("id", "lead", "agent", "at", "channel", "content", "outcome", "next_on",
                   "manager_feedback")
    # The customer by name or phone (a phone the user reads masked only by its whole number,
    # admin/base.py), or words of what was said, its outcome or the manager's feedback.
    column_searchable_list = ("lead.name", "lead.phone", "content", "outcome", "manager_feedback")
    column_labels = {"lead.name": _l("Customer name")}
    column_filters = ("channel", "at", "next_on")
    form_columns = ("lead", "channel", "content", "outcome", "next_on", "manager_feedback", "submission_key")
    form_args = {"content": {"validators": [DataRequired()]}}
    form_widget_args = {"next_on": {"data-date-format": "YYYY-MM-DD"}}
    # One-time key made when the form is shown (models.submissions): a double click records once.
    form_extra_fields = {"submission_key": HiddenField(default=new_key)}

    def _prefilled_lead(self) -> Lead | None:
        """The customer named by `?lead_id=` (the "Record follow-up" button), among those the user
        may see: another agent's customer is refused like a missing one (404)."""
        if "lead_id" not in request.args:
            return None
        pk = row_id(request.args.get("lead_id"))
        lead = self._scope(db.session.query(Lead), Lead).filter(Lead.id == pk).one_or_none() if pk else None
        if lead is None:
            abort(404)
        return lead

    def create_form(self, obj=None):
        form = super().create_form(obj)
        del form.manager_feedback
        lead = self._prefilled_lead()
        if lead is not None:
            # The form is for this customer: the picker holds only them (and a posted other id
            # is "not a valid choice"); the way back is the page the button was on (`url`).
            form.lead.query = self._scope(db.session.query(Lead), Lead).filter(Lead.id == lead.id)
            if not is_form_submitted():
                form.lead.data = lead
        return form

    def create_model(self, form):
        sent = form.submission_key.raw_data[0] if form.submission_key.raw_data else ""  # never the fresh default
        return run_domain(lambda by: record_follow_up(
            db.session, by, lead_id=form.lead.data.id, channel=form.channel.data,
            content=form.content.data, outcome=form.outcome.data, next_on=form.next_on.data, key=sent))

    def edit_form(self, obj=None):
        # A follow-up is a truthful record (R-LEAD-3): afterwards only the manager's feedback.
        form = super().edit_form(obj)
        for name in [f.name for f in form if f.name not in ("manager_feedback", "csrf_token")]:
            delattr(form, name)
        return form

    def update_model(self, form, model):
        return bool(run_domain(lambda by: give_feedback(db.session, by, model.id,
                                                         form.manager_feedback.data)))


def _registered_customer(view, context, model, name):
    """Managers see which customer; the agent who registered again sees only who holds it."""
    if sees_all_rows(current_user):
        return str(model.lead)
    holder = model.lead.owner or model.lead.registered_by
    return gettext("Held by %(who)s", who=holder.display_name if holder else "-")


_STAGE = choice_formatters("lead")["stage"]  # the stage's badge, as on the customer grid


def _linked_customer(view, context, model, name):
    """The registered customer, linked to the customer's page for whoever may open it (the
    customer grid's own row scope); otherwise as `_registered_customer`."""
    text = _registered_customer(view, context, model, name)
    if not view._sees_lead(model.lead_id):
        return text
    return Markup('<a href="%s">%s</a>') % (view.get_url("lead.details_view", id=model.lead_id), text)


def _original_agent(view, context, model, name):
    """Who registered the customer first and, when that changed (reassigned, or back in the public
    pool), who holds the customer now: the manager decides between them and the new agent."""
    lead = model.lead
    first = lead.registered_by.display_name
    if lead.owner_id == lead.registered_by_id:
        return first
    if lead.owner is None:
        return gettext("%(first)s (now in the public pool)", first=first)
    return gettext("%(first)s (now with %(holder)s)", first=first, holder=lead.owner.display_name)


def _first_registered_at(view, context, model, name):
    return model.lead.registered_at  # a timestamp: the grid's own time formatter shows it


def _lead_stage(view, context, model, name):
    """The customer's stage, for those who may see the customer."""
    if not view._sees_lead(model.lead_id):
        return "—"
    return _STAGE(view, context, model.lead, "stage")


def _lead_stage_text(view, context, model, name):
    if not view._sees_lead(model.lead_id):
        return "—"
    return str(choice_label("lead", "stage", model.lead.stage))


def _last_follow_up(view, context, model, name):
    """The customer's last follow-up: when (office time, the grid's formatter), how and what was
    said, shortened; for those who may see the customer."""
    if not view._sees_lead(model.lead_id):
        return "—"
    follow_up = view._last_follow_up(model.lead_id)
    if follow_up is None:
        return gettext("None yet")
    when = view.column_type_formatters[dt.datetime](view, follow_up.at, name)
    content = " ".join((follow_up.content or "").split())
    summary = content if len(content) <= 60 else content[:59] + "…"
    return f"{when} {choice_label('follow_up', 'channel', follow_up.channel)}：{summary}"


CONFLICT_DECISIONS = decision_steps(
    lambda by, conflict, decision: resolve_conflict(db.session, by, conflict.id, decision),
    lambda n: gettext("%(n)d conflicts decided.", n=n),
    Decision("keep", _l("Keep the current owner"), _l("Keep the current owner of these customers?"), "keep"),
    Decision("transfer", _l("Transfer to the agent who registered again"),
             _l("Transfer these customers to the agents who registered them again?"), "transfer"))


class LeadConflictView(CONFLICT_DECISIONS, ReadOnlyView):
    """Second registrations of a registered phone (R-LEAD-5), for the manager to decide: with the
    customer (linked), who holds it, when it was first registered, its stage and last follow-up."""

    column_list = ("id", "lead", "original_agent", "first_registered_at", "lead_stage", "last_follow_up",
                   "attempted_by", "attempted_name", "attempted_at", "status", "resolved_at")
    column_details_list = column_list
    column_export_list = column_list
    column_filters = ("status",)
    column_labels = {"lead": _l("Registered customer")}
    column_formatters = column_formatters_detail = {
        "lead": _linked_customer, "original_agent": _original_agent,
        "first_registered_at": _first_registered_at, "lead_stage": _lead_stage,
        "last_follow_up": _last_follow_up}
    column_formatters_export = {
        "lead": _registered_customer, "original_agent": _original_agent,
        "first_registered_at": _first_registered_at, "lead_stage": _lead_stage_text,
        "last_follow_up": _last_follow_up}
    column_sortable_list = ("id", "attempted_name", "attempted_at", "status", "resolved_at",
                            ("attempted_by", "attempted_by.display_name"),
                            ("first_registered_at", "lead.registered_at"))

    def get_query(self):
        # The customer and its agent with the page (one query, not one per row).
        lead = joinedload(LeadConflict.lead)
        return super().get_query().options(lead.joinedload(Lead.owner), lead.joinedload(Lead.registered_by))

    def _known(self) -> dict:
        return per_request(("conflict_leads", id(self)), lambda: {"visible": {}, "follow_ups": {}})

    def _load(self, lead_ids) -> None:
        """Which of these customers the user may open, and their last follow-ups: two queries for
        a page (none for the follow-ups of customers the user may not see)."""
        known = self._known()
        ids = [i for i in set(lead_ids) if i not in known["visible"]]
        if not ids:
            return
        clause = scope_filter(Lead, current_user)
        visible = set(ids) if clause is None else set(db.session.scalars(
            select(Lead.id).where(Lead.id.in_(ids), clause)))
        known["visible"].update({i: i in visible for i in ids})
        follow_ups = last_follow_ups(db.session, visible)
        known["follow_ups"].update({i: follow_ups.get(i) for i in visible})

    def _sees_lead(self, lead_id) -> bool:
        self._load([lead_id])
        return self._known()["visible"][lead_id]

    def _last_follow_up(self, lead_id):
        self._load([lead_id])
        return self._known()["follow_ups"].get(lead_id)

    def get_list(self, page, sort_column, sort_desc, search, filters, execute=True, page_size=None):
        count, rows = super().get_list(page, sort_column, sort_desc, search, filters, execute, page_size)
        if execute:
            self._load([row.lead_id for row in rows])
        return count, rows

    row_steps = (StepButton("keep", "lead.resolve_conflict", when=lambda c: c.status == "open", icon="fa-lock"),
                 StepButton("transfer", "lead.resolve_conflict", when=lambda c: c.status == "open", icon="fa-exchange", style="warning"))


class CustomerQuestionView(ProtectedView):
    """Questions the answer sheet did not cover (R-LEAD-6): agents log them."""

    column_list = ("id", "project", "question", "asked_by", "created_at", "answer", "answered_at")
    column_searchable_list = ("question", "answer")
    column_filters = ("answered_at", "project.name")
    form_columns = ("project", "question")
    form_args = {"question": {"validators": [DataRequired()]}}

    def create_model(self, form):
        return run_domain(lambda by: ask_question(db.session, by, project_id=form.project.data.id,
                                                  question=form.question.data))


class AnswerSheetView(ReadOnlyView):
    """The answered questions, one per group: the answer sheet every agent reads (R-LEAD-6)."""

    entity = "answer_sheet"
    verbs = frozenset({"list", "details"})
    column_list = ("project", "question", "answer", "answered_at")
    column_searchable_list = ("question", "answer")
    column_filters = ("project.name",)
    column_default_sort = ("answered_at", True)

    def _first_of_each_group(self, query):
        first = select(func.min(CustomerQuestion.id)).where(
            CustomerQuestion.answered_at.is_not(None)).group_by(
            CustomerQuestion.project_id, CustomerQuestion.topic)
        return query.filter(CustomerQuestion.id.in_(first))

    def get_query(self):
        return self._first_of_each_group(db.session.query(CustomerQuestion))

    def get_count_query(self):
        return self._first_of_each_group(
            db.session.query(func.count()).select_from(CustomerQuestion))


class QuestionGroupPage(ProtectedPage):
    """The manager's view of logged questions, grouped with counts, answered per group (R-LEAD-6)."""

    entity = "question_group"
    verb_of = {"index": "list", "answer": "action"}

    @expose("/")
    def index(self):
        only_open = request.args.get("open", "1") == "1"
        groups = db.session.execute(
            select(CustomerQuestion.project_id, CustomerQuestion.topic, func.count(),
                   func.min(CustomerQuestion.question), func.max(CustomerQuestion.created_at),
                   func.max(CustomerQuestion.answer))
            .group_by(CustomerQuestion.project_id, CustomerQuestion.topic)
            .having(func.max(CustomerQuestion.answer) == "" if only_open else True)
            .order_by(func.count().desc(), func.max(CustomerQuestion.created_at).desc())
            .limit(200)).all()
        projects = {p.id: p for p in db.session.scalars(select(Project))}
        return self.render("admin/question_groups.html", groups=groups, projects=projects,
                           only_open=only_open)

    @expose("/answer/", methods=("POST",))
    def answer(self):
        project_id = request.form.get("project_id", "")
        n = run_domain(lambda by: answer_topic(
            db.session, by, project_id=row_id(project_id) or 0,
            topic=request.form.get("topic", ""), answer=request.form.get("answer", "")))
        if n:
            flash(gettext("%(n)d questions answered; the answer is on the answer sheet.", n=n),
                  "success")
        return redirect(self.get_url(".index"))
