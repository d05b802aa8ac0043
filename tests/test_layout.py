"""The package's layout, read from its imports with `ast`: no cycle, dependencies one way, pure stages.

Every import counts, also the ones inside functions (a lazy import only hides a
cycle until the day somebody moves it to the top).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "faturamento_batch"
NAME = PACKAGE.name
MAX_LINES = 420  # "small enough to read in one sitting" (~400)


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> dict[str, set[str]]:
    """module → the package's modules it imports (a `from pkg import sub` names the submodule)."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, path.name == "__init__.py", node)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                if target.split(".")[0] != NAME:
                    continue
                while target not in modules and "." in target:  # `import pkg.sub.obj` → the module
                    target = target.rsplit(".", 1)[0]
                if target != module and target in modules:
                    graph[module].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path [a, b, …, a], or None. A package's own __init__ importing its
    submodules (re-exports) is not a cycle unless a submodule imports the __init__ back."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle_in_the_package():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = import_graph()
    graph[f"{NAME}.settings"] = graph[f"{NAME}.settings"] | {f"{NAME}.pipeline"}  # pipeline imports settings
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1]
    assert f"{NAME}.settings" in cycle and f"{NAME}.pipeline" in cycle


def test_the_graph_sees_lazy_and_relative_imports():
    graph = import_graph()
    # `commands` imports `history` inside a function, and `from ..replay import serve_forever`.
    assert f"{NAME}.commands.history" in graph[f"{NAME}.commands"]
    assert f"{NAME}.replay" in graph[f"{NAME}.commands"]
    assert f"{NAME}.replay.data" in graph[f"{NAME}.replay.server"]


# Shared small things sit at the bottom; the stages and I/O shells never reach up to what runs them.
BOTTOM = ("errors", "config", "settings", "dsn", "schemas", "summary", "artifacts", "metrics")
UPWARD = {
    "transform": ("pipeline", "commands", "cli", "db.read", "db.write", "odoo.transport", "odoo.extract"),
    "diff": ("pipeline", "commands", "cli", "db", "odoo"),
    "stock": ("pipeline", "commands", "cli", "db", "odoo", "diff"),
    "db": ("pipeline", "commands", "cli", "replay", "generator", "analysis"),
    "odoo": ("pipeline", "commands", "cli", "db", "replay", "generator", "analysis"),
    "pipeline": ("commands", "cli", "replay", "generator", "analysis"),
    "replay": ("pipeline", "commands", "cli", "db"),
    "generator": ("pipeline", "commands", "cli", "db", "replay"),
    "analysis": ("pipeline", "commands", "cli", "db", "odoo"),
}


def _within(module: str, prefix: str) -> bool:
    full = f"{NAME}.{prefix}"
    return module == full or module.startswith(full + ".")


@pytest.mark.parametrize("layer", sorted(UPWARD))
def test_dependencies_point_one_way(layer):
    graph = import_graph()
    bad = sorted(
        f"{m} → {t}"
        for m, targets in graph.items()
        if _within(m, layer)
        for t in targets
        for forbidden in UPWARD[layer]
        if _within(t, forbidden)
    )
    assert not bad, f"`{layer}` imports what sits above it: {bad}"


@pytest.mark.parametrize("bottom", BOTTOM)
def test_shared_small_things_import_only_each_other(bottom):
    graph = import_graph()
    allowed = {f"{NAME}.{b}" for b in BOTTOM}
    bad = sorted(t for t in graph[f"{NAME}.{bottom}"] if t not in allowed)
    assert not bad, f"`{bottom}` should sit at the bottom but imports {bad}"


def test_modules_are_small_enough_to_read_in_one_sitting():
    long = {m: n for m, p in _modules().items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
