"""Mount the config's ``mounts`` into the rootfs, in order, never outside it.

Each destination is resolved (or created) inside the rootfs as an O_PATH fd
whose real path is checked, and the mount is made onto
``/proc/thread-self/fd/N`` so the target cannot be swapped between check
and mount (CVE-2021-30465). After a mount the fd still names the dentry
*under* the new mount, so any follow-up (bind remount, propagation) reopens
the destination and checks it is the same path. The /proc policy (only a
real procfs at /proc, nothing over /proc files except runc's lxcfs list)
is applied to the resolved path, not the config string (CVE-2023-27561).
"""

from __future__ import annotations

import errno
import os
import stat

from pyrunc.errors import PyruncError
from pyrunc.linux import mount as m
from pyrunc.proc import unescape_mountinfo
from pyrunc.rootfs import options as mopts
from pyrunc.rootfs import resolve as r

TYPE_CHECKING = False  # typing's own flag without importing typing on the hot path
if TYPE_CHECKING:
    from collections.abc import Callable

    from pyrunc.rootfs.sources import SourceTree

STEP = "mount"

# runc's allow-list of /proc files that lxcfs-style tools may overmount.
PROC_ALLOW = frozenset({
    "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
    "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev",
})
# Flags a bind remount must carry (the rest of MS_* is meaningless for a bind remount).
_REMOUNT_MASK = (m.MS_RDONLY | m.MS_NOSUID | m.MS_NODEV | m.MS_NOEXEC | m.MS_NOATIME
                 | m.MS_NODIRATIME | m.MS_RELATIME | m.MS_STRICTATIME | m.MS_NOSYMFOLLOW)


def fail(what: str, exc: BaseException | None = None, step: str = STEP) -> PyruncError:
    """Build the PyruncError for a failed step: ``what`` plus the errno text when there is one."""
    if isinstance(exc, OSError) and exc.errno:
        return PyruncError(f"{what}: {os.strerror(exc.errno)}", step=step)
    if exc is not None:
        return PyruncError(f"{what}: {exc}", step=step)
    return PyruncError(what, step=step)


def fd_target(fd: int) -> str:
    """The magic-link path that names an open fd as a mount source or target.

    Only before pivot_root, where /proc is still the host's (mount(2) takes a path, and a path
    after pivot_root starts in the container's tree; linux/procfs.py). What runs after it
    (finish_rootfs, the console) mounts with the fd-based calls instead."""
    return f"/proc/thread-self/fd/{fd}"


class MountInfo:
    """One line of /proc/self/mountinfo (the fields pyrunc needs)."""

    __slots__ = ("mount_id", "parent_id", "dev", "root", "mountpoint", "options", "optional",
                 "fstype", "source", "super_options")

    def __init__(self, line: str) -> None:
        pre, _, post = line.rstrip("\n").partition(" - ")
        f = pre.split(" ")
        self.mount_id = int(f[0])
        self.parent_id = int(f[1])
        self.dev = f[2]  # major:minor of the superblock: one per cgroup v1 hierarchy
        self.root = unescape_mountinfo(f[3])
        self.mountpoint = unescape_mountinfo(f[4])
        self.options = f[5]
        self.optional = f[6:]
        p = post.split(" ")
        self.fstype = p[0]
        self.source = unescape_mountinfo(p[1]) if len(p) > 1 else ""
        self.super_options = p[2] if len(p) > 2 else ""


def read_mountinfo(path: str = "/proc/self/mountinfo") -> list[MountInfo]:
    """Parse a mountinfo file."""
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return [MountInfo(line) for line in f if line.strip()]


# ---------------------------------------------------------------------------------------------
# destination handling


def _clean(dest: str) -> str:
    """Lexically clean a destination (relative ones count from /, as runc tolerates them)."""
    parts: list[str] = []
    for c in dest.split("/"):
        if c in ("", "."):
            continue
        if c == "..":
            if parts:
                parts.pop()
            continue
        parts.append(c)
    return "/" + "/".join(parts)


def check_proc_policy(rel: str, mtype: str, source_fd: int | None) -> None:
    """Refuse mounts that would hide or fake parts of procfs (CVE-2019-16884, 2019-19921).

    ``rel`` is the *resolved* destination. /proc itself takes only a proc mount or a bind of a real
    procfs; below /proc only the lxcfs allow-list may be overmounted.
    """
    if rel == "/proc":
        if mtype == "proc":
            return
        if source_fd is not None and m.fstatfs_type(source_fd) == m.PROC_SUPER_MAGIC:
            return
        raise PyruncError(f"{rel} cannot be mounted because it is not of type proc", step=STEP)
    if rel.startswith("/proc/") and rel not in PROC_ALLOW:
        raise PyruncError(f"{rel} cannot be mounted because it is inside /proc", step=STEP)


def _require_plain_dir(fd: int, rel: str, dest: str, mtype: str) -> None:
    """proc and sysfs go only onto an ordinary directory reached without symlinks (CVE-2023-27561)."""
    if rel != _clean(dest) or not stat.S_ISDIR(os.fstat(fd).st_mode):
        raise PyruncError(f"mount {mtype} on {dest}: filesystem {mtype!r} must be mounted on an "
                          f"ordinary directory (resolved to {rel})", step=STEP)


def open_mountpoint(root_fd: int, dest: str, *, as_file: bool) -> tuple[int, str]:
    """Resolve or create the mount point in the root; return (O_PATH fd, resolved in-root path)."""
    try:
        if as_file:
            fd = r.create_file_in_root(root_fd, dest)
        else:
            fd = r.mkdir_all_in_root(root_fd, dest)
    except OSError as e:
        raise fail(f"create mount point {dest}", e) from None
    try:
        rel = r.verify_under(fd, root_fd, dest)
    except OSError as e:
        os.close(fd)
        raise fail(f"mount point {dest}", e) from None
    if rel == "/":
        os.close(fd)
        raise PyruncError(f"mount destination {dest} resolves to the container root", step=STEP)
    return fd, rel


def reopen_after_mount(root_fd: int, rel: str, dest: str) -> int:
    """Reopen a just-mounted destination (the old fd names the covered dentry) and check it is the same path."""
    try:
        fd = r.resolve(root_fd, rel)
    except OSError as e:
        raise fail(f"reopen {dest} after mount", e) from None
    now = r.verify_under(fd, root_fd, dest)
    if now != rel:
        os.close(fd)
        raise PyruncError(f"mount point {dest} moved from {rel} to {now} during setup", step=STEP)
    return fd


# ---------------------------------------------------------------------------------------------
# the individual mount kinds


def bind_remount(target: str, flags: int, what: str) -> None:
    """Apply ro/nosuid/... to a fresh bind (the kernel ignores them on the bind itself).

    If the kernel refuses because the source mount has locked flags (user namespaces), retry with
    the mount's current flags added, as runc does.
    """
    want = remount_flags(flags)
    try:
        m.mount(None, target, None, want)
    except OSError as e:
        if e.errno != errno.EPERM:
            raise fail(f"remount {what}", e) from None
        try:
            m.mount(None, target, None, want | m.locked_flags(target))
        except OSError as e2:
            raise fail(f"remount {what}", e2) from None


def apply_after(root_fd: int, rel: str, dest: str, opts: mopts.MountOptions, *, remount: bool) -> None:
    """Post-mount changes made through a reopened fd: bind remount, recursive attrs, propagation."""
    if not (remount or opts.rec_set or opts.rec_clr or opts.propagation):
        return
    fd = reopen_after_mount(root_fd, rel, dest)
    try:
        target = fd_target(fd)
        if remount:
            # `ro` is this mount only: an rbind's submounts keep their own flags, as the spec,
            # the CRI (a hostPath is `rbind,ro`; recursive read-only is `rro`) and runc say.
            bind_remount(target, opts.flags, dest)
        if opts.rec_set or opts.rec_clr:
            try:
                m.mount_setattr(fd, "", m.AT_EMPTY_PATH | m.AT_RECURSIVE, opts.rec_set, opts.rec_clr)
            except OSError as e:
                raise fail(f"set recursive attributes on {dest}", e) from None
        for pflag in opts.propagation:
            try:
                m.mount(None, target, None, pflag)
            except OSError as e:
                raise fail(f"change propagation of {dest}", e) from None
    finally:
        os.close(fd)


def _with_label(data: str, mount_label: str | None) -> str:
    """Append the SELinux context= option the way runc formats it."""
    if not mount_label:
        return data
    ctx = f'context="{mount_label}"'
    return f"{data},{ctx}" if data else ctx


def bind_source(mnt: dict, bundle: str) -> str:
    """A bind mount's source as the host sees it: relative ones count from the bundle."""
    source = mnt.get("source") or ""
    return source if os.path.isabs(source) else os.path.join(bundle, source)


def bind_flags(opts: mopts.MountOptions) -> int:
    """The bind itself: MS_BIND, recursive for ``rbind``; the other flags need a remount."""
    return m.MS_BIND | (opts.flags & m.MS_REC)


def needs_remount(opts: mopts.MountOptions) -> bool:
    """A bind ignores ro/nosuid/...: any of them asked for means a bind remount after it."""
    return bool(opts.flags & _REMOUNT_MASK)


def remount_flags(flags: int) -> int:
    """The flags of a bind remount that applies ``flags`` (ro/nosuid/nodev/noexec/atime)."""
    return m.MS_BIND | m.MS_REMOUNT | (flags & _REMOUNT_MASK)


def fs_mount_args(mnt: dict, opts: mopts.MountOptions, mount_label: str | None) -> tuple[str, str, int, str, bool]:
    """``(source, type, flags, data, copyup)`` of the mount(2) call a filesystem mount makes; with
    tmpcopyup the tmpfs is mounted writable, filled, then made read-only if asked."""
    mtype = mnt.get("type") or ""
    source = mnt.get("source") or mtype
    copyup = opts.copyup and mtype == "tmpfs"  # runc ignores tmpcopyup on other types
    data = opts.data if mtype in ("proc", "sysfs", "mqueue") else _with_label(opts.data, mount_label)
    flags = opts.flags & ~m.MS_PROPAGATION
    if copyup:
        flags &= ~m.MS_RDONLY
    return source, mtype, flags, data, copyup


def mount_bind(root_fd: int, mnt: dict, opts: mopts.MountOptions, bundle: str,
               tree: SourceTree | None = None) -> None:
    """Bind mount: open the source first (relative to the bundle), then the destination, then
    mount fd->fd. ``tree``: the source cloned on the host side (rootfs/sources.py), attached
    instead when it is idmapped or when the source is out of our reach from here."""
    dest = mnt["destination"]
    source = bind_source(mnt, bundle)
    if tree is not None and tree.idmapped:
        attach_tree(root_fd, tree.fd, dest, opts, f"idmapped bind mount {source} on {dest}")
        return
    try:
        src_fd = os.open(source, os.O_PATH | os.O_CLOEXEC)
    except OSError as e:
        if tree is None:
            raise fail(f"bind mount source {source}", e) from None
        attach_tree(root_fd, tree.fd, dest, opts, f"bind mount {source} on {dest}")
        return
    try:
        is_dir = stat.S_ISDIR(os.fstat(src_fd).st_mode)
        fd, rel = open_mountpoint(root_fd, dest, as_file=not is_dir)
        try:
            check_proc_policy(rel, "bind", src_fd)
            try:
                m.mount(fd_target(src_fd), fd_target(fd), None, bind_flags(opts))
            except OSError as e:
                raise fail(f"bind mount {source} on {dest}", e) from None
        finally:
            os.close(fd)
    finally:
        os.close(src_fd)
    apply_after(root_fd, rel, dest, opts, remount=needs_remount(opts))


def attach_tree(root_fd: int, tree: int, dest: str, opts: mopts.MountOptions, what: str) -> None:
    """Move a detached tree made on the host side onto the destination, then the mount's flags."""
    is_dir = stat.S_ISDIR(os.fstat(tree).st_mode)
    fd, rel = open_mountpoint(root_fd, dest, as_file=not is_dir)
    try:
        check_proc_policy(rel, "bind", tree)
        try:
            m.move_mount(tree, "", fd, "", m.MOVE_MOUNT_F_EMPTY_PATH | m.MOVE_MOUNT_T_EMPTY_PATH)
        except OSError as e:
            raise fail(what, e) from None
    finally:
        os.close(fd)
    apply_after(root_fd, rel, dest, opts, remount=needs_remount(opts))


def mount_fs(root_fd: int, mnt: dict, opts: mopts.MountOptions, mount_label: str | None) -> None:
    """A filesystem mount (tmpfs, proc, sysfs, devpts, mqueue, ...) onto the resolved destination fd."""
    dest = mnt["destination"]
    source, mtype, flags, data, copyup = fs_mount_args(mnt, opts, mount_label)
    covered = None
    keeps_mode = needs_dir_mode(mtype, data)
    existed = (copyup or keeps_mode) and _exists(root_fd, dest)
    fd, rel = open_mountpoint(root_fd, dest, as_file=False)
    try:
        if keeps_mode and existed:
            data = with_dir_mode(data, os.fstat(fd).st_mode)
        if mtype in ("proc", "sysfs"):
            _require_plain_dir(fd, rel, dest, mtype)
        check_proc_policy(rel, mtype, None)
        if copyup:
            covered = open_covered_directory(fd, dest)  # filled first, made read-only after
        try:
            m.mount(source, fd_target(fd), mtype, flags, data)
        except OSError as e:
            if e.errno != errno.EPERM or mtype not in HOST_COPY:
                raise fail(f"mount {mtype} on {dest}", e) from None
            bind_host_copy(fd, mtype, flags, dest)
            os.close(fd)
            fd = -1
            apply_after(root_fd, rel, dest, opts, remount=True)
            if flags & m.MS_RDONLY:
                make_read_only_below(root_fd, rel, dest)
            return
    except BaseException:
        if covered is not None:
            os.close(covered)
        raise
    finally:
        if fd >= 0:
            os.close(fd)
    if covered is not None:
        copy_up(root_fd, rel, dest, covered, opts.flags & ~m.MS_PROPAGATION, keep_mode=existed)
    apply_after(root_fd, rel, dest, opts, remount=False)


def needs_dir_mode(mtype: str, data: str) -> bool:
    """A tmpfs without ``mode=`` over a directory the image has takes that directory's mode (runc
    1.1.8+ and 1.5: ``/root`` 0700 stays 0700 under a tmpfs; a directory made for the mount
    keeps tmpfs's 1777)."""
    return mtype == "tmpfs" and not any(o.startswith("mode=") for o in data.split(","))


def with_dir_mode(data: str, st_mode: int) -> str:
    """``data`` plus ``mode=`` of the covered directory, in octal as mount(8) writes it."""
    mode = f"mode={st_mode & 0o7777:o}"
    return f"{data},{mode}" if data else mode


# A new sysfs needs a network namespace owned by our user namespace, a new mqueue an IPC one;
# without them (rootless, sharing the host's) the kernel says EPERM and runc binds the host's.
HOST_COPY = {"sysfs": "/sys", "mqueue": "/dev/mqueue"}


def make_read_only_below(root_fd: int, rel: str, dest: str) -> None:
    """The host's submounts came along with a recursive bind: read-only too."""
    fd = reopen_after_mount(root_fd, rel, dest)
    try:
        m.mount_setattr(fd, "", m.AT_EMPTY_PATH | m.AT_RECURSIVE, m.MOUNT_ATTR_RDONLY, 0)
    except OSError as e:
        raise fail(f"make {dest} read-only recursively", e) from None
    finally:
        os.close(fd)


def bind_host_copy(fd: int, mtype: str, flags: int, dest: str) -> None:
    """Recursive bind of the host's mount instead of a new one; the caller remounts it with
    the mount's flags (read-only stays read-only, recursively)."""
    try:
        m.mount(HOST_COPY[mtype], fd_target(fd), None, m.MS_BIND | m.MS_REC)
    except OSError as e:
        raise fail(f"mount {mtype} on {dest} (refused, and binding the host's {HOST_COPY[mtype]} "
                   "failed too)", e) from None


def _exists(root_fd: int, dest: str) -> bool:
    try:
        os.close(r.resolve(root_fd, dest))
    except OSError:
        return False
    return True


def open_covered_directory(fd: int, dest: str) -> int:
    """The mount point as a readable directory, opened before the tmpfs covers it."""
    try:
        return os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
    except OSError as e:
        raise fail(f"tmpcopyup {dest}: open the directory to copy", e) from None


def copy_up(root_fd: int, rel: str, dest: str, covered: int, flags: int, *, keep_mode: bool) -> None:
    """tmpcopyup: the covered directory's content into the new tmpfs (rootfs/copyup.py), the
    directory's mode on the tmpfs root when the directory was the image's (runc keeps the
    owner the tmpfs was given), then read-only if the options say so, as runc does it (a
    read-only remount of this mount: the tmpfs itself stays writable underneath)."""
    from pyrunc.rootfs.copyup import copy_tree

    try:
        new = reopen_after_mount(root_fd, rel, dest)
        try:
            try:
                top = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=new)
                try:
                    copy_tree(covered, top)
                    if keep_mode:
                        os.fchmod(top, stat.S_IMODE(os.fstat(covered).st_mode))
                finally:
                    os.close(top)
            except OSError as e:
                where = f" {e.filename}" if e.filename else ""
                raise fail(f"tmpcopyup {dest}: copy{where}", e) from None
            if flags & m.MS_RDONLY:
                bind_remount(fd_target(new), flags, dest)
        finally:
            os.close(new)
    finally:
        os.close(covered)


# ---------------------------------------------------------------------------------------------
# cgroup


def _own_cgroups(path: str = "/proc/self/cgroup") -> dict[frozenset[str], str]:
    """This process's cgroup path in each v1 hierarchy, keyed by the hierarchy's controllers
    (and ``name=``), as /proc/self/cgroup lists them."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            _, ctrls, cg = line.rstrip("\n").split(":", 2)
            if ctrls:
                out[frozenset(ctrls.split(","))] = cg
    return out


def _known_controllers(path: str = "/proc/cgroups") -> set[str]:
    """The controller names this kernel has (what tells them apart from other cgroup options)."""
    with open(path, encoding="utf-8") as f:
        return {line.split()[0] for line in f if line.strip() and not line.startswith("#")}


class V1Hierarchy:
    """One cgroup v1 hierarchy as the host has it mounted (once, or bound in several places).

    ``name`` is the directory it gets in the container ("cpu,cpuacct", "systemd"), ``ids`` the
    controllers and ``name=`` option that identify it in /proc/self/cgroup, ``data`` the options
    a fresh mount of it takes, ``mounts`` every mount of it on the host, in mountinfo order.
    """

    __slots__ = ("name", "ids", "data", "mounts")

    def __init__(self, super_options: str, controllers: set[str]) -> None:
        opts = [o for o in super_options.split(",") if o not in ("rw", "ro")]
        ctrls = [o for o in opts if o in controllers]
        named = [o for o in opts if o.startswith("name=")]
        self.name = ",".join(ctrls) or (named[0].removeprefix("name=") if named else "")
        self.ids = frozenset(ctrls + named)
        # A fresh mount must ask for the same hierarchy with the same flags (else the kernel
        # warns); release_agent is only settable from the initial namespaces.
        self.data = ",".join(o for o in opts if not o.startswith("release_agent="))
        self.mounts: list[MountInfo] = []


def cgroup_v1_hierarchies(mountinfo: list[MountInfo]) -> list[V1Hierarchy]:
    """The host's v1 hierarchies, one each, told apart by their superblock (the device number
    of the mount), never by where a mount of them happens to be: a second bind of some cgroup
    somewhere else is the same hierarchy, not another one."""
    controllers = _known_controllers()
    by_dev: dict[str, V1Hierarchy] = {}
    for mi in mountinfo:
        if mi.fstype != "cgroup":
            continue
        h = by_dev.get(mi.dev)
        if h is None:
            h = by_dev[mi.dev] = V1Hierarchy(mi.super_options, controllers)
        h.mounts.append(mi)
    return [h for h in by_dev.values() if h.name and "/" not in h.name and h.name not in (".", "..")]


def _reachable(mi: MountInfo) -> bool:
    """The mount point still names this mount (not deleted, not covered by another mount)."""
    try:
        st = os.stat(mi.mountpoint)
    except OSError:
        return False
    major, _, minor = mi.dev.partition(":")
    return st.st_dev == os.makedev(int(major), int(minor))


def own_cgroup_source(h: V1Hierarchy, own: dict[frozenset[str], str]) -> str | None:
    """Host path of this process's cgroup in hierarchy ``h``, through the mount of the hierarchy
    closest to its root ("/", preferably) that contains that cgroup; None if none does."""
    cg = own.get(h.ids)
    if cg is None:
        return None
    best = None
    for mi in h.mounts:
        root = mi.root.rstrip("/") or "/"
        if not (root == "/" or cg == root or cg.startswith(root + "/")):
            continue
        if (best is None or len(root) < len(best.root.rstrip("/") or "/")) and _reachable(mi):
            best = mi
    if best is None:
        return None
    rel = os.path.relpath(cg, best.root.rstrip("/") or "/")
    return os.path.normpath(os.path.join(best.mountpoint, rel))


def cgroup_flags(opts: mopts.MountOptions) -> int:
    """A cgroup mount's flags: its entries are fresh mounts or binds remounted with these."""
    return opts.flags & ~(m.MS_PROPAGATION | m.MS_BIND | m.MS_REC)


def host_cgroup2() -> bool:
    """Is the host's /sys/fs/cgroup a cgroup v2 mount (else v1 or hybrid: a tmpfs of hierarchies)?"""
    try:
        host_fd = os.open("/sys/fs/cgroup", os.O_PATH | os.O_CLOEXEC | os.O_DIRECTORY)
        try:
            return m.fstatfs_type(host_fd) == m.CGROUP2_SUPER_MAGIC
        finally:
            os.close(host_fd)
    except OSError as e:
        raise fail("inspect host /sys/fs/cgroup", e) from None


def v1_entries(hierarchies: list[V1Hierarchy], own: dict[frozenset[str], str],
               cgroupns: bool) -> list[tuple[V1Hierarchy, str | None]]:
    """The hierarchies a v1 cgroup mount shows, each with the host directory to bind (None: a
    fresh mount, in a cgroup namespace); one whose cgroup no host mount shows is left out."""
    out: list[tuple[V1Hierarchy, str | None]] = []
    for h in hierarchies:
        source = None
        if not cgroupns:
            source = own_cgroup_source(h, own)
            if source is None:
                continue  # no mount on the host shows our cgroup of it: nothing to bind
        out.append((h, source))
    return out


def mount_cgroup(root_fd: int, mnt: dict, opts: mopts.MountOptions, mount_label: str | None,
                 cgroupns: bool = False) -> None:
    """Mount ``cgroup`` the way runc does on this kind of host.

    cgroup v2 host: mount cgroup2 there. v1/hybrid host: a tmpfs at the destination and one
    entry per v1 hierarchy: with a cgroup namespace (``cgroupns``: the config has one, so we
    are in it by now) a fresh cgroup mount, which the kernel roots at the namespace's root, the
    container's own cgroup; otherwise a bind of this process's own cgroup directory (so the
    container never sees the host's root cgroup), with the mount's flags (read-only when the
    options say ``ro``). Co-mounted hierarchies ("cpu,cpuacct") get per-controller symlinks.
    With ``ro`` the tmpfs itself is made read-only last.
    """
    dest = mnt["destination"]
    flags = cgroup_flags(opts)
    if host_cgroup2():
        mount_cgroup2(root_fd, mnt, opts)
        return
    try:
        entries = v1_entries(cgroup_v1_hierarchies(read_mountinfo()), {} if cgroupns else _own_cgroups(),
                             cgroupns)
    except OSError as e:
        raise fail("read the host's cgroup v1 hierarchies", e) from None
    fd, rel = open_mountpoint(root_fd, dest, as_file=False)
    try:
        check_proc_policy(rel, "tmpfs", None)
        try:
            m.mount("tmpfs", fd_target(fd), "tmpfs", flags & ~m.MS_RDONLY,
                    _with_label("mode=755", mount_label))
        except OSError as e:
            raise fail(f"mount tmpfs on {dest}", e) from None
    finally:
        os.close(fd)
    for h, source in entries:
        sub_dest = f"{rel}/{h.name}"
        sfd, srel = open_mountpoint(root_fd, sub_dest, as_file=False)
        try:
            if srel != sub_dest:
                raise PyruncError(f"cgroup mount point {sub_dest} resolved to {srel}", step=STEP)
            target = fd_target(sfd)
            try:
                if source is None:
                    m.mount("cgroup", target, "cgroup", flags, h.data)
                else:
                    m.mount(source, target, None, m.MS_BIND | m.MS_REC)
            except OSError as e:
                raise fail(f"mount cgroup {h.name} on {sub_dest}", e) from None
        finally:
            os.close(sfd)
        if source is not None:
            sfd = reopen_after_mount(root_fd, srel, sub_dest)
            try:
                bind_remount(fd_target(sfd), flags, sub_dest)
            finally:
                os.close(sfd)
        if "," in h.name:
            _comount_links(root_fd, rel, h.name)
    if flags & m.MS_RDONLY or opts.propagation:
        fd = reopen_after_mount(root_fd, rel, dest)
        try:
            if flags & m.MS_RDONLY:
                bind_remount(fd_target(fd), flags, dest)
            for pflag in opts.propagation:
                m.mount(None, fd_target(fd), None, pflag)
        except OSError as e:
            raise fail(f"change propagation of {dest}", e) from None
        finally:
            os.close(fd)


def mount_cgroup2(root_fd: int, mnt: dict, opts: mopts.MountOptions) -> None:
    """A new cgroup2 mount; in a user namespace without a cgroup namespace of its own the kernel
    refuses it (EPERM, or EBUSY where the rbind'd host /sys already has one there), and, as runc
    does, the host's /sys/fs/cgroup is bound instead (read-only when the mount says so)."""
    dest = mnt["destination"]
    fd, rel = open_mountpoint(root_fd, dest, as_file=False)
    try:
        check_proc_policy(rel, "cgroup2", None)
        try:
            m.mount("cgroup", fd_target(fd), "cgroup2", opts.flags & ~m.MS_PROPAGATION, opts.data)
            bound = False
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.EBUSY):
                raise fail(f"mount cgroup2 on {dest}", e) from None
            try:
                m.mount("/sys/fs/cgroup", fd_target(fd), None, m.MS_BIND | m.MS_REC)
            except OSError as e2:
                raise fail(f"mount cgroup2 on {dest} (refused, and binding the host's "
                           "/sys/fs/cgroup failed too)", e2) from None
            bound = True
    finally:
        os.close(fd)
    apply_after(root_fd, rel, dest, opts, remount=bound)


def _comount_links(root_fd: int, rel: str, subsys: str) -> None:
    """cpu -> cpu,cpuacct style symlinks next to a co-mounted hierarchy (as runc makes)."""
    dfd = r.resolve(root_fd, rel, directory=True)
    try:
        for ctrl in subsys.split(","):
            name = ctrl.removeprefix("name=")
            try:
                os.symlink(subsys, name, dir_fd=dfd)
            except FileExistsError:
                pass
            except OSError as e:
                raise fail(f"symlink {rel}/{name}", e) from None
    finally:
        os.close(dfd)


# ---------------------------------------------------------------------------------------------


def classify(mnt: dict, *, idmapped: bool) -> tuple[str, mopts.MountOptions]:
    """What one config mount is ("bind", "cgroup" or "fs") and its parsed options, or a
    PyruncError for what is refused before anything is made (``idmapped``: a user namespace was
    made for the mount's id mapping)."""
    dest = mnt.get("destination")
    if not isinstance(dest, str) or not dest or "\x00" in dest:
        raise PyruncError(f"invalid mount destination {dest!r}", step=STEP)
    opts = mopts.parse(mnt.get("options"))
    if opts.unsupported:
        raise PyruncError(f"mount {dest}: option(s) {', '.join(opts.unsupported)} not supported",
                          step=STEP)
    mtype = mnt.get("type") or ""
    if _clean(dest).startswith("/proc/"):
        # Refuse obvious cases before creating anything; the resolved path is checked again later.
        check_proc_policy(_clean(dest), mtype, None)
    if mtype == "bind" and not opts.is_bind:
        opts.flags |= m.MS_BIND
    if opts.idmap and not idmapped:
        raise PyruncError(f"mount {dest}: {opts.idmap} needs uidMappings and gidMappings", step=STEP)
    if idmapped and not opts.is_bind:
        raise PyruncError(f"mount {dest}: idmapped mounts are only supported for bind mounts", step=STEP)
    if opts.is_bind:
        if opts.data:  # runc 1.2+: mount(2) ignores data on a bind, so the caller's intent is lost
            raise PyruncError(f"mount {dest}: bind mounts cannot have any filesystem-specific options "
                              f"applied ({opts.data})", step=STEP)
        return "bind", opts
    return ("cgroup" if mtype == "cgroup" else "fs"), opts


def mount_one(root_fd: int, mnt: dict, *, bundle: str, mount_label: str | None,
              tree: SourceTree | None = None, cgroupns: bool = False) -> None:
    """Dispatch one config mount to the right kind (``tree``: its source cloned on the host side)."""
    kind, opts = classify(mnt, idmapped=tree is not None and tree.idmapped)
    if kind == "bind":
        mount_bind(root_fd, mnt, opts, bundle, tree)
    elif kind == "cgroup":
        mount_cgroup(root_fd, mnt, opts, mount_label, cgroupns)
    else:
        mount_fs(root_fd, mnt, opts, mount_label)


def mount_all(rootfs: str, mounts: list[dict], *, bundle: str, mount_label: str | None = None,
              source_trees: dict[int, SourceTree] | None = None,
              before_cgroup_mount: Callable[[], None] | None = None, cgroupns: bool = False) -> None:
    """Mount every config mount in listed order (see the package docstring for the contract).

    ``before_cgroup_mount`` runs once, before the first cgroup or cgroup2 mount: what such a
    mount shows depends on the cgroup (and cgroup namespace) the caller is in by then.
    ``cgroupns``: the container has a cgroup namespace of its own (created or joined; the
    caller is in it once ``before_cgroup_mount`` has run), so v1 hierarchies are mounted fresh.
    ``source_trees``: mount index -> its source cloned on the host side (rootfs/sources.py).
    """
    try:
        root_fd = r.open_root(rootfs)
    except OSError as e:
        raise fail(f"open rootfs {rootfs}", e) from None
    try:
        for i, mnt in enumerate(mounts):
            if before_cgroup_mount is not None and mnt.get("type") in ("cgroup", "cgroup2"):
                before_cgroup_mount()
                before_cgroup_mount = None
            mount_one(root_fd, mnt, bundle=bundle, mount_label=mount_label,
                      tree=(source_trees or {}).get(i), cgroupns=cgroupns)
    finally:
        os.close(root_fd)
