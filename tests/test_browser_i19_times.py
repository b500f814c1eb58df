"""Issue 19, items 1, 4 and 16 in Chromium: the lawyer's home and a held unit's card read the
office's time, every dashboard figure says what it is measured against, the favicon loads."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import expect

from models.base import office_time
from models.contracts import book_signing
from models.inventory import hold_unit

from . import factories as f
from .test_browser import browser, live_server, browse, Session  # noqa: F401  (fixtures)
from .test_contracts import TODAY, deal, pay  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


def test_issue19_1_4_16_times_bases_and_favicon_in_the_browser(browse, make_user, db, deal):  # noqa: F811
    pay(db, deal, "250000")
    book_signing(db.session, deal["agent"], deal["sub"].id, appointment_at=dt.datetime(2026, 12, 1, 15, 30), today=TODAY)
    spare = f.unit(db.session, deal["unit"].building, number="2301")
    db.session.commit()
    hold_unit(db.session, deal["agent"], unit_id=spare.id, lead_id=deal["lead"].id)
    db.session.commit()
    held_until = office_time(db.session.get(type(spare), spare.id).held_until)
    make_user("sales_manager", "finance", username="boss19")

    lawyer = browse("sun")
    bookings = lawyer.page.locator("#dash-lawyer")
    expect(bookings).to_contain_text("2026-12-01 15:30")
    assert "07:30" not in bookings.inner_text() and "UTC" not in lawyer.page.content()
    for card in lawyer.page.locator("#dash-lawyer .dash-stat").all():
        assert card.locator(".dash-basis").inner_text().strip()
    lawyer.shot("lawyer-home")
    icon = lawyer.page.request.get(lawyer.page.locator("link[rel=icon]").get_attribute("href"))
    assert icon.status == 200 and icon.headers["content-type"].startswith("image/")

    agent = browse("li")
    agent.page.goto(f"/admin/board/unit/{spare.id}")
    card = agent.page.locator(".unit-card")
    expect(card).to_contain_text(held_until)
    assert "UTC" not in card.inner_text()
    agent.shot("held-unit-card")

    boss = browse("boss19")
    for card in boss.page.locator(".dash-stat").all():
        assert card.locator(".dash-basis").inner_text().strip(), card.inner_text()
    collection = boss.page.locator("#dash-manager .dash-collection")
    expect(collection).to_contain_text("已到期应收")
    expect(boss.page.locator("#dash-manager .dash-collection-plan")).to_contain_text("计划应收总额")
    assert not re.search(r"¥-", boss.page.content())
    boss.shot("manager-finance-home")
