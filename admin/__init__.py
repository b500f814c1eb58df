"""Flask-Admin: the grids, the dashboard, login pages and the language switch."""
from __future__ import annotations

import functools

from flask import current_app, redirect, request, url_for
from flask_admin import Admin, AdminIndexView, expose
from flask_admin.contrib.sqla import ModelView
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from models import db
from models.base import office_time, office_today
from models.labels import choice_label, shown
from models.money import format_money
from models.permissions import can, role_label

from . import auth, errors, fast_list, i18n, menu, security
from .base import THEME, RowIdConverter
from .sales_control import BoardPage, PriceImportPage
from .rotation import RotationPage
from . import lottery  # issue 24: the lottery
from .exports import FinanceExportPage
from .targets import TargetsPage
from .views import VIEWS, ChannelAnalyticsPage, FloorDashboardPage, LoanAgeingPage, QuestionGroupPage


class DashboardView(AdminIndexView):
    """/admin/: every logged-in user's home; shows what their roles open."""

    def _handle_view(self, name, **kwargs):  # Flask-Admin's documented hook (admin/fast_list.py)
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return None

    @expose("/")
    def index(self):
        shortcuts: dict[str, list] = {}  # category -> [(url, name)], in the menu's order
        for view in fast_list.registered_views(self.admin):
            if getattr(view, "entity", None) and view.is_accessible():
                url = view.get_url(f"{view.endpoint}.{'index_view' if isinstance(view, ModelView) else 'index'}")
                shortcuts.setdefault(str(view.category), []).append((url, view.name))
        roles = [role_label(r.name) for r in current_user.roles]
        from sqlalchemy import select

        from models import Notification
        notes = db.session.scalars(select(Notification).where(
            Notification.user_id == current_user.id, Notification.read_at.is_(None))
            .order_by(Notification.id.desc()).limit(8)).all()
        panels = _panels(current_user)
        ladder = panels["manager"]["forecast"] if "manager" in panels else None
        from models.worklists import waiting_for
        return self.render("admin/index.html", shortcuts=shortcuts, roles=roles, notes=notes, ladder=ladder,
                           panels=panels, today=office_today(), waiting=waiting_for(db.session, current_user),
                           can_list=lambda entity: can(current_user, entity, "list"),
                           label=choice_label, role_label=role_label, endpoints=current_app.view_functions)


def _panels(user) -> dict:
    """The figures of the user's roles (models/reports.py); office-wide and per-agent panels are
    kept for a minute per process, the office-wide ones also in Redis, where the refresh job puts
    them every minute (the page says when they were computed)."""
    from models import reports as d
    session, today = db.session, office_today()
    month = today.strftime("%Y-%m")
    panels = {}
    if user.has_role("sales_manager", "vp", "admin"):
        panels["manager"], panels["as_of"] = d.office_panel(session, "manager", today)
    if user.has_role("agent"):
        panels["agent"], panels["as_of"] = d.cached(("agent", user.id, today), lambda: {
            **d.agent_panel(session, user.id, today),
            "targets": d.targets_vs_actuals(session, month, agent_id=user.id)})
    if user.has_role("finance"):
        panels["finance"], panels["as_of"] = d.office_panel(session, "finance", today)
    if user.has_role("lawyer"):
        panels["lawyer"] = d.lawyer_panel(session, today)
    return panels


@functools.cache
def _unread_query():
    from sqlalchemy import bindparam, func, select

    from models import Notification
    return select(func.count()).select_from(Notification).where(
        Notification.user_id == bindparam("user_id"), Notification.read_at.is_(None))


def _unread_notifications() -> int:
    """The badge's count, on every page: the statement is built once (~0.3 ms a page saved)."""
    if not current_user.is_authenticated:
        return 0
    return db.session.scalar(_unread_query(), {"user_id": current_user.id})


def _unit_status_labels() -> dict[str, str]:
    from .labels import CHOICES
    return {code: str(text) for code, text in CHOICES[("unit", "status")].items()}


def init_app(app) -> None:
    app.url_map.converters["int"] = RowIdConverter  # before any route: ids beyond 64 bits are a 404
    app.jinja_env.finalize = shown  # {{ nothing }} prints a dash, never "None" (models/labels.py)
    app.jinja_env.globals["unread_notifications"] = _unread_notifications
    app.jinja_env.globals["way_back"] = auth.redirect_target  # a form's ?url= only when it is a path here
    app.jinja_env.globals["unit_status_labels"] = _unit_status_labels  # the live board's legend
    app.jinja_env.globals.update(cached_menu=menu.cached_menu, static_url=menu.static_url)
    app.jinja_env.filters["office_time"] = office_time  # every time a page shows (models.base)
    app.jinja_env.filters["money"] = format_money  # every amount a page shows (models.money)
    admin = Admin(name=_l("Sales Desk"), theme=THEME, index_view=DashboardView(name=_l("Home")),
                  translations_path=app.config["BABEL_TRANSLATION_DIRECTORIES"],
                  csp_nonce_generator=security.csp_nonce)
    for model, view_class, name, category in VIEWS:
        endpoint = view_class.entity or model.__tablename__
        admin.add_view(view_class(model, db, name=name, category=category, endpoint=endpoint))
    admin.add_view(QuestionGroupPage(name=_l("Questions to answer"), category=_l("Sales"),
                                     endpoint="question_group"))
    admin.add_view(BoardPage(name=_l("Sales-control board"), category=_l("Sales control"),
                             endpoint="board"))
    admin.add_view(PriceImportPage(name=_l("Import a price list"), category=_l("Sales control"),
                                   endpoint="unit_import"))
    admin.add_view(FinanceExportPage(name=_l("Finance exports"), category=_l("Finance"),
                                     endpoint="finance_export"))
    admin.add_view(LoanAgeingPage(name=_l("Mortgage ageing"), category=_l("Contracts"), endpoint="loan_ageing"))
    admin.add_view(TargetsPage(name=_l("Monthly targets"), category=_l("Sales"), endpoint="sales_target"))
    # issue 23: the sales floor (rotation)
    admin.add_view(RotationPage(name=_l("Front desk"), category=_l("Sales floor"), endpoint="rotation"))
    # issue 23: the sales floor's figures (R-RCP-1/2, R-COM-2)
    admin.add_view(FloorDashboardPage(name=_l("Floor dashboard"), category=_l("Sales"), endpoint="floor_dashboard"))
    admin.add_view(ChannelAnalyticsPage(name=_l("Channel analytics"), category=_l("Sales"),
                                        endpoint="channel_analytics"))
    # issue 24: the lottery (R-LCH-2): the manager's page, and its public pages (no sign-in)
    admin.add_view(lottery.LotteryPage(name=_l("Lottery"), category=_l("Opening day"), endpoint="lottery"))
    app.register_blueprint(lottery.public)
    # issue 24: the selection, the big screen, the control room (R-LCH-3)
    from .selection import ControlPage, ScreenPage, SelectionPage
    admin.add_view(SelectionPage(name=_l("Selection"), category=_l("Opening day"), endpoint="launch_select"))
    admin.add_view(ScreenPage(name=_l("Big screen"), category=_l("Opening day"), endpoint="launch_screen"))
    admin.add_view(ControlPage(name=_l("Control room"), category=_l("Opening day"), endpoint="launch_control"))
    admin.init_app(app)
    security.init_app(app)
    auth.init_app(app)
    i18n.init_app(app)
    fast_list.install(app)  # Flask-Admin's and Flask-Babel's internals patched (admin/fast_list.py)
    errors.init_app(app)
