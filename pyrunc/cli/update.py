"""`pyrunc update [options] <id>`: change the cgroup limits of a created, running or paused container.

With ``--resources/-r FILE`` (``-`` reads stdin) the JSON, OCI ``linux.resources``
shaped, is authoritative and every other flag is ignored (runc's rule). Otherwise
each flag sets one value. Memory sizes take docker/runc units (binary: ``512m`` is
512 MiB, ``1g``, ``100k``, ``-1`` for unlimited). The new values are written to the
cgroup and recorded in the container state, so a later ``update`` merges with them.
Nothing is printed on success: callers read stdout as data (runc prints nothing either).
"""

from __future__ import annotations

import json
import re
import sys

from ..container import Container
from ..errors import ConfigError, UsageError
from .args import Opt, exactly, parse

# flag -> (section, key, parser name, meaning); the order is runc's `update --help` order.
FLAGS: dict[str, tuple[str, str, str, str]] = {
    "blkio-weight": ("blockIO", "weight", "uint", "block IO weight, 10 to 1000"),
    "cpu-period": ("cpu", "period", "uint", "CFS period in microseconds"),
    "cpu-quota": ("cpu", "quota", "int", "CFS quota in microseconds per period (-1: no limit)"),
    "cpu-share": ("cpu", "shares", "uint", "CPU shares, a weight relative to other cgroups"),
    "cpu-rt-period": ("cpu", "realtimePeriod", "uint", "real-time period in microseconds"),
    "cpu-rt-runtime": ("cpu", "realtimeRuntime", "int", "real-time runtime in microseconds per period"),
    "cpu-burst": ("cpu", "burst", "uint", "CFS burst in microseconds: unused quota that may be spent later"),
    "cpu-idle": ("cpu", "idle", "int", "1 makes the cgroup SCHED_IDLE, 0 the default policy"),
    "cpuset-cpus": ("cpu", "cpus", "str", "CPUs the container may run on (0-3,7)"),
    "cpuset-mems": ("cpu", "mems", "str", "memory nodes the container may use (0,1)"),
    "kernel-memory": ("memory", "kernel", "size", "kernel memory limit, a size (cgroup v1 only)"),
    "kernel-memory-tcp": ("memory", "kernelTCP", "size", "kernel TCP buffer limit, a size (cgroup v1 only)"),
    "memory": ("memory", "limit", "size", "memory limit, a size (512m, 1g; -1: no limit)"),
    "memory-reservation": ("memory", "reservation", "size", "memory soft limit, a size"),
    "memory-swap": ("memory", "swap", "size", "memory plus swap limit, a size (-1: no limit)"),
    "pids-limit": ("pids", "limit", "int", "maximum number of processes (-1: no limit)"),
}
# Intel RDT flags runc has; accepted by the parser so the error names the real problem.
RDT_FLAGS = ("l3-cache-schema", "mem-bw-schema")

OPTIONS = ([Opt("resources", True, "r", default=None,
                doc="a JSON file (- for stdin) of linux.resources to apply; all other flags are then ignored")]
           + [Opt(name, True, default=None, doc=flag[3]) for name, flag in FLAGS.items()]
           + [Opt(name, True, default=None, doc="Intel RDT schema: not supported, refused") for name in RDT_FLAGS])

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


def _parse_int(text: str, flag: str, unsigned: bool) -> int:
    try:
        value = int(text.strip(), 10)
    except ValueError:
        raise UsageError(f"invalid value {text!r} for flag --{flag}: expected an integer",
                         step="update") from None
    if unsigned and value < 0:
        raise UsageError(f"invalid value {text!r} for flag --{flag}: must not be negative", step="update")
    return value


def patch_from_flags(opts: dict) -> dict:
    """Build the OCI-shaped patch from the individual flags (only the ones given)."""
    patch: dict = {}
    for flag, (section, key, kind, _) in FLAGS.items():
        raw = opts.get(flag.replace("-", "_"))
        if raw is None:
            continue
        if kind == "size":
            value: object = parse_size(raw, flag)
        elif kind == "str":
            value = raw
        else:
            value = _parse_int(raw, flag, unsigned=kind == "uint")
        patch.setdefault(section, {})[key] = value
    return patch


def read_resources(source: str) -> dict:
    """Load the ``--resources`` JSON from a file or stdin and check it against our schema."""
    try:
        if source == "-":
            text = sys.stdin.read()
        else:
            with open(source, encoding="utf-8") as f:
                text = f.read()
    except OSError as e:
        raise UsageError(f"cannot read resources from {source}: {e.strerror}", step="update") from None
    try:
        patch = json.loads(text)
    except ValueError as e:
        raise ConfigError([("", f"invalid JSON: {e}")], source="resources") from None
    check_patch(patch)
    return patch


def check_patch(patch: object) -> None:
    """Schema-check an OCI ``linux.resources`` object, plus the value rules the schema lacks."""
    from ..spec._schemas import SCHEMAS
    from ..spec.validator import compile_schema

    defs = SCHEMAS["config"]["$defs"]
    problems = compile_schema({"$ref": "#/$defs/resources", "$defs": defs})(patch)
    if not problems and isinstance(patch, dict):
        from ..cgroups.resources import KNOWN_KEYS

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


def run(argv: list[str], glob) -> int:
    p = parse(argv, OPTIONS, command="update")
    (cid,) = exactly(p, 1, "update", "[command options] <container-id>")
    if p.opts["resources"] is not None:
        patch = read_resources(p.opts["resources"])
    else:
        for flag in RDT_FLAGS:
            if p.opts[flag.replace("-", "_")] is not None:
                raise UsageError(f"--{flag}: Intel RDT is not supported by pyrunc", step="update")
        patch = patch_from_flags(p.opts)
        check_patch(patch)
    with Container.load(glob.root, cid) as c:
        c.update(patch)
    return 0
