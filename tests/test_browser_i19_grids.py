"""Issue 19, item 8 (and the grids of items 6, 7 and 11): at 1400 px, the width staff work at,
every column of the wide grids is on the screen — none cut off behind the table's own scroll bar
at the bottom of a long page. Screenshots under test-artifacts/screenshots/<pass>/."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from models.base import office_today

from . import factories as f
from .test_browser import browser, live_server, browse, Session  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

# Long but real values: a bank's full branch name, Chinese display names, contract numbers.
BANK = "中国建设银行股份有限公司长沙湘江支行"


def _office(db, make_user):
    """A project with deals in every state a wide grid shows: contracts signed and booked, a
    price below list waiting for the VP, payments and plan lines, a conflict."""
    from models import Extension, LeadConflict, PriceApproval
    today = office_today()
    project = f.project(db.session, code="XJ", name="湘江壹号")
    building = f.building(db.session, project, name="12栋", floors=33)
    agent = make_user("agent", username="li")
    agent.display_name = "李明轩"
    lawyer = make_user("lawyer", username="wanglawyer")
    lawyer.display_name = "王律师"
    finance = make_user("finance", username="cashier")
    finance.display_name = "财务周晓梅"
    for role, name in (("sales_manager", "boss"), ("vp", "vp"), ("sales_control", "control"),
                       ("agent", "zhang")):
        make_user(role, username=name)
    for n in range(8):
        unit = f.unit(db.session, building, number=f"{2301 + n}", floor=23, position=n + 1)
        lead = f.lead(db.session, owner=agent, project_=project, name=f"欧阳晓{n}", phone=f"1380013{n:04d}")
        status = ("contracted", "active", "draft", "confirmed")[n % 4]
        sub = f.subscription(db.session, agent, lead_=lead, unit_=unit,
                             number=f"RG-XJ-2026-{n + 1:06d}", customer_name=f"欧阳晓{n}",
                             payment_method=("commercial_mortgage", "instalments")[n % 2])
        line = f.instalment(db.session, sub, seq=1, kind="down_payment", amount_due=Decimal("450000.00"),
                            due_on=today + dt.timedelta(days=15))
        f.instalment(db.session, sub, seq=2, kind="commercial_loan", amount_due=Decimal("1050000.00"),
                     due_on=today + dt.timedelta(days=60))
        sub.status = status  # live after its plan is made (the guard, R-CHG-2)
        db.session.flush()
        f.payment(db.session, line, finance, amount=Decimal("100000.00"), bank_ref=f"CCB2026112600{n:04d}",
                  receipt_no=f"SJ-XJ-2026-{n + 1:06d}")
        f.contract(db.session, sub, number=f"HT-XJ-2026-{n + 1:06d}" if n % 2 == 0 else None,
                   status="signed" if n % 2 == 0 else "booked", lawyer=lawyer,
                   appointment_at=dt.datetime(2026, 11, 20, 7, 30), signing_due_on=today + dt.timedelta(days=30),
                   signed_on=today if n % 2 == 0 else None, bank=BANK)
        if status == "draft":
            db.session.add(PriceApproval(subscription_id=sub.id, list_price=unit.list_price,
                                         price=unit.list_price - Decimal("88888.00"), reason="老客户介绍的朋友，一次性付款",
                                         requested_by_id=agent.id))
            db.session.add(Extension(subscription_id=sub.id, instalment_id=line.id, days=10,
                                     reason="客户年底资金周转", requested_by_id=agent.id))
        db.session.add(LeadConflict(lead_id=lead.id, attempted_by_id=agent.id, attempted_name=f"欧阳先生{n}"))
    db.session.commit()


# (who, grid): each role that reads the grid with its own buttons on the rows
WIDE_GRIDS = [
    ("wanglawyer", "contract"), ("boss", "contract"), ("li", "contract"),
    ("control", "subscription"), ("li", "subscription"), ("cashier", "subscription"), ("boss", "subscription"),
    ("cashier", "payment"), ("boss", "payment"),
    ("li", "instalment"), ("cashier", "instalment"), ("boss", "instalment"),
    ("vp", "price_approval"), ("boss", "lead_conflict"), ("vp", "extension"),
]


def test_issue19_8_at_1400_px_every_column_of_the_wide_grids_is_on_the_screen(browse, make_user, db):
    """The last column's header (the lawyer's on the contract grid) ends within the 1400 px
    window and the table needs no sideways scrolling; the contract grid shows customer and unit."""
    _office(db, make_user)
    windows: dict[str, Session] = {}
    measured = {}
    for who, grid in WIDE_GRIDS:
        window = windows.get(who) or windows.setdefault(who, browse(who))
        page = window.page
        page.goto(f"/admin/{grid}/")
        width = page.evaluate("document.documentElement.clientWidth")
        last = page.locator("table.model-list thead th").last
        box = last.bounding_box()
        scroll = page.evaluate("(() => { const t = document.querySelector('table.model-list');"
                               " const c = t.parentElement; return [t.scrollWidth, c.clientWidth]; })()")
        measured[(who, grid)] = (round(box["x"] + box["width"]), width, scroll)
        window.shot(f"{grid}-{who}")
        if grid == "contract":
            headers = [t.strip() for t in page.locator("table.model-list thead th").all_inner_texts()]
            assert {"客户", "房源", "律师"} <= set(headers) and headers[-1] == "律师"
            assert page.locator("table.model-list td.col-unit", has_text="12栋-2301").count() == 1
            lawyer = page.locator("table.model-list td.col-lawyer").first
            assert lawyer.is_visible() and lawyer.bounding_box()["x"] + lawyer.bounding_box()["width"] <= width
    print(measured)
    cut = {key: m for key, m in measured.items() if m[0] > m[1] or m[2][0] > m[2][1]}
    assert not cut, f"cut off at 1400 px (right edge, window, [table, container]): {cut}"
