"""What every response carries to keep the browser on our side, and the sign-in throttle.

- Content-Security-Policy: scripts only from this site or with the request's nonce (Flask-Admin's
  templates carry it: ``Admin(csp_nonce_generator=csp_nonce)``), no plugins, no framing, forms
  post only here. Styles allow inline attributes (Bootstrap and select2 set them).
- X-Content-Type-Options, Referrer-Policy, X-Frame-Options; ``Cache-Control: no-store`` on every
  page behind the login (a shared computer's back button shows no customer); HSTS over HTTPS.

Sign-in throttling guesses passwords slowly without giving an attacker a button that locks a
real person out. Only failed sign-ins count (the form comes back), in three limits:

- PAIR_LIMIT, 5 failures per 15 minutes for one (username, address) pair: the tight limit that
  stops guessing from one place. Other people at the same address, and the same person
  elsewhere, are not affected.
- ADDRESS_LIMIT, 50 failures per 15 minutes from one address, whatever the usernames: an office
  behind one NAT shares an address, so one colleague's typos never lock out the others; it only
  stops one machine from walking through many usernames.
- BRAKE_LIMIT, 10 failures per hour for one username from any address: stops a guess spread
  over many addresses. It is a brake, not a lock: while it is on, the right password from a
  *known address* still signs in; anything else gets 429. A known address is one this user
  signed in from successfully in the last KNOWN_ADDRESS_DAYS days, read from the audit trail's
  "login" rows (already written at every sign-in, R-ALL-2): kept on the server, shared by every
  web process, surviving restarts and cleared cookies, and not forgeable by the client. (A
  signed "this browser signed in before" cookie was the alternative; it is lost with a new
  browser or cleared cookies, exactly when a locked-out manager needs in.)

The address is ``request.remote_addr``. Behind nginx it is nginx's own unless
SALESDESK_TRUSTED_PROXIES says how many proxies stand in front (werkzeug's ProxyFix then reads
that many X-Forwarded-For / X-Forwarded-Proto entries from the right). Without the setting,
X-Forwarded-For is ignored, so a client cannot pick its own address.

Redis holds the counts when REDIS_URL is set (every web process sees them), memory in embedded
mode and while Redis is down.
"""
from __future__ import annotations

import secrets

import datetime as dt

from flask import current_app, g, render_template, request
from flask_babel import gettext
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse as parse_limit
from sqlalchemy import select
from werkzeug.middleware.proxy_fix import ProxyFix

PAIR_LIMIT = "5 per 15 minutes"
ADDRESS_LIMIT = "50 per 15 minutes"
BRAKE_LIMIT = "10 per hour"
KNOWN_ADDRESS_DAYS = 180

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


def _username(value: str | None = None) -> str:
    return (request.form.get("username") if value is None else value or "").strip().lower()[:64]


def login_pair() -> str:
    """The key of the tight limit: this username from this address."""
    return f"pair:{_username()}@{get_remote_address()}"


def _brake_key(username: str) -> str:
    return f"login-brake:{_username(username)}"


def brake_on(username: str) -> bool:
    """Has this username had BRAKE_LIMIT failed sign-ins in the window, from anywhere?"""
    try:
        return not limiter.limiter.test(parse_limit(BRAKE_LIMIT), _brake_key(username))
    except Exception:  # the counts' store is down: the pair and address limits still hold
        current_app.logger.exception("login brake: could not read the count")
        return False


def count_failure(username: str) -> None:
    """One more failed sign-in for this username (the brake's count)."""
    try:
        limiter.limiter.hit(parse_limit(BRAKE_LIMIT), _brake_key(username))
    except Exception:
        current_app.logger.exception("login brake: could not count a failure")


def known_address(session, user_id: int, address: str | None) -> bool:
    """Did this user sign in successfully from this address in the last KNOWN_ADDRESS_DAYS
    days? Read from the audit trail's "login" rows (indexed by entity, entity_id)."""
    from models import Audit, utcnow

    if not address:
        return False
    since = utcnow() - dt.timedelta(days=KNOWN_ADDRESS_DAYS)
    return session.scalar(select(Audit.id).where(
        Audit.entity == "user", Audit.entity_id == str(user_id), Audit.action == "login",
        Audit.at >= since, Audit.changes["address"].as_string() == address).limit(1)) is not None


def too_many_page():
    message = gettext("Too many failed sign-ins for this account. Please wait up to an hour, sign in "
                      "from a computer you have used before, or ask an administrator to check the "
                      "account.")
    return render_template("error.html", code=429, title=gettext("Please wait"), message=message), 429


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
    proxies = app.config.get("TRUSTED_PROXIES") or 0
    if proxies:  # behind nginx: the client's real address and scheme, from that many proxies only
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
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
