"""The exec fifo: how `start` releases an init that waits in `created`.

The init holds an O_PATH fd of the fifo and, as its last setup act, reopens it
write-only through its own procfs handle's fd directory (so the path never has
to exist inside the container, and a swapped /proc cannot redirect it: see
linux/procfs.py); that open blocks until `start` opens the read side. The init then
writes STARTED, runs the startContainer hooks, writes EXECUTING and execs;
the write end is close-on-exec, so `start` sees end-of-file exactly when the
user program has replaced the init, and only then runs the poststart hooks
(runtime.md orders them after the program starts). End-of-file without
EXECUTING means the init died in between (a failed startContainer hook). `start` polls the fifo together with a pidfd
of the init, so an init that died is noticed instead of waited for.
"""

from __future__ import annotations

import os
import select

from ..errors import PyruncError

STARTED = b"0"
EXECUTING = b"1"


def make(path: str) -> int:
    """Create the fifo (0622, like runc) and return an O_PATH fd for the init to keep."""
    os.mkfifo(path, 0o622)
    os.chmod(path, 0o622)
    return os.open(path, os.O_PATH | os.O_CLOEXEC)


def wait_for_start(fifo_fd: int) -> int:
    """Init side: block until `start` opens the fifo, write the byte; the fd stays open (CLOEXEC)."""
    from ..linux import procfs  # through our own procfs: the container's /proc may be swapped

    fd = procfs.reopen(fifo_fd, os.O_WRONLY)
    os.close(fifo_fd)
    os.write(fd, STARTED)
    return fd


def release(path: str, pid: int, cid: str) -> None:
    """Start side: open, wait for the byte (or the init's death), remove the fifo."""
    # The pidfd first: opening the fifo releases the init, and a quick program can exit and
    # be reaped by the caller before a later pidfd_open would find it.
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        raise PyruncError("cannot start a container that has stopped", step="start",
                          container=cid) from None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        os.close(pidfd)
        raise PyruncError("cannot start an already running container", step="start",
                          container=cid) from None
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP)
        poller.register(pidfd, select.POLLIN)
        got = b""
        while True:
            events = dict(poller.poll())
            if fd in events:
                data = os.read(fd, 2)
                if not data:
                    break  # the init exec'd (or died): the write end is gone
                got += data
                unlink_quietly(path)  # from here on the container is `running`
                continue
            if pidfd in events:
                if not got:
                    raise PyruncError("container init exited before start", step="start",
                                      container=cid)
                poller.unregister(pidfd)  # its end of the fifo is closing too: wait for EOF
        if not got:
            raise PyruncError("exec fifo is empty: the container init exited", step="start",
                              container=cid)
        if got != STARTED + EXECUTING:
            raise PyruncError("container init exited before running the program "
                              "(a startContainer hook or the exec failed)", step="start", container=cid)
    finally:
        os.close(fd)
        os.close(pidfd)
        unlink_quietly(path)


def unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
