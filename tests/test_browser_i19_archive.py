"""Issue 19, items 2 and 3 in a real browser: the date picker speaks the page's language and does
not cover the form's save button; the forfeited/withdrawn customers' archive reads as a record.

Screenshots go to test-artifacts/screenshots/<pass>/ (see tests/test_browser.py)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from . import factories as f
from .test_browser import browser, live_server, browse, Session  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

ENGLISH_MONTHS = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
ENGLISH_DAYS = {"Su", "Mo", "Tu", "We", "Th", "Fr", "Sa"}


def _open_picker(window):
    """The follow-up form (its last field, 下次跟进, a date just above the buttons) with the date
    picker open: (month names, weekday names) as the picker shows them."""
    page = window.page
    page.goto("/admin/follow_up/new/")
    page.click("#next_on")
    picker = page.locator(".daterangepicker").filter(has=page.locator("td.available")).first
    expect(picker).to_be_visible()
    calendar = picker.locator(".calendar.right")  # a single-date picker shows its right calendar
    months = calendar.locator("select.monthselect option").all_inner_texts()
    days = [d.strip() for d in calendar.locator("thead tr").nth(1).locator("th").all_inner_texts()]
    return months, days


def _save_button_is_uncovered(page) -> bool:
    """Whether the element at the centre of the save button is the button itself (nothing lies
    over it)."""
    return page.evaluate("""() => {
        const button = document.querySelector('form.admin-form input[type=submit], form input[type=submit]');
        const r = button.getBoundingClientRect();
        const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
        return hit === button;
    }""")


def test_issue19_3_the_date_picker_is_chinese_on_a_chinese_page_and_leaves_the_save_button_uncovered(
        browse, make_user, db):
    agent = make_user("agent", username="li")
    f.lead(db.session, owner=agent, name="张三")
    db.session.commit()
    window = browse("li")
    months, days = _open_picker(window)
    window.page.locator("#next_on").scroll_into_view_if_needed()
    window.shot("datepicker-zh")
    assert months[:3] == ["1月", "2月", "3月"] and len(months) == 12, months
    assert days == ["一", "二", "三", "四", "五", "六", "日"], days  # weeks from Monday, as in China
    assert not ENGLISH_MONTHS & set(months) and not ENGLISH_DAYS & set(days)
    assert _save_button_is_uncovered(window.page), "the open date picker lies over 保存"
    # picking a date fills the field and closes the picker
    window.page.locator(".daterangepicker td.available:not(.off)").nth(10).click()
    assert window.page.input_value("#next_on")
    expect(window.page.locator(".daterangepicker").first).to_be_hidden()
    window.shot("datepicker-zh-picked")


def test_issue19_3_the_date_picker_is_english_on_an_english_page(browse, make_user, db):
    agent = make_user("agent", username="li")
    f.lead(db.session, owner=agent, name="张三")
    db.session.commit()
    window = browse("li")
    window.page.click("button[name=lang][value=en]")
    expect(window.page.locator("html")).to_have_attribute("lang", "en")
    months, days = _open_picker(window)
    window.shot("datepicker-en")
    assert months[:3] == ["Jan", "Feb", "Mar"], months
    assert set(days) == ENGLISH_DAYS, days
    assert _save_button_is_uncovered(window.page)
