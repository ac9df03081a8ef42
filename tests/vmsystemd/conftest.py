"""Fixtures for the systemd lane (runs inside `tests/vm/run-in-vm --systemd`, see README.md).

``sd`` is a pair of runtimes, pyrunc and runc, both called with ``--systemd-cgroup``;
tests run the same bundle through each and compare what systemd and cgroupfs say.
Everywhere else (this hybrid host, the plain v2 guest) the whole directory is skipped.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import PYRUNC, RUNC, Runtime


def in_systemd_guest() -> str | None:
    """None when this is a cgroup v2 machine with systemd as PID 1 and we are root, else why not."""
    if os.geteuid() != 0:
        return "needs root"
    if not os.path.isdir("/run/systemd/system"):
        return "systemd is not PID 1 here (run tests/vmsystemd through tests/vm/run-in-vm --systemd)"
    if not os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return "not a pure cgroup v2 host"
    return None


class SystemdRuntime(Runtime):
    """A runtime called with --systemd-cgroup."""

    def cmd(self, *args: str, log: str | None = None, log_format: str | None = None) -> list[str]:
        full = super().cmd(*args, log=log, log_format=log_format)
        return [full[0], "--systemd-cgroup", *full[1:]]


@pytest.fixture
def sd(tmp_path):
    """{"pyrunc": runtime, "runc": runtime}, cleaned up (delete --force) afterwards."""
    rts = {name: SystemdRuntime(binary, tmp_path / f"{name}-root", name)
           for name, binary in (("pyrunc", PYRUNC), ("runc", RUNC))}
    yield rts
    for rt in rts.values():
        rt.cleanup()


def show(unit: str, *props: str) -> dict[str, str]:
    """`systemctl show -p ...` of a unit as a dict; a property listed on several lines
    (DeviceAllow: one line per entry) has them sorted and joined with "; "."""
    cmd = ["systemctl", "--no-pager", "show", unit]
    for p in props:
        cmd += ["-p", p]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    values: dict[str, list[str]] = {}
    for line in out.splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            values.setdefault(key, []).append(value)
    return {k: "; ".join(sorted(v)) for k, v in values.items()}


def differences(ours: dict, theirs: dict) -> dict:
    """Key -> (ours, theirs) where they differ, nested dicts flattened with "/"."""
    out: dict = {}
    for key in sorted(set(ours) | set(theirs)):
        a, b = ours.get(key), theirs.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out.update({f"{key}/{k}": v for k, v in differences(a, b).items()})
        elif a != b:
            out[key] = (a, b)
    return out


def unit_gone(unit: str) -> bool:
    return show(unit, "LoadState").get("LoadState") == "not-found"
