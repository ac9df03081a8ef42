"""`pyrunc list [--format table|json] [-q]`: every container under --root."""

from __future__ import annotations

import sys

from ..container import all_containers
from ..errors import UsageError
from .args import Opt, parse

OPTIONS = [
    Opt("format", True, "f", default="table", doc="table, or json (an array of state documents)"),
    Opt("quiet", short="q", doc="print only the container ids"),
]


def run(argv: list[str], glob) -> int:
    p = parse(argv, OPTIONS, command="list")
    if p.args:
        raise UsageError('"list" requires exactly 0 arguments', step="list")
    containers = all_containers(glob.root)
    if p.opts["quiet"]:
        sys.stdout.write("".join(c.id + "\n" for c in containers))
        return 0
    docs = []
    for c in containers:
        d = c.oci_state()
        d["owner"] = c.owner()
        docs.append(d)
    fmt = p.opts["format"]
    if fmt == "json":
        from ..jsonout import dumps

        sys.stdout.write(dumps(docs or None) + "\n")
    elif fmt == "table":
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [(d["id"], str(d["pid"]), d["status"], d["bundle"], d["created"], d["owner"])
                 for d in docs]
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        for r in rows:
            sys.stdout.write("   ".join(v.ljust(w) for v, w in zip(r, widths, strict=False)).rstrip() + "\n")
    else:
        raise UsageError(f"invalid format option {fmt!r}", step="list")
    return 0
