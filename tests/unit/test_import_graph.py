"""pyrunc's import graph: no cycle anywhere, and no module imports one of a higher layer.

Every import counts, also the ones inside functions (pyrunc imports lazily to keep the hot
path short, and a lazy cycle is still a cycle a newcomer has to untangle); imports under
``if TYPE_CHECKING:`` are annotations only and do not. The layers are the ones
docs/architecture.md draws; a new module must be given one here.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "pyrunc"

# Lower layers never import higher ones; within a layer anything goes as long as there is no cycle.
LAYERS: list[tuple[str, ...]] = [
    # 0: foundations, no policy
    ("pyrunc", "pyrunc.errors", "pyrunc.log", "pyrunc.proc", "pyrunc.jsonout", "pyrunc.options",
     "pyrunc.bundle", "pyrunc.launcher", "pyrunc.linux", "pyrunc.spec._schemas", "pyrunc.spec.patterns",
     "pyrunc.spec.semantic", "pyrunc.testing"),
    # 1: mechanisms: config, state, one Linux facility each
    ("pyrunc.spec", "pyrunc.signals", "pyrunc.hooks", "pyrunc.state", "pyrunc.rootless",
     "pyrunc.namespaces", "pyrunc.userns", "pyrunc.scheduling", "pyrunc.console", "pyrunc.netdevices",
     "pyrunc.security", "pyrunc.rootfs", "pyrunc.cgroups", "pyrunc.features"),
    # 2: processes: the stages and what starts and serves them; CRIU's
    ("pyrunc.process", "pyrunc.criu"),
    # 3: the lifecycle; `check`'s findings (lint.py uses `plan`, process/plan.py, for create's own)
    ("pyrunc.container", "pyrunc.foreground", "pyrunc.lint"),
    # 4: front ends
    ("pyrunc.cli", "pyrunc.__main__", "pyrunc.api"),
]


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(("pyrunc",) + path.relative_to(PACKAGE).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def runtime_imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            node.body = []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("pyrunc"):
                continue
            for alias in node.names:
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("pyrunc"))
    found.discard(name)
    return {m for m in found if m in known}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: runtime_imports(name, path, known) for name, path in known.items()}


def layer(name: str) -> int:
    best = None
    for rank, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if name == prefix or name.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (rank, len(prefix))
    assert best is not None, f"{name} has no layer: give it one in LAYERS (and docs/architecture.md)"
    return best[0]


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_no_upward_import():
    upward = [f"{src} (layer {layer(src)}) imports {dst} (layer {layer(dst)})"
              for src, targets in sorted(graph().items()) for dst in sorted(targets)
              if layer(dst) > layer(src)]
    assert upward == []


def test_the_checker_sees_a_cycle_and_an_upward_import():
    """The two checks above are not vacuous: a made-up graph with both is caught."""
    edges = {"pyrunc.state": {"pyrunc.container"}, "pyrunc.container": {"pyrunc.state"}}
    assert cycles(edges) == [["pyrunc.container", "pyrunc.state"]]
    assert layer("pyrunc.container") > layer("pyrunc.state")
    assert "pyrunc.process.stages" in graph()["pyrunc.process.stage1"]
