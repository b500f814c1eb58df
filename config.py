"""Configuration from environment variables (see the table in README.md)."""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
from pathlib import Path


class ConfigError(RuntimeError):
    pass


def database_uri(url: str) -> str:
    """Accept the usual postgresql://user@host:port/db form and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _secret_key(instance: Path) -> str:
    """Embedded mode: a key generated once and kept in instance/secret_key."""
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _whole(env, name: str, default: int, low: int, high: int) -> int:
    """A whole-number setting from the environment, within [low, high], or a clear ConfigError."""
    text = env.get(name, "").strip() or str(default)
    if not (text.isascii() and text.isdigit() and low <= int(text) <= high):
        raise ConfigError(f"{name} must be a whole number from {low} to {high}, not {text!r}")
    return int(text)


def load(app, overrides: dict | None = None) -> None:
    env = os.environ
    overrides = dict(overrides or {})
    instance = Path(app.instance_path)
    mode = overrides.get("ENV_MODE") or env.get("SALESDESK_ENV", "development")
    if mode not in ("development", "production"):
        raise ConfigError(f"SALESDESK_ENV must be development or production, not {mode!r}")
    production = mode == "production"


    url = overrides.get("SQLALCHEMY_DATABASE_URI") or env.get("DATABASE_URL") \
        or f"sqlite:///{instance / 'salesdesk.db'}"
    secret = overrides.get("SECRET_KEY") or env.get("SECRET_KEY")
    if not secret:
        if production:
            raise ConfigError("SECRET_KEY is required when SALESDESK_ENV=production")
        secret = _secret_key(instance)

    app.config.update(
        ENV_MODE=mode,
        PRODUCTION=production,
        SECRET_KEY=secret,
        SQLALCHEMY_DATABASE_URI=database_uri(url),
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
        REDIS_URL=env.get("REDIS_URL") or None,
        TIMEZONE=env.get("SALESDESK_TIMEZONE", "Asia/Shanghai"),
        BABEL_DEFAULT_LOCALE="zh_Hans_CN",
        BABEL_TRANSLATION_DIRECTORIES=str(Path(app.root_path) / "translations"),
        PASSWORD_HASH_METHOD="scrypt",
        WTF_CSRF_TIME_LIMIT=8 * 3600,  # a working day; an older form says why it was refused
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=production,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=production,
        REMEMBER_COOKIE_DURATION=dt.timedelta(days=_whole(env, "SALESDESK_REMEMBER_DAYS", 14, 1, 365)),
        TRUSTED_PROXIES=_whole(env, "SALESDESK_TRUSTED_PROXIES", 0, 0, 5),  # ProxyFix: admin/security.py
        FLASK_ADMIN_RAISE_ON_VIEW_EXCEPTION=False,
        # A request body larger than this is refused (413) before it is read: uploads are price
        # lists and a handful of documents, never this big.
        MAX_CONTENT_LENGTH=_whole(env, "SALESDESK_MAX_UPLOAD_MB", 10, 1, 100) * 1024 * 1024,
    )
    app.config.update(overrides)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_uri(app.config["SQLALCHEMY_DATABASE_URI"])
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        instance.mkdir(parents=True, exist_ok=True)


def instance_name(database_url: str | None = None, instance: str | None = None) -> str:
    """The prefix of this office's queues and of the values it keeps in Redis (cache.py):
    `SALESDESK_INSTANCE`, or "sd-" and 10 hex digits of the SHA-256 of the database URL (its
    password left out, so rotating it changes nothing). Two offices sharing a Redis database
    never read each other's."""
    from flask import current_app
    instance = instance or (current_app.config.get("SALESDESK_INSTANCE") if database_url is None else None) \
        or os.environ.get("SALESDESK_INSTANCE")
    if instance:
        return instance.strip()
    from sqlalchemy.engine import make_url
    url = make_url(database_url or current_app.config["SQLALCHEMY_DATABASE_URI"]).set(password=None)
    return "sd-" + hashlib.sha256(url.render_as_string(hide_password=False).encode()).hexdigest()[:10]
