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



# -- waiting for one process, for a program (the Python API) --------------------------------------
#
# The command above is a process of its own: it may take every signal and reap every child. A
# library shares its process with the program: it installs no signal handler, reaps only the pid
# it waits for, and wakes up often enough in the main thread for Ctrl-C to reach the program.

MAIN_THREAD_SLICE = 0.1  # seconds: how soon a KeyboardInterrupt raised without a signal is seen
CHUNK = 65536


class Pipes:
    """The parent's ends of a process's stdio pipes: ``data`` is fed to its stdin (then closed:
    end of input), its stdout and stderr are collected. Every fd is non-blocking; ``close`` is
    safe to call again."""

    def __init__(self, stdin: int | None, data: bytes, stdout: int | None, stderr: int | None):
        self.stdin = stdin
        self.data = memoryview(data)
        self.stdout, self.stderr = stdout, stderr
        self.open = {fd for fd in (stdout, stderr) if fd is not None}
        self.chunks: dict[int, list[bytes]] = {fd: [] for fd in self.open}
        for fd in (stdin, stdout, stderr):
            if fd is not None:
                os.set_blocking(fd, False)
        if not self.data:
            self._close_stdin()

    def _close_stdin(self) -> None:
        fd, self.stdin = self.stdin, None
        if fd is not None:
            os.close(fd)

    def watched(self) -> list[tuple[int, bool]]:
        """(fd, whether we write to it) for every pipe still open."""
        out = [(fd, False) for fd in self.open]
        if self.stdin is not None:
            out.append((self.stdin, True))
        return out

    def ready(self, fd: int) -> None:
        """Move data on ``fd``, which poll reported ready (or hung up)."""
        if fd == self.stdin:
            try:
                n = os.write(fd, self.data[:CHUNK])
            except BlockingIOError:
                return
            except OSError:  # EPIPE: the process reads no more; the rest is dropped, as a shell does
                n = len(self.data)
            self.data = self.data[n:]
            if not self.data:
                self._close_stdin()
            return
        try:
            chunk = os.read(fd, CHUNK)
        except BlockingIOError:
            return
        if chunk:
            self.chunks[fd].append(chunk)
        else:
            self.open.discard(fd)
            os.close(fd)

    def output(self, fd: int | None) -> bytes | None:
        """What came through the pipe that was ``fd`` (None: that stream was no pipe)."""
        return None if fd is None else b"".join(self.chunks[fd])

    def drain(self, timeout: float) -> None:
        """Read until every writer has closed its end, or ``timeout`` seconds have passed (a
        process outside our reach may hold a pipe open); then close everything."""
        import time

        deadline = time.monotonic() + timeout
        self._close_stdin()
        while self.open:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for fd in poll_ready(self.watched(), min(left, MAIN_THREAD_SLICE)):
                self.ready(fd)
        self.close()

    def close(self) -> None:
        self._close_stdin()
        for fd in list(self.open):
            self.open.discard(fd)
            os.close(fd)


def poll_ready(fds: list[tuple[int, bool]], timeout: float | None) -> list[int]:
    """The fds among ``fds`` that can be read (or written, when flagged) or have hung up,
    waiting at most ``timeout`` seconds (None: until one is)."""
    import select

    poller = select.poll()
    for fd, write in fds:
        poller.register(fd, select.POLLOUT if write else select.POLLIN)
    ms = None if timeout is None else max(0, int(timeout * 1000))
    return [fd for fd, _ in poller.poll(ms)]


def wait_child(pid: int, timeout: float | None = None, pipes: Pipes | None = None) -> int | None:
    """Wait until our child ``pid`` exits, moving its pipes' data meanwhile; reap it and return
    its wait status (``os.waitstatus_to_exitcode`` reads it), or None when ``timeout`` seconds
    passed first (it is then neither killed nor reaped).

    Only ``pid`` is reaped: the program's other children stay its own. No signal handler is
    installed, so this works in any thread; in the main thread it wakes every
    MAIN_THREAD_SLICE, so a KeyboardInterrupt raised without a signal (or by a signal another
    thread received) is raised here within that time. Raises ChildProcessError when ``pid`` is
    not our child or was reaped by someone else."""
    import threading
    import time

    slice_ = MAIN_THREAD_SLICE if threading.current_thread() is threading.main_thread() else None
    deadline = None if timeout is None else time.monotonic() + timeout
    pidfd = os.pidfd_open(pid)
    try:
        while True:
            got, status = os.waitpid(pid, os.WNOHANG)
            if got == pid:
                return status
            wait = slice_
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                wait = left if wait is None else min(wait, left)
            watched = [(pidfd, False)] + (pipes.watched() if pipes is not None else [])
            for fd in poll_ready(watched, wait):
                if fd != pidfd and pipes is not None:
                    pipes.ready(fd)
    finally:
        os.close(pidfd)
