"""A small client for CRIU's RPC: protobuf wire encoding of the few messages used, and a
`criu swrk` session over a socketpair (the way runc drives CRIU).

Why our own encoder instead of Debian's ``pycriu`` + ``google.protobuf``: the launcher runs
Python isolated (``-IS``), so /usr/lib/python3/dist-packages is not on the path, and bending
the path for two commands would put a foreign protobuf runtime next to our venv. The protocol
we need is tiny: a ``criu_req`` made of varints, strings and a few nested messages, and a
``criu_resp`` read back the same way. Field numbers are those of CRIU's ``rpc.proto``
(/usr/include/criu/rpc.proto); tests/unit/test_criu_rpc.py checks our bytes against pycriu's
generated classes where they are installed.

Only the checkpoint and restore commands import this module.
"""

from __future__ import annotations

import os
import socket

from ..errors import PyruncError

# criu_req_type
EMPTY, DUMP, RESTORE, CHECK, PRE_DUMP, PAGE_SERVER, NOTIFY = 0, 1, 2, 3, 4, 5, 6
FEATURE_CHECK, VERSION = 9, 10
TYPE_NAMES = {DUMP: "dump", RESTORE: "restore", CHECK: "check", PRE_DUMP: "pre-dump",
              NOTIFY: "notify", FEATURE_CHECK: "feature check", VERSION: "version"}

# criu_cg_mode, by runc's --manage-cgroups-mode names ("" is CRIU's default)
CG_MODES = {"ignore": 0, "soft": 3, "full": 4, "strict": 5, "": 6}

# Field tables: name -> (number, kind). kinds: "i" int32/uint32 (varint), "b" bool, "s" string,
# or a nested table. A list value is a repeated field.
PAGE_SERVER_INFO = {"address": (1, "s"), "port": (2, "i"), "pid": (3, "i"), "fd": (4, "i")}
EXT_MOUNT_MAP = {"key": (1, "s"), "val": (2, "s")}
JOIN_NAMESPACE = {"ns": (1, "s"), "ns_file": (2, "s"), "extra_opt": (3, "s")}
INHERIT_FD = {"key": (1, "s"), "fd": (2, "i")}
CGROUP_ROOT = {"ctrl": (1, "s"), "path": (2, "s")}
FEATURES = {"mem_track": (1, "b"), "lazy_pages": (2, "b"), "pidfd_store": (3, "b")}
OPTS = {
    "images_dir_fd": (1, "i"), "pid": (2, "i"), "leave_running": (3, "b"), "ext_unix_sk": (4, "b"),
    "tcp_established": (5, "b"), "evasive_devices": (6, "b"), "shell_job": (7, "b"),
    "file_locks": (8, "b"), "log_level": (9, "i"), "log_file": (10, "s"), "ps": (11, PAGE_SERVER_INFO),
    "notify_scripts": (12, "b"), "root": (13, "s"), "parent_img": (14, "s"), "track_mem": (15, "b"),
    "auto_dedup": (16, "b"), "work_dir_fd": (17, "i"), "link_remap": (18, "b"),
    "ext_mnt": (23, EXT_MOUNT_MAP), "manage_cgroups": (24, "b"), "cg_root": (25, CGROUP_ROOT),
    "rst_sibling": (26, "b"), "inherit_fd": (27, INHERIT_FD), "manage_cgroups_mode": (34, "i"),
    "external": (37, "s"), "empty_ns": (38, "i"), "join_ns": (39, JOIN_NAMESPACE),
    "freeze_cgroup": (44, "s"), "tcp_skip_in_flight": (46, "b"), "lazy_pages": (48, "b"),
    "status_fd": (49, "i"), "orphan_pts_master": (50, "b"), "config_file": (51, "s"),
}
REQ = {"type": (1, "i"), "opts": (2, OPTS), "notify_success": (3, "b"), "keep_open": (4, "b"),
       "features": (5, FEATURES), "pid": (6, "i")}

# criu_resp, read back: number -> (name, kind)
NOTIFY_MSG = {1: ("script", "s"), 2: ("pid", "i")}
VERSION_MSG = {1: ("major", "i"), 2: ("minor", "i"), 3: ("gitid", "s"), 4: ("sublevel", "i"),
               5: ("extra", "i"), 6: ("name", "s")}
RESP = {1: ("type", "i"), 2: ("success", "b"), 3: ("dump", {1: ("restored", "b")}),
        4: ("restore", {1: ("pid", "i")}), 5: ("notify", NOTIFY_MSG), 6: ("ps", {3: ("pid", "i")}),
        7: ("cr_errno", "i"), 8: ("features", {v[0]: (k, "b") for k, v in FEATURES.items()}),
        9: ("cr_errmsg", "s"), 10: ("version", VERSION_MSG), 11: ("status", "i")}


def varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # int32 negatives: ten bytes, two's complement (protobuf's rule)
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def encode(msg: dict, table: dict) -> bytes:
    """Encode ``msg`` (field name -> value; None skipped) by ``table``, in field-number order."""
    out = bytearray()
    for name, value in sorted(msg.items(), key=lambda kv: table[kv[0]][0]):
        if value is None:
            continue
        num, kind = table[name]
        for item in value if isinstance(value, list) else [value]:
            if kind in ("i", "b"):
                out += varint(num << 3) + varint(int(item))
            elif kind == "s":
                data = item.encode() if isinstance(item, str) else bytes(item)
                out += varint(num << 3 | 2) + varint(len(data)) + data
            else:
                data = encode(item, kind)
                out += varint(num << 3 | 2) + varint(len(data)) + data
    return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def decode(data: bytes, table: dict) -> dict:
    """Decode a message by ``table`` (number -> (name, kind)); unknown fields are skipped."""
    out: dict = {}
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(data, pos)
        elif wire == 2:
            size, pos = _read_varint(data, pos)
            value = data[pos:pos + size]
            if len(value) != size:
                raise ValueError("truncated field")
            pos += size
        elif wire == 5:
            value, pos = int.from_bytes(data[pos:pos + 4], "little"), pos + 4
        elif wire == 1:
            value, pos = int.from_bytes(data[pos:pos + 8], "little"), pos + 8
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if num not in table:
            continue
        name, kind = table[num]
        if kind == "i":
            out[name] = value - (1 << 64) if value >= 1 << 63 else value
        elif kind == "b":
            out[name] = bool(value)
        elif kind == "s":
            out[name] = bytes(value).decode("utf-8", "replace")
        else:
            out[name] = decode(bytes(value), kind)
    return out


class CriuFailed(PyruncError):
    """CRIU refused or failed; the message names its log file."""


class Swrk:
    """One ``criu swrk 3`` process and the socket to it.

    CRIU's fds: 0 is ``stdin_fd`` (or /dev/null), 1 and 2 go to ``capture_fd`` (CRIU writes
    there only before its log file is open, e.g. when it cannot start on this kernel), 3 is its
    end of the socketpair, and 4, 5, ... are ``extra_fds`` in order (inherit_fd names them by
    those numbers). Directory fds in the request (images_dir_fd, work_dir_fd) are ours: CRIU
    opens them through /proc/<our pid>/fd.
    """

    def __init__(self, criu: str, *, extra_fds: list[int] = (), capture_fd: int,
                 stdin_fd: int | None = None):
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock = parent
        devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        wanted = [stdin_fd if stdin_fd is not None else devnull, capture_fd, capture_fd,
                  child.fileno(), *extra_fds]
        # Copies above everything we have open, so no dup2 below overwrites a source it
        # still needs; they are close-on-exec and vanish in CRIU.
        high = [_fcntl_dup(fd) for fd in wanted]
        actions = [(os.POSIX_SPAWN_DUP2, src, target) for target, src in enumerate(high)]
        try:
            self.pid = os.posix_spawn(criu, [criu, "swrk", "3"], os.environ, file_actions=actions)
        except OSError as e:
            raise CriuFailed(f"cannot run CRIU ({criu}): {e.strerror}") from None
        finally:
            for fd in high:
                os.close(fd)
            os.close(devnull)
            child.close()
        self.status: int | None = None

    def send(self, req: dict) -> None:
        self.sock.sendmsg([encode(req, REQ)])

    def recv(self) -> tuple[dict | None, list[int]]:
        """The next response and any fds passed with it; (None, []) when CRIU has gone."""
        fds: list[int] = []
        try:
            data, anc, _flags, _addr = self.sock.recvmsg(1 << 20, socket.CMSG_SPACE(4 * 4))
        except ConnectionResetError:
            return None, []
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                usable = len(payload) - len(payload) % 4
                fds.extend(int.from_bytes(payload[i:i + 4], "little") for i in range(0, usable, 4))
        if not data:
            return None, fds
        return decode(data, RESP), fds

    def finish(self) -> int:
        """Close our end and reap CRIU; its wait status."""
        try:
            self.sock.close()
        except OSError:
            pass
        if self.status is None:
            _, self.status = os.waitpid(self.pid, 0)
        return self.status

    def kill(self) -> None:
        if self.status is None:
            try:
                os.kill(self.pid, 9)
            except ProcessLookupError:
                pass
            self.finish()


def _fcntl_dup(fd: int) -> int:
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100)
