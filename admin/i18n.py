"""Flask-Babel: the language the user picked (kept in a cookie); before any pick, the browser's
Accept-Language (Chinese or English); Chinese when it asks for neither."""
from __future__ import annotations

from flask import Blueprint, has_request_context, redirect, request, url_for
from flask_babel import Babel

from .auth import is_safe_next

LANGUAGES = {"zh_Hans_CN": "中文", "en": "English"}
DEFAULT_LANGUAGE = "zh_Hans_CN"
COOKIE = "lang"
_ACCEPTED = {"zh": "zh_Hans_CN", "en": "en"}  # Accept-Language's primary tag → our locale

bp = Blueprint("i18n", __name__)
babel = Babel()


def select_locale() -> str:
    if not has_request_context():
        return DEFAULT_LANGUAGE  # jobs and the CLI write in the office's language
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return chosen  # the user's pick decides once made
    # A first visit: the browser's languages, in its order of preference, each by its primary
    # subtag ("en-US" and "en-GB-oxendict" are English, "zh-TW" and "zh-Hans-CN" Chinese); neither
    # → the office's language. (Werkzeug's best_match matched no tag of three parts: a browser
    # asking "zh-Hans-CN,en;q=0.5" read English.)
    for tag, quality in request.accept_languages:  # highest quality first
        language = _ACCEPTED.get(tag.replace("_", "-").split("-")[0].strip().lower())
        if language and quality > 0:
            return language
    return DEFAULT_LANGUAGE


def html_lang() -> str:
    return "zh-CN" if select_locale() == "zh_Hans_CN" else "en"


@bp.route("/language", methods=["POST"])
def set_language():
    lang = request.form.get("lang")
    back = request.form.get("next")
    response = redirect(back if is_safe_next(back) else url_for("admin.index"), code=303)
    if lang in LANGUAGES:
        response.set_cookie(COOKIE, lang, max_age=365 * 24 * 3600, httponly=True, samesite="Lax",
                            secure=request.is_secure)
    return response


def init_app(app) -> None:
    babel.init_app(app, locale_selector=select_locale, default_timezone=app.config["TIMEZONE"])
    app.register_blueprint(bp)
    app.jinja_env.globals.update(LANGUAGES=LANGUAGES, current_language=select_locale,
                                 html_lang=html_lang)
