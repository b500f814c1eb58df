"""What every response carries to keep the browser on our side, and the login throttle.

- Content-Security-Policy: scripts only from this site or with the request's nonce (Flask-Admin's
  templates carry it: ``Admin(csp_nonce_generator=csp_nonce)``), no plugins, no framing, forms
  post only here. Styles allow inline attributes (Bootstrap and select2 set them).
- X-Content-Type-Options, Referrer-Policy, X-Frame-Options; ``Cache-Control: no-store`` on every
  page behind the login (a shared computer's back button shows no customer); HSTS over HTTPS.
- Login throttling (Flask-Limiter): 5 failed sign-ins for one username, or from one address,
  within 15 minutes → 429 until the window passes. Redis holds the counts when REDIS_URL is set
  (every web process sees them), memory in embedded mode and while Redis is down.
"""
from __future__ import annotations

import secrets

from flask import g, render_template, request
from flask_babel import gettext
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

LOGIN_LIMIT = "5 per 15 minutes"

limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=False)


def csp_nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return g.csp_nonce


def _policy() -> str:
    return "; ".join([
        "default-src 'self'",
        f"script-src 'self' 'nonce-{csp_nonce()}'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def _headers(response):
    response.headers.setdefault("Content-Security-Policy", _policy())
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.path.startswith(("/admin", "/login")) and not request.path.startswith("/admin/static/"):
        response.headers["Cache-Control"] = "no-store"
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response


def login_failed(response) -> bool:
    """A sign-in counts against the limits only when it fails (the form comes back, 200)."""
    return request.method == "POST" and response.status_code == 200


def login_username() -> str:
    return "user:" + (request.form.get("username") or "").strip().lower()[:64]


def _too_many(error):
    message = gettext("Too many failed sign-ins. Wait 15 minutes, or ask an administrator to check "
                      "the account.")
    return render_template("error.html", code=429, title=gettext("Please wait"), message=message), 429


def _strip_nul() -> None:
    """NUL characters have no place in a form or a search: PostgreSQL refuses them in text (a
    crash instead of an answer), and elsewhere they hide what follows. They are dropped from
    the request's form and query before any view reads them."""
    for name in ("args", "form"):
        values = getattr(request, name)
        if any("\x00" in value for _, value in values.items(multi=True)):
            cleaned = type(values)((key, value.replace("\x00", "")) for key, value in values.items(multi=True))
            request.__dict__[name] = cleaned  # werkzeug caches both here


def init_app(app) -> None:
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    app.config.setdefault("RATELIMIT_ENABLED", True)
    # Redis down must not lock everyone out: count in this process's memory until it is back.
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    limiter.init_app(app)
    app.before_request(_strip_nul)
    app.after_request(_headers)
    app.register_error_handler(429, _too_many)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
