"""Modes: embedded by default, production by environment."""
from __future__ import annotations

import pytest

from app import create_app
from config import ConfigError, database_uri


def test_the_usual_postgresql_url_uses_psycopg_3():
    assert database_uri("postgresql://sales@db:5432/office") == "postgresql+psycopg://sales@db:5432/office"
    assert database_uri("postgres://sales@db/office") == "postgresql+psycopg://sales@db/office"
    assert database_uri("sqlite:///x.db") == "sqlite:///x.db"


def test_embedded_mode_keeps_sqlite_and_a_generated_secret_in_instance(tmp_path, monkeypatch):
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "SALESDESK_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SALESDESK_INSTANCE_PATH", str(tmp_path))
    first = create_app()
    assert first.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'salesdesk.db'}"
    assert first.config["REDIS_URL"] is None and not first.config["PRODUCTION"]
    assert (tmp_path / "secret_key").exists() and len(first.config["SECRET_KEY"]) == 64
    assert create_app().config["SECRET_KEY"] == first.config["SECRET_KEY"]  # kept, not regenerated


def test_production_requires_a_secret_key(monkeypatch):
    monkeypatch.setenv("SALESDESK_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})


def test_production_reads_its_services_and_secures_cookies(monkeypatch):
    monkeypatch.setenv("SALESDESK_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    monkeypatch.setenv("DATABASE_URL", "postgresql://sales@db.internal:5432/office")
    monkeypatch.setenv("REDIS_URL", "redis://cache.internal:6379/0")
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://sales@db.internal:5432/office"
    assert app.config["REDIS_URL"] == "redis://cache.internal:6379/0"
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]
    assert app.config["SESSION_COOKIE_HTTPONLY"] and app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_an_unknown_mode_is_refused(monkeypatch):
    monkeypatch.setenv("SALESDESK_ENV", "staging")
    with pytest.raises(ConfigError):
        create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})


@pytest.mark.parametrize("value", ["0", "366", "abc", "-5", "1.5", "١٤"])
def test_issue18_remember_days_outside_1_to_365_is_refused_clearly(monkeypatch, value):
    monkeypatch.setenv("SALESDESK_REMEMBER_DAYS", value)
    with pytest.raises(ConfigError, match="SALESDESK_REMEMBER_DAYS must be a whole number from 1 to 365"):
        create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})


@pytest.mark.parametrize("value", ["-1", "x", "6"])
def test_issue18_trusted_proxies_outside_0_to_5_is_refused_clearly(monkeypatch, value):
    monkeypatch.setenv("SALESDESK_TRUSTED_PROXIES", value)
    with pytest.raises(ConfigError, match="SALESDESK_TRUSTED_PROXIES must be a whole number from 0 to 5"):
        create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
