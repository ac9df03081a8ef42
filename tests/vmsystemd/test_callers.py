"""Real callers of the systemd driver in the --systemd guest: containerd's runc shim and podman.

containerd (private daemon, image from tests/e2e/images.sh) is told to call
pyrunc with --systemd-cgroup (`ctr run --runc-binary ... --runc-systemd-cgroup
--cgroup slice:prefix:name`, what `SystemdCgroup = true` does in its config);
podman runs with `--cgroup-manager systemd --runtime pyrunc`, so it passes
`machine.slice:libpod:<id>`. Each container must land in its unit's cgroup,
the unit must be active while it runs and gone after it is removed.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import PYRUNC, REPO
from tests.vmsystemd.conftest import in_systemd_guest, show, unit_gone

if in_systemd_guest() is not None:
    pytest.skip(in_systemd_guest(), allow_module_level=True)

pytestmark = [pytest.mark.vm, pytest.mark.root]
IMAGES = REPO / "tests" / "e2e" / "images.sh"
IMAGE = "localhost/pyrunc-busybox:latest"
WORK = Path("/run/i13w")  # the guest's tmpfs: short socket paths, overlay-capable storage
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


def sh(*argv: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({p.returncode}): {p.stdout}{p.stderr}")
    return p


def wait_for(predicate, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def cgroup_of(pid: int) -> str:
    return Path(f"/proc/{pid}/cgroup").read_text().strip()


@pytest.fixture(scope="module")
def containerd():
    for tool in ("containerd", "ctr", "jq"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode:
            pytest.skip(f"{tool} is not installed")
    sh("bash", str(IMAGES), str(WORK), "rootfs", "oci", "containerd-start", timeout=600)
    try:
        sh("bash", str(IMAGES), str(WORK), "containerd", timeout=600)
        yield str(WORK / "bin" / "ctr")
    finally:
        sh("bash", str(IMAGES), str(WORK), "containerd-stop", timeout=300, check=False)


def test_containerd_shim_with_systemd_cgroup(containerd):
    ctr = containerd
    sh(ctr, "run", "-d", "--runc-binary", PYRUNC, "--runc-systemd-cgroup", "--cgroup", "system.slice:ctr:i13t1",
       IMAGE, "i13t1", "sleep", "1000")
    try:
        out = sh(ctr, "task", "ls").stdout
        line = next(ln for ln in out.splitlines() if ln.startswith("i13t1"))
        pid = int(line.split()[1])
        assert cgroup_of(pid) == "0::/system.slice/ctr-i13t1.scope"
        props = show("ctr-i13t1.scope", "ActiveState", "Delegate", "Slice")
        assert props == {"ActiveState": "active", "Delegate": "yes", "Slice": "system.slice"}
        # ctr's default spec has no cgroup namespace: the exec'd process shows the unit's cgroup
        p = sh(ctr, "task", "exec", "--exec-id", "e1", "i13t1", "cat", "/proc/self/cgroup")
        assert p.stdout.strip() == "0::/system.slice/ctr-i13t1.scope"
    finally:
        sh(ctr, "task", "kill", "-s", "SIGKILL", "i13t1", check=False)
        wait_for(lambda: "RUNNING" not in sh(ctr, "task", "ls").stdout, what="task stopped")
        sh(ctr, "task", "rm", "i13t1", check=False)
        sh(ctr, "container", "rm", "i13t1", check=False)
    wait_for(lambda: unit_gone("ctr-i13t1.scope"), what="unit gone")
    assert not Path("/sys/fs/cgroup/system.slice/ctr-i13t1.scope").exists()


@pytest.fixture(scope="module")
def podman():
    if subprocess.run(["sh", "-c", "command -v podman"], capture_output=True).returncode:
        pytest.skip("podman is not installed")
    sh("bash", str(IMAGES), str(WORK), "rootfs", "podman", timeout=900)
    wrapper = str(WORK / "bin" / "podman")
    yield [wrapper, "--cgroup-manager", "systemd"]
    sh(wrapper, "rm", "-af", check=False)


def test_podman_with_systemd_cgroup_manager(podman):
    cid = sh(*podman, "run", "-d", "--runtime", PYRUNC, *ULIMITS, "--name", "i13p1", IMAGE,
             "sleep", "1000").stdout.strip()
    try:
        pid = int(sh(*podman, "inspect", "--format", "{{.State.Pid}}", "i13p1").stdout.strip())
        unit = f"libpod-{cid}.scope"
        assert cgroup_of(pid) == f"0::/machine.slice/{unit}"
        assert show(unit, "ActiveState")["ActiveState"] == "active"
        p = sh(*podman, "exec", "i13p1", "cat", "/proc/self/cgroup")
        assert p.stdout.strip() == "0::/"
        sh(*podman, "stop", "-t", "1", "i13p1")
    finally:
        sh(*podman, "rm", "-f", "i13p1", check=False)
    wait_for(lambda: unit_gone(f"libpod-{cid}.scope"), what="unit gone")
    assert not Path(f"/sys/fs/cgroup/machine.slice/libpod-{cid}.scope").exists()
    assert os.path.exists(PYRUNC)
