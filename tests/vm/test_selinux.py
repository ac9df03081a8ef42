"""process.selinuxLabel and linux.mountLabel for real, side by side with runc (the SELinux guest).

Runs in ``run-in-vm --selinux`` (tests/vm/run.sh with VM_ARGS=--selinux; the lane is
tests/integration/test_vm_lane.py): Debian's kernel with SELinux as its major LSM, permissive,
the reference policy of ``selinux-policy-default`` loaded. That policy has no container_t, so the
labels are types it has. Each runtime runs the same bundle; the process's label
(/proc/self/attr/current, also after `exec`) and the context= every mount carries must be the
same as runc's (Debian's 1.1.5 and, when ../shared is there, 1.5.1). The exec label goes through
pyrunc's own procfs handle (linux/procfs.py), so the last test races a co-tenant swapping
``proc`` against it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import REPO, Runtime
from tests.vm import lsm_race

pytestmark = [pytest.mark.vm, pytest.mark.root]

ENFORCE = Path("/sys/fs/selinux/enforce")
LABEL = "system_u:system_r:initrc_t:s0"
OTHER = "system_u:system_r:unconfined_t:s0"
MOUNT_LABEL = "system_u:object_r:tmp_t:s0"
RUNC_151 = REPO.parent / "shared" / "oracle" / "bin" / "runc-1.5.1"


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if not ENFORCE.exists():
        return "SELinux is not enabled (only the `run-in-vm --selinux` guest has it here)"
    if not Path("/sys/fs/selinux/policyvers").exists() or not any(Path("/sys/fs/selinux/class").iterdir()):
        return "no SELinux policy loaded (apt-get install selinux-policy-default on the host)"
    return None


if _skip_reason():
    pytest.skip(_skip_reason() or "", allow_module_level=True)

PROBE = ("cat /proc/self/attr/current; echo; "
         "awk '{for (i = 7; i <= NF; i++) if ($i == \"-\") {print \"M\", $5, $(i+3)}}' /proc/self/mountinfo")


def observe(stdout: str) -> tuple[str, dict[str, str | None]]:
    """(the process's label, mount point -> its context= value or None)."""
    lines = stdout.splitlines()
    label = lines[0].strip("\0 ")
    mounts = {}
    for line in lines[1:]:
        if line.startswith("M "):
            _, point, opts = line.split(" ", 2)
            ctx = [o for o in opts.split(",") if o.startswith("context=")]
            mounts[point] = ctx[0].split("=", 1)[1].strip('"') if ctx else None
    return label, mounts


def oracles(tmp_path: Path) -> list[Runtime]:
    from tests.conftest import RUNC

    found = [Runtime(RUNC, tmp_path / "runc-root", "runc")] if os.path.exists(RUNC) else []
    if RUNC_151.exists():
        found.append(Runtime(str(RUNC_151), tmp_path / "runc151-root", "runc-1.5.1"))
    if not found:
        pytest.skip("no runc to compare with")
    return found


def labelled(bundle) -> None:
    bundle.config["process"]["selinuxLabel"] = LABEL
    bundle.config["linux"]["mountLabel"] = MOUNT_LABEL
    bundle.config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                                    "options": ["size=1m"]})


def test_process_and_mount_labels_are_runcs(pyrunc, bundle, tmp_path):
    """The init's label and every mount's context=, masked directories included, as runc has them."""
    labelled(bundle)
    bundle.config["process"]["args"] = ["sh", "-c", PROBE]
    p = pyrunc("run", "se1", bundle=bundle)
    assert p.returncode == 0, p.stderr
    ours = observe(p.stdout)
    assert ours[0] == LABEL, ours
    assert ours[1]["/tmp"] == MOUNT_LABEL and ours[1]["/dev"] == MOUNT_LABEL, ours
    for rt in oracles(tmp_path):
        try:
            q = rt("run", "se1", bundle=bundle)
            assert q.returncode == 0, q.stderr
            assert ours == observe(q.stdout), f"{rt.name} labels differently:\n{q.stdout}\npyrunc:\n{p.stdout}"
        finally:
            rt.cleanup()


def test_exec_labels_are_runcs(pyrunc, bundle, tmp_path):
    """exec: the container's label by default, --process-label overrides it."""
    labelled(bundle)
    bundle.config["process"]["args"] = ["sleep", "1000"]
    seen = {}
    for rt in [pyrunc, *oracles(tmp_path)]:
        try:
            assert rt("run", "-d", "se2", bundle=bundle).returncode == 0
            same = rt("exec", "se2", "cat", "/proc/self/attr/current")
            other = rt("exec", "--process-label", OTHER, "se2", "cat", "/proc/self/attr/current")
            assert same.returncode == 0 and other.returncode == 0, same.stderr + other.stderr
            seen[rt.name] = (same.stdout.strip("\0\n "), other.stdout.strip("\0\n "))
        finally:  # each one gone before the next: they share the bundle's cgroupsPath
            rt("delete", "--force", "se2")
            if rt is not pyrunc:
                rt.cleanup()
    assert seen["pyrunc"] == (LABEL, OTHER), seen
    assert len(set(seen.values())) == 1, seen


def test_label_write_while_a_co_tenant_swaps_proc(pyrunc, bundle):
    """30 starts with selinuxLabel while `proc` of the shared rootfs is swapped with a fake tree:
    every container runs under its label and no fake attr file is written (CVE-2025-52881)."""
    ok, problems = lsm_race.race(pyrunc, bundle, "selinuxLabel", LABEL, LABEL, runs=30)
    assert problems == [], problems
    assert ok >= 10, f"only {ok} of 30 containers started: the race proved little"
