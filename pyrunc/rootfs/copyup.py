"""``tmpcopyup``: fill a fresh tmpfs with the content of the directory it covers.

runc's mount extension, used by podman and CRI-O (e.g. for /run or /var/tmp of an image that
ships files there). The caller opens the covered directory before mounting and the new tmpfs
after; this module copies one into the other using only those two descriptors.

The image is untrusted and may be shared with other containers, so the walk never resolves a
path string: every entry is opened relative to its parent's fd with O_NOFOLLOW, a symlink is
copied as a symlink (never followed, so it can never lead the copy out of the rootfs), and a
regular file is checked to be the inode we listed before its bytes are read. What runc copies
is kept (content, mode with setuid/setgid/sticky bits, owner, symlinks, device nodes); pyrunc
also keeps timestamps, FIFOs and sockets (runc fails on those), and extended attributes where
the tmpfs takes them (runc drops them: security.capability, user.*, ACLs). Hard links become
separate files, as with runc.
"""

from __future__ import annotations

import errno
import os
import stat

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# An xattr the new tmpfs cannot hold (trusted.* without CAP_SYS_ADMIN in the initial user
# namespace, a label scheme the kernel lacks) is skipped: runc copies none at all.
_XATTR_SKIP = {errno.EPERM, errno.EACCES, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSPC}


class CopyError(OSError):
    """An OSError that names the in-directory path it happened at."""


def copy_tree(src_fd: int, dst_fd: int) -> None:
    """Copy every entry below directory ``src_fd`` into the empty directory ``dst_fd``.

    Both are O_RDONLY directory fds; neither is closed. The walk is depth first with an explicit
    stack (no recursion limit; only the current path's directories are open), and a directory
    gets its owner, mode, xattrs and times once its content is in place, so a read-only
    directory can still be filled.
    """
    # Per open directory: source fd, destination fd, path for messages, its stat (None for the
    # caller's top directory, whose fds and metadata are the caller's), names still to copy.
    stack: list[tuple[int, int, str, os.stat_result | None, list[str]]] = [
        (src_fd, dst_fd, "", None, _names(src_fd, ""))]
    try:
        while stack:
            sfd, dfd, where, dir_st, todo = stack[-1]
            if not todo:
                stack.pop()
                if dir_st is not None:
                    try:
                        _apply(dfd, dir_st, xattr_src=sfd)
                    except OSError as e:
                        raise CopyError(e.errno, e.strerror, where) from None
                    finally:
                        os.close(sfd)
                        os.close(dfd)
                continue
            name = todo.pop()
            path = f"{where}/{name}"
            try:
                st = os.stat(name, dir_fd=sfd, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    os.mkdir(name, 0o700, dir_fd=dfd)
                    child_src = os.open(name, _DIR, dir_fd=sfd)
                    try:
                        now = os.fstat(child_src)
                        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                            raise OSError(errno.EAGAIN, "changed while being copied")
                        child_dst = os.open(name, _DIR, dir_fd=dfd)
                    except OSError:
                        os.close(child_src)
                        raise
                    stack.append((child_src, child_dst, path, st, []))
                    stack[-1][4].extend(_names(child_src, path))
                elif stat.S_ISREG(st.st_mode):
                    _copy_file(sfd, dfd, name, st)
                elif stat.S_ISLNK(st.st_mode):
                    _copy_symlink(sfd, dfd, name, st)
                else:  # character or block device, FIFO, socket
                    os.mknod(name, stat.S_IFMT(st.st_mode) | 0o600, st.st_rdev, dir_fd=dfd)
                    _finish_node(dfd, name, st)
            except CopyError:
                raise
            except OSError as e:
                raise CopyError(e.errno, e.strerror, path) from None
    finally:
        for sfd, dfd, _, dir_st, _ in stack:
            if dir_st is not None:
                os.close(sfd)
                os.close(dfd)


def _names(dir_fd: int, where: str) -> list[str]:
    try:
        with os.scandir(dir_fd) as it:
            return sorted((entry.name for entry in it), reverse=True)  # popped from the end
    except OSError as e:
        raise CopyError(e.errno, e.strerror, where or "/") from None


def _copy_file(sfd: int, dfd: int, name: str, st: os.stat_result) -> None:
    """Bytes, then owner, mode (after the chown, which clears setuid), xattrs, times."""
    src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=sfd)
    try:
        now = os.fstat(src)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(now.st_mode):
            raise OSError(errno.EAGAIN, "changed while being copied")
        dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                      dir_fd=dfd)
        try:
            _copy_bytes(src, dst)
            _apply(dst, now, xattr_src=src)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _copy_bytes(src: int, dst: int) -> None:
    while True:
        try:
            n = os.copy_file_range(src, dst, 1 << 30)
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            break
        if n == 0:
            return
    while True:  # the plain loop, where copy_file_range cannot cross these filesystems
        chunk = os.read(src, 1 << 20)
        if not chunk:
            return
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view):]


def _copy_symlink(sfd: int, dfd: int, name: str, st: os.stat_result) -> None:
    """The link text as it is: it is resolved later by whoever reads it, inside the container."""
    os.symlink(os.readlink(name, dir_fd=sfd), name, dir_fd=dfd)
    os.chown(name, st.st_uid, st.st_gid, dir_fd=dfd, follow_symlinks=False)
    os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dfd, follow_symlinks=False)


def _finish_node(dfd: int, name: str, st: os.stat_result) -> None:
    """Owner, mode and times of a node we just made (it cannot be a symlink: we made it)."""
    os.chown(name, st.st_uid, st.st_gid, dir_fd=dfd, follow_symlinks=False)
    os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=dfd)
    os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dfd)


def _apply(fd: int, st: os.stat_result, *, xattr_src: int) -> None:
    """Owner, then mode, then xattrs (a chown drops security.capability), then times."""
    os.fchown(fd, st.st_uid, st.st_gid)
    os.fchmod(fd, stat.S_IMODE(st.st_mode))
    _copy_xattrs(xattr_src, fd)
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_xattrs(src: int, dst: int) -> None:
    try:
        names = os.listxattr(src)
    except OSError as e:
        if e.errno in _XATTR_SKIP:
            return
        raise
    for attr in names:
        try:
            os.setxattr(dst, attr, os.getxattr(src, attr))
        except OSError as e:
            if e.errno not in _XATTR_SKIP and e.errno != errno.ENODATA:
                raise
