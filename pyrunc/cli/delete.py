"""`pyrunc delete [--force] <id>`: remove a stopped (or, forced, a running) container."""

from __future__ import annotations

from ..container import Container, delete_missing
from ..errors import NotFound, PyruncError
from ..state import check_id
from .args import Opt, exactly, parse

OPTIONS = [Opt("force", short="f", doc="also delete a running or paused container: SIGKILL its processes first")]


def run(argv: list[str], glob) -> int:
    p = parse(argv, OPTIONS, command="delete")
    (cid,) = exactly(p, 1, "delete", "[command options] <container-id>")
    force = p.opts["force"]
    check_id(cid)  # before any path is built from it: `delete -f ../x` must not reach outside
    try:
        c = Container.load(glob.root, cid)
    except NotFound:
        delete_missing(glob.root, cid, force)
        return 0
    except PyruncError:
        if not force:
            raise
        delete_missing(glob.root, cid, True)  # a corrupt state file: --force clears it
        return 0
    with c:
        c.delete(force=force)
    return 0
