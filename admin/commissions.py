"""Commission screens (R-COM-2): the rules of each project (/admin/commission_rule/: the vice-president
and the administrator set them, through models.commissions.save_rule), the lines each deal earned
(/admin/commission_line/: agents and channels see their own only), the deals' splits
(/admin/deal_split/) and the deal page's commission section, where the manager shares a deal (分单).
The rules are models/commissions.py (`deal_commission` is the one definition)."""
from __future__ import annotations

import json
import logging
from decimal import Decimal

from flask import flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.contrib.sqla.fields import QuerySelectField
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, select
from wtforms import BooleanField, DecimalField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from models import ChannelCompany, CommissionLine, CommissionRule, DealSplit, Project, RuleViolation, User, db
from jobs.commissions import JOB_TIMEOUT, apply_rules
from jobs.queue import enqueue
from models.base import office_time, office_today
from models.commissions import COMMISSION_STAGES, DEFAULT_STAGE_SHARES, save_rule, set_split
from models.labels import choice_label
from models.money import format_money
from models.permissions import can, can_do, scope_filter
from models.users import users_with_roles

from .base import ProtectedView, ReadOnlyView, SecureForm, run_domain, succeeded
from .deal_sections import deal_section
from .labels import CHOICES

log = logging.getLogger(__name__)


def _payee(view, context, line, name):
    if line.payee_user_id is not None:
        return line.payee_user.display_name if line.payee_user else line.payee_user_id
    company = db.session.get(ChannelCompany, line.payee_company_id)
    return company.name if company else line.payee_company_id


# Why a line was written (CommissionLine.reason): the recompute's own causes, else the action of the
# deal's change that called it (admin/labels.py AUDIT_ACTIONS), else the text as written.
LINE_REASONS = {"recompute": _l("Recomputed"), "daily": _l("The daily check"),
                "commission_rule": _l("A commission rule applied"), "split": _l("The deal's split changed"),
                "channel": _l("The deal's channel changed")}


def _reason(view, context, line, name):
    from .labels import AUDIT_ACTIONS
    code = line.reason or ""
    return str(LINE_REASONS.get(code) or AUDIT_ACTIONS.get(code) or code)


class CommissionLineView(ReadOnlyView):
    """佣金明细: every line earned or taken back, by deal, payee, stage and month. Never edited: a change
    of the deal writes a new line (models.commissions.recompute_deal)."""

    verbs = frozenset({"list", "details", "export"})
    column_list = ("id", "month", "subscription", "role", "payee", "stage", "kind", "base", "amount", "earned_on",
                   "reason")
    column_details_list = (*column_list, "rule_id", "statement_id", "created_at")
    column_labels = {"payee": _l("Payee"), "base": _l("Computed on"), "earned_on": _l("Earned on"),
                     "rule_id": _l("Commission rule"), "statement_id": _l("Statement"),
                     "stage": _l("Commission stage"), "reason": _l("Why")}
    column_formatters = {"payee": _payee, "reason": _reason}
    column_formatters_export = {"payee": _payee, "reason": _reason}
    column_filters = ("month", "stage", "kind", "role", "subscription.number")
    column_searchable_list = ("subscription.number",)
    column_sortable_list = ("id", "month", "amount", "earned_on", "stage", "kind")
    column_default_sort = ("id", True)



class RuleForm(SecureForm):
    """A commission rule; models.commissions.validate_rule checks it (the form only collects it)."""

    project = QuerySelectField(_l("Project"), query_factory=lambda: db.session.query(Project).order_by(Project.name),
                               validators=[DataRequired()])
    name = StringField(_l("Name"), validators=[Optional(), Length(max=100)])
    role = SelectField(_l("Paid to"), choices=lambda: list(CHOICES[("commission_rule", "role")].items()))
    company = QuerySelectField(_l("Channel company (empty: every channel)"), allow_blank=True,
                               query_factory=lambda: db.session.query(ChannelCompany).order_by(ChannelCompany.name))
    payee_user = QuerySelectField(
        _l("Manager paid (a manager rule)"), allow_blank=True,
        query_factory=lambda: db.session.query(User).filter(
            User.id.in_(users_with_roles(db.session, ("sales_manager",)))).order_by(User.display_name),
        get_label="display_name")
    basis = SelectField(_l("Basis"), choices=lambda: list(CHOICES[("commission_rule", "basis")].items()))
    rate_percent = DecimalField(_l("Rate (per cent of the deal price)"), places=4,
                                validators=[Optional(), NumberRange(0, 100)])
    amount = DecimalField(_l("Fixed amount per deal"), places=2, validators=[Optional(), NumberRange(0, 10 ** 11)])
    share_subscribed = DecimalField(_l("Share at subscription (%)"), default=DEFAULT_STAGE_SHARES["subscribed"],
                                    validators=[Optional()])
    share_signed = DecimalField(_l("Share at signing (%)"), default=DEFAULT_STAGE_SHARES["signed"],
                                validators=[Optional()])
    share_down_payment = DecimalField(_l("Share when the down payment is in (%)"),
                                      default=DEFAULT_STAGE_SHARES["down_payment"], validators=[Optional()])
    share_disbursed = DecimalField(_l("Share when the loan is disbursed (%)"),
                                   default=DEFAULT_STAGE_SHARES["disbursed"], validators=[Optional()])
    tiers = TextAreaField(_l("Tiers by the payee's deals in the month (JSON, e.g. "
                             "[{\"from\": 1, \"rate_percent\": \"0.8\"}, {\"from\": 11, \"rate_percent\": \"1.2\"}])"),
                          validators=[Optional(), Length(max=2000)])
    active = BooleanField(_l("Active"), default=True)

    def values(self) -> dict:
        try:
            tiers = json.loads(self.tiers.data) if (self.tiers.data or "").strip() else []
        except ValueError:
            raise RuleViolation(_l("Tiers are a list of {\"from\": n, \"rate_percent\": r}."), rule="R-COM-2") from None
        return {"name": self.name.data, "role": self.role.data, "basis": self.basis.data,
                "company_id": self.company.data.id if self.company.data else None,
                "payee_user_id": self.payee_user.data.id if self.payee_user.data else None,
                "rate_percent": self.rate_percent.data, "amount": self.amount.data, "tiers": tiers,
                "stage_shares": {s: getattr(self, f"share_{s}").data or 0 for s in COMMISSION_STAGES},
                "active": self.active.data}


def _shares(view, context, rule, name):
    shares = rule.stage_shares or {}
    return " / ".join(f"{choice_label('commission_line', 'stage', s)} {shares.get(s, 0)}%" for s in COMMISSION_STAGES)


def _value(view, context, rule, name):
    if rule.basis == "fixed":
        return format_money(rule.amount)
    tiers = "; ".join(f"≥{t['from']}: {t['rate_percent']}%" for t in rule.tiers or [])
    return f"{rule.rate_percent}%" + (f" ({tiers})" if tiers else "")


def _apply(project_id: int) -> None:
    """The rule is saved (committed): hand the recompute of the project's deals to a job, and say
    what became of it. Without a queue the daily run applies the rule (its applied_at stays unset)."""
    try:
        job = enqueue(apply_rules, project_id, office_today().isoformat(), job_timeout=JOB_TIMEOUT,
                      result_ttl=86400, failure_ttl=7 * 86400)
    except Exception as exc:  # Redis down: the rule stays saved, not applied
        log.error("commission rules of project %s could not be queued: %s", project_id, exc)
        db.session.rollback()
        flash(gettext("The rule is saved, but the job queue cannot be reached: the daily run will "
                      "recompute the project's deals with it."), "warning")
        return
    if job.is_finished:  # run at once (no worker in this process)
        flash(gettext("The rule is saved and the project's deals were recomputed with it."), "success")
    elif job.is_failed:
        flash(gettext("The rule is saved, but recomputing the project's deals failed: the daily run will "
                      "do it again."), "warning")
    else:
        flash(gettext("The rule is saved; the project's deals are being recomputed with it (the Applied "
                      "column shows when it is done)."), "success")


def _applied(view, context, rule, name):
    if rule.applied:
        return office_time(rule.applied_at)
    return gettext("being applied")


class CommissionRuleView(ProtectedView):
    """佣金规则: how a project pays its agents, a manager and its channels, stage by stage. Saved by
    models.commissions.save_rule: a changed rule changes what deals earn from now (new lines), written
    by the job it enqueues (jobs/commissions.py apply_rules) or else by the daily run."""

    verbs = frozenset({"list", "details", "create", "edit"})
    form = RuleForm
    column_list = ("id", "project", "name", "role", "company_id", "payee_user", "basis", "value", "stage_shares",
                   "active", "applied_at")
    column_labels = {"value": _l("Rate or amount"), "company_id": _l("Channel company"),
                     "payee_user": _l("Manager paid"), "stage_shares": _l("Stage shares"),
                     "changed_at": _l("Changed at"), "applied_at": _l("Applied")}
    column_formatters = {"value": _value, "stage_shares": _shares, "applied_at": _applied,
                         "company_id": lambda v, c, r, n: str(db.session.get(ChannelCompany, r.company_id) or "")
                         if r.company_id else gettext("Every channel") if r.role == "channel" else ""}
    column_filters = ("project.name", "role", "active")
    column_default_sort = ("id", False)

    def on_form_prefill(self, form, id):
        rule = db.session.get(CommissionRule, int(id))
        if rule is None:
            return
        form.company.data = db.session.get(ChannelCompany, rule.company_id) if rule.company_id else None
        form.tiers.data = json.dumps(rule.tiers, ensure_ascii=False) if rule.tiers else ""
        for stage in COMMISSION_STAGES:
            getattr(form, f"share_{stage}").data = Decimal(str((rule.stage_shares or {}).get(stage, 0)))

    def create_model(self, form):
        rule = run_domain(lambda by: save_rule(db.session, by, form.project.data.id, form.values()))
        if succeeded(rule):
            _apply(rule.project_id)
        return rule

    def update_model(self, form, model):
        project_id = form.project.data.id
        done = succeeded(run_domain(lambda by: save_rule(db.session, by, project_id, form.values(),
                                                         rule_id=model.id)))
        if done:
            _apply(project_id)
        return done


class DealSplitView(ReadOnlyView):
    """分单: the deals shared between agents, with each one's %. Set on the deal's page by the manager
    (`split_view`, models.commissions.set_split)."""

    verbs = frozenset({"list", "details", "action"})
    column_list = ("subscription", "agent", "percent", "created_by_id", "created_at")
    column_labels = {"percent": _l("Share (%)"), "created_by_id": _l("Set by")}
    column_formatters = {"created_by_id": lambda v, c, r, n: str(db.session.get(User, r.created_by_id) or "")}
    column_searchable_list = ("subscription.number",)
    extra_endpoints = {"split_view": "action"}
    operations = {"split_view": "commission.split"}

    @expose("/split/", methods=("POST",))
    def split_view(self):
        """The deal page's split form: agent_1…agent_4 with percent_1…percent_4, and the reason."""
        from models import Subscription
        raw = request.form.get("subscription_id", "")
        sub = db.session.get(Subscription, int(raw)) if raw.isdigit() and len(raw) < 12 else None
        if sub is None:
            flash(gettext("This subscription does not exist."), "error")
            return redirect(self.get_url(".index_view"))
        shares = []
        for n in range(1, 5):
            agent, percent = request.form.get(f"agent_{n}", ""), request.form.get(f"percent_{n}", "").strip()
            if agent.isdigit() and len(agent) < 12 and percent:
                shares.append((int(agent), percent))
        result = run_domain(lambda by: set_split(db.session, by, sub.id, shares, request.form.get("reason", ""),
                                                 today=office_today()))
        if succeeded(result):
            flash(gettext("The deal's split is saved and its commission recomputed."), "success")
        return redirect(url_for("subscription.details_view", id=sub.id) + "#deal-commission")


# --- the deal's page: its commission lines and split ------------------------------------------------------

def _deal_commission(sub):
    if not can(current_user, "commission_line", "list"):
        return None
    L = CommissionLine
    query = select(L.role, L.payee_user_id, L.payee_company_id, L.stage, func.sum(L.amount).label("total"),
                   func.count().label("lines")).where(L.subscription_id == sub.id)
    clause = scope_filter(L, current_user)
    if clause is not None:
        query = query.where(clause)
    rows = db.session.execute(query.group_by(L.role, L.payee_user_id, L.payee_company_id, L.stage)
                              .order_by(L.role, L.payee_user_id, L.payee_company_id, L.stage)).all()
    names = {u.id: u.display_name for u in db.session.scalars(select(User).where(
        User.id.in_({r.payee_user_id for r in rows if r.payee_user_id})))}
    companies = {c.id: c.name for c in db.session.scalars(select(ChannelCompany).where(
        ChannelCompany.id.in_({r.payee_company_id for r in rows if r.payee_company_id})))}
    lines = [{"role": choice_label("commission_line", "role", r.role), "stage": choice_label("commission_line", "stage",
                                                                                           r.stage),
              "payee": names.get(r.payee_user_id) or companies.get(r.payee_company_id) or "",
              "total": r.total, "lines": r.lines} for r in rows]
    split = db.session.execute(select(DealSplit.agent_id, DealSplit.percent, User.display_name)
                               .join(User, User.id == DealSplit.agent_id)
                               .where(DealSplit.subscription_id == sub.id).order_by(DealSplit.agent_id)).all() \
        if can(current_user, "deal_split", "list") else []
    may_split = can(current_user, "deal_split", "action") and can_do(current_user, "commission.split")
    agents = db.session.execute(select(User.id, User.display_name).where(
        User.id.in_(users_with_roles(db.session, ("agent",)))).order_by(User.display_name)).all() if may_split else []
    return {"lines": lines, "total": sum((r.total for r in rows), Decimal("0")), "split": split,
            "may_split": may_split, "agents": agents, "sub_id": sub.id,
            "lines_url": url_for("commission_line.index_view", search=sub.number) if lines else ""}


deal_section("admin/deal/_commission.html", _deal_commission)
