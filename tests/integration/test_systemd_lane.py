"""The systemd cgroup driver: refused clearly on this host, proven in the --systemd guest.

This host has no systemd as PID 1 (and hybrid cgroups), which is exactly the
"no systemd" fault: `--systemd-cgroup` must fail with one line, exit 1, and
leave no state and no cgroup. The driver itself is tested inside
`tests/vm/run-in-vm --systemd` (systemd PID 1, D-Bus, pure cgroup v2), side
by side with runc --systemd-cgroup: tests/vmsystemd/. One boot runs the whole
lane; skipped with the reason when the guest cannot boot or PYRUNC_SKIP_VM=1.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PYRUNC_SCRIPT, REPO, RUNC15, run_to_files

RUNNER = REPO / "tests" / "vm" / "run-in-vm"
BOOT_FAILURE = 125
TIMEOUT = 1500
GUEST_TESTS = "tests/vmsystemd"


def _cgroup_dirs_named(fragment: str) -> list[str]:
    out = subprocess.run(["find", "/sys/fs/cgroup", "-maxdepth", "4", "-type", "d", "-name", f"*{fragment}*"],
                         capture_output=True, text=True, timeout=60).stdout
    return out.split()


@pytest.mark.skipif(os.path.isdir("/run/systemd/system"), reason="systemd is PID 1 here")
def test_no_systemd_is_one_clear_line(pyrunc, bundle) -> None:
    bundle.config["process"]["args"] = ["true"]
    tag = f"i13nosd{os.getpid()}"
    for path in (f"system.slice:{tag}:c1", ""):
        bundle.config["linux"]["cgroupsPath"] = path
        p = pyrunc("--systemd-cgroup", "run", "c1", bundle=bundle)
        assert p.returncode == 1
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1, p.stderr
        assert lines[0].startswith("container c1: create cgroup: ")
        assert "systemd is not running as PID 1" in lines[0]
        listed = pyrunc("list", "--format", "json").stdout
        assert json.loads(listed or "null") in (None, [])
        assert not _cgroup_dirs_named(tag)
        assert not _cgroup_dirs_named("runc-c1.scope")


def test_bad_path_refused_before_systemd_is_asked(pyrunc, bundle) -> None:
    bundle.config["linux"]["cgroupsPath"] = "/not/a/systemd/path"
    p = pyrunc("--systemd-cgroup", "run", "c1", bundle=bundle)
    assert p.returncode == 1
    assert p.stderr.strip() == ('container c1: create cgroup: expected cgroupsPath to be of format '
                                '"slice:prefix:name" for systemd cgroups, got "/not/a/systemd/path" instead')


def _skip_reason() -> str | None:
    if os.environ.get("PYRUNC_SKIP_VM") == "1":
        return "PYRUNC_SKIP_VM=1"
    if os.geteuid() != 0:
        return "the systemd lane needs root"
    if not RUNNER.exists():
        return "no guest runner (tests/vm/run-in-vm)"
    return None


@pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")
def test_systemd_lane_in_qemu() -> None:
    python = REPO / ".venv" / "bin" / "python"
    cmd = f"{python} -m pytest -q -p no:cacheprovider -rs {GUEST_TESTS}"
    p = run_to_files([str(RUNNER), "--systemd", "--timeout", str(TIMEOUT - 60), "--cwd", str(REPO), "--", cmd],
                     timeout=TIMEOUT)
    tail = "\n".join((p.stdout + p.stderr).splitlines()[-60:])
    if p.returncode == BOOT_FAILURE:
        pytest.skip(f"the systemd QEMU guest could not boot:\n{tail}")
    assert p.returncode == 0, f"systemd lane failed (exit {p.returncode}):\n{tail}"
    assert re.search(r"\d+ passed", p.stdout), f"no guest test ran:\n{tail}"
    # the guest's colours arrive with or without their ESC (the serial console drops it)
    skipped = [line for line in re.sub(r"\x1b?\[[0-9;]*m", "", p.stdout).splitlines() if "SKIPPED [" in line]
    # Only without ../shared may the runc 1.5.1 side-by-side tests skip, and only for that reason.
    expected = [] if RUNC15.exists() else [line for line in skipped if "runc 1.5.1 oracle not present" in line]
    assert skipped == expected, f"guest tests were skipped:\n{tail}"
    if not skipped:
        assert not re.search(r"\d+ skipped", p.stdout), f"guest tests were skipped:\n{tail}"
    assert Path(python).exists()


def test_default_path_imports_no_dbus(pyrunc, bundle) -> None:
    """jeepney and the systemd driver load only with --systemd-cgroup (the hot path stays lean)."""
    bundle.config["process"]["args"] = ["true"]
    bundle.write()
    python = REPO / ".venv" / "bin" / "python"
    p = run_to_files([str(python), "-IS", "-X", "importtime", PYRUNC_SCRIPT, "--root", str(pyrunc.root),
                      "create", "imp1"], timeout=60, cwd=str(bundle.path))
    pyrunc.ids.add("imp1")
    assert p.returncode == 0, p.stderr
    modules = {line.rsplit("|", 1)[-1].strip() for line in p.stderr.splitlines() if "|" in line}
    assert "pyrunc.cgroups.v1" in modules or "pyrunc.cgroups.v2" in modules or "pyrunc.cgroups.hybrid" in modules
    assert not {m for m in modules if m.startswith(("jeepney", "pyrunc.cgroups.sd", "pyrunc.cgroups.systemd"))}
