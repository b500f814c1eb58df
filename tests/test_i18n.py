"""Chinese first, English on request and remembered; Flask-Admin speaks Chinese too."""
from __future__ import annotations

import re

from tests.conftest import csrf_token


def test_pages_are_chinese_by_default(client, login_as):
    page = client.get("/login").get_data(as_text=True)
    assert '<html lang="zh-CN">' in page and "登录" in page and "用户名" in page
    login_as("sales_manager")
    admin = client.get("/admin/lead/").get_data(as_text=True)
    assert "客户登记" in admin  # our menu label
    assert "新建" in admin or "创建" in admin  # Flask-Admin's own strings, from its catalog
    assert "电话" in admin  # our column label


def test_english_is_selectable_and_remembered_across_logins(client, auth, make_user):
    make_user("agent", username="li")
    token = csrf_token(client)
    response = client.post("/language", data={"lang": "en", "next": "/login", "csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert "Sign in" in client.get("/login").get_data(as_text=True)
    auth.login("li")
    page = client.get("/admin/lead/").get_data(as_text=True)
    assert "Customers" in page and "客户登记" not in page
    auth.logout()
    assert "Sign in" in client.get("/login").get_data(as_text=True)


def test_switching_language_needs_a_csrf_token(client):
    client.post("/language", data={"lang": "en", "next": "/login"})
    assert client.get_cookie("lang", domain="localhost") is None


def test_an_unknown_language_keeps_chinese(client):
    token = csrf_token(client)
    client.post("/language", data={"lang": "xx", "next": "//evil.example", "csrf_token": token})
    assert "登录" in client.get("/login").get_data(as_text=True)


def test_status_values_show_translated_labels(client, login_as, db):
    from tests import factories as f
    login_as("sales_control")
    f.unit(db.session, status="withheld")
    db.session.commit()
    page = client.get("/admin/unit/").get_data(as_text=True)
    assert "不可售" in page


def test_rule_violations_read_in_the_users_language(app):
    from flask_babel import force_locale

    from models import RuleViolation
    from models.users import create_user
    from models import db
    with app.test_request_context():
        try:
            create_user(db.session, "x", "short", ["agent"])
        except RuleViolation as exc:
            error = exc
        with force_locale("zh_Hans_CN"):
            assert "8" in str(error) and "密码" in str(error)
        with force_locale("en"):
            assert "at least 8 characters" in str(error)


def test_the_catalogue_kept_per_request_follows_a_language_forced_within_it(app):
    """A document rendered in Chinese during an English request (force_locale) reads Chinese, and
    the request reads English again afterwards, for our messages and Flask-Admin's alike (the
    per-request catalogue patch that this guarded was dropped in issue 20: bench/babel_catalogue.py)."""
    from flask_admin.babel import gettext as admin_gettext
    from flask_babel import force_locale, gettext
    with app.app_context(), app.test_request_context(headers={"Cookie": "lang=en"}):  # a g of its own
        assert gettext("Sales Desk") == "Sales Desk" and admin_gettext("List") == "List"
        with force_locale("zh_Hans_CN"):
            assert gettext("Sales Desk") == "售楼通" and admin_gettext("List") == "列表"
        assert gettext("Sales Desk") == "Sales Desk" and admin_gettext("List") == "List"
    with app.app_context(), app.test_request_context():  # another request, Chinese by default
        assert gettext("Sales Desk") == "售楼通" and admin_gettext("List") == "列表"


def test_every_message_in_the_code_has_a_chinese_translation(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from babel.messages.pofile import read_po

    root = Path(__file__).resolve().parent.parent
    pot = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F",
                    "babel.cfg", "-k", "_l", "-k", "lazy_gettext", "-o", str(pot), "admin", "models",
                    "templates", "jobs", "cli.py", "demo.py", "app.py"], cwd=root, check=True, capture_output=True)
    with open(pot, "rb") as fh:
        wanted = {m.id for m in read_po(fh) if m.id}
    with open(root / "translations/zh_Hans_CN/LC_MESSAGES/messages.po", "rb") as fh:
        translated = {m.id for m in read_po(fh) if m.id and m.string and not m.fuzzy}
    assert sorted(wanted - translated) == []


def test_no_translation_has_a_percent_sign_its_english_lacks():
    """Jinja formats every message of a template with `%` (new-style gettext), so a translation with
    a bare % its English has not (分成比例（%）) breaks the page in Chinese only: issue 23's deal
    page did. A literal per cent sign in a translation is written as its English writes it."""
    from pathlib import Path

    from babel.messages.pofile import read_po

    bare = re.compile(r"%(?![(%sd])")
    root = Path(__file__).resolve().parent.parent
    with open(root / "translations/zh_Hans_CN/LC_MESSAGES/messages.po", "rb") as fh:
        catalogue = read_po(fh)
    wrong = []
    for m in catalogue:
        english = m.id if isinstance(m.id, str) else (m.id[0] if m.id else "")
        chinese = m.string if isinstance(m.string, str) else (m.string[0] if m.string else "")
        if english and bare.search(chinese.replace("%%", "")) and not bare.search(english.replace("%%", "")):
            wrong.append((english, chinese))
    assert wrong == []


def test_the_catalogue_compiles_without_an_error(tmp_path):
    """pybabel compile reports a translation whose placeholders differ from its English (a `% o` in
    "Rate (% of the deal price)" reads as one) as an error, still exiting 0: read what it says."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-m", "babel.messages.frontend", "compile", "-i",
                           "translations/zh_Hans_CN/LC_MESSAGES/messages.po", "-o", str(tmp_path / "messages.mo"),
                           "-l", "zh_Hans_CN"], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0 and "error" not in (done.stdout + done.stderr).lower(), done.stdout + done.stderr


def test_timestamps_are_shown_in_the_offices_time_zone(client, login_as, db):
    import datetime as dt

    from tests import factories as f
    agent = login_as("agent")
    f.lead(db.session, owner=agent, last_activity_at=dt.datetime(2026, 11, 26, 0, 30))  # UTC
    db.session.commit()
    page = client.get("/admin/lead/").get_data(as_text=True)
    assert "2026-11-26 08:30" in page  # Asia/Shanghai, UTC+8


def test_every_column_of_every_grid_has_a_translated_label(app):
    """A column without a label would show Flask-Admin's English prettified name."""
    from flask_admin.contrib.sqla import ModelView
    missing = []
    for view in app.extensions["admin"][0]._views:
        if not isinstance(view, ModelView):
            continue
        for column, _ in view._list_columns + [(c, None) for c, _ in view._details_columns]:
            if column not in view.column_labels:
                missing.append(f"{view.endpoint}.{column}")
    assert sorted(set(missing)) == []


def test_every_filter_and_search_box_of_every_grid_reads_in_chinese(app):
    """Filters on a related column (project.name) and the search box's placeholder take their
    names from the labels too; without one, Flask-Admin shows "project / Project / Name"."""
    from flask_admin.contrib.sqla import ModelView
    untranslated = []
    with app.test_request_context("/admin/"):
        for view in app.extensions["admin"][0]._views:
            if not isinstance(view, ModelView):
                continue
            for flt in view._filters or ():
                if re.search(r"[A-Za-z]", str(flt.name)):
                    untranslated.append(f"{view.endpoint} filter {flt.name}")
            for column in view.column_searchable_list or ():
                label = view.column_labels.get(column if isinstance(column, str) else column.key)
                if label is None or re.search(r"[A-Za-z]", str(label)):
                    untranslated.append(f"{view.endpoint} search {column}")
    assert untranslated == []
