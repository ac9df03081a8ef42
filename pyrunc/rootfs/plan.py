"""The container's mount table worked out without making it (``pyrunc plan``).

The init builds the container's file tree in steps (prepare_rootfs, mount_filesystems,
create_devices, pivot_root, set_up_console, create_cwd, finish_rootfs); this module follows the
same steps on a model of that tree and predicts every mount the container will have, in the order
the kernel lists them (creation order), with its mount point as the container sees it, its
filesystem type, source, per-mount flags and propagation. Nothing is mounted, created or
written: the model answers "what is at this path" from the host's files (the rootfs, a bind's
source) and from what earlier steps would have made.

It decides with the code the init runs (``mounts.classify``, ``bind_flags``, ``remount_flags``,
``fs_mount_args``, ``check_proc_policy``, ``v1_entries``, ``devices.device_list``); what it
adds is the part the kernel does (resolving a destination inside the root through symlinks,
which flags a mount ends up with). tests/integration/test_plan_differential.py holds the
prediction to what create then really did, read back from /proc/PID/mountinfo.
"""

from __future__ import annotations

import os
import stat

from pyrunc.errors import PyruncError
from pyrunc.linux import mount as m
from pyrunc.rootfs import devices as dv
from pyrunc.rootfs import mounts as mt
from pyrunc.rootfs import options as mopts

MAX_SYMLINKS = 40
# Per-mount flag words in the order /proc/PID/mountinfo prints them.
WORDS = ("ro", "nosuid", "nodev", "noexec", "noatime", "nodiratime", "relatime", "nosymfollow")
LOCKABLE = frozenset({"ro", "nosuid", "nodev", "noexec"})
ATIME = frozenset({"noatime", "relatime"})
_ATTR_WORDS = ((m.MOUNT_ATTR_RDONLY, "ro"), (m.MOUNT_ATTR_NOSUID, "nosuid"), (m.MOUNT_ATTR_NODEV, "nodev"),
               (m.MOUNT_ATTR_NOEXEC, "noexec"), (m.MOUNT_ATTR_NODIRATIME, "nodiratime"),
               (m.MOUNT_ATTR_NOSYMFOLLOW, "nosymfollow"))
PROPAGATION_NAMES = {m.MS_SHARED: "shared", m.MS_SLAVE: "slave", m.MS_PRIVATE: "private",
                     m.MS_UNBINDABLE: "unbindable"}
# What a fresh filesystem shows below its root, as far as a lookup of ours can tell.
HOST_VIEW = {"proc": "/proc", "sysfs": "/sys", "cgroup2": "/sys/fs/cgroup"}


def words(ms_flags: int) -> set[str]:
    """The per-mount flags a mount(2) with ``ms_flags`` gives (relatime unless told otherwise)."""
    out = {w for bit, w in ((m.MS_RDONLY, "ro"), (m.MS_NOSUID, "nosuid"), (m.MS_NODEV, "nodev"),
                            (m.MS_NOEXEC, "noexec"), (m.MS_NODIRATIME, "nodiratime"),
                            (m.MS_NOSYMFOLLOW, "nosymfollow")) if ms_flags & bit}
    if ms_flags & m.MS_NOATIME:
        out.add("noatime")
    elif not ms_flags & m.MS_STRICTATIME:
        out.add("relatime")
    return out


def remounted(old: set[str], ms_flags: int, *, locked: bool) -> set[str]:
    """A bind remount with ``ms_flags``: those flags replace the old ones, except that the atime
    mode is kept when none is given (the kernel's rule), and in a user namespace the flags the
    mount came with are locked (``mounts.bind_remount`` retries with them)."""
    new = words(ms_flags)
    if not ms_flags & (m.MS_NOATIME | m.MS_RELATIME | m.MS_STRICTATIME | m.MS_NODIRATIME):
        new = (new - ATIME - {"nodiratime"}) | (old & (ATIME | {"nodiratime"}))
    if locked:
        new |= old & LOCKABLE
    return new


def with_attrs(old: set[str], attr_set: int, attr_clr: int) -> set[str]:
    """mount_setattr(attr_set, attr_clr) on a mount with flags ``old``."""
    new = set(old)
    for bit, word in _ATTR_WORDS:
        if attr_clr & bit:
            new.discard(word)
        if attr_set & bit:
            new.add(word)
    if attr_clr & m.MOUNT_ATTR__ATIME:
        new -= ATIME
        atime = attr_set & m.MOUNT_ATTR__ATIME
        if atime == m.MOUNT_ATTR_NOATIME:
            new.add("noatime")
        elif atime == m.MOUNT_ATTR_RELATIME:
            new.add("relatime")
    return new


def show(flags: set[str]) -> str:
    """Flags as mountinfo's per-mount options field writes them: ``rw,nosuid,relatime``."""
    return ",".join(["ro" if "ro" in flags else "rw"] + [w for w in WORDS[1:] if w in flags])


def host_propagation(mi: mt.MountInfo) -> str:
    """shared, slave, unbindable or private, from a mountinfo line's optional fields."""
    tags = {o.split(":", 1)[0] for o in mi.optional}
    if "shared" in tags:
        return "shared" if "master" not in tags else "shared+slave"
    if "master" in tags:
        return "slave"
    return "unbindable" if "unbindable" in tags else "private"


class Entry:
    """One mount the container will have."""

    __slots__ = ("point", "fstype", "source", "flags", "propagation", "step", "origin", "data", "host",
                 "made", "explicit")

    def __init__(self, point: str, fstype: str, source: str, flags: set[str], *, step: str, origin: str,
                 propagation: str = "private", data: str = "", host: str | None = None):
        self.point = point
        self.fstype = fstype
        self.source = source
        self.flags = flags
        self.propagation = propagation
        self.step = step
        self.origin = origin
        self.data = data
        self.host = host  # where its content can be looked up on the host (None: a fresh, empty fs)
        self.made: dict[str, tuple] = {}  # what the init would create inside it: rel -> kind
        self.explicit = False  # the propagation was asked for (a propagation option)

    def as_dict(self) -> dict:
        return {"point": self.point, "type": self.fstype, "source": self.source, "flags": show(self.flags),
                "data": self.data, "propagation": self.propagation, "propagation_set": self.explicit,
                "step": self.step, "origin": self.origin}


def _split(path: str) -> list[str]:
    return [c for c in path.split("/") if c and c != "."]


def _under(path: str, top: str) -> bool:
    return top == "/" or path == top or path.startswith(top.rstrip("/") + "/")


class View:
    """The container's tree as the init will see it: the mounts so far, over the host's files."""

    def __init__(self, host_mounts: list[mt.MountInfo]):
        self.host_mounts = host_mounts
        self.entries: list[Entry] = []
        self.creates: list[str] = []  # host paths the init would create (mount points in the rootfs)

    # -- what is where ------------------------------------------------------------------------
    def covering(self, path: str) -> Entry:
        """The mount that shows ``path``: walking down, a mount at a prefix made after the one
        we are on covers it (a mount made there earlier is hidden under the later one)."""
        cur = 0
        parts = _split(path)
        for k in range(len(parts) + 1):
            prefix = "/" + "/".join(parts[:k])
            for j in range(len(self.entries) - 1, cur, -1):
                if self.entries[j].point == prefix:
                    cur = j
                    break
        return self.entries[cur]

    def visible(self, e: Entry) -> bool:
        return self.covering(e.point) is e

    def lookup(self, path: str) -> tuple:
        """``("dir",)``, ``("file",)``, ``("link", target)``, ``("dev", kind, rdev)`` or ``()``."""
        e = self.covering(path)
        rel = path[len(e.point.rstrip("/")):] if e.point != "/" else path
        rel = rel if rel.startswith("/") or not rel else "/" + rel
        if rel in e.made:
            return e.made[rel]
        if rel in ("", "/"):
            return ("dir",)
        if e.host is None:
            return ()
        try:
            st = os.lstat(e.host.rstrip("/") + rel)
        except OSError:
            return ()
        if stat.S_ISLNK(st.st_mode):
            try:
                return ("link", os.readlink(e.host.rstrip("/") + rel))
            except OSError:
                return ()
        if stat.S_ISDIR(st.st_mode):
            return ("dir",)
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            return ("dev", "c" if stat.S_ISCHR(st.st_mode) else "b", st.st_rdev)
        return ("file",)

    def host_path(self, path: str) -> str | None:
        """Where ``path`` is on the host, when the mount showing it is backed by host files."""
        e = self.covering(path)
        if e.host is None:
            return None
        rel = path[len(e.point.rstrip("/")):] if e.point != "/" else path
        return e.host.rstrip("/") + (rel if rel.startswith("/") or not rel else "/" + rel)

    def make(self, path: str, kind: tuple) -> None:
        """Record that the init creates ``path`` (a mount point, a device node, a link)."""
        e = self.covering(path)
        rel = path[len(e.point.rstrip("/")):] if e.point != "/" else path
        e.made[rel] = kind
        if e.host is not None:
            self.creates.append(e.host.rstrip("/") + rel)

    def resolve(self, path: str, create: str | None = None) -> str:
        """``path`` resolved inside the root as openat2(RESOLVE_IN_ROOT) and the creating walk of
        rootfs/resolve.py do it: symlinks followed, absolute ones from the container's /, ``..``
        never above it; missing components made ("dir", or "file" for the last) or OSError."""
        todo = _split(path)
        cur: list[str] = []
        links = 0
        while todo:
            name = todo.pop(0)
            if name == "..":
                if cur:
                    cur.pop()
                continue
            here = "/" + "/".join(cur + [name])
            kind = self.lookup(here)
            if kind and kind[0] == "link":
                links += 1
                if links > MAX_SYMLINKS:
                    raise OSError(40, os.strerror(40), path)
                if kind[1].startswith("/"):
                    cur = []
                todo[:0] = _split(kind[1])
                continue
            if not kind:
                if create is None:
                    raise OSError(2, os.strerror(2), path)
                kind = ("file",) if create == "file" and not todo else ("dir",)
                self.make(here, kind)
            elif todo and kind[0] != "dir":
                raise OSError(20, os.strerror(20), path)
            cur.append(name)
        return "/" + "/".join(cur)

    # -- the host's mounts ------------------------------------------------------------------
    def host_mount_of(self, path: str) -> mt.MountInfo | None:
        """The host mount ``path`` (a real path) is on: the last one mounted over its longest prefix."""
        best = None
        for mi in self.host_mounts:
            if _under(path, mi.mountpoint) and (best is None or len(mi.mountpoint) >= len(best.mountpoint)):
                best = mi
        return best

    def host_submounts(self, path: str) -> list[mt.MountInfo]:
        """Host mounts strictly below ``path``, in the order the kernel lists them."""
        top = path.rstrip("/")
        return [mi for mi in self.host_mounts if mi.mountpoint.startswith(top + "/")]

    def tree_below(self, real: str, rootfs: str) -> list[tuple[str, mt.MountInfo | Entry]]:
        """What a recursive bind of host path ``real`` copies along, before pivot_root: the mounts
        below it in the container's mount namespace, the host's (copied into it) and the
        container's own made so far (below the rootfs, when the rootfs is below ``real``), each as
        (path below ``real``, the mount), in the order the kernel copies them: depth first, a
        mount's children in the order they were mounted. Unbindable mounts are not copied."""
        top = real.rstrip("/")
        base = rootfs.rstrip("/")
        nodes: list[tuple[str, int, mt.MountInfo | Entry]] = []
        for seq, mi in enumerate(self.host_mounts):
            if mi.mountpoint.startswith(top + "/") and host_propagation(mi) != "unbindable":
                nodes.append((mi.mountpoint, seq, mi))
        for k, e in enumerate(self.entries):
            path = base + (e.point if e.point != "/" else "")
            if path.startswith(top + "/") and e.propagation != "unbindable":
                nodes.append((path, len(self.host_mounts) + k, e))
        children: dict[int, list[int]] = {}
        for i, (path, seq, _) in enumerate(nodes):
            parent = -1
            for j, (other, oseq, _) in enumerate(nodes):
                if oseq < seq and _under(path, other) and (parent < 0 or len(other) > len(nodes[parent][0])
                                                           or (other == nodes[parent][0] and oseq > nodes[parent][1])):
                    parent = j
            children.setdefault(parent, []).append(i)
        out: list[tuple[str, mt.MountInfo | Entry]] = []

        def walk(i: int) -> None:
            for c in sorted(children.get(i, []), key=lambda n: nodes[n][1]):
                out.append((nodes[c][0][len(top):], nodes[c][2]))
                walk(c)

        walk(-1)
        return out

    def add(self, e: Entry) -> Entry:
        self.entries.append(e)
        return e

    def subtree(self, path: str) -> list[Entry]:
        """The visible mounts strictly below ``path`` (what a recursive copy takes along)."""
        top = path.rstrip("/")
        return [e for e in self.entries if e.point.startswith(top + "/") and self.visible(e)]


class RootfsPlan:
    """What the rootfs steps would do: ``view`` (the mounts), ``devices``, ``notes`` per step and
    ``problems`` (``(pointer, cause)``, each a refusal the init would fail on)."""

    def __init__(self, view: View):
        self.view = view
        self.devices: list[dict] = []
        self.notes: list[tuple[str, str]] = []  # (step, what it does)
        self.problems: list[tuple[str, str]] = []

    def note(self, step: str, text: str) -> None:
        self.notes.append((step, text))


class Context:
    """What the container is, as far as its mounts care."""

    def __init__(self, *, rootfs: str, bundle: str, config: dict, own_mount_ns: bool, userns: bool,
                 new_netns: bool, new_ipcns: bool, cgroupns: bool, idmapped: set[int],
                 cgroup_paths: dict[str, str], no_pivot: bool):
        self.rootfs = rootfs
        self.bundle = bundle
        self.config = config
        self.linux = config.get("linux") or {}
        self.own_mount_ns = own_mount_ns
        self.userns = userns  # the init is in a user namespace of its own (mounts come locked)
        self.new_netns = new_netns
        self.new_ipcns = new_ipcns
        self.cgroupns = cgroupns
        self.idmapped = idmapped
        self.cgroup_paths = cgroup_paths  # controller -> the container's cgroup directory
        self.no_pivot = no_pivot
        self.privatised: set[int] = set()  # host mounts whose copy prepare_rootfs made private


def plan_rootfs(ctx: Context, host_mounts: list[mt.MountInfo] | None = None) -> RootfsPlan:
    """Follow the init's rootfs steps on a model; see the module docstring."""
    view = View(host_mounts if host_mounts is not None else mt.read_mountinfo())
    plan = RootfsPlan(view)
    plan_root(plan, ctx)
    for i, mnt in enumerate(ctx.config.get("mounts") or []):
        try:
            plan_mount(plan, ctx, i, mnt)
        except PyruncError as e:
            plan.problems.append((f"/mounts/{i}", e.cause))
        except OSError as e:
            plan.problems.append((f"/mounts/{i}", f"mount {mnt.get('destination')}: "
                                                  f"{os.strerror(e.errno or 0)}"))
    plan_devices(plan, ctx)
    if ctx.own_mount_ns:
        plan.note("pivot_root", f"MS_MOVE {ctx.rootfs} onto / and chroot (--no-pivot)" if ctx.no_pivot
                  else f"pivot_root into {ctx.rootfs}, the old root made rslave and detached")
    else:
        plan.note("pivot_root", f"chroot into {ctx.rootfs} (no mount namespace of its own)")
    plan_console(plan, ctx)
    plan_cwd(plan, ctx)
    plan_finish(plan, ctx)
    return plan


# -- prepare_rootfs --------------------------------------------------------------------------

def plan_root(plan: RootfsPlan, ctx: Context) -> None:
    """The rootfs becomes a mount of its own: a recursive bind onto itself in the container's
    mount namespace (prepare_rootfs), or the parent's private bind without one."""
    view = plan.view
    hm = view.host_mount_of(ctx.rootfs)
    prop = ctx.linux.get("rootfsPropagation")
    if ctx.own_mount_ns:
        step = "prepare_rootfs"
        plan.note(step, f"make / {prop or 'rslave'} (mount propagation to the host stopped), then bind "
                        f"{ctx.rootfs} onto itself (rbind) so that it is a mount point")
        propagation = copied_propagation(ctx, hm)
        if propagation.startswith("shared") and hm is not None:
            ctx.privatised.add(hm.mount_id)  # make_parent_mount_private: pivot_root refuses a shared parent
            propagation = "private"
        if propagation == "unbindable":
            plan.problems.append(("/linux/rootfsPropagation", f"bind mount rootfs {ctx.rootfs} onto itself: "
                                  "Invalid argument (its mount is unbindable)"))
    else:
        step = "attach_inherited_rootfs"
        plan.note(step, f"(parent) bind {ctx.rootfs} onto itself, private, in the caller's mount "
                        "namespace; delete detaches it again")
        propagation = PROPAGATION_NAMES[mopts.propagation_flag(prop) & m.MS_PROPAGATION] if prop else "private"
    root = Entry("/", hm.fstype if hm else "?", ctx.rootfs, _flags(hm), step=step, origin="root",
                 propagation=propagation, host=ctx.rootfs)
    root.explicit = bool(prop)
    view.add(root)
    for sub in view.host_submounts(ctx.rootfs):
        point = sub.mountpoint[len(ctx.rootfs.rstrip("/")):]
        view.add(Entry(point, sub.fstype, sub.source, _flags(sub), step=step,
                       origin="root (a mount inside the rootfs on the host)", host=sub.mountpoint,
                       propagation=copied_propagation(ctx, sub)))


def _flags(mi: mt.MountInfo | None) -> set[str]:
    return set(mi.options.split(",")) - {"rw"} if mi is not None else set()


def copied_propagation(ctx: Context, mi: mt.MountInfo | None) -> str:
    """The propagation of the container's copy of a host mount once prepare_rootfs changed /:
    rslave by default (a shared mount becomes a slave of the host's), or rootfsPropagation,
    which reaches other mounts only when recursive."""
    state = host_propagation(mi) if mi is not None else "private"
    if not ctx.own_mount_ns:
        return state
    if mi is not None and mi.mount_id in ctx.privatised:
        return "private"
    prop = ctx.linux.get("rootfsPropagation")
    flag = mopts.propagation_flag(prop) if prop else m.MS_SLAVE | m.MS_REC
    if not (flag & m.MS_REC or (mi is not None and mi.mountpoint == "/")):
        return state
    kind = PROPAGATION_NAMES[flag & m.MS_PROPAGATION]
    return changed_propagation(state, kind)


# -- mount_filesystems -----------------------------------------------------------------------

def plan_mount(plan: RootfsPlan, ctx: Context, index: int, mnt: dict) -> None:
    kind, opts = mt.classify(mnt, idmapped=index in ctx.idmapped)
    if kind == "bind":
        plan_bind(plan, ctx, index, mnt, opts)
    elif kind == "cgroup":
        plan_cgroup(plan, ctx, index, mnt, opts)
    else:
        plan_fs(plan, ctx, index, mnt, opts)


def _propagate(entries: list[Entry], opts: mopts.MountOptions) -> None:
    """Propagation options, applied in order after the mount (recursive ones to its copies too)."""
    for flag in opts.propagation:
        name = PROPAGATION_NAMES[flag & m.MS_PROPAGATION]
        for e in entries if flag & m.MS_REC else entries[:1]:
            e.propagation = changed_propagation(e.propagation, name)
            e.explicit = True


def changed_propagation(state: str, change: str) -> str:
    """mount --make-X on a mount in ``state``: a slave needs a master, so making a private (or
    unbindable) mount a slave leaves it private; a shared one becomes its peers' slave."""
    if change == "slave":
        return "private" if state in ("private", "unbindable") else "slave"
    return change


def _fresh_propagation(view: View, point: str) -> str:
    """A new mount under a shared one is shared (a new peer group), else private."""
    parent = view.covering(point)
    return "shared" if parent.propagation.startswith("shared") else "private"


def plan_bind(plan: RootfsPlan, ctx: Context, index: int, mnt: dict, opts: mopts.MountOptions) -> None:
    """mounts.mount_bind: the source (a host path), a bind (recursive for rbind), then a remount
    for ro/nosuid/..., recursive attributes and propagation."""
    view = plan.view
    source = mt.bind_source(mnt, ctx.bundle)
    try:
        st = os.stat(source)
    except OSError as e:
        raise PyruncError(f"bind mount source {source}: {os.strerror(e.errno or 0)}", step=mt.STEP) from None
    real = os.path.realpath(source)
    is_dir = stat.S_ISDIR(st.st_mode)
    dest = mnt["destination"]
    rel = view.resolve(dest, "dir" if is_dir else "file")
    if rel == "/":
        raise PyruncError(f"mount destination {dest} resolves to the container root", step=mt.STEP)
    _check_proc(rel, "bind", source)
    hm = view.host_mount_of(real)
    old = _flags(hm)
    base = copied_propagation(ctx, hm)
    parent_shared = _fresh_propagation(view, rel) == "shared"
    top = view.add(Entry(rel, hm.fstype if hm else "?", source, old, step="mount_filesystems",
                         origin=f"mounts[{index}]", host=real,
                         propagation="shared" if parent_shared else base))
    copies = [top] + (copy_tree(view, ctx, real, rel, f"mounts[{index}]") if opts.is_recursive_bind else [])
    remount = mt.needs_remount(opts)
    if remount:
        top.flags = remounted(top.flags, mt.remount_flags(opts.flags), locked=ctx.userns)
    if opts.rec_set or opts.rec_clr:
        for e in copies:
            e.flags = with_attrs(e.flags, opts.rec_set, opts.rec_clr)
    _propagate(copies, opts)
    how = "rbind" if opts.is_recursive_bind else "bind"
    if index in ctx.idmapped:
        how = "idmapped " + how
    extra = f", {len(copies) - 1} host submount(s) along" if len(copies) > 1 else ""
    plan.note("mount_filesystems", f"{how} {source} on {rel}{extra}"
                                   + (f", remount {show(top.flags)}" if remount else ""))


def copy_tree(view: View, ctx: Context, real: str, rel: str, origin: str) -> list[Entry]:
    """The copies a recursive bind of ``real`` onto ``rel`` brings along (View.tree_below); called
    right after the bind's own entry was added."""
    out = []
    top = view.entries[-1]  # the bind itself, just added: the copy is made before it is attached
    for below, mount in view.tree_below(real, ctx.rootfs):
        if mount is top:
            continue
        point = rel.rstrip("/") + below
        if isinstance(mount, Entry):
            e = Entry(point, mount.fstype, mount.source, set(mount.flags), step="mount_filesystems",
                      origin=f"{origin} (rbind: the container's {mount.point} copied along)", data=mount.data,
                      host=mount.host, propagation=mount.propagation)
            e.made = dict(mount.made)
        else:
            e = Entry(point, mount.fstype, mount.source, _flags(mount), step="mount_filesystems",
                      origin=f"{origin} (rbind: host submount {mount.mountpoint})", host=mount.mountpoint,
                      propagation=copied_propagation(ctx, mount))
        out.append(view.add(e))
    return out


def _check_proc(rel: str, mtype: str, source: str | None) -> None:
    """mounts.check_proc_policy on the resolved destination (a bind's source checked by statfs)."""
    fd = None
    if source is not None and rel == "/proc":
        try:
            fd = os.open(source, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            fd = None
    try:
        mt.check_proc_policy(rel, mtype, fd)
    finally:
        if fd is not None:
            os.close(fd)


def plan_fs(plan: RootfsPlan, ctx: Context, index: int, mnt: dict, opts: mopts.MountOptions) -> None:
    """mounts.mount_fs: a new filesystem of its type (proc, sysfs, tmpfs, devpts, mqueue ...),
    or where the kernel refuses a new sysfs or mqueue in a user namespace, the host's bound."""
    view = plan.view
    source, mtype, flags, data, copyup = mt.fs_mount_args(mnt, opts, ctx.linux.get("mountLabel"))
    dest = mnt["destination"]
    if mtype not in kernel_filesystems():
        raise PyruncError(f"mount {mtype} on {dest}: No such device (this kernel has no filesystem "
                          f"type {mtype!r} in /proc/filesystems)", step=mt.STEP)
    if flags & m.MS_REMOUNT:
        plan_remount(plan, index, dest, mtype, flags, data)
        return
    rel = view.resolve(dest, "dir")
    covered_host = view.host_path(rel) if copyup else None
    if rel == "/":
        raise PyruncError(f"mount destination {dest} resolves to the container root", step=mt.STEP)
    if mtype in ("proc", "sysfs") and (rel != mt._clean(dest) or view.lookup(rel)[:1] != ("dir",)):
        raise PyruncError(f"mount {mtype} on {dest}: filesystem {mtype!r} must be mounted on an "
                          f"ordinary directory (resolved to {rel})", step=mt.STEP)
    _check_proc(rel, mtype, None)
    if mtype in mt.HOST_COPY and _host_copy_needed(ctx, mtype):
        host = mt.HOST_COPY[mtype]
        hm = view.host_mount_of(host)
        top = view.add(Entry(rel, hm.fstype if hm else mtype, host, _flags(hm), step="mount_filesystems",
                             origin=f"mounts[{index}]", host=host, propagation=copied_propagation(ctx, hm)))
        copies = [top] + copy_tree(view, ctx, host, rel, f"mounts[{index}]")
        top.flags = remounted(top.flags, mt.remount_flags(opts.flags), locked=ctx.userns)
        if flags & m.MS_RDONLY:
            for e in copies[1:]:
                e.flags = with_attrs(e.flags, m.MOUNT_ATTR_RDONLY, 0)
        _propagate(copies, opts)
        plan.note("mount_filesystems", f"{mtype} on {rel}: a new {mtype} needs a namespace this user "
                                       f"namespace owns, so the host's {host} is bound (rbind) instead")
        return
    e = view.add(Entry(rel, mtype, source, words(flags), step="mount_filesystems", origin=f"mounts[{index}]",
                       data=data, host=covered_host if copyup else HOST_VIEW.get(mtype),
                       propagation=_fresh_propagation(view, rel)))
    if copyup and opts.flags & m.MS_RDONLY:
        e.flags = remounted(e.flags, mt.remount_flags(opts.flags & ~m.MS_PROPAGATION), locked=False)
    if opts.rec_set or opts.rec_clr:
        e.flags = with_attrs(e.flags, opts.rec_set, opts.rec_clr)
    _propagate([e], opts)
    text = f"mount {mtype} ({source}) on {rel}, {show(e.flags)}" + (f", data {data}" if data else "")
    if copyup:
        text += ", filled with what it covers (tmpcopyup)"
    plan.note("mount_filesystems", text)


def plan_remount(plan: RootfsPlan, index: int, dest: str, mtype: str, flags: int, data: str) -> None:
    """``remount``: mount(2) changes the mount already at the destination (its flags and
    options) instead of stacking a new one; anything else there is EINVAL."""
    view = plan.view
    rel = view.resolve(dest, "dir")  # mounts.mount_fs makes the mount point first
    e = view.covering(rel)
    if e.point != rel:
        raise PyruncError(f"mount {mtype} on {dest}: Invalid argument (remount: nothing is mounted there)",
                          step=mt.STEP)
    e.flags = remounted(e.flags, flags, locked=False)
    if data:
        e.data = data
    plan.note("mount_filesystems", f"remount {rel} {show(e.flags)} (mounts[{index}])")


_FILESYSTEMS: set[str] = set()


def kernel_filesystems() -> set[str]:
    """The filesystem types this kernel has (/proc/filesystems): mount(2) of any other is ENODEV.
    (A bind is no filesystem mount: classify sent it elsewhere whatever its type says.)"""
    if not _FILESYSTEMS:
        try:
            with open("/proc/filesystems", encoding="ascii") as f:
                _FILESYSTEMS.update(line.split()[-1] for line in f if line.strip())
        except OSError:
            return set(HOST_VIEW) | {"tmpfs", "devpts", "mqueue", "cgroup"}
    return _FILESYSTEMS


def _host_copy_needed(ctx: Context, mtype: str) -> bool:
    """A new sysfs needs a network namespace owned by the init's user namespace, a new mqueue an
    IPC one: in a user namespace of its own without them, the kernel says EPERM."""
    if not ctx.userns:
        return False
    return not (ctx.new_netns if mtype == "sysfs" else ctx.new_ipcns)


def plan_cgroup(plan: RootfsPlan, ctx: Context, index: int, mnt: dict, opts: mopts.MountOptions) -> None:
    """mounts.mount_cgroup: cgroup2 on a v2 host; on a v1 or hybrid host a tmpfs with one entry
    per hierarchy (a fresh mount in a cgroup namespace, else a bind of the container's cgroup)."""
    view = plan.view
    dest = mnt["destination"]
    flags = mt.cgroup_flags(opts)
    plan.note("enter_cgroup", "(called by the first cgroup mount) wait until the init is in its cgroup"
                              + (", then unshare the cgroup namespace" if ctx.cgroupns else ""))
    if mt.host_cgroup2():
        rel = view.resolve(dest, "dir")
        _check_proc(rel, "cgroup2", None)
        fallback = ctx.userns and not ctx.cgroupns
        e = view.add(Entry(rel, "cgroup2", "/sys/fs/cgroup" if fallback else "cgroup", words(opts.flags),
                           step="mount_filesystems", origin=f"mounts[{index}]", data=opts.data,
                           host="/sys/fs/cgroup", propagation=_fresh_propagation(view, rel)))
        if fallback:
            e.flags = remounted(e.flags, mt.remount_flags(opts.flags), locked=True)
        _propagate([e], opts)
        plan.note("mount_filesystems", f"cgroup2 on {rel}" + (" (the host's bound: no cgroup namespace "
                                                             "in this user namespace)" if fallback else ""))
        return
    hierarchies = mt.cgroup_v1_hierarchies(view.host_mounts)
    own = container_cgroups(ctx.cgroup_paths, hierarchies)
    entries = mt.v1_entries(hierarchies, own, ctx.cgroupns)
    rel = view.resolve(dest, "dir")
    _check_proc(rel, "tmpfs", None)
    label = mt._with_label("mode=755", ctx.linux.get("mountLabel"))
    tmpfs = view.add(Entry(rel, "tmpfs", "tmpfs", words(flags & ~m.MS_RDONLY), step="mount_filesystems",
                           origin=f"mounts[{index}]", data=label, propagation=_fresh_propagation(view, rel)))
    for h, source in entries:
        sub = f"{rel.rstrip('/')}/{h.name}"
        view.resolve(sub, "dir")
        e = view.add(Entry(sub, "cgroup", source or "cgroup", words(flags) if source is None else set(),
                           step="mount_filesystems", origin=f"mounts[{index}] (hierarchy {h.name})",
                           data=h.data if source is None else "", host=source,
                           propagation="private"))
        if source is not None:
            hm = view.host_mount_of(source)
            e.flags = remounted(_flags(hm), mt.remount_flags(flags), locked=ctx.userns)
            e.propagation = copied_propagation(ctx, hm)
        if "," in h.name:
            for ctrl in h.name.split(","):
                view.make(f"{rel.rstrip('/')}/{ctrl.removeprefix('name=')}", ("link", h.name))
    if flags & m.MS_RDONLY:
        tmpfs.flags = remounted(tmpfs.flags, mt.remount_flags(flags), locked=False)
    _propagate([tmpfs], opts)
    how = "fresh mounts (cgroup namespace)" if ctx.cgroupns else "binds of the container's own cgroups"
    plan.note("mount_filesystems", f"cgroup on {rel}: a tmpfs with {len(entries)} v1 hierarchies as {how}")


def container_cgroups(paths: dict[str, str], hierarchies: list[mt.V1Hierarchy]) -> dict[frozenset[str], str]:
    """The init's /proc/self/cgroup, by hierarchy, once it is in the container's cgroups: each
    directory made relative to the root of the hierarchy's mount it lies in."""
    own = mt._own_cgroups()  # where a hierarchy has no cgroup of the container's, the caller's
    for h in hierarchies:
        key = next((k for k in h.ids if k in paths), None)
        if key is None:
            continue
        d = paths[key]
        for mi in h.mounts:
            if _under(d, mi.mountpoint):
                inner = d[len(mi.mountpoint.rstrip("/")):]
                own[h.ids] = (mi.root.rstrip("/") + inner) or "/"
                break
    return own


# -- create_devices --------------------------------------------------------------------------

def plan_devices(plan: RootfsPlan, ctx: Context) -> None:
    """devices.create_devices: default and configured nodes, each made with mknod, or (in a user
    namespace, where mknod is refused) the host's node bound onto an empty file; a path that
    exists already is kept, as runc does. Then /dev/ptmx and the /dev links."""
    view = plan.view
    config_devices = ctx.linux.get("devices") or []
    for i, dev in enumerate(dv.device_list(config_devices, True)):
        try:
            path = dv._check_dev_path(dev.get("path", ""))
        except PyruncError as e:
            plan.problems.append((_device_pointer(config_devices, dev, i), e.cause))
            continue
        typ = dev.get("type", "")
        rdev = os.makedev(dev.get("major", 0), dev.get("minor", 0)) if typ != "p" else 0
        try:
            parent = view.resolve(os.path.dirname(path), "dir")
        except OSError as e:
            plan.problems.append((_device_pointer(config_devices, dev, i),
                                  f"create parent of {path}: {os.strerror(e.errno or 0)}"))
            continue
        target = parent.rstrip("/") + "/" + os.path.basename(path)
        have = view.lookup(target)
        mode = dev.get("fileMode")
        record = {"path": path, "type": typ, "major": dev.get("major", 0), "minor": dev.get("minor", 0),
                  "fileMode": f"{0o666 if mode is None else mode & 0o7777:04o}", "uid": dev.get("uid", 0) or 0,
                  "gid": dev.get("gid", 0) or 0, "step": "create_devices"}
        if have:
            record["how"] = "kept (it exists in the rootfs)"
        elif ctx.userns and typ != "p":
            record["how"] = f"bind of the host's {path} (mknod is refused in a user namespace)"
            hm = view.host_mount_of(path)
            view.make(target, ("file",))
            view.add(Entry(target, hm.fstype if hm else "devtmpfs", path, _flags(hm), step="create_devices",
                           origin=f"device {path}", host=None, propagation=copied_propagation(ctx, hm)))
            view.entries[-1].made[""] = ("dev", "c" if typ in ("c", "u") else "b", rdev)
        else:
            record["how"] = "mknod"
            view.make(target, ("dev", "c" if typ in ("c", "u") else typ, rdev))
        plan.devices.append(record)
    try:
        view.resolve("/dev", "dir")
        view.make("/dev/ptmx", ("link", "pts/ptmx"))
        for name, target in dv.DEV_SYMLINKS:
            if not view.lookup(f"/dev/{name}"):
                view.make(f"/dev/{name}", ("link", target))
    except OSError:
        pass
    plan.note("create_devices", f"{len(plan.devices)} device nodes; /dev/ptmx -> pts/ptmx; /dev/fd, "
                                "/dev/stdin, /dev/stdout, /dev/stderr links")


def _device_pointer(config_devices: list[dict], dev: dict, i: int) -> str:
    for j, d in enumerate(config_devices):
        if d is dev:
            return f"/linux/devices/{j}"
    return "/linux/devices"


# -- after pivot_root ------------------------------------------------------------------------

def plan_console(plan: RootfsPlan, ctx: Context) -> None:
    """set_up_console: the pty's slave (from the container's devpts) bound onto /dev/console."""
    if not (ctx.config.get("process") or {}).get("terminal"):
        return
    view = plan.view
    try:
        view.resolve("/dev", "dir")
    except OSError:
        return
    pts = view.covering("/dev/pts/0")
    if not view.lookup("/dev/console"):
        view.make("/dev/console", ("file",))
    view.add(Entry("/dev/console", pts.fstype, "a pty from /dev/ptmx", set(pts.flags), step="set_up_console",
                   origin="process.terminal", propagation="private"))
    plan.note("set_up_console", "open a pty in the container's devpts; bind its slave onto /dev/console; "
                                "send the master to the caller (console socket, or run's proxy)")


def plan_cwd(plan: RootfsPlan, ctx: Context) -> None:
    cwd = (ctx.config.get("process") or {}).get("cwd") or "/"
    try:
        before = len(plan.view.creates)
        plan.view.resolve(cwd, "dir")
        made = plan.view.creates[before:]
        plan.note("create_cwd", f"cwd {cwd} " + ("is created" if made else "exists"))
    except OSError as e:
        plan.problems.append(("/process/cwd", f"create cwd ({cwd!r}) set in config.json: "
                                              f"{os.strerror(e.errno or 0)}"))


def plan_finish(plan: RootfsPlan, ctx: Context) -> None:
    """rootfs.finish_rootfs: read-only paths (a read-only copy of each, submounts along), masked
    paths (a read-only tmpfs over a directory, /dev/null over anything else), then / read-only."""
    view = plan.view
    lin = ctx.linux
    for i, path in enumerate(lin.get("readonlyPaths") or []):
        rel = _optional(view, path)
        if rel is None:
            plan.note("finish_rootfs", f"read-only {path}: absent, skipped")
            continue
        below = view.covering(rel)
        subs = view.subtree(rel)
        host = view.host_path(rel)
        view.add(Entry(rel, below.fstype, below.source, below.flags | {"ro"}, step="finish_rootfs",
                       origin=f"readonlyPaths[{i}]", host=host, propagation=below.propagation))
        for sub in subs:
            view.add(Entry(sub.point, sub.fstype, sub.source, set(sub.flags), step="finish_rootfs",
                           origin=f"readonlyPaths[{i}] (submount {sub.point} copied along)", host=sub.host,
                           propagation=sub.propagation))
        plan.note("finish_rootfs", f"read-only {rel}" + (f" ({len(subs)} submounts copied along, left as "
                                                          "they are)" if subs else ""))
    masked = lin.get("maskedPaths") or []
    if masked:
        null = view.lookup("/dev/null")
        if null[:1] != ("dev",) or null[1] != "c" or null[2] != os.makedev(1, 3):
            plan.problems.append(("/linux/maskedPaths", "/dev/null is not the null device (char 1:3); "
                                                        "refusing to mask with it"))
            masked = []
        null_mount = view.covering("/dev/null")
    for i, path in enumerate(masked):
        rel = _optional(view, path)
        if rel is None:
            plan.note("finish_rootfs", f"mask {path}: absent, skipped")
            continue
        if view.lookup(rel)[:1] == ("dir",):
            view.add(Entry(rel, "tmpfs", "tmpfs", {"ro", "relatime"}, step="finish_rootfs",
                           origin=f"maskedPaths[{i}]", propagation="private"))
            plan.note("finish_rootfs", f"mask {rel}: an empty read-only tmpfs over the directory")
        else:
            view.add(Entry(rel, null_mount.fstype, "/dev/null", set(null_mount.flags), step="finish_rootfs",
                           origin=f"maskedPaths[{i}]", propagation="private"))
            view.entries[-1].made[""] = ("dev", "c", os.makedev(1, 3))
            plan.note("finish_rootfs", f"mask {rel}: /dev/null bound over it")
    if (ctx.config.get("root") or {}).get("readonly"):
        root = view.entries[0]
        root.flags = remounted(root.flags, m.MS_BIND | m.MS_REMOUNT | m.MS_RDONLY, locked=ctx.userns)
        plan.note("finish_rootfs", "remount / read-only")


def _optional(view: View, path: str) -> str | None:
    """A masked or read-only path resolved in the container; None when it does not exist."""
    try:
        return view.resolve(path)
    except OSError:
        return None
