"""Login and logout (Flask-Login), CSRF everywhere (Flask-WTF), and what an expired token says."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext, lazy_gettext as _l
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from models import User, db, utcnow
from models import audit
from models.channels import sign_in_refused
from models.users import authenticate

from .security import (ADDRESS_LIMIT, PAIR_LIMIT, brake_on, count_failure, get_remote_address, known_address,
                       limiter, login_failed, login_pair, too_many_page)

bp = Blueprint("auth", __name__)

login_manager = LoginManager()
csrf = CSRFProtect()


class LoginForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])
    remember = BooleanField(_l("Keep me signed in on this computer"))


def is_safe_next(target: str | None) -> bool:
    """Only a path on this site: no scheme, no host, no protocol-relative or backslash tricks."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return False
    if any(ch in target for ch in "\\\r\n\t"):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def redirect_target(param_name: str = "url") -> str | None:
    """The way back a form was given (`?url=`), only when it is a path on this site. Flask-Admin's
    own check lets through any URL of the request's host and scheme-only forms like "http:/x.com",
    which Werkzeug sends as "http:///x.com" and a browser opens as http://x.com/ (an open
    redirect); every view of the admin reads its way back through this instead."""
    target = request.values.get(param_name)
    return target if is_safe_next(target) else None


def _safe_next(target: str | None) -> str:
    return target if is_safe_next(target) else url_for("admin.index")


@login_manager.user_loader
def _load_user(token: str):
    return db.session.scalars(select(User).options(joinedload(User.roles))
                              .where(User.session_token == token)).unique().one_or_none()


@login_manager.unauthorized_handler
def _unauthorized():
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(ADDRESS_LIMIT, key_func=get_remote_address, deduct_when=login_failed, methods=["POST"])
@limiter.limit(PAIR_LIMIT, key_func=login_pair, deduct_when=login_failed, methods=["POST"])
def login():
    """Sign in. The limits (admin/security.py): the decorators refuse a (username, address)
    pair or an address with too many failures; the per-username brake is checked here, since
    only here is it known whether the password is right and the address known."""
    target = request.values.get("next")
    if current_user.is_authenticated and request.method == "GET":
        return redirect(_safe_next(target))
    form = LoginForm()
    if form.validate_on_submit():
        braked = brake_on(form.username.data)
        user = authenticate(db.session, form.username.data, form.password.data)
        if user is not None and sign_in_refused(db.session, user):
            user = None  # R-COM-1: a deactivated channel company's people, told like an inactive account
        if braked and not (user is not None and known_address(db.session, user.id, request.remote_addr)):
            if user is None:
                count_failure(form.username.data)
            audit.record(db.session, "user", (str(user.id) if user else form.username.data[:40]),
                         "login_failed" if user is None else "login_throttled",
                         {"address": request.remote_addr, "throttled": True})
            db.session.commit()
            return too_many_page()
        if user is None:
            count_failure(form.username.data)
            audit.record(db.session, "user", form.username.data[:40], "login_failed",
                         {"address": request.remote_addr})
            db.session.commit()
            # One message for unknown user, wrong password and inactive account.
            flash(gettext("Wrong username or password."), "error")
        else:
            session.clear()  # a fresh session at login: nothing carried over (fixation)
            login_user(user, remember=form.remember.data)
            user.last_login_at = utcnow()
            audit.record(db.session, "user", user.id, "login", {"address": request.remote_addr},
                         actor=user.id)
            db.session.commit()
            return redirect(_safe_next(target))
    return render_template("login.html", form=form, next=target if is_safe_next(target) else None)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    user = db.session.get(User, current_user.id)
    user.end_sessions()  # the old cookie and remember token stop working everywhere
    audit.record(db.session, "user", user.id, "logout", actor=user.id)
    db.session.commit()
    logout_user()
    session.clear()
    flash(gettext("You have signed out."), "info")
    return redirect(url_for("auth.login"))


def _csrf_failed(error: CSRFError):
    message = gettext("Your form expired or was sent without its security token, so nothing was "
                      "saved. Please submit it again.")
    if request.accept_mimetypes.best == "application/json" or \
            request.headers.get("X-Requested-With") == "XMLHttpRequest":
        return message, 400
    flash(message, "error")
    back = request.referrer
    if back and urlsplit(back).netloc == request.host:
        target = urlsplit(back)._replace(scheme="", netloc="").geturl()
    else:
        target = request.full_path.rstrip("?")
    if not is_safe_next(target) or target.rstrip("/").endswith("/logout"):
        target = url_for("admin.index")
    return redirect(target, code=303)


def init_app(app) -> None:
    login_manager.init_app(app)
    login_manager.session_protection = "strong"
    login_manager.login_view = "auth.login"
    csrf.init_app(app)
    app.register_blueprint(bp)
    app.register_error_handler(CSRFError, _csrf_failed)
