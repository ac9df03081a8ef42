"""`pyrunc delete [--force] <id>`: remove a stopped (or, forced, a running) container."""

from __future__ import annotations

from ..container import delete_by_id
from .args import Opt, exactly, parse


def run(argv: list[str], glob) -> int:
    p = parse(argv, [Opt("force", short="f")], command="delete")
    (cid,) = exactly(p, 1, "delete", "[command options] <container-id>")
    delete_by_id(glob.root, cid, force=p.opts["force"])
    return 0
