"""Real cgroups on this host (v1 or hybrid): create/apply/set/freeze/destroy with a real process.

Placement is compared with runc 1.1 (the behavioural oracle) by creating a
runc container from a busybox bundle and reading /proc/PID/cgroup of both.
Every cgroup used here is created by the test itself under a unique name.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pyrunc.cgroups import create_manager, detect, load_manager
from pyrunc.errors import CgroupError

pytestmark = [pytest.mark.root]

if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)
LAYOUT = detect.detect()
if LAYOUT.mode == "v2":
    pytest.skip("host tests cover v1/hybrid; v2 runs in tests/vm", allow_module_level=True)

RUNC = shutil.which("runc") or "/usr/sbin/runc"
BUSYBOX = shutil.which("busybox")


def unique(name: str) -> str:
    return f"pyrunc-{name}-{os.getpid()}"


def proc_cgroups(pid: int, cid: str) -> dict[str, str]:
    """hierarchy-id-free view of /proc/PID/cgroup with the container id replaced by ID."""
    out = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        out[ctrls] = path.replace(cid, "ID")
    return out


@pytest.fixture
def sleeper():
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def test_lifecycle_with_real_process(sleeper: subprocess.Popen) -> None:
    m = create_manager(None, unique("life"), layout=LAYOUT)
    m.create()
    try:
        m.apply(sleeper.pid)
        assert m.pids() == [sleeper.pid]
        m.set({"memory": {"limit": 64 << 20, "reservation": 32 << 20},
               "cpu": {"shares": 256, "quota": 25000, "period": 100000, "cpus": "0", "mems": "0"},
               "pids": {"limit": 5}})
        p = m.paths()
        assert Path(p["memory"], "memory.limit_in_bytes").read_text().strip() == str(64 << 20)
        assert Path(p["cpu"], "cpu.cfs_quota_us").read_text().strip() == "25000"
        assert Path(p["cpuset"], "cpuset.cpus").read_text().strip() == "0"
        assert Path(p["pids"], "pids.max").read_text().strip() == "5"
        m.freeze()
        assert m.frozen()
        m.thaw()
        assert not m.frozen()
        again = load_manager(json.loads(json.dumps(m.save())))
        again.signal_all(signal.SIGKILL)
        assert sleeper.wait(timeout=5) == -signal.SIGKILL
        again.destroy()
        assert not again.exists()
        assert all(not os.path.exists(d) for d in p.values())
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()
        m.destroy()


def test_cpuset_is_seeded_before_a_task_joins(sleeper: subprocess.Popen) -> None:
    m = create_manager(f"/{unique('cpuset')}/nested", "x", layout=LAYOUT)
    try:
        m.apply(sleeper.pid)  # apply() creates if needed; ENOSPC would mean empty cpus
        assert Path(m.paths()["cpuset"], "cpuset.cpus").read_text().strip() != ""
    finally:
        sleeper.kill()
        sleeper.wait()
        m.destroy()
    top = f"/sys/fs/cgroup/cpuset/{unique('cpuset')}"
    assert not os.path.exists(top)  # the parent we created is gone too


def test_destroy_retries_while_a_task_is_exiting(sleeper: subprocess.Popen) -> None:
    m = create_manager(None, unique("busy"), layout=LAYOUT)
    m.apply(sleeper.pid)
    sleeper.kill()
    m.destroy()  # the zombie/exiting task leaves the cgroup shortly; rmdir is retried
    sleeper.wait()
    assert not m.exists()


def test_apply_of_a_gone_pid_is_esrch() -> None:
    """Callers tell "that process already exited" from a failure by the errno (process/create.py)."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    m = create_manager(None, unique("gone"), layout=LAYOUT)
    try:
        with pytest.raises(CgroupError) as info:
            m.apply(gone.pid)
        assert info.value.errno == errno.ESRCH, info.value
    finally:
        m.destroy()
    assert not m.exists()


def _runc_bundle(tmp_path: Path) -> Path:
    rootfs = tmp_path / "rootfs/bin"
    rootfs.mkdir(parents=True)
    shutil.copy(BUSYBOX, rootfs / "busybox")
    (rootfs / "sleep").symlink_to("busybox")
    subprocess.run([RUNC, "spec", "-b", str(tmp_path)], check=True)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sleep", "60"]
    cfg["linux"].pop("cgroupsPath", None)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return tmp_path


@pytest.mark.skipif(not (os.path.exists(RUNC) and BUSYBOX), reason="needs runc and busybox")
def test_default_placement_matches_runc(tmp_path: Path, sleeper: subprocess.Popen) -> None:
    bundle = _runc_bundle(tmp_path / "bundle")
    root = tmp_path / "runc-root"
    rid = unique("runc")
    subprocess.run([RUNC, "--root", str(root), "create", "-b", str(bundle), rid], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        state = json.loads(subprocess.run([RUNC, "--root", str(root), "state", rid], check=True,
                                          capture_output=True).stdout)
        theirs = proc_cgroups(state["pid"], rid)
    finally:
        subprocess.run([RUNC, "--root", str(root), "delete", "-f", rid], check=False)
    ours_id = unique("ours")
    m = create_manager(None, ours_id, layout=LAYOUT)
    try:
        m.apply(sleeper.pid)
        ours = proc_cgroups(sleeper.pid, ours_id)
    finally:
        sleeper.kill()
        sleeper.wait()
        time.sleep(0.01)
        m.destroy()
    assert ours == theirs
