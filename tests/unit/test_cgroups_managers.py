"""v1, v2 and hybrid managers against fake cgroupfs trees in tmp dirs.

The fake trees are plain directories that get the kernel's control files with
every cgroup made in them (tests/unit/fakecgroup.py), so each test checks which
files got which contents. Kernel behaviour (freezer state transitions,
controller availability) is simulated by pre-writing files.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from pyrunc.cgroups import base, create_manager, detect, devices_bpf, frozen, load_manager
from pyrunc.errors import CgroupError
from tests.unit import fakecgroup

V1_CTRLS = ["cpu,cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "name=systemd"]


@pytest.fixture(autouse=True)
def cgroupfs(monkeypatch: pytest.MonkeyPatch) -> None:
    fakecgroup.install(monkeypatch)


def make_layout(tmp_path: Path, mode: str, own: str = "/", memory_own: str | None = None) -> detect.Layout:
    """Build mount points under tmp_path and the matching fake mountinfo/proc-cgroup text."""
    mountinfo, cgroup = [], []
    if mode in ("v1", "hybrid"):
        for i, ctrls in enumerate(V1_CTRLS):
            mp = tmp_path / ctrls.replace("name=", "")
            mp.mkdir()
            fakecgroup.mount(mp, "v1", ctrls.split(","))
            mountinfo.append(f"{30 + i} 20 0:{30 + i} / {mp} rw - cgroup cgroup rw,{ctrls}")
            path = memory_own if (ctrls == "memory" and memory_own) else own
            cgroup.append(f"{i + 1}:{ctrls}:{path}")
            (mp / "cpuset.cpus").write_text("0-3\n") if ctrls == "cpuset" else None
            (mp / "cpuset.mems").write_text("0\n") if ctrls == "cpuset" else None
    if mode in ("v2", "hybrid"):
        mp = tmp_path / ("unified" if mode == "hybrid" else "v2")
        mp.mkdir()
        # hybrid: systemd's controller-less unified tree
        fakecgroup.mount(mp, "v2", ["cpuset", "cpu", "io", "memory", "hugetlb", "pids"] if mode == "v2" else [])
        mountinfo.append(f"99 20 0:99 / {mp} rw - cgroup2 cgroup2 rw")
        cgroup.append(f"0::{own}")
    return detect.build_layout("\n".join(mountinfo) + "\n", "\n".join(cgroup) + "\n")


def roundtrip(m):
    return load_manager(json.loads(json.dumps(m.save())))


# ------------------------------------------------------------------------------------- placement
def test_v1_default_placement_is_relative_to_own_cgroup(tmp_path: Path) -> None:
    layout = make_layout(tmp_path, "v1", memory_own="/process_api/abc")
    m = create_manager(None, "t1", layout=layout)
    p = m.paths()
    assert p["memory"] == f"{tmp_path}/memory/process_api/abc/t1"
    assert p["cpu"] == p["cpuacct"] == f"{tmp_path}/cpu,cpuacct/t1"
    assert p["name=systemd"] == f"{tmp_path}/systemd/t1"
    assert "unified" not in p and m.driver == "v1"


def test_absolute_and_relative_paths(tmp_path: Path) -> None:
    layout = make_layout(tmp_path, "hybrid", memory_own="/mine")
    a = create_manager("/default/c1", "c1", layout=layout).paths()
    assert a["memory"] == f"{tmp_path}/memory/default/c1"
    assert a["unified"] == f"{tmp_path}/unified/default/c1"
    r = create_manager("../../x/c1", "c1", layout=layout).paths()
    assert r["memory"] == f"{tmp_path}/memory/mine/x/c1"  # '..' cannot climb out


def test_v2_relative_uses_parent_of_own_cgroup(tmp_path: Path) -> None:
    layout = make_layout(tmp_path, "v2", own="/user.slice/session-1.scope")
    assert create_manager(None, "t1", layout=layout).paths() == {"unified": f"{tmp_path}/v2/user.slice/t1"}
    assert create_manager("/a/b", "t1", layout=layout).paths() == {"unified": f"{tmp_path}/v2/a/b"}


def test_hierarchy_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CgroupError, match="hierarchy root"):
        create_manager("/", "t1", layout=make_layout(tmp_path, "v1"))


def test_systemd_driver_refused_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = make_layout(tmp_path, "v1")
    with pytest.raises(CgroupError, match="slice:prefix:name"):
        create_manager("/not/systemd", "t1", systemd=True, layout=layout)
    monkeypatch.setattr(detect, "systemd_running", lambda: False)
    with pytest.raises(CgroupError, match="systemd is not running as PID 1"):
        create_manager("system.slice:runc:t1", "t1", systemd=True, layout=layout)
    monkeypatch.setattr(detect, "systemd_running", lambda: True)
    with pytest.raises(CgroupError, match="only supported on cgroup v2 hosts; this host's cgroups are v1"):
        create_manager("system.slice:runc:t1", "t1", systemd=True, layout=layout)


# ------------------------------------------------------------------------------- create/destroy
def test_v1_create_records_parents_and_seeds_cpuset(tmp_path: Path) -> None:
    m = create_manager("/a/b", "t1", layout=make_layout(tmp_path, "v1"))
    m.create()
    saved = m.save()
    assert f"{tmp_path}/memory/a" in saved["created"] and f"{tmp_path}/memory/a/b" in saved["created"]
    assert (tmp_path / "cpuset/a/cpuset.cpus").read_text() == "0-3"
    assert (tmp_path / "cpuset/a/b/cpuset.mems").read_text() == "0"
    m.apply(4242)
    assert (tmp_path / "freezer/a/b/cgroup.procs").read_text() == "4242"
    assert (tmp_path / "cpu,cpuacct/a/b/cgroup.procs").read_text() == "4242"
    roundtrip(m).destroy()
    assert not (tmp_path / "memory/a").exists() and (tmp_path / "memory").is_dir()


def test_destroy_never_removes_what_it_did_not_create(tmp_path: Path) -> None:
    layout = make_layout(tmp_path, "v1")
    (tmp_path / "memory/shared").mkdir()
    m = create_manager("/shared/c1", "c1", layout=layout)
    m.create()
    other = create_manager("/shared/c2", "c2", layout=layout)
    other.create()
    m.destroy()
    assert (tmp_path / "memory/shared").is_dir() and not (tmp_path / "memory/shared/c1").exists()
    # A parent we created but that now holds another container is left alone too.
    p = create_manager("/p/one", "one", layout=layout)
    p.create()
    q = create_manager("/p/two", "two", layout=layout)
    q.create()
    p.destroy()
    assert (tmp_path / "memory/p/two").is_dir()
    q.destroy()  # q did not create /p, so /p stays
    assert (tmp_path / "memory/p").is_dir() and not (tmp_path / "memory/p/two").exists()


def test_destroy_tolerates_missing_and_removes_container_subcgroups(tmp_path: Path) -> None:
    m = create_manager(None, "t1", layout=make_layout(tmp_path, "v1"))
    m.create()
    os.rmdir(tmp_path / "pids/t1")
    (tmp_path / "memory/t1/inner").mkdir()
    m.destroy()
    assert not m.exists()
    m.destroy()  # idempotent


def test_destroy_raises_after_busy_retries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = create_manager(None, "t1", layout=make_layout(tmp_path, "v1"))
    m.create()
    monkeypatch.setattr(base, "RMDIR_RETRY_SECONDS", 0.02)

    def busy(path: str) -> None:
        raise OSError(16, "Device or resource busy")

    monkeypatch.setattr(base.os, "rmdir", busy)
    with pytest.raises(CgroupError, match="busy"):
        m.destroy()


# ----------------------------------------------------------------------------------- resources v1
def test_v1_set_writes_expected_files(tmp_path: Path) -> None:
    m = create_manager(None, "t1", layout=make_layout(tmp_path, "v1"))
    m.create()
    (tmp_path / "memory/t1/memory.memsw.limit_in_bytes").write_text("9223372036854771712")
    (tmp_path / "memory/t1/memory.limit_in_bytes").write_text("9223372036854771712")
    m.set({
        "memory": {"limit": 1 << 20, "swap": 2 << 20, "reservation": 1 << 19, "swappiness": 10},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "1", "mems": "0"},
        "pids": {"limit": 7},
        "blockIO": {"weight": 300, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 100}]},
        "devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3}],
    })
    d = tmp_path
    assert (d / "memory/t1/memory.limit_in_bytes").read_text() == str(1 << 20)
    assert (d / "memory/t1/memory.memsw.limit_in_bytes").read_text() == str(2 << 20)
    assert (d / "memory/t1/memory.soft_limit_in_bytes").read_text() == str(1 << 19)
    assert (d / "cpu,cpuacct/t1/cpu.shares").read_text() == "512"
    assert (d / "cpu,cpuacct/t1/cpu.cfs_quota_us").read_text() == "20000"
    assert (d / "cpuset/t1/cpuset.cpus").read_text() == "1"
    assert (d / "pids/t1/pids.max").read_text() == "7"
    assert (d / "blkio/t1/blkio.weight").read_text() == "300"
    assert (d / "blkio/t1/blkio.throttle.read_bps_device").read_text() == "8:0 100"
    # Rules are written in order; the fake file keeps the last one.
    assert (d / "devices/t1/devices.allow").read_text() == "c 1:3 rwm"
    assert (d / "devices/t1/devices.deny").read_text() == "a *:* rwm"


def test_v1_set_rejects_before_writing(tmp_path: Path) -> None:
    m = create_manager(None, "t1", layout=make_layout(tmp_path, "v1"))
    m.create()
    with pytest.raises(CgroupError, match="unsupported cgroup resource"):
        m.set({"pids": {"limit": 3}, "memory": {"bogus": 1}})
    assert (tmp_path / "pids/t1/pids.max").read_text() == "max"  # the kernel's default: nothing written
    with pytest.raises(CgroupError, match="hugetlb"):
        m.set({"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]})
    with pytest.raises(CgroupError, match="needs cgroup v2"):
        m.set({"unified": {"memory.high": "1"}})
    with pytest.raises(CgroupError, match="swap accounting"):
        m.set({"memory": {"limit": 100, "swap": 200}})


# ----------------------------------------------------------------------------------- freezer v1
def test_v1_freeze_thaw_and_signal_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = create_manager(None, "t1", layout=make_layout(tmp_path, "v1"))
    m.create()
    assert not m.frozen()
    m.freeze()  # the fake file simply holds what was written
    assert m.frozen() and (tmp_path / "freezer/t1/freezer.state").read_text() == "FROZEN"
    assert frozen(m.save()) and frozen(json.loads(json.dumps(m.save())))  # what `state` reads
    m.thaw()
    assert not m.frozen()
    proc = subprocess.Popen(["sleep", "30"])
    try:
        (tmp_path / "freezer/t1/cgroup.procs").write_text(f"{proc.pid}\n")
        os.makedirs(tmp_path / "freezer/t1/sub")
        (tmp_path / "freezer/t1/sub/cgroup.procs").write_text("999999\n")  # vanished pid: ignored
        assert m.pids() == sorted([proc.pid, 999999])
        m.signal_all(signal.SIGTERM)
        assert proc.wait(timeout=5) == -signal.SIGTERM
        assert not m.frozen()
    finally:
        proc.kill()


def test_signal_all_keeps_paused_container_paused(tmp_path: Path) -> None:
    m = create_manager(None, "t1", layout=make_layout(tmp_path, "v1"))
    m.create()
    m.freeze()
    m.signal_all(signal.SIGCONT)  # no members: nothing to signal
    assert m.frozen()
    m.signal_all(signal.SIGKILL)
    assert not m.frozen()


def test_signal_all_on_missing_cgroup_is_silent(tmp_path: Path) -> None:
    m = create_manager(None, "gone", layout=make_layout(tmp_path, "v1"))
    m.signal_all(signal.SIGKILL)


# ----------------------------------------------------------------------------------------- v2
def test_v2_create_enables_controllers_and_set_converts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    attached: list = []
    monkeypatch.setattr(devices_bpf, "apply", lambda d, rules, container=None: attached.append((d, rules)))
    layout = make_layout(tmp_path, "v2")
    m = create_manager("/pod/c1", "c1", layout=layout)
    m.create()
    root = tmp_path / "v2"
    assert (root / "cgroup.subtree_control").read_text() == "+cpuset +cpu +io +memory +hugetlb +pids"
    m.set({
        "memory": {"limit": 100 << 20, "swap": 150 << 20, "reservation": 10 << 20},
        "cpu": {"shares": 1024, "quota": -1, "period": 100000, "cpus": "0"},
        "pids": {"limit": -1},
        "blockIO": {"weight": 500, "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 30}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}],
        "unified": {"memory.high": "50000000"},
        "devices": [{"allow": False, "access": "rwm"}],
    })
    d = root / "pod/c1"
    assert (d / "memory.max").read_text() == str(100 << 20)
    assert (d / "memory.swap.max").read_text() == str(50 << 20)
    assert (d / "memory.low").read_text() == str(10 << 20)
    assert (d / "cpu.weight").read_text() == "100"
    assert (d / "cpu.max").read_text() == "max 100000"
    assert (d / "pids.max").read_text() == "max"
    assert (d / "io.weight").read_text() == "default 4950"
    assert (d / "io.max").read_text() == "8:0 wiops=30"
    assert (d / "hugetlb.2MB.max").read_text() == str(4 << 20)
    assert (d / "memory.high").read_text() == "50000000"
    assert attached == [(str(d), [{"allow": False, "access": "rwm"}])]  # the eBPF device filter, last


def test_v2_errors(tmp_path: Path) -> None:
    m = create_manager(None, "t1", layout=make_layout(tmp_path, "v2"))
    m.create()
    d = tmp_path / "v2/t1"
    (d / "cgroup.controllers").write_text("memory pids\n")
    with pytest.raises(CgroupError, match="cpu controller is not available"):
        m.set({"cpu": {"shares": 2}})
    with pytest.raises(CgroupError, match="realtime"):
        m.set({"cpu": {"realtimeRuntime": 5}})
    with pytest.raises(CgroupError, match="net_cls"):
        m.set({"network": {"classID": 1}})
    with pytest.raises(CgroupError, match="invalid linux.resources.unified key"):
        m.set({"unified": {"../x.max": "1"}})
    (d / "memory.current").write_text("5000\n")
    with pytest.raises(CgroupError, match="below current usage"):
        m.set({"memory": {"limit": 4000, "checkBeforeUpdate": True}})


def test_v2_freeze_waits_for_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = create_manager(None, "t1", layout=make_layout(tmp_path, "v2"))
    m.create()
    d = tmp_path / "v2/t1"
    (d / "cgroup.freeze").write_text("0\n")
    (d / "cgroup.events").write_text("populated 1\nfrozen 0\n")
    monkeypatch.setattr(base, "FREEZE_TIMEOUT_SECONDS", 0.05)
    with pytest.raises(CgroupError, match="timed out"):
        m.freeze()
    assert (d / "cgroup.freeze").read_text() == "0"  # rolled back
    (d / "cgroup.events").write_text("populated 1\nfrozen 1\n")
    m.freeze()
    assert m.frozen() and frozen(m.save())
    (d / "cgroup.events").write_text("populated 1\nfrozen 0\n")
    m.thaw()
    assert not m.frozen() and not frozen(m.save())


def test_v2_sigkill_uses_cgroup_kill(tmp_path: Path) -> None:
    m = create_manager(None, "t1", layout=make_layout(tmp_path, "v2"))
    m.create()
    (tmp_path / "v2/t1/cgroup.kill").write_text("0")
    m.signal_all(signal.SIGKILL)
    assert (tmp_path / "v2/t1/cgroup.kill").read_text() == "1"


def test_v2_freezer_missing_is_explained(tmp_path: Path) -> None:
    m = create_manager(None, "t1", layout=make_layout(tmp_path, "v2"))
    m.create()
    with pytest.raises(CgroupError, match="no cgroup v2 freezer"):
        m.freeze()


# ------------------------------------------------------------------------------------- hybrid
def test_hybrid_joins_unified_and_routes_v2_only_controllers(tmp_path: Path) -> None:
    m = create_manager(None, "t1", layout=make_layout(tmp_path, "hybrid"))
    m.create()
    assert m.driver == "hybrid"
    m.apply(77)
    assert (tmp_path / "unified/t1/cgroup.procs").read_text() == "77"
    assert (tmp_path / "unified/cgroup.subtree_control").read_text() == ""  # host tree untouched
    with pytest.raises(CgroupError, match="hugetlb"):
        m.set({"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]})
    fakecgroup.enable(tmp_path / "unified/t1", "hugetlb")
    m.set({"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}], "unified": {"hugetlb.1GB.max": "0"}})
    assert (tmp_path / "unified/t1/hugetlb.2MB.max").read_text() == "2097152"
    with pytest.raises(CgroupError, match="memory controller is not available"):
        m.set({"unified": {"memory.high": "1"}})
    r = roundtrip(m)
    assert r.driver == "hybrid" and r.paths() == m.paths()
    r.destroy()
    assert not (tmp_path / "unified/t1").exists()


def test_rootless_drops_unwritable_hierarchies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = make_layout(tmp_path, "v1")
    m = create_manager(None, "t1", rootless=True, layout=layout)
    strict = create_manager(None, "t2", layout=layout)
    real_mkdir = os.mkdir

    def deny_memory(path: str, mode: int = 0o777) -> None:
        if "/memory/" in str(path):
            raise PermissionError(13, "Permission denied")
        real_mkdir(path, mode)

    monkeypatch.setattr(base.os, "mkdir", deny_memory)
    m.create()
    assert "memory" not in m.paths() and "pids" in m.paths()
    with pytest.raises(CgroupError, match="Permission denied"):
        strict.create()


# ------------------------------------------------------------------------------ what callers ask
def test_writes_never_create_files(tmp_path: Path) -> None:
    """A control file the kernel did not make is a controller that is not there: the write
    fails naming it (errno kept), and no file appears."""
    m = create_manager(None, "t1", layout=make_layout(tmp_path, "v2"))
    m.create()
    (tmp_path / "v2/t1/pids.max").unlink()
    with pytest.raises(CgroupError, match=r"pids.max does not exist \(controller not available") as info:
        m.set({"pids": {"limit": 3}})
    assert info.value.errno == errno.ENOENT and info.value.container == "t1"
    assert not (tmp_path / "v2/t1/pids.max").exists()


def test_frozen_record_without_freezer(tmp_path: Path) -> None:
    m = create_manager(None, "t1", layout=make_layout(tmp_path, "v2"))
    assert m.save()["freezer"] == [f"{tmp_path}/v2/t1/cgroup.freeze", "1"]
    assert not frozen(m.save())  # no cgroup (nor cgroup.freeze) yet
    assert not frozen({}) and not frozen({"freezer": None})


def test_frozen_reads_a_record_written_before_records_named_their_freezer(tmp_path: Path) -> None:
    """A container created (and paused) by the pyrunc before the seam still reads as paused."""
    (tmp_path / "fr").mkdir()
    (tmp_path / "fr/freezer.state").write_text("FROZEN\n")
    (tmp_path / "u").mkdir()
    (tmp_path / "u/cgroup.freeze").write_text("0\n")
    assert frozen({"driver": "hybrid", "paths": {"freezer": f"{tmp_path}/fr", "unified": f"{tmp_path}/u"}})
    assert not frozen({"driver": "systemd", "paths": {"unified": f"{tmp_path}/u"}})
    (tmp_path / "u/cgroup.freeze").write_text("1\n")
    assert frozen({"driver": "v2", "paths": {"unified": f"{tmp_path}/u"}})


def test_stats_and_criu_freezer_by_driver(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    v2 = create_manager(None, "t1", layout=make_layout(tmp_path / "a", "v2"))
    v2.create()
    (tmp_path / "a/v2/t1/pids.current").write_text("3\n")
    data = v2.stats()
    assert data["pids"] == {"current": 3} and data["intel_rdt"] == {} and data["network_interfaces"] is None
    assert v2.freezer_cgroup() == f"{tmp_path}/a/v2/t1"
    v1 = create_manager(None, "t1", layout=make_layout(tmp_path / "b", "v1"))
    v1.create()
    (tmp_path / "b/pids/t1/pids.current").write_text("2\n")
    (tmp_path / "b/pids/t1/pids.max").write_text("9\n")
    assert v1.stats()["pids"] == {"current": 2, "limit": 9}
    assert v1.freezer_cgroup() == f"{tmp_path}/b/freezer/t1"
    watcher = v1.oom_watcher()  # v1: an eventfd registered through cgroup.event_control
    try:
        assert (tmp_path / "b/memory/t1/cgroup.event_control").read_text() != ""
    finally:
        watcher.close()
