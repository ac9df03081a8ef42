"""Typed wrappers for the mount-related system calls, one per call.

Each wrapper raises ``OSError`` with the kernel's errno so callers can branch
on it (EPERM fallbacks, ENOENT skips). glibc 2.36 wraps only ``mount`` and
``umount2``; everything newer (openat2, the fd-based mount API,
mount_setattr) and ``pivot_root`` go through ``syscall`` with explicit
``c_long``/pointer arguments, because ctypes would otherwise pass Python ints
as 32-bit ``int`` through the variadic ``syscall()``.
"""

from __future__ import annotations

import os

from pyrunc.linux._libc import check, fn, syscall

from . import ffi

# mount(2) flags (linux/mount.h)
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000
MS_LAZYTIME = 0x2000000

MS_PROPAGATION = MS_SHARED | MS_SLAVE | MS_PRIVATE | MS_UNBINDABLE

# umount2(2) flags
MNT_FORCE = 0x1
MNT_DETACH = 0x2
MNT_EXPIRE = 0x4
UMOUNT_NOFOLLOW = 0x8

# openat2(2) resolve flags
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
RESOLVE_CACHED = 0x20

# *at flags
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000

# open_tree / move_mount / fsopen / fsmount / mount_setattr
OPEN_TREE_CLONE = 0x1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_SYMLINKS = 0x01
MOVE_MOUNT_F_AUTOMOUNTS = 0x02
MOVE_MOUNT_F_EMPTY_PATH = 0x04
MOVE_MOUNT_T_SYMLINKS = 0x10
MOVE_MOUNT_T_AUTOMOUNTS = 0x20
MOVE_MOUNT_T_EMPTY_PATH = 0x40
FSOPEN_CLOEXEC = 0x1
FSMOUNT_CLOEXEC = 0x1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6

MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_IDMAP = 0x100000
MOUNT_ATTR_NOSYMFOLLOW = 0x200000

# statvfs f_flag bits (ST_*), used to carry locked flags into a remount
ST_TO_MS = {
    0x1: MS_RDONLY, 0x2: MS_NOSUID, 0x4: MS_NODEV, 0x8: MS_NOEXEC,
    0x400: MS_NOATIME, 0x800: MS_NODIRATIME, 0x1000: MS_RELATIME,
}

# filesystem magic numbers (statfs f_type)
PROC_SUPER_MAGIC = 0x9FA0
TMPFS_MAGIC = 0x01021994
CGROUP2_SUPER_MAGIC = 0x63677270

# Syscall numbers: 424+ are shared by x86_64 and arm64; pivot_root is not.
SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
SYS_FSOPEN = 430
SYS_FSCONFIG = 431
SYS_FSMOUNT = 432
SYS_OPENAT2 = 437
SYS_MOUNT_SETATTR = 442
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "arm64": 41}.get(os.uname().machine, 155)

_L = ffi.c_long


class OpenHow(ffi.Structure):
    """struct open_how: the kernel checks its size, so it must be exactly 24 bytes."""

    _fields_ = [("flags", ffi.c_uint64), ("mode", ffi.c_uint64), ("resolve", ffi.c_uint64)]


class MountAttr(ffi.Structure):
    """struct mount_attr (MOUNT_ATTR_SIZE_VER0 = 32 bytes)."""

    _fields_ = [("attr_set", ffi.c_uint64), ("attr_clr", ffi.c_uint64),
                ("propagation", ffi.c_uint64), ("userns_fd", ffi.c_uint64)]


_mount = fn("mount", ffi.c_int, ffi.c_char_p, ffi.c_char_p, ffi.c_char_p,
            ffi.c_ulong, ffi.c_char_p)
_umount2 = fn("umount2", ffi.c_int, ffi.c_char_p, ffi.c_int)
_fstatfs = fn("fstatfs", ffi.c_int, ffi.c_int, ffi.c_void_p)
_unshare = fn("unshare", ffi.c_int, ffi.c_int)


def _b(s: str | bytes | None) -> bytes | None:
    """Encode a path/string the way the kernel wants it (None stays NULL)."""
    if s is None:
        return None
    return os.fsencode(s)


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0,
          data: str | None = None) -> None:
    """mount(2). An empty data string is passed as NULL, like runc does."""
    ret = _mount(_b(source), _b(target), _b(fstype), flags, _b(data) if data else None)
    check(ret, f"mount {target}")


def umount2(target: str, flags: int = 0) -> None:
    """umount2(2)."""
    check(_umount2(_b(target), flags), f"umount2 {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2); glibc has no wrapper."""
    syscall(SYS_PIVOT_ROOT, ffi.c_char_p(_b(new_root)), ffi.c_char_p(_b(put_old)),
            what=f"pivot_root {new_root}")


def unshare(flags: int) -> None:
    """unshare(2) (used by tests and by callers that need a private mount ns)."""
    check(_unshare(flags), "unshare")


def openat2(dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = 0) -> int:
    """openat2(2): open with RESOLVE_* restrictions; returns the new fd (O_CLOEXEC is added)."""
    how = OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    return syscall(SYS_OPENAT2, _L(dirfd), ffi.c_char_p(_b(path)), ffi.byref(how),
                   _L(ffi.sizeof(how)), what=f"openat2 {path}")


def mknodat(dirfd: int, name: str, mode: int, device: int = 0) -> None:
    """mknodat(2) relative to a directory fd (O_PATH fds are fine as dirfd)."""
    os.mknod(name, mode, device, dir_fd=dirfd)


def open_tree(dirfd: int, path: str, flags: int) -> int:
    """open_tree(2): returns an fd for a mount (OPEN_TREE_CLONE gives a detached copy)."""
    return syscall(SYS_OPEN_TREE, _L(dirfd), ffi.c_char_p(_b(path)), _L(flags),
                   what=f"open_tree {path or dirfd}")


def move_mount(from_dirfd: int, from_path: str, to_dirfd: int, to_path: str, flags: int) -> None:
    """move_mount(2): attach a (detached) mount onto a target, both named by fd and/or path."""
    syscall(SYS_MOVE_MOUNT, _L(from_dirfd), ffi.c_char_p(_b(from_path)), _L(to_dirfd),
            ffi.c_char_p(_b(to_path)), _L(flags), what=f"move_mount {to_path or to_dirfd}")


def mount_setattr(dirfd: int, path: str, flags: int, attr_set: int = 0, attr_clr: int = 0,
                  propagation: int = 0, userns_fd: int = 0) -> None:
    """mount_setattr(2): change mount attributes, recursively with AT_RECURSIVE."""
    attr = MountAttr(attr_set, attr_clr, propagation, userns_fd)
    syscall(SYS_MOUNT_SETATTR, _L(dirfd), ffi.c_char_p(_b(path)), _L(flags),
            ffi.byref(attr), _L(ffi.sizeof(attr)), what=f"mount_setattr {path or dirfd}")


def fsopen(fstype: str, flags: int = FSOPEN_CLOEXEC) -> int:
    """fsopen(2): start creating a new superblock of ``fstype``; returns a context fd."""
    return syscall(SYS_FSOPEN, ffi.c_char_p(_b(fstype)), _L(flags), what=f"fsopen {fstype}")


def fsconfig(fsfd: int, cmd: int, key: str | None = None, value: str | None = None, aux: int = 0) -> None:
    """fsconfig(2): set a parameter (or FSCONFIG_CMD_CREATE) on an fsopen context."""
    syscall(SYS_FSCONFIG, _L(fsfd), _L(cmd), ffi.c_char_p(_b(key)), ffi.c_char_p(_b(value)),
            _L(aux), what=f"fsconfig {key or cmd}")


def fsmount(fsfd: int, flags: int = FSMOUNT_CLOEXEC, attr_flags: int = 0) -> int:
    """fsmount(2): turn a created fs context into a detached mount fd."""
    return syscall(SYS_FSMOUNT, _L(fsfd), _L(flags), _L(attr_flags), what="fsmount")


def fstatfs_type(fd: int) -> int:
    """Return statfs f_type of an open fd (to tell procfs/tmpfs/cgroup2 apart)."""
    buf = ffi.create_string_buffer(256)  # struct statfs is 120 bytes on 64-bit
    check(_fstatfs(fd, buf), "fstatfs")
    return ffi.c_long.from_buffer(buf).value & 0xFFFFFFFF


def locked_flags(path: str) -> int:
    """MS_* flags currently set on the mount at ``path`` (statvfs), for remounts that must keep them.

    In a user namespace the kernel refuses a bind remount that would drop nosuid/nodev/noexec/ro/atime
    flags inherited from a more privileged mount, so a failed remount is retried with these OR'ed in.
    """
    st = os.statvfs(path)
    out = 0
    for st_bit, ms_bit in ST_TO_MS.items():
        if st.f_flag & st_bit:
            out |= ms_bit
    return out

