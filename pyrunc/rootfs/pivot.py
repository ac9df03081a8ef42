"""Switch the process's root to the prepared rootfs.

pivot_root(".", ".") stacks the old root on top of the new one at the same
place, so no put_old directory has to exist inside the (untrusted) rootfs.
The old root is made rslave before it is detached so the unmount cannot
propagate back and unmount host filesystems.
"""

from __future__ import annotations

import os

from pyrunc.errors import PyruncError
from pyrunc.linux import mount as m

STEP = "pivot_root"


def _fail(what: str, exc: OSError) -> PyruncError:
    """PyruncError for a failed pivot step with the errno text."""
    return PyruncError(f"{what}: {os.strerror(exc.errno or 0)}", step=STEP)


def pivot_into(rootfs: str) -> None:
    """fd-based pivot: fchdir into the new root, pivot_root('.', '.'), detach the old root from '.'."""
    try:
        old_fd = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise _fail("open old root", e) from None
    try:
        try:
            new_fd = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise _fail(f"open new root {rootfs}", e) from None
        try:
            os.fchdir(new_fd)
            try:
                m.pivot_root(".", ".")
            except OSError as e:
                raise _fail(f"pivot_root {rootfs}", e) from None
        finally:
            os.close(new_fd)
        os.fchdir(old_fd)
    finally:
        os.close(old_fd)
    try:
        m.mount(None, ".", None, m.MS_SLAVE | m.MS_REC)
    except OSError as e:
        raise _fail("make old root rslave", e) from None
    try:
        m.umount2(".", m.MNT_DETACH)
    except OSError as e:
        raise _fail("unmount old root", e) from None
    os.chdir("/")


def move_root(rootfs: str) -> None:
    """--no-pivot: move the rootfs mount onto / and chroot into it (escapable; runc warns too)."""
    try:
        os.chdir(rootfs)
        m.mount(rootfs, "/", None, m.MS_MOVE)
        os.chroot(".")
        os.chdir("/")
    except OSError as e:
        raise _fail(f"move {rootfs} to /", e) from None


def chroot_into(rootfs: str) -> None:
    """No mount namespace of our own: pivot_root or MS_MOVE would change the root of everyone
    in the caller's namespace, so only this process's root changes (as runc does then)."""
    try:
        fd = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise _fail(f"open new root {rootfs}", e) from None
    try:
        os.fchdir(fd)
        os.chroot(".")
        os.chdir("/")
    except OSError as e:
        raise _fail(f"chroot {rootfs}", e) from None
    finally:
        os.close(fd)


def pivot_root(rootfs: str, *, no_pivot: bool = False, own_mount_ns: bool = True) -> None:
    """Make ``rootfs`` the process's / (see module docstring)."""
    if not own_mount_ns:
        chroot_into(rootfs)
    elif no_pivot:
        move_root(rootfs)
    else:
        pivot_into(rootfs)
