"""Races: concurrent creates of one id, many containers at once, kill/delete vs exit, pid reuse.

Every test checks for leftovers afterwards (state dirs, cgroup dirs, processes in the cgroups),
because a race that loses a container or leaks one is the failure that matters in production.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import Bundle, run_to_files
from tests.integration.test_bad_input import cgroup_dirs_named
from tests.integration.test_crash import processes_in_cgroup


def wait_gone(tag: str, timeout: float = 5.0) -> list[str]:
    """Processes still in the cgroup after a grace period (killed ones take a moment to leave)."""
    deadline = time.monotonic() + timeout
    while processes_in_cgroup(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    return processes_in_cgroup(tag)


def test_same_id_created_by_ten_processes(pyrunc, bundle):
    """Exactly one of 10 concurrent creates wins; the losers say "exists" and leave nothing behind."""
    tag = bundle.config["linux"]["cgroupsPath"]
    bundle.config["process"]["args"] = ["sh", "-c", "echo alive; sleep 100"]
    bundle.write()
    pyrunc.ids.add("same")
    cmd = pyrunc.cmd("create", "same")
    procs = [subprocess.Popen(cmd, cwd=bundle.path, stdin=subprocess.DEVNULL,
                              stdout=open(bundle.path / f"out{i}", "w"), stderr=open(bundle.path / f"err{i}", "w"))
             for i in range(10)]
    codes = [p.wait(timeout=60) for p in procs]
    errs = [(bundle.path / f"err{i}").read_text() for i in range(10)]
    assert codes.count(0) == 1, list(zip(codes, errs, strict=True))
    for code, err in zip(codes, errs, strict=True):
        if code:
            assert code == 1 and "exist" in err and "Traceback" not in err, err
            assert len(err.strip().splitlines()) == 1, err
    st = pyrunc.state("same")
    assert st["status"] == "created"
    assert os.listdir(pyrunc.root) == ["same"]
    assert len(processes_in_cgroup(tag)) == 1, "only the winner's init may be in the cgroup"
    pyrunc("start", "same", check=True)
    time.sleep(0.2)
    assert pyrunc.state("same")["status"] == "running"
    pyrunc("delete", "--force", "same", check=True)
    assert wait_gone(tag) == [] and cgroup_dirs_named(tag) == []


def _lifecycle(pyrunc, b: Bundle, cid: str) -> str:
    """create, start, wait for the exit, delete; returns "" or what went wrong."""
    for args in (("create", cid), ("start", cid)):
        p = run_to_files(pyrunc.cmd(*args), cwd=b.path, timeout=120)
        if p.returncode != 0:
            return f"{args[0]} {cid}: {p.stderr.strip()}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        p = run_to_files(pyrunc.cmd("state", cid), timeout=60)
        if p.returncode != 0:
            return f"state {cid}: {p.stderr.strip()}"
        if json.loads(p.stdout)["status"] == "stopped":
            break
        time.sleep(0.05)
    p = run_to_files(pyrunc.cmd("delete", cid), timeout=60)
    return "" if p.returncode == 0 else f"delete {cid}: {p.stderr.strip()}"


@pytest.mark.slow
def test_thirty_containers_created_started_deleted_concurrently(pyrunc, bundle, tmp_path):
    """30 full lifecycles at once (8 in flight on this 2-core box): all succeed, nothing left."""
    bundles = []
    for i in range(30):
        b = Bundle(tmp_path / f"b{i}", json.loads(json.dumps(bundle.config)))
        b.path.mkdir()
        os.symlink(bundle.rootfs, b.path / "rootfs")
        b.config["linux"]["cgroupsPath"] = f"{bundle.config['linux']['cgroupsPath']}-c{i}"
        b.config["process"]["args"] = ["sh", "-c", "echo $$ > /dev/null"]
        b.write()
        bundles.append(b)
        pyrunc.ids.add(f"c{i}")
    with ThreadPoolExecutor(8) as pool:
        errors = [e for e in pool.map(lambda ib: _lifecycle(pyrunc, ib[1], f"c{ib[0]}"), enumerate(bundles)) if e]
    assert errors == []
    assert not pyrunc.root.exists() or os.listdir(pyrunc.root) == []
    for b in bundles:
        tag = b.config["linux"]["cgroupsPath"]
        assert wait_gone(tag) == [] and cgroup_dirs_named(tag) == [], tag


@pytest.mark.parametrize("op", ["kill", "delete"])
def test_kill_or_delete_racing_the_exit(pyrunc, bundle, op):
    """`kill`/`delete --force` while the program exits on its own at about the same moment.

    The only acceptable errors are "not running" style; afterwards nothing is left.
    """
    tag = bundle.config["linux"]["cgroupsPath"]
    bundle.config["process"]["args"] = ["sleep", "0.03"]
    bundle.write()
    for i in range(8):
        cid = f"r{i}"
        pyrunc("create", cid, bundle=bundle, check=True)
        pyrunc("start", cid, check=True)
        time.sleep(0.005 * i)
        args = ("kill", cid, "TERM") if op == "kill" else ("delete", "--force", cid)
        p = pyrunc(*args)
        assert "Traceback" not in p.stderr
        if p.returncode != 0:
            assert "not running" in p.stderr or "stopped" in p.stderr, p.stderr
        d = pyrunc("delete", "--force", cid)
        assert d.returncode == 0, d.stderr
        assert not (pyrunc.root / cid).exists()
        assert wait_gone(tag) == [] and cgroup_dirs_named(tag) == []


def test_reused_pid_is_not_signalled(pyrunc, bundle, tmp_path):
    """A stopped container whose recorded pid now belongs to an unrelated process.

    Simulated by rewriting the state record's pid to a sleeper we spawn (its start time differs
    from the recorded one): `state` says stopped, `kill` refuses and the sleeper survives, and
    `delete` removes the container without touching it.
    """
    bundle.config["process"]["args"] = ["sleep", "100"]
    pyrunc("create", "reuse", bundle=bundle, check=True)
    old = pyrunc.state("reuse")["pid"]
    pyrunc("kill", "reuse", "KILL", check=True)
    deadline = time.monotonic() + 10
    while pyrunc.state("reuse")["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    sleeper = subprocess.Popen(["sleep", "100"])
    try:
        _rewrite_pid(pyrunc.root / "reuse", old, sleeper.pid)
        assert pyrunc.state("reuse")["status"] == "stopped"
        p = pyrunc("kill", "reuse", "KILL")
        assert p.returncode != 0 and "not running" in p.stderr, p.stderr
        d = pyrunc("delete", "reuse")
        assert d.returncode == 0, d.stderr
        time.sleep(0.1)
        assert sleeper.poll() is None, "the unrelated process was signalled"
    finally:
        sleeper.kill()
        sleeper.wait()


def _rewrite_pid(d: Path, old: int, new: int) -> None:
    """Edit the private state record in whatever format it has (JSON or marshal) to hold `new`."""
    import marshal

    files = [d / f for f in os.listdir(d) if f != "exec.fifo" and not f.startswith(".")]
    assert len(files) == 1, files
    raw = files[0].read_bytes()
    try:
        rec, dump = json.loads(raw), (lambda r: json.dumps(r).encode())
    except ValueError:
        rec, dump = marshal.loads(raw), marshal.dumps
    assert rec["pid"] == old
    rec["pid"] = new
    files[0].write_bytes(dump(rec))


def test_init_failing_while_it_is_moved_into_the_cgroup(pyrunc, bundle):
    """The init sets up its rootfs while the parent moves it into the cgroup (process/init.py).

    A mount that fails early makes the init report and exit during that move;
    `create` must say what failed, every time. Seen before the fix: exit 1 with
    nothing on stderr (the parent's next send hit EPIPE), or "No such process"
    from cgroup.procs instead of the init's reason.
    """
    tag = bundle.config["linux"]["cgroupsPath"]
    (bundle.rootfs / "etc").mkdir(exist_ok=True)
    (bundle.rootfs / "etc" / "hostname").write_text("x\n")
    source = bundle.path / "a-directory"
    source.mkdir()
    bundle.config["mounts"].insert(0, {"destination": "/etc/hostname", "type": "bind",
                                       "source": str(source), "options": ["bind"]})
    bundle.write()
    for i in range(20):
        p = pyrunc("create", f"early{i}", cwd=bundle.path)
        assert p.returncode == 1, p.stderr
        assert "create mount point /etc/hostname: Not a directory" in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert os.listdir(pyrunc.root) == []
    assert wait_gone(tag) == [] and cgroup_dirs_named(tag) == []
