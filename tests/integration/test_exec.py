"""`exec` joins a running container: namespaces, cgroup, user, env, caps; runc is the oracle."""

from __future__ import annotations

import json
import os
import socket

import pytest

from tests.conftest import run_to_files


@pytest.fixture
def running(runtime, bundle):
    bundle.config["process"]["args"] = ["sleep", "100"]
    bundle.config["process"]["env"] = ["PATH=/bin", "BASE=1"]
    runtime("run", "-d", "x1", bundle=bundle, check=True)
    return runtime


def test_exec_output_status_and_namespaces(running):
    rt = running
    init = rt.state("x1")["pid"]
    p = rt("exec", "x1", "sh", "-c", "echo hi; readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt; exit 7")
    assert p.returncode == 7, p.stderr
    lines = p.stdout.split()
    assert lines[0] == "hi"
    assert lines[1] == os.readlink(f"/proc/{init}/ns/pid")
    assert lines[2] == os.readlink(f"/proc/{init}/ns/mnt")


def test_exec_joins_the_cgroup(running):
    rt = running
    init = rt.state("x1")["pid"]
    p = rt("exec", "x1", "cat", "/proc/self/cgroup")
    assert p.returncode == 0, p.stderr
    with open(f"/proc/{init}/cgroup") as f:
        # Seen from inside the cgroup namespace both are at its root.
        assert sorted(p.stdout.split()) == sorted(line.rsplit(":", 1)[0] + ":/" for line in f.read().split())


def test_exec_env_user_cwd(running):
    rt = running
    p = rt("exec", "--env", "EXTRA=2", "--user", "1000:1001", "--cwd", "/tmp", "x1",
           "sh", "-c", "echo $BASE $EXTRA; id -u; id -g; pwd")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["1", "2", "1000", "1001", "/tmp"]


def test_exec_cap_adds_to_bounding_effective_permitted_only(running):
    rt = running
    p = rt("exec", "--cap", "CAP_SYS_ADMIN", "x1", "grep", "^Cap", "/proc/self/status")
    assert p.returncode == 0, p.stderr
    got = {line.split(":")[0]: int(line.split()[1], 16) for line in p.stdout.splitlines()}
    bit = 1 << 21
    assert got["CapEff"] & bit and got["CapPrm"] & bit and got["CapBnd"] & bit
    assert not got["CapInh"] & bit and not got["CapAmb"] & bit


def test_exec_missing_program(running):
    p = running("exec", "x1", "no-such-program")
    assert p.returncode == 255
    assert "executable file not found in $PATH" in p.stderr


def test_exec_process_file(running, tmp_path):
    proc = {"args": ["sh", "-c", "echo $ONLY; id -u"], "env": ["ONLY=yes", "PATH=/bin"], "cwd": "/",
            "user": {"uid": 5, "gid": 5}, "terminal": False}
    f = tmp_path / "process.json"
    f.write_text(json.dumps(proc))
    p = running("exec", "--process", str(f), "x1")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["yes", "5"]


def test_exec_detach_pid_file_and_reparenting(running, tmp_path):
    pidfile = tmp_path / "exec.pid"
    p = running("exec", "--detach", "--pid-file", str(pidfile), "x1", "sleep", "30")
    assert p.returncode == 0, p.stderr
    pid = int(pidfile.read_text())
    with open(f"/proc/{pid}/stat") as f:
        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
    with open(f"/proc/{ppid}/comm") as f:
        assert f.read().strip() not in ("pyrunc", "runc"), "no runtime process stays as the parent"


def test_exec_failure_writes_no_pid_file(running, tmp_path):
    pidfile = tmp_path / "exec.pid"
    p = running("exec", "--detach", "--pid-file", str(pidfile), "x1", "no-such-program")
    assert p.returncode != 0
    assert not pidfile.exists()


def test_exec_in_stopped_container(runtime, bundle):
    runtime("run", "-d", "x2", bundle=bundle, check=True)
    import time

    deadline = time.monotonic() + 5
    while runtime.state("x2")["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    p = runtime("exec", "x2", "true")
    assert p.returncode != 0
    assert "stopped" in p.stderr


def test_exec_in_created_container(runtime, bundle):
    bundle.config["process"]["args"] = ["sleep", "100"]
    runtime("create", "x3", bundle=bundle, check=True)
    p = runtime("exec", "x3", "echo", "in created")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "in created\n"


def test_exec_with_console_socket(running, tmp_path):
    path = str(tmp_path / "c.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    p = running("exec", "--tty", "--detach", "--console-socket", path, "x1", "sh", "-c", "tty; sleep 1")
    assert p.returncode == 0, p.stderr
    conn, _ = server.accept()
    msg, fds, _, _ = socket.recv_fds(conn, 4096, 4)
    assert len(fds) == 1 and msg
    from tests.integration.test_terminal import read_until

    out = read_until(fds[0], b"\n")
    os.close(fds[0])
    assert b"/dev/pts/" in out


def test_exec_user_parsing_is_strict(pyrunc, bundle):
    bundle.config["process"]["args"] = ["sleep", "100"]
    pyrunc("run", "-d", "x4", bundle=bundle, check=True)
    for bad in ("0x1", "-1", "4294967295", "1:", ":1", "", "a"):
        p = pyrunc("exec", "--user", bad, "x4", "true")
        assert p.returncode == 255, bad
    p = pyrunc("exec", "--user", "1", "x4", "sh", "-c", "id -u; id -g")
    assert p.stdout.split() == ["1", "0"]


def test_exec_tty_foreground_under_script(runtime, bundle):
    import shlex
    import shutil

    if not shutil.which("script"):
        pytest.skip("util-linux script is not installed")
    bundle.config["process"]["args"] = ["sleep", "100"]
    runtime("run", "-d", "x5", bundle=bundle, check=True)
    cmd = shlex.join(runtime.cmd("exec", "-t", "x5", "sh", "-c", "tty; exit 3"))
    p = run_to_files(["script", "-qec", cmd, "/dev/null"], timeout=30)
    assert p.returncode == 3, p.stderr
    assert "/dev/pts/" in p.stdout


# pid, pgrp, session and the controlling tty's foreground group of the probe itself.
# `read` is a shell builtin, so /proc/self is the shell (a command substitution would fork).
_PGRP_PROBE = "read -r s < /proc/self/stat; set -- $s; echo pid=$1 pgrp=$5 sid=$6 tpgid=$8"


def _own_group_and_session(line: str) -> dict:
    fields = dict(f.split("=") for f in line.split())
    assert fields["pgrp"] == fields["pid"], f"exec'd process is not its own process group: {line}"
    assert fields["sid"] == fields["pid"], f"exec'd process does not lead its own session: {line}"
    return fields


def test_exec_process_group_is_its_own(running):
    """Issue 12 #8: an exec'd process leads its own group and session inside the container (as
    under runc), not the caller's, which lie outside its pid namespace and read as 0."""
    p = running("exec", "x1", "sh", "-c", _PGRP_PROBE)
    assert p.returncode == 0, p.stderr
    fields = _own_group_and_session(p.stdout.strip())
    assert fields["tpgid"] == "-1", "no controlling terminal without --tty"


def test_exec_tty_process_group_is_its_own(runtime, bundle):
    """The same with --tty: the pty is the controlling terminal and our group its foreground."""
    import shlex
    import shutil

    if not shutil.which("script"):
        pytest.skip("util-linux script is not installed")
    bundle.config["process"]["args"] = ["sleep", "100"]
    runtime("run", "-d", "x6", bundle=bundle, check=True)
    cmd = shlex.join(runtime.cmd("exec", "-t", "x6", "sh", "-c", _PGRP_PROBE))
    p = run_to_files(["script", "-qec", cmd, "/dev/null"], timeout=30)
    assert p.returncode == 0, p.stderr
    # script(1) may echo stray input ahead of it (seen: "^@"), so find the line by its content.
    line = next((x[x.index("pid="):] for x in p.stdout.replace("\r", "").splitlines() if "pid=" in x),
                p.stdout)
    fields = _own_group_and_session(line)
    assert fields["tpgid"] == fields["pid"]
