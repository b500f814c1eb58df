"""The opening day's selection (选房, R-LCH-3, R-SC-2): the selection page where a buyer in his slot
chooses (an agent's phone, or the kiosk at sales control typing the card number), the JSON choice
endpoint (kiosks, phones, the bench), the big screen (大屏) and the control room.

Thin: the slots and the choice are models.selection; the board is helper D's live board
(static/liveboard.js fills the `live-board` markup); every endpoint checks its role here and the
domain checks it again, with the row scope (an agent: his own entries)."""
from __future__ import annotations

import io

from flask import abort, flash, jsonify, redirect, request, send_file
from flask_admin import expose
from flask_babel import gettext
from flask_login import current_user
from sqlalchemy import select

from models import RuleViolation, db
from models.base import office_time, utcnow
from models.errors import PermissionDenied
from models.labels import choice_label
from models.launches import Launch, LaunchEntry
from models.money import format_money
from models.permissions import can, can_do, scope_filter
from models.privacy import mask_name
from models.selection import (UnitGone, advance, available_units, building_ids, choose, close_launch,
                              control_room, move_on, slot_state, start_selection)

from .base import ProtectedPage, row_id, run_domain, succeeded

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _launches() -> list[Launch]:
    return list(db.session.scalars(select(Launch).order_by(Launch.id.desc()).limit(50)))


def _launch_arg(value=None) -> Launch | None:
    """The launch named by ?launch= (or the form's), else the one selecting now, else the latest."""
    chosen = row_id(value if value is not None else request.args.get("launch"))
    if chosen is not None:
        launch = db.session.get(Launch, chosen)
        if launch is None:
            abort(404)
        return launch
    return (db.session.scalar(select(Launch).where(Launch.status == "selecting").order_by(Launch.id.desc()).limit(1))
            or db.session.scalar(select(Launch).order_by(Launch.id.desc()).limit(1)))


def _advance(launch: Launch | None) -> None:
    """Lazily move the selection on (cheap when nothing is due), as the scheduled job does."""
    if launch is not None and launch.status == "selecting":
        advance(db.session, launch.id, utcnow())
        db.session.commit()


def _seconds_left(entry, now) -> int:
    return max(int((entry.slot_ends_at - now).total_seconds()), 0) if entry.slot_ends_at else 0


def _board_markup_context(launch: Launch | None) -> dict:
    return {"board_project": launch.project_id if launch else None,
            "board_buildings": ",".join(str(i) for i in building_ids(db.session, launch.id)) if launch else ""}


class SelectionPage(ProtectedPage):
    """/admin/launch_select/?launch=ID: the buyers choosing now (an agent's own; the kiosk's by card
    number), their countdown, the units still on offer as a compact picker, and the live board."""

    entity = "launch_select"
    verb_of = {"index": "list", "choose": "action"}

    @expose("/")
    def index(self):
        launch = _launch_arg()
        _advance(launch)
        now = utcnow()
        entries, card, found = [], (request.args.get("card") or "").strip(), None
        if launch is not None:
            query = select(LaunchEntry).where(LaunchEntry.launch_id == launch.id)
            clause = scope_filter(LaunchEntry, current_user)
            if clause is not None:
                query = query.where(clause)
            if card:
                found = db.session.scalar(query.where(LaunchEntry.number == card))
                entries = [found] if found is not None else []
            else:
                entries = list(db.session.scalars(query.where(LaunchEntry.selection_status.in_(("choosing", "waiting")))
                                                  .where(LaunchEntry.queue_no.is_not(None))
                                                  .order_by(LaunchEntry.queue_no).limit(50)))
        units = available_units(db.session, launch.id) if launch is not None else []
        return self.render("admin/launch_select.html", launch=launch, launches=_launches(), entries=entries,
                           card=card, searched=bool(card), units=units, now=now, seconds_left=_seconds_left,
                           label=choice_label, office_time=office_time, money=format_money,
                           may_choose=can_do(current_user, "launch.choose"),
                           kiosk=scope_filter(LaunchEntry, current_user) is None,
                           **_board_markup_context(launch))

    @expose("/choose", methods=("POST",))
    def choose(self):
        """A choice (R-LCH-3): JSON {ok, unit, subscription}, or {ok: false, error} with 409 when the
        unit was taken first, 403 when the role or the entry is not the user's, 400 otherwise. A
        browser's plain form post (no script) is answered by a message on the page."""
        if not can_do(current_user, "launch.choose"):
            abort(403)
        form = request.form
        entry_id, unit_id = row_id(form.get("entry")), row_id(form.get("unit"))
        method = form.get("payment_method") or "one_off"
        status, answer = 200, None
        try:
            sub = choose(db.session, current_user._get_current_object(), entry_id or 0, unit_id or 0, utcnow(),
                         payment_method=method)
            answer = {"ok": True, "unit": str(sub.unit), "subscription": sub.number}
            db.session.commit()
        except UnitGone as exc:
            db.session.rollback()
            status, answer = 409, {"ok": False, "error": str(exc)}
        except RuleViolation as exc:
            db.session.rollback()
            status = 403 if isinstance(exc, PermissionDenied) or exc.rule == "R-ALL-1" else 400
            answer = {"ok": False, "error": str(exc)}
        if request.accept_mimetypes.best == "text/html":  # a form posted without the page's script
            flash(gettext("Unit %(unit)s chosen: subscription %(no)s, waiting for sales control's confirmation.",
                          unit=answer["unit"], no=answer["subscription"]) if answer["ok"] else answer["error"],
                  "success" if answer["ok"] else "error")
            return redirect(self.get_url(".index", launch=form.get("launch") or None))
        return jsonify(answer), status


class ScreenPage(ProtectedPage):
    """The big screen (大屏) of a launch: who chooses now (card numbers, names masked for everyone),
    their countdown, the next in the queue, sold and remaining, and the live board. Dark, large
    type, refreshing its figures from /data every few seconds (static/launch_screen.js)."""

    entity = "launch_screen"
    verb_of = {"index": "list", "screen": "list", "data": "list"}

    @expose("/")
    def index(self):
        return self.render("admin/launch_screens.html", launches=_launches(), label=choice_label)

    @expose("/<int:launch_id>")
    def screen(self, launch_id: int):
        launch = _launch_arg(launch_id)
        _advance(launch)
        return self.render("admin/launch_screen.html", launch=launch, state=screen_state(launch),
                           **_board_markup_context(launch))

    @expose("/<int:launch_id>/data")
    def data(self, launch_id: int):
        launch = _launch_arg(launch_id)
        _advance(launch)
        return jsonify(screen_state(launch))


def screen_state(launch: Launch) -> dict:
    """What the big screen shows, as JSON: nothing personal but masked names (models.privacy)."""
    now = utcnow()
    state = slot_state(db.session, launch.id, now)
    figures = control_room(db.session, launch.id)["totals"]
    return {"launch": launch.name, "status": launch.status,
            "status_label": str(choice_label("launch", "status", launch.status)),
            "choosing": [{"number": e.number, "name": mask_name(e.name), "seconds_left": _seconds_left(e, now),
                          "until": office_time(e.slot_ends_at, "%H:%M:%S")} for e in state["choosing"]],
            "next": [{"number": e.number, "name": mask_name(e.name)} for e in state["next"]],
            "queue": state["queue"], "sold": figures["sold"], "awaiting": figures["awaiting"],
            "remaining": figures["remaining"], "saleable": figures["saleable"],
            "as_of": office_time(now, "%H:%M:%S")}


class ControlPage(ProtectedPage):
    """The day's control room: sold / remaining by building and layout (models.board's one
    definition), the queue, slots missed, intent deposits converted, sales per minute; the
    selection started, moved on and closed here (launch.run); an XLSX of all of it."""

    entity = "launch_control"
    verb_of = {"index": "list", "export_xlsx": "export", "start_view": "list", "advance_view": "list",
               "close_view": "list"}

    @expose("/")
    def index(self):
        launch = _launch_arg()
        _advance(launch)
        figures = control_room(db.session, launch.id) if launch is not None else None
        return self.render("admin/launch_control.html", launch=launch, launches=_launches(), figures=figures,
                           label=choice_label, money=format_money, may_run=can_do(current_user, "launch.run"),
                           may_export=can(current_user, "launch_control", "export"))

    def _run(self, operation, done_message):
        if not can_do(current_user, "launch.run"):
            abort(403)
        launch = _launch_arg(request.form.get("launch", ""))
        if launch is None:
            abort(404)
        if succeeded(run_domain(lambda by: operation(db.session, by, launch.id, utcnow()))):
            flash(done_message, "success")
        return redirect(self.get_url(".index", launch=launch.id))

    @expose("/start", methods=("POST",))
    def start_view(self):
        return self._run(start_selection, gettext("The selection has started: the first slots are open."))

    @expose("/advance", methods=("POST",))
    def advance_view(self):
        return self._run(move_on, gettext("The selection is up to date."))

    @expose("/close", methods=("POST",))
    def close_view(self):
        return self._run(close_launch, gettext("The selection is closed."))

    @expose("/export.xlsx")
    def export_xlsx(self):
        from models.audit import record
        from spreadsheets import write_table_xlsx
        launch = _launch_arg()
        if launch is None:
            abort(404)
        figures = control_room(db.session, launch.id)
        record(db.session, "launch", launch.id, "export", {"format": "xlsx", "list": "launch_control"},
               actor=current_user.id)
        db.session.commit()
        buffer = io.BytesIO()
        write_table_xlsx(buffer, gettext("Buildings"), gettext("%(launch)s: sold and remaining by building",
                                                                launch=launch.name),
                         _count_columns("building", gettext("Building")),
                         figures["buildings"] + [{"building": gettext("Total"), **figures["totals"]}],
                         more=_more_sheets(launch, figures))
        buffer.seek(0)
        return send_file(buffer, as_attachment=True, mimetype=XLSX,
                         download_name=f"{gettext('Opening day')}-{launch.id}.xlsx")


def _count_columns(key: str, header: str) -> list[tuple]:
    return [(key, header, None), ("units", gettext("Units"), "int"), ("saleable", gettext("For sale"), "int"),
            ("sold", gettext("Sold"), "int"), ("awaiting", gettext("Chosen, awaiting sales control"), "int"),
            ("remaining", gettext("Remaining"), "int")]


def _more_sheets(launch: Launch, figures: dict) -> list[tuple]:
    queue = [{"status": str(choice_label("launch_entry", "selection_status", s)), "count": n}
             for s, n in figures["queue"].items()]
    day = [{"what": gettext("Slots missed"), "value": figures["missed_slots"]},
           {"what": gettext("Intent deposits converted"), "value": figures["converted"]},
           {"what": gettext("Amount converted"), "value": figures["converted_sum"]}]
    minutes = [{"minute": minute, "count": n} for minute, n in figures["per_minute"]]
    return [
        (gettext("Layouts"), gettext("%(launch)s: sold and remaining by layout", launch=launch.name),
         _count_columns("layout", gettext("Layout")),
         figures["layouts"] + [{"layout": gettext("Total"), **figures["totals"]}]),
        (gettext("Queue"), gettext("%(launch)s: the queue", launch=launch.name),
         [("status", gettext("Selection status"), None), ("count", gettext("Buyers"), "int")],
         queue + [{"status": gettext("Total"), "count": sum(q["count"] for q in queue)}]),
        (gettext("Day"), gettext("%(launch)s: the day", launch=launch.name),
         [("what", gettext("Figure"), None), ("value", gettext("Value"), "money")], day + [{}]),
        (gettext("Per minute"), gettext("%(launch)s: choices per minute (office time)", launch=launch.name),
         [("minute", gettext("Minute"), None), ("count", gettext("Choices"), "int")],
         minutes + [{"minute": gettext("Total"), "count": sum(m["count"] for m in minutes)}]),
    ]
