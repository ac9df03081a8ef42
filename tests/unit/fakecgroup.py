"""A fake cgroupfs on plain tmp directories, for the cgroup managers' unit tests.

pyrunc never creates a control file: on cgroupfs the kernel makes every one of them with
the directory, and a write to a missing one fails (pyrunc/cgroups/base.py write_file). So
the tests give their tmp directories the kernel's part instead. ``mount`` makes a
directory the root of a fake hierarchy (v1 with its controllers, or v2 with the
controllers it offers) and fills in its files; while ``install`` is in effect (through
pytest's ``monkeypatch``), every directory made below such a root gets the control files
the kernel would give it, and removing one takes its files along, as kernfs does.

What the fake does not do: parse what is written. A file holds the last value written to
it (the test reads back what pyrunc wrote), and a new v2 cgroup's ``cgroup.controllers``
lists all the hierarchy offers (the kernel lists what the parent enabled). Files a kernel
may lack are left out, so the tests that need them add them: ``cgroup.freeze`` and
``cgroup.kill`` (kernels before 5.2 and 5.14), ``memory.memsw.*`` (no swap accounting),
``io.bfq.weight`` and ``blkio.bfq.*`` (no BFQ), ``hugetlb.*.rsvd.*``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

MARKER = ".fakecgroup"  # in a hierarchy's root: "v1 CONTROLLER..." or "v2 CONTROLLER..."

V1_CORE = {"cgroup.procs": "", "tasks": "", "notify_on_release": "0", "cgroup.clone_children": "0"}
V1_FILES: dict[str, dict[str, str]] = {
    "cpu": {"cpu.shares": "1024", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1",
            "cpu.stat": "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n"},
    "cpuacct": {"cpuacct.usage": "0", "cpuacct.usage_percpu": "0", "cpuacct.stat": "user 0\nsystem 0\n"},
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": "", "cpuset.cpu_exclusive": "0", "cpuset.mem_exclusive": "0"},
    "memory": {"memory.limit_in_bytes": "9223372036854771712", "memory.soft_limit_in_bytes": "9223372036854771712",
               "memory.usage_in_bytes": "0", "memory.max_usage_in_bytes": "0", "memory.failcnt": "0",
               "memory.swappiness": "60", "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\n",
               "memory.kmem.tcp.limit_in_bytes": "9223372036854771712", "memory.stat": "",
               "cgroup.event_control": ""},
    "devices": {"devices.allow": "", "devices.deny": "", "devices.list": "a *:* rwm"},
    "freezer": {"freezer.state": "THAWED"},
    "blkio": {"blkio.weight": "500", "blkio.leaf_weight": "500", "blkio.weight_device": "",
              "blkio.leaf_weight_device": "", "blkio.throttle.read_bps_device": "",
              "blkio.throttle.write_bps_device": "", "blkio.throttle.read_iops_device": "",
              "blkio.throttle.write_iops_device": ""},
    "pids": {"pids.max": "max", "pids.current": "0"},
    "hugetlb": {"hugetlb.2MB.limit_in_bytes": "9223372036854771712", "hugetlb.2MB.usage_in_bytes": "0"},
    "net_cls": {"net_cls.classid": "0"},
    "net_prio": {"net_prio.ifpriomap": "", "net_prio.prioidx": "1"},
    "rdma": {"rdma.max": ""},
}
V2_CORE = {"cgroup.procs": "", "cgroup.threads": "", "cgroup.type": "domain", "cgroup.subtree_control": "",
           "cgroup.events": "populated 0\nfrozen 0\n", "cgroup.max.depth": "max",
           "cgroup.max.descendants": "max", "cgroup.stat": "nr_descendants 0\nnr_dying_descendants 0\n"}
V2_FILES: dict[str, dict[str, str]] = {
    "cpu": {"cpu.weight": "100", "cpu.max": "max 100000", "cpu.max.burst": "0", "cpu.idle": "0",
            "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n"},
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": "", "cpuset.cpus.effective": "0-3", "cpuset.mems.effective": "0"},
    "io": {"io.weight": "default 100", "io.max": "", "io.stat": ""},
    "memory": {"memory.max": "max", "memory.high": "max", "memory.low": "0", "memory.min": "0",
               "memory.swap.max": "max", "memory.current": "0", "memory.swap.current": "0", "memory.stat": "",
               "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"},
    "pids": {"pids.max": "max", "pids.current": "0"},
    "hugetlb": {f"hugetlb.{size}.{name}": value for size in ("2MB", "1GB")
                for name, value in (("max", "max"), ("current", "0"), ("events", "max 0\n"))},
    "rdma": {"rdma.max": ""},
}


def mount(root: Path, version: str, controllers: list[str]) -> None:
    """Make ``root`` (an existing directory) the root of a fake hierarchy and give it its files.

    ``version`` is "v1" (``controllers`` as mounted together, ``name=X`` for a named one) or
    "v2" (``controllers`` are what ``cgroup.controllers`` offers)."""
    (root / MARKER).write_text(" ".join([version, *controllers]))
    if version == "v1":
        _populate(str(root), version, controllers)
    else:  # a v2 root has no controller interface files of its own
        _write(str(root), {**V2_CORE, "cgroup.controllers": " ".join(controllers)})


def enable(directory: Path, *controllers: str) -> None:
    """A v2 cgroup the host delegated ``controllers`` to: listed and their files there."""
    (directory / "cgroup.controllers").write_text(" ".join(controllers) + "\n")
    for ctrl in controllers:
        _write(str(directory), V2_FILES[ctrl])


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    """mkdir and rmdir below a fake root act as on cgroupfs until the test ends."""
    real_mkdir, real_rmdir = os.mkdir, os.rmdir

    def mkdir(path, mode=0o777, **kw):
        real_mkdir(path, mode, **kw)
        found = _hierarchy(os.path.dirname(os.path.abspath(path)))
        if found is not None:
            _populate(os.fspath(path), *found)

    def rmdir(path, **kw):
        if _hierarchy(os.path.dirname(os.path.abspath(path))) is not None:
            with os.scandir(path) as entries:
                files = [e.path for e in entries if not e.is_dir(follow_symlinks=False)]
            for f in files:
                os.unlink(f)
        real_rmdir(path, **kw)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "rmdir", rmdir)


def _hierarchy(directory: str) -> tuple[str, list[str]] | None:
    """(version, controllers) of the fake hierarchy ``directory`` is in, if any."""
    while True:
        try:
            with open(os.path.join(directory, MARKER)) as f:
                version, *controllers = f.read().split()
                return version, controllers
        except (FileNotFoundError, NotADirectoryError):
            pass
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def _populate(directory: str, version: str, controllers: list[str]) -> None:
    if version == "v1":
        _write(directory, V1_CORE)
        for ctrl in controllers:
            _write(directory, V1_FILES.get(ctrl, {}))
        return
    _write(directory, {**V2_CORE, "cgroup.controllers": " ".join(controllers)})
    for ctrl in controllers:
        _write(directory, V2_FILES[ctrl])


def _write(directory: str, files: dict[str, str]) -> None:
    for name, value in files.items():
        with open(os.path.join(directory, name), "w") as f:
            f.write(value)
