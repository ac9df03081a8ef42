"""`pyrunc checkpoint [options] <id>`: checkpoint a running container with CRIU (pyrunc/criu)."""

from __future__ import annotations

import sys

from ..container import Container
from ..errors import CHECKPOINT, Boundary, UsageError
from .args import Opt, exactly, parse

OPTIONS = [
    Opt("image-path", True, default=None),
    Opt("work-path", True, default=None),
    Opt("parent-path", True, default=None),
    Opt("leave-running"),
    Opt("tcp-established"),
    Opt("ext-unix-sk"),
    Opt("shell-job"),
    Opt("lazy-pages"),
    Opt("status-fd", True, default="-1"),
    Opt("page-server", True, default=None),
    Opt("file-locks"),
    Opt("pre-dump"),
    Opt("manage-cgroups-mode", True, default=None),
    Opt("empty-ns", True, multi=True),
    Opt("auto-dedup"),
    Opt("help", short="h"),
]


def run(argv: list[str], glob) -> int:
    p = parse(argv, OPTIONS, command="checkpoint")
    if p.opts["help"]:  # podman asks `<runtime> checkpoint --help` whether C/R is supported
        from .args import help_text

        sys.stdout.write(help_text("checkpoint", "checkpoint a running container", OPTIONS))
        return 0
    (cid,) = exactly(p, 1, "checkpoint", "[command options] <container-id>")
    del p.opts["help"]
    try:
        p.opts["status_fd"] = int(p.opts["status_fd"])
    except ValueError:
        raise UsageError(f"invalid value {p.opts['status_fd']!r} for --status-fd") from None
    from ..criu.common import CriuOptions

    with Boundary(cid, CHECKPOINT):
        o = CriuOptions(**p.opts)
    with Container.load(glob.root, cid) as c:
        c.checkpoint(o, glob.criu)
    return 0
