"""pyrunc beside runc 1.5.1 on a pure cgroup v2 kernel (the QEMU guest: tests/vm/run.sh).

The v2-only conversions runc changed after 1.1 (issue 22): cpu.shares -> cpu.weight (runc 1.3.2+),
pids.limit 0 (runc 1.4+), unlimited memory with a swap value (runc 1.2.1+). Same bundle, same
files read from the host side. Skips without the oracle (../shared/oracle or $PYRUNC_SHARED).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyrunc.cgroups import detect
from tests.conftest import RUNC15

pytestmark = [pytest.mark.vm, pytest.mark.root,
              pytest.mark.skipif(not RUNC15.exists(), reason=f"runc 1.5.1 oracle not present ({RUNC15})")]

if os.geteuid() != 0 or detect.detect().mode != "v2":
    pytest.skip("needs root on a pure cgroup v2 host (tests/vm/run.sh)", allow_module_level=True)

# Measured with runc 1.5.1 in this guest ; runc 1.1.5 wrote 4, 20, 39, 79.
WEIGHTS = {2: 1, 100: 17, 512: 59, 1024: 100, 2048: 174, 262144: 10000}


def read(pid: int, name: str) -> str:
    line = Path(f"/proc/{pid}/cgroup").read_text().strip()
    assert line.startswith("0::"), line
    return (Path("/sys/fs/cgroup" + line[3:]) / name).read_text().strip()


def observe(rt, bundle, cid: str, resources: dict, files: tuple[str, ...]) -> list[str]:
    bundle.config["linux"]["resources"] = resources
    bundle.config["linux"]["cgroupsPath"] = f"/i22v2/{rt.name}-{cid}"
    bundle.config["process"]["args"] = ["sleep", "60"]
    p = rt("run", "-d", cid, bundle=bundle)
    assert p.returncode == 0, (rt.name, p.stderr)
    pid = rt.state(cid)["pid"]
    try:
        return [read(pid, f) for f in files]
    finally:
        assert rt("delete", "--force", cid).returncode == 0


@pytest.mark.parametrize("shares", sorted(WEIGHTS))
def test_cpu_weight_from_shares_as_runc_151(pyrunc, runc15, bundle, shares):
    ours = observe(pyrunc, bundle, f"w{shares}", {"cpu": {"shares": shares}}, ("cpu.weight",))
    theirs = observe(runc15, bundle, f"w{shares}", {"cpu": {"shares": shares}}, ("cpu.weight",))
    assert ours == theirs == [str(WEIGHTS[shares])]


def test_pids_zero_and_unlimited_memory_with_swap(pyrunc, runc15, bundle):
    resources = {"pids": {"limit": 0}, "memory": {"limit": -1, "swap": 300 << 20}}
    files = ("pids.max", "memory.max", "memory.swap.max")
    ours = observe(pyrunc, bundle, "pm", resources, files)
    theirs = observe(runc15, bundle, "pm", resources, files)
    assert ours == theirs == ["1", "max", str(300 << 20)]
