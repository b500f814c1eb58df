"""Dashboards per role and monthly targets (R-ALL-3)."""
from __future__ import annotations

import datetime as dt
import io
import os
from decimal import Decimal

import openpyxl
import pytest
from sqlalchemy import select

from models import Audit, Instalment, SalesTarget
from models import reports as d
from models.base import office_today
from models.payments import record_payment
from models.reports import monthly_review
from models.targets import set_target
from tests.support.rules import raises_rule

TODAY = dt.date(2026, 11, 26)


@pytest.fixture
def deal(make_deal):
    return make_deal(price="1000000.00", method="one_off", today=TODAY,
                     staff={"control": ("sales_control", None), "finance": ("finance", "finance"),
                            "manager": ("sales_manager", "manager"), "lawyer": ("lawyer", "lawyer"),
                            "vp": ("vp", "vp"), "other": ("agent", "zhao")})


def test_overdue_ageing_puts_each_open_line_in_its_bucket(app, db, deal):
    balance = db.session.scalar(select(Instalment).where(Instalment.subscription_id == deal["sub"].id,
                                                         Instalment.kind == "balance"))
    for days, bucket in ((1, "1-7"), (7, "1-7"), (8, "8-14"), (14, "8-14"), (15, "15+"), (40, "15+")):
        ageing = {a["bucket"]: a for a in d.ageing(db.session, balance.due_on + dt.timedelta(days=days))}
        assert ageing[bucket]["count"] == 1 and ageing[bucket]["amount"] == Decimal("950000.00"), days
        assert sum(a["count"] for a in ageing.values()) == 1
    assert all(a["count"] == 0 for a in d.ageing(db.session, balance.due_on))  # due today: not overdue


def test_collection_rate_and_sell_through(app, db, deal):
    balance_due = db.session.scalar(select(Instalment.due_on).where(Instalment.kind == "balance"))
    assert d.collection(db.session, TODAY) == {"due": Decimal("50000.00"), "paid": Decimal("50000.00"),
                                               "rate": 100.0, "plan": Decimal("1000000.00"),
                                               "plan_paid": Decimal("50000.00"), "plan_rate": 5.0}
    later = d.collection(db.session, balance_due)
    assert later["due"] == Decimal("1000000.00") and later["rate"] == 5.0
    [project] = d.sell_through(db.session)
    assert project["units"] == 1 and project["sold"] == 1 and project["rate"] == 100.0


def test_each_role_sees_its_own_panel(app, db, deal, client, auth):
    record_payment(db.session, deal["finance"], deal["sub"].id, amount="1000", paid_on=dt.date.today(),
                   channel="cash", today=dt.date.today())
    db.session.commit()
    for username, shown, hidden in (("manager", "dash-manager", "dash-finance"),
                                    ("vp", "dash-manager", "dash-agent"),
                                    ("li", "dash-agent", "dash-manager"),
                                    ("finance", "dash-finance", "dash-manager"),
                                    ("lawyer", "dash-lawyer", "dash-finance")):
        auth.login(username)
        page = client.get("/admin/").get_data(as_text=True)
        assert f'id="{shown}"' in page and f'id="{hidden}"' not in page, username
        auth.logout()


def test_the_dashboard_links_only_to_pages_the_role_may_open(app, db, deal, client, auth):
    auth.login("vp")  # the VP sees the manager's figures but not the conflicts grid
    page = client.get("/admin/").get_data(as_text=True)
    assert "待处理撞单" in page and 'href="/admin/lead_conflict/"' not in page


def test_the_manager_sets_targets_and_sees_them_against_actuals(app, db, deal, client, auth):
    month = TODAY.strftime("%Y-%m")
    auth.login("manager")
    response = client.post("/admin/sales_target/save", data={
        "csrf_token": auth.csrf("/admin/sales_target/"), "month": month,
        f"subscriptions_{deal['agent'].id}": "2", f"amount_{deal['agent'].id}": "2,000,000",
        f"collections_{deal['agent'].id}": "100000", f"subscriptions_{deal['other'].id}": "1",
        f"amount_{deal['other'].id}": "", f"collections_{deal['other'].id}": "0"})
    assert response.status_code == 302
    target = db.session.scalar(select(SalesTarget).where(SalesTarget.agent_id == deal["agent"].id))
    assert (target.subscriptions, target.amount, target.collections) == (2, Decimal("2000000.00"),
                                                                         Decimal("100000.00"))
    row = {r["agent_id"]: r for r in d.targets_vs_actuals(db.session, month)}[deal["agent"].id]
    assert (row["subscriptions"], row["amount"], row["collections"]) == (1, Decimal("1000000.00"),
                                                                         Decimal("50000.00"))
    assert (row["subscriptions_rate"], row["amount_rate"], row["collections_rate"]) == (50.0, 50.0, 50.0)
    assert db.session.scalar(select(Audit.id).where(Audit.entity == "sales_target", Audit.action == "set_target"))
    page = client.get(f"/admin/sales_target/?month={month}").get_data(as_text=True)
    assert "50.0%" in page


@pytest.mark.parametrize("values, message", [
    ({"subscriptions": "-1"}, "100,000"), ({"subscriptions": "two"}, "整数"),
    ({"amount": "lots"}, "金额"), ({"collections": "-5"}, "负"), ({"amount": "1.005"}, "小数"),
])
def test_impossible_targets_are_refused_and_nothing_is_saved(app, db, deal, values, message):
    with raises_rule("R-ALL-3") as refused:
        set_target(db.session, deal["manager"], deal["agent"].id, "2026-11",
                   **{"subscriptions": "1", "amount": "1", "collections": "1", **values})
    from flask_babel import force_locale
    with force_locale("zh_Hans_CN"):
        assert message in str(refused.value)
    db.session.rollback()
    assert db.session.scalar(select(SalesTarget.id)) is None


def test_only_the_manager_sets_targets_and_only_for_agents(app, db, deal):
    with raises_rule("R-ALL-1"):
        set_target(db.session, deal["agent"], deal["agent"].id, "2026-11", subscriptions=1, amount=1, collections=1)
    with raises_rule("R-ALL-3"):
        set_target(db.session, deal["manager"], deal["finance"].id, "2026-11", subscriptions=1, amount=1,
                   collections=1)
    with raises_rule("R-ALL-3"):
        set_target(db.session, deal["manager"], deal["agent"].id, "2026-13", subscriptions=1, amount=1,
                   collections=1)


def test_the_monthly_review_downloads_as_xlsx_and_pdf(app, db, deal, client, auth, tmp_path):
    set_target(db.session, deal["manager"], deal["agent"].id, "2026-11", subscriptions=2, amount="2000000",
               collections="100000")
    db.session.commit()
    review = monthly_review(db.session, "2026-11")
    assert review["totals"]["subscriptions"] == 1 and review["totals"]["target_subscriptions"] == 2
    auth.login("vp")
    xlsx = client.get("/admin/sales_target/review.xlsx?month=2026-11")
    assert xlsx.status_code == 200
    rows = list(openpyxl.load_workbook(io.BytesIO(xlsx.data)).active.iter_rows(values_only=True))
    assert rows[2][0] == "置业顾问" and rows[-1][0] == "合计"
    li = [r for r in rows if r[0] == deal["agent"].display_name][0]
    assert li[1] == 2 and li[2] == 1 and li[3] == 50 and li[5] == 1000000
    pdf = client.get("/admin/sales_target/review.pdf?month=2026-11")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    import subprocess
    path = tmp_path / "review.pdf"
    path.write_bytes(pdf.data)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout
    assert "月度业绩回顾" in text and deal["agent"].display_name in text
    assert db.session.scalar(select(Audit.id).where(Audit.entity == "sales_target", Audit.action == "export"))
    auth.logout()
    auth.login("li")
    assert client.get("/admin/sales_target/review.xlsx?month=2026-11").status_code == 403


def test_the_dashboard_keeps_office_figures_for_a_minute_and_says_since_when(app, db, deal, client, auth):
    from models import reports as dashboard
    calls = []

    def compute():
        calls.append(1)
        return len(calls)
    assert dashboard.cached(("test", 1), compute)[0] == 1
    assert dashboard.cached(("test", 1), compute)[0] == 1  # kept
    assert dashboard.cached(("test", 1), compute, seconds=0)[0] == 2  # too old: computed again
    auth.login("manager")
    assert "dash-as-of" in client.get("/admin/").get_data(as_text=True)


@pytest.mark.postgres  # the shared figures live in Redis, which the PostgreSQL pass has
def test_every_web_worker_reads_the_office_figures_the_refresh_job_computed(app, db, deal, client, auth,
                                                                            monkeypatch):
    """The refresh job (every minute) computes the manager's and finance's panels into Redis; a
    page in any worker then shows them without computing: here, computing would fail."""
    from jobs.dashboards import refresh_dashboards
    from models import reports as dashboard
    assert os.environ.get("REDIS_URL")
    assert refresh_dashboards() == ["manager", "finance"]
    dashboard._cache.clear()  # another worker: nothing kept in its own memory

    def refuse(*args):
        raise AssertionError("computed in the request")
    monkeypatch.setitem(dashboard.OFFICE_PANELS, "manager", refuse)
    monkeypatch.setitem(dashboard.OFFICE_PANELS, "finance", refuse)
    auth.login("manager")
    page = client.get("/admin/")
    assert page.status_code == 200 and "dash-as-of" in page.get_data(as_text=True)


def test_without_the_shared_figures_a_page_computes_them_itself(app, db, deal, client, auth):
    """No refresh job has run (or Redis is away): the page computes and keeps the figures."""
    from models import reports as dashboard
    auth.login("manager")
    assert client.get("/admin/").status_code == 200
    assert ("manager", office_today()) in dashboard._cache


@pytest.mark.postgres  # the shared figures live in Redis, which the PostgreSQL pass has
def test_issue20_two_offices_sharing_a_redis_database_never_read_each_others_figures(app, db, deal, monkeypatch):
    """The figures kept in Redis are under the office's name (config.instance_name), as its
    queues are: another office on the same Redis database (another SALESDESK_INSTANCE) finds none
    of this office's panels, and its own stay its own."""
    import cache
    from models import reports as dashboard
    assert os.environ.get("REDIS_URL")
    today = office_today()
    kept = cache.current()
    monkeypatch.setitem(app.config, "SALESDESK_INSTANCE", "office-a")
    dashboard.refresh_office_panels(db.session, today)
    assert kept.get_shared(dashboard.SHARED_PREFIX + repr(("manager", today))) is not None
    monkeypatch.setitem(app.config, "SALESDESK_INSTANCE", "office-b")
    assert kept.get_shared(dashboard.SHARED_PREFIX + repr(("manager", today))) is None
    kept.put_shared("probe", "b's", 60)
    monkeypatch.setitem(app.config, "SALESDESK_INSTANCE", "office-a")
    assert kept.get_shared("probe") is None
    assert kept.redis().get("office-b:probe") is not None  # where office b's value is
    kept.redis().delete("office-a:" + dashboard.SHARED_PREFIX + repr(("manager", today)),
                        "office-a:" + dashboard.SHARED_PREFIX + repr(("finance", today)), "office-b:probe")
