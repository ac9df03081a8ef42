"""A ``linux.resources`` patch for `update`, checked, and memory sizes in runc's units.

What the `update` command and the Python API's ``Container.update`` share; not on the hot path
(it imports ``re`` and compiles a schema), so not in resources.py, which every create imports.
"""

from __future__ import annotations

import re

from ..errors import ConfigError, UsageError

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtpb]?)(?:i?b)?$", re.IGNORECASE)


def parse_size(text: str, flag: str = "memory") -> int:
    """A memory size in runc's (docker go-units ``RAMInBytes``) syntax; ``-1`` means unlimited.

    Units are binary and case-insensitive, optionally followed by ``b``/``ib``:
    ``512m``, ``512MB``, ``1.5g``, ``100KiB``. Anything else, including other
    negative numbers, is an error.
    """
    raw = text.strip()
    if raw == "-1":
        return -1
    m = _SIZE.match(raw)
    if not m:
        raise UsageError(f"invalid value {text!r} for flag --{flag}: expected a size like 512m or -1",
                         step="update")
    number, unit = m.group(1), m.group(2).lower()
    if "." in number:
        return int(float(number) * _UNITS[unit])
    return int(number) * _UNITS[unit]


def check_patch(patch: object) -> None:
    """Schema-check an OCI ``linux.resources`` object, plus the value rules the schema lacks."""
    from ..spec._schemas import SCHEMAS
    from ..spec.validator import compile_schema

    defs = SCHEMAS["config"]["$defs"]
    problems = compile_schema({"$ref": "#/$defs/resources", "$defs": defs})(patch)
    if not problems and isinstance(patch, dict):
        from .resources import KNOWN_KEYS

        for key, value in patch.items():
            if key not in KNOWN_KEYS[""]:
                problems.append((f"/{key}", "unknown resource"))
            elif isinstance(value, dict) and key in KNOWN_KEYS:
                problems += [(f"/{key}/{sub}", "unknown resource") for sub in value if sub not in KNOWN_KEYS[key]]
        mem = patch.get("memory") or {}
        for key in ("limit", "reservation", "swap", "kernel", "kernelTCP"):
            value = mem.get(key)
            if isinstance(value, int) and value < -1:
                problems.append((f"/memory/{key}", f"{value} is negative (only -1, unlimited, is allowed)"))
        cpu = patch.get("cpu") or {}
        for key in ("shares", "period", "burst", "realtimePeriod"):
            value = cpu.get(key)
            if isinstance(value, int) and value < 0:
                problems.append((f"/cpu/{key}", f"{value} is negative"))
    if problems:
        raise ConfigError(problems, source="resources")
