"""podman on this cgroup v1 (hybrid) host, with and without a private cgroup namespace (issue
12, defect 3).

podman writes the config (the cgroup namespace, a `cgroup` mount, memory and pids limits); the
container must see its own cgroup at /sys/fs/cgroup/<hierarchy>, one mount each, with those
limits, as under runc.
"""

from __future__ import annotations

import os

import pytest

from tests.e2e.conftest import IMAGE, ULIMITS, Podman, assert_same, both, unique

pytestmark = [pytest.mark.root, pytest.mark.slow,
              pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup/memory"),
                                 reason="needs a cgroup v1 (or hybrid) host")]

# The memory limit, pids.max, how many mounts are at /sys/fs/cgroup/cpu, and whether the memory
# mount's root is the container's own cgroup as /proc/self/cgroup names it.
PROBE = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; "
         "grep -c ' /sys/fs/cgroup/cpu ' /proc/self/mountinfo; "
         "root=$(grep ' /sys/fs/cgroup/memory ' /proc/self/mountinfo | cut -d' ' -f4); "
         "[ \"$root\" = \"$(grep :memory: /proc/self/cgroup | cut -d: -f3)\" ] && echo own || echo $root")


@pytest.mark.parametrize("cgroupns", ["private", "host"])
def test_cgroup_mount_shows_own_cgroup_and_limits(podman: Podman, cgroupns: str) -> None:
    def scenario(rt: str, binary: str) -> dict:
        name = podman.track(unique(f"cgns-{cgroupns}", rt), binary)
        r = podman(binary, "run", "--rm", "--name", name, "--network", "none", *ULIMITS,
                   f"--cgroupns={cgroupns}", "--memory", "64m", "--pids-limit", "77", IMAGE,
                   "sh", "-c", PROBE)
        return {"rc": r.rc, "out": r.lines}

    assert_same(both(scenario), {"rc": 0, "out": [str(64 << 20), "77", "1", "own"]})
