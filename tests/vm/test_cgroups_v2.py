"""cgroup v2 manager on a real pure-v2 kernel (run inside the QEMU guest: tests/vm/run.sh).

Skipped anywhere else, so a plain ``pytest tests`` on the hybrid host is unaffected.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from pyrunc.cgroups import create_manager, detect, load_manager

pytestmark = [pytest.mark.vm, pytest.mark.root]

if os.geteuid() != 0 or detect.detect().mode != "v2":
    pytest.skip("needs root on a pure cgroup v2 host (tests/vm/run.sh)", allow_module_level=True)


@pytest.fixture
def sleeper():
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def read(d: str, name: str) -> str:
    return Path(d, name).read_text().strip()


def test_v2_lifecycle(sleeper: subprocess.Popen) -> None:
    m = create_manager("/pyrunc-vm/c1", "c1")
    assert m.driver == "v2"
    m.create()
    d = m.paths()["unified"]
    try:
        assert "memory" in read("/sys/fs/cgroup/pyrunc-vm", "cgroup.subtree_control").split()
        m.apply(sleeper.pid)
        assert Path(f"/proc/{sleeper.pid}/cgroup").read_text().strip() == "0::/pyrunc-vm/c1"
        m.set({"memory": {"limit": 64 << 20, "swap": 96 << 20, "reservation": 16 << 20},
               "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0"},
               "pids": {"limit": 8},
               "unified": {"memory.high": str(48 << 20)}})
        assert read(d, "memory.max") == str(64 << 20)
        assert read(d, "memory.swap.max") == str(32 << 20)
        assert read(d, "memory.low") == str(16 << 20)
        assert read(d, "memory.high") == str(48 << 20)
        assert read(d, "cpu.weight") == "100"  # runc 1.5.1 writes 100 too (1.1.5: 39)
        assert read(d, "cpu.max") == "50000 100000"
        assert read(d, "cpuset.cpus") == "0"
        assert read(d, "pids.max") == "8"
        m.freeze()
        assert m.frozen() and "frozen 1" in read(d, "cgroup.events")
        m.thaw()
        assert not m.frozen()
        saved = load_manager(json.loads(json.dumps(m.save())))
        assert saved.pids() == [sleeper.pid]
        saved.signal_all(signal.SIGTERM)
        assert sleeper.wait(timeout=5) == -signal.SIGTERM
        saved.destroy()
        assert not os.path.exists(d) and not os.path.exists("/sys/fs/cgroup/pyrunc-vm")
    finally:
        m.destroy()


def test_v2_sigkill_via_cgroup_kill(sleeper: subprocess.Popen) -> None:
    m = create_manager(None, "killme")
    m.apply(sleeper.pid)
    assert m.paths()["unified"] == "/sys/fs/cgroup/killme"  # runc: parent of our own cgroup (/)
    m.freeze()
    m.signal_all(signal.SIGKILL)
    assert sleeper.wait(timeout=5) == -signal.SIGKILL
    m.destroy()
    assert not m.exists()


RUNC = shutil.which("runc") or "/usr/sbin/runc"


@pytest.mark.skipif(not (os.path.exists(RUNC) and shutil.which("busybox")), reason="needs runc + busybox")
def test_v2_default_placement_matches_runc(tmp_path: Path, sleeper: subprocess.Popen) -> None:
    bundle = tmp_path / "bundle"
    (bundle / "rootfs/bin").mkdir(parents=True)
    shutil.copy(shutil.which("busybox"), bundle / "rootfs/bin/busybox")
    (bundle / "rootfs/bin/sleep").symlink_to("busybox")
    subprocess.run([RUNC, "spec", "-b", str(bundle)], check=True)
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["process"].update(terminal=False, args=["sleep", "60"])
    cfg["linux"].pop("cgroupsPath", None)
    (bundle / "config.json").write_text(json.dumps(cfg))
    root = str(tmp_path / "state")
    subprocess.run([RUNC, "--root", root, "create", "-b", str(bundle), "rc1"], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        pid = json.loads(subprocess.run([RUNC, "--root", root, "state", "rc1"], check=True,
                                        capture_output=True).stdout)["pid"]
        theirs = Path(f"/proc/{pid}/cgroup").read_text().strip().replace("rc1", "ID")
    finally:
        subprocess.run([RUNC, "--root", root, "delete", "-f", "rc1"], check=False)
    m = create_manager(None, "pc1")
    m.apply(sleeper.pid)
    ours = Path(f"/proc/{sleeper.pid}/cgroup").read_text().strip().replace("pc1", "ID")
    sleeper.kill()
    sleeper.wait()
    m.destroy()
    assert ours == theirs
