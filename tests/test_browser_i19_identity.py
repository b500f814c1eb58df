"""Issue 19, items 13 and 5 in the browser: the customer's form with the kind of identity
document, the agreement form taking the chosen customer's document, and a deal's payment found by
its unit's name as the grids show it."""
from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from models import Subscription
from models.base import office_today

from . import factories as f
from .test_browser import browser, live_server, browse, Session  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser


def test_issue19_13_the_agreement_form_takes_the_chosen_customers_document(browse, make_user, db):
    s = db.session
    project = f.project(s, code="XJ", name="湘江壹号")
    building = f.building(s, project, name="1栋", floors=30)
    unit = f.unit(s, building, floor=23, position=1, number="2301", list_price=Decimal("1500000.00"))
    make_user("agent", username="li")
    from models import User
    li = s.scalar(select(User).where(User.username == "li"))
    f.lead(s, owner=li, project_=project, name="王先生", phone="13800138001",
           id_number="110101199003074573", address="长沙市岳麓区")
    f.lead(s, owner=li, project_=project, name="陈女士", phone="13900139000", id_type="hk_macao_permit",
           id_number="H12345678", address="香港中环")
    s.commit()

    window = browse("li")
    page = window.page
    page.goto("/admin/lead/new/")
    expect(page.locator("select[name=id_type]")).to_be_attached()
    page.fill("input[name=name]", "周先生")
    page.fill("input[name=phone]", "１３７ ００１３ ７０００")  # typed with a Chinese input method
    page.evaluate("$('select[name=id_type]').val('passport').trigger('change')")  # a Select2 box
    page.fill("input[name=id_number]", "E12345678")
    window.shot("registration-with-document-type")

    page.goto(f"/admin/subscription/new/?unit_id={unit.id}")
    chen = page.locator("select[name=lead_id] option", has_text="陈女士").get_attribute("value")
    page.select_option("select[name=lead_id]", chen)
    expect(page.locator("select[name=id_type]")).to_have_value("hk_macao_permit")
    expect(page.locator("input[name=address]")).to_have_value("香港中环")
    expect(page.locator("input[name=id_number]")).to_have_value("")  # the agent reads it masked
    expect(page.get_by_text("H12**5678")).to_be_visible()
    window.shot("agreement-prefilled-from-the-customer")
    page.fill("input[name=deposit]", "50000")
    page.fill("input[name=subscribed_on]", office_today().isoformat())
    page.locator("form.admin-form [type=submit]").first.click()
    expect(window.flash("error")).to_have_count(0)
    deal = db.session.scalar(select(Subscription))
    assert (deal.customer_id_type, deal.customer_id_number) == ("hk_macao_permit", "H12345678")

    page.goto("/admin/subscription/?search=1栋-2301")
    expect(page.get_by_text(deal.number)).to_be_visible()
    window.shot("subscriptions-found-by-unit-name")
