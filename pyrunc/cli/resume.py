"""`pyrunc resume <id>`: thaw a paused container; silent on success (callers.md R2)."""

from __future__ import annotations

from ..container import Container
from .args import exactly, parse


def run(argv: list[str], glob) -> int:
    (cid,) = exactly(parse(argv, [], command="resume"), 1, "resume", "<container-id>")
    c = Container.load(glob.root, cid)
    try:
        c.resume()
    finally:
        c.dir.unlock()
    return 0
