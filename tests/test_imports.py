"""The layout stays acyclic: no import cycle among voxlive's modules at import time, and the
harness and benchmarks never import the command line.

Why a test: a cycle hides behind function-level imports (the benchmarks once imported
`load_or_explain` from cli.py while cli.py imported them) and shows up as an ImportError
only in the order some later change happens to import things. Read from the source with
ast, nothing is imported: imports inside functions and under `if TYPE_CHECKING:` are not
followed, since they do not run when a module is imported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "voxlive"


def module_files() -> dict[str, Path]:
    """voxlive's modules by dotted name (a package by its own name, for its __init__.py)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def top_level_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements that run when the module is imported: at module level, also
    inside top-level try/if/with blocks, but not under `if TYPE_CHECKING:`."""
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            test = ast.unparse(node.test)
            if test not in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
                pending.extend(node.body)
            pending.extend(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                pending.extend(block)
            for handler in node.handlers:
                pending.extend(handler.body)
        elif isinstance(node, ast.With):
            pending.extend(node.body)


def ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def imported_by(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The voxlive modules that importing `name` runs. Importing a.b.c runs the packages
    a and a.b first, except those the importer is itself inside (they are already under
    way, as when a package's module imports a sibling)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in top_level_imports(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        if node.level:  # relative: from .x import y
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        targets.add(source)
        targets.update(f"{source}.{alias.name}" for alias in node.names)  # submodules
    own = set(ancestors(name)) | {name}
    found: set[str] = set()
    for target in targets:
        for module in [*ancestors(target), target]:
            if module in modules and module not in own:
                found.add(module)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imported_by(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path [a, b, ..., a], or None when the graph is acyclic."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_and_passes_a_tree() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_imports_are_read_at_module_level_only(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "import voxlive.cli\n"
        "try:\n    from voxlive import models\nexcept ImportError:\n    pass\n"
        "if TYPE_CHECKING:\n    from voxlive.session import CallSession\n"
        "def later():\n    from voxlive.bench import latency\n")
    modules = module_files()
    found = imported_by("voxlive.bench.m", source, modules)
    assert found == {"voxlive.cli", "voxlive.models"}


def test_voxlive_has_no_import_cycle() -> None:
    graph = import_graph()
    assert "voxlive.cli" in graph and graph["voxlive.cli"]  # the walk saw the package
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def every_import(path: Path) -> set[str]:
    """Every absolute module a file names in an import, inside functions too."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def imports_within(package: str, forbidden: str) -> dict[str, list[str]]:
    """The modules of `package` that import `forbidden` (or a module in it), anywhere."""
    found = {}
    for name, path in module_files().items():
        if name == package or name.startswith(package + "."):
            hits = sorted(i for i in every_import(path)
                          if i == forbidden or i.startswith(forbidden + "."))
            if hits:
                found[name] = hits
    return found


@pytest.mark.parametrize("package", ["voxlive.bench", "voxlive.harness"])
def test_benchmarks_and_harness_do_not_import_the_command_line(package: str) -> None:
    """Not at module level and not inside functions either: what they need from the
    command line (model loading) lives in voxlive.models; cli.py imports them."""
    assert module_files().keys() & {package, "voxlive.cli"} == {package, "voxlive.cli"}
    assert imports_within(package, "voxlive.cli") == {}


def test_the_harness_does_not_import_the_benchmarks() -> None:
    """Benchmarks build on the harness, tests on both: the harness stays at the bottom."""
    assert imports_within("voxlive.harness", "voxlive.bench") == {}
    assert imports_within("voxlive.bench", "voxlive.harness")  # the walk sees imports
