"""Refresh the README's screenshots (docs/screens/*.png) from a fresh demo office.

    scripts/setup --tests && .venv/bin/python scripts/screenshots.py

Builds the demo office in a temporary SQLite database, serves it on a free port and photographs
it in Debian's Chromium through Playwright, signed in as the people who use each page.
"""
from __future__ import annotations

import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from tests.test_browser import CHROMIUM, CHROMIUM_FLAGS  # noqa: E402

OUT = ROOT / "docs" / "screens"

# (file, account, path, full page?)
SHOTS = [
    ("dashboard", "manager", "/admin/", False),
    ("board", "control", "/admin/board/", False),
    ("subscriptions", "control", "/admin/subscription/", False),
    ("deal", "manager", "/admin/subscription/details/?id={deal}", True),
]


def main() -> None:
    from flask_migrate import upgrade

    from app import create_app
    from demo import DEMO_PASSWORD, build_demo
    from jobs.documents import enqueue_pending
    from models import Contract, db

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/demo.sqlite",
                          "SECRET_KEY": "screenshots", "REDIS_URL": None})
        with app.app_context():
            upgrade()
            build_demo(db.session)
            db.session.commit()
            enqueue_pending()
            deal = db.session.query(Contract.subscription_id).filter(Contract.status == "signed").first()[0]
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        OUT.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            for name, account, path, full in SHOTS:
                context = browser.new_context(base_url=base, locale="zh-CN",
                                              viewport={"width": 1400, "height": 860})
                page = context.new_page()
                page.goto("/login")
                page.fill("input[name=username]", account)
                page.fill("input[name=password]", DEMO_PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url("**/admin/")
                page.goto(path.format(deal=deal))
                page.screenshot(path=OUT / f"{name}.png", full_page=full)
                print(OUT / f"{name}.png")
                context.close()
            browser.close()
        server.shutdown()


if __name__ == "__main__":
    main()
