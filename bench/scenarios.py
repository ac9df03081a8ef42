"""The measurements. Each one runs the subject (pyrunc) and the oracle (runc) alternately.

Every function that creates a container removes it again in a ``finally``
(``delete --force``), so an interrupted run leaves nothing behind; the
caller also sweeps each runtime's private root at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .runtime import Runtime, RuntimeFailed, new_id, reap_zombies


@dataclass
class Result:
    """Samples of one metric for both runtimes, with its target as a ratio subject/oracle."""

    key: str
    title: str
    unit: str                       # "s", "1/s" or "kB"
    target: str                     # e.g. "<= 1.0"; "" when the issue sets none
    subject: list[float] = field(default_factory=list)
    oracle: list[float] = field(default_factory=list)
    note: str = ""
    na: str = ""                    # why this row could not be measured


def alternate(iterations: int, warmup: int, pair: tuple[Runtime, Runtime],
              measure: Callable[[Runtime], float]) -> tuple[list[float], list[float]]:
    """Warm up both, then measure subject/oracle alternately, swapping who goes first each time."""
    subject, oracle = pair
    for _ in range(warmup):
        measure(subject)
        measure(oracle)
    s_out: list[float] = []
    o_out: list[float] = []
    for i in range(iterations):
        if i % 2 == 0:
            s_out.append(measure(subject))
            o_out.append(measure(oracle))
        else:
            o_out.append(measure(oracle))
            s_out.append(measure(subject))
    return s_out, o_out


def _gone(rt: Runtime, cid: str) -> None:
    """Make sure ``cid`` no longer exists under the runtime's root."""
    if os.path.isdir(os.path.join(rt.root, cid)):
        rt.delete_force(cid)


def run_true(rt: Runtime, bundle: str) -> float:
    """Wall time of one foreground ``run`` of /bin/true."""
    cid = new_id("run")
    try:
        return rt.call("run", "--bundle", bundle, cid)
    finally:
        _gone(rt, cid)


def wait_exit(pid: int, timeout: float = 30.0) -> None:
    """Wait for an adopted init (we are the subreaper); poll /proc if it is not our child."""
    try:
        os.waitpid(pid, 0)
        return
    except ChildProcessError:
        pass
    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.001)


def create_start_delete(rt: Runtime, bundle: str, tmp: str) -> dict[str, float]:
    """create, start, wait for /bin/true to exit, delete: per-step and total wall times."""
    cid = new_id("csd")
    pid_file = os.path.join(tmp, cid + ".pid")
    try:
        t0 = time.perf_counter()
        create = rt.call("create", "--bundle", bundle, "--pid-file", pid_file, cid)
        with open(pid_file, encoding="ascii") as f:
            pid = int(f.read().strip())
        start = rt.call("start", cid)
        t1 = time.perf_counter()
        wait_exit(pid)
        waited = time.perf_counter() - t1
        delete = rt.call("delete", cid)
        total = time.perf_counter() - t0
        return {"total": total, "create": create, "start": start, "wait": waited, "delete": delete}
    finally:
        _gone(rt, cid)
        if os.path.exists(pid_file):
            os.unlink(pid_file)


def sequential_runs(rt: Runtime, bundle: str, n: int, failures: list[str]) -> float:
    """Total wall time of ``n`` foreground runs one after another; failed runs go to ``failures``."""
    t0 = time.perf_counter()
    for _ in range(n):
        try:
            run_true(rt, bundle)
        except RuntimeFailed as e:
            failures.append(str(e))
    return time.perf_counter() - t0


def concurrent_runs(rt: Runtime, bundle: str, n: int, failures: list[str]) -> float:
    """Throughput (containers/s) of ``n`` foreground runs started at once; failures are counted."""
    ids = [new_id("conc") for _ in range(n)]
    procs: list[subprocess.Popen] = []
    try:
        t0 = time.perf_counter()
        procs = [rt.spawn("run", "--bundle", bundle, cid) for cid in ids]
        codes = [p.wait() for p in procs]
        dt = time.perf_counter() - t0
        bad = sum(1 for c in codes if c)
        if bad:
            failures.append(f"{rt.name}: {bad} of {n} concurrent runs failed")
        return (n - bad) / dt
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for cid in ids:
            _gone(rt, cid)


def proc_kb(pid: int, path: str, key: str) -> int:
    """A ``Key:  N kB`` field of /proc/PID/<path>, 0 if absent."""
    try:
        with open(f"/proc/{pid}/{path}", encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def waiting_init_memory(rt: Runtime, bundle: str) -> tuple[int, int]:
    """(VmRSS, Pss) in kB of the init waiting between create and start; pid read from ``state``."""
    cid = new_id("rss")
    try:
        rt.call("create", "--bundle", bundle, cid)
        pid = int(json.loads(rt.output("state", cid))["pid"])
        return proc_kb(pid, "status", "VmRSS"), proc_kb(pid, "smaps_rollup", "Pss")
    finally:
        _gone(rt, cid)
        reap_zombies()


def mem_available_kb() -> int:
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return 0


@dataclass
class Population:
    """N created containers of one runtime and what they cost to hold."""

    ids: list[str]
    create_wall: float
    mem_drop_kb: int
    pss_kb: int


def populate(rt: Runtime, bundle: str, tmp: str, n: int, failures: list[str],
             workers: int = 4) -> Population:
    """``create`` n containers (their inits wait on the exec fifo); measure the memory they hold.

    A failed create is recorded in ``failures`` and retried under a new id
    (at most n/10 + 3 times), so one flaky create does not void the metric.
    """
    before = mem_available_kb()
    pid_dir = os.path.join(tmp, f"pids-{rt.name}")
    os.makedirs(pid_dir, exist_ok=True)
    budget = {"retries": n // 10 + 3}

    def one(_: int) -> str:
        while True:
            cid = new_id("many")
            try:
                rt.call("create", "--bundle", bundle, "--pid-file", os.path.join(pid_dir, cid), cid)
                return cid
            except RuntimeFailed as e:
                failures.append(str(e))
                budget["retries"] -= 1
                if budget["retries"] < 0:
                    raise

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        ids = list(pool.map(one, range(n)))
    wall = time.perf_counter() - t0
    pss = 0
    for cid in ids:
        with open(os.path.join(pid_dir, cid), encoding="ascii") as f:
            pss += proc_kb(int(f.read().strip()), "smaps_rollup", "Pss")
    return Population(ids, wall, max(0, before - mem_available_kb()), pss)
