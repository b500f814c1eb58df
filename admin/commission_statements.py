"""Monthly commission statements (R-COM-2) — the grid, drawing a month, the approval, finance's
workbook and the PDF — and the floor's pages: the floor dashboard and the channel analytics.
Thin: every figure and every change comes from models.commission_statements."""
from __future__ import annotations

import datetime as dt
import io

from flask import flash, redirect, request, send_file, url_for
from flask_admin import expose
from flask_babel import gettext, lazy_gettext as _l, pgettext
from flask_login import current_user
from sqlalchemy import select

from models import db
from models.audit import record
from models.base import office_today
from models.commission_statements import (RULE, approval_refusal, approve_statement, channel_conversion,
                                          draw_statements, first_of_month, floor_figures, month_refusal, next_month,
                                          payee_name, statement_lines)
from models.commissions import CommissionStatement
from models.errors import RuleViolation
from models.labels import choice_label
from models.permissions import can, can_do, scope_filter
from models.projects import Project

from .base import ProtectedPage, ReadOnlyView, SecureForm, row_id, run_domain, succeeded
from .documents import DocumentButton
from .step_actions import Decision, decision_steps
from .steps import StepButton

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _payee(view, context, st, name):
    return payee_name(db.session, st)


def _approvable(st) -> bool:
    """The approve button's rows: drafts this user may approve, its month over or not (a month
    not over shows the button disabled, saying from when: `month_refusal`)."""
    return st.status == "draft" and approval_refusal(db.session, current_user, st, month_over=False) is None


APPROVALS = decision_steps(
    lambda by, st, approve: approve_statement(db.session, by, st.id),
    lambda n: gettext("%(n)d commission statements approved.", n=n),
    Decision("approve", _l("Approve"), _l("Approve the selected commission statements? The month is then closed "
                                          "for their payees."), True))


def _projects():
    return db.session.execute(select(Project.id, Project.name).order_by(Project.name)).all()


class CommissionStatementView(APPROVALS, ReadOnlyView):
    """佣金月结单: one payee's month. Finance or the manager draws the month; the manager approves
    up to the project's limit, the vice-president above, never the payee (R-COM-2)."""

    column_list = ("project", "month", "payee", "status", "earned", "clawed_back", "total", "line_count",
                   "needs_vp", "approved_by", "approved_at")
    column_details_list = column_list + ("created_at",)
    column_export_list = ("project", "month", "payee", "status", "earned", "clawed_back", "total", "line_count",
                          "needs_vp", "approved_by", "approved_at")
    column_filters = ("month", "status", "needs_vp", "project.name")
    column_sortable_list = ("month", "total", "status", "line_count")
    column_default_sort = ("id", True)
    column_labels = {"month": _l("Month"), "total": _l("Statement total"), "payee": _l("Payee"), "earned": _l("Earned"), "clawed_back": _l("Clawed back"),
                     "line_count": _l("Number of lines"), "needs_vp": _l("Needs the vice-president"),
                     "approved_by": _l("Approved by"), "approved_at": _l("Approved at")}
    column_formatters = {"payee": _payee}
    column_formatters_export = {"payee": _payee}
    extra_endpoints = {"draw_view": "action", "lines_xlsx": "export"}
    operations = {"approve": "commission.approve", "draw_view": "commission.statement"}
    row_steps = (StepButton("approve", "commission.approve", when=_approvable, why_not=month_refusal,
                            explain=(RULE,)),)
    column_extra_row_actions = [DocumentButton("commission_statement")]
    list_template = "admin/commission_statement_list.html"
    details_template = "admin/commission_statement_details.html"

    @expose("/draw/", methods=("GET", "POST"))
    def draw_view(self):
        """Draw (or refresh) a month's statements of a project."""
        form = SecureForm(request.form if request.method == "POST" else None)
        month = request.values.get("month") or office_today().strftime("%Y-%m")
        if request.method == "POST":
            project_id = row_id(request.form.get("project_id", ""))
            if not form.validate() or not project_id:
                flash(gettext("Choose the project and the month."), "error")
            else:
                done = run_domain(lambda by: draw_statements(db.session, by, project_id, month, office_today()))
                if succeeded(done):
                    flash(gettext("%(n)d statements drawn (%(new)d new); %(vp)d wait for the vice-president.",
                                  n=done["drawn"], new=done["created"], vp=done["needs_vp"]), "success")
                    return redirect(url_for(".index_view"))
        return self.render("admin/commission_draw.html", form=form, projects=_projects(), month=month)

    @expose("/lines.xlsx")
    def lines_xlsx(self):
        """Finance's workbook of a project's month: the statements per payee, then every line by
        payee, stage and deal with the clawbacks, each payee's total (formula-neutralised)."""
        project_id = row_id(request.args.get("project_id", ""))
        try:
            month = first_of_month(request.args.get("month") or office_today().strftime("%Y-%m"))
        except RuleViolation as exc:
            flash(str(exc), "error")
            return redirect(url_for(".index_view"))
        query = select(CommissionStatement).where(CommissionStatement.month == month)
        if project_id:
            query = query.where(CommissionStatement.project_id == project_id)
        clause = scope_filter(CommissionStatement, current_user)
        if clause is not None:
            query = query.where(clause)
        statements = db.session.scalars(query.order_by(CommissionStatement.project_id,
                                                       CommissionStatement.id)).all()
        buffer = io.BytesIO()
        write_statements_xlsx(db.session, statements, month, buffer)
        record(db.session, "commission_statement", month.strftime("%Y-%m"), "export",
               {"format": "xlsx", "statements": len(statements), "project_id": project_id}, actor=current_user.id)
        db.session.commit()
        buffer.seek(0)
        return send_file(buffer, as_attachment=True, mimetype=XLSX,
                         download_name=f"{gettext('Commission statements')}-{month.strftime('%Y-%m')}.xlsx")

    def render(self, template, **kwargs):
        st = kwargs.get("model")
        if template == self.details_template and st is not None:  # get_one scoped it already
            kwargs.update(statement_lines=statement_lines(db.session, st), label=choice_label)
        if template == self.list_template:
            kwargs["statement_tools"] = {"may_draw": can_do(current_user, "commission.statement")
                                         and can(current_user, "commission_statement", "action"),
                                         "may_export": can(current_user, "commission_statement", "export"),
                                         "projects": _projects(), "month": office_today().strftime("%Y-%m")}
        return super().render(template, **kwargs)


def statement_sheets(session, statements, month: dt.date) -> tuple:
    """(columns, rows) of the statements sheet and of the lines sheet: the figures are the
    statements' own (drawn) ones, the lines those each statement covers."""
    sums_columns = [("project", gettext("Project"), None), ("payee", gettext("Payee"), None),
                    ("status", gettext("Status"), None), ("earned", gettext("Earned"), "money"),
                    ("clawed_back", gettext("Clawed back"), "money"), ("total", gettext("Statement total"), "money"),
                    ("line_count", gettext("Number of lines"), "int")]
    line_columns = [("payee", gettext("Payee"), None), ("stage", gettext("Commission stage"), None),
                    ("deal", gettext("Subscription number"), None), ("customer", gettext("Customer name"), None),
                    ("kind", gettext("Kind"), None), ("earned_on", gettext("Date"), None),
                    ("base", gettext("Commission base"), "money"), ("amount", gettext("Amount"), "money"),
                    ("reason", gettext("Reason"), None)]
    sums, lines = [], []
    for st in statements:
        name = payee_name(session, st)
        sums.append({"project": st.project.name, "payee": name,
                     "status": str(choice_label("commission_statement", "status", st.status)),
                     "earned": st.earned, "clawed_back": st.clawed_back, "total": st.total,
                     "line_count": st.line_count})
        for line in statement_lines(session, st):
            lines.append({**line, "payee": name, "stage": str(choice_label("commission_line", "stage", line["stage"])),
                          "kind": str(choice_label("commission_line", "kind", line["kind"])),
                          "earned_on": line["earned_on"].isoformat()})
        lines.append({"payee": name, "stage": pgettext("commission", "Total"), "amount": st.total})
    total = pgettext("commission", "Total")
    sums.append({"project": total, "earned": sum((s["earned"] for s in sums), 0),
                 "clawed_back": sum((s["clawed_back"] for s in sums), 0), "total": sum((s["total"] for s in sums), 0),
                 "line_count": sum(s["line_count"] for s in sums)})
    lines.append({"payee": total, "amount": sums[-1]["total"]})
    return (sums_columns, sums), (line_columns, lines)


def write_statements_xlsx(session, statements, month: dt.date, out) -> None:
    from spreadsheets import write_table_xlsx
    (sums_columns, sums), (line_columns, lines) = statement_sheets(session, statements, month)
    title = gettext("Commission statements %(month)s", month=month.strftime("%Y-%m"))
    write_table_xlsx(out, gettext("Statements"), title, sums_columns, sums,
                     more=[(gettext("Commission line items"), title, line_columns, lines)])


# --- the floor's pages ------------------------------------------------------------------------------

def _period() -> tuple[int | None, dt.date, dt.date]:
    """The page's project and period (?project_id=&start=YYYY-MM-DD&end=…): this month by default."""
    today = office_today()

    def day(name, default):
        try:
            return dt.date.fromisoformat(request.args.get(name, "")) if request.args.get(name) else default
        except ValueError:
            flash(gettext("A date was not understood; the default period is shown."), "error")
            return default
    start = day("start", today.replace(day=1))
    end = day("end", next_month(today.replace(day=1)) - dt.timedelta(days=1))
    if end < start:
        start, end = end, start
    if (end - start).days > 731:
        start = end - dt.timedelta(days=731)
    return row_id(request.args.get("project_id", "")), start, end


def _channel_label(channel: str) -> str:
    if channel == "none":
        return gettext("No visit registered")
    return str(choice_label("visit", "channel", channel))


class FloorDashboardPage(ProtectedPage):
    """The floor dashboard: the rotation's fairness over a period, conversion by channel, and
    commissions accrued and payable — each figure from its one function (R-RCP-1, R-COM-2)."""

    entity = "floor_dashboard"

    @expose("/")
    def index(self):
        project_id, start, end = _period()
        return self.render("admin/floor_dashboard.html", f=floor_figures(db.session, project_id, start, end),
                           projects=_projects(), project_id=project_id, start=start, end=end,
                           channel_label=_channel_label,
                           may_see_analytics=can(current_user, "channel_analytics", "list"))


def analytics_columns() -> list[tuple]:
    return [("month", gettext("Month"), None), ("channel_label", gettext("Visit channel"), None),
            ("visits", gettext("Visits"), "int"), ("subscriptions", gettext("Subscriptions"), "int"),
            ("signings", gettext("Signings"), "int"), ("subscription_rate", gettext("Subscriptions per 100 visits"),
                                                         "rate"),
            ("signing_rate", gettext("Signings per 100 visits"), "rate")]


class ChannelAnalyticsPage(ProtectedPage):
    """Visits → subscriptions → signings per channel and per month (R-RCP-2), on the page and as
    a workbook, from models.commission_statements.channel_conversion."""

    entity = "channel_analytics"
    verb_of = {"index": "list", "export_xlsx": "export"}

    @expose("/")
    def index(self):
        project_id, start, end = _period()
        rows = channel_conversion(db.session, project_id, start, end)
        return self.render("admin/channel_analytics.html", rows=rows, projects=_projects(), project_id=project_id,
                           start=start, end=end, channel_label=_channel_label,
                           may_export=can(current_user, "channel_analytics", "export"))

    @expose("/export.xlsx")
    def export_xlsx(self):
        from spreadsheets import write_table_xlsx
        project_id, start, end = _period()
        rows = [{**r, "channel_label": _channel_label(r["channel"])}
                for r in channel_conversion(db.session, project_id, start, end)]
        totals = {"month": pgettext("commission", "Total"), **{k: sum(r[k] for r in rows) for k in ("visits", "subscriptions",
                                                                                      "signings")}}
        record(db.session, "channel_analytics", f"{start}..{end}", "export", {"format": "xlsx", "rows": len(rows),
                                                                             "project_id": project_id},
               actor=current_user.id)
        db.session.commit()
        buffer = io.BytesIO()
        write_table_xlsx(buffer, gettext("Channels"), gettext("Conversion by channel, %(start)s to %(end)s",
                                                              start=start.isoformat(), end=end.isoformat()),
                         analytics_columns(), rows + [totals])
        buffer.seek(0)
        return send_file(buffer, as_attachment=True, mimetype=XLSX,
                         download_name=f"{gettext('Channel analytics')}-{start}-{end}.xlsx")
