"""Sales Desk: create_app() binds each package's extensions to one Flask app."""
from __future__ import annotations

import os

from flask import Flask, redirect, send_from_directory, url_for

import admin
import cache
import cli
import config
import jobs
import models


def create_app(config_overrides: dict | None = None) -> Flask:
    # instance/ holds the embedded database and secret key; SALESDESK_INSTANCE_PATH moves it.
    app = Flask(__name__, instance_relative_config=True,
                instance_path=os.environ.get("SALESDESK_INSTANCE_PATH") or None)
    config.load(app, config_overrides)
    cache.init_app(app)
    models.init_app(app)
    admin.init_app(app)
    jobs.init_app(app)
    cli.init_app(app)
    app.add_url_rule("/", "home", lambda: redirect(url_for("admin.index")))
    # Browsers ask for /favicon.ico on every site whatever the page links; no sign-in needed.
    app.add_url_rule("/favicon.ico", "favicon", lambda: send_from_directory(
        app.static_folder, "favicon.ico", mimetype="image/vnd.microsoft.icon", max_age=7 * 86400))
    return app
