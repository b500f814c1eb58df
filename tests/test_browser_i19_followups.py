"""Issue 19, items 9 and 10 in Chromium: the bulk assignment's split over two agents ticked in the
real form, and recording a follow-up from the due list's row (R-LEAD-2, R-LEAD-3)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from models import FollowUp, Lead
from models.base import office_today

from . import factories as f
from .test_browser import browser, live_server, browse, Session  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser


def test_issue19_10_r_lead_2_two_agents_ticked_in_the_form_get_one_customer_each(browse, make_user, db):
    manager = make_user("sales_manager", username="boss")
    li, zhang = make_user("agent", username="li"), make_user("agent", username="zhang")
    project = f.project(db.session, name="湘江壹号")
    leads = [f.lead(db.session, project_=project, name=name, registered_by=manager) for name in ("赵小满", "钱多多")]
    db.session.commit()

    window = browse("boss")
    page = window.page
    page.goto("/admin/lead/")
    page.wait_for_load_state("load")
    for lead in leads:
        page.check(f"input.action-checkbox[value='{lead.id}']")
    page.click("a.dropdown-toggle:has-text('选中的')")
    page.click("a[data-bulk-action=assign]")
    expect(page.locator("form.assign-form")).to_be_visible()
    expect(page.locator("#split-rule")).to_contain_text("当前负荷")  # the page says what the split does

    # Nothing ticked among the agents: refused, and the form comes back as it was.
    page.check("#mode-even")
    page.click("form.assign-form button[type=submit]")
    expect(window.flash("error")).to_contain_text("置业顾问")
    expect(page.locator("#mode-even")).to_be_checked()
    for lead in leads:
        expect(page.locator(f"#lead-{lead.id}")).to_be_checked()

    # Both agents ticked: one customer each, the message names both.
    page.check(f"#agent-{li.id}")
    page.check(f"#agent-{zhang.id}")
    window.shot("1-two-agents-ticked")
    page.click("form.assign-form button[type=submit]")
    expect(window.flash()).to_contain_text("Li 1")
    expect(window.flash()).to_contain_text("Zhang 1")
    window.shot("2-split-one-each")
    db.session.expire_all()
    owners = sorted(db.session.get(Lead, lead.id).owner_id for lead in leads)
    assert owners == sorted([li.id, zhang.id])


def test_issue19_9_r_lead_3_a_follow_up_recorded_from_the_due_list_returns_to_it(browse, make_user, db):
    agent = make_user("agent", username="li")
    project = f.project(db.session, name="湘江壹号")
    lead = f.lead(db.session, owner=agent, project_=project, name="黄先生", next_follow_up_on=office_today())
    db.session.commit()

    window = browse("li")
    page = window.page
    page.goto(f"/admin/lead/details/?id={lead.id}")
    expect(page.locator(".detail-steps a[data-link=follow_up]")).to_be_visible()  # on the customer's page too
    window.shot("0-customer-page")
    page.goto("/admin/follow_up_due/")
    window.shot("1-due-list")
    page.locator("tr", has_text="黄先生").locator("a[data-link=follow_up]").click()
    expect(page).to_have_url(re.compile(r"/admin/follow_up/new/\?lead_id="))
    expect(page.locator("#lead option:checked")).to_contain_text("黄先生")
    page.select_option("#channel", "phone", force=True)
    page.fill("#content", "约周六看样板间")
    window.shot("2-form-prefilled")
    page.click("input[type=submit][value='保存']")
    expect(page).to_have_url(re.compile(r"/admin/follow_up_due/"))
    expect(window.flash()).to_be_visible()
    expect(page.locator("tr", has_text="黄先生")).to_have_count(0)  # followed up: off the due list
    follow_up = db.session.scalar(select(FollowUp).where(FollowUp.lead_id == lead.id))
    assert follow_up.content == "约周六看样板间" and follow_up.agent_id == agent.id
    # The follow-ups grid finds it by a word of what was said.
    page.goto("/admin/follow_up/")
    page.fill("input[name=search]", "样板间")
    page.keyboard.press("Enter")
    expect(page.locator("td.col-content", has_text="约周六看样板间")).to_have_count(1)
    window.shot("3-follow-ups-searched")
