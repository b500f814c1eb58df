"""The document centre (/admin/document/, /admin/document_batch/), the request and download
endpoints, and the buttons that request documents from their subject's grid.

Every endpoint checks who may see the document's subject (models.documents.may_see): a link is
only a convenience, the download URL itself checks.
"""
from __future__ import annotations

import io
import zipfile

from flask import abort, flash, redirect, request, send_file, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.model.template import BaseListRowAction
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup
from sqlalchemy import select

from jobs.documents import QueueUnavailable, enqueue_documents
from jobs.queue import is_embedded
from models import Document, DocumentBatch, db
from models.audit import record
from models.document_queue import kind_label
from models.documents import (may_see, refusal, request_documents, retry_document, scope_documents,
                              visible_subject_ids)

from .base import ReadOnlyView, run_domain
from .rows import fill, per_request, slotted

# What the button says on a subject's row, per kind.
BUTTON_LABELS = {
    "subscription_agreement": _l("Print the subscription agreement"),
    "receipt": _l("Print the receipt"),
    "payment_reminder": _l("Print a payment reminder"),
    "overdue_warning": _l("Print the warning letter"),
    "lawyer_letter": _l("Print the lawyer's letter"),
    "forfeit_notice": _l("Print the forfeit notice"),
    "signing_booking": _l("Print the signing booking"),
    "statement": _l("Print the customer's statement"),
    "board": _l("Print the sales-control board"),
    "handover_notice": _l("Print the handover notice"),
    "handover_record": _l("Print the handover record"),
    "survey_summary": _l("Print the satisfaction summary"),
    "commission_statement": _l("Print the commission statement"),
    "intent_card": _l("Print the intent card"),  # issue 24 (R-LCH-1)
}


# The button's own short text on the row (the full label is its tooltip).
SHORT_LABELS = {
    "subscription_agreement": _l("Agreement"),
    "receipt": _l("Receipt"),
    "payment_reminder": _l("Reminder"),
    "overdue_warning": _l("Warning letter"),
    "lawyer_letter": _l("Lawyer's letter"),
    "forfeit_notice": _l("Forfeit notice"),
    "signing_booking": _l("Booking"),
    "statement": _l("Statement"),
    "board": _l("Board"),
    "handover_notice": _l("Notice"),
    "handover_record": _l("Record"),
    "commission_statement": _l("Commission statement"),
    "intent_card": _l("Intent card"),  # issue 24 (R-LCH-1)
}


def request_and_enqueue(kind: str, subject_ids) -> object:
    """Request documents as the current user, hand them to the workers, say what happened and
    go to the document centre (or the batch list)."""
    result = run_domain(lambda by: request_documents(db.session, by, kind, subject_ids))
    if not result:
        return redirect(request.referrer or url_for("document.index_view"))
    batch, documents = result
    try:
        enqueue_documents(db.session, documents)
    except QueueUnavailable:
        flash(gettext("The documents are recorded but the job queue cannot be reached; they will "
                      "be rendered as soon as it is back."), "warning")
        return redirect(url_for("document.index_view"))
    statuses = list(db.session.scalars(select(Document.status).where(
        Document.id.in_([d.id for d in documents]))))
    failed = statuses.count("failed")
    if failed:  # rendered at once (embedded mode) and some failed: say so now
        flash(gettext("%(n)d of the documents could not be rendered; the document centre shows why.",
                      n=failed), "error")
    elif statuses.count("done") == len(statuses):
        flash(gettext("Ready: %(n)d document(s), to download below.", n=len(statuses)), "success")
    elif batch is not None:
        flash(gettext("%(n)d documents are being rendered: follow the progress here, then "
                      "download them as one zip.", n=len(documents)), "success")
    else:
        flash(gettext("The document is being rendered; it appears here when it is ready."), "success")
    return redirect(url_for("document_batch.index_view" if batch is not None else "document.index_view"))


class DocumentButton(BaseListRowAction):
    """A row button that POSTs (with the CSRF token) a request for one document of `kind`.

    `subject` maps the row to the subject id (default: the row itself is the subject, and the
    button shows only where models.documents.refusal allows the document, e.g. a forfeit notice
    only on a forfeited deal); `when(row)` hides it where it would say nothing useful."""

    renders_itself = True  # admin/rows.py's fast rows call its render(None, row_id, row)

    def __init__(self, kind: str, subject=None, when=None):
        super().__init__(title=BUTTON_LABELS[kind])
        self.kind, self.subject, self.when = kind, subject, when

    def render(self, context, row_id, row):
        if self.subject is None and refusal(self.kind, row) is not None:
            return ""
        if self.when is not None and not self.when(row):
            return ""
        subject_id = self.subject(row) if self.subject else row_id
        return fill(per_request(("document-form", self.kind), self._form), subject_id)

    def _form(self) -> tuple[str, str]:
        """The button's form before and after the subject's id (built once per page)."""
        return slotted(Markup(
            '<form class="icon" method="POST" action="%s">'
            '<input type="hidden" name="csrf_token" value="%s">'
            '<input type="hidden" name="kind" value="%s">'
            '<input type="hidden" name="subject_id" value="\0">'
            '<button type="submit" class="btn btn-link btn-sm p-0 text-nowrap" title="%s" data-document="%s">'
            '<span class="fa fa-file-pdf-o"></span> %s</button></form>') % (
                url_for("document.request_view"), generate_csrf(), self.kind, self.title, self.kind,
                SHORT_LABELS[self.kind]))


def document_actions(*kinds: str):
    """A mixin with a bulk action per kind ("document_<kind>"): the selected rows' documents,
    as one batch. Seeing the rows is enough to ask for their documents (no action right)."""
    attrs: dict = {"action_verbs": {f"document_{kind}": "list" for kind in kinds}}
    for kind in kinds:
        def run(self, ids, kind=kind):
            return request_and_enqueue(kind, ids)
        run.__name__ = f"action_document_{kind}"
        attrs[run.__name__] = action(f"document_{kind}", BUTTON_LABELS[kind])(run)
    return type("DocumentActions", (), attrs)


def _status_badge(view, context, model, name):
    colours = {"queued": "secondary", "running": "info", "done": "success", "failed": "danger"}
    from models.labels import choice_label
    pending = Markup(" data-pending") if model.status in ("queued", "running") else ""
    return Markup('<span class="badge badge-%s"%s>%s</span>') % (
        colours.get(model.status, "secondary"), pending, choice_label("document", "status", model.status))


def retry_button(url: str) -> Markup:
    """The retry button of a failed document or export: a POST with the CSRF token."""
    return Markup('<form class="icon d-inline" method="POST" action="%s">'
                  '<input type="hidden" name="csrf_token" value="%s">'
                  '<button type="submit" class="btn btn-outline-danger btn-sm py-0" data-retry>'
                  '<span class="fa fa-refresh"></span> %s</button></form>') % (url, generate_csrf(), gettext("Retry"))


def _download(view, context, model, name):
    if model.status == "done":
        return Markup('<a href="%s" target="_blank"><span class="fa fa-file-pdf-o"></span> %s</a>') % (
            url_for("document.download_view", document_id=model.id), model.file or gettext("Download"))
    if model.status == "failed":
        return Markup('<span class="text-danger" title="%s">%s</span> %s') % (
            model.error, model.error[:80], retry_button(url_for("document.retry_view", document_id=model.id)))
    if model.status == "queued" and model.job_id is None and not is_embedded():
        return Markup('<small class="text-muted" data-waiting>%s</small>') % WAITING_FOR_QUEUE
    return ""


WAITING_FOR_QUEUE = _l("Waiting for the job queue; it starts by itself when the queue is back.")


def _size(view, context, model, name):
    return f"{model.size / 1024:,.0f} KB" if model.size else ""


def _requested_by(view, context, model, name):
    return model.requested_by or gettext("System (overdue ladder)")


class DocumentView(ReadOnlyView):
    """The document centre: every document the user may see, its state and its download."""

    verbs = frozenset({"list", "details"})
    list_template = "admin/document_list.html"
    extra_endpoints = {"request_view": "list", "download_view": "list", "retry_view": "list"}
    column_list = ("id", "kind", "title", "status", "download", "size", "requested_by", "batch",
                   "created_at", "finished_at")
    column_details_list = ("id", "kind", "subject_id", "title", "status", "download", "file", "size",
                           "sha256", "error", "job_id", "attempts", "requested_by", "batch", "created_at",
                           "started_at", "finished_at")
    column_filters = ("kind", "status", "created_at")
    column_searchable_list = ("title",)
    column_formatters = {"status": _status_badge, "download": _download, "size": _size,
                         "requested_by": _requested_by}
    column_labels = {"download": _l("File")}

    def _scope(self, query, model=None):
        if (model or self.model) is Document:
            return scope_documents(query, current_user)
        return super()._scope(query, model)

    @expose("/request/", methods=("POST",))
    def request_view(self):
        return request_and_enqueue(request.form.get("kind", ""), request.form.getlist("subject_id"))

    @expose("/retry/<int:document_id>", methods=("POST",))
    def retry_view(self, document_id):
        """A failed document back to the queue (idempotent: anything else is left alone)."""
        document = run_domain(lambda by: retry_document(db.session, by, document_id))
        if document:
            try:
                enqueue_documents(db.session, [document])
            except QueueUnavailable:
                flash(gettext("The documents are recorded but the job queue cannot be reached; they will "
                              "be rendered as soon as it is back."), "warning")
                return redirect(url_for(".index_view"))
            status = db.session.scalar(select(Document.status).where(Document.id == document_id))
            flash(gettext("The document is being rendered again.") if status != "done"
                  else gettext("Ready: %(n)d document(s), to download below.", n=1), "success")
        return redirect(url_for(".index_view"))

    @expose("/download/<int:document_id>")
    def download_view(self, document_id):
        document = db.session.get(Document, document_id)
        if document is None or not may_see(db.session, current_user, document):
            abort(404)  # another agent's customer looks exactly like a missing document
        if document.status != "done":
            flash(gettext("This document is not ready yet."), "warning")
            return redirect(url_for(".index_view"))
        data = db.session.scalar(select(Document.content).where(Document.id == document.id))
        record(db.session, "document", document.id, "download", {"kind": document.kind},
               actor=current_user.id)
        db.session.commit()
        response = send_file(io.BytesIO(data), mimetype="application/pdf",
                             download_name=document.file or f"document-{document.id}.pdf")
        response.headers["Cache-Control"] = "private, no-store"
        return response


def _progress(view, context, model, name):
    """The batch's progress from its documents' rows (each render commits its own), animated
    only while work is really under way: red and still when some failed, and saying so
    instead of animating when the work waits for the job queue or its jobs cannot be read."""
    from jobs.queue import job_states
    rows = db.session.execute(
        select(Document.status, Document.job_id, db.func.count()).where(Document.batch_id == model.id)
        .group_by(Document.status, Document.job_id)).all()
    by_status: dict = {}
    for status, _, n in rows:
        by_status[status] = by_status.get(status, 0) + n
    done, failed = by_status.get("done", 0), by_status.get("failed", 0)
    pending_jobs = {job_id for status, job_id, _ in rows if status in ("queued", "running")}
    total = model.total or 1
    percent = min(100, round(100 * (done + failed) / total))
    note = ""
    if not pending_jobs:
        bar = "bg-danger" if failed else "bg-success"
    elif is_embedded():
        bar = "progress-bar-striped progress-bar-animated"  # the process's own thread renders them
    elif None in pending_jobs:
        bar, note = "bg-secondary", WAITING_FOR_QUEUE
    else:
        states = job_states(pending_jobs)
        if states is None:
            bar, note = "bg-secondary", gettext("The job queue cannot be read right now; the state shown "
                                                "is the last one recorded.")
        elif any(state in ("failed", "stopped", "canceled") for state in states.values()):
            bar, note = "bg-warning", gettext("A job was interrupted; the rest is sent again automatically.")
        else:
            bar = "progress-bar-striped progress-bar-animated"
    pending = Markup(" data-pending") if pending_jobs else ""
    return Markup('<div class="progress" style="min-width:10em" title="%s"%s>'
                  '<div class="progress-bar %s" role="progressbar" style="width:%d%%" aria-valuenow="%d" '
                  'aria-valuemin="0" aria-valuemax="100">%d / %d</div></div>%s%s') % (
        gettext("%(done)d done, %(failed)d failed, of %(total)d", done=done, failed=failed, total=model.total),
        pending, bar, percent, percent, done + failed, model.total,
        Markup('<small class="text-danger">%s</small>') % gettext("%(n)d failed", n=failed) if failed else "",
        Markup('<small class="text-muted d-block" data-stalled>%s</small>') % note if note else "")


def _zip_link(view, context, model, name):
    return Markup('<a href="%s"><span class="fa fa-file-archive-o"></span> %s</a>') % (
        url_for("document_batch.zip_view", batch_id=model.id), gettext("Download all (zip)"))


class DocumentBatchView(ReadOnlyView):
    """Batches: one line per request of several documents, with progress and a zip."""

    entity = "document_batch"
    choices_of = "document"  # the same kinds, the same labels
    verbs = frozenset({"list", "details"})
    list_template = "admin/document_list.html"
    extra_endpoints = {"zip_view": "list"}
    column_list = ("id", "title", "kind", "progress", "zip", "requested_by", "created_at")
    column_filters = ("kind", "created_at")
    column_formatters = {"progress": _progress, "zip": _zip_link, "requested_by": _requested_by,
                         "title": lambda v, c, m, n: m.label}  # in the reader's language
    column_labels = {"progress": _l("Progress"), "zip": _l("File")}

    def _scope(self, query, model=None):
        if (model or self.model) is DocumentBatch:
            return scope_documents(query, current_user, DocumentBatch)
        return super()._scope(query, model)

    @expose("/zip/<int:batch_id>")
    def zip_view(self, batch_id):
        batch = self.get_one(batch_id)  # scoped: 404 for a batch the user may not list
        documents = db.session.execute(
            select(Document.id, Document.subject_id, Document.file).where(
                Document.batch_id == batch.id, Document.status == "done").order_by(Document.id)).all()
        allowed = visible_subject_ids(db.session, current_user, batch.kind, [d.subject_id for d in documents])
        buffer = io.BytesIO()
        names = set()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:  # PDFs are compressed already
            for document in documents:
                if document.subject_id not in allowed:
                    continue
                name = document.file or f"document-{document.id}.pdf"
                if name in names:
                    name = f"{document.id}-{name}"
                names.add(name)
                data = db.session.scalar(select(Document.content).where(Document.id == document.id))
                archive.writestr(name, data)
        record(db.session, "document_batch", batch.id, "download",
               {"documents": len(names)}, actor=current_user.id)
        db.session.commit()
        buffer.seek(0)
        response = send_file(buffer, mimetype="application/zip",
                             download_name=f"{kind_label(batch.kind)}-{batch.id}.zip", as_attachment=True)
        response.headers["Cache-Control"] = "private, no-store"
        return response
