"""The sync channel between pyrunc and the stages it forks.

A SOCK_SEQPACKET socketpair keeps message boundaries, so each send is one small
object with a ``type``, one of the kinds declared below (sending any other is a
bug, refused). The protocol of `create`, in order:

    stage1 -> parent   USERNS         maps wanted (a new user namespace only)
    parent -> stage1   USERNS_DONE
    stage1 -> parent   PID            pid=N (the init, host pid ns), placed=B (born in its
                                      cgroups; otherwise the parent moves it)
    parent -> init     CGROUP_JOINED  the init is in its cgroup, resources written
    init   -> parent   HOOKS          run prestart + createRuntime now
    parent -> init     HOOKS_DONE
    init   -> parent   CONSOLE        name=P + the pty master fd (terminal: true)
    init   -> parent   SECCOMP        + the notify listener fd (SCMP_ACT_NOTIFY)
    parent -> init     SECCOMP_DONE   the listener reached the agent
    init   -> parent   READY          timeline=[...]; the init now waits on the exec fifo

and of `exec` (process/tenant.py):

    parent -> joiner   GO             the joiner is in the container's cgroup
    joiner -> parent   PID            pid=N of the process forked into the pid namespace
    tenant -> parent   CONSOLE, SECCOMP (as above; SECCOMP_DONE back)
    tenant -> parent   EXEC           set up; next comes end-of-file (the program runs: the
                                      channel is close-on-exec) or ERROR (execve failed)

Either way, any side may send ERROR (step=S, message=M) instead: ``recv`` raises it as a
ChildError. A peer that dies closes its end: ``recv`` then sees EOF and raises, so no wait
can hang on a dead stage.

Messages are ``marshal``-encoded and the sockets come from ``_socket``: both
peers are pyrunc's own code, and the public ``json`` and ``socket`` modules
would cost `create` the imports of ``re`` and ``enum``.
"""

from __future__ import annotations

import _socket
import marshal
import os
import struct

from ..errors import SYNC, ChildError

MAX_MESSAGE = 64 * 1024
# Up to four fds, and the sender's credentials where the receiver asked for them (SO_PASSCRED,
# the Python API's creations: Creation.forking): without room for both, the kernel would cut
# the fds off.
ANCILLARY = _socket.CMSG_SPACE(4 * 4) + _socket.CMSG_SPACE(3 * 4)

USERNS = "userns"
USERNS_DONE = "userns_done"
PID = "pid"
CGROUP_JOINED = "cgroup_joined"
HOOKS = "hooks"
HOOKS_DONE = "hooks_done"
CONSOLE = "console"
SECCOMP = "seccomp"
SECCOMP_DONE = "seccomp_done"
READY = "ready"
GO = "go"
EXEC = "exec"
ERROR = "error"
KINDS = frozenset((USERNS, USERNS_DONE, PID, CGROUP_JOINED, HOOKS, HOOKS_DONE, CONSOLE, SECCOMP,
                   SECCOMP_DONE, READY, GO, EXEC, ERROR))


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
        if type_ not in KINDS:
            raise ValueError(f"unknown sync message kind {type_!r}")
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
                             step=SYNC) from None

    def send_error(self, step: str, message: str) -> bool:
        """Report a failure; False if the peer (or our own end) is already closed."""
        try:
            self.send(ERROR, step=step, message=message[:4000])
        except (OSError, ValueError):
            return False
        return True

    def recv(self, timeout: float | None = None, *, eof_ok: bool = False) -> dict | None:
        """Next message; EOF (None if ``eof_ok``) or garbage from the peer becomes a ChildError."""
        self.sock.settimeout(timeout)
        try:
            try:
                data, ancdata, _, _ = self.sock.recvmsg(MAX_MESSAGE, ANCILLARY)
            except ConnectionResetError:
                # The peer exited with a message of ours unread. The kernel says so once, ahead
                # of what the peer sent before it went (its error report): read on.
                data, ancdata, _, _ = self.sock.recvmsg(MAX_MESSAGE, ANCILLARY)
            fds = received_fds(ancdata)
        except TimeoutError:
            raise ChildError("timed out waiting for the container init", step=SYNC) from None
        if not data:
            if eof_ok:
                return None
            raise ChildError("container init exited before reporting", step=SYNC)
        try:
            msg = marshal.loads(data)
            if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
                raise ValueError
        except (ValueError, EOFError, TypeError):
            for fd in fds:
                os.close(fd)
            raise ChildError("malformed message from the container init", step=SYNC) from None
        msg["fds"] = fds
        if msg["type"] == ERROR:
            raise ChildError(str(msg.get("message", "unknown error")), step=str(msg.get("step", "init")))
        return msg

    def expect(self, type_: str, timeout: float | None = None) -> dict:
        msg = self.recv(timeout)
        if msg["type"] != type_:
            raise ChildError(f"expected {type_!r} from the container init, got {msg['type']!r}",
                             step=SYNC)
        return msg

    def close(self) -> None:
        self.sock.close()

    def senders(self) -> list[int]:
        """Drain what is waiting, without blocking: the pids that sent it (SO_PASSCRED must have
        been on when they sent). For an unwind that never learnt a stage's pid; fds that came
        along are closed."""
        pids: list[int] = []
        self.sock.setblocking(False)
        while True:
            try:
                data, ancdata, _, _ = self.sock.recvmsg(MAX_MESSAGE, ANCILLARY)
            except (BlockingIOError, InterruptedError, ConnectionResetError):
                break
            for fd in received_fds(ancdata):
                os.close(fd)
            for level, kind, cred in ancdata:
                if level == _socket.SOL_SOCKET and kind == _socket.SCM_CREDENTIALS and len(cred) >= 12:
                    pids.append(struct.unpack("3i", cred[:12])[0])
            if not data:
                break
        return pids


def received_fds(ancdata: list) -> list[int]:
    """The fds of SCM_RIGHTS control messages."""
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            usable = len(data) - len(data) % 4
            fds.extend(struct.unpack(f"{usable // 4}i", data[:usable]))
    return fds
