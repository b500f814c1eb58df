"""The sales-control screens: projects, buildings and units (grids), the board (销控表), a unit's
card with its actions (holds), and the price-list import."""
from __future__ import annotations

from flask import Response, abort, current_app, flash, redirect, request
from flask_admin import expose
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from models import Building, Lead, Project, RuleViolation, Unit, User, db
from models import live
from models.changes import validate_change_chains
from models.contracts import validate_step_prerequisites
from models.loans import validate_stage_limits
from models.imports import get_visible, request_import, visible_imports
from models.inventory import (MAX_PRICE_LIST_ROWS, PriceListRejected, hold_refusal, hold_unit, release_hold,
                              release_refusal, set_withheld, subscribe_refusal)
from models.leads import customers_for_unit
from models.payments import ensure_default_methods
from models.permissions import can_do, scope_filter
from models.submissions import AlreadySubmitted, new_key

from .base import ProtectedPage, ProtectedView, row_id, run_domain, succeeded
from .documents import DocumentButton, document_actions
from .i18n import select_locale
from .labels import CHOICES
from .step_actions import Decision, decision_steps
from .steps import StepButton

IMPORT_LABELS = CHOICES[("price_list_import", "status")]


def _int_arg(name):
    return row_id(request.args.get(name))


def _etag_value(etag: str) -> str:
    return etag.strip('"')


def _state_response(kept, etag: str) -> Response:
    """The kept state, or 304 when the browser has this version (kept is None)."""
    if kept is None:
        response = Response(status=304)
    else:
        gzipped = "gzip" in (request.headers.get("Accept-Encoding") or "")
        response = Response(kept.gzipped if gzipped else kept.body, mimetype="application/json")
        if gzipped:
            response.headers["Content-Encoding"] = "gzip"
    response.set_etag(_etag_value(etag))
    response.headers["Vary"] = "Accept-Encoding"
    response.headers["Cache-Control"] = "private, no-cache"  # ask every time; 304 while unchanged
    return response


def _events(hub, viewer, version: int, heartbeat: float, lasts: float):
    """The stream's body: `version`, then {v, cells} per change, `: ping` when quiet."""
    import time
    ends = time.monotonic() + lasts
    try:
        yield f"retry: 2000\nevent: version\ndata: {{\"v\":{version}}}\n\n"
        while time.monotonic() < ends:
            item = viewer.next(min(heartbeat, max(0.1, ends - time.monotonic())))
            if item is None:
                yield ": ping\n\n"
            elif item is live.BEHIND:
                yield 'event: reload\ndata: {}\n\n'
            else:
                yield f"id: {item[0]}\ndata: {item[1]}\n\n"
    finally:
        hub.leave(viewer)


class BoardPage(ProtectedPage):
    """Every building of a project as floors × positions, coloured by status (R-SC-1)."""

    entity = "board"
    verb_of = {"index": "list", "state": "list", "stream": "list", "unit": "list",
               "hold": "action", "release": "action", "withhold": "action"}

    def _project(self):
        projects = list(db.session.scalars(select(Project).order_by(Project.id)))
        if not projects:
            return None, projects
        chosen = _int_arg("project")
        return next((p for p in projects if p.id == chosen), projects[0]), projects

    @expose("/")
    def index(self):
        """The page around the live board (static/liveboard.js draws it from `state` and keeps it
        current from `stream`): the filters, a PDF per building. No unit is read here: the page
        is the same few KB for ten units or ten thousand."""
        project, projects = self._project()
        buildings = list(db.session.scalars(select(Building).where(
            Building.project_id == project.id).order_by(Building.name))) if project else []
        layouts = list(db.session.scalars(select(Unit.layout).distinct().join(Building).where(
            Building.project_id == project.id).order_by(Unit.layout))) if project else []
        building_id = _int_arg("building")
        return self.render("admin/board.html", project=project, projects=projects, buildings=buildings,
                           building_id=building_id if any(b.id == building_id for b in buildings) else None,
                           layouts=layouts, chosen_layout=request.args.get("layout") or "",
                           chosen_status=request.args.get("status") or "",
                           labels={k: str(v) for k, v in CHOICES[("unit", "status")].items()})

    def _asked_project(self) -> Project:
        """The project named by ?project=ID (the live board's endpoints name it; 404 if none)."""
        project = db.session.get(Project, _int_arg("project") or 0)
        if project is None:
            abort(404)
        return project

    @expose("/state")
    def state(self):
        """The board's state as compact JSON (models.live), kept per version: ETag/304, gzipped
        for whoever accepts it (R-LCH-3)."""
        project = self._asked_project()
        kept = live.kept_state(db.session, project.id)
        if request.if_none_match.contains(_etag_value(kept.etag)):
            return _state_response(None, kept.etag)
        return _state_response(kept, kept.etag)

    @expose("/stream")
    def stream(self):
        """Server-sent events of a project's board: first its version, then every change, a
        heartbeat every `LIVE_HEARTBEAT_SECONDS`; the stream ends after `LIVE_STREAM_SECONDS`
        and the browser reconnects (EventSource). Served in production by its own gevent
        gunicorn (docs/live-board.md); holds no database connection while it waits."""
        project = self._asked_project()
        hub = live.hub()
        viewer = hub.listen(project.id)  # before reading the version: nothing falls between
        _, version = hub.version(project.id)
        heartbeat = float(current_app.config.get("LIVE_HEARTBEAT_SECONDS", 15))
        lasts = float(current_app.config.get("LIVE_STREAM_SECONDS", 600))
        db.session.remove()  # the connection goes back to the pool for the stream's whole life
        response = Response(_events(hub, viewer, version, heartbeat, lasts), mimetype="text/event-stream")
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
        return response

    def _unit(self, unit_id):
        unit = db.session.get(Unit, unit_id)
        if unit is None:
            abort(404)
        return unit

    @expose("/unit/<int:unit_id>")
    def unit(self, unit_id):
        unit = self._unit(unit_id)
        leads = customers_for_unit(db.session, current_user, unit.building.project_id, "hold", 300)
        clause = scope_filter(Lead, current_user)
        held_for = held_by = None
        if unit.held_for_lead_id:
            # The customer read like every other path (R-LEAD-5): an agent sees only his own; on
            # another agent's hold he learns who holds the unit, nothing of the customer.
            held = db.session.query(Lead).filter(Lead.id == unit.held_for_lead_id)
            held_for = (held if clause is None else held.filter(clause)).one_or_none()
            if held_for is None and unit.held_by_id:
                held_by = db.session.get(User, unit.held_by_id)
        # Each button asks the domain's own "why not" (R-SC-2): no button that leads to a refusal.
        return self.render("admin/unit_card.html", unit=unit, labels=CHOICES[("unit", "status")],
                           leads=leads, held_for=held_for, held_by=held_by,
                           may_subscribe=subscribe_refusal(db.session, current_user, unit) is None,
                           may_hold=hold_refusal(current_user, unit) is None,
                           may_release=release_refusal(current_user, unit) is None,
                           may_withhold=can_do(current_user, "unit.withhold"))

    def _back(self, unit):
        return redirect(self.get_url(".unit", unit_id=unit.id))

    @expose("/unit/<int:unit_id>/hold", methods=("POST",))
    def hold(self, unit_id):
        unit = self._unit(unit_id)
        lead_id = request.form.get("lead_id", "")
        if succeeded(run_domain(lambda by: hold_unit(db.session, by, unit_id=unit.id,
                                                   lead_id=int(lead_id) if lead_id.isdigit() else 0))):
            flash(gettext("Unit %(unit)s is held.", unit=unit.number), "success")
        return self._back(unit)

    @expose("/unit/<int:unit_id>/release", methods=("POST",))
    def release(self, unit_id):
        unit = self._unit(unit_id)
        if succeeded(run_domain(lambda by: release_hold(db.session, by, unit.id))):
            flash(gettext("The hold on unit %(unit)s is released.", unit=unit.number), "success")
        return self._back(unit)

    @expose("/unit/<int:unit_id>/withhold", methods=("POST",))
    def withhold(self, unit_id):
        unit = self._unit(unit_id)
        withheld = request.form.get("withheld") == "1"
        if succeeded(run_domain(lambda by: set_withheld(db.session, by, unit.id, withheld))):
            flash(gettext("Unit %(unit)s changed.", unit=unit.number), "success")
        return self._back(unit)


class PriceImportPage(ProtectedPage):
    """Sales control imports a price list (CSV or XLSX): all rows good, or nothing imported. The
    request only keeps the file; a job reads and applies it (jobs.imports), and the import's page
    shows its progress, then its result."""

    entity = "unit_import"
    verb_of = {"index": "list", "upload": "action", "show": "list"}

    def _index(self, errors=None):
        return self.render("admin/price_import.html", errors=errors, key=new_key(),
                           imports=visible_imports(db.session, current_user), labels=IMPORT_LABELS,
                           max_rows=MAX_PRICE_LIST_ROWS,
                           max_mb=(current_app.config.get("MAX_CONTENT_LENGTH") or 0) // 1048576)

    @expose("/")
    def index(self):
        return self._index()

    @expose("/upload", methods=("POST",))
    def upload(self):
        from jobs.imports import enqueue_import  # jobs/ is above admin/: read when a file is sent
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            return self._index(errors=[(0, "", gettext("Choose a file to upload."))])
        try:
            row = request_import(db.session, current_user._get_current_object(), upload.filename,
                                 upload.read(), request.form.get("submission_key"), select_locale())
            db.session.commit()
        except AlreadySubmitted as exc:
            db.session.rollback()
            flash(gettext("This file was already sent: here is its import."), "info")
            if exc.result.isdigit():
                return redirect(self.get_url(".show", import_id=int(exc.result)))
            return redirect(self.get_url(".index"))
        except PriceListRejected as exc:
            db.session.rollback()
            return self._index(errors=exc.rows())
        except RuleViolation as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return redirect(self.get_url(".index"))
        import_id = row.id
        try:
            enqueue_import(db.session, row)
        except Exception:  # the job queue is down: the import stays queued, nothing is lost
            db.session.rollback()
            flash(gettext("The file is kept but the job queue cannot be reached; it will be imported "
                          "as soon as it is back."), "warning")
        return redirect(self.get_url(".show", import_id=import_id))

    @expose("/<int:import_id>")
    def show(self, import_id):
        from jobs.queue import job_meta
        row = get_visible(db.session, current_user, import_id)
        if row is None:
            abort(404)  # not there, or someone else's
        done = (row.total or 0) if row.status == "done" else 0
        if row.status == "running" and row.job_id:
            metas = job_meta([row.job_id])
            done = int(metas[0].get("done", 0)) if metas else 0
        total = row.total or 0
        percent = 100 if row.status == "done" else min(100, round(100 * done / total)) if total else 0
        return self.render("admin/price_import_show.html", row=row, done=done, total=total,
                           percent=percent, labels=IMPORT_LABELS)


class ProjectView(ProtectedView):
    column_list = ("code", "name", "developer", "city", "is_agency", "warning_day",
                   "lawyer_letter_day", "forfeit_day", "extension_limit_days")
    column_searchable_list = ("code", "name")
    form_excluded_columns = ("buildings", "created_at")
    column_labels = {"signing_checklist": _l("Signing checklist for every deal (each payment method adds its own)")}

    def on_model_change(self, form, model, is_created):
        validate_step_prerequisites(model.step_prerequisites)
        validate_change_chains(model.change_chains)  # R-CHG-1: who approves each kind of change
        validate_stage_limits(model.loan_stage_limits)  # R-AFT-2: days allowed in each mortgage stage

    def after_model_change(self, form, model, is_created):
        if is_created:  # a new project starts with the four default payment methods (R-PAY-2)
            ensure_default_methods(db.session, model)
            db.session.commit()


class BuildingView(document_actions("board"), ProtectedView):
    column_list = ("id", "project", "name", "floors")
    column_filters = ("project.name",)
    form_columns = ("project", "name", "floors")
    column_extra_row_actions = [DocumentButton("board")]


WITHHOLDING = decision_steps(
    lambda by, unit, withheld: set_withheld(db.session, by, unit.id, withheld),
    lambda n: gettext("%(n)d units changed.", n=n),
    Decision("withhold", _l("Withhold from sale"), _l("Take the selected units off sale?"), True),
    Decision("release", _l("Put back on sale"), _l("Put the selected units back on sale?"), False))


class UnitView(WITHHOLDING, ProtectedView):
    column_list = ("id", "building", "number", "floor", "position", "layout", "area",
                   "list_price", "status", "handed_over_on")
    column_filters = ("status", "layout", "building.name", "floor")
    column_searchable_list = ("number",)
    form_columns = ("building", "floor", "position", "number", "layout", "area")
    form_readonly = ("held_for_lead_id", "held_until", "held_by_id")
    row_steps = (StepButton("withhold", "unit.withhold", when=lambda u: u.status == "available", icon="fa-ban", style="secondary"),
                 StepButton("release", "unit.withhold", when=lambda u: u.status == "withheld", icon="fa-check"))
