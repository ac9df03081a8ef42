"""Load: 200 containers in a row and 50 at once, with nothing leaked.

pyrunc is short-lived, so leaks are counted host-wide before and after: mounts, cgroup
directories with our names, processes in those cgroups, files under --root, processes whose
command line mentions the state root, and allocated file handles (/proc/sys/fs/file-nr, with a
tolerance because the rest of the machine keeps running).
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import Bundle, mounts_snapshot, run_to_files
from tests.integration.test_bad_input import cgroup_dirs_named
from tests.integration.test_crash import processes_in_cgroup

FILE_HANDLE_TOLERANCE = 300


def file_handles() -> int:
    with open("/proc/sys/fs/file-nr") as f:
        return int(f.read().split()[0])


def procs_mentioning(text: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    found.append(pid)
        except OSError:
            pass
    return found


class Census:
    """What the host looks like, as far as our containers could change it."""

    def __init__(self, rt, tags: list[str]):
        self.mounts = mounts_snapshot()
        self.files = sorted(os.listdir(rt.root)) if rt.root.exists() else []
        self.handles = file_handles()
        self.cgroups = [d for t in tags for d in cgroup_dirs_named(t)]
        self.procs = [p for t in tags for p in processes_in_cgroup(t)] + procs_mentioning(str(rt.root))

    def assert_same_as(self, before: Census) -> None:
        assert self.mounts == before.mounts, set(self.mounts) ^ set(before.mounts)
        assert self.files == before.files
        assert self.cgroups == before.cgroups
        assert self.procs == before.procs
        assert self.handles - before.handles < FILE_HANDLE_TOLERANCE, (before.handles, self.handles)


def census_after(rt, tags: list[str], before: Census, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        now = Census(rt, tags)
        try:
            now.assert_same_as(before)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.slow
def test_two_hundred_containers_in_a_row(pyrunc, bundle):
    tag = bundle.config["linux"]["cgroupsPath"]
    bundle.config["process"]["args"] = ["sh", "-c", "echo ok"]
    bundle.write()
    pyrunc.root.mkdir(parents=True, exist_ok=True)
    before = Census(pyrunc, [tag])
    for i in range(200):
        p = run_to_files(pyrunc.cmd("run", f"row{i}"), cwd=bundle.path, timeout=60)
        assert p.returncode == 0 and p.stdout == "ok\n", (i, p.stderr)
    census_after(pyrunc, [tag], before)


@pytest.mark.slow
def test_fifty_containers_at_once(pyrunc, bundle, tmp_path):
    """50 created and running together, then all deleted: the census is as before."""
    bundle.config["process"]["args"] = ["sleep", "100"]
    pyrunc.root.mkdir(parents=True, exist_ok=True)
    bundles = []
    for i in range(50):
        b = Bundle(tmp_path / f"b{i}", json.loads(json.dumps(bundle.config)))
        b.path.mkdir()
        os.symlink(bundle.rootfs, b.path / "rootfs")
        b.config["linux"]["cgroupsPath"] = f"{bundle.config['linux']['cgroupsPath']}-l{i}"
        b.write()
        bundles.append(b)
        pyrunc.ids.add(f"l{i}")
    tags = [b.config["linux"]["cgroupsPath"] for b in bundles]
    before = Census(pyrunc, tags)

    def up(i: int) -> str:
        p = run_to_files(pyrunc.cmd("run", "-d", f"l{i}"), cwd=bundles[i].path, timeout=120)
        return "" if p.returncode == 0 else p.stderr

    def down(i: int) -> str:
        p = run_to_files(pyrunc.cmd("delete", "--force", f"l{i}"), timeout=120)
        return "" if p.returncode == 0 else p.stderr

    with ThreadPoolExecutor(8) as pool:
        assert [e for e in pool.map(up, range(50)) if e] == []
        listed = json.loads(run_to_files(pyrunc.cmd("list", "--format", "json"), timeout=60).stdout or "[]")
        assert sorted(c["status"] for c in listed) == ["running"] * 50
        assert [e for e in pool.map(down, range(50)) if e] == []
    census_after(pyrunc, tags, before)
