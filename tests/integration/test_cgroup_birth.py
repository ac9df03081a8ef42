"""The init is born in its cgroups (process/stage1.py: join_cgroups_at_birth), not moved there.

A cgroup.procs write waits for an RCU grace period (~10 ms here); stage 1
joins the v1 hierarchies by writing "0" to their `tasks` (a thread moving
itself takes no threadgroup lock) and clones the init into the cgroup2 one
(CLONE_INTO_CGROUP). These tests watch the syscalls of a real create and
check where the init ends up, on this hybrid host: every hierarchy, like
runc's placement. With a user namespace the init is moved as before.
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO, run_to_files
from tests.integration.test_userns_timens import add_userns


def traced_run(pyrunc, bundle, cid: str, tmp_path) -> tuple[list[str], list[str]]:
    """`run` a container that prints its /proc/self/cgroup, under strace (every process's file
    opens and clone3 calls): (trace lines, the container's cgroup paths)."""
    trace = tmp_path / f"{cid}.strace"
    bundle.config["process"]["args"] = ["cat", "/proc/self/cgroup"]
    # No cgroup namespace, so /proc/self/cgroup shows the host paths.
    lin = bundle.config["linux"]
    lin["namespaces"] = [ns for ns in lin["namespaces"] if ns["type"] != "cgroup"]
    bundle.write()
    pyrunc.ids.add(cid)
    p = run_to_files(["strace", "-f", "-qq", "-e", "trace=openat,clone3", "-o", str(trace),
                      *pyrunc.cmd("run", cid)], timeout=60, cwd=str(bundle.path))
    assert p.returncode == 0, p.stderr
    paths = [line.split(":", 2)[2] for line in p.stdout.splitlines() if line.count(":") >= 2]
    return trace.read_text().splitlines(), paths


def test_init_is_born_in_every_hierarchy_without_a_cgroup_procs_write(pyrunc, bundle, tmp_path):
    tag = bundle.config["linux"]["cgroupsPath"]
    lines, paths = traced_run(pyrunc, bundle, "born", tmp_path)
    procs_writes = [line for line in lines if "cgroup.procs" in line and "O_WRONLY" in line]
    tasks_writes = [line for line in lines if '/tasks"' in line and "O_WRONLY" in line]
    clones = [line for line in lines if "clone3(" in line and "CLONE_INTO_CGROUP" in line]
    assert procs_writes == [], procs_writes
    assert tasks_writes and clones, (tasks_writes, clones)
    assert len(paths) >= 2 and all(p.endswith("/" + tag) for p in paths), paths


def test_with_a_user_namespace_the_init_is_moved(pyrunc, bundle, tmp_path):
    tag = bundle.config["linux"]["cgroupsPath"]
    add_userns(bundle)
    lines, paths = traced_run(pyrunc, bundle, "moved", tmp_path)
    assert [line for line in lines if "cgroup.procs" in line and "O_WRONLY" in line]
    assert not [line for line in lines if "CLONE_INTO_CGROUP" in line]
    assert len(paths) >= 2 and all(p.endswith("/" + tag) for p in paths), paths


def test_a_refused_clone_falls_back_to_fork_and_says_so():
    """If the kernel refuses clone3 (older kernels: ENOSYS) the init is forked and the report says
    it was not placed, so the parent moves it."""
    code = f"""
import os, sys
sys.path[:0] = [{str(REPO)!r}]
from pyrunc import linux
from pyrunc.process import stage1
from pyrunc.process.channel import Channel

def refuse(fd):
    raise OSError(38, "clone3: Function not implemented")

linux.fork_into_cgroup = refuse
parent, child = Channel.pair()
fd = os.open("/", os.O_PATH)
pid = stage1.fork_after_report(child, placed=True, cgroup2_fd=fd)
if pid == 0:
    os._exit(0)
msg = parent.recv()
os.waitpid(pid, 0)
print(msg["placed"], msg["pid"] == pid)
"""
    p = subprocess.run([sys.executable, "-IS", "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["False", "True"]
