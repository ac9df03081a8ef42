"""`pyrunc resume <id>`: thaw a paused container; silent on success, as runc (stdout is data for callers)."""

from __future__ import annotations

from ..container import Container
from .args import exactly, parse


def run(argv: list[str], glob) -> int:
    (cid,) = exactly(parse(argv, [], command="resume"), 1, "resume", "<container-id>")
    with Container.load(glob.root, cid) as c:
        c.resume()
    return 0
