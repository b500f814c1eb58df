"""Issue 19, items 17 and 18: English that is complete — notifications rendered in the reader's
language, exports in the requester's, and a first visit that honours the browser's languages."""
from __future__ import annotations

from tests.conftest import csrf_token


# --- item 18: Accept-Language on a first visit, the cookie after ---------------------------------

def test_issue19_18_a_first_visit_asking_for_english_reads_english(client):
    page = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(as_text=True)
    assert '<html lang="en">' in page and "Sign in" in page and "登录" not in page


def test_issue19_18_a_first_visit_asking_for_chinese_reads_chinese(client):
    for header in ("zh-CN,zh;q=0.9,en;q=0.8", "zh-TW", "en-GB;q=0.5,zh;q=0.9"):
        page = client.get("/login", headers={"Accept-Language": header}).get_data(as_text=True)
        assert '<html lang="zh-CN">' in page and "登录" in page, header


def test_issue19_18_a_browser_asking_for_neither_language_reads_chinese(client):
    for header in ("fr-FR,de;q=0.8", "", None):
        headers = {"Accept-Language": header} if header is not None else {}
        page = client.get("/login", headers=headers).get_data(as_text=True)
        assert '<html lang="zh-CN">' in page and "登录" in page, header


def test_issue19_18_once_picked_the_cookie_decides_over_the_browser(client):
    token = csrf_token(client)
    client.post("/language", data={"lang": "zh_Hans_CN", "next": "/login", "csrf_token": token})
    page = client.get("/login", headers={"Accept-Language": "en-US,en"}).get_data(as_text=True)
    assert "登录" in page and "Sign in" not in page
    token = csrf_token(client)
    client.post("/language", data={"lang": "en", "next": "/login", "csrf_token": token})
    page = client.get("/login", headers={"Accept-Language": "zh-CN,zh"}).get_data(as_text=True)
    assert "Sign in" in page and "登录" not in page
