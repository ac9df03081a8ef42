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

With ``interrupt:<point>`` (tests/integration/test_api.py) the parent is not killed but
interrupted, as a program calling the Python API is by Ctrl-C: a KeyboardInterrupt is raised at
a parent point, and an init step makes the kernel send the parent SIGINT instead of SIGKILL
(Python's default handler turns it into a KeyboardInterrupt in the main thread).

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
INTERRUPT = "interrupt:"


def point(name: str) -> None:
    """The parent dies (or is interrupted) here when this is the armed point."""
    if FAULT is None:
        return
    if FAULT == name:
        os.kill(os.getpid(), signal.SIGKILL)
    if FAULT == INTERRUPT + name:
        raise KeyboardInterrupt(f"test fault at {name}")


_armed: list[int] = []  # the read end, kept open in the parent for as long as it lives


def arm(ctx: InitContext) -> None:
    """In the parent, before the fork: hand the init a way to kill (or interrupt) us before the
    armed step."""
    if FAULT is None:
        return
    step, sig = FAULT, signal.SIGKILL
    if step.startswith(INTERRUPT):
        step, sig = step[len(INTERRUPT):], signal.SIGINT
    if step in PARENT_POINTS:
        return
    import fcntl

    read_end, write_end = os.pipe2(os.O_CLOEXEC)  # close-on-exec: the program never sees it
    fcntl.fcntl(read_end, fcntl.F_SETOWN, os.getpid())
    fcntl.fcntl(read_end, fcntl.F_SETSIG, sig)
    fcntl.fcntl(read_end, fcntl.F_SETFL, os.O_ASYNC | os.O_NONBLOCK)
    _armed.append(read_end)
    ctx.fault_step = step
    ctx.fault_fd = write_end


def before_step(ctx: InitContext, step: str) -> None:
    """In a stage, before each step: kill the parent if this is the armed step."""
    if ctx.fault_step == step and ctx.fault_fd is not None:
        os.write(ctx.fault_fd, b"!")
