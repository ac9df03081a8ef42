"""Which host mount stands for which cgroup v1 hierarchy (rootfs/mounts.py, issue 12 defect 4).

This host mounts every controller alone, so co-mounted hierarchies, named ones and extra binds
are given here as mountinfo lines: one hierarchy per superblock, named after its controllers,
and the mount closest to its root that holds our cgroup as the bind source.
"""

from __future__ import annotations

import pytest

from pyrunc.rootfs import mounts

LINES = [
    "30 23 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
    "62 27 0:40 /x /tmp/extra/cpu rw,relatime - cgroup cgroup rw,cpu,cpuacct",
    "31 30 0:40 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct",
    "32 30 0:41 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup "
    "rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd",
    "33 30 0:42 / /sys/fs/cgroup/net_cls,net_prio rw,relatime - cgroup cgroup rw,net_cls,net_prio",
    "34 30 0:43 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
    "63 27 0:42 /gone//deleted /tmp/extra/net\\040(deleted) rw,relatime - cgroup cgroup rw,net_cls,net_prio",
]


@pytest.fixture
def hierarchies(monkeypatch):
    monkeypatch.setattr(mounts, "_known_controllers",
                        lambda: {"cpu", "cpuacct", "net_cls", "net_prio", "memory"})
    return mounts.cgroup_v1_hierarchies([mounts.MountInfo(line) for line in LINES])


def test_one_hierarchy_per_superblock_named_by_its_controllers(hierarchies) -> None:
    got = {h.name: (sorted(h.ids), h.data, [mi.mount_id for mi in h.mounts]) for h in hierarchies}
    assert got == {
        "cpu,cpuacct": (["cpu", "cpuacct"], "cpu,cpuacct", [62, 31]),
        "systemd": (["name=systemd"], "xattr,name=systemd", [32]),  # no release_agent
        "net_cls,net_prio": (["net_cls", "net_prio"], "net_cls,net_prio", [33, 63]),
    }


def test_bind_source_is_the_mount_closest_to_the_root(hierarchies, monkeypatch) -> None:
    """The extra bind comes first in mountinfo and a deleted one is reachable by no path."""
    monkeypatch.setattr(mounts, "_reachable", lambda mi: "(deleted)" not in mi.mountpoint)
    own = {frozenset({"cpu", "cpuacct"}): "/x/c1", frozenset({"name=systemd"}): "/c1",
           frozenset({"net_cls", "net_prio"}): "/c1"}
    by_name = {h.name: h for h in hierarchies}
    assert mounts.own_cgroup_source(by_name["cpu,cpuacct"], own) == "/sys/fs/cgroup/cpu,cpuacct/x/c1"
    assert mounts.own_cgroup_source(by_name["systemd"], own) == "/sys/fs/cgroup/systemd/c1"
    assert mounts.own_cgroup_source(by_name["net_cls,net_prio"], own) == "/sys/fs/cgroup/net_cls,net_prio/c1"
    # Only the extra bind holds the cgroup: it is used (nothing else shows it).
    monkeypatch.setattr(mounts, "_reachable", lambda mi: mi.mount_id != 31)
    assert mounts.own_cgroup_source(by_name["cpu,cpuacct"], own) == "/tmp/extra/cpu/c1"
    # A cgroup no reachable mount holds: nothing to bind.
    assert mounts.own_cgroup_source(by_name["cpu,cpuacct"], {}) is None
