"""The package's shape: every module imports on its own, module-level imports form no cycle, no file is
longer than 500 lines."""

from __future__ import annotations

import ast
import os
import pkgutil
import subprocess
import sys
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import tamer

ROOT = Path(tamer.__file__).parent
MAX_LINES = 500


def tamer_modules() -> dict[str, Path]:
    """Every module of the package (``__main__`` ones aside: importing those runs the program), with its
    file."""
    found = {"tamer": ROOT / "__init__.py"}
    for info in pkgutil.walk_packages(tamer.__path__, "tamer."):
        if info.name.rpartition(".")[2] == "__main__":
            continue
        base = Path(info.module_finder.path) / info.name.rpartition(".")[2]  # type: ignore[union-attr]
        found[info.name] = base / "__init__.py" if info.ispkg else base.with_suffix(".py")
    return found


MODULES = tamer_modules()


def test_every_module_is_found():
    on_disk = {p for p in ROOT.rglob("*.py") if p.name != "__main__.py" and "__pycache__" not in p.parts}
    assert on_disk == set(MODULES.values())


def import_alone(name: str) -> tuple[str, subprocess.CompletedProcess]:
    return name, subprocess.run(
        [sys.executable, "-c", f"import {name}"], capture_output=True, text=True, timeout=300
    )


def test_every_module_imports_in_a_fresh_interpreter():
    """Alone, in a new process: a module that works only once another happened to be imported first (the
    symptom of a cycle, or of a missing import) fails here."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = list(pool.map(import_alone, sorted(MODULES)))
    failed = {
        name: (r.stderr.strip().splitlines() or ["(no output)"])[-1] for name, r in results if r.returncode
    }
    assert not failed, "modules that do not import alone:\n" + "\n".join(
        f"  {k}: {v}" for k, v in failed.items()
    )


# --- the module-level import graph ------------------------------------------------------------------------


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """The import statements run when the module is imported: at top level, also inside if/try/with and
    class bodies; not inside functions (run later, if ever) nor under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.append(node)
            elif isinstance(node, ast.If):
                if not is_type_checking(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try | ast.TryStar):
                for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                    visit(block)
            elif isinstance(node, ast.With | ast.ClassDef):
                visit(node.body)

    visit(tree.body)
    return found


def prefixes(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def imported_modules(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: Collection[str] = MODULES.keys()
) -> set[str]:
    """The modules of this package whose import the statement waits for. ``import a.b.c`` runs a, a.b and
    a.b.c; the module's own parent packages are left out (Python imports them before the module itself, so
    ``from tamer.live.keys import X`` inside tamer.live.loop is no cycle), unless a name is taken from
    their ``__init__`` (``from tamer.live import X``, X no submodule)."""
    own = set(prefixes(module)[:-1]) | ({module} if is_package else set())
    if isinstance(node, ast.Import):
        ran = {m for alias in node.names for m in prefixes(alias.name)}
        used: set[str] = set()
    else:
        if node.level:  # relative: from the module's own package upwards
            package = module if is_package else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{node.module}" if node.module else package
        else:
            base = node.module or ""
        submodules = {f"{base}.{alias.name}" for alias in node.names} & set(known)
        ran = set(prefixes(base)) | submodules
        used = {base} if len(submodules) < len(node.names) else set()  # a name from base's namespace
    return {m for m in (ran - own) | used if m in known and m != module}


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        is_package = path.name == "__init__.py"
        graph[name] = set().union(
            *(imported_modules(node, name, is_package) for node in module_level_imports(tree))
        )
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected component that has one (Tarjan), as [a, b, ..., a]."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            connect(v)

    return [shortest_cycle(graph, component) for component in components]


def shortest_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest way from the component's first module back to itself (breadth first)."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    for v in queue:  # grows while it is read
        if start in graph[v]:
            return [*paths[v], start]
        for w in sorted(graph[v] & component):
            if w not in paths:
                paths[w] = [*paths[v], w]
                queue.append(w)
    raise AssertionError(f"no cycle in {component}")  # a strongly connected component always has one


def test_find_cycles_names_the_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"d"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_graph_reads_module_level_imports_only():
    known = {"tamer", "tamer.io", "tamer.results", "tamer.sweep", "tamer.plots", "tamer.config"}
    known |= {"tamer.live", "tamer.live.keys", "tamer.live.loop", "tamer.live.session"}
    tree = ast.parse(
        "import tamer.io\n"
        "from tamer import results\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from tamer.sweep import Run\n"
        "def f():\n    from tamer.plots import plot_all\n"
        "try:\n    from tamer.config import Config\nexcept ImportError:\n    pass\n"
    )

    def edges(tree: ast.Module, module: str) -> set[str]:
        return {m for n in module_level_imports(tree) for m in imported_modules(n, module, False, known)}

    assert edges(tree, "tamer.compare") == {"tamer.io", "tamer.results", "tamer.config"}  # not tamer: own
    sibling = ast.parse("from tamer.live.keys import KeyMap\nfrom tamer.live import session\n")
    assert edges(sibling, "tamer.live.loop") == {"tamer.live.keys", "tamer.live.session"}
    from_parent = ast.parse("from tamer.live import LivePlay\nfrom . import keys\n")
    assert edges(from_parent, "tamer.live.loop") == {
        "tamer.live",
        "tamer.live.keys",
    }  # a name of its __init__
    assert edges(sibling, "tamer.compare") == {"tamer.live", "tamer.live.keys", "tamer.live.session"}


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "module-level import cycles:\n" + "\n".join("  " + " -> ".join(c) for c in cycles)


# --- size ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(ROOT.rglob("*.py")), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_file_is_longer_than_500_lines(path: Path):
    n = len(path.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(ROOT.parent)} has {n} lines; split it (at most {MAX_LINES})"
