"""The init is born in its cgroups (process/launch.py: plan_cgroup_birth), not moved there.

A cgroup.procs write waits for an RCU grace period (~10 ms here). The parent
clones stage 1 into the cgroup2 directory (CLONE_INTO_CGROUP) and stage 1
joins the v1 hierarchies by writing "0" to their `tasks` (a thread moving
itself takes no threadgroup lock); the init inherits all of it. These tests
watch the syscalls of a real run and check where the container's process
ends up on this hybrid host: every hierarchy, like runc's placement.
Rootless, the processes are moved as before.
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO, run_to_files
from tests.integration.test_userns_timens import add_userns


def traced_run(pyrunc, bundle, cid: str, tmp_path, *glob: str) -> tuple[list[str], list[str]]:
    """`run` a container that prints its /proc/self/cgroup, under strace (every process's file
    opens and clone3 calls): (trace lines, the container's cgroup paths)."""
    trace = tmp_path / f"{cid}.strace"
    bundle.config["process"]["args"] = ["cat", "/proc/self/cgroup"]
    # No cgroup namespace, so /proc/self/cgroup shows the host paths.
    lin = bundle.config["linux"]
    lin["namespaces"] = [ns for ns in lin["namespaces"] if ns["type"] != "cgroup"]
    bundle.write()
    pyrunc.ids.add(cid)
    cmd = pyrunc.cmd("run", cid)
    cmd[1:1] = glob
    p = run_to_files(["strace", "-f", "-qq", "-e", "trace=openat,clone3", "-o", str(trace), *cmd],
                     timeout=60, cwd=str(bundle.path))
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


def test_with_a_user_namespace_the_init_is_born_there_too(pyrunc, bundle, tmp_path):
    """Stage 1 joins before it creates the user namespace, whose root could not write there."""
    tag = bundle.config["linux"]["cgroupsPath"]
    add_userns(bundle)
    lines, paths = traced_run(pyrunc, bundle, "userns", tmp_path)
    assert not [line for line in lines if "cgroup.procs" in line and "O_WRONLY" in line]
    assert [line for line in lines if "CLONE_INTO_CGROUP" in line]
    assert len(paths) >= 2 and all(p.endswith("/" + tag) for p in paths), paths


def test_rootless_moves_the_init_as_before(pyrunc, bundle, tmp_path):
    tag = bundle.config["linux"]["cgroupsPath"]
    lines, paths = traced_run(pyrunc, bundle, "moved", tmp_path, "--rootless", "true")
    assert [line for line in lines if "cgroup.procs" in line and "O_WRONLY" in line]
    assert not [line for line in lines if "CLONE_INTO_CGROUP" in line]
    assert len(paths) >= 2 and all(p.endswith("/" + tag) for p in paths), paths


def test_exec_process_is_born_in_the_cgroups_too(pyrunc, bundle, tmp_path):
    tag = bundle.config["linux"]["cgroupsPath"]
    lin = bundle.config["linux"]
    lin["namespaces"] = [ns for ns in lin["namespaces"] if ns["type"] != "cgroup"]
    bundle.config["process"]["args"] = ["sleep", "30"]
    pyrunc("run", "-d", "ex", bundle=bundle, check=True)
    trace = tmp_path / "exec.strace"
    p = run_to_files(["strace", "-f", "-qq", "-e", "trace=openat,clone3", "-o", str(trace),
                      *pyrunc.cmd("exec", "ex", "cat", "/proc/self/cgroup")], timeout=60)
    assert p.returncode == 0, p.stderr
    lines = trace.read_text().splitlines()
    assert not [line for line in lines if "cgroup.procs" in line and "O_WRONLY" in line]
    assert [line for line in lines if "CLONE_INTO_CGROUP" in line]
    paths = [line.split(":", 2)[2] for line in p.stdout.splitlines() if line.count(":") >= 2]
    assert len(paths) >= 2 and all(path.endswith("/" + tag) for path in paths), paths


def test_a_refused_clone_falls_back_to_fork_and_says_so():
    """If the kernel refuses clone3 (older kernels: ENOSYS), stage 1 is forked and reported as
    not born in the cgroup, so the parent moves the init."""
    code = f"""
import os, sys
sys.path[:0] = [{str(REPO)!r}]
from pyrunc import linux
from pyrunc.process import launch

def refuse(fd):
    raise OSError(38, "clone3: Function not implemented")

linux.fork_into_cgroup = refuse
fd = os.open("/", os.O_PATH)
pid, born = launch.fork_stage(fd)
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
print(born, pid > 0)
"""
    p = subprocess.run([sys.executable, "-IS", "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["False", "True"]
