"""Populate the container's /dev: default nodes, linux.devices, and the usual symlinks.

Everything is created with ``*at`` calls relative to directory fds that were
resolved inside the rootfs, so a rootfs whose /dev is a symlink to a host
directory gets its nodes inside the rootfs, never on the host
(CVE-2026-41579 / CVE-2026-47766). Existing entries are left alone, as runc
does (an image's own /dev keeps its nodes); masking later re-verifies
/dev/null before trusting it.
"""

from __future__ import annotations

import os
import stat

from pyrunc.errors import PyruncError
from pyrunc.linux import mount as m
from pyrunc.rootfs import resolve as r
from pyrunc.rootfs.mounts import fail, fd_target

STEP = "create_devices"

# path, type, major, minor (all 0666 root:root, as runc's AllowedDevices)
DEFAULT_DEVICES: tuple[tuple[str, str, int, int], ...] = (
    ("/dev/null", "c", 1, 3),
    ("/dev/zero", "c", 1, 5),
    ("/dev/full", "c", 1, 7),
    ("/dev/random", "c", 1, 8),
    ("/dev/urandom", "c", 1, 9),
    ("/dev/tty", "c", 5, 0),
)

DEV_SYMLINKS: tuple[tuple[str, str], ...] = (
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
)

_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def device_list(devices: list[dict], default_devices: bool) -> list[dict]:
    """Defaults first (unless disabled), with config entries for the same path replacing them."""
    out: dict[str, dict] = {}
    if default_devices:
        for path, typ, major, minor in DEFAULT_DEVICES:
            out[path] = {"path": path, "type": typ, "major": major, "minor": minor,
                         "fileMode": 0o666, "uid": 0, "gid": 0}
    for dev in devices:
        out[dev["path"]] = dev
    return list(out.values())


def _check_dev_path(path: str) -> str:
    """An absolute path below / (config.md: devices MAY live anywhere in the container); ``..``
    is refused lexically, and the node is then made relative to a verified parent fd."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if "\x00" in path or ".." in parts or not parts or not path.startswith("/"):
        raise PyruncError(f"device path {path!r} must be an absolute path inside the container",
                          step=STEP)
    return "/" + "/".join(parts)


def bind_host_device(parent_fd: int, name: str, path: str, kind: int, rdev: int) -> None:
    """Fallback when mknod is not permitted (user namespaces): bind the host's node onto an empty file.

    The host node is opened O_PATH|O_NOFOLLOW and checked to be the same device before it is used.
    """
    try:
        src = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise fail(f"open host device {path} for bind", e, STEP) from None
    try:
        st = os.fstat(src)
        if stat.S_IFMT(st.st_mode) != kind or (kind != stat.S_IFIFO and st.st_rdev != rdev):
            raise PyruncError(f"host {path} is not the configured device", step=STEP)
        try:
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_WRONLY | os.O_CLOEXEC,
                             0o644, dir_fd=parent_fd))
        except FileExistsError:
            pass
        except OSError as e:
            raise fail(f"create bind target for {path}", e, STEP) from None
        dst = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
        try:
            if not stat.S_ISREG(os.fstat(dst).st_mode):
                raise PyruncError(f"bind target for {path} is not a regular file", step=STEP)
            try:
                m.mount(fd_target(src), fd_target(dst), None, m.MS_BIND)
            except OSError as e:
                raise fail(f"bind mount host device {path}", e, STEP) from None
        finally:
            os.close(dst)
    finally:
        os.close(src)


def create_device(root_fd: int, dev: dict) -> None:
    """mknodat one device (type/major/minor/fileMode/uid/gid) relative to its verified parent dir."""
    path = _check_dev_path(dev.get("path", ""))
    typ = dev.get("type", "")
    if typ not in _TYPES:
        raise PyruncError(f"device {path}: unknown type {typ!r}", step=STEP)
    kind = _TYPES[typ]
    rdev = os.makedev(dev.get("major", 0), dev.get("minor", 0)) if typ != "p" else 0
    mode = dev.get("fileMode")
    mode = 0o666 if mode is None else mode & 0o7777
    try:
        parent_fd, name = r.open_parent_in_root(root_fd, path)
    except OSError as e:
        raise fail(f"create parent of {path}", e, STEP) from None
    try:
        try:
            m.mknodat(parent_fd, name, kind | mode, rdev)
        except FileExistsError:
            return
        except PermissionError:
            bind_host_device(parent_fd, name, path, kind, rdev)
            return
        except OSError as e:
            raise fail(f"mknod {path}", e, STEP) from None
        try:
            os.chown(name, dev.get("uid", 0) or 0, dev.get("gid", 0) or 0, dir_fd=parent_fd,
                     follow_symlinks=False)
        except OSError as e:
            raise fail(f"chown {path}", e, STEP) from None
    finally:
        os.close(parent_fd)


def setup_ptmx(dev_fd: int) -> None:
    """Replace /dev/ptmx with a symlink to pts/ptmx (the devpts newinstance multiplexer)."""
    try:
        os.unlink("ptmx", dir_fd=dev_fd)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        raise PyruncError("/dev/ptmx is a directory", step=STEP) from None
    except OSError as e:
        raise fail("remove /dev/ptmx", e, STEP) from None
    try:
        os.symlink("pts/ptmx", "ptmx", dir_fd=dev_fd)
    except OSError as e:
        raise fail("symlink /dev/ptmx", e, STEP) from None


def setup_dev_symlinks(dev_fd: int, with_core: bool) -> None:
    """/dev/fd, /dev/std{in,out,err} (and /dev/core when the host has /proc/kcore); existing ones kept."""
    links = list(DEV_SYMLINKS)
    if with_core:
        links.append(("core", "/proc/kcore"))
    for name, target in links:
        try:
            os.symlink(target, name, dir_fd=dev_fd)
        except FileExistsError:
            pass
        except OSError as e:
            raise fail(f"symlink /dev/{name}", e, STEP) from None


def create_devices(rootfs: str, devices: list[dict], *, default_devices: bool = True) -> None:
    """Create default and configured device nodes plus /dev symlinks, all inside the rootfs.

    The umask is cleared while nodes are made so fileMode is exact, and restored afterwards.
    """
    try:
        root_fd = r.open_root(rootfs)
    except OSError as e:
        raise fail(f"open rootfs {rootfs}", e, STEP) from None
    old_umask = os.umask(0)
    try:
        try:
            dev_fd = r.mkdir_all_in_root(root_fd, "/dev")
        except OSError as e:
            raise fail("open /dev in rootfs", e, STEP) from None
        try:
            for dev in device_list(devices, default_devices):
                create_device(root_fd, dev)
            setup_ptmx(dev_fd)
            setup_dev_symlinks(dev_fd, with_core=os.path.lexists("/proc/kcore"))
        finally:
            os.close(dev_fd)
    finally:
        os.umask(old_umask)
        os.close(root_fd)

