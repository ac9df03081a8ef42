"""What `create` and `exec` share to launch a stage and serve it: the seccomp filter compiled
before the fork, the fork itself (born in the container's cgroups where possible), the terminal
rule, and the answers to the stage's console and seccomp messages.
"""

from __future__ import annotations

import _signal as signal  # the C module: no enum import on the hot path
import os

from .. import linux, log
from ..errors import SYNC, ChildError, PyruncError
from . import channel

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .stages import InitContext


def check_terminal(terminal: bool, detach: bool, console_socket: str | None, step: str) -> None:
    """runc's rule for a terminal: a detached one needs a console socket to send the pty master
    to, and a console socket is only for a terminal."""
    if terminal and detach and not console_socket:
        raise PyruncError("cannot allocate tty if pyrunc will detach without setting console socket",
                          step=step)
    if console_socket and not terminal:
        raise PyruncError("cannot use console socket if pyrunc will not detach or allocate tty",
                          step=step)


def connect_console(path: str | None):
    """The caller's console socket, connected before anything is made (a bad path fails early)."""
    if not path:
        return None
    from ..console import connect_console_socket

    return connect_console_socket(path)


def connect_pidfd_socket(path: str | None):
    """--pidfd-socket: connected here, on the host side, before anything is made (a path that is
    no listening socket fails the command with nothing left behind); the container's process
    sends its pidfd over it itself (stages.send_pidfd), as runc 1.2+ does."""
    if not path:
        return None
    from ..linux import unixsock

    return unixsock.connect(path, "pidfd socket")


def compile_seccomp(config: dict, cid: str):
    """linux.seccomp compiled to BPF here, before any fork (cached by profile hash)."""
    sc = (config.get("linux") or {}).get("seccomp")
    if sc is None:
        return None
    from ..security.seccomp import compile_filter

    flt = compile_filter(sc)
    for warning in flt.warnings:
        log.get().warning(f"container {cid}: {warning}")
    return flt


def plan_cgroup_birth(mgr, ctx: InitContext) -> tuple[bool, int | None]:
    """Place the container's processes at birth instead of moving them (stages.py): the stage is
    cloned into the cgroup2 directory (the fd returned, if there is one) and joins the v1
    hierarchies itself; what it forks inherits all of it. No cgroup.procs write, and none of its
    RCU grace period, is then on the way to the container.

    Not rootless: apply() skips the hierarchies we may not write to, which this cannot know.
    Not into a systemd unit that does not exist yet: the init's pid starts it (cgroups/systemd.py).
    """
    if mgr is None or mgr.rootless or not mgr.can_place_at_birth():
        return False, None
    v1_dirs, cgroup2 = mgr.birth_plan()
    fd = None
    if cgroup2:
        try:
            fd = os.open(cgroup2, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return False, None
    ctx.cgroup_v1_dirs = v1_dirs
    return True, fd


# Whether a stage may be forked by a raw clone3 into its cgroup (linux.fork_into_cgroup). That is
# sound only in a process with one thread, whose Python state the child may copy as it is: the
# `pyrunc` command. The Python API turns it off when imported (pyrunc/api/__init__.py): a
# program may run threads (a thread holding the GIL or a lock at the clone leaves the child
# waiting forever), and a signal its handler has not yet seen would be raised in the child too,
# as a KeyboardInterrupt running the parent's cleanup. os.fork resets both in the child.
RAW_CLONE = True


def fork_stage(cgroup2_fd: int | None) -> tuple[int, bool]:
    """Fork a stage, into the cgroup2 directory when given: (pid or 0, born there). When the
    kernel refuses the clone (no clone3, say), or RAW_CLONE is off, it is a plain fork and the
    parent moves it."""
    if cgroup2_fd is not None and not RAW_CLONE:
        return os.fork(), False
    if cgroup2_fd is not None:
        try:
            return linux.fork_into_cgroup(cgroup2_fd), True
        except OSError:
            return os.fork(), False
    return os.fork(), True


def take_console(msg: dict, console_sock) -> int | None:
    """A stage's CONSOLE message: the pty master goes on to the console socket (closed here), or
    is returned for a foreground command to proxy."""
    if not msg["fds"]:
        raise ChildError("console message without the pty master", step=SYNC)
    master = msg["fds"][0]
    if console_sock is None:
        return master
    from ..console import send_master

    try:
        send_master(console_sock, master, str(msg.get("name", "")))
    finally:
        os.close(master)
    return None


def pass_seccomp_listener(chan, msg: dict, config: dict, state: dict, pid: int) -> None:
    """A stage's SECCOMP message: the notify listener fd goes to the agent at
    linux.seccomp.listenerPath with the state document, then the stage may go on."""
    if not msg["fds"]:
        raise ChildError("seccomp message without the listener fd", step=SYNC)
    fd = msg["fds"][0]
    from ..security.seccomp import send_listener

    sc = (config.get("linux") or {}).get("seccomp") or {}
    try:
        if not sc.get("listenerPath"):
            raise PyruncError("SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath", step="seccomp")
        send_listener(sc["listenerPath"], fd, state, sc.get("listenerMetadata"), pid=pid)
    finally:
        os.close(fd)
    chan.send(channel.SECCOMP_DONE)


def kill_started(pids: tuple[int, ...], *, children: tuple[int, ...] = ()) -> None:
    """SIGKILL each process we started that may still be there (0: none), then reap those of
    them that are our children (a forked stage; the init of a create is the caller's)."""
    for pid in pids:
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for pid in children:
        if pid:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
