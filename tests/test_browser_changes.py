"""A unit swap (换房, R-CHG-1, R-CHG-2) in a real browser: the agent asks for it on the deal's
page, the manager approves it on the change request's page, and the board shows the old unit on
sale and the new one subscribed.

Screenshots go to /tmp/21/shots/ (and test-artifacts/screenshots/<pass>/, see tests/test_browser.py)."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from models import ChangeRequest
from . import factories as f
from .test_browser import browser, live_server, browse, Session  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/21/shots")


def _shot(window, name: str) -> None:
    window.shot(name)
    SHOTS.mkdir(parents=True, exist_ok=True)
    window.page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def test_r_chg_2_an_agent_asks_for_a_swap_the_manager_approves_it_and_the_board_shows_both_units(
        browse, make_deal, db):
    people = make_deal(staff={"control": ("sales_control", "chen"), "finance": ("finance", "zhao"),
                              "manager": ("sales_manager", "wang")})
    sub, old = people["sub"], people["unit"]
    new = f.unit(db.session, old.building, number="1501", layout="3室2厅", area=Decimal("98.50"),
                 list_price=Decimal("1250000.00"))
    db.session.commit()

    agent = browse("li")
    page = agent.page
    page.goto(f"/admin/subscription/details/?id={sub.id}")
    agent.step("change_unit")
    page.select_option("#unit_id", str(new.id))
    page.fill("#reason", "客户希望换到高楼层")
    _shot(agent, "chg-1-swap-form")
    page.click("button[data-step-submit]")
    expect(agent.flash()).to_be_visible()
    change = db.session.scalars(select(ChangeRequest)).one()
    expect(agent.flash()).to_contain_text(str(change))
    page.goto(f"/admin/subscription/details/?id={sub.id}")
    expect(page.locator(".change-pending")).to_contain_text(str(change))
    expect(page.locator("button[data-step=change_unit]")).to_have_count(0)
    _shot(agent, "chg-2-deal-change-pending")
    page.goto("/admin/subscription/")
    expect(page.locator("td.col-status .status-change_pending")).to_have_count(1)
    _shot(agent, "chg-2b-grid-change-pending")

    manager = browse("wang")
    page = manager.page
    page.goto("/admin/change_request/")
    expect(page.locator("td.col-figures")).to_contain_text("¥1,000,000.00 → ¥1,250,000.00")
    _shot(manager, "chg-3a-change-requests")
    page.goto(f"/admin/change_request/details/?id={change.id}")
    expect(page.locator("#before-after")).to_contain_text(str(new))
    expect(page.locator("#difference")).to_contain_text("¥1,250,000.00")
    _shot(manager, "chg-3-request-before-approval")
    manager.step("approve")
    expect(manager.flash()).to_be_visible()
    assert manager.dialogs, "approving asks first"
    expect(page.locator("#steps")).to_contain_text(people["manager"].display_name)
    _shot(manager, "chg-4-request-approved")

    page.goto(f"/admin/board/?project={people['project'].id}")
    old_cell = page.locator(f"td.cell[data-unit='{old.id}']")
    new_cell = page.locator(f"td.cell[data-unit='{new.id}']")
    assert "status-available" in old_cell.get_attribute("class")
    assert "status-subscribed" in new_cell.get_attribute("class")
    _shot(manager, "chg-5-board-after-swap")

    # The deal takes requests again: the buyers' form, prefilled with the buyer (ID number masked for the agent).
    page = agent.page
    page.goto(f"/admin/subscription/details/?id={sub.id}")
    expect(page.locator("#buyers .buyer-current")).to_have_count(1)
    agent.step("change_buyers")
    expect(page.locator("[name='buyers-0-name']")).to_have_value(people["lead"].name)
    assert "*" in page.input_value("[name='buyers-0-id_number']")
    _shot(agent, "chg-6-buyers-form")
