"""Fault injection for the crash tests, and nowhere else.

``PYRUNC_TEST_FAULT=<point>`` (tests/integration/test_crash.py) makes `create` die by SIGKILL at
a named point, to prove that whatever a killed create leaves behind, `state` reads honestly and
`delete --force` removes:

- a point of the parent's (``PARENT_POINTS``): the parent kills itself there (``point``);
- the name of an init step: the init kills the parent just before running that step. The
  parent's pid means nothing in the container's pid namespace (and pidfd_send_signal refuses a
  process outside the caller's), so the parent arms a pipe before the fork: the kernel sends
  the owner of its read end SIGKILL (F_SETOWN, F_SETSIG, O_ASYNC) the moment the init writes a
  byte to the write end (``arm``, ``before_step``).

Without the variable (every real run) each hook is one comparison with None, and no fd is
opened.
"""

from __future__ import annotations

import _signal as signal  # the C module: no enum import on the hot path
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .stages import InitContext

FAULT = os.environ.get("PYRUNC_TEST_FAULT") or None
PARENT_POINTS = ("reserve", "cgroup", "fork", "init_pid", "saved")


def point(name: str) -> None:
    """The parent dies here when this is the armed point."""
    if FAULT == name:
        os.kill(os.getpid(), signal.SIGKILL)


_armed: list[int] = []  # the read end, kept open in the parent for as long as it lives


def arm(ctx: InitContext) -> None:
    """In the parent, before the fork: hand the init a way to kill us before the armed step."""
    if FAULT is None or FAULT in PARENT_POINTS:
        return
    import fcntl

    read_end, write_end = os.pipe2(os.O_CLOEXEC)  # close-on-exec: the program never sees it
    fcntl.fcntl(read_end, fcntl.F_SETOWN, os.getpid())
    fcntl.fcntl(read_end, fcntl.F_SETSIG, signal.SIGKILL)
    fcntl.fcntl(read_end, fcntl.F_SETFL, os.O_ASYNC | os.O_NONBLOCK)
    _armed.append(read_end)
    ctx.fault_step = FAULT
    ctx.fault_fd = write_end


def before_step(ctx: InitContext, step: str) -> None:
    """In a stage, before each step: kill the parent if this is the armed step."""
    if ctx.fault_step == step and ctx.fault_fd is not None:
        os.write(ctx.fault_fd, b"!")
