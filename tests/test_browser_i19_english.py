"""Issue 19, items 17 and 18, in Chromium: English that is complete, Chinese that stays Chinese,
and a first visit in the browser's language.

With deals, notifications of several kinds (written by the ladder, the manager, the system),
background exports and a document batch in the data, every page of every role's menu (plus the
notifications, exports and document centre, and a deal's history) is read in English and must
show no Chinese character outside the data the test created (names, units, projects, numbers);
the notifications, exports and documents' screens are read in Chinese and must show no English
outside data. Screenshots: test-artifacts/screenshots/<pass>/test_issue19_*.png.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from models import (Building, Document, Export, Lead, PaymentMethodTemplate, Project, Subscription, Unit,
                    User, db as _db)
from models.base import office_today

from . import factories as f
from .test_browser import Session, browser, browse, live_server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

ROLES = ("admin", "sales_manager", "agent", "sales_control", "finance", "lawyer", "archive", "vp")
RULE_ID = re.compile(r"\bR-[A-Z]+-\d+")
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]+")
# The pages the issue names besides the menus: notifications, exports, the document centre.
EXTRA_PAGES = ("/admin/", "/admin/notification/", "/admin/export/", "/admin/finance_export/",
               "/admin/document/", "/admin/document_batch/")


@contextlib.contextmanager
def _in(app, lang):
    """Work done from a page in `lang` (as the writer saw it)."""
    with app.app_context(), app.test_request_context(headers={"Cookie": f"lang={lang}"}):
        yield


def _office(app, db, make_user, writer_lang):
    """A working office: one of each role, an active deal whose payment is at the lawyer's letter
    day, a deal the ladder forfeits today (the agent, the manager and finance are told), leads
    assigned by the manager, a batch of receipts and a finance export — all written from pages
    in `writer_lang`."""
    from jobs.exports import run_export
    from models.deals import confirm_subscription, subscribe
    from models.payments import record_deposit
    from models.documents import request_documents
    from models.exports import request_export
    from models.ladder import run_ladder
    from models.leads import assign_leads
    today = office_today()
    deal = f.active_deal(db.session, make_user, price="1000000.00", payment_method="instalments",
                         today=today - dt.timedelta(days=25),  # down payment due 10 days ago
                         staff={"control": ("sales_control", "control"), "finance": ("finance", "cashier"),
                                "manager": ("sales_manager", "manager"), "lawyer": ("lawyer", "lawyer"),
                                "archive": ("archive", "archivist"), "vp": ("vp", "vp"),
                                "boss": ("admin", "boss")})
    ids = {key: person.id for key, person in deal.items() if isinstance(person, User)}
    unit2 = f.unit(db.session, deal["unit"].building, list_price=deal["unit"].list_price)
    lead2 = f.lead(db.session, owner=deal["agent"], project_=deal["project"], name="赵敏")
    pooled = [f.lead(db.session, owner=None, registered_by=deal["manager"], project_=deal["project"], name=name)
              for name in ("钱多多", "孙悟")]
    db.session.commit()
    unit2_id, lead2_id, pooled_ids = unit2.id, lead2.id, [lead.id for lead in pooled]
    with _in(app, writer_lang):
        session = _db.session
        people = {key: session.get(User, user_id) for key, user_id in ids.items()}
        forfeited_on = today - dt.timedelta(days=40)  # its down payment 25 days overdue: forfeited today
        sub2 = subscribe(session, people["agent"], unit_id=unit2_id, lead_id=lead2_id, payment_method="instalments",
                         deposit="50000", id_number=f.VALID_ID_NUMBER, address="长沙", subscribed_on=forfeited_on,
                         today=forfeited_on)
        confirm_subscription(session, people["control"], sub2.id)
        record_deposit(session, people["finance"], sub2.id, amount="50000", paid_on=forfeited_on, channel="pos",
                       today=forfeited_on)
        session.commit()
        assign_leads(session, people["manager"], pooled_ids, people["agent"].id)
        session.commit()
        counts = run_ladder(session, today)
        assert counts["forfeit"] == 1 and counts["lawyer_letter"] >= 1, counts
        from models import Payment
        receipts = session.scalars(select(Payment.id)).all()
        batch, _ = request_documents(session, people["finance"], "receipt", receipts)
        assert batch is not None
        session.commit()
        export_id = request_export(session, people["finance"], "payments", "csv", {}, 2).id
        session.commit()
    run_export(export_id)  # by a worker: no request, the requester's language
    return deal


def _data_texts(db) -> list[str]:
    """Every text the test put in the data (names, units, numbers, titles, file names): what may
    be in either language on any page. Longest first, so a name is removed before its parts."""
    texts = set()
    for columns in ((Project.name, Project.developer, Project.address, Project.city, Project.signing_checklist),
                    (Building.name,), (Unit.number, Unit.layout), (Lead.name, Lead.address, Lead.notes),
                    (Subscription.customer_name, Subscription.number),
                    (User.display_name, User.username), (PaymentMethodTemplate.name,), (Document.title,),
                    (Export.file,)):
        for row in db.session.execute(select(*columns)):
            for value in row:
                if value:
                    texts.add(str(value))
                    texts.update(line for line in str(value).splitlines() if line.strip())
    return sorted(texts, key=len, reverse=True) + ["中文"]  # the language switch names itself


def _without(text: str, data: list[str]) -> str:
    for item in data:
        text = text.replace(item, " ")
    return text


def _menu_links(page) -> list[str]:
    links = page.locator("#admin-navbar-collapse .dropdown-menu a, #admin-navbar-collapse a.nav-link")
    hrefs = {links.nth(i).get_attribute("href") for i in range(links.count())}
    return sorted(h for h in hrefs if h and h.startswith("/admin/"))


def test_issue19_17_in_english_no_page_of_any_role_shows_chinese_outside_data(app, db, make_user, browse):
    deal = _office(app, db, make_user, writer_lang="zh_Hans_CN")  # written by people working in Chinese
    db.session.expire_all()
    data = _data_texts(db)
    usernames = {"admin": "boss", "sales_manager": "manager", "agent": "li", "sales_control": "control",
                 "finance": "cashier", "lawyer": "lawyer", "archive": "archivist", "vp": "vp"}
    details = [f"/admin/subscription/details/?id={deal['sub'].id}", f"/admin/lead/details/?id={deal['lead'].id}"]
    chinese: dict[str, list[str]] = {}
    visited = 0
    for role in ROLES:
        window = browse(usernames[role], "en-US")
        page = window.page
        assert page.locator("html").get_attribute("lang") == "en"
        hrefs = _menu_links(page)
        assert len(hrefs) > 3, (role, hrefs)
        extra = list(EXTRA_PAGES) + (details if role in ("admin", "agent", "sales_manager") else [])
        for href in dict.fromkeys(hrefs + extra):
            response = page.goto(href)
            if response.status == 403 and href in extra:
                continue  # a page the role may not open: its menu does not offer it either
            assert response.status == 200, (role, href, response.status)
            visited += 1
            left = CJK.findall(_without(page.locator("body").inner_text(), data))
            if left:
                chinese[f"{role} {href}"] = sorted(set(left))
            if href in ("/admin/", "/admin/notification/", "/admin/export/", "/admin/document_batch/") or \
                    href in details:
                window.shot(f"en-{role}-{href.strip('/').replace('/', '_').split('?')[0] or 'home'}")
        window.context.close()
    assert visited > 100
    assert chinese == {}, repr(chinese)


def test_issue19_17_in_chinese_notifications_exports_and_documents_show_no_english_outside_data(
        app, db, make_user, browse):
    deal = _office(app, db, make_user, writer_lang="en")  # written by people working in English
    db.session.expire_all()
    data = _data_texts(db)
    allowed = {w for item in data for w in re.findall(r"[A-Za-z]+", item)} | {
        "English", "PDF", "CSV", "XLSX", "POS", "SHA", "csv", "xlsx", "zip"} | set(db.session.scalars(
            select(PaymentMethodTemplate.code)))
    english = {}
    pages = list(EXTRA_PAGES) + [f"/admin/subscription/details/?id={deal['sub'].id}"]
    for username in ("li", "manager", "cashier", "lawyer", "boss"):
        window = browse(username, "zh-CN")
        page = window.page
        for href in pages:
            response = page.goto(href)
            if response.status == 403:
                continue
            assert response.status == 200, (username, href)
            assert page.locator("html").get_attribute("lang") == "zh-CN"
            text = RULE_ID.sub(" ", page.locator("body").inner_text())  # rule ids (R-CON-5) are codes
            found = set(re.findall(r"[A-Za-z]{3,}", text)) - allowed
            if found:
                english[f"{username} {href}"] = sorted(found)
            if href in ("/admin/", "/admin/notification/", "/admin/export/", "/admin/document_batch/"):
                window.shot(f"zh-{username}-{href.strip('/').replace('/', '_') or 'home'}")
        window.context.close()
    assert english == {}, repr(english)


def test_issue19_18_a_first_visit_from_an_english_browser_reads_english(browse, make_user, browser, live_server):  # noqa: F811
    make_user("agent", username="li")
    context = browser.new_context(base_url=live_server, locale="en-US")
    try:
        page = context.new_page()
        page.goto("/login")
        assert page.locator("html").get_attribute("lang") == "en"
        expect(page.locator("button.btn-primary[type=submit]")).to_contain_text("Sign in")
        assert not CJK.findall(_without(page.locator("body").inner_text(), ["中文"]))
        # The pick decides after: Chinese chosen on the page stays, whatever the browser asks.
        page.click("button[name=lang][value=zh_Hans_CN]")
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        page.goto("/login")
        assert page.locator("html").get_attribute("lang") == "zh-CN"
        page.screenshot(path=_shot_path("test_issue19_18_first_visit-after-pick"), full_page=True)
    finally:
        context.close()
    zh = browser.new_context(base_url=live_server, locale="zh-CN")
    try:
        page = zh.new_page()
        page.goto("/login")
        assert page.locator("html").get_attribute("lang") == "zh-CN"
    finally:
        zh.close()
    window = browse("li", "en-US")
    window.shot("home-en-us")
    assert window.page.locator("html").get_attribute("lang") == "en"


def _shot_path(name):
    from .test_browser import SHOTS
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS / f"{name}.png"
