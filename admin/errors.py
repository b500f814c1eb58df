"""Error pages in the user's language, never a stack trace."""
from __future__ import annotations

from flask import render_template, request
from flask_babel import lazy_gettext as _l

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
}


def _page(error):
    code = getattr(error, "code", 500) or 500
    if code == 500:
        db.session.rollback()  # nothing half-done survives a failed request
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


def init_app(app) -> None:
    for code in MESSAGES:
        app.register_error_handler(code, _page)
