"""Staying with a container in the foreground: `run`, `exec` and `restore` without --detach.

The command is the process's subreaper (or parent), forwards every signal it gets to it, and
waits for it, proxying a terminal if there is one; the exit status is passed on as a shell
would report it. Shared by the three commands and by the Python API, so none of them imports
another command's module.
"""

from __future__ import annotations

import _signal as signal  # the C module: no enum import on the hot path
import os

from . import proc

NOT_FORWARDED = {signal.SIGCHLD, signal.SIGKILL, signal.SIGSTOP}


def stay_for_the_container() -> None:
    """Turn Python's cyclic garbage collector back on for a command that lives as long as the
    container (foreground `run` and `exec`, `events`). The launcher turns it off: start-up makes
    no garbage worth collecting, and the collections it runs during the imports cost ~1 ms of
    every call."""
    import gc

    gc.enable()


def forward_signals(pid: int, *, tty: bool = False) -> None:
    """Every signal we get goes to ``pid`` (with a tty, SIGWINCH resizes the pty instead)."""
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
    """Reap any exited children; the process's shell status once it has exited, else None."""
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
    """Reap children (we are their subreaper) until ``pid`` exits; return its shell status."""
    while True:
        try:
            got, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 0 if not proc.pid_alive(pid, None) else 1
        if got == pid:
            return proc.waitpid_status(status)


def attend(pid: int, master: int | None) -> int:
    """Stay with ``pid`` until it exits: forward signals, proxy the terminal (its pty master)
    if there is one, return the exit status."""
    stay_for_the_container()
    forward_signals(pid, tty=master is not None)
    if master is not None:
        from .console import proxy

        return proxy(master, pid, lambda: reap_nohang(pid))
    return wait_for(pid)
