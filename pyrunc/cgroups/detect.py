"""Find out how cgroups are mounted on this machine: v1, v2 or hybrid.

Detection reads ``/proc/self/mountinfo`` and ``/proc/self/cgroup`` exactly once
each and turns them into a ``Layout``: for every v1 controller the hierarchy it
lives in (mount point, mount root, our own cgroup there) and, if present, the
cgroup2 ("unified") hierarchy. Everything is plain text parsing so unit tests
can feed a fake mountinfo whose mount points are temporary directories.

The mode rule follows what runc and systemd call the three layouts:
* ``v2``: a cgroup2 mount and no v1 controller hierarchies,
* ``hybrid``: v1 controller hierarchies plus a cgroup2 mount (usually
  ``/sys/fs/cgroup/unified``; it may hold controllers such as hugetlb),
* ``v1``: only v1 hierarchies.
"""

from __future__ import annotations

import os

from pyrunc.errors import CgroupError
from pyrunc.proc import unescape_mountinfo

# v1 super-block options that name a controller (everything else, such as
# "rw", "clone_children" or "release_agent=...", is a mount option).
V1_CONTROLLERS = frozenset({
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
    "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc",
})

MOUNTINFO = "/proc/self/mountinfo"
PROC_CGROUP = "/proc/self/cgroup"


class Hierarchy:
    """One mounted cgroup hierarchy as seen by the current process.

    ``own`` is this process's cgroup in the hierarchy, already made relative to
    the mount's root so that ``mountpoint + own`` is a real directory even when
    only a sub-tree is bind-mounted (as inside a container without cgroupns).
    """

    __slots__ = ("mountpoint", "root", "controllers", "own")

    def __init__(self, mountpoint: str, root: str, controllers: tuple[str, ...], own: str = "/"):
        self.mountpoint = mountpoint
        self.root = root
        self.controllers = controllers
        self.own = own

    def __repr__(self) -> str:
        return f"Hierarchy({self.mountpoint!r}, {self.controllers!r}, own={self.own!r})"


class Layout:
    """The detected cgroup setup: ``mode`` plus the hierarchies to manage."""

    __slots__ = ("mode", "v1", "unified")

    def __init__(self, mode: str, v1: dict[str, Hierarchy], unified: Hierarchy | None):
        self.mode = mode
        self.v1 = v1
        self.unified = unified

    def __repr__(self) -> str:
        return f"Layout({self.mode!r}, v1={self.v1!r}, unified={self.unified!r})"


def parse_mountinfo(text: str) -> list[tuple[str, str, str, str]]:
    """Return ``(mountpoint, root, fstype, super_options)`` for every cgroup mount.

    The optional fields between field 6 and the ``-`` separator vary in number,
    so the separator is searched for instead of counting columns.
    """
    mounts = []
    for line in text.splitlines():
        if "cgroup" not in line:
            continue
        fields = line.split(" ")
        try:
            sep = fields.index("-", 6)
        except ValueError:
            continue
        if len(fields) < sep + 4:
            continue
        fstype = fields[sep + 1]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        mounts.append((unescape_mountinfo(fields[4]), unescape_mountinfo(fields[3]), fstype, fields[sep + 3]))
    return mounts


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """Map each controller (and ``name=X`` hierarchy, ``""`` for v2) to our cgroup path."""
    own: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, ctrls, path = parts
        if not ctrls:
            own[""] = path
            continue
        for ctrl in ctrls.split(","):
            own[ctrl] = path
    return own


def _relative_to_root(path: str, root: str) -> str:
    """Strip the mount root from a /proc/self/cgroup path (bind-mounted sub-trees)."""
    if root in ("", "/"):
        return path or "/"
    if path == root:
        return "/"
    if path.startswith(root + "/"):
        return path[len(root):]
    return path or "/"


def build_layout(mountinfo: str, proc_cgroup: str) -> Layout:
    """Turn the two proc files' text into a ``Layout`` (pure; used by tests directly)."""
    own = parse_proc_cgroup(proc_cgroup)
    v1: dict[str, Hierarchy] = {}
    unified: Hierarchy | None = None
    for mountpoint, root, fstype, opts in parse_mountinfo(mountinfo):
        if fstype == "cgroup2":
            # The first cgroup2 mount wins: it is the system's, later ones are
            # usually bind mounts into container root filesystems.
            if unified is None:
                unified = Hierarchy(mountpoint, root, (), _relative_to_root(own.get("", "/"), root))
            continue
        ctrls = tuple(o for o in opts.split(",") if o in V1_CONTROLLERS or o.startswith("name="))
        if not ctrls or any(c in v1 for c in ctrls):
            continue
        key = next((c for c in ctrls if c in own), ctrls[0])
        h = Hierarchy(mountpoint, root, ctrls, _relative_to_root(own.get(key, "/"), root))
        for c in ctrls:
            v1[c] = h
    if v1:
        mode = "hybrid" if unified is not None else "v1"
    elif unified is not None:
        mode = "v2"
    else:
        raise CgroupError("no cgroup filesystem is mounted (checked /proc/self/mountinfo)",
                          step="detect cgroups")
    return Layout(mode, v1, unified)


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return f.read()


def detect() -> Layout:
    """Detect the layout of the running system (reads each proc file once)."""
    try:
        mountinfo = _read(MOUNTINFO)
        proc_cgroup = _read(PROC_CGROUP)
    except OSError as e:
        raise CgroupError(f"cannot read cgroup information: {e.strerror}", step="detect cgroups") from e
    return build_layout(mountinfo, proc_cgroup)


def systemd_running() -> bool:
    """True when systemd is PID 1 (the sd_booted() test: /run/systemd/system exists)."""
    return os.path.isdir("/run/systemd/system")
