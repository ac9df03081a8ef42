"""The sync channel between pyrunc and the stages it forks.

A SOCK_SEQPACKET socketpair keeps message boundaries, so each send is one
small JSON object with a ``type``. The protocol, in order:

    stage1 -> parent   {"type": "userns"}             (maps wanted; user namespaces only)
    parent -> stage1   {"type": "userns_done"}
    stage1 -> parent   {"type": "pid", "pid": N, "placed": B}
                                                      (init's pid in the host pid ns; B: it was
                                                      born in its cgroups, else the parent moves it)
    parent -> init     {"type": "cgroup_joined"}      (init is in the container's cgroup, with
                                                      its resources written)
    init   -> parent   {"type": "hooks"}              (run prestart + createRuntime now)
    parent -> init     {"type": "hooks_done"}
    init   -> parent   {"type": "console", "name": P} + the pty master fd (terminal: true)
    init   -> parent   {"type": "ready"}              (all setup done; init waits on the fifo)
    any    -> peer     {"type": "error", "step": S, "message": M}

A peer that dies closes its end: ``recv`` then sees EOF and raises, so no
wait can hang on a dead stage.

Messages are ``marshal``-encoded and the sockets come from ``_socket``: both
peers are pyrunc's own code, and the public ``json`` and ``socket`` modules
would cost `create` the imports of ``re`` and ``enum``.
"""

from __future__ import annotations

import _socket
import marshal
import os
import struct

from ..errors import ChildError

MAX_MESSAGE = 64 * 1024


class Channel:
    def __init__(self, sock):
        self.sock = sock

    @classmethod
    def pair(cls) -> tuple[Channel, Channel]:
        a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        return cls(a), cls(b)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, type_: str, *, fds: list[int] | None = None, **fields) -> None:
        fields["type"] = type_
        data = marshal.dumps(fields)
        try:
            if fds:
                rights = struct.pack(f"{len(fds)}i", *fds)
                self.sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
            else:
                self.sock.send(data)
        except (BrokenPipeError, ConnectionResetError):
            # The peer is gone, and may have said why just before: that is the error to report
            # (recv raises it, or says the peer exited), never a bare EPIPE.
            self.recv()
            raise ChildError(f"container init exited before {type_!r} could be sent",
                             step="sync") from None

    def send_error(self, step: str, message: str) -> bool:
        """Report a failure; False if the peer (or our own end) is already closed."""
        try:
            self.send("error", step=step, message=message[:4000])
        except (OSError, ValueError):
            return False
        return True

    def recv(self, timeout: float | None = None, *, eof_ok: bool = False) -> dict | None:
        """Next message; EOF (None if ``eof_ok``) or garbage from the peer becomes a ChildError."""
        self.sock.settimeout(timeout)
        try:
            try:
                data, ancdata, _, _ = self.sock.recvmsg(MAX_MESSAGE, _socket.CMSG_SPACE(4 * 4))
            except ConnectionResetError:
                # The peer exited with a message of ours unread. The kernel says so once, ahead
                # of what the peer sent before it went (its error report): read on.
                data, ancdata, _, _ = self.sock.recvmsg(MAX_MESSAGE, _socket.CMSG_SPACE(4 * 4))
            fds = received_fds(ancdata)
        except TimeoutError:
            raise ChildError("timed out waiting for the container init", step="sync") from None
        if not data:
            if eof_ok:
                return None
            raise ChildError("container init exited before reporting", step="sync")
        try:
            msg = marshal.loads(data)
            if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
                raise ValueError
        except (ValueError, EOFError, TypeError):
            for fd in fds:
                os.close(fd)
            raise ChildError("malformed message from the container init", step="sync") from None
        msg["fds"] = fds
        if msg["type"] == "fault":  # test-only fault injection (PYRUNC_TEST_FAULT): die right here
            os.kill(os.getpid(), 9)
        if msg["type"] == "error":
            raise ChildError(str(msg.get("message", "unknown error")), step=str(msg.get("step", "init")))
        return msg

    def expect(self, type_: str, timeout: float | None = None) -> dict:
        msg = self.recv(timeout)
        if msg["type"] != type_:
            raise ChildError(f"expected {type_!r} from the container init, got {msg['type']!r}",
                             step="sync")
        return msg

    def close(self) -> None:
        self.sock.close()


def received_fds(ancdata: list) -> list[int]:
    """The fds of SCM_RIGHTS control messages."""
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            usable = len(data) - len(data) % 4
            fds.extend(struct.unpack(f"{usable // 4}i", data[:usable]))
    return fds
