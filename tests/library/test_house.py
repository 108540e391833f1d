"""The shape of the house: no import circle, no oversized module, kernels that never reach up into the library.

The imports are read with :mod:`ast` from the source, function-level (lazy) imports included: a circle that
only closes at run time is still a circle.  ``kernels/`` is installed as ``nalu_np.kernels``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {"nalu_np": ROOT / "nalu_np", "nalu_np.kernels": ROOT / "kernels"}
MAX_LINES = 700
#: what kernels receive are arrays and scalars: they never import these
KERNELS_NEVER_IMPORT = ("nalu_np.layers", "nalu_np.optim", "nalu_np.tasks", "nalu_np.taskbase", "nalu_np.training",
                        "nalu_np.sweep", "nalu_np.compiled", "nalu_np.arithmetic", "nalu_np.checkpoint")


def _modules() -> dict[str, Path]:
    found = {}
    for package, base in SOURCES.items():
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([package, *parts])
            if package == "nalu_np" and parts[:1] == ["kernels"]:
                continue
            found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The library modules that module ``name`` imports (resolved to modules, not names in them)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in MODULES else mod for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            if t and t != name and t != "nalu_np":  # every submodule's import runs the root package first
                out.add(t)
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items() if name != "nalu_np"}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in GRAPH.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_is_read():
    assert "nalu_np.units" in GRAPH["nalu_np.layers"] and "nalu_np.reference" in GRAPH["nalu_np.units"]
    assert any(m.startswith("nalu_np.kernels.") for m in GRAPH)


def test_no_import_circle():
    assert _cycles() == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_over_the_limit(name):
    lines = MODULES[name].read_text().count("\n")
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(ROOT)} has {lines} lines (limit {MAX_LINES})"


def test_kernels_never_import_the_library_above_them():
    bad = {m: sorted(GRAPH[m] & set(KERNELS_NEVER_IMPORT)) for m in GRAPH if m.startswith("nalu_np.kernels")}
    assert {m: v for m, v in bad.items() if v} == {}


def test_no_private_name_crosses_a_module_boundary_in_kernels():
    """A backend package's modules share helpers under public names (no ``from ._common import _check``)."""
    bad = []
    for name, path in MODULES.items():
        if not name.startswith("nalu_np.kernels"):
            continue
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
                mod = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module
                bad += [f"{name}: {a.name}" for a in node.names
                        if a.name.startswith("_") and f"{mod}.{a.name}" not in MODULES]  # a module is fine
    assert bad == []


def test_no_module_getattr_in_kernels():
    hidden = [n for n, p in MODULES.items() if n.startswith("nalu_np.kernels") and "def __getattr__(" in p.read_text()]
    assert hidden == []
