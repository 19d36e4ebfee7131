"""The layout is the architecture: these checks keep it so.

They read the source (ast), import nothing, and fail on an import that runs against the layers, on
any import cycle between modules (imports inside functions and under TYPE_CHECKING count too),
and on a module that has grown past 450 lines.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "avagent"

ALLOWED: dict[str, set[str]] = {
    # part -> the parts it may import (besides itself)
    "core": set(),
    "io": {"core"},
    "perception": {"core", "io"},
    "tools": {"core", "io"},
    "policy": {"core", "io", "tools"},
    "agent": {"core", "io", "perception", "tools", "policy"},
    "sim": {"core", "io", "perception", "tools", "policy"},
    "cli": {"core", "io", "perception", "tools", "policy", "agent", "sim"},
}
"""``core`` is the foundation and imports no other part; ``io``, ``perception``, ``tools`` and
``policy`` never import the assembly (``agent``); nothing but the command line (``cli``, which
holds the demo) imports the simulation helpers (``sim``)."""

MAX_LINES = 450


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported_names(path: Path, name: str) -> Iterator[str]:
    """Every module name an import statement anywhere in the file mentions (with each imported
    name too, since ``from pkg import module`` imports a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (a package's own ``__init__`` left out)."""
    known = modules()

    def resolve(dotted: str) -> str | None:
        bits = dotted.split(".")
        while bits:
            if ".".join(bits) in known:
                return ".".join(bits)
            bits.pop()
        return None

    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = {resolve(n) for n in imported_names(path, name)}
        graph[name] = {t for t in targets if t is not None and t != name and not name.startswith(t + ".")}
    return graph


def part(module: str) -> str:
    bits = module.split(".")
    return bits[1] if len(bits) > 1 else ""


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_part_is_known() -> None:
    parts = {part(m) for m in modules()} - {"", "__main__"}
    assert parts <= set(ALLOWED), f"folders with no place in the layers: {parts - set(ALLOWED)}"


def test_imports_run_one_way() -> None:
    upward = [
        f"{source} imports {target}"
        for source, targets in import_graph().items()
        for target in sorted(targets)
        if part(source) in ALLOWED
        and part(target) in ALLOWED
        and part(target) != part(source)
        and part(target) not in ALLOWED[part(source)]
    ]
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_checker_sees_cycles_and_every_kind_of_import(tmp_path: Path) -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    source = tmp_path / "module.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import sibling\n"
        "if TYPE_CHECKING:\n"
        "    from avagent.core import bus\n"
        "def later():\n"
        "    import avagent.agent.builder\n"
    )
    names = set(imported_names(source, "avagent.perception.module"))
    assert {"avagent.perception.sibling", "avagent.core.bus", "avagent.agent.builder"} <= names


def test_no_module_is_too_long() -> None:
    long = {
        name: n
        for name, path in modules().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them by responsibility): {long}"
