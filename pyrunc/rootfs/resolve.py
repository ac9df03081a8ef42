"""Resolve and create paths inside a container rootfs without ever leaving it.

The rootfs is untrusted: any component may be a symlink (absolute, or with
enough ``..`` to climb out), and a co-tenant may swap components while we
work (CVE-2021-30465, CVE-2024-45310). So nothing here returns a string to
be looked up again later: every function returns an ``O_PATH`` fd whose
real location has been read back from the fd directory of our own procfs
handle (linux/procfs.py; never the container's /proc) and checked to be
under the root. Callers operate on the fd (``*at`` calls, the fd-based mount
API, or ``/proc/thread-self/fd/N`` as a mount target before pivot_root).

Lookups use openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), which makes
the kernel treat the root fd as ``/``. Only if the kernel lacks openat2
(ENOSYS) do we walk component by component with O_NOFOLLOW and interpret
symlinks ourselves; falling back on any other error would let a hostile
path downgrade us to the weaker walk. Creation always walks, because each
new component must be made with mkdirat/openat(O_EXCL|O_NOFOLLOW) relative
to a parent fd we already trust.
"""

from __future__ import annotations

import errno
import os
import stat

from pyrunc.linux import mount as m
from pyrunc.linux import procfs

MAX_SYMLINKS = 40  # the kernel's own limit
EAGAIN_RETRIES = 128
_O_PATH = os.O_PATH | os.O_CLOEXEC
_IN_ROOT = m.RESOLVE_IN_ROOT | m.RESOLVE_NO_MAGICLINKS

# Tests flip this to exercise the fallback walk on a kernel that has openat2.
force_fallback = False
_have_openat2: bool | None = None


def _err(code: int, path: str) -> OSError:
    """An OSError carrying errno, its text and the in-root path it concerns."""
    return OSError(code, os.strerror(code), path)


def fd_path(fd: int) -> str:
    """The kernel's idea of where ``fd`` is (readlink of thread-self/fd/N of our own procfs
    handle: after pivot_root the path /proc may be a co-tenant's fake, linux/procfs.py)."""
    return procfs.fd_link(fd)


def open_root(rootfs: str) -> int:
    """Open the rootfs directory itself as an O_PATH fd.

    The rootfs path comes from config.json (trusted), so following symlinks in it is fine; the
    config-validation layer is responsible for refusing a rootfs that is itself a symlink.
    """
    return os.open(rootfs, _O_PATH | os.O_DIRECTORY)


def _check_path(path: str) -> None:
    """Refuse NUL bytes early with a clean OSError instead of ctypes/os ValueErrors."""
    if "\x00" in path:
        raise _err(errno.EINVAL, path.replace("\x00", "\\0"))


def verify_under(fd: int, root_fd: int, path: str = "") -> str:
    """Check ``fd`` really sits at or under the root; return its path relative to the root ("/..." form).

    This is the last line of defence against a rename race that moved a directory out of the root
    between two steps of a walk. "(deleted)" suffixes (an unlinked target) are refused as well.
    """
    root = fd_path(root_fd)
    real = fd_path(fd)
    if real == root:
        return "/"
    prefix = root if root.endswith("/") else root + "/"
    if not real.startswith(prefix) or real.endswith(" (deleted)"):
        raise _err(errno.EXDEV, f"{path} resolved to {real!r}, outside of the root {root!r}")
    return "/" + real[len(prefix):]


def _openat2_available() -> bool:
    """Probe openat2 once; cached so the ENOSYS decision is made a single time."""
    global _have_openat2
    if _have_openat2 is None:
        try:
            os.close(m.openat2(m.AT_FDCWD, "/", os.O_PATH))
            _have_openat2 = True
        except OSError as e:
            if e.errno != errno.ENOSYS:
                raise
            _have_openat2 = False
    return _have_openat2


def _openat2_in_root(root_fd: int, path: str, flags: int) -> int:
    """openat2 with RESOLVE_IN_ROOT, retrying EAGAIN (a concurrent rename/mount made ``..`` unsafe)."""
    for _ in range(EAGAIN_RETRIES):
        try:
            return m.openat2(root_fd, path, flags, 0, _IN_ROOT)
        except OSError as e:
            if e.errno != errno.EAGAIN:
                raise _err(e.errno, path) from None
    raise _err(errno.EAGAIN, path)


def _split(path: str) -> list[str]:
    """Split a path into components; empty and '.' parts vanish, '..' is kept for the walk."""
    return [c for c in path.split("/") if c and c != "."]


def _walk(root_fd: int, path: str, *, create: str | None = None, mode: int = 0o755,
          want_dir: bool = False) -> int:
    """Component walk from ``root_fd`` that treats it as ``/``; returns an O_PATH fd.

    Every component is opened with O_NOFOLLOW, so the kernel never follows a symlink for us: a symlink
    is read with readlinkat and its target spliced into the remaining path (absolute targets restart
    at the root). ``..`` pops back to the parent fd we came from, so it can never climb above the root
    and never re-resolves a name. ``create`` is None (lookup only), "dir" (mkdirat missing components)
    or "file" (mkdirat parents, openat(O_CREAT|O_EXCL|O_NOFOLLOW) the last). A dangling symlink
    therefore gets its target created *inside* the root, which images rely on.
    """
    todo = _split(path)
    if path.endswith("/") or path.endswith("/.") or path.endswith("/.."):
        want_dir = True
    stack: list[int] = []  # parent fds, for ".."
    cur = os.dup(root_fd)
    links = 0
    races = 0
    try:
        while todo:
            name = todo.pop(0)
            if name == "..":
                if stack:
                    os.close(cur)
                    cur = stack.pop()
                continue
            last = not todo
            try:
                nfd = os.open(name, _O_PATH | os.O_NOFOLLOW, dir_fd=cur)
            except FileNotFoundError:
                if create is None:
                    raise _err(errno.ENOENT, path) from None
                try:
                    if last and create == "file":
                        os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_WRONLY
                                         | os.O_CLOEXEC, mode, dir_fd=cur))
                    else:
                        # Parents of a file mount point are directories: 0755, not the file's mode.
                        os.mkdir(name, mode if create == "dir" else 0o755, dir_fd=cur)
                except FileExistsError:
                    # Somebody created it between our open and mkdir: look again (bounded).
                    races += 1
                    if races > EAGAIN_RETRIES:
                        raise _err(errno.EAGAIN, path) from None
                todo.insert(0, name)
                continue
            st = os.fstat(nfd)
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_SYMLINKS:
                    os.close(nfd)
                    raise _err(errno.ELOOP, path)
                target = os.readlink("", dir_fd=nfd)
                os.close(nfd)
                if "\x00" in target or target == "":
                    raise _err(errno.ENOENT, path)
                if target.startswith("/"):
                    for fd in stack:
                        os.close(fd)
                    stack.clear()
                    os.close(cur)
                    cur = os.dup(root_fd)
                todo[:0] = _split(target)
                if target.endswith("/") and last:
                    want_dir = True
                continue
            if (todo or want_dir) and not stat.S_ISDIR(st.st_mode):
                os.close(nfd)
                raise _err(errno.ENOTDIR, path)
            stack.append(cur)
            cur = nfd
        if want_dir and not stat.S_ISDIR(os.fstat(cur).st_mode):
            raise _err(errno.ENOTDIR, path)
        result, cur = cur, -1
        return result
    finally:
        for fd in stack:
            os.close(fd)
        if cur != -1:
            os.close(cur)


def resolve(root_fd: int, path: str, *, directory: bool = False) -> int:
    """Open ``path`` (interpreted with ``root_fd`` as ``/``) as a verified O_PATH fd.

    Raises OSError(ENOENT) when it does not exist, ELOOP for symlink loops, ENOTDIR when a file is
    where a directory is needed (or ``directory`` is asked and the target is not one), and EXDEV if
    the result is somehow outside the root.
    """
    _check_path(path)
    rel = path.lstrip("/") or "."
    flags = _O_PATH | (os.O_DIRECTORY if directory else 0)
    if not force_fallback and _openat2_available():
        fd = _openat2_in_root(root_fd, rel, flags)
    else:
        fd = _walk(root_fd, rel, want_dir=directory)
    return _verified(fd, root_fd, path)


def open_in_root(root_fd: int, path: str, flags: int = os.O_RDONLY) -> int:
    """Open ``path`` for I/O (not O_PATH) with symlinks followed, but only ever inside the root.

    For reading files of the image (its /etc/passwd may well be a symlink). With openat2 the
    kernel confines the lookup and needs no /proc; the fallback walk returns an O_PATH fd that
    is reopened through our own procfs handle (linux/procfs.py) after the usual check.
    """
    _check_path(path)
    rel = path.lstrip("/") or "."
    if not force_fallback and _openat2_available():
        return _openat2_in_root(root_fd, rel, flags)
    fd = _verified(_walk(root_fd, rel), root_fd, path)
    try:
        return procfs.reopen(fd, flags)
    finally:
        os.close(fd)


def _verified(fd: int, root_fd: int, path: str) -> int:
    """Return ``fd`` once it is checked to lie under the root; close it if not."""
    try:
        verify_under(fd, root_fd, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def mkdir_all_in_root(root_fd: int, path: str, mode: int = 0o755) -> int:
    """Make sure directory ``path`` exists inside the root (creating what is missing); O_PATH fd.

    Existing paths are looked up with openat2 when possible; anything missing is created by the
    fd-relative walk, one mkdirat at a time beneath parents already opened without following
    symlinks, so a swapped-in symlink can never make us create directories on the host.
    """
    try:
        return resolve(root_fd, path, directory=True)
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise
    fd = _walk(root_fd, path.lstrip("/") or ".", create="dir", mode=mode, want_dir=True)
    return _verified(fd, root_fd, path)


def create_file_in_root(root_fd: int, path: str, mode: int = 0o644) -> int:
    """Make sure ``path`` exists inside the root (an empty file if missing); return an O_PATH fd.

    Used for file mount points (binding a file) and /dev nodes bound from the host. Parents are
    created as directories; the file itself with O_CREAT|O_EXCL|O_NOFOLLOW relative to its parent.
    """
    try:
        return resolve(root_fd, path)
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise
    fd = _walk(root_fd, path.lstrip("/"), create="file", mode=mode)
    return _verified(fd, root_fd, path)


def open_parent_in_root(root_fd: int, path: str, mode: int = 0o755) -> tuple[int, str]:
    """Return (O_PATH fd of the parent directory, created if needed; final name) for ``path``.

    For *at operations on the last component (mknodat, symlinkat, unlinkat) that must not follow it.
    """
    _check_path(path)
    head, _, name = path.rstrip("/").rpartition("/")
    if name in ("", ".", ".."):
        raise _err(errno.EINVAL, path)
    return mkdir_all_in_root(root_fd, head or "/", mode), name
