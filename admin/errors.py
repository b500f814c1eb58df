"""Error pages in the user's language, never a stack trace; and one that needs no database.

The page (templates/error.html, on layout.html) reads nothing from the database: no menu, no
notification badge, and the signed-in user is not loaded for it (Flask-Login's template context
would load them, which is what failed while the database was down). A database that cannot be
reached (an OperationalError / InterfaceError while connecting or on a connection found dead,
or the pool's timeout) is a 503 "try again in a few minutes", logged; any other unhandled
error, a failing statement included, a 500.
"""
from __future__ import annotations

from flask import current_app, g, render_template, request
from flask_babel import lazy_gettext as _l
from flask_login import AnonymousUserMixin
from sqlalchemy.exc import DataError, InterfaceError, OperationalError, TimeoutError as PoolTimeout

from models import db

MESSAGES = {
    400: (_l("Bad request"), _l("The request could not be understood. Please go back and try again.")),
    403: (_l("Not allowed"), _l("Your role does not allow this page or action. Ask an administrator "
                                "if you need it.")),
    404: (_l("Not found"), _l("This record does not exist, or it is not one of yours.")),
    405: (_l("Not allowed this way"), _l("This address cannot be used like this. Please use the "
                                         "buttons on the page.")),
    413: (_l("File too large"), None),  # the message names the limit: _page
    500: (_l("Something went wrong"), _l("The server could not finish the request. Nothing was "
                                         "saved; please try again, and tell an administrator if "
                                         "it happens again.")),
    503: (_l("Service unavailable"), _l("The database cannot be reached just now. Nothing was saved; "
                                        "please try again in a few minutes, and tell an administrator "
                                        "if it continues.")),
}
DATABASE_DOWN = (OperationalError, InterfaceError, PoolTimeout)


def _render(code: int):
    """The error page; for a 5xx built from the request alone."""
    if code >= 500 and "_login_user" not in g:  # not loaded (or loading failed): not tried again
        g._login_user = AnonymousUserMixin()
    title, message = MESSAGES.get(code, MESSAGES[500])
    if code == 413:
        from flask import current_app
        from flask_babel import gettext
        message = gettext("The file is larger than the %(mb)s MB an upload may be. A price list of a "
                          "whole project is far smaller: check that this is the right file, or split it.",
                          mb=(current_app.config.get("MAX_CONTENT_LENGTH") or 0) // 1048576)
    if request.accept_mimetypes.best == "application/json":
        return {"error": str(message)}, code
    return render_template("error.html", code=code, title=title, message=message), code


def _rollback() -> None:
    """Nothing half-done survives a failed request; a dead connection must not fail the page."""
    try:
        db.session.rollback()
    except Exception:
        current_app.logger.warning("rollback after a failed request failed too", exc_info=True)


def _page(error):
    code = getattr(error, "code", 500) or 500
    if code >= 500:
        _rollback()
        original = getattr(error, "original_exception", None)
        if isinstance(original, DATABASE_DOWN) and unreachable(original):
            return _database_down(original)
    return _render(code)


def unreachable(error) -> bool:
    """The database could not be reached, as opposed to one statement failing: the error came
    while connecting (no statement) or SQLAlchemy found the connection dead."""
    if isinstance(error, PoolTimeout):
        return True
    return isinstance(error, (OperationalError, InterfaceError)) and (
        error.statement is None or error.connection_invalidated)


def _database_down(error):
    if not unreachable(error):
        current_app.logger.error("Exception on %s [%s]", request.path, request.method, exc_info=error)
        _rollback()
        return _render(500)
    current_app.logger.error("database unreachable during %s %s: %s", request.method, request.path,
                             str(error).splitlines()[0] if str(error) else type(error).__name__)
    _rollback()
    return _render(503)


def _out_of_range(error):
    """A number from the address or a form too large for the database (a filter's value past 64
    bits: SQLite's OverflowError, PostgreSQL's "out of range" DataError) is a bad request, not a
    crash. The views refuse what they know first (admin/base.py: row ids, pages); this is the net."""
    current_app.logger.warning("out of range value in %s %s: %s", request.method, request.path, error)
    _rollback()
    return _render(400)


def init_app(app) -> None:
    for code in MESSAGES:
        app.register_error_handler(code, _page)
    app.register_error_handler(OverflowError, _out_of_range)
    app.register_error_handler(DataError, _out_of_range)
    for kind in DATABASE_DOWN:
        app.register_error_handler(kind, _database_down)
