"""pyrunc SIGKILLed at every setup step of create: `state` stays honest, `delete --force` cleans up.

The fault-injection switch PYRUNC_TEST_FAULT names the point: a parent-side
point (the process kills itself there) or an init step (the init kills the
parent just before running that step). It exists for these tests only.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from pyrunc.process.init import STEPS
from tests.conftest import mounts_snapshot
from tests.integration.test_bad_input import cgroup_dirs_named

PARENT_POINTS = ["reserve", "cgroup", "fork", "init_pid", "saved"]
INIT_POINTS = [fn.__name__ for fn in STEPS[: [f.__name__ for f in STEPS].index("report_ready") + 1]]


def processes_in_cgroup(tag: str) -> list[str]:
    """Live processes whose cgroup path mentions `tag`.

    Zombies are left out: an orphaned init is reaped by the host's PID 1 in its own time,
    and a zombie holds nothing (its cgroup can already be removed).
    """
    from pyrunc.proc import pid_state

    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                if tag in f.read() and pid_state(int(pid)) not in (None, "Z", "X"):
                    found.append(pid)
        except (FileNotFoundError, ProcessLookupError):  # gone between listdir and read (ESRCH)
            pass
    return found


@pytest.mark.parametrize("point", PARENT_POINTS + INIT_POINTS)
def test_killed_create_is_recoverable(pyrunc, bundle, point):
    before = mounts_snapshot(str(bundle.path))
    tag = bundle.config["linux"]["cgroupsPath"]
    bundle.config["process"]["args"] = ["sleep", "100"]
    env = dict(os.environ, PYRUNC_TEST_FAULT=point)
    p = pyrunc("create", "k1", bundle=bundle, env=env)
    assert p.returncode == -9, (point, p.returncode, p.stderr)
    # The init notices its parent is gone (the channel closes) and exits by itself.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        st = pyrunc("state", "k1")
        if st.returncode != 0 or json.loads(st.stdout)["status"] in ("stopped", "created"):
            break
        time.sleep(0.05)
    if st.returncode == 0:
        assert json.loads(st.stdout)["status"] in ("stopped", "created"), st.stdout
    else:
        assert "does not exist" in st.stderr
    d = pyrunc("delete", "--force", "k1")
    assert d.returncode == 0, d.stderr
    assert not (pyrunc.root / "k1").exists()
    deadline = time.monotonic() + 5
    while processes_in_cgroup(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_in_cgroup(tag) == []
    assert cgroup_dirs_named(tag) == []
    assert mounts_snapshot(str(bundle.path)) == before
