"""`pyrunc plan [options] [<container-id>]`: what `create` would do, without doing any of it.

Takes `create`'s options (and `--format text|json`); the id defaults to the bundle directory's
name, which only matters where the config has no cgroupsPath (the cgroup is named after it).
The plan itself is pyrunc/process/plan.py's; `create --dry-run` prints the same.
"""

from __future__ import annotations

from ..errors import UsageError
from .args import parse
from .common import CREATE_OPTS, PLAN_OPTS, default_id, print_plan


def run(argv: list[str], glob) -> int:
    p = parse(argv, CREATE_OPTS + PLAN_OPTS, command="plan")
    if len(p.args) > 1:
        raise UsageError('"plan" takes at most 1 argument (usage: pyrunc plan [command options] '
                         "[<container-id>])", step="plan")
    cid = p.args[0] if p.args else default_id(p.opts["bundle"])
    return print_plan(p.opts, glob, cid)
