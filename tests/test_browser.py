"""Sales Desk in a real browser: Debian's Chromium driven by Playwright, against the app served
on a free port from this test's database (SQLite, or PostgreSQL + Redis in the second pass).

Screenshots of every step are saved under test-artifacts/screenshots/<pass>/ for people to look
at; the assertions read the page as a user would (menus, messages, colours, the deal's history).
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import re
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from werkzeug.serving import make_server

from models import Contract, Instalment, Lead, PaymentMethodTemplate, Subscription, Unit, User
from models.base import office_today

from . import factories as f
from .conftest import ON_POSTGRES, TEST_PASSWORD

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# What Chromium needs on a machine without a display, a GPU or a user namespace for its sandbox,
# and what keeps it from calling out (component updates, sync, background networking); the
# office's language for what the browser draws itself (date pickers).
CHROMIUM_FLAGS = ["--lang=zh-CN", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots" / (
    "postgres" if ON_POSTGRES else "sqlite")

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def browser(shared_browser):
    """The run's one Chromium (tests/conftest.py): modules importing this fixture share it."""
    return shared_browser


@pytest.fixture
def live_server(app):
    """The test's app, served by Werkzeug in a thread on a free port of 127.0.0.1."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request: noise here
    server = make_server("127.0.0.1", 0, app, threaded=True)
    app.config["SERVER_NAME"] = f"127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


class Session:
    """One person's browser window (its browser asking for `locale`): signed in as `username`; confirmations are answered "OK"
    and kept in `dialogs`; JavaScript errors and whatever the Content-Security-Policy refused are
    kept in `errors` (a test fails on any)."""

    def __init__(self, browser, base_url, username, test_name, locale="zh-CN"):
        self.context = browser.new_context(base_url=base_url, locale=locale,
                                           viewport={"width": 1400, "height": 900})
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", self._answer)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("console", self._console)
        self.username, self.test_name = username, test_name
        self.page.goto("/login")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", TEST_PASSWORD)
        self.page.click("button[type=submit]")
        expect(self.page).to_have_url(re.compile(r"/admin/$"))

    def _console(self, message):
        # What the Content-Security-Policy blocked (an inline script or handler, a foreign host).
        if message.type == "error" and ("Content Security Policy" in message.text or "Refused to" in message.text):
            self.errors.append(message.text)

    def _answer(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.accept()

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=SHOTS / f"{self.test_name}-{name}.png", full_page=True)

    def flash(self, kind: str = "success"):
        css = {"success": ".alert-success", "error": ".alert-danger"}[kind]
        return self.page.locator(css)

    def step(self, name: str, row=None):
        """Click the step button `name` (on `row`, a locator, else the only one on the page)."""
        scope = row if row is not None else self.page
        scope.locator(f"button[data-step={name}]").first.click()


@pytest.fixture
def browse(browser, live_server, request):
    """browse("agent1") -> a Session signed in as that user; browse("agent1", "en-US") -> one whose
    browser asks for English (no language picked on the page: the app follows the browser)."""
    sessions: list[Session] = []

    def open_as(username, locale="zh-CN"):
        session = Session(browser, live_server, username, request.node.name, locale)
        sessions.append(session)
        return session

    yield open_as
    errors = [e for s in sessions for e in s.errors]
    for session in sessions:
        session.context.close()
    assert not errors, f"JavaScript errors: {errors}"


def _menu(page) -> dict[str, list[str]]:
    """The navigation bar as {category: [items]} (Flask-Admin renders dropdowns per category)."""
    menu = {}
    for item in page.locator("#admin-navbar-collapse ul.navbar-nav.mr-auto > li").all():
        toggle = item.locator("> a").first
        title = toggle.inner_text().strip()
        entries = [t.strip() for t in item.locator(".dropdown-menu a").all_text_contents()]
        menu[title] = entries
    return menu


# What each role finds in its menu (R-ALL-1): a few items it must have and must not have.
MENUS = {
    "admin": ({"用户", "角色", "操作日志", "客户登记", "收款记录", "合同"}, set()),
    "sales_manager": ({"客户登记", "待跟进客户", "重复登记", "认购单", "延期申请", "月度目标", "销控表"},
                      {"用户", "操作日志", "导入价目表"}),
    "agent": ({"客户登记", "待跟进客户", "认购单", "付款计划", "销控表", "合同"},
              {"用户", "操作日志", "导入价目表", "付款方式设置", "月度目标", "合同档案"}),
    "sales_control": ({"销控表", "房源", "认购单", "导入价目表"},
                      {"客户登记", "收款记录", "用户", "操作日志", "付款计划"}),
    "finance": ({"付款计划", "收款记录", "财务导出", "认购单", "逾期记录"},
                {"客户登记", "用户", "操作日志", "导入价目表", "合同档案"}),
    "lawyer": ({"合同", "签约后办理进度", "逾期未办结事项", "逾期记录"},
               {"客户登记", "用户", "操作日志", "导入价目表", "财务导出"}),
    "archive": ({"合同档案", "盖章复印件发放记录", "合同"},
                {"客户登记", "认购单", "收款记录", "用户", "操作日志"}),
    "vp": ({"特价审批", "延期申请", "操作日志", "认购单", "收款记录"}, {"用户", "导入价目表"}),
}

# Words of English on a Chinese page betray an untranslated string (names, codes and the
# language switch itself aside).
ENGLISH = re.compile(r"\b(?!English\b)[A-Za-z]{3,}(?: [A-Za-z]{2,})+\b")


def test_every_role_signs_in_to_its_own_menu_in_chinese(browse, make_user, db):
    for role, (must, must_not) in MENUS.items():
        make_user(role, username=f"u_{role}")
        window = browse(f"u_{role}")
        page = window.page
        assert page.locator("html").get_attribute("lang") == "zh-CN"
        menu = _menu(page)
        items = {entry for entries in menu.values() for entry in entries} | set(menu)
        assert must <= items, (role, must - items)
        assert not (must_not & items), (role, must_not & items)
        text = page.locator("body").inner_text()
        assert not ENGLISH.findall(text), (role, ENGLISH.findall(text))
        window.shot(f"home-{role}")
        window.context.close()


def test_english_is_one_click_away(browse, make_user):
    make_user("finance", username="cashier")
    window = browse("cashier")
    window.page.click("button[name=lang][value=en]")
    expect(window.page.locator("html")).to_have_attribute("lang", "en")
    assert "Finance" in _menu(window.page)
    window.shot("english")


def _project_with_units(db, statuses=("available",), price="1000000.00"):
    project = f.project(db.session, code="XJ", name="湘江壹号")
    building = f.building(db.session, project, name="1栋", floors=3)
    units = [f.unit(db.session, building, floor=1 + i // 4, position=1 + i % 4, number=f"1-{i + 101}",
                    list_price=Decimal(price), status=status) for i, status in enumerate(statuses)]
    db.session.commit()
    return project, building, units


def test_the_board_shows_each_status_in_the_colour_of_its_badge(browse, make_user, db):
    """R-SC-1: the board's colours are the statuses' colours, the same in its legend, on each
    cell and on the badges of the unit grid."""
    statuses = ("available", "held", "subscribed", "signed", "withheld")
    expected = {"available": "rgb(30, 126, 52)", "held": "rgb(255, 193, 7)",
                "subscribed": "rgb(0, 105, 217)", "signed": "rgb(111, 66, 193)",
                "withheld": "rgb(108, 117, 125)"}
    control = make_user("sales_control", username="control")
    project, _, units = _project_with_units(db, [s if s != "held" else "available" for s in statuses])
    held = units[statuses.index("held")]
    customer = f.lead(db.session, project_=project, registered_by=control)
    held.status, held.held_by_id, held.held_for_lead_id = "held", control.id, customer.id
    held.held_until = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(hours=2)
    db.session.commit()
    window = browse("control")
    page = window.page
    page.goto(f"/admin/board/?project={project.id}")
    background = "el => getComputedStyle(el).backgroundColor"
    for unit in units:
        cell = page.locator(f"td.cell[data-unit='{unit.id}']")
        legend = page.locator(f"#board-summary .status-{unit.status}")
        assert cell.evaluate(background) == expected[unit.status], unit.status
        assert legend.evaluate(background) == expected[unit.status], unit.status
    window.shot("board")
    page.goto("/admin/unit/")
    for status, colour in expected.items():
        badge = page.locator(f"td.col-status .status-{status}").first
        assert badge.evaluate(background) == colour, status
    window.shot("unit-grid")


def test_a_refused_step_says_why_and_what_is_missing(browse, make_user, db):
    """R-CON-1: booking the signing before the down payment is refused with the amount missing —
    said on the deal's page before anything is sent: the 预约签约 button asks the same rule the
    booking does, and stands disabled with its reason."""
    today = office_today()
    deal = f.active_deal(db.session, make_user, price="1000000", payment_method="commercial_mortgage",
                         today=today, staff={"control": ("sales_control", None),
                                             "finance": ("finance", None)})
    window = browse("li")
    page = window.page
    page.goto(f"/admin/subscription/details/?id={deal['sub'].id}")
    expect(page.locator('button[data-step="book"]')).to_be_disabled()
    reason = page.locator(".step-why").first
    expect(reason).to_contain_text("首期款未付清：还差 ¥250,000.00")  # what is missing
    expect(reason).to_contain_text("首期款付清后才能预约签约")  # what to do next
    expect(reason).to_contain_text("（规则 R-CON-1）")  # which rule
    assert "Traceback" not in page.content()
    window.shot("refused")
    assert db.session.scalar(select(Contract.id)) is None


def test_the_main_flow_from_lead_to_signed_contract_in_the_browser(browse, make_user, db):
    """Register a lead → the manager assigns it → the agent subscribes from the board → sales
    control confirms → finance takes the deposit → the ladder runs for a later date → extension
    → payment → booking → signing; each step a button, a confirmation and a message; the deal's
    page tells the whole story."""
    today = office_today()
    project, building, (unit,) = _project_with_units(db)
    make_user("sales_manager", username="boss")
    agent = make_user("agent", username="li")
    make_user("sales_control", username="control")
    make_user("finance", username="cashier")
    make_user("lawyer", username="wang")

    # The manager registers the enquiry (no owner yet) and assigns it with the row's button.
    manager = browse("boss")
    page = manager.page
    page.goto("/admin/lead/new/")
    page.select_option("#project", label=project.name, force=True)
    page.fill("#name", "赵小满")
    page.fill("#phone", "13912345678")
    page.select_option("#source", "walk_in", force=True)
    page.click("input[type=submit][value='保存']")
    expect(manager.flash()).to_be_visible()
    lead = db.session.scalar(select(Lead).where(Lead.phone == "13912345678"))
    assert lead is not None and lead.owner_id is None
    page.goto("/admin/lead/")
    row = page.locator("tr", has_text="赵小满")
    manager.step("assign", row)
    page.check(f"#agent-{agent.id}")
    page.click("form.assign-form button[type=submit]")
    expect(manager.flash()).to_contain_text("1")
    manager.shot("1-assigned")
    db.session.expire_all()
    assert db.session.get(Lead, lead.id).owner_id == agent.id

    # The agent subscribes the unit from the board.
    seller = browse("li")
    page = seller.page
    page.goto(f"/admin/board/?project={project.id}")
    page.click(f"td.cell[data-unit='{unit.id}'] a")
    page.click("text=认购此房")
    page.select_option("#lead_id", str(lead.id))
    page.fill("#id_number", f.VALID_ID_NUMBER)
    page.fill("#address", "长沙市岳麓区麓山路1号")
    page.select_option("#payment_method", "commercial_mortgage")
    page.fill("#deposit", "50000")
    seller.shot("2-agreement")
    page.click("input[type=submit][value='保存']")
    expect(seller.flash()).to_be_visible()
    sub = db.session.scalar(select(Subscription).where(Subscription.unit_id == unit.id))
    assert sub.status == "draft"

    # Sales control confirms from the row, after the confirmation question.
    control = browse("control")
    page = control.page
    page.goto("/admin/subscription/")
    control.step("confirm", page.locator("tr", has_text=sub.number))
    expect(control.flash()).to_contain_text("1")
    assert control.dialogs, "confirming asks first"

    # Finance takes the deposit from the deal's page.
    cashier = browse("cashier")
    page = cashier.page
    page.goto(f"/admin/subscription/details/?id={sub.id}")
    cashier.step("deposit")
    expect(page.locator("#amount")).to_have_value("50000.00")
    page.click("[data-step-submit]")
    expect(cashier.flash()).to_contain_text("SJ-XJ-")
    expect(page).to_have_url(re.compile(r"/admin/subscription/details/"))  # back where it began
    db.session.expire_all()
    assert db.session.get(Subscription, sub.id).status == "active"

    # The ladder's daily run, on the second day after the down payment fell due: a warning.
    from models.ladder import run_ladder
    down = db.session.scalar(select(Instalment).where(Instalment.subscription_id == sub.id,
                                                      Instalment.kind == "down_payment"))
    counts = run_ladder(db.session, today=down.due_on + dt.timedelta(days=2))
    assert counts["warning"] == 1

    # The agent asks for ten more days on the line; the manager approves.
    page = seller.page
    page.goto("/admin/instalment/")
    seller.step("extension", page.locator("tr", has_text="首期款"))
    page.fill("#days", "10")
    page.fill("#reason", "客户公积金提取需时")
    page.click("[data-step-submit]")
    expect(seller.flash()).to_contain_text("1")
    page = manager.page
    page.goto("/admin/extension/")
    manager.step("approve", page.locator("tr", has_text="客户公积金提取需时"))
    expect(manager.flash()).to_contain_text("1")
    db.session.expire_all()
    assert db.session.get(Instalment, down.id).extended_due_on == down.due_on + dt.timedelta(days=10)

    # Finance records the down payment.
    page = cashier.page
    page.goto(f"/admin/subscription/details/?id={sub.id}")
    cashier.step("payment")
    page.fill("#amount", f"{down.amount_due:.2f}")
    page.click("[data-step-submit]")
    expect(cashier.flash()).to_contain_text("SJ-XJ-")

    # The agent books the signing; the lawyer enters the signed contract.
    page = seller.page
    page.goto(f"/admin/subscription/details/?id={sub.id}")
    page.click("button[data-document=subscription_agreement]")
    expect(seller.flash()).to_be_visible()
    page.goto(f"/admin/subscription/details/?id={sub.id}")
    seller.step("book")
    page.fill("#appointment_at", f"{today + dt.timedelta(days=1):%Y-%m-%d}T10:00")
    page.click("[data-step-submit]")
    expect(seller.flash()).to_contain_text(f"{today + dt.timedelta(days=1):%Y-%m-%d} 10:00")
    lawyer = browse("wang")
    page = lawyer.page
    page.goto("/admin/contract/")
    lawyer.step("sign", page.locator("tr", has_text=sub.number))
    page.fill("#number", "HT-2026-0001")
    page.click("[data-step-submit]")
    expect(lawyer.flash()).to_contain_text("HT-2026-0001")
    db.session.expire_all()
    assert db.session.get(Subscription, sub.id).status == "contracted"
    assert db.session.get(Unit, unit.id).status == "signed"

    # The deal's page tells the story in order, in Chinese.
    page = manager.page
    page.goto(f"/admin/subscription/details/?id={sub.id}")
    steps = page.locator("#timeline li.timeline-step")
    story = [f'{s.get_attribute("data-entity")}.{s.get_attribute("data-action")}' for s in steps.all()]
    wanted = ["subscription.subscribe", "instalment.generate_plan", "subscription.confirm",
              "payment.payment", "subscription.deposit", "overdue_event.warning",
              "extension.request_extension", "extension.approve_extension", "payment.payment",
              "document.request_document", "contract.book_signing", "contract.sign_contract",
              "contract_step.sign_contract"]
    remaining = iter(story)
    assert all(step in remaining for step in wanted), "\n".join(story)  # in this order, others between
    timeline = page.locator("#timeline").inner_text()
    appointment = f"预约 {today + dt.timedelta(days=1):%Y-%m-%d} 10:00"  # office time, as entered
    for words in ("认购单创建", "销控审核通过", "定金到账", "逾期警告", "申请延期", "延期已批准",
                  "预约签约", appointment, "签约完成", "HT-2026-0001", "客户公积金提取需时"):
        assert words in timeline, words
    expect(page.locator("td .status-contracted")).to_be_visible()
    manager.shot("3-deal-history")
    page.goto(f"/admin/board/?project={project.id}")
    assert "status-signed" in page.locator(f"td.cell[data-unit='{unit.id}']").get_attribute("class")
    manager.shot("4-board-after")


def test_every_page_of_the_menu_reads_in_chinese(browse, make_user, db):
    """Each page the administrator's menu opens, with a deal in it, shows no English words."""
    today = office_today()
    f.active_deal(db.session, make_user, price="1000000", payment_method="commercial_mortgage",
                  today=today, staff={"control": ("sales_control", None), "finance": ("finance", None),
                                      "boss": ("admin", "boss")})
    window = browse("boss")
    page = window.page
    links = page.locator("#admin-navbar-collapse .dropdown-menu a")
    hrefs = sorted({links.nth(i).get_attribute("href") for i in range(links.count())})
    assert len(hrefs) > 25
    # Every English word on these pages must be data: a person's name, a payment method's code,
    # a file format, the language switch.
    data = {u.username for u in db.session.scalars(select(User))} | {
        u.display_name for u in db.session.scalars(select(User))} | set(db.session.scalars(
            select(PaymentMethodTemplate.code)))
    allowed = {w for item in data for w in re.findall(r"[A-Za-z]+", item)} | {
        "English", "PDF", "CSV", "XLSX", "POS", "SHA"}
    english = {}
    for href in hrefs:
        response = page.goto(href)
        assert response.status == 200, href
        assert page.locator("html").get_attribute("lang") == "zh-CN", href
        found = set(re.findall(r"[A-Za-z]{3,}", page.locator("body").inner_text())) - allowed
        if found:
            english[href] = sorted(found)
    assert english == {}, repr(english)


def test_flask_admins_menus_work_under_the_content_security_policy(browse, make_user, db):
    """Bulk actions, filters and the delete confirmation, rewired without inline handlers."""
    project, building, units = _project_with_units(db, ("available", "available"))
    make_user("sales_control", username="control")
    window = browse("control")
    page = window.page
    response = page.goto("/admin/unit/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self' 'nonce-" in policy and "frame-ancestors 'none'" in policy
    # A bulk action from the "selected" menu, with its confirmation question.
    page.check(f"input.action-checkbox[value='{units[0].id}']")
    page.click("a.dropdown-toggle:has-text('选中的')")
    page.click("a[data-bulk-action=withhold]")
    expect(window.flash()).to_contain_text("1")
    assert window.dialogs == ["确定将所选房源设为不可售吗？"], window.dialogs
    db.session.expire_all()
    assert db.session.get(Unit, units[0].id).status == "withheld"
    # A filter is added from the menu (once the page's scripts are in: the "load" event).
    page.wait_for_load_state("load")
    page.click("a.dropdown-toggle:has-text('添加筛选器')")
    page.click("a.filter:has-text('状态')")
    expect(page.locator("#filter_form .filter-op").first).to_be_visible()
    # Deleting asks first; answered "cancel", nothing is deleted.
    page.goto("/admin/unit/")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.remove_listener("dialog", window._answer)
    page.locator(f"tr:has(input[value='{units[1].id}']) button[title]").filter(
        has=page.locator(".fa-trash")).click()
    page.wait_for_timeout(300)
    db.session.expire_all()
    assert db.session.get(Unit, units[1].id) is not None
    window.shot("csp-menus")
