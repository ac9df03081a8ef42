"""`pyrunc delete [--force] <id>`: remove a stopped (or, forced, a running) container."""

from __future__ import annotations

from ..container import delete_by_id
from .args import Opt, exactly, parse

OPTIONS = [Opt("force", short="f", doc="also delete a running or paused container: SIGKILL its processes first")]


def run(argv: list[str], glob) -> int:
    p = parse(argv, OPTIONS, command="delete")
    (cid,) = exactly(p, 1, "delete", "[command options] <container-id>")
    delete_by_id(glob.root, cid, force=p.opts["force"])
    return 0
