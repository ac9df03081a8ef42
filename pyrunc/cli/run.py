"""`pyrunc run [options] <id>`: create + start; in the foreground, wait and pass the exit status.

Foreground `run` makes itself a child subreaper before forking, so the
container init (whose forking stage exits) is reparented to us and its exit
status can be reaped. Every signal we receive is forwarded to the init.
"""

from __future__ import annotations

from ..container import Container
from ..errors import PyruncError
from .args import Opt, exactly, parse
from .common import CREATE_OPTS, create_options

RUN_OPTS = CREATE_OPTS + [
    Opt("detach", short="d", doc="start the container and return at once; its init is left to the caller"),
    Opt("keep", doc="keep the stopped container after it exits (remove it with `delete`)"),
    Opt("no-subreaper", doc="accepted for runc's callers; a foreground run is always a subreaper"),
]


def run(argv: list[str], glob) -> int:
    p = parse(argv, RUN_OPTS, command="run")
    (cid,) = exactly(p, 1, "run", "[command options] <container-id>")
    detach = p.opts["detach"]
    opts = create_options(p.opts, glob, detach=detach, subreaper=not detach, cid=cid)
    c = Container.create(glob.root, cid, opts)
    if detach:
        start_or_destroy(c)
        return 0
    from ..foreground import attend, forward_signals, stay_for_the_container

    stay_for_the_container()
    forward_signals(c.pid, tty=c.console_master is not None)  # before start: no signal is lost
    start_or_destroy(c)
    status = attend(c.pid, c.console_master)
    if not p.opts["keep"]:
        with c.locked():
            c.destroy()
    return status


def start_or_destroy(c: Container) -> None:
    with c.locked():
        try:
            c.start()
        except PyruncError:
            try:
                c.delete(force=True)
            except PyruncError:
                pass
            raise
