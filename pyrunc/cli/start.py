"""`pyrunc start <id>`: release a created container's init into the user program."""

from __future__ import annotations

from ..container import Container
from .args import exactly, parse


def run(argv: list[str], glob) -> int:
    (cid,) = exactly(parse(argv, [], command="start"), 1, "start", "<container-id>")
    with Container.load(glob.root, cid) as c:
        c.start()
    return 0
