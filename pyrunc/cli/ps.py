"""`pyrunc ps [--format table|json] <id> [ps-args...]`: the processes of the container's cgroup.

json prints the host pids as a JSON array. table runs the host's ``ps`` with
the given arguments (default ``-ef``) and keeps the header plus the lines whose
PID column names a pid of the cgroup, which is how callers (podman top, ctr)
expect it. Everything after the id belongs to ``ps``, as with runc.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from ..container import Container
from ..errors import PyruncError, UsageError
from .args import Opt, parse

# Absolute fallbacks: podman may call us with an empty environment (no PATH).
PS_CANDIDATES = ("/usr/bin/ps", "/bin/ps")
OPTIONS = [Opt("format", True, "f", default="table",
              doc="table (the host's ps output, filtered to the container), or json (an array of pids)")]


def _ps_binary() -> str:
    for path in PS_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    found = shutil.which("ps")
    if not found:
        raise PyruncError("ps command not found on the host", step="ps")
    return found


def filter_table(output: str, pids: set[int]) -> str:
    """Header plus the lines whose PID column is in ``pids``.

    The PID column is located in the header by name; ps right-aligns numbers,
    but a line is split on whitespace so the column index is what counts.
    """
    lines = output.splitlines()
    if not lines:
        raise PyruncError("couldn't find PID field in ps output", step="ps")
    header = lines[0].split()
    try:
        col = header.index("PID")
    except ValueError:
        raise PyruncError("couldn't find PID field in ps output", step="ps") from None
    kept = [lines[0]]
    for line in lines[1:]:
        fields = line.split(None, col + 1)
        if len(fields) <= col:
            continue
        try:
            pid = int(fields[col])
        except ValueError:
            raise PyruncError(f"unexpected pid {fields[col]!r} in ps output", step="ps") from None
        if pid in pids:
            kept.append(line)
    return "\n".join(kept) + "\n"


def run(argv: list[str], glob) -> int:
    p = parse(argv, OPTIONS, stop_at_positional=True, command="ps")
    if not p.args:
        raise UsageError('"ps" requires a minimum of 1 argument (usage: pyrunc ps [command options] '
                         '<container-id> [ps options])', step="ps")
    cid, ps_args = p.args[0], p.args[1:]
    fmt = p.opts["format"]
    if fmt not in ("table", "json"):
        raise UsageError(f"invalid format option {fmt!r}", step="ps")
    c = Container.load(glob.root, cid, lock=False)
    pids = c.processes()
    if fmt == "json":
        sys.stdout.write(json.dumps(pids) + "\n")
        return 0
    proc = subprocess.run([_ps_binary(), *(ps_args or ["-ef"])], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise PyruncError(f"ps {' '.join(ps_args or ['-ef'])}: {proc.stderr.strip() or 'failed'}",
                          step="ps", container=cid)
    sys.stdout.write(filter_table(proc.stdout, set(pids)))
    return 0
