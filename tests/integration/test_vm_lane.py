"""The pure cgroup v2 lane: run tests/vm (and the eBPF device tests) inside a QEMU guest.

This host is hybrid, so v2-only paths (cgroup.freeze, memory.max, the eBPF
device filter, v2 placement) are only exercised for real in the guest that
tests/vm/run.sh boots. Running it from here puts that lane in `make test`.
Skipped, with the reason, when the guest cannot boot (run-in-vm exits 125,
e.g. qemu is missing and apt is unreachable) or when PYRUNC_SKIP_VM=1.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import REPO, run_to_files

RUN = REPO / "tests" / "vm" / "run.sh"
BOOT_FAILURE = 125
# run.sh gives the guest 780 s: 31 tests took 215 s at load 7 and over 360 s at load 20; the
# 12 checkpoint/restore tests (test_criu.py) add 119 s at load 2 (the lane: 164 s) and took
# 306 s on their own at a higher load: each CRIU dump or restore costs seconds under TCG.
TIMEOUT = 840


def _skip_reason() -> str | None:
    if os.environ.get("PYRUNC_SKIP_VM") == "1":
        return "PYRUNC_SKIP_VM=1"
    if os.geteuid() != 0:
        return "the VM lane needs root"
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():
        return "this host is pure cgroup v2 already: run tests/vm directly"
    runner = REPO / "tests" / "vm" / "run-in-vm"
    if not runner.exists() and not (REPO.parent / "shared" / "vmtest" / "run-in-vm").exists():
        return "no guest runner (tests/vm/run-in-vm or ../shared/vmtest/run-in-vm)"
    return None


@pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")
def test_cgroup_v2_lane_in_qemu() -> None:
    p = run_to_files(["sh", str(RUN)], timeout=TIMEOUT)
    tail = "\n".join((p.stdout + p.stderr).splitlines()[-40:])
    if p.returncode == BOOT_FAILURE:
        pytest.skip(f"the QEMU guest could not boot:\n{tail}")
    assert p.returncode == 0, f"VM lane failed (exit {p.returncode}):\n{tail}"
    assert re.search(r"\d+ passed", p.stdout), f"no guest test ran:\n{tail}"


def _selinux_skip_reason() -> str | None:
    if not list(Path("/etc/selinux/default/policy").glob("policy.*")):
        return "no SELinux policy for the guest to load (apt-get install selinux-policy-default)"
    return _skip_reason()


@pytest.mark.skipif(_selinux_skip_reason() is not None, reason=_selinux_skip_reason() or "")
def test_selinux_lane_in_qemu() -> None:
    """process.selinuxLabel and linux.mountLabel against runc in the SELinux guest
    (tests/vm/test_selinux.py); ~1-2 min."""
    env = dict(os.environ, VM_ARGS="--selinux", VM_TESTS="tests/vm/test_selinux.py", VM_TIMEOUT="600")
    p = run_to_files(["sh", str(RUN)], timeout=660, env=env)
    tail = "\n".join((p.stdout + p.stderr).splitlines()[-40:])
    if p.returncode == BOOT_FAILURE:
        pytest.skip(f"the QEMU guest could not boot:\n{tail}")
    assert p.returncode == 0, f"SELinux lane failed (exit {p.returncode}):\n{tail}"
    assert re.search(r"\d+ passed", p.stdout) and "skipped" not in p.stdout, f"the SELinux tests did not run:\n{tail}"
