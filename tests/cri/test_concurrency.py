"""20 pods (sandbox + one container each) created and removed in parallel under one parent cgroup.

All pods share the lane's cgroup parent, which pyrunc creates when it is
missing and removes when it is empty again: with 20 pods coming and going at
once, siblings are created while another removes the parent (the race that
pyrunc/cgroups/base.py Manager._mkdirs resolves; tests/integration/
test_cgroup_parent_race.py forces it deterministically). Every round must
succeed completely and leave no pod, state directory or cgroup behind.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.cri.conftest import Cri, lane_cgroups

pytestmark = [pytest.mark.root, pytest.mark.slow]

PODS = 20
ROUNDS = 5


def _pod_round_trip(cri: Cri, name: str) -> str | None:
    """runp, create+start a container, stopp, rmp; an error text or None."""
    r = cri("runp", "--runtime", "pyrunc", str(pod := cri.pod_spec(name)), timeout=300, quiet=True)
    if r.rc != 0:
        return f"{name}: runp: {r.err.strip()[-400:]}"
    pod_id = r.out.strip()
    errors = []
    c = cri("create", pod_id, str(cri.ctr_spec("main", ["sleep", "3600"])), str(pod), timeout=300, quiet=True)
    if c.rc != 0:
        errors.append(f"create: {c.err.strip()[-400:]}")
    else:
        s = cri("start", c.out.strip(), timeout=300, quiet=True)
        if s.rc != 0:
            errors.append(f"start: {s.err.strip()[-400:]}")
    for step in (("stopp", pod_id), ("rmp", pod_id)):
        r = cri(*step, timeout=300, quiet=True)
        if r.rc != 0:
            errors.append(f"{step[0]}: {r.err.strip()[-400:]}")
    return f"{name}: " + "; ".join(errors) if errors else None


def test_twenty_pods_in_parallel_five_rounds(cri: Cri) -> None:
    """5 rounds of 20 parallel pod round trips with pyrunc: no failure, nothing left after each."""
    timings = []
    for rnd in range(ROUNDS):
        t0 = time.monotonic()
        with ThreadPoolExecutor(PODS) as pool:
            names = [f"par{rnd}-{i}" for i in range(PODS)]
            errors = [e for e in pool.map(lambda name: _pod_round_trip(cri, name), names) if e]
        timings.append(round(time.monotonic() - t0, 1))
        assert not errors, f"round {rnd}: {len(errors)} pods failed:\n" + "\n".join(errors) + "\n" + \
            cri.log_tail(3000)
        assert not cri("pods", "-q", quiet=True).out.split(), "pods left after the round"
        state = cri.w / "rt" / "pyrunc" / "k8s.io"
        assert not (state.is_dir() and list(state.iterdir())), f"pyrunc state left: {list(state.iterdir())}"
        left = [str(d) for top in lane_cgroups() for d in top.iterdir() if d.is_dir()]
        assert not left, f"round {rnd}: cgroups left: {left}"
    print(f"20 parallel pods, seconds per round: {timings}")
