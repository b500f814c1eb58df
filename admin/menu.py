"""The navigation menu, rendered once per (roles, language, current page) and then reused; and
the URLs of Flask-Admin's static files, built once. Both are kept in the app's cache
(`cache.py`, in this process's memory), so two apps of one process never share them.

Which entries a user sees depends only on the roles (`models.permissions.can`), their names
only on the language, and the highlighted entry on the current page; rendering it anew cost
~2 ms of every page (Flask-Admin asks every view whether it is accessible and translates every
name each time).
"""
from __future__ import annotations

from flask import request, url_for
from flask_babel import get_locale
from flask_login import current_user

import cache
from models.permissions import role_names

LIMIT = 2_000  # entries kept: roles × languages × pages is a few hundred in practice
STATIC_LIMIT = 10_000  # (script root, endpoint, file) of the static files the layout links: a few dozen


def cached_menu(admin_view, render):
    """`render()` (the layout's menu macro) for this page, from the cache when it has it."""
    menus = cache.current().store("menu", LIMIT)
    key = (role_names(current_user), str(get_locale()), admin_view.endpoint)
    html = menus.get(key)
    if html is None:
        html = render()
        menus.put(key, html)
    return html


def static_url(admin_endpoint: str, args: tuple, kwargs: dict) -> str:
    """The URL of one of Flask-Admin's static files (the same for every page of a deployment)."""
    urls = cache.current().store("static", STATIC_LIMIT)
    key = (request.script_root, admin_endpoint, args, tuple(sorted(kwargs.items())))
    url = urls.get(key)
    if url is None:
        url = url_for(f"{admin_endpoint}.static", *args, **kwargs)
        urls.put(key, url)
    return url
