"""Rootless ``--systemd-cgroup`` through the user's own systemd: tests/vm/rootless-systemd.sh
in the `--systemd` guest, pyrunc beside runc 1.5.1 on the same bundle.

A lingering user's ``systemd --user`` (user@UID.service, delegated cpu/memory/pids) starts the
container's scope; both runtimes must put it at the same place (the manager's ``user.slice``),
give it the same limits and annotation properties, update, exec, pause, report stats, and
remove it on delete, also without ``DBUS_SESSION_BUS_ADDRESS`` set, and also as root of a user
namespace that maps the user (``unshare -r``: how rootless podman runs the runtime, so the
D-Bus login must not name uid 0). About 5 minutes (a systemd
boot under TCG). Skipped with the reason when the guest cannot boot, PYRUNC_SKIP_VM=1, or the
runc 1.5.1 oracle (../shared) is absent.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO, RUNC15, run_to_files
from tests.integration.test_rootless_v2_lane import BOOT_FAILURE, TIMEOUT, _runner, _skip_reason

SCRIPT = REPO / "tests" / "vm" / "rootless-systemd.sh"


def _why_not() -> str | None:
    return _skip_reason() or (None if RUNC15.exists() else f"runc 1.5.1 oracle not present ({RUNC15})")


@pytest.mark.skipif(_why_not() is not None, reason=_why_not() or "")
def test_rootless_systemd_cgroup_through_the_users_systemd() -> None:
    p = run_to_files(["timeout", "-k", "10", str(TIMEOUT), str(_runner()), "--systemd", "--timeout",
                      str(TIMEOUT - 60), "--", f"sh {SCRIPT} {REPO} {RUNC15}"], timeout=TIMEOUT + 30)
    out = p.stdout + p.stderr
    tail = "\n".join(out.splitlines()[-60:])
    if p.returncode == BOOT_FAILURE:
        pytest.skip(f"the QEMU guest could not boot:\n{tail}")
    assert p.returncode == 0 and "rootless-systemd: ok" in out, f"guest failed (exit {p.returncode}):\n{tail}"
    checks: dict[str, dict[str, str]] = {}
    for m in re.finditer(r"^check (pyrunc|runc-1\.5\.1) ([a-z ]+): ?(.*?)\s*\r?$", out, re.M):
        checks.setdefault(m.group(1), {})[m.group(2)] = m.group(3)
    ours, theirs = checks["pyrunc"], checks["runc-1.5.1"]
    assert theirs["run"].startswith("0"), theirs  # the oracle itself works here
    assert ours["run"] == "0", ours
    assert re.search(r"/user@\d+\.service/user\.slice/runc-sd1\.scope$", ours["cgroup"]), ours
    for key in ("cgroup", "unit cgroup", "slice", "memory", "tasks", "collect", "update", "exec", "paused",
                "stats pids", "delete", "unit after", "removed"):
        assert ours[key] == theirs[key], (key, ours[key], theirs[key])
    assert ours["memory"] == "67108864 67108864" and ours["tasks"] == "77 77"
    assert ours["update"] == "33554432 33554432" and ours["paused"] == "paused"
    assert ours["collect"] == "inactive-or-failed" and ours["reload"] == "no"
    assert ours["removed"] == "yes" and ours["unit after"] == "not-found"
    assert ours["nobusenv"] == "0", ours
    # No user manager reachable: refused in one line naming it, nothing left (runc fails too).
    assert ours["nobus"].startswith("1 1 ") and "cannot reach your user's systemd" in ours["nobus"], ours
    assert theirs["nobus"].startswith("1 "), theirs
    assert ours["nobus left"] == "" and theirs["nobus left"] == "", (ours, theirs)
    # Root in a user namespace mapping the user (rootless podman's way of calling the runtime):
    # the user's systemd is reached all the same (sdbus.sasl_socket), the unit is runc's.
    assert ours["userns id"] == "0", ours
    assert ours["userns run"] == "0" and ours["userns exec"] == "0", ours
    assert re.search(r"/user@\d+\.service/user\.slice/runc-sd4\.scope$", ours["userns unit cgroup"]), ours
    assert ours["userns memory"] == "67108864", ours
    assert ours["userns delete"] == "0" and ours["userns unit after"] == "not-found", ours
    assert ours["userns noenv"] == "0", ours  # /run/user/<the user's uid> found without any env
    if theirs["userns run"].startswith("0"):
        for key in ("userns unit cgroup", "userns memory", "userns exec", "userns delete", "userns unit after"):
            assert ours[key] == theirs[key], (key, ours[key], theirs[key])
