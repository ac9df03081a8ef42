"""pause / resume / ps / update / events with real containers, pyrunc and runc 1.1 side by side.

Observations are made from the host: the container's cgroup files (found via
/proc/PID/cgroup, so the same code works for both runtimes and on v1, hybrid
and v2) and /proc/PID/stat. Output goes to files, never pipes (see conftest).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from pyrunc.cgroups import detect
from pyrunc.state import StateDir
from tests.conftest import run_to_files

pytestmark = [pytest.mark.root]

if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)
MODE = detect.detect().mode


def cgroup_dir(pid: int, controller: str) -> str:
    """Host directory of ``pid``'s cgroup for a v1 controller (or the v2 tree on a v2 host)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        if MODE == "v2" and ctrls == "":
            return "/sys/fs/cgroup" + path
        if controller in ctrls.split(","):
            return f"/sys/fs/cgroup/{controller}{path}"
    raise AssertionError(f"no {controller} cgroup for {pid}")


def read_cg(pid: int, controller: str, v1_name: str, v2_name: str) -> str:
    name = v2_name if MODE == "v2" else v1_name
    return Path(cgroup_dir(pid, controller), name).read_text().strip()


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def proc_state(pid: int) -> str:
    data = Path(f"/proc/{pid}/stat").read_text()
    return data[data.rfind(")") + 2]


def frozen_in_kernel(pid: int) -> bool:
    if MODE == "v2":
        return "frozen 1" in Path(cgroup_dir(pid, ""), "cgroup.events").read_text()
    return Path(cgroup_dir(pid, "freezer"), "freezer.state").read_text().strip() == "FROZEN"


def start_detached(rt, bundle, cid: str, args: list[str] | None = None) -> int:
    bundle.config["process"]["args"] = args or ["sleep", "1000"]
    p = rt("run", "-d", cid, bundle=bundle)
    assert p.returncode == 0, p.stderr
    assert p.stdout == ""
    return rt.state(cid)["pid"]


# ----- pause / resume -------------------------------------------------------------------------------

def test_pause_resume(runtime, bundle):
    pid = start_detached(runtime, bundle, "c1")
    p = runtime("pause", "c1")
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")
    assert runtime.state("c1")["status"] == "paused"
    assert frozen_in_kernel(pid)
    assert proc_state(pid) in ("D", "S"), "a frozen task sleeps in the freezer"
    p = runtime("pause", "c1")
    assert p.returncode == 1 and "container not running" in p.stderr
    assert runtime("resume", "c1").returncode == 0
    assert runtime.state("c1")["status"] == "running"
    assert not frozen_in_kernel(pid)
    p = runtime("resume", "c1")
    assert p.returncode == 1 and "container not paused" in p.stderr


def test_pause_created_then_resume_to_created(runtime, bundle):
    bundle.config["process"]["args"] = ["sleep", "1000"]
    assert runtime("create", "c1", bundle=bundle).returncode == 0
    assert runtime("pause", "c1").returncode == 0
    assert runtime.state("c1")["status"] == "paused"
    assert runtime("resume", "c1").returncode == 0
    assert runtime.state("c1")["status"] == "created"


def test_sigkill_stops_a_paused_container(runtime, bundle):
    pid = start_detached(runtime, bundle, "c1")
    assert runtime("pause", "c1").returncode == 0
    assert runtime("kill", "c1", "KILL").returncode == 0
    wait_for(lambda: runtime.state("c1")["status"] == "stopped", what="stopped")
    assert not os.path.exists(f"/proc/{pid}") or proc_state(pid) == "Z"
    p = runtime("pause", "c1")
    assert p.returncode == 1 and "container not running" in p.stderr
    assert runtime("delete", "c1").returncode == 0


def test_kill_all_keeps_a_paused_container_paused(pyrunc, bundle):
    """Our documented choice: kill --all with a catchable signal queues it and stays paused
    (runc 1.1 thaws the cgroup, silently resuming it); SIGKILL still ends it."""
    pid = start_detached(pyrunc, bundle, "c1", ["sh", "-c", "trap 'echo got >/tmp/term' TERM; "
                                                            "while :; do sleep 0.1; done"])
    assert pyrunc("pause", "c1").returncode == 0
    assert pyrunc("kill", "--all", "c1", "TERM").returncode == 0
    assert pyrunc.state("c1")["status"] == "paused"
    assert pyrunc("resume", "c1").returncode == 0
    wait_for(lambda: (bundle.rootfs / "tmp/term").exists(), what="TERM delivered after resume")
    assert pyrunc("pause", "c1").returncode == 0
    assert pyrunc("kill", "--all", "c1", "KILL").returncode == 0
    wait_for(lambda: pyrunc.state("c1")["status"] == "stopped", what="stopped")
    assert not os.path.exists(f"/proc/{pid}") or proc_state(pid) == "Z"


def test_delete_force_of_a_paused_container_leaves_no_cgroup(runtime, bundle):
    pid = start_detached(runtime, bundle, "c1")
    freezer = cgroup_dir(pid, "freezer")
    assert runtime("pause", "c1").returncode == 0
    assert runtime("delete", "--force", "c1").returncode == 0
    assert not os.path.exists(freezer)


# ----- ps -------------------------------------------------------------------------------------------

def _all_pids(pid: int) -> list[int]:
    procs = Path(cgroup_dir(pid, "pids"), "cgroup.procs").read_text().split()
    return sorted(int(x) for x in procs)


def test_ps_json_and_table(runtime, bundle):
    pid = start_detached(runtime, bundle, "c1", ["sh", "-c", "sleep 1000 & sleep 1000 & wait"])
    wait_for(lambda: len(_all_pids(pid)) == 3, what="three processes")
    p = runtime("ps", "--format", "json", "c1")
    assert p.returncode == 0, p.stderr
    assert sorted(json.loads(p.stdout)) == _all_pids(pid)
    p = runtime("ps", "-f", "json", "c1")
    assert sorted(json.loads(p.stdout)) == _all_pids(pid)

    p = runtime("ps", "c1")
    lines = p.stdout.splitlines()
    assert lines[0].split()[:3] == ["UID", "PID", "PPID"]
    assert sorted(int(line.split()[1]) for line in lines[1:]) == _all_pids(pid)

    # Everything after the id goes to ps, dashes included.
    p = runtime("ps", "c1", "-o", "pid,comm")
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["PID", "COMMAND"]
    assert sorted(line.split()[1] for line in lines[1:]) == ["sh", "sleep", "sleep"]

    p = runtime("ps", "c1", "-o", "comm")
    assert p.returncode == 1 and "couldn't find PID field in ps output" in p.stderr


def test_ps_of_a_stopped_container_is_empty(runtime, bundle):
    start_detached(runtime, bundle, "c1")
    runtime("kill", "c1", "KILL", check=True)
    wait_for(lambda: runtime.state("c1")["status"] == "stopped", what="stopped")
    p = runtime("ps", "--format", "json", "c1")
    assert p.returncode == 0 and json.loads(p.stdout) in ([], None)  # runc prints null
    p = runtime("ps", "c1")
    assert p.returncode == 0 and len(p.stdout.splitlines()) == 1


# ----- update ---------------------------------------------------------------------------------------

MEM_V1, MEM_V2 = "memory.limit_in_bytes", "memory.max"


def test_update_memory_and_pids_flags(runtime, bundle):
    bundle.config["linux"]["resources"] = {"memory": {"limit": 256 << 20}, "pids": {"limit": 50}}
    pid = start_detached(runtime, bundle, "c1")
    assert read_cg(pid, "memory", MEM_V1, MEM_V2) == str(256 << 20)
    p = runtime("update", "--memory", "512m", "--pids-limit", "77", "c1")
    assert (p.returncode, p.stdout) == (0, ""), p.stderr
    assert read_cg(pid, "memory", MEM_V1, MEM_V2) == str(512 << 20)
    assert read_cg(pid, "pids", "pids.max", "pids.max") == "77"
    p = runtime("update", "--memory=1g", "--cpu-quota", "50000", "--cpu-period", "100000", "c1")
    assert p.returncode == 0, p.stderr
    assert read_cg(pid, "memory", MEM_V1, MEM_V2) == str(1 << 30)
    if MODE == "v2":
        assert read_cg(pid, "cpu", "", "cpu.max") == "50000 100000"
    else:
        assert read_cg(pid, "cpu", "cpu.cfs_quota_us", "") == "50000"


def test_update_resources_json(runtime, bundle, tmp_path):
    pid = start_detached(runtime, bundle, "c1")
    res = tmp_path / "res.json"
    res.write_text(json.dumps({"memory": {"limit": 300 << 20}, "pids": {"limit": 40}}))
    p = runtime("update", "-r", str(res), "--memory", "1g", "c1")  # the JSON wins over flags
    assert p.returncode == 0, p.stderr
    assert read_cg(pid, "memory", MEM_V1, MEM_V2) == str(300 << 20)
    assert read_cg(pid, "pids", "pids.max", "pids.max") == "40"
    p = runtime("update", "-r", "-", "c1", input=json.dumps({"pids": {"limit": 41}}))
    assert p.returncode == 0, p.stderr
    assert read_cg(pid, "pids", "pids.max", "pids.max") == "41"
    p = runtime("update", "--resources=-", "c1", input=json.dumps({"pids": {"limit": 42}}))
    assert p.returncode == 0, p.stderr
    assert read_cg(pid, "pids", "pids.max", "pids.max") == "42"


def test_update_of_a_stopped_container(runtime, bundle):
    start_detached(runtime, bundle, "c1")
    runtime("kill", "c1", "KILL", check=True)
    wait_for(lambda: runtime.state("c1")["status"] == "stopped", what="stopped")
    p = runtime("update", "--memory", "512m", "c1")
    assert p.returncode == 1 and "container not running" in p.stderr


@pytest.mark.parametrize("args", [["--memory", "lots"], ["--pids-limit", "x"], ["--cpu-share", "-5"]])
def test_update_bad_flags_change_nothing(pyrunc, bundle, args):
    bundle.config["linux"]["resources"] = {"memory": {"limit": 256 << 20}, "pids": {"limit": 50}}
    pid = start_detached(pyrunc, bundle, "c1")
    p = pyrunc("update", *args, "c1")
    assert p.returncode == 1 and p.stderr.count("\n") == 1, p.stderr
    assert read_cg(pid, "memory", MEM_V1, MEM_V2) == str(256 << 20)
    assert read_cg(pid, "pids", "pids.max", "pids.max") == "50"


@pytest.mark.parametrize("doc", ['{"memory": {"limit": "1g"}}', '{"memory": {"limit": -7}}',
                                 '{"pids": {"limit": 1.5}}', "{not json", '{"cpu": {"bogus": 1}}'])
def test_update_bad_json_changes_nothing(pyrunc, bundle, doc):
    bundle.config["linux"]["resources"] = {"memory": {"limit": 256 << 20}}
    pid = start_detached(pyrunc, bundle, "c1")
    p = pyrunc("update", "-r", "-", "c1", input=doc)
    assert p.returncode == 1 and p.stderr.strip(), p.stderr
    assert read_cg(pid, "memory", MEM_V1, MEM_V2) == str(256 << 20)


def test_update_persists_and_merges(pyrunc, bundle):
    """A later update starts from the recorded values: --memory-swap alone keeps the new limit."""
    bundle.config["linux"]["resources"] = {"memory": {"limit": 256 << 20}}
    pid = start_detached(pyrunc, bundle, "c1")
    assert pyrunc("update", "--memory", "128m", "c1").returncode == 0
    st = StateDir(str(pyrunc.root), "c1").load()
    assert st.config["linux"]["resources"]["memory"]["limit"] == 128 << 20
    assert pyrunc("update", "--pids-limit", "9", "c1").returncode == 0
    st = StateDir(str(pyrunc.root), "c1").load()
    assert st.config["linux"]["resources"]["memory"]["limit"] == 128 << 20
    assert st.config["linux"]["resources"]["pids"]["limit"] == 9
    assert read_cg(pid, "memory", MEM_V1, MEM_V2) == str(128 << 20)


# ----- events ---------------------------------------------------------------------------------------

def test_events_stats_shape_matches_runc(pyrunc, runc, bundle, tmp_path):
    bundle.config["linux"]["resources"] = {"memory": {"limit": 256 << 20}, "pids": {"limit": 50}}
    other = bundle.clone(tmp_path / "other")
    other.config["linux"]["cgroupsPath"] += "-runc"
    docs = {}
    for rt, b in ((pyrunc, bundle), (runc, other)):
        start_detached(rt, b, "c1")
        p = rt("events", "--stats", "c1")
        assert p.returncode == 0, p.stderr
        assert len(p.stdout.splitlines()) == 1
        docs[rt.name] = json.loads(p.stdout)
    ours, theirs = docs["pyrunc"], docs["runc"]
    assert ours["type"] == theirs["type"] == "stats" and ours["id"] == "c1"
    assert set(ours["data"]) >= set(theirs["data"])
    for section in ("cpu", "memory", "pids", "cpuset"):
        assert set(ours["data"][section]) >= set(theirs["data"][section]) - {"cache"}, section
    assert set(ours["data"]["cpu"]["usage"]) >= set(theirs["data"]["cpu"]["usage"])
    assert ours["data"]["memory"]["usage"]["limit"] == theirs["data"]["memory"]["usage"]["limit"]
    assert ours["data"]["pids"] == theirs["data"]["pids"] == {"current": 1, "limit": 50}


def test_events_of_a_stopped_container(runtime, bundle):
    start_detached(runtime, bundle, "c1")
    runtime("kill", "c1", "KILL", check=True)
    wait_for(lambda: runtime.state("c1")["status"] == "stopped", what="stopped")
    p = runtime("events", "--stats", "c1")
    assert p.returncode == 1 and "container with id c1 is not running" in p.stderr
    p = runtime("events", "--interval", "0s", "c1")
    assert p.returncode == 1


def _stream(rt, cid: str, out: Path, interval: str) -> subprocess.Popen:
    f = out.open("w")
    try:
        return subprocess.Popen(rt.cmd("events", "--interval", interval, cid), stdout=f,
                                stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    finally:
        f.close()


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_events_stream_reports_oom_and_stats(runtime, bundle, tmp_path):
    """A 32 MiB container whose child eats memory: an oom event, stats every interval, then the end."""
    limit = 32 << 20
    bundle.config["linux"]["resources"] = {"memory": {"limit": limit, "swap": limit}}
    start_detached(runtime, bundle, "c1", ["sh", "-c", "while [ ! -e /go ]; do sleep 0.05; done; "
                                                       "tail /dev/zero; sleep 1000"])
    out = tmp_path / "events.jsonl"
    proc = _stream(runtime, "c1", out, "200ms")
    try:
        wait_for(lambda: len(_events(out)) >= 2, what="two stats events")
        (bundle.rootfs / "go").touch()
        wait_for(lambda: any(e["type"] == "oom" for e in _events(out)), timeout=30, what="oom event")
        oom = next(e for e in _events(out) if e["type"] == "oom")
        assert oom["id"] == "c1" and "data" not in oom
        runtime("kill", "c1", "KILL", check=True)
        if runtime.name == "pyrunc":  # runc 1.1 keeps streaming until the cgroup is deleted
            assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    stats = [e for e in _events(out) if e["type"] == "stats"]
    assert all(e["id"] == "c1" and "memory" in e["data"] for e in stats)


def test_events_stream_ends_when_the_container_stops(pyrunc, bundle, tmp_path):
    start_detached(pyrunc, bundle, "c1")
    out = tmp_path / "events.jsonl"
    proc = _stream(pyrunc, "c1", out, "100ms")
    try:
        wait_for(lambda: len(_events(out)) >= 2, what="stats events")
        pyrunc("kill", "c1", "KILL", check=True)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_usage_errors(pyrunc, bundle):
    start_detached(pyrunc, bundle, "c1")
    for args in (["pause"], ["resume", "a", "b"], ["ps"], ["update"], ["events"],
                 ["events", "--interval", "soon", "c1"], ["ps", "--format", "xml", "c1"]):
        p = run_to_files(pyrunc.cmd(*args), timeout=30)
        assert p.returncode == 1 and p.stdout == "" and p.stderr.count("\n") == 1, (args, p.stderr)
    p = pyrunc("pause", "nosuch")
    assert p.returncode == 1 and "does not exist" in p.stderr
