"""Flask-Admin: the grids, the dashboard, login pages and the language switch."""
from __future__ import annotations

from flask import redirect, request, url_for
from flask_admin import Admin, AdminIndexView, expose
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from models import db
from models.permissions import can, role_label

from . import auth, errors, i18n
from .base import THEME
from .views import VIEWS


class DashboardView(AdminIndexView):
    """/admin/: every logged-in user's home; shows what their roles open."""

    def _handle_view(self, name, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return None

    @expose("/")
    def index(self):
        tiles = [(view, view.name, view.category) for view in self.admin._views
                 if getattr(view, "entity", None) and can(current_user, view.entity, "list")]
        roles = [role_label(r.name) for r in current_user.roles]
        return self.render("admin/index.html", tiles=tiles, roles=roles)


def init_app(app) -> None:
    admin = Admin(name=_l("Sales Desk"), theme=THEME, index_view=DashboardView(name=_l("Home")),
                  translations_path=app.config["BABEL_TRANSLATION_DIRECTORIES"])
    for model, view_class, name, category in VIEWS:
        admin.add_view(view_class(model, db, name=name, category=category,
                                  endpoint=model.__tablename__))
    admin.init_app(app)
    auth.init_app(app)
    i18n.init_app(app)
    errors.init_app(app)
