"""The caller's descriptors that go on to the container, and none of ours.

`--preserve-fds N` and socket activation (LISTEN_FDS) hand the container fds
3.. of the caller, as they were when pyrunc started (runc's semantics). The
stages keep exactly that range open (stage1.close_foreign_fds) and the init
makes it inheritable (init.exec_process), so whatever sits there at fork time
reaches the container. Should the caller have fewer fds than that, pyrunc's
own descriptors (the state directory holding the container's flock, the exec
fifo, a cgroup directory, the log) would take the free numbers and cross into
the container: a deadlock on the flock and the fifo, and a host directory fd
inside the container (the CVE-2024-21626 class).

``claim`` runs before the command opens anything of its own: it moves the few
fds pyrunc already holds at that point (the module bundle, the --log file) out
of the range, then requires every fd of the range to be open. From then on
the range is full of the caller's fds, so no later open of ours can land in it.
"""

from __future__ import annotations

import os

from ..errors import PyruncError


def listen_fds() -> int:
    """How many fds socket activation gave us: LISTEN_FDS when LISTEN_PID is our pid, else 0."""
    try:
        if int(os.environ.get("LISTEN_PID", "0")) != os.getpid():
            return 0
        return max(int(os.environ.get("LISTEN_FDS", "0")), 0)
    except ValueError:
        return 0


def claim(preserve: int, *, step: str, container: str | None = None, activation: bool = True) -> int:
    """Make fds 3..3+listen+preserve the caller's alone; return how many that is.

    ``activation`` False (exec): LISTEN_FDS are only for the container's init, as in runc.

    Raises PyruncError when one of them is not open in the caller (runc: "unable to stat
    preserved-fd"); nothing has been created yet then, so nothing is left behind.
    """
    listen = listen_fds() if activation else 0
    top = 3 + listen + max(preserve, 0)
    if top == 3:
        return 0
    move_own_fds_above(top)
    for fd in range(3, top):
        try:
            os.fstat(fd)
        except OSError as e:
            if fd < 3 + listen:
                what = f"unable to stat listen fd {fd} (LISTEN_FDS={listen})"
            else:
                what = f"unable to stat preserved-fd {fd} (--preserve-fds {preserve} from fd {3 + listen})"
            raise PyruncError(f"{what}: {e.strerror}", step=step, container=container) from None
    return listen + preserve


def move_own_fds_above(top: int) -> None:
    """The fds pyrunc opened before the command ran, renumbered to top or above (close-on-exec)."""
    import fcntl  # only when fds are passed: create/run/exec without them never pay for it
    import sys

    from .. import bundle, log

    for finder in sys.meta_path:
        if isinstance(finder, bundle.BundleFinder) and finder.pid == os.getpid() \
                and finder.fd is not None and 3 <= finder.fd < top:
            old, finder.fd = finder.fd, fcntl.fcntl(finder.fd, fcntl.F_DUPFD_CLOEXEC, top)
            os.close(old)
    logger = log.get()
    if logger.fd is not None and 3 <= logger.fd < top:
        old, logger.fd = logger.fd, fcntl.fcntl(logger.fd, fcntl.F_DUPFD_CLOEXEC, top)
        os.close(old)
