"""Root filesystem setup for the container init, in the order the init calls it.

1. ``prepare_root``  - stop propagation to the host, make the rootfs a mount point.
2. ``mount_all``     - the config's mounts, resolved inside the rootfs (mounts.py).
3. ``create_devices``- /dev nodes and symlinks, created relative to a safe /dev fd (devices.py).
4. ``pivot_root``    - switch / (pivot.py), then give / its rootfsPropagation.
5. ``finish_rootfs`` - masked paths, read-only paths, read-only /.

Every module is imported here, at import time, because after pivot_root the
host's Python library directory is no longer reachable.
"""

from __future__ import annotations

import errno
import os
import stat

from pyrunc.errors import PyruncError
from pyrunc.linux import mount as m
from pyrunc.rootfs import options, resolve
from pyrunc.rootfs import pivot as _pivot
from pyrunc.rootfs.devices import create_devices
from pyrunc.rootfs.mounts import fail, mount_all, read_mountinfo

__all__ = ["prepare_root", "mount_all", "create_devices", "pivot_root", "finish_rootfs"]

_NULL_RDEV = os.makedev(1, 3)
_EMPTY = m.AT_EMPTY_PATH


# ---------------------------------------------------------------------------------------------
# 1. prepare_root


def make_root_propagation(propagation: str | None) -> None:
    """Make / rslave (default) or what linux.rootfsPropagation says, so mounts stay in our namespace."""
    try:
        flag = m.MS_SLAVE | m.MS_REC if not propagation else options.propagation_flag(propagation)
    except ValueError as e:
        raise PyruncError(str(e), step="mount") from None
    try:
        m.mount(None, "/", None, flag)
    except OSError as e:
        raise fail(f"change propagation of / to {propagation or 'rslave'}", e) from None


def make_parent_mount_private(rootfs: str) -> None:
    """pivot_root refuses a new root whose parent mount is shared, and a bind of an unbindable mount
    fails: make the parent mount private in those two cases.

    The unbindable case is what ``rootfsPropagation: unbindable`` (applied to / just before) leaves;
    runc 1.5.1 runs such a config, runc 1.1.5 failed here. A slave parent stays a slave, so with the
    default rslave host mounts below the rootfs still reach the container (runc 1.5.1 makes the
    parent private always and loses that; runc fixed it after 1.5.1, issue #5192).
    """
    path = os.path.realpath(rootfs)
    best = None
    for mi in read_mountinfo():
        mp = mi.mountpoint
        if (path == mp or path.startswith(mp.rstrip("/") + "/")) and (
                best is None or len(mp) >= len(best.mountpoint)):
            best = mi
    if best is None or not any(o.startswith("shared:") or o == "unbindable" for o in best.optional):
        return
    try:
        m.mount(None, best.mountpoint, None, m.MS_PRIVATE)
    except OSError as e:
        raise fail(f"make parent mount {best.mountpoint} private", e) from None


def bind_rootfs_onto_itself(rootfs: str) -> None:
    """pivot_root needs the new root to be a mount point; a recursive self-bind makes it one."""
    try:
        m.mount(rootfs, rootfs, "bind", m.MS_BIND | m.MS_REC)
    except OSError as e:
        raise fail(f"bind mount rootfs {rootfs} onto itself", e) from None


def prepare_root(rootfs: str, propagation: str | None) -> None:
    """Stop propagation to the host, then make the rootfs a mount point (runc's prepareRoot)."""
    make_root_propagation(propagation)
    make_parent_mount_private(rootfs)
    bind_rootfs_onto_itself(rootfs)


# ---------------------------------------------------------------------------------------------
# 4. pivot_root, then the root's own propagation


def check_no_pivot_propagation(no_pivot: bool, propagation: str | None) -> None:
    """``--no-pivot`` keeps the old root reachable below the new one; runc refuses a private root
    propagation with it (runc 1.1.5 and 1.5.1, same words), so pyrunc does too."""
    if no_pivot and propagation in ("private", "rprivate"):
        raise PyruncError("rootfsPropagation of [r]private is not safe without pivot_root", step="pivot_root")


def apply_root_propagation(propagation: str | None) -> None:
    """Give the new / the configured propagation (runc 1.3.1+, #4724).

    ``make_root_propagation`` set it on the runtime's copy of the host tree; the container's root
    is a fresh bind of the rootfs made from a private or slave parent, so ``shared``, ``slave`` and
    ``unbindable`` only reach it now, after pivot_root (runc 1.5.1 measured: ``shared`` gives
    ``/ shared:N``, ``rshared`` every mount shared, ``unbindable`` ``/ unbindable``). Private needs
    nothing. ``runbindable`` makes the masks and read-only binds that follow fail (EINVAL), as in
    runc 1.5.1.
    """
    if not propagation or propagation in ("private", "rprivate"):
        return
    try:
        flag = options.propagation_flag(propagation)
    except ValueError as e:
        raise PyruncError(str(e), step="pivot_root") from None
    try:
        m.mount(None, "/", None, flag)
    except OSError as e:
        raise fail(f"apply root propagation {propagation}", e, "pivot_root") from None


def pivot_root(rootfs: str, *, no_pivot: bool = False, own_mount_ns: bool = True,
               propagation: str | None = None) -> None:
    """Make ``rootfs`` the process's / (pivot.py), then give it ``linux.rootfsPropagation``."""
    check_no_pivot_propagation(no_pivot and own_mount_ns, propagation)
    _pivot.pivot_root(rootfs, no_pivot=no_pivot, own_mount_ns=own_mount_ns)
    if own_mount_ns:
        apply_root_propagation(propagation)


# ---------------------------------------------------------------------------------------------
# 5. finish_rootfs (runs after pivot_root: "/" is the container root)


def open_dev_null(root_fd: int) -> int:
    """Open the container's /dev/null O_PATH without following it and verify it is char 1:3.

    A rootfs that replaces /dev/null with a symlink or a regular file must not get that file bound
    over masked paths (CVE-2025-31133); refusing is the only safe answer.
    """
    try:
        dev_fd = resolve.resolve(root_fd, "/dev", directory=True)
    except OSError as e:
        raise fail("open /dev for masking", e, "mask_paths") from None
    try:
        fd = os.open("null", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dev_fd)
    except OSError as e:
        raise fail("open /dev/null for masking", e, "mask_paths") from None
    finally:
        os.close(dev_fd)
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != _NULL_RDEV:
        os.close(fd)
        raise PyruncError("/dev/null is not the null device (char 1:3); refusing to mask with it",
                          step="mask_paths")
    return fd


def attach_clone(src_fd: int, dst_fd: int, *, recursive: bool = False, attr_set: int = 0,
                 attr_recursive: bool | None = None) -> None:
    """Bind ``src_fd`` onto ``dst_fd`` entirely by fd: open_tree(CLONE), mount_setattr, move_mount.

    No path is looked up, so nothing in the container can redirect the bind; attributes are set on
    the detached copy, so it is never visible writable. ``attr_recursive`` (default: as
    ``recursive``) says whether the attributes reach the submounts of a recursive copy too.
    """
    flags = m.OPEN_TREE_CLONE | m.OPEN_TREE_CLOEXEC | _EMPTY | (m.AT_RECURSIVE if recursive else 0)
    if attr_recursive is None:
        attr_recursive = recursive
    tree = m.open_tree(src_fd, "", flags)
    try:
        if attr_set:
            m.mount_setattr(tree, "", _EMPTY | (m.AT_RECURSIVE if attr_recursive else 0), attr_set)
        m.move_mount(tree, "", dst_fd, "", m.MOVE_MOUNT_F_EMPTY_PATH | m.MOVE_MOUNT_T_EMPTY_PATH)
    finally:
        os.close(tree)


def make_mask_tmpfs(mount_label: str | None = None) -> int:
    """A detached, empty, read-only tmpfs (superblock and mount) for masking directories.

    ``size=4k,nr_inodes=1``: nothing can ever be created in it, and it costs one inode; as runc
    1.5.1 mounts it (options measured), falling back to ``nr_inodes=2`` where a kernel refuses 1
    (Ubuntu 20.04's, runc 1.5.1's changelog). Labelled with linux.mountLabel as runc's mask is
    (unlabelled it would carry the policy's default context instead of the container's).
    """
    for inodes in ("1", "2"):
        fsfd = m.fsopen("tmpfs")
        try:
            m.fsconfig(fsfd, m.FSCONFIG_SET_STRING, "source", "tmpfs")
            m.fsconfig(fsfd, m.FSCONFIG_SET_STRING, "size", "4k")
            m.fsconfig(fsfd, m.FSCONFIG_SET_STRING, "nr_inodes", inodes)
            m.fsconfig(fsfd, m.FSCONFIG_SET_FLAG, "ro")
            if mount_label:
                m.fsconfig(fsfd, m.FSCONFIG_SET_STRING, "context", mount_label)
            try:
                m.fsconfig(fsfd, m.FSCONFIG_CMD_CREATE)
            except OSError as e:
                if e.errno == errno.EINVAL and inodes == "1":
                    continue
                raise
            return m.fsmount(fsfd, m.FSMOUNT_CLOEXEC, m.MOUNT_ATTR_RDONLY)
        finally:
            os.close(fsfd)
    raise OSError(errno.EINVAL, "tmpfs refused nr_inodes=1 and 2")  # not reached


class MaskTmpfs:
    """One read-only tmpfs shared by every masked directory of a container (runc 1.5.0+).

    Kubernetes masks a directory per CPU under /sys (``/sys/devices/system/cpu/cpuN/thermal_throttle``
    ...): one tmpfs each meant hundreds of superblocks per pod for the kernel to create and reap.
    The first directory gets the tmpfs itself, every later one a bind of it, made from the
    attached mount by fd (open_tree CLONE) so no path inside the container is looked up.
    """

    def __init__(self, mount_label: str | None = None) -> None:
        self.fd: int | None = None
        self.attached = False
        self.mount_label = mount_label

    def attach(self, dst_fd: int) -> None:
        if self.fd is None:
            self.fd = make_mask_tmpfs(self.mount_label)
        if not self.attached:
            m.move_mount(self.fd, "", dst_fd, "", m.MOVE_MOUNT_F_EMPTY_PATH | m.MOVE_MOUNT_T_EMPTY_PATH)
            self.attached = True
        else:
            attach_clone(self.fd, dst_fd)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _open_optional(root_fd: int, path: str, step: str) -> int | None:
    """Resolve a masked/readonly path in the root; None when it does not exist (those are skipped)."""
    try:
        return resolve.resolve(root_fd, path)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise fail(f"open {path}", e, step) from None


def mask_paths(root_fd: int, paths: list[str], mount_label: str | None = None) -> None:
    """Hide each path: /dev/null over files, one shared read-only tmpfs over directories (MaskTmpfs);
    missing ones skipped."""
    if not paths:
        return
    null_fd = open_dev_null(root_fd)
    tmpfs = MaskTmpfs(mount_label)
    try:
        for path in paths:
            fd = _open_optional(root_fd, path, "mask_paths")
            if fd is None:
                continue
            try:
                if stat.S_ISDIR(os.fstat(fd).st_mode):
                    tmpfs.attach(fd)
                else:
                    attach_clone(null_fd, fd)
            except OSError as e:
                raise fail(f"mask {path}", e, "mask_paths") from None
            finally:
                os.close(fd)
    finally:
        tmpfs.close()
        os.close(null_fd)


def make_paths_readonly(root_fd: int, paths: list[str]) -> None:
    """Re-bind each path onto itself read-only; missing ones skipped.

    The copy takes the submounts along (they stay visible) but only the path's own mount
    becomes read-only; a submount keeps its own flags, as under runc (a bind, then a remount
    without MS_REC). A mount below a read-only path is one the config asked for with its own
    options: Kubernetes' /etc/hosts, /etc/resolv.conf and /dev/termination-log are writable
    binds that must stay writable even if a pod's securityContext.readonlyPaths names /etc or
    /dev (docs/KUBERNETES.md, "Differences from runc found running pods").
    """
    for path in paths:
        fd = _open_optional(root_fd, path, "readonly_paths")
        if fd is None:
            continue
        try:
            attach_clone(fd, fd, recursive=True, attr_set=m.MOUNT_ATTR_RDONLY, attr_recursive=False)
        except OSError as e:
            raise fail(f"make {path} read-only", e, "readonly_paths") from None
        finally:
            os.close(fd)


def make_root_readonly() -> None:
    """Bind-remount / read-only, keeping locked flags if the kernel insists (as runc does)."""
    flags = m.MS_BIND | m.MS_REMOUNT | m.MS_RDONLY
    try:
        m.mount(None, "/", None, flags)
    except OSError as e:
        if e.errno != errno.EPERM:
            raise fail("remount / read-only", e, "readonly_root") from None
        try:
            m.mount(None, "/", None, flags | m.locked_flags("/"))
        except OSError as e2:
            raise fail("remount / read-only", e2, "readonly_root") from None


def finish_rootfs(*, masked_paths: list[str], readonly_paths: list[str], readonly_root: bool,
                  mount_label: str | None = None) -> None:
    """After pivot_root: make readonlyPaths read-only, mask paths, then / read-only if asked.

    runc's order. It shows where a path is in both lists: the mask goes on last, so a file is
    a writable /dev/null (writes vanish, as under runc) rather than a read-only one (EROFS).
    Masks inside a read-only path work in either order (the copy is recursive).
    """
    root_fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        make_paths_readonly(root_fd, readonly_paths)
        mask_paths(root_fd, masked_paths, mount_label)
    finally:
        os.close(root_fd)
    if readonly_root:
        make_root_readonly()

