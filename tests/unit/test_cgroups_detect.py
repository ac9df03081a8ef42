"""Layout detection from mountinfo / proc cgroup text (no real cgroups needed)."""

from __future__ import annotations

import pytest

from pyrunc.cgroups import detect
from pyrunc.errors import CgroupError

HYBRID_MOUNTINFO = """\
23 1 0:21 / /sys rw,nosuid - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""

HYBRID_CGROUP = """\
9:name=systemd:/
4:memory:/process_api/abc
3:cpuset:/
2:cpu,cpuacct:/user.slice
1:freezer:/
0::/
"""


def test_hybrid_layout() -> None:
    layout = detect.build_layout(HYBRID_MOUNTINFO, HYBRID_CGROUP)
    assert layout.mode == "hybrid"
    assert set(layout.v1) == {"cpu", "cpuacct", "cpuset", "memory", "freezer", "name=systemd"}
    assert layout.v1["cpu"] is layout.v1["cpuacct"]
    assert layout.v1["cpu"].mountpoint == "/sys/fs/cgroup/cpu,cpuacct"
    assert layout.v1["cpu"].own == "/user.slice"
    assert layout.v1["memory"].own == "/process_api/abc"
    assert layout.v1["cpuset"].controllers == ("cpuset",)  # clone_children is an option
    assert layout.unified is not None and layout.unified.mountpoint == "/sys/fs/cgroup/unified"


def test_pure_v2_and_pure_v1() -> None:
    v2 = detect.build_layout("30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
                             "0::/user.slice/session-1.scope\n")
    assert v2.mode == "v2" and not v2.v1
    assert v2.unified.own == "/user.slice/session-1.scope"
    v1_only = "\n".join(line for line in HYBRID_MOUNTINFO.splitlines() if "cgroup2" not in line)
    assert detect.build_layout(v1_only, HYBRID_CGROUP).mode == "v1"


def test_no_cgroups_is_an_error() -> None:
    with pytest.raises(CgroupError, match="no cgroup filesystem"):
        detect.build_layout("23 1 0:21 / /sys rw - sysfs sysfs rw\n", "")


def test_bind_mounted_subtree_strips_mount_root() -> None:
    """Inside a container without cgroupns the mount root is the container's cgroup."""
    info = "40 30 0:32 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n"
    layout = detect.build_layout(info, "4:memory:/docker/abc/sub\n")
    assert layout.v1["memory"].own == "/sub"


def test_octal_escapes_and_optional_fields() -> None:
    info = "41 31 0:38 / /tmp/with\\040space rw shared:1 master:2 - cgroup2 cgroup2 rw\n"
    (mount,) = detect.parse_mountinfo(info)
    assert mount == ("/tmp/with space", "/", "cgroup2", "rw")


def test_first_cgroup2_mount_wins() -> None:
    info = ("30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
            "90 80 0:26 / /run/ctr/rootfs/sys/fs/cgroup rw - cgroup2 cgroup2 rw\n")
    assert detect.build_layout(info, "0::/\n").unified.mountpoint == "/sys/fs/cgroup"


def test_detect_on_this_machine() -> None:
    layout = detect.detect()
    assert layout.mode in ("v1", "v2", "hybrid")
