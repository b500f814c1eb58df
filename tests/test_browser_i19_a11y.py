"""Issue 19, item 19 (accessible), in Chromium: every page of every role's menu has one <main>
landmark, every form control a name a screen reader can say (in the page's language), and every
status colour as rendered reads at WCAG AA (4.5:1), the board's cells and legend included."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from sqlalchemy import select

from models import Instalment, Unit, User
from models.base import office_today

from . import factories as f
from .test_accessibility import AA
from .test_browser import browser, live_server, browse, Session  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

# Each role signs in under its own name; "li" is active_deal's agent.
PEOPLE = {"admin": "boss", "sales_manager": "mgr", "agent": "li", "sales_control": "control",
          "finance": "finance", "lawyer": "wang", "archive": "arch", "vp": "vp1"}

# What the page offers a screen reader: its main landmarks, the visible form controls without an
# accessible name (<label for>, a wrapping <label>, aria-labelledby or aria-label), and every
# aria-label with the element it is on.
AUDIT = """() => {
  const text = el => (el ? el.textContent.replace(/\\s+/g, ' ').trim() : '');
  const shown = el => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  const unnamed = [];
  for (const el of document.querySelectorAll('input, select, textarea')) {
    const type = (el.getAttribute('type') || 'text').toLowerCase();
    if (el.tagName === 'INPUT' && ['hidden', 'submit', 'button', 'reset', 'image'].includes(type)) continue;
    if (!shown(el)) continue;
    let name = (el.getAttribute('aria-labelledby') || '').split(/\\s+/).filter(Boolean)
      .map(id => text(document.getElementById(id))).join(' ').trim();
    if (!name) name = (el.getAttribute('aria-label') || '').trim();
    if (!name && el.labels) name = Array.from(el.labels).map(text).join(' ').trim();
    if (!name) unnamed.push(el.outerHTML.slice(0, 160));
  }
  return {
    mains: document.querySelectorAll('main, [role=main]').length,
    unnamed: unnamed,
    labels: Array.from(document.querySelectorAll('[aria-label]'))
      .map(el => [el.tagName.toLowerCase(), el.getAttribute('aria-label')]),
  };
}"""

# The colours the browser drew for every status-* element shown (board cells not dimmed by a
# filter), against the first opaque background behind it; the WCAG ratio computed here.
COLOURS = """() => {
  const parse = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const opaque = c => c.length < 4 || c[3] > 0;
  const lum = c => {
    const [r, g, b] = c.slice(0, 3).map(v => { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const background = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (opaque(c)) return c;
    }
    return [255, 255, 255];
  };
  const out = [];
  for (const el of document.querySelectorAll('[class*="status-"]')) {
    if (!el.getClientRects().length || el.closest('.dim')) continue;
    const status = (el.className.match(/\\bstatus-[a-z_]+/) || [el.className])[0];
    const bg = background(el);
    // The element's own text, and a link's inside it (a board cell's text is its link's).
    for (const t of [el, ...el.querySelectorAll('a, b, span')]) {
      if (!t.textContent.trim()) continue;
      const fg = parse(getComputedStyle(t).color);
      const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
      out.push({status: status, fg: getComputedStyle(t).color, bg: 'rgb(' + bg.slice(0, 3).join(', ') + ')',
                ratio: (hi + 0.05) / (lo + 0.05), text: t.textContent.trim().slice(0, 20)});
    }
  }
  return out;
}"""

LATIN = re.compile(r"[A-Za-z]{2,}")
CJK = re.compile(r"[\u4e00-\u9fff]")


def _deal_and_board(db, make_user):
    """A deal through the real steps (deposit paid, the down payment partly paid), a unit of each
    of the board's five statuses, and one person of each role."""
    today = office_today()
    staff = {role: (role, name) for role, name in PEOPLE.items() if role != "agent"}
    deal = f.active_deal(db.session, make_user, price="1000000", payment_method="commercial_mortgage",
                         today=today, staff={"control": staff.pop("sales_control"), **staff})
    from models.payments import record_payment
    down = db.session.scalar(select(Instalment).where(Instalment.subscription_id == deal["sub"].id,
                                                      Instalment.kind == "down_payment"))
    record_payment(db.session, deal["finance"], deal["sub"].id, amount="1000", paid_on=today, channel="pos",
                   instalment_id=down.id, today=today)
    building = f.building(db.session, deal["project"], name="十栋", floors=2)
    for i, status in enumerate(("available", "subscribed", "signed", "withheld")):
        f.unit(db.session, building, floor=1, position=i + 1, number=f"2-{101 + i}",
               list_price=Decimal("900000"), status=status)
    held = f.unit(db.session, building, floor=2, position=1, number="2-201", list_price=Decimal("900000"))
    held.status, held.held_by_id, held.held_for_lead_id = "held", deal["control"].id, deal["lead"].id
    held.held_until = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(hours=2)
    db.session.commit()
    return deal


def _menu_pages(page) -> list[str]:
    links = page.locator("#admin-navbar-collapse ul.navbar-nav.mr-auto a[href]")
    hrefs = {links.nth(i).get_attribute("href") for i in range(links.count())}
    return ["/admin/"] + sorted(h for h in hrefs if h.startswith("/") and h != "/admin/")


def _audit(page, where, problems, data=frozenset()):
    """What is missing on the page in front of `page`, added to `problems`. `data`: the words of
    English a label may hold because they are data (people's names)."""
    found = page.evaluate(AUDIT)
    if found["mains"] != 1:
        problems.append(f"{where}: {found['mains']} main landmarks")
    for html in found["unnamed"]:
        problems.append(f"{where}: no accessible name: {html}")
    for tag, label in found["labels"]:
        words = set(LATIN.findall(label)) - data - {"PDF", "CSV", "XLSX"}
        if words or not CJK.search(label):
            problems.append(f"{where}: <{tag} aria-label={label!r}> on a Chinese page")


def _with_filters(page):
    """Add the grid's first and last filters (Flask-Admin writes their inputs in JavaScript)."""
    filters = page.locator(".field-filters a.filter")
    count = filters.count()
    for index in sorted({0, count - 1} if count else set()):
        page.locator("li.dropdown:has(.field-filters) > a.dropdown-toggle").click()
        filters.nth(index).click()
    return count


def test_issue19_accessible_every_role_s_pages_have_one_main_and_every_control_a_chinese_name(
        browse, make_user, db):
    """Each role's menu pages, with a deal in the grids: one <main>; every visible input, select
    and textarea named (finance export, the board's filters, the grids' search box and the
    filters added from their menu, the row checkboxes, the language switch); no aria-label in
    English on these Chinese pages."""
    deal = _deal_and_board(db, make_user)
    available = db.session.scalar(select(Unit.id).where(Unit.number == "2-101"))
    people = list(db.session.scalars(select(User)))
    data = frozenset(w for u in people for w in LATIN.findall(f"{u.username} {u.display_name}"))
    problems, filtered = [], set()
    for role, username in PEOPLE.items():
        window = browse(username)
        page = window.page
        for href in _menu_pages(page) + [f"/admin/subscription/details/?id={deal['sub'].id}",
                                         f"/admin/board/unit/{available}"]:
            response = page.goto(href)
            assert response.status in (200, 403), (role, href)
            page.wait_for_load_state("load")
            _audit(page, f"{role} {href}", problems, data)
            if href not in filtered and _with_filters(page):  # the same grid's filters: once
                filtered.add(href)
                _audit(page, f"{role} {href} (filters added)", problems, data)
        if role == "finance":
            page.goto("/admin/finance_export/")
            window.shot("finance-export")
        window.context.close()
    assert not problems, "\n".join(problems)


def test_issue19_accessible_status_colours_as_drawn_read_at_4_5_to_1(browse, make_user, db):
    """R-SC-1 and WCAG AA: the board's cells and legend, and the status badges of every grid the
    administrator's menu opens, as Chromium draws them (whatever rule coloured them), read at
    4.5:1 or more; the board keeps its meanings (the cells' colours are the legend's)."""
    deal = _deal_and_board(db, make_user)
    window = browse("boss")
    page = window.page
    low, statuses = [], set()
    page.goto(f"/admin/board/?project={deal['project'].id}")
    page.wait_for_selector("td.cell")  # the live board draws itself from its state (static/liveboard.js)
    board = page.evaluate(COLOURS)
    window.shot("board")
    for href in _menu_pages(page) + [f"/admin/subscription/details/?id={deal['sub'].id}",
                                     f"/admin/board/unit/{deal['unit'].id}"]:
        page.goto(href)
        drawn = page.evaluate(COLOURS)
        if href == "/admin/instalment/":
            window.shot("instalment-grid")
        if href == "/admin/unit/":
            window.shot("unit-grid")
        statuses |= {d["status"] for d in drawn}
        low += [f"{href}: {d}" for d in drawn if d["ratio"] < AA]
    low += [f"board: {d}" for d in board if d["ratio"] < AA]
    cells = {d["status"] for d in board}
    assert {"status-available", "status-held", "status-subscribed", "status-signed", "status-withheld"} <= cells
    assert {"status-paid", "status-partly_paid", "status-confirmed", "status-active"} <= statuses, statuses
    assert not low, "\n".join(low)
    # Cells and legend in one colour per status.
    background = "el => getComputedStyle(el).backgroundColor"
    page.goto(f"/admin/board/?project={deal['project'].id}")
    for status in ("available", "held", "subscribed", "signed", "withheld"):
        cell = page.locator(f"td.cell.status-{status}").first.evaluate(background)
        assert page.locator(f"#board-summary .status-{status}").evaluate(background) == cell, status


def test_issue19_accessible_names_follow_the_page_into_english(browse, make_user, db):
    """The same names in English when the reader switches: no aria-label of the administrator's
    pages (the grids' search boxes, row checkboxes and added filters, the menu button, the
    language switch) is left in Chinese, and the names are still all there."""
    _deal_and_board(db, make_user)
    window = browse("boss")
    page = window.page
    page.click("button[name=lang][value=en]")
    problems, labels = [], 0
    for href in _menu_pages(page):
        page.goto(href)
        page.wait_for_load_state("load")
        assert page.locator("html").get_attribute("lang") == "en", href
        _with_filters(page)
        found = page.evaluate(AUDIT)
        labels += len(found["labels"])
        problems += [f"{href}: {html}" for html in found["unnamed"]]
        problems += [f"{href}: <{tag} aria-label={label!r}>" for tag, label in found["labels"]
                     if CJK.search(label)]
    assert labels > 50
    assert not problems, "\n".join(problems)
