"""`pyrunc pause <id>`: freeze every process of the container (v1 freezer, v2 cgroup.freeze).

Prints nothing on success, as runc (stdout is data for callers). The lock is held so a concurrent
delete or resume cannot interleave with the freeze.
"""

from __future__ import annotations

from ..container import Container
from .args import exactly, parse


def run(argv: list[str], glob) -> int:
    (cid,) = exactly(parse(argv, [], command="pause"), 1, "pause", "<container-id>")
    with Container.load(glob.root, cid) as c:
        c.pause()
    return 0
