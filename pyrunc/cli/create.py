"""`pyrunc create [options] <id>`: set the container up; its init waits for `start`.

`--dry-run` prints what it would do instead (the plan of `pyrunc plan`) and makes nothing.
"""

from __future__ import annotations

from ..container import Container
from .args import Opt, exactly, parse
from .common import CREATE_OPTS, PLAN_OPTS, create_options

OPTIONS = CREATE_OPTS + [Opt("dry-run", doc="print what create would do (the plan) and make nothing")] + PLAN_OPTS


def run(argv: list[str], glob) -> int:
    p = parse(argv, OPTIONS, command="create")
    (cid,) = exactly(p, 1, "create", "[command options] <container-id>")
    if p.opts["dry_run"]:
        from .common import print_plan

        return print_plan(p.opts, glob, cid)
    Container.create(glob.root, cid, create_options(p.opts, glob, detach=True, cid=cid))
    return 0
