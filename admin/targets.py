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

from .base import ProtectedPage, row_id, run_domain


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
        if saved is not False:
            flash(gettext("Targets saved for %(n)d agents.", n=saved), "success")
        return redirect(url_for(".index", month=month if saved is not False else None))

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
        ("target_subscriptions", pgettext("monthly review", "Subscriptions target (units)"), "int"),
        ("subscriptions", pgettext("monthly review", "Subscriptions done (units)"), "int"),
        ("subscriptions_rate", pgettext("monthly review", "Achieved %"), "rate"),
        ("target_amount", pgettext("monthly review", "Subscription amount target"), "money"),
        ("amount", pgettext("monthly review", "Subscription amount"), "money"),
        ("amount_rate", pgettext("monthly review", "Achieved %"), "rate"),
        ("target_collections", pgettext("monthly review", "Collections target"), "money"),
        ("collections", pgettext("monthly review", "Collections"), "money"),
        ("collections_rate", pgettext("monthly review", "Achieved %"), "rate"),
        ("new_leads", pgettext("monthly review", "New customers"), "int"),
        ("follow_ups", pgettext("monthly review", "Follow-ups"), "int"),
        ("visits", pgettext("monthly review", "Visits"), "int"),
    ]


def write_review_xlsx(review: dict, out) -> None:
    import xlsxwriter

    from models.exports import neutralise_formula
    book = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_formulas": False})
    sheet = book.add_worksheet(review["month"])
    bold = book.add_format({"bold": True})
    money = book.add_format({"num_format": "#,##0.00"})
    columns = review_columns()
    sheet.write_string(0, 0, pgettext("monthly review", "Monthly review %(month)s (%(first)s to %(last)s)",
                                      month=review["month"], first=review["first"], last=review["last"]), bold)
    for col, (_, header, _) in enumerate(columns):
        sheet.write_string(2, col, header, bold)
        sheet.set_column(col, col, 13)
    rows = review["rows"] + [{**review["totals"], "agent": pgettext("monthly review", "Total"),
                              "subscriptions_rate": None, "amount_rate": None, "collections_rate": None}]
    for n, row in enumerate(rows, start=3):
        for col, (key, _, kind) in enumerate(columns):
            value = row.get(key)
            if value is None:
                continue
            if kind is None:
                sheet.write_string(n, col, neutralise_formula(str(value)), bold if row is rows[-1] else None)
            else:
                sheet.write_number(n, col, float(value), money if kind == "money" else None)
    book.close()
