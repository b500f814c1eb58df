"""The shape of the code (issue 20): layers import downwards, no circles, no private names
borrowed across modules. Read from the source by scripts/import_graph.py, so a new import that
breaks the shape fails here naming the file and line."""
from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import import_graph as graph  # noqa: E402

sys.path.remove(str(ROOT / "scripts"))

# Which package may import which (a layer imports only itself and those below it).
LAYERS = {
    "config": set(),
    "models": {"config", "spreadsheets"},  # spreadsheets: the writers, which import nothing of ours
    "cache": {"config"},
    "spreadsheets": set(),
    "pdf": {"models", "config"},
    "jobs": {"models", "pdf", "cache", "spreadsheets", "config"},
    "admin": {"models", "jobs", "pdf", "cache", "spreadsheets", "config"},
    "app": {"models", "jobs", "admin", "pdf", "cache", "spreadsheets", "config", "cli"},
    "cli": {"models", "jobs", "pdf", "config", "demo", "cache", "spreadsheets"},
    "demo": {"models", "config"},
}


def _package(module: str) -> str:
    return module.split(".")[0]


def _edges():
    return graph.edges()


def test_issue20_no_module_imports_a_layer_above_it():
    wrong = [f"{e.source}:{e.line} imports {e.target}" for e in _edges()
             if _package(e.source) != _package(e.target)
             and _package(e.target) not in LAYERS.get(_package(e.source), set())]
    assert wrong == []


def test_issue20_no_import_circle_at_load_time_nor_through_lazy_imports_between_packages():
    assert graph.circles(_edges(), include_lazy=False) == []
    spanning = [c for c in graph.circles(_edges(), include_lazy=True) if len({_package(m) for m in c}) > 1]
    assert spanning == []


def test_issue20_models_has_no_import_circle_but_one_documented_lazy_import():
    """Inside models/ the modules form a line, except at most one lazy import, which says why."""
    edges = _edges()
    circles = [c for c in graph.circles(edges, include_lazy=True) if _package(c[0]) == "models"]
    closing = [e for e in edges if e.lazy and any(e.source in c and e.target in c for c in circles)]
    assert len({(e.source, e.target) for e in closing}) <= 1, [f"{e.source}:{e.line} -> {e.target}" for e in closing]
    for edge in closing:
        path = graph.module_files()[edge.source]
        lines = path.read_text(encoding="utf-8").splitlines()
        around = "\n".join(lines[max(0, edge.line - 4):edge.line])
        assert re.search(r"#.*lazy", around, re.IGNORECASE), f"{path}:{edge.line} must say why it is lazy"


def test_issue20_no_private_name_is_imported_from_another_module():
    borrowed = [f"{e.source}:{e.line} from {e.target} import {', '.join(e.names)}"
                for e in graph.private_imports(_edges())]
    assert borrowed == []


def test_issue20_the_graph_reader_sees_a_circle_and_a_borrowed_private_name(tmp_path, monkeypatch):
    """The checks above can fail: two modules importing each other, lazily, and a private name."""
    for name, text in {"models/__init__.py": "", "models/a.py": "from .b import thing\n",
                       "models/b.py": "def thing():\n    from .a import _helper\n"}.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(graph, "ROOT", tmp_path)
    monkeypatch.setattr(graph, "PACKAGES", ("models",))
    monkeypatch.setattr(graph, "TOP_MODULES", ())
    edges = graph.edges()
    assert graph.circles(edges, include_lazy=False) == []
    assert graph.circles(edges, include_lazy=True) == [["models.a", "models.b"]]
    assert [e.names for e in graph.private_imports(edges)] == [("_helper",)]
