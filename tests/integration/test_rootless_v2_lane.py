"""Rootless with a delegated cgroup v2 subtree: tests/vm/rootless-v2.sh in the `--systemd` guest.

This host is hybrid and gives an unprivileged user no cgroup, so the delegated case runs in the
QEMU guest with systemd as PID 1: a lingering user's systemd owns user@UID.service, and
`systemd-run --user --scope -p Delegate=yes` puts pyrunc inside it. There the memory and pids
limits land in the container's cgroup, pause/resume/ps work and delete removes the cgroup;
outside the delegated subtree limits are refused by name. About 4-5 minutes (a systemd boot
under TCG emulation). Skipped, with the reason, when the guest cannot boot or PYRUNC_SKIP_VM=1.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import REPO, run_to_files

SCRIPT = REPO / "tests" / "vm" / "rootless-v2.sh"
BOOT_FAILURE = 125
TIMEOUT = 900


def _runner() -> Path | None:
    for p in (REPO / "tests" / "vm" / "run-in-vm", REPO.parent / "shared" / "vmtest" / "run-in-vm"):
        if p.exists():
            return p
    return None


def _skip_reason() -> str | None:
    if os.environ.get("PYRUNC_SKIP_VM") == "1":
        return "PYRUNC_SKIP_VM=1"
    if os.geteuid() != 0:
        return "the VM lane needs root"
    if _runner() is None:
        return "no guest runner (tests/vm/run-in-vm or ../shared/vmtest/run-in-vm)"
    return None


@pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")
def test_rootless_with_a_delegated_cgroup_v2_subtree() -> None:
    p = run_to_files(["timeout", "-k", "10", str(TIMEOUT), str(_runner()), "--systemd", "--timeout",
                      str(TIMEOUT - 60), "--", f"sh {SCRIPT} {REPO}"], timeout=TIMEOUT + 30)
    out = p.stdout + p.stderr
    tail = "\n".join(out.splitlines()[-40:])
    if p.returncode == BOOT_FAILURE:
        pytest.skip(f"the QEMU guest could not boot:\n{tail}")
    assert p.returncode == 0 and "rootless-v2: ok" in out, f"guest failed (exit {p.returncode}):\n{tail}"
    checks = dict(m.groups() for m in re.finditer(r"^check ([a-z. ]+): ?(.*?)\r?$", out, re.M))
    assert "/user@" in checks["scope"] and ".scope" in checks["scope"], checks
    assert re.search(r"/user@\d+\.service/app\.slice/v2c$", checks["cgroup"]), checks
    assert checks["memory.max"] == "67108864"
    assert checks["pids.max"] == "77"
    assert checks["paused"] == "paused" and checks["resumed"] == "running"
    assert checks["ps"] == "1", "ps lists the container's process from its cgroup"
    assert checks["removed"] == "yes", "delete removed the cgroup"
    # Outside the delegated subtree.
    assert "session-" in checks["session"], checks
    assert checks["limited rc"] == "1"
    assert "linux.resources.memory" in checks["limited error"] and "rootless" in checks["limited error"]
    assert checks["limited state"] == "", "nothing left under the state root"
    assert checks["unlimited"] == "0"
