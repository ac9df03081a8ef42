"""Process, namespace and credential system calls, one typed function each.

This package is the only place that calls C (through ``ffi``, a lean subset of
ctypes; ``_libc`` holds the libc handle; ``mount`` holds the mount-API calls). Every function raises OSError
with errno on failure, so callers can test ``e.errno``.
"""

from __future__ import annotations

import _signal  # the C module: the numbers without the enum import

from . import _libc, ffi
from ._libc import check, fn, syscall

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

_unshare = fn("unshare", ffi.c_int, ffi.c_int)
_setns = fn("setns", ffi.c_int, ffi.c_int, ffi.c_int)
_sethostname = fn("sethostname", ffi.c_int, ffi.c_char_p, ffi.c_size_t)
_setdomainname = fn("setdomainname", ffi.c_int, ffi.c_char_p, ffi.c_size_t)
_prctl = fn("prctl", ffi.c_int, ffi.c_int, ffi.c_ulong, ffi.c_ulong, ffi.c_ulong,
            ffi.c_ulong)

SYS_clone3 = 435
CLONE_INTO_CGROUP = 0x200000000


class _CloneArgs(ffi.Structure):
    _fields_ = [(name, ffi.c_uint64) for name in (
        "flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack", "stack_size", "tls",
        "set_tid", "set_tid_size", "cgroup")]


def fork_into_cgroup(cgroup_fd: int) -> int:
    """fork(), but the child is born in the cgroup2 directory ``cgroup_fd`` (clone3
    CLONE_INTO_CGROUP): no migration, so none of the RCU grace period a cgroup.procs write waits
    for. Returns 0 in the child and its pid in the parent, like os.fork.

    A raw clone, not glibc's fork(): no atfork handlers and no PyOS_AfterFork_Child run. That is
    sound only in a single-threaded process (no lock can be held by a thread that does not exist
    in the child), as pyrunc is, for a child that runs its own steps and then forks or exits:
    stage 1 and exec's joiner. Their own forks (the init, the exec'd process) are ordinary ones.
    """
    args = _CloneArgs(flags=CLONE_INTO_CGROUP, exit_signal=_signal.SIGCHLD, cgroup=cgroup_fd)
    return syscall(SYS_clone3, ffi.byref(args), ffi.c_size_t(ffi.sizeof(args)), what="clone3")


SYS_capget = 125
SYS_capset = 126
SYS_keyctl = 250
SYS_close_range = 436
KEYCTL_JOIN_SESSION_KEYRING = 1


def unshare(flags: int) -> None:
    check(_unshare(flags), f"unshare({flags:#x})")


def setns(fd: int, nstype: int = 0) -> None:
    check(_setns(fd, nstype), "setns")


def sethostname(name: str) -> None:
    raw = name.encode()
    check(_sethostname(raw, len(raw)), "sethostname")


def setdomainname(name: str) -> None:
    raw = name.encode()
    check(_setdomainname(raw, len(raw)), "setdomainname")


def prctl(option: int, a2: int = 0, a3: int = 0, a4: int = 0, a5: int = 0) -> int:
    return check(_prctl(option, a2, a3, a4, a5), f"prctl({option})")


def set_dumpable(on: bool) -> None:
    prctl(PR_SET_DUMPABLE, 1 if on else 0)


def set_pdeathsig(sig: int) -> None:
    prctl(PR_SET_PDEATHSIG, sig)


def set_child_subreaper() -> None:
    prctl(PR_SET_CHILD_SUBREAPER, 1)


def set_no_new_privs() -> None:
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def set_keepcaps(on: bool) -> None:
    prctl(PR_SET_KEEPCAPS, 1 if on else 0)


def set_name(name: str) -> None:
    """Name the thread (what `ps -o comm` shows), so a hung stage is easy to spot."""
    buf = ffi.create_string_buffer(name.encode()[:15])
    _prctl(PR_SET_NAME, ffi.addressof(buf), 0, 0, 0)


def capbset_read(cap: int) -> bool:
    return prctl(PR_CAPBSET_READ, cap) == 1


def capbset_drop(cap: int) -> None:
    prctl(PR_CAPBSET_DROP, cap)


def cap_ambient_raise(cap: int) -> None:
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)


def cap_ambient_clear() -> None:
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)


class _CapHeader(ffi.Structure):
    _fields_ = [("version", ffi.c_uint32), ("pid", ffi.c_int)]


class _CapData(ffi.Structure):
    _fields_ = [("effective", ffi.c_uint32), ("permitted", ffi.c_uint32),
                ("inheritable", ffi.c_uint32)]


_CAP_V3 = 0x20080522


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set the three per-thread capability sets (64-bit masks) of the caller."""
    hdr = _CapHeader(_CAP_V3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    syscall(SYS_capset, ffi.byref(hdr), data, what="capset")


def capget() -> tuple[int, int, int]:
    hdr = _CapHeader(_CAP_V3, 0)
    data = (_CapData * 2)()
    syscall(SYS_capget, ffi.byref(hdr), data, what="capget")
    eff = data[0].effective | (data[1].effective << 32)
    prm = data[0].permitted | (data[1].permitted << 32)
    inh = data[0].inheritable | (data[1].inheritable << 32)
    return eff, prm, inh


def join_session_keyring(name: str | None) -> int:
    """Give the process a new session keyring (runc does this per container)."""
    arg = ffi.c_char_p(name.encode()) if name else ffi.c_char_p(None)
    return syscall(SYS_keyctl, ffi.c_int(KEYCTL_JOIN_SESSION_KEYRING), arg, what="keyctl")


def close_range(first: int, last: int = 0xFFFFFFFF, flags: int = 0) -> None:
    syscall(SYS_close_range, ffi.c_uint(first), ffi.c_uint(last), ffi.c_uint(flags),
            what="close_range")


CLOSE_RANGE_CLOEXEC = 4


def ns_fd_type(fd: int) -> int:
    """The CLONE_NEW* type of a namespace fd (ioctl NS_GET_NSTYPE)."""
    import fcntl

    NS_GET_NSTYPE = 0xB703
    return fcntl.ioctl(fd, NS_GET_NSTYPE)


def bring_up_loopback() -> None:
    """Set IFF_UP on "lo" with one rtnetlink request (RTM_NEWLINK naming the link), no library.

    Not the SIOCSIFFLAGS ioctl on an AF_INET socket: a runtime started where AF_INET is forbidden
    (systemd ``RestrictAddressFamilies=AF_UNIX AF_NETLINK``, podman quadlet units) could not create
    that socket at all, and runc, which uses netlink, runs there. Raises OSError with the kernel's
    errno from the acknowledgement.
    """
    import _socket
    import errno
    import os
    import struct

    RTM_NEWLINK, NLM_F_REQUEST, NLM_F_ACK, NLMSG_ERROR, IFLA_IFNAME, IFF_UP = 16, 1, 4, 2, 3, 0x1
    name = b"lo\0"
    attr = struct.pack("HH", 4 + len(name), IFLA_IFNAME) + name + b"\0" * (-len(name) % 4)
    body = struct.pack("BxHiII", _socket.AF_UNSPEC, 0, 0, IFF_UP, IFF_UP) + attr  # struct ifinfomsg
    msg = struct.pack("IHHII", 16 + len(body), RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 1, 0) + body
    s = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, 0)  # NETLINK_ROUTE
    try:
        s.send(msg)
        reply = s.recv(4096)
    finally:
        s.close()
    kind = struct.unpack_from("H", reply, 4)[0] if len(reply) >= 20 else -1
    if kind != NLMSG_ERROR:
        raise OSError(errno.EPROTO, f"unexpected rtnetlink reply type {kind}")
    err = -struct.unpack_from("i", reply, 16)[0]
    if err:
        raise OSError(err, os.strerror(err))


SYS_ioprio_set = 251
SYS_set_mempolicy = 238
SYS_sched_setattr = 314
SYS_personality = 135
IOPRIO_WHO_PROCESS = 1


def personality(persona: int) -> None:
    syscall(SYS_personality, ffi.c_ulong(persona), what="personality")


def ioprio_set(klass: int, level: int) -> None:
    syscall(SYS_ioprio_set, ffi.c_int(IOPRIO_WHO_PROCESS), ffi.c_int(0),
            ffi.c_int((klass << 13) | level), what="ioprio_set")


class _SchedAttr(ffi.Structure):
    _fields_ = [("size", ffi.c_uint32), ("sched_policy", ffi.c_uint32),
                ("sched_flags", ffi.c_uint64), ("sched_nice", ffi.c_int32),
                ("sched_priority", ffi.c_uint32), ("sched_runtime", ffi.c_uint64),
                ("sched_deadline", ffi.c_uint64), ("sched_period", ffi.c_uint64)]


def sched_setattr(policy: int, *, flags: int = 0, nice: int = 0, priority: int = 0, runtime: int = 0,
                  deadline: int = 0, period: int = 0) -> None:
    attr = _SchedAttr(ffi.sizeof(_SchedAttr), policy, flags, nice, priority, runtime, deadline, period)
    syscall(SYS_sched_setattr, ffi.c_int(0), ffi.byref(attr), ffi.c_uint(0),
            what="sched_setattr")


def set_mempolicy(mode: int, nodes: list[int]) -> None:
    """mode includes the MPOL_F_* flags; nodes is the node list (empty for MPOL_DEFAULT/LOCAL)."""
    maxnode = (max(nodes) + 1) if nodes else 0
    words = (maxnode + 63) // 64 or 1
    mask = (ffi.c_ulong * words)()
    for n in nodes:
        mask[n // 64] |= 1 << (n % 64)
    syscall(SYS_set_mempolicy, ffi.c_int(mode), mask if nodes else None,
            ffi.c_ulong(maxnode + 1 if nodes else 0), what="set_mempolicy")


class PreparedExec:
    """execve(2) with its C arguments built in advance, for the init's last call.

    ``os.execve`` converts argv and the environment when it is called, and that
    allocation may make system calls (brk, mmap). The init loads the seccomp
    filter immediately before execve and nothing else may run in between, so
    the path, argv and envp arrays and libc's execve are all ready before the
    load; ``parts`` gives the caller the bare C function and its arguments to
    call without a Python frame in between (a frame can need a fresh mmap'd
    stack chunk).
    """

    def __init__(self, path: str, argv: list[str], env: dict[str, str]):
        import os

        self._strings = [os.fsencode(path)] + [os.fsencode(a) for a in argv] + \
            [os.fsencode(f"{k}={v}") for k, v in env.items()]
        if any(b"\0" in s for s in self._strings):
            raise ValueError("embedded null byte in the program's path, args or env")  # as os.execve
        self.path = ffi.c_char_p(self._strings[0])
        self.argv = (ffi.c_char_p * (len(argv) + 1))(*self._strings[1:1 + len(argv)], None)
        envs = self._strings[1 + len(argv):]
        self.envp = (ffi.c_char_p * (len(envs) + 1))(*envs, None)
        self.execve = _libc.libc["execve"]  # a private pointer: no argtypes to convert through

    def parts(self):
        return self.execve, self.path, self.argv, self.envp

    def __call__(self) -> int:
        """execve; returns errno only if it failed."""
        self.execve(self.path, self.argv, self.envp)
        return ffi.get_errno()
