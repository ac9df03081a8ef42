"""`pyrunc create [options] <id>`: set the container up; its init waits for `start`."""

from __future__ import annotations

from ..container import Container
from .args import exactly, parse
from .common import CREATE_OPTS, create_options


def run(argv: list[str], glob) -> int:
    p = parse(argv, CREATE_OPTS, command="create")
    (cid,) = exactly(p, 1, "create", "[command options] <container-id>")
    Container.create(glob.root, cid, create_options(p.opts, glob, detach=True, cid=cid))
    return 0
