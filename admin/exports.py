"""Finance exports: the filter page (/admin/finance_export/) and the background exports grid
(/admin/export/) with progress and downloads. The rules live in models/exports.py."""
from __future__ import annotations

import io

from flask import Response, flash, redirect, request, send_file, stream_with_context, url_for
from flask_admin import expose
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select

from models import Project, RuleViolation, db
from models.base import office_today
from models.deals import PAYMENT_METHODS
from models.payments import INSTALMENT_STATUSES, PAYMENT_CHANNELS
from models.exports import (DIRECT_LIMIT, audit_export, chunks, count_rows, file_name, parse_filters,
                            request_export, write_export)
from models.labels import choice_label

from .base import ProtectedPage, ReadOnlyView, run_domain
from .documents import WAITING_FOR_QUEUE, retry_button
from .i18n import LANGUAGES

MIMETYPES = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


class FinanceExportPage(ProtectedPage):
    """Choose a list and its filters; small exports download at once, large ones become a job."""

    entity = "finance_export"
    verb_of = {"index": "export", "run": "export"}

    @expose("/")
    def index(self):
        projects = db.session.execute(select(Project.id, Project.name).order_by(Project.name)).all()
        choices = {
            "method": [(c, choice_label("subscription", "payment_method", c)) for c in PAYMENT_METHODS],
            "channel": [(c, choice_label("payment", "channel", c)) for c in PAYMENT_CHANNELS],
            "instalment_status": [(c, choice_label("instalment", "status", c)) for c in INSTALMENT_STATUSES],
        }
        return self.render("admin/finance_export.html", projects=projects, choices=choices,
                           args=request.args, limit=DIRECT_LIMIT)

    @expose("/run", methods=("POST",))
    def run(self):
        form = request.form
        list_name, fmt = form.get("list", ""), form.get("format", "")
        back = url_for(".index", **{k: v for k, v in form.items() if k != "csrf_token"})
        try:
            if fmt not in MIMETYPES:
                raise RuleViolation(_l("Exports are CSV or XLSX."))
            filters = parse_filters(db.session, list_name, form)
            total = count_rows(db.session, list_name, filters, current_user)
        except RuleViolation as exc:
            flash(str(exc), "error")
            return redirect(back)
        user = current_user._get_current_object()
        if total <= DIRECT_LIMIT:
            buffer = io.BytesIO()
            rows = write_export(db.session, list_name, fmt, filters, user, buffer)
            audit_export(db.session, user, list_name, fmt, filters, rows)
            db.session.commit()
            buffer.seek(0)
            response = send_file(buffer, mimetype=MIMETYPES[fmt], as_attachment=True,
                                 download_name=file_name(list_name, fmt, office_today()))
            response.headers["Cache-Control"] = "private, no-store"
            return response
        export = request_export(db.session, user, list_name, fmt, filters, total)
        db.session.commit()
        from jobs.documents import QueueUnavailable
        from jobs.exports import enqueue_export
        try:
            enqueue_export(db.session, export)
        except QueueUnavailable:  # the job queue is down: queued without a job, the sweep sends it
            flash(gettext("The export is recorded but the job queue cannot be reached; it will run "
                          "as soon as it is back."), "warning")
            return redirect(url_for("export.index_view"))
        flash(gettext("%(n)d rows: the export runs in the background; download it here when it is "
                      "done.", n=total), "success")
        return redirect(url_for("export.index_view"))


def _progress(view, context, model, name):
    """Animated only while the export is really under way: still (and red) when it failed, and
    saying so instead of animating when it waits for the job queue or its job cannot be read."""
    from jobs.queue import is_embedded, job_meta, job_states
    note = ""
    done = (model.rows or 0) if model.status == "done" else 0
    colour = {"done": "bg-success", "failed": "bg-danger"}.get(model.status)
    if model.status in ("queued", "running") and not is_embedded():
        if model.job_id is None:
            colour, note = "bg-secondary", WAITING_FOR_QUEUE
        else:
            states = job_states([model.job_id])
            if states is None:
                colour, note = "bg-secondary", gettext("The job queue cannot be read right now.")
            elif states.get(model.job_id) in ("failed", "stopped", "canceled", None):
                colour, note = "bg-warning", gettext("Its job was interrupted; it is sent again automatically.")
            elif model.status == "running":
                metas = job_meta([model.job_id])
                done = int(metas[0].get("done", 0)) if metas else 0
    colour = colour or "progress-bar-striped progress-bar-animated"
    total = max(model.total, 1)
    percent = min(100, round(100 * done / total)) if model.status != "done" else 100
    pending = Markup(" data-pending") if model.status in ("queued", "running") else ""
    return Markup('<div class="progress" style="min-width:10em"%s><div class="progress-bar %s" '
                  'style="width:%d%%">%s / %s</div></div>%s') % (
        pending, colour, percent, f"{done:,}", f"{model.total:,}",
        Markup('<small class="text-muted d-block" data-stalled>%s</small>') % note if note else "")


def _download(view, context, model, name):
    if model.status == "done":
        return Markup('<a href="%s"><span class="fa fa-download"></span> %s</a>') % (
            url_for("export.download_view", export_id=model.id), model.file)
    if model.status == "failed":
        return Markup('<span class="text-danger" title="%s">%s</span> %s') % (
            model.error, model.error[:120], retry_button(url_for("export.retry_view", export_id=model.id)))
    return ""


def _filters(view, context, model, name):
    """The export's filters as the reader reads them: names and values in their language."""
    filters = model.filters or {}
    names = {"project": gettext("Project"), "date_from": gettext("The start date"),
             "date_to": gettext("The end date"), "method": gettext("Payment method"),
             "status": gettext("Status"), "channel": gettext("Payment channel"), "overdue": gettext("Overdue")}
    status_of = ("instalment", "status") if model.list == "instalments" else None

    def value(key, v):
        if key == "project":
            return db.session.scalar(select(Project.name).where(Project.id == v)) or f"#{v}"
        if key == "method":
            return choice_label("subscription", "payment_method", v)
        if key == "channel":
            return choice_label("payment", "channel", v)
        if key == "status" and status_of:
            return choice_label(*status_of, v)
        if key == "status":
            return {"receipt": gettext("Receipts"), "reversal": gettext("Reversals")}.get(v, v)
        if key == "overdue":
            return "✓"
        return v
    return "; ".join(f"{names.get(k, k)}: {value(k, v)}" for k, v in filters.items()) or "—"


class ExportView(ReadOnlyView):
    """Background exports: one's own (everyone's for managers, finance and the VP)."""

    verbs = frozenset({"list", "details"})
    list_template = "admin/document_list.html"  # reloads itself while an export is under way
    extra_endpoints = {"download_view": "list", "retry_view": "list"}
    column_list = ("id", "list", "format", "filters", "status", "progress", "download", "size",
                   "requested_by", "created_at", "finished_at")
    column_filters = ("list", "status", "created_at")
    column_formatters = {"progress": _progress, "download": _download, "filters": _filters,
                         "locale": lambda v, c, m, n: LANGUAGES.get(m.locale, m.locale),
                         "size": lambda v, c, m, n: f"{m.size / 1048576:,.1f} MB" if m.size else ""}
    column_labels = {"progress": _l("Progress"), "download": _l("File"), "list": _l("List"),
                     "format": _l("Format"), "filters": _l("Filters"), "rows": _l("Rows")}

    @expose("/retry/<int:export_id>", methods=("POST",))
    def retry_view(self, export_id):
        """A failed export back to the queue (idempotent: anything else is left alone)."""
        from jobs.documents import QueueUnavailable
        from jobs.exports import enqueue_export
        from models.exports import retry_export
        export = run_domain(lambda by: retry_export(db.session, by, export_id))
        if export:
            try:
                enqueue_export(db.session, export)
                flash(gettext("The export runs again in the background."), "success")
            except QueueUnavailable:
                flash(gettext("The export is recorded but the job queue cannot be reached; it will run "
                              "as soon as it is back."), "warning")
        return redirect(url_for(".index_view"))

    @expose("/download/<int:export_id>")
    def download_view(self, export_id):
        export = self.get_one(export_id)  # scoped: 404 for someone else's export
        if export.status != "done":
            flash(gettext("This export is not ready yet."), "warning")
            return redirect(url_for(".index_view"))
        from models.audit import record
        record(db.session, "export", export.id, "download", {"rows": export.rows}, actor=current_user.id)
        db.session.commit()
        response = Response(stream_with_context(chunks(db.session, export.id)), mimetype=MIMETYPES[export.format])
        response.headers["Content-Disposition"] = _disposition(export.file)
        response.headers["Content-Length"] = str(export.size)
        response.headers["Cache-Control"] = "private, no-store"
        return response


def _disposition(name: str) -> str:
    from urllib.parse import quote
    return f"attachment; filename=\"export.{name.rsplit('.', 1)[-1]}\"; filename*=UTF-8''{quote(name)}"

