"""The live board in a real browser (R-LCH-3 "the board updates live for everyone"): a sale made
by another session reaches an open board page within a couple of seconds, without a reload."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from models.deals import subscribe
from models.inventory import set_withheld

from . import factories as f
from .test_browser import browser, live_server, browse, Session  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

def test_r_lch_3_a_sale_reaches_the_open_board_without_a_reload(browse, make_user, db):
    s = db.session
    project = f.project(s, code="XJ", name="湘江壹号")
    building = f.building(s, project, name="1栋", floors=3)
    units = [f.unit(s, building, floor=1 + i // 4, position=1 + i % 4, number=f"1-{i + 101}",
                    list_price=Decimal("1000000.00")) for i in range(6)]
    odd = f.unit(s, building, floor=3, position=4, number="<b>x</b>", layout="<img src=x>")
    agent, control = make_user("agent", username="li"), make_user("sales_control", username="chen")
    lead = f.lead(s, owner=agent, project_=project, name="黄先生", phone="13800138000")
    s.commit()
    window = browse("chen")
    page = window.page
    page.goto(f"/admin/board/?project={project.id}")
    cell = page.locator(f"td.cell[data-unit='{units[2].id}']")
    expect(cell).to_have_class("cell status-available")
    expect(page.locator(f"td.cell[data-unit='{odd.id}'] b")).to_have_text("<b>x</b>")  # text, not markup
    expect(page.locator("#board-summary .count[data-status='available']")).to_have_text("7")
    page.evaluate("window.loadedAt = performance.timeOrigin")  # gone if the page reloads
    subscribe(s, agent, unit_id=units[2].id, lead_id=lead.id, payment_method="commercial_mortgage",
              deposit="50000", id_number=f.VALID_ID_NUMBER, address="长沙市岳麓区麓山路1号", today=dt.date.today())
    s.commit()  # the sale, by another session than the page's
    expect(cell).to_have_class("cell status-subscribed", timeout=3000)
    expect(page.locator("#board-summary .count[data-status='subscribed']")).to_have_text("1")
    expect(page.locator("#board-summary .count[data-status='available']")).to_have_text("6")
    set_withheld(s, control, units[3].id, True)
    s.commit()
    expect(page.locator(f"td.cell[data-unit='{units[3].id}']")).to_have_class("cell status-withheld", timeout=3000)
    assert page.evaluate("window.loadedAt") is not None  # the same page all along
    window.shot("live-board")
