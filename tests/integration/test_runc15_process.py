"""What runc 1.2-1.5 changed about the processes it starts, pyrunc beside runc 1.5.1 on the same
bundle (issue 22): `--pidfd-socket` on create, run and exec; `exec --cgroup` into sub-cgroups;
the caller's CPU affinity not inherited; `kill KILL` ending every process of a container that
has no pid namespace of its own.

runc 1.5.1 comes from ../shared/oracle (skipped with the reason without it); Debian's runc 1.1.5
has none of these, which is why it is not the oracle here.
"""

from __future__ import annotations

import array
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.oracles import runtime_named

HYBRID_PIDS = Path("/sys/fs/cgroup/pids")


@pytest.fixture(params=["pyrunc", "runc-1.5.1"])
def rt(request, tmp_path):
    yield from runtime_named(request.param, tmp_path)


class PidfdReceiver:
    """A listening AF_UNIX stream socket that records what a runtime sends on it: the payload
    and, for the SCM_RIGHTS fd, the host pid the pidfd refers to (its fdinfo ``Pid:``)."""

    def __init__(self, path: Path, *, close_at_once: bool = False):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(4)
        self.sock.settimeout(30)
        self.close_at_once = close_at_once
        self.got: list[tuple[bytes, int | None, bool]] = []  # (payload, pid, EOF after)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            if self.close_at_once:
                return
            fds = array.array("i")
            data, anc, _, _ = conn.recvmsg(64, socket.CMSG_SPACE(4 * fds.itemsize))
            for level, kind, raw in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(raw[: len(raw) - len(raw) % fds.itemsize])
            pid = None
            for fd in fds:
                with open(f"/proc/self/fdinfo/{fd}") as f:
                    for line in f:
                        if line.startswith("Pid:"):
                            pid = int(line.split()[1])
                os.close(fd)
            conn.settimeout(30)
            eof = conn.recv(1) == b""
            self.got.append((data, pid, eof))

    def wait(self) -> list[tuple[bytes, int | None, bool]]:
        self.thread.join(30)
        self.sock.close()
        return self.got


def leftovers(rt, cid: str) -> list[str]:
    """What a failed create left behind that pyrunc promises not to leave."""
    return [str(p) for p in (rt.root / cid,) if p.exists()]


def test_pidfd_socket_create_then_exec(rt, bundle, tmp_path):
    bundle.config["process"]["args"] = ["sleep", "60"]
    rec = PidfdReceiver(tmp_path / "init.sock")
    p = rt("create", "--pidfd-socket", rec.path, "p1", bundle=bundle)
    assert p.returncode == 0, p.stderr
    init = rt.state("p1")["pid"]
    assert rec.wait() == [(b"standard", init, True)]  # sent before create returned, then EOF
    rt("start", "p1", check=True)
    rec2 = PidfdReceiver(tmp_path / "exec.sock")
    pidfile = tmp_path / "exec.pid"
    p = rt("exec", "-d", "--pid-file", str(pidfile), "--pidfd-socket", rec2.path, "p1", "sleep", "30")
    assert p.returncode == 0, p.stderr
    assert rec2.wait() == [(b"setns", int(pidfile.read_text()), True)]


def test_pidfd_socket_run_detached(rt, bundle, tmp_path):
    bundle.config["process"]["args"] = ["sleep", "60"]
    rec = PidfdReceiver(tmp_path / "run.sock")
    p = rt("run", "-d", "--pidfd-socket", rec.path, "p2", bundle=bundle)
    assert p.returncode == 0, p.stderr
    assert rec.wait() == [(b"standard", rt.state("p2")["pid"], True)]


@pytest.mark.parametrize("target", ["missing", "regular file", "nobody listening", "peer hangs up"])
def test_pidfd_socket_that_cannot_take_the_pidfd(rt, bundle, tmp_path, target):
    """Every such create fails with one line and exit 1; pyrunc leaves nothing (runc 1.5.1 leaves
    an empty state directory behind when the dial fails: not checked for it)."""
    bundle.config["process"]["args"] = ["sleep", "60"]
    path = tmp_path / "pidfd.sock"
    rec = None
    if target == "regular file":
        path.write_text("")
    elif target == "nobody listening":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(str(path))
        s.close()
    elif target == "peer hangs up":
        rec = PidfdReceiver(path, close_at_once=True)
    p = rt("create", "--pidfd-socket", str(path), "p3", bundle=bundle)
    if rec is not None:
        rec.wait()
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert len(p.stderr.strip().splitlines()) >= 1
    if rt.name == "pyrunc":
        assert len(p.stderr.strip().splitlines()) == 1 and "container p3" in p.stderr, p.stderr
        assert leftovers(rt, "p3") == []
        assert rt("state", "p3").returncode != 0
    ex = rt("exec", "--pidfd-socket", str(path), "p3", "true")
    assert ex.returncode != 0  # no such container either way


def test_pidfd_socket_on_exec_that_cannot_take_it(rt, bundle, tmp_path):
    bundle.config["process"]["args"] = ["sleep", "60"]
    rt("run", "-d", "p4", bundle=bundle, check=True)
    p = rt("exec", "--pidfd-socket", str(tmp_path / "missing.sock"), "p4", "true")
    assert p.returncode == 255, (p.returncode, p.stderr)
    assert "pidfd" in p.stderr


def cgroup_of(pid: int, controller: str) -> str:
    """The pid's cgroup path in ``controller``'s v1 hierarchy, else its cgroup v2 path."""
    unified = None
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            num, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                return path
            if num == "0":
                unified = path
    if unified is None:
        raise AssertionError(f"{pid} has no {controller} cgroup")
    return unified


@pytest.mark.skipif(not (HYBRID_PIDS / "cgroup.procs").exists(), reason="needs a v1 pids hierarchy (hybrid host)")
def test_exec_into_a_sub_cgroup_of_one_controller(rt, bundle, tmp_path):
    bundle.config["process"]["args"] = ["sleep", "60"]
    rt("run", "-d", "s1", bundle=bundle, check=True)
    init = rt.state("s1")["pid"]
    own_pids, own_mem = cgroup_of(init, "pids"), cgroup_of(init, "memory")
    sub = HYBRID_PIDS / own_pids.lstrip("/") / "sub"
    sub.mkdir()
    try:
        pidfile = tmp_path / "x.pid"
        p = rt("exec", "-d", "--pid-file", str(pidfile), "--cgroup", "pids:sub", "s1", "sleep", "30")
        assert p.returncode == 0, p.stderr
        pid = int(pidfile.read_text())
        assert cgroup_of(pid, "pids") == own_pids + "/sub"
        assert cgroup_of(pid, "memory") == own_mem  # only the named controller moved
        for args, wanted in [(["--cgroup", "pids:nosub"], "nosub"),
                             (["--cgroup", "sub", "--cgroup", "pids:sub"], "missing <controller>"),
                             (["--cgroup", ":sub"], "empty <controller>"),
                             (["--cgroup", "pids:sub", "--cgroup", "pids:sub"], "multiple times"),
                             (["--cgroup", "pids:../x"], "../x")]:
            bad = rt("exec", *args, "s1", "true")
            assert bad.returncode == 255, (args, bad.stderr)
            assert wanted in bad.stderr, (args, bad.stderr)
        rt("delete", "--force", "s1", check=True)
        assert not sub.exists()  # removed with the container
    finally:
        if sub.exists():
            subprocess.run(["rmdir", str(sub)], check=False)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two CPUs")
def test_the_callers_cpu_affinity_is_not_inherited(rt, bundle):
    bundle.config["process"]["args"] = ["grep", "Cpus_allowed_list", "/proc/self/status"]
    want = open("/proc/self/status").read().split("Cpus_allowed_list:")[1].split()[0]
    taskset = shutil.which("taskset")
    if taskset is None:
        pytest.skip("taskset is not installed")
    bundle.write()
    p = subprocess.run([taskset, "-c", "0", *rt.cmd("run", "a1")], cwd=bundle.path, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["Cpus_allowed_list:", want]


def test_kill_without_a_pid_namespace_of_its_own_kills_every_process(rt, bundle):
    cfg = bundle.config
    cfg["linux"]["namespaces"] = [ns for ns in cfg["linux"]["namespaces"] if ns["type"] != "pid"]
    cfg["process"]["args"] = ["sh", "-c", "sleep 100 & sleep 100 & exec sleep 100"]
    rt("run", "-d", "k1", bundle=bundle, check=True)
    init = rt.state("k1")["pid"]
    deadline = time.monotonic() + 10
    members = []
    while time.monotonic() < deadline:
        members = [pid for pid in os.listdir("/proc") if pid.isdigit() and _same_pids_cgroup(pid, init)]
        if len(members) >= 3:
            break
        time.sleep(0.05)
    assert len(members) >= 3, members
    rt("kill", "k1", "KILL", check=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in members):
        time.sleep(0.05)
    assert [pid for pid in members if _alive(pid)] == []


def _same_pids_cgroup(pid: str, init: int) -> bool:
    try:
        return cgroup_of(int(pid), "pids") == cgroup_of(init, "pids")
    except (OSError, AssertionError):
        return False


def _alive(pid: str) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False
