"""`pyrunc pause <id>`: freeze every process of the container (v1 freezer, v2 cgroup.freeze).

Prints nothing on success (callers.md R2). The lock is held so a concurrent
delete or resume cannot interleave with the freeze.
"""

from __future__ import annotations

from ..container import Container
from .args import exactly, parse


def run(argv: list[str], glob) -> int:
    (cid,) = exactly(parse(argv, [], command="pause"), 1, "pause", "<container-id>")
    c = Container.load(glob.root, cid)
    try:
        c.pause()
    finally:
        c.dir.unlock()
    return 0
