"""Connecting to a caller's AF_UNIX socket (console socket, pidfd socket, seccomp listener).

Each is a host path given on the command line or in the config, connected on the host side
before anything is made, so that a bad path fails the command with nothing left behind. The C
module ``_socket`` keeps ``socket`` (and its enum import) off the hot path; its sockets are
close-on-exec like every fd Python makes.
"""

from __future__ import annotations

import _socket

from pyrunc.errors import PyruncError


def connect(path: str, what: str, *, step: str | None = None):
    """A SOCK_STREAM connection to ``path``; one error naming ``what`` and the path otherwise."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise PyruncError(f"connect to {what} {path}: {e.strerror}", step=step, errno=e.errno or 0) from None
    return sock
