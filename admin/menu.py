"""The navigation menu, rendered once per (roles, language, current page) and then reused; and
the URLs of Flask-Admin's static files, built once.

Which entries a user sees depends only on the roles (`models.permissions.can`), their names
only on the language, and the highlighted entry on the current page; rendering it anew cost
~2 ms of every page (Flask-Admin asks every view whether it is accessible and translates every
name each time).
"""
from __future__ import annotations

import threading

from flask import request, url_for
from flask_babel import get_locale
from flask_login import current_user

from models.permissions import role_names as _role_names

LIMIT = 2_000  # entries kept: roles × languages × pages is a few hundred in practice
_menus: dict[tuple, object] = {}
_lock = threading.Lock()


def cached_menu(admin_view, render):
    """`render()` (the layout's menu macro) for this page, from the cache when it has it."""
    key = (_role_names(current_user), str(get_locale()), admin_view.endpoint)
    html = _menus.get(key)
    if html is None:
        html = render()
        with _lock:
            if len(_menus) >= LIMIT:
                _menus.clear()
            _menus[key] = html
    return html


_static: dict[tuple, str] = {}


def static_url(admin_endpoint: str, args: tuple, kwargs: dict) -> str:
    """The URL of one of Flask-Admin's static files (the same for every page of a deployment)."""
    key = (request.script_root, admin_endpoint, args, tuple(sorted(kwargs.items())))
    url = _static.get(key)
    if url is None:
        url = _static[key] = url_for(f"{admin_endpoint}.static", *args, **kwargs)
    return url
