"""procfs for what pyrunc reads and writes on a container's behalf: a handle it made itself.

Why (CVE-2025-52881 class, and CVE-2019-16884/19921 before it): once the init has pivoted into
the rootfs, or `exec`'s joiner has entered the container's mount namespace, the path ``/proc``
names whatever sits at ``proc`` in the container's tree. Another container sharing that rootfs
(or a volume holding it) can rename the directory ``proc`` away, the procfs mount travels with
it, and put a fake tree in its place, in a loop. Opening ``/proc/sys/...`` or
``/proc/self/attr/exec`` by path then writes the sysctl or the LSM label into the attacker's
file (the container runs unconfined), or, with a symlink in the fake tree, into a procfs file
of the attacker's choosing such as ``/proc/sysrq-trigger``. ``O_NOFOLLOW`` guards only the last
component, and the mount policy (no mounts over /proc paths, rootfs/mounts.py) cannot stop a
rename made in another mount namespace: it stays as the second line.

So every such access goes through a **handle** made while the process still stands on trusted
ground (before pivot_root, before joining the container's mount namespace):

- first choice, a **private procfs instance** (fsopen("proc"), fsmount): attached nowhere, so
  no container can rename, mount over or even see it; its pids are those of the pid namespace
  of the process that made it (the container's, for the init). ``subset=pid`` when only the
  pid directories are needed (runc and crun do the same);
- where the kernel refuses a new procfs (a user namespace whose mount namespace has no fully
  visible procfs, a seccomp profile of the caller), the host's ``/proc``, opened by path at that
  trusted moment.

Both are checked to be procfs roots (``fstatfs`` magic, inode 1). Every lookup below the
handle uses openat2 with RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS (so no
symlink and no mount is crossed; ``self`` and ``thread-self`` are expanded by reading those
links of the handle itself), and the opened file is checked to be on procfs again.

A process that never prepared a handle gets the host's ``/proc`` lazily: that is right for the
runtime's own host-side processes, where nothing of a container's is on the path. A process
entering a container must call ``prepare`` before it does; ``release`` drops a host-``/proc``
handle before the init waits for `start` (a container may look at a waiting init's fds:
rootless, it is dumpable), keeping only a private ``subset=pid`` instance of the container's
own pid namespace, which shows nothing the container's own /proc does not.
"""

from __future__ import annotations

import errno
import os

from . import mount as m

PROC_SUPER_MAGIC = 0x9FA0
PROC_ROOT_INO = 1
RESOLVE = m.RESOLVE_BENEATH | m.RESOLVE_NO_XDEV | m.RESOLVE_NO_SYMLINKS  # NO_SYMLINKS: no magic links

_handle: int | None = None
_kind: str | None = None  # "private", "private-pid" (subset=pid) or "host"
_sysctl: int | None = None  # an O_PATH fd of <proc>/sys, while sysctls remain to be written
_released = False  # the handle was dropped on purpose: no lazy /proc after that
_self_cache: tuple[int, str, str] | None = None  # (getpid(), "self" target, "thread-self" target)


def _err(code: int, what: str) -> OSError:
    return OSError(code, f"{what}: {os.strerror(code)}")


def check_root(fd: int) -> None:
    """Raise unless ``fd`` is the root directory of a procfs."""
    if m.fstatfs_type(fd) != PROC_SUPER_MAGIC or os.fstat(fd).st_ino != PROC_ROOT_INO:
        raise _err(errno.EXDEV, "the procfs handle is not the root of a procfs")


def open_private(*, subset_pid: bool) -> int:
    """A new procfs instance of our pid namespace, attached nowhere; its root as an fd."""
    ctx = m.fsopen("proc")
    try:
        if subset_pid:
            m.fsconfig(ctx, m.FSCONFIG_SET_STRING, "subset", "pid")
        m.fsconfig(ctx, m.FSCONFIG_CMD_CREATE)
        fd = m.fsmount(ctx, m.FSMOUNT_CLOEXEC, m.MOUNT_ATTR_NOSUID | m.MOUNT_ATTR_NODEV | m.MOUNT_ATTR_NOEXEC)
    finally:
        os.close(ctx)
    try:
        check_root(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_host() -> int:
    """The ``/proc`` of our current root, by path: only where that path is trusted."""
    fd = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        check_root(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def prepare(*, sysctl: bool = False, private_only: bool = False) -> str:
    """Make this process's handle now, while ``/`` and ``/proc`` are still trusted.

    A private ``subset=pid`` instance, else the host's /proc (with ``private_only`` OSError
    instead, and an existing handle is kept). ``sysctl`` also keeps ``<proc>/sys`` of a full
    instance for ``write_sysctl`` (subset=pid has no sys). Returns the handle's kind.
    """
    global _handle, _kind, _sysctl, _released, _self_cache
    try:
        fd, kind = open_private(subset_pid=True), "private-pid"
    except OSError:
        if private_only:
            raise
        fd, kind = open_host(), "host"
    sys_fd = None
    if sysctl:
        try:
            try:
                full = open_private(subset_pid=False)
            except OSError:
                full = open_host()
            try:
                sys_fd = m.openat2(full, "sys", os.O_PATH | os.O_DIRECTORY, 0, RESOLVE)
            finally:
                os.close(full)
        except BaseException:
            os.close(fd)
            raise
    close()
    _handle, _kind, _sysctl, _released, _self_cache = fd, kind, sys_fd, False, None
    return kind


def kind() -> str | None:
    return _kind


def close() -> None:
    """Close the handle (and the sysctl directory); the next use opens the host's /proc lazily."""
    global _handle, _kind, _sysctl, _self_cache
    for fd in (_handle, _sysctl):
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
    _handle, _kind, _sysctl, _self_cache = None, None, None, None


def forget() -> None:
    """After a sweep closed every fd we did not name (stages.close_foreign_fds): drop the
    handle's numbers without closing them, since another file may hold them by the time the
    next ``prepare`` or ``close`` would have closed them."""
    global _handle, _kind, _sysctl, _released, _self_cache
    _handle, _kind, _sysctl, _released, _self_cache = None, None, None, False, None


def release() -> None:
    """Before a wait the container can watch: drop the sysctl directory and a host-/proc
    handle; a private subset=pid instance of our own pid namespace stays (module doc)."""
    global _released, _sysctl
    if _sysctl is not None:
        os.close(_sysctl)
        _sysctl = None
    if _kind == "host":
        close()
        _released = True


def handle() -> int:
    """This process's handle; the host's /proc, opened now, if none was prepared."""
    global _handle, _kind
    if _handle is None:
        if _released:
            raise _err(errno.EBADF, "procfs handle used after it was released")
        _handle, _kind = open_host(), "host"
    return _handle


def _selves() -> tuple[str, str]:
    """What ``self`` and ``thread-self`` are in the handle's pid namespace (cached per process)."""
    global _self_cache
    h = handle()
    pid = os.getpid()
    if _self_cache is None or _self_cache[0] != pid:
        _self_cache = (pid, os.readlink("self", dir_fd=h), os.readlink("thread-self", dir_fd=h))
    return _self_cache[1], _self_cache[2]


def expand(path: str) -> str:
    """``self/...`` and ``thread-self/...`` spelled with the pids they stand for."""
    head, sep, rest = path.partition("/")
    if head in ("self", "thread-self"):
        me, thread = _selves()
        return (me if head == "self" else thread) + sep + rest
    return path


def _checked(fd: int, what: str) -> int:
    try:
        if m.fstatfs_type(fd) != PROC_SUPER_MAGIC:
            raise _err(errno.EXDEV, f"{what} is not on procfs")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_below(root: int, rel: str, flags: int, shown: str) -> int:
    """openat2 of ``rel`` below ``root`` with RESOLVE, the result checked to be on procfs;
    errors name ``shown`` (the path as a reader knows it)."""
    try:
        fd = m.openat2(root, rel, flags if flags & os.O_PATH else flags | os.O_NOCTTY, 0, RESOLVE)
    except OSError as e:
        raise OSError(e.errno, os.strerror(e.errno or 0), shown) from None
    return _checked(fd, shown)


def open(path: str, flags: int) -> int:  # noqa: A001 - the module's own open, like os.open
    """Open ``path`` (relative to the procfs root: "self/attr/exec") below the handle."""
    return _open_below(handle(), expand(path), flags, "/proc/" + path)


def open_once(path: str, flags: int) -> int:
    """Like ``open``, but below the host's /proc opened and checked for this call alone.

    For stage 1 and `exec`'s joiner before they leave the caller's mount tree: they keep no
    handle, because the fd sweeps and ``prepare`` of the processes they fork would otherwise
    meet a handle number that another file may have taken by then.
    """
    root = open_host()
    try:
        head, sep, rest = path.partition("/")
        if head in ("self", "thread-self"):
            path = os.readlink(head, dir_fd=root) + sep + rest
        return _open_below(root, path, flags, "/proc/" + path)
    finally:
        os.close(root)


def write(path: str, data: bytes) -> None:
    """One write(2) of ``data`` to a procfs file (they take a value per write)."""
    fd = open(path, os.O_WRONLY)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read(path: str, size: int = 1 << 16) -> bytes:
    fd = open(path, os.O_RDONLY)
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


def write_sysctl(key: str, value: str) -> None:
    """``key`` (dots, as in linux.sysctl) written below the handle's ``sys``."""
    if _sysctl is None:
        raise _err(errno.EBADF, "no procfs sys handle was prepared for sysctls")
    rel = key.replace(".", "/")
    fd = _open_below(_sysctl, rel, os.O_WRONLY, "/proc/sys/" + rel)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def fd_link(fd: int) -> str:
    """Where the kernel says our ``fd`` is (the readlink of thread-self/fd/N)."""
    return os.readlink(f"{expand('thread-self')}/fd/{fd}", dir_fd=handle())


def reopen(fd: int, flags: int) -> int:
    """A new open file description of what ``fd`` (often O_PATH) refers to, with ``flags``.

    Through the handle: only the final magic link is followed (the directories before it are
    our own procfs's, ``self`` expanded), and the result must be the same inode as ``fd``. After
    ``release`` dropped a host-/proc handle (no private procfs could be made) the path
    /proc/thread-self/fd/N is all that is left; the identity check then keeps a swapped /proc
    from handing us another file, and nothing is written to one.
    """
    if _released and _handle is None:
        new = os.open(f"/proc/thread-self/fd/{fd}", flags | os.O_CLOEXEC)
    else:
        new = os.open(f"{expand('thread-self')}/fd/{fd}", flags | os.O_CLOEXEC, dir_fd=handle())
    want, got = os.fstat(fd), os.fstat(new)
    if (want.st_dev, want.st_ino) != (got.st_dev, got.st_ino):
        os.close(new)
        raise _err(errno.EXDEV, f"reopening fd {fd} gave another file")
    return new
