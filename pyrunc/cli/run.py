"""`pyrunc run [options] <id>`: create + start; in the foreground, wait and pass the exit status.

Foreground `run` makes itself a child subreaper before forking, so the
container init (whose forking stage exits) is reparented to us and its exit
status can be reaped. Every signal we receive is forwarded to the init.
"""

from __future__ import annotations

import _signal as signal  # the C module: no enum import on the hot path
import os

from .. import proc
from ..container import Container
from ..errors import PyruncError
from .args import Opt, exactly, parse
from .common import CREATE_OPTS, create_options, stay_for_the_container

RUN_OPTS = CREATE_OPTS + [Opt("detach", short="d"), Opt("keep"), Opt("no-subreaper")]
NOT_FORWARDED = {signal.SIGCHLD, signal.SIGKILL, signal.SIGSTOP}


def run(argv: list[str], glob) -> int:
    p = parse(argv, RUN_OPTS, command="run")
    (cid,) = exactly(p, 1, "run", "[command options] <container-id>")
    detach = p.opts["detach"]
    opts = create_options(p.opts, glob, detach=detach, subreaper=not detach, cid=cid)
    c = Container.create(glob.root, cid, opts)
    if detach:
        start_or_destroy(c)
        return 0
    stay_for_the_container()
    forward_signals(c.pid, tty=opts.console_master is not None)
    start_or_destroy(c)
    if opts.console_master is not None:
        from ..console import proxy

        status = proxy(opts.console_master, c.pid, lambda: reap_nohang(c.pid))
    else:
        status = wait_for(c.pid)
    if not p.opts["keep"]:
        c.dir.lock()
        try:
            c.destroy()
        finally:
            c.dir.unlock()
    return status


def start_or_destroy(c: Container) -> None:
    c.dir.lock()
    try:
        c.start()
    except PyruncError:
        try:
            c.delete(force=True)
        except PyruncError:
            pass
        raise
    finally:
        c.dir.unlock()


def forward_signals(pid: int, *, tty: bool = False) -> None:
    """Every signal we get goes to the init (with a tty, SIGWINCH resizes the pty instead)."""
    def forward(sig, _frame):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    for sig in range(1, signal.NSIG):
        if sig in NOT_FORWARDED or (tty and sig == signal.SIGWINCH):
            continue
        try:
            signal.signal(sig, forward)
        except (OSError, ValueError, RuntimeError):
            pass


def reap_nohang(pid: int) -> int | None:
    """Reap any exited children; the init's shell status once it has exited, else None."""
    while True:
        try:
            got, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return None if proc.pid_alive(pid, None) else 0
        if got == 0:
            return None
        if got == pid:
            return proc.waitpid_status(status)


def wait_for(pid: int) -> int:
    """Reap children (we are their subreaper) until the init exits; return its shell status."""
    while True:
        try:
            got, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 0 if not proc.pid_alive(pid, None) else 1
        if got == pid:
            return proc.waitpid_status(status)
