"""Shape rules the reshaping (issue 21) set, kept by a test so they do not erode.

- Functions in pyrunc/process/ and pyrunc/criu/ stay short enough to read at once (80 lines).
- Errors carry their own context: nothing patches ``.container``/``.step`` onto an error after
  the fact (errors.Boundary stamps them once) and nothing decides what happened by probing
  ``__cause__`` (errors carry ``errno``).
- Only pyrunc/cgroups/ knows the names of its drivers.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "pyrunc"
MAX_LINES = 80


def sources(*parts: str):
    base = PACKAGE.joinpath(*parts)
    return sorted(base.rglob("*.py"))


def test_functions_in_process_and_criu_are_short():
    long = []
    for path in sources("process") + sources("criu"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


PATCHING = re.compile(r"\b\w+\.(container|step)\s*(=|,\s*\w+\.(container|step)\s*=)(?!=)")


def test_no_error_context_patched_afterwards_and_no_cause_probing():
    found = []
    for path in sources():
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if ("__cause__" in code or re.search(r"\be\.(container|step)\s*=(?!=)", code)
                    or re.search(r"\be\.container,\s*e\.step\s*=", code)):
                found.append(f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}")
    assert found == []


NAME = r"""["'](v1|v2|hybrid|systemd)["']"""
# A driver's (or the layout's) name compared with, a driver attribute read, or a controller's
# directory picked by its key: each is a decision the cgroup manager should make itself.
SWITCHES = re.compile(rf"""(==|!=)\s*{NAME}|\bin\s*\([^)]*{NAME}|\.driver\b|\bpaths(\(\))?\.get\(["'](unified|freezer)""")


def test_no_switch_on_a_cgroup_driver_name_outside_cgroups():
    found = []
    for path in sources():
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "cgroups":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if SWITCHES.search(code):
                found.append(f"{rel}:{n}: {line.strip()}")
    assert found == []
