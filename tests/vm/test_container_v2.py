"""Real pyrunc containers on a pure cgroup v2 kernel (inside the QEMU guest: tests/vm/run.sh).

Limits are checked from both sides: the host's cgroup files and, from inside
the container, /proc/self/cgroup plus the cgroup2 files the container sees at
/sys/fs/cgroup (its own cgroup namespace root). Device rules are checked by
really opening device nodes in the container; pause/update/events by the
cgroup files. runc runs the same bundle where it supports the same thing.

Fixtures (bundle, pyrunc, runc, runtime) come from tests/conftest.py, which
pytest loads for every directory below tests/.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from pyrunc.cgroups import detect

pytestmark = [pytest.mark.vm, pytest.mark.root]

if os.geteuid() != 0 or detect.detect().mode != "v2":
    pytest.skip("needs root on a pure cgroup v2 host (tests/vm/run.sh)", allow_module_level=True)


def host_cgroup(pid: int) -> Path:
    line = Path(f"/proc/{pid}/cgroup").read_text().strip()
    assert line.startswith("0::"), line
    return Path("/sys/fs/cgroup" + line[3:])


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


LIMITS = {"memory": {"limit": 64 << 20}, "pids": {"limit": 20}, "cpu": {"quota": 50000, "period": 100000}}
PROBE = ("cat /proc/self/cgroup; cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max "
         "/sys/fs/cgroup/cpu.max")


def test_limits_inside_and_outside(runtime, bundle):
    bundle.config["linux"]["resources"] = LIMITS
    # The spec default has a private cgroup namespace and a read-only cgroup mount, as runc's.
    assert {"type": "cgroup"} in bundle.config["linux"]["namespaces"]
    assert any(m["destination"] == "/sys/fs/cgroup" for m in bundle.config["mounts"])
    bundle.config["process"]["args"] = ["sh", "-c", PROBE]
    p = runtime("run", "c1", bundle=bundle)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split()
    assert lines == ["0::/", str(64 << 20), "20", "50000", "100000"], p.stdout

    bundle.config["process"]["args"] = ["sleep", "1000"]
    assert runtime("run", "-d", "c2", bundle=bundle).returncode == 0
    pid = runtime.state("c2")["pid"]
    d = host_cgroup(pid)
    assert (d / "memory.max").read_text().strip() == str(64 << 20)
    assert (d / "pids.max").read_text().strip() == "20"
    assert (d / "cpu.max").read_text().strip() == "50000 100000"
    assert runtime("delete", "--force", "c2").returncode == 0
    assert not d.exists()


def test_pause_update_ps_events(runtime, bundle):
    bundle.config["linux"]["resources"] = LIMITS
    bundle.config["process"]["args"] = ["sleep", "1000"]
    assert runtime("run", "-d", "c1", bundle=bundle).returncode == 0
    pid = runtime.state("c1")["pid"]
    d = host_cgroup(pid)

    assert runtime("pause", "c1").returncode == 0
    assert runtime.state("c1")["status"] == "paused"
    assert (d / "cgroup.freeze").read_text().strip() == "1"
    assert "frozen 1" in (d / "cgroup.events").read_text()
    assert runtime("resume", "c1").returncode == 0
    assert runtime.state("c1")["status"] == "running"
    assert "frozen 0" in (d / "cgroup.events").read_text()

    p = runtime("update", "--memory", "128m", "--memory-swap", "256m", "--pids-limit", "33",
                "--cpu-quota", "20000", "c1")
    assert p.returncode == 0, p.stderr
    assert (d / "memory.max").read_text().strip() == str(128 << 20)
    assert (d / "memory.swap.max").read_text().strip() == str(128 << 20)
    assert (d / "pids.max").read_text().strip() == "33"
    assert (d / "cpu.max").read_text().strip() == "20000 100000"

    p = runtime("ps", "--format", "json", "c1")
    assert json.loads(p.stdout) == [pid]
    p = runtime("events", "--stats", "c1")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)["data"]
    assert data["memory"]["usage"]["limit"] == 128 << 20
    assert data["pids"] == {"current": 1, "limit": 33}

    assert runtime("pause", "c1").returncode == 0
    assert runtime("kill", "c1", "KILL").returncode == 0
    wait_for(lambda: runtime.state("c1")["status"] == "stopped", what="stopped")
    assert runtime("delete", "c1").returncode == 0
    assert not d.exists()


DEVICE_PROBE = ("for d in null zero full; do if echo x > /dev/$d; then echo $d=ok; else echo $d=denied; fi; "
                "done 2>/dev/null")


def test_device_rules_through_ebpf(runtime, bundle):
    """A rule denying /dev/full (1:7) after the defaults: the write fails, null and zero work."""
    bundle.config["linux"]["resources"] = {"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": False, "type": "c", "major": 1, "minor": 7, "access": "rw"},
    ]}
    bundle.config["process"]["args"] = ["sh", "-c", DEVICE_PROBE]
    p = runtime("run", "c1", bundle=bundle)
    # runc appends its default allow rules after the config's, so /dev/full (a default device)
    # is allowed again there; pyrunc does the same (process/creation.py: cgroup_resources).
    assert "null=ok" in p.stdout and "zero=ok" in p.stdout, p.stdout + p.stderr

    # Without the defaults winning: a container whose init mknods nothing and which only
    # allows /dev/null must be refused /dev/zero (the device nodes exist, the filter says no).
    if runtime.name == "pyrunc":
        from pyrunc.cgroups import devices_bpf

        bundle.config["process"]["args"] = ["sleep", "1000"]
        bundle.config["linux"]["resources"] = {}
        assert runtime("run", "-d", "c2", bundle=bundle).returncode == 0
        d = host_cgroup(runtime.state("c2")["pid"])
        assert len(devices_bpf.query_programs_at(str(d))) == 1, "one filter attached at create"
        devices_bpf.apply(str(d), [{"allow": False, "access": "rwm"},
                                   {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}])
        assert len(devices_bpf.query_programs_at(str(d))) == 1, "replaced, not added"
        null_ok, zero_ok = (_open_in_cgroup(d, dev) for dev in ("/dev/null", "/dev/zero"))
        assert null_ok and not zero_ok


def _open_in_cgroup(cgroup: Path, device: str) -> bool:
    """Join ``cgroup`` from a fresh shell and write to ``device``; True if the open was allowed.

    The filter is keyed on the opener's cgroup and the device numbers, so the
    host's /dev nodes serve as well as the container's.
    """
    import subprocess

    script = f"echo $$ > {cgroup}/cgroup.procs && echo x > {device}"
    return subprocess.run(["sh", "-c", script], stderr=subprocess.DEVNULL, timeout=30).returncode == 0
