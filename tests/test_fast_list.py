"""Flask-Admin's and Flask-Babel's internals are overridden, patched and copied in one module,
admin/fast_list.py, and nothing lets an upgrade slip by: a version other than the pinned one, or
an upstream function or template whose text changed, fails here naming what to re-check."""
from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from admin import fast_list

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTIONS = {"flask_admin": "flask-admin", "flask_babel": "flask-babel"}

# Flask-Admin's private names that the project may override outside admin/fast_list.py, and why.
DOCUMENTED_HOOKS = {
    "_handle_view": "Flask-Admin documents BaseView._handle_view as the hook run before every view "
                    "method (its access-control examples override it); the role checks stay beside "
                    "the roles (admin/base.py, admin/__init__.py). Its source is pinned in UPSTREAM.",
}


def _recheck_list() -> str:
    return "\n".join(f"  - {name}: {relied}" for name, (_, relied) in fast_list.UPSTREAM.items())


@pytest.mark.parametrize("package", sorted(fast_list.PINNED))
def test_the_installed_version_is_the_pinned_one(package):
    installed = version(DISTRIBUTIONS[package])
    assert installed == fast_list.PINNED[package], (
        f"{package} is {installed}, admin/fast_list.py was written against {fast_list.PINNED[package]}. "
        f"Re-check each of these against the new version, then update PINNED and the digests "
        f"in UPSTREAM:\n{_recheck_list()}")


@pytest.mark.parametrize("name", sorted(fast_list.UPSTREAM))
def test_every_upstream_piece_we_rely_on_reads_as_when_we_wrote_against_it(name):
    digest, relied = fast_list.UPSTREAM[name]
    now = fast_list.upstream_digest(name)
    assert now == digest, (
        f"{name} changed upstream (sha256 {now}, was {digest}). What we rely on: {relied}. "
        f"Re-read it and our code in admin/fast_list.py (and the file named above), then update "
        f"its digest in UPSTREAM.")


def _admin_modules():
    import admin
    return [admin] + [importlib.import_module(f"admin.{m.name}") for m in pkgutil.iter_modules(admin.__path__)]


def _is_upstream(cls) -> bool:
    return cls.__module__.split(".")[0] in DISTRIBUTIONS


def test_only_fast_list_overrides_a_private_method_of_flask_admin():
    """A method (or property) whose name starts with "_", defined on one of our classes, that
    Flask-Admin's base classes also define: it must live in admin/fast_list.py, unless it is a
    documented hook (DOCUMENTED_HOOKS, with the reason)."""
    found = []
    for module in _admin_modules():
        for cls in vars(module).values():
            if not inspect.isclass(cls) or cls.__module__ != module.__name__ or module.__name__ == fast_list.__name__:
                continue
            upstream = [base for base in cls.__mro__[1:] if _is_upstream(base)]
            for name, value in vars(cls).items():
                if not name.startswith("_") or name.startswith("__") or name in DOCUMENTED_HOOKS:
                    continue
                if not (inspect.isfunction(value) or isinstance(value, (property, classmethod, staticmethod))):
                    continue  # data Flask-Admin's metaclass sets on every view (_urls, _default_view)
                if any(name in vars(base) for base in upstream):
                    found.append(f"{module.__name__}.{cls.__qualname__}.{name}")
    assert found == [], "move these overrides into admin/fast_list.py (FastList) and pin what they rely on"


def test_every_documented_hook_we_override_is_pinned():
    pinned = {name.rsplit(".", 1)[-1] for name in fast_list.UPSTREAM}
    assert set(DOCUMENTED_HOOKS) <= pinned


def _upstream_aliases(tree) -> set[str]:
    """Names a module binds to Flask-Admin's or Flask-Babel's modules or objects."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names
                      if alias.name.split(".")[0] in DISTRIBUTIONS}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in DISTRIBUTIONS:
            names |= {alias.asname or alias.name for alias in node.names}
    return names


def _root(node):
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.value if not isinstance(node, ast.Call) else node.func
    return node.id if isinstance(node, ast.Name) else None


def test_nothing_outside_fast_list_assigns_to_flask_admin_or_flask_babel():
    """No `flask_admin.x.y = …` or `setattr(flask_babel…, …)` in the project's code but in
    admin/fast_list.py."""
    found = []
    files = [p for p in ROOT.glob("*.py")] + [p for d in ("admin", "models", "jobs") for p in (ROOT / d).rglob("*.py")]
    for path in files:
        if path == Path(fast_list.__file__).resolve():
            continue
        tree = ast.parse(path.read_text("utf-8"))
        aliases = _upstream_aliases(tree)
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                targets = [t for t in targets if isinstance(t, (ast.Attribute, ast.Subscript))]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr"):
                targets = node.args[:1]
            found += [f"{path.relative_to(ROOT)}:{node.lineno}" for t in targets if _root(t) in aliases]
    assert found == [], "patch Flask-Admin or Flask-Babel only in admin/fast_list.py (install)"


def test_the_running_app_carries_only_fast_lists_patches(app):
    """After create_app, every function of ours found in Flask-Admin's and Flask-Babel's modules
    and classes is one of fast_list.PATCHES, and the Babel domains carry only fast_list's wrapper."""
    ours = ("admin", "models", "jobs", "app", "cli")
    declared = {(module, name) for module, name, _ in fast_list.PATCHES}
    found = []
    for module_name, module in list(sys.modules.items()):
        if module_name.split(".")[0] not in DISTRIBUTIONS or module is None:
            continue
        for name, value in list(vars(module).items()):
            if callable(value) and (getattr(value, "__module__", "") or "").split(".")[0] in ours:
                if (module_name, name) not in declared and not inspect.isclass(value):
                    found.append(f"{module_name}.{name}")
            if inspect.isclass(value) and _is_upstream(value):
                found += [f"{module_name}.{name}.{attr}" for attr, member in vars(value).items()
                          if inspect.isfunction(member) and member.__module__.split(".")[0] in ours]
    for domain in fast_list.babel_domains(app):
        patched = vars(domain).get("get_translations")
        if patched is not None and patched.__module__ != fast_list.__name__:
            found.append(f"{domain!r}.get_translations")
    assert found == [], "patch Flask-Admin or Flask-Babel only in admin/fast_list.py (install, PATCHES)"
    for module, name, replacement in fast_list.PATCHES:
        owner, attr = replacement.rsplit(".", 1)
        assert getattr(importlib.import_module(module), name) is getattr(importlib.import_module(owner), attr)


def test_issue20_no_reader_of_fast_list_shadows_a_flask_admin_setting_or_its_old_name(app):
    """Flask-Admin reads a view's settings through old aliases too (`column_list` also as
    `list_columns`): a FastList method of such a name would be taken for the setting, and a grid
    that leaves `column_list` out would fail to build (the reviewer's find). So no reader is named
    like a setting or alias, and a grid with no column_list builds with Flask-Admin's defaults."""
    from flask_admin.model import base as model_base

    from admin.base import ReadOnlyView
    from models import Role, db

    upstream = model_base.BaseModelView
    settings = set()
    for name, value in vars(upstream).items():
        if not callable(value):  # a setting (column_list, page_size…), not a method we override
            settings.add(name)
        if type(value).__name__ == "ObsoleteAttr":
            settings.add(value.old_name)
    readers = {name for name, value in vars(fast_list.FastList).items() if callable(value) and not name.startswith("_")}
    assert readers & settings == set()
    with app.app_context():
        grid = type("NoColumnList", (ReadOnlyView,), {})(Role, db.session, endpoint="no_column_list_grid")
        assert grid.column_list is None
