"""Hostile input in every text field a person types into (issue 10): stored as typed (NUL bytes
dropped), shown escaped in grids and detail pages, neutralised in exports, printed literally in
PDFs; what does not fit gets a clear message, never a crash."""
from __future__ import annotations

import re
import subprocess
from decimal import Decimal

import pytest
from markupsafe import escape
from sqlalchemy import select

from models import CustomerQuestion, FollowUp, Lead
from models.base import office_today
from tests import factories as f
from tests.conftest import Auth, submission_key
from models.submissions import new_key

HOSTILE = {
    "script": "<script>alert(1)</script>",
    "attribute": '"><img src=x onerror=alert(1)>',
    "template": "{{7*7}}{% raw %}",
    "formula": '=HYPERLINK("http://evil.example","点我")',
    "emoji": "😀🏠👨‍👩‍👧",
    "rare_cjk": "𠀀堃喆𪚥",
    "nul": "王\x00五",
    "long": "长" * 10_000,
}
STORED = {key: value.replace("\x00", "") for key, value in HOSTILE.items()}
DANGEROUS = {"script": "<script>alert(1)</script>", "attribute": "<img src=x onerror"}

# (grid, form field, other fields, how to find the row, the column's width or None for free text)
FIELDS = [
    ("lead", "name", {"phone": "13900000001", "source": "walk_in"}, Lead, 100),
    ("lead", "address", {"name": "客户甲", "phone": "13900000002", "source": "walk_in"}, Lead, 200),
    ("lead", "needs", {"name": "客户乙", "phone": "13900000003", "source": "walk_in"}, Lead, None),
    ("lead", "notes", {"name": "客户丙", "phone": "13900000004", "source": "walk_in"}, Lead, None),
    ("follow_up", "content", {"channel": "phone"}, FollowUp, None),
    ("follow_up", "outcome", {"channel": "phone", "content": "回访"}, FollowUp, None),
    ("customer_question", "question", {}, CustomerQuestion, None),
]


@pytest.fixture
def office(db, make_user):
    project = f.project(db.session, code="XJ", name="湘江壹号")
    agent = make_user("agent", username="li")
    lead = f.lead(db.session, owner=agent, project_=project, name="老客户")
    make_user("sales_manager", username="boss")
    db.session.commit()
    return {"project": project, "agent": agent, "lead": lead}


def _form(grid, field, value, others, office, token):
    data = {"csrf_token": token, field: value, **others}
    if grid in ("lead", "customer_question"):
        data["project"] = str(office["project"].id)
    if grid == "follow_up":
        data["lead"] = str(office["lead"].id)
    return data


def _phone(grid, field, others, n):
    return {**others, "phone": f"139{n:08d}"} if "phone" in others else others


def _page_is_safe(html: str, key: str) -> None:
    if key in DANGEROUS:
        assert DANGEROUS[key] not in html, f"{key} shown unescaped"


@pytest.mark.parametrize("key", list(HOSTILE))
def test_hostile_text_in_every_field_is_stored_shown_escaped_and_exported_safely(client, db, office, key):
    value = HOSTILE[key]
    auth = Auth(client)
    auth.login("li")
    outcomes = []
    for n, (grid, field, others, model, width) in enumerate(FIELDS):
        token = auth.csrf(f"/admin/{grid}/new/")
        data = _form(grid, field, value, _phone(grid, field, others, n), office, token)
        form = client.get(f"/admin/{grid}/new/").get_data(as_text=True)
        if 'name="submission_key"' in form:  # a one-time key, sent back as the browser does
            data["submission_key"] = submission_key(form)
        response = client.post(f"/admin/{grid}/new/", data=data, follow_redirects=True)
        html = response.get_data(as_text=True)
        assert response.status_code == 200, (grid, field, key)
        assert "Traceback" not in html and "psycopg" not in html and "sqlite3" not in html
        _page_is_safe(html, key)
        row = db.session.scalar(select(model).where(getattr(model, field) == STORED[key]))
        if width is not None and len(STORED[key]) > width:
            # Too long for its column: refused with a message in Chinese, nothing stored.
            assert row is None and re.search(r"不能超过|长度|过长", html), (grid, field)
            outcomes.append("refused")
            continue
        if row is None:  # refused by a rule (a question of emoji only has no words): it says so
            assert re.search(r'class="alert alert-danger', html), (grid, field, key)
            outcomes.append("refused")
            continue
        # Stored exactly as typed, NUL aside.
        outcomes.append("stored")
        for path in (f"/admin/{grid}/", f"/admin/{grid}/details/?id={row.id}"):
            page = client.get(path)
            assert page.status_code == 200
            shown = page.get_data(as_text=True)
            _page_is_safe(shown, key)
            if key in ("script", "attribute", "template", "emoji", "rare_cjk", "nul"):
                assert str(escape(STORED[key])) in shown, (path, key)
    # The grid's export: the text is there, a formula is defused with a leading apostrophe.
    auth.logout()
    auth.login("boss")
    export = client.get("/admin/lead/export/csv/").get_data(as_text=True)
    if key == "formula":
        assert "'=HYPERLINK" in export and not re.search(r'(^|,)"?=HYPERLINK', export, re.M)
    elif key in ("emoji", "rare_cjk", "script", "template"):
        assert STORED[key] in export
    assert outcomes.count("stored") >= 4, outcomes


@pytest.mark.parametrize("key", list(HOSTILE))
def test_a_search_with_hostile_text_answers_and_escapes_it(client, office, key):
    Auth(client).login("boss")
    for grid in ("lead", "subscription", "payment", "instalment", "contract"):
        response = client.get(f"/admin/{grid}/", query_string={"search": HOSTILE[key][:500]})
        assert response.status_code == 200, (grid, key)
        _page_is_safe(response.get_data(as_text=True), key)


def test_hostile_names_and_addresses_print_literally_in_the_pdf_and_fetch_nothing(app, db, make_user, tmp_path):
    today = office_today()
    deal = f.active_deal(db.session, make_user, price="1000000", payment_method="one_off", today=today,
                         staff={"control": ("sales_control", None), "finance": ("finance", None),
                                "manager": ("sales_manager", None)})
    sub = f.rename_customer(db.session, deal, "<script>alert(1)</script>{{7*7}}𠀀")  # approved (R-CHG-3)
    sub.customer_address = '"><img src="http://evil.example/x.png">长沙😀'
    db.session.commit()
    out = tmp_path / "agreement.pdf"
    result = app.test_cli_runner().invoke(args=["document", "subscription_agreement", str(sub.id),
                                                "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True, check=True).stdout
    flat = re.sub(r"\s+", "", text)  # a table cell wraps long text over lines
    assert "<script>alert(1)</script>{{7*7}}𠀀" in flat  # printed as text, not run, not evaluated
    # Two table columns interleave in pdftotext's reading order: the address in its two pieces.
    assert '"><imgsrc="http://' in flat and 'evil.example/x.png">长沙😀' in flat  # shown, never fetched


@pytest.mark.parametrize("amount, message", [
    ("1e15", "数字"), ("1000000000000000", "金额过大"), ("-5", "大于零"), ("abc", "数字"), ("12.345", "小数"),
    ("1_000", "数字"), ("NaN", "数字"), ("Infinity", "数字"), ("١٠٠٠", "数字"), ("1,00", "数字")])
def test_out_of_range_amounts_get_a_clear_message(client, db, make_user, amount, message):
    today = office_today()
    deal = f.active_deal(db.session, make_user, price="1000000", payment_method="one_off", today=today,
                         staff={"control": ("sales_control", None), "finance": ("finance", "cashier")})
    auth = Auth(client)
    auth.login("cashier")
    response = client.post("/admin/subscription/payment/", data={
        "csrf_token": auth.csrf(), "subscription_id": str(deal["sub"].id), "amount": amount,
        "paid_on": today.isoformat(), "channel": "pos", "submission_key": new_key()}, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Traceback" not in html
    alerts = re.findall(r'class="(?:alert alert-danger|text-danger)[^"]*">([\s\S]*?)</div>', html)
    errors = " ".join(re.sub(r"<[^>]+>|&times;|\s+", " ", alert) for alert in alerts)
    assert errors.strip() and message in errors, errors


@pytest.mark.parametrize("field, value", [("floors", "99999999999999999999"), ("floors", "-3"),
                                          ("name", "栋" * 5000)])
def test_out_of_range_numbers_and_texts_in_a_grid_form_get_a_clear_message(client, db, login_as, field, value):
    project = f.project(db.session, code="XJ")
    db.session.commit()
    auth = Auth(client)
    login_as("admin")
    data = {"csrf_token": auth.csrf("/admin/building/new/"), "project": str(project.id),
            "name": "1栋", "floors": "20", field: value}
    response = client.post("/admin/building/new/", data=data, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Traceback" not in html and "psycopg" not in html
    assert re.search(r"alert-danger|help-block|invalid-feedback|text-danger", html)


# --- issue 18 item 5: parameters out of range give a clear 400/404, never a 500 -----------------

HUGE = 10 ** 30


def _grid_views(app):
    from flask_admin.contrib.sqla import ModelView

    admin = app.extensions["admin"][0]
    return [view for view in admin._views if isinstance(view, ModelView)]


def _int_rules(app):
    """Every rule with an <int:...> part, with each such part set to a huge number."""
    from werkzeug.routing import IntegerConverter

    for rule in app.url_map.iter_rules():
        ints = [name for name, conv in rule._converters.items() if isinstance(conv, IntegerConverter)]
        if ints:
            path = rule.rule
            for name in ints:
                path = re.sub(rf"<int:{name}>", str(HUGE), path)
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                yield method, path


def _no_500(client, method, url, data=None):
    response = client.open(url, method=method, data=data)
    html = response.get_data(as_text=True)
    assert response.status_code < 500, f"{method} {url} -> {response.status_code}"
    assert "Traceback" not in html and "Internal Server Error" not in html, url
    return response


def test_issue18_bad_page_sort_and_ids_on_every_grid_and_route_never_give_a_500(app, client, db, make_user):
    from models.permissions import ROLES

    make_user(*ROLES, username="everyone")
    auth = Auth(client)
    assert auth.login("everyone").status_code == 302
    token = auth.csrf()
    grids = _grid_views(app)
    assert len(grids) > 20  # every grid of the admin, found by walking it
    walked = 0
    for view in grids:
        index = f"/admin/{view.endpoint}/"
        for page in ("-1", "abc", str(HUGE)):
            _no_500(client, "GET", f"{index}?page={page}")
        _no_500(client, "GET", f"{index}?sort=999")
        _no_500(client, "GET", f"{index}?sort=-1&desc=abc&page_size=-5")
        for idx, flt in enumerate(view._filters or []):  # every filter, given a number past 64 bits
            _no_500(client, "GET", f"{index}?flt0_{view.get_filter_arg(idx, flt)}={HUGE}")
        _no_500(client, "GET", f"{index}new/?unit_id={HUGE}&lead_id={HUGE}")
        for path in ("details/", "edit/"):
            for pk in (str(HUGE), "-1"):
                response = _no_500(client, "GET", f"{index}{path}?id={pk}")
                assert response.status_code in (302, 400, 403, 404), (index, path, pk, response.status_code)
        walked += 1
    for view in app.extensions["admin"][0]._views:  # the other pages, with huge numbers as every argument
        if view not in grids and view.endpoint != "admin":
            url = view.get_url(f"{view.endpoint}.index")
            _no_500(client, "GET", f"{url}?building={HUGE}&project={HUGE}&month={HUGE}&id={HUGE}")
    routes = list(_int_rules(app))
    assert len(routes) >= 5
    for method, path in routes:
        _no_500(client, method, path, data={"csrf_token": token} if method == "POST" else None)
    assert walked == len(grids)


@pytest.mark.parametrize("value", ["NaN", "inf", "-Infinity", "sNaN", "1e400", "123456789"])
def test_issue18_nan_infinite_and_too_large_numbers_in_a_grid_form_are_refused_under_the_field(
        client, db, login_as, value):
    from models import Unit

    unit = f.unit(db.session, area=Decimal("120.00"))
    db.session.commit()
    login_as("admin")
    url = f"/admin/unit/edit/?id={unit.id}"
    data = {"csrf_token": Auth(client).csrf(url), "building": str(unit.building_id), "floor": "3",
            "position": "1", "number": unit.number, "layout": unit.layout, "area": value}
    response = client.post(url, data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Traceback" not in html  # the form again, not a redirect
    assert re.search(r"invalid-feedback|help-block", html) and ("数字" in html or "必须小于" in html)
    db.session.expire_all()
    assert db.session.get(Unit, unit.id).area == Decimal("120.00")  # nothing stored


def test_issue18_a_huge_agent_id_in_the_targets_form_is_refused_clearly(client, db, make_user):
    make_user("sales_manager", username="boss")
    auth = Auth(client)
    auth.login("boss")
    token = auth.csrf("/admin/sales_target/")
    response = client.post("/admin/sales_target/save", data={
        "csrf_token": token, "month": office_today().strftime("%Y-%m"), f"subscriptions_{HUGE}": "1",
        f"amount_{HUGE}": "1", f"collections_{HUGE}": "1"}, follow_redirects=True)
    assert response.status_code == 200 and "alert-danger" in response.get_data(as_text=True)
