#!/usr/bin/env python3
"""Regenerate pyrunc/spec/_schemas.py from the JSON schemas in this folder.

Why a generated Python module: ``pyrunc create`` must start fast, and a Python
literal is loaded from CPython's bytecode cache without opening or parsing any
JSON. The JSON files stay the source of truth (editors and the jsonschema
library understand them); tests/unit/test_schema.py fails when the generated
module is out of date. Run ``python spec/generate.py`` after editing a schema,
or ``python spec/generate.py --check`` to only compare.
"""

from __future__ import annotations

import json
import os
import pprint
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = os.path.join(os.path.dirname(HERE), "pyrunc", "spec", "_schemas.py")
SOURCES = {"config": "config-schema.json", "state": "state-schema.json", "features": "features-schema.json"}

HEADER = '''"""The JSON schemas of spec/*.json as Python literals. GENERATED: do not edit.

Regenerate with ``python spec/generate.py``; a unit test fails when this file
and spec/*.json disagree. A literal loads from the bytecode cache, which is
cheaper than opening and parsing the JSON files on every ``pyrunc create``.
"""

# ruff: noqa: E501

'''


def load_sources(folder: str = HERE) -> dict[str, dict]:
    """Read each schema file, keeping key order (it decides the order of reported problems)."""
    schemas = {}
    for name, filename in SOURCES.items():
        with open(os.path.join(folder, filename), encoding="utf-8") as handle:
            schemas[name] = json.load(handle)
    return schemas


def render(schemas: dict[str, dict]) -> str:
    """The complete text of _schemas.py for the given schemas."""
    body = pprint.pformat(schemas, width=110, sort_dicts=False, underscore_numbers=False)
    return f"{HEADER}SCHEMAS = {body}\n"


def main(argv: list[str]) -> int:
    text = render(load_sources())
    try:
        with open(TARGET, encoding="utf-8") as handle:
            current = handle.read()
    except FileNotFoundError:
        current = None
    if "--check" in argv:
        if current != text:
            print(f"{TARGET} is out of date; run: python spec/generate.py", file=sys.stderr)
            return 1
        return 0
    if current != text:
        with open(TARGET, "w", encoding="utf-8") as handle:
            handle.write(text)
        print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
