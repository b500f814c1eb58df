"""Monthly targets (R-ALL-3): the manager sets each agent's targets for a month on one page,
beside what they did; the monthly review downloads as XLSX (in the reader's language) or PDF (a
signed office document, in Chinese)."""
from __future__ import annotations

import io

from flask import flash, redirect, request, send_file, url_for
from flask_admin import expose
from flask_babel import gettext, pgettext
from flask_login import current_user

from models import RuleViolation, db
from models.audit import record
from models.base import office_today
from models.permissions import can
from models.reports import monthly_review, project_names
from models.targets import parse_month, set_target

from .base import ProtectedPage, row_id, run_domain, succeeded


def _month(value=None) -> str:
    try:
        return parse_month(value) if value else office_today().strftime("%Y-%m")
    except RuleViolation as exc:
        flash(str(exc), "error")
        return office_today().strftime("%Y-%m")


class TargetsPage(ProtectedPage):
    entity = "sales_target"
    verb_of = {"index": "list", "save": "action", "review_xlsx": "export", "review_pdf": "export"}

    @expose("/")
    def index(self):
        month = _month(request.args.get("month"))
        review = monthly_review(db.session, month)
        return self.render("admin/targets.html", review=review, month=month,
                           may_set=can(current_user, "sales_target", "action"))

    @expose("/save", methods=("POST",))
    def save(self):
        form = request.form
        month = form.get("month", "")
        agent_ids = [key.split("_", 1)[1] for key in form if key.startswith("subscriptions_")]

        def save_all(by):
            for agent_id in agent_ids:
                if row_id(agent_id) is None:
                    raise RuleViolation(gettext("The selection was not understood; nothing was changed."))
                set_target(db.session, by, row_id(agent_id), month,
                           subscriptions=form.get(f"subscriptions_{agent_id}", "0"),
                           amount=form.get(f"amount_{agent_id}", "0"),
                           collections=form.get(f"collections_{agent_id}", "0"))
            return len(agent_ids)

        saved = run_domain(save_all)  # all agents' targets or none
        if succeeded(saved):
            flash(gettext("Targets saved for %(n)d agents.", n=saved), "success")
        return redirect(url_for(".index", month=month if succeeded(saved) else None))

    def _review(self, fmt):
        month = _month(request.args.get("month"))
        review = monthly_review(db.session, month)
        record(db.session, "sales_target", month, "export", {"format": fmt, "rows": len(review["rows"])},
               actor=current_user.id)
        db.session.commit()
        return review

    @expose("/review.xlsx")
    def review_xlsx(self):
        review = self._review("xlsx")
        buffer = io.BytesIO()
        write_review_xlsx(review, buffer)
        buffer.seek(0)
        name = pgettext("monthly review", "Monthly review")
        return send_file(buffer, as_attachment=True, download_name=f"{name}-{review['month']}.xlsx",
                         mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")

    @expose("/review.pdf")
    def review_pdf(self):
        import pdf
        review = self._review("pdf")
        data = pdf.render("monthly_review", {**review, "project": {"name": project_names(db.session), "developer": "",
                                                                         "address": ""},
                                             "title": review["month"], "kind_label": "月度业绩回顾",
                                             "issued_on": office_today()})
        return send_file(io.BytesIO(data), mimetype="application/pdf",
                         download_name=f"月度业绩回顾-{review['month']}.pdf")


def review_columns() -> list[tuple]:
    """(key, header in the current language, kind) of the review's columns."""
    return [
        ("agent", pgettext("monthly review", "Agent"), None),
        *_against_target("subscriptions", pgettext("monthly review", "Subscriptions target (units)"),
                         pgettext("monthly review", "Subscriptions done (units)"), "int"),
        *_against_target("amount", pgettext("monthly review", "Subscription amount target"),
                         pgettext("monthly review", "Subscription amount"), "money"),
        *_against_target("collections", pgettext("monthly review", "Collections target"),
                         pgettext("monthly review", "Collections"), "money"),
        ("new_leads", pgettext("monthly review", "New customers"), "int"),
        ("follow_ups", pgettext("monthly review", "Follow-ups"), "int"),
        ("visits", pgettext("monthly review", "Visits"), "int"),
        ("surveys", pgettext("monthly review", "Satisfaction surveys"), "int"),
        ("satisfaction", pgettext("monthly review", "Average satisfaction (1–5)"), "rate"),
        ("satisfied", pgettext("monthly review", "Satisfied %"), "rate"),
    ]


def after_sales_sheets(review: dict) -> list[tuple]:
    """The review's after-sales sheets (R-SVC-1/2): satisfaction per project, and the month's
    tickets — (sheet, title, columns, rows) for spreadsheets.write_table_xlsx."""
    columns = [("name", pgettext("monthly review", "Project"), None),
               ("count", pgettext("monthly review", "Satisfaction surveys"), "int"),
               ("overall", pgettext("monthly review", "Average satisfaction (1–5)"), "rate"),
               ("service", pgettext("monthly review", "Average service (1–5)"), "rate"),
               ("quality", pgettext("monthly review", "Average quality (1–5)"), "rate"),
               ("satisfied", pgettext("monthly review", "Satisfied %"), "rate")]
    total = {**review["satisfaction"]["total"], "name": pgettext("monthly review", "Total")}
    tickets = review["tickets"]
    ticket_columns = [("what", pgettext("monthly review", "After-sales tickets"), None),
                      ("n", pgettext("monthly review", "Count"), "int")]
    ticket_rows = [{"what": pgettext("monthly review", "Opened"), "n": tickets["opened"]},
                   {"what": pgettext("monthly review", "Closed"), "n": tickets["closed"]},
                   {"what": pgettext("monthly review", "Overdue"), "n": tickets["overdue"]}]
    return [(pgettext("monthly review", "Satisfaction"), pgettext("monthly review", "Satisfaction by project"),
             columns, review["satisfaction"]["projects"] + [total]),
            (pgettext("monthly review", "Tickets"), pgettext("monthly review", "After-sales tickets"),
             ticket_columns, ticket_rows)]


def _against_target(key: str, target: str, done: str, kind: str) -> list[tuple]:
    """A figure's three columns: its target, what was done, and the share achieved."""
    return [(f"target_{key}", target, kind), (key, done, kind),
            (f"{key}_rate", pgettext("monthly review", "Achieved %"), "rate")]


def write_review_xlsx(review: dict, out) -> None:
    """The monthly review as a workbook, in the current language (spreadsheets.write_table_xlsx)."""
    from spreadsheets import write_table_xlsx
    title = pgettext("monthly review", "Monthly review %(month)s (%(first)s to %(last)s)",
                     month=review["month"], first=review["first"], last=review["last"])
    rows = review["rows"] + [{**review["totals"], "agent": pgettext("monthly review", "Total"),
                              "subscriptions_rate": None, "amount_rate": None, "collections_rate": None}]
    write_table_xlsx(out, review["month"], title, review_columns(), rows, more=after_sales_sheets(review))
