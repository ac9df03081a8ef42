"""Fd identity: every fd of the waiting init and of the container's program is one that the
caller or the config asked for (stdio, --preserve-fds, LISTEN_FDS, the console), and nothing of
the runtime's (the state directory with its flock, the bundle, a cgroup directory, the log, the
host's /proc) ever reaches the container (CVE-2024-21626 class; issue 12 defect 2).

Each fd is compared by identity (device and inode of what /proc/PID/fd/N opens, plus fdinfo's
flags), not by name: the test opens the files it passes, at fixed numbers, through `sh -c 'exec
... 3<a 4<b'`, so fd 3 of the program must be that very file. The waiting init may hold one
more: its O_PATH fd of this container's exec fifo (runc's init holds the same; it is how `start`
releases it), and, until `start`, its private subset=pid procfs of the container's own pid
namespace, through which it reopens that fifo (linux/procfs.py).

Shown failing on the code before the fix (process/passfds.py absent): `run --preserve-fds 3`
with one caller fd hung (the init had inherited the state directory's flock and the exec fifo;
SIGTERM did not end it) and `exec --preserve-fds 1` with no caller fd exited 0.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import Bundle, run_to_files
from tests.integration.test_terminal import read_until
from tests.security.conftest import own_pid_procfs

SH = "/bin/sh"


def identity(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino)


def census(pid: int) -> dict[int, tuple[tuple[int, int], str, int]]:
    """fd -> ((dev, ino) of what it opens, readlink text, fdinfo flags) for a live process."""
    out = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        fd = int(name)
        path = f"/proc/{pid}/fd/{name}"
        try:
            target = os.readlink(path)
            ident = identity(path)
            with open(f"/proc/{pid}/fdinfo/{name}") as f:
                flags = int(next(ln for ln in f if ln.startswith("flags:")).split()[1], 8)
        except FileNotFoundError:
            continue  # closed meanwhile (the waiting init closes nothing, the program neither)
        out[fd] = (ident, target, flags)
    return out


def container_null(pid: int, fd: int) -> bool:
    """stdio the caller gave as the host's /dev/null is reopened by the init on the container's
    own /dev/null (as runc's init does; CRIU cannot dump an fd on a device outside the container's
    mounts): the null device, but not the host's node."""
    st, host = os.stat(f"/proc/{pid}/fd/{fd}"), os.stat("/dev/null")
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == host.st_rdev and (st.st_dev, st.st_ino) != (
        host.st_dev, host.st_ino)


def check(pid: int, allowed: dict[int, tuple[int, int]], *, fifo: str | None = None,
          tty: bool = False) -> None:
    """Every fd of pid is in `allowed` (fd -> identity), or stdio on the container's pty when
    tty, or (fifo given: the waiting init) one O_PATH fd of that exec fifo and one private
    subset=pid procfs of its own pid namespace. Nothing may be missing either."""
    table = census(pid)
    bad = []
    fifo_fds = []
    procfs_fds = []
    for fd, (ident, target, flags) in sorted(table.items()):
        if fd in allowed:
            if ident != allowed[fd] and not (fd <= 2 and allowed[fd] == identity("/dev/null")
                                             and container_null(pid, fd)):
                bad.append((fd, target, "not the caller's file"))
            continue
        if tty and fd <= 2:
            st = os.stat(f"/proc/{pid}/fd/{fd}")
            if stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 136:  # a pty slave
                continue
            bad.append((fd, target, "stdio is not the container's pty"))
            continue
        if fifo is not None and ident == identity(fifo) and flags & os.O_PATH:
            fifo_fds.append(fd)
            continue
        if fifo is not None and own_pid_procfs(pid, fd):
            procfs_fds.append(fd)
            continue
        bad.append((fd, target, "not asked for"))
    assert bad == [], f"pid {pid} holds fds nobody asked for: {bad}"
    assert len(fifo_fds) <= 1, fifo_fds
    assert len(procfs_fds) <= 1, procfs_fds
    missing = sorted(set(allowed) - set(table))
    assert missing == [], f"pid {pid} lacks the fds it was given: {missing}"


def caller_files(tmp_path: Path, n: int) -> list[Path]:
    files = []
    for i in range(n):
        p = tmp_path / f"passed-{i}"
        p.write_text(f"file {i}\n")
        files.append(p)
    return files


def with_fds(cmd: list[str], files: list[Path], first: int = 3) -> list[str]:
    """cmd run by sh with files open read-only at fds first, first+1, ... (nothing else)."""
    redirs = " ".join(f'{first + i}<"{f}"' for i, f in enumerate(files))
    return [SH, "-c", f'exec "$@" {redirs}', "sh", *cmd]


def wait_pid_file(path: Path, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.05)
    raise AssertionError(f"no pid file {path}")


def kill_stuck_inits(root: str) -> None:
    """SIGKILL any process still running with this test's --root on its command line."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if root.encode() in f.read():
                    os.kill(int(pid), signal.SIGKILL)
        except (FileNotFoundError, ProcessLookupError):
            continue


@pytest.fixture
def sleeper(bundle: Bundle) -> Bundle:
    bundle.config["process"]["args"] = ["sleep", "100"]
    bundle.write()
    return bundle


def run_detached(pyrunc, bundle: Bundle, tmp_path: Path, cid: str, files: list[Path], *extra: str):
    out, err = tmp_path / f"{cid}.out", tmp_path / f"{cid}.err"
    pyrunc.ids.add(cid)
    with open(out, "w") as o, open(err, "w") as e:
        p = subprocess.run(with_fds(pyrunc.cmd("run", "-d", *extra, cid), files), cwd=bundle.path,
                           stdin=subprocess.DEVNULL, stdout=o, stderr=e, timeout=60)
    assert p.returncode == 0, err.read_text()
    return {0: identity("/dev/null"), 1: identity(str(out)), 2: identity(str(err))}


@pytest.mark.cve("CVE-2024-21626")
def test_create_start_waiting_init_and_program(pyrunc, sleeper, tmp_path):
    """create with two preserved fds: the waiting init holds stdio, fds 3-4 and its fifo; after
    start the program holds stdio and fds 3-4."""
    files = caller_files(tmp_path, 2)
    out, err = tmp_path / "out", tmp_path / "err"
    pyrunc.ids.add("c1")
    with open(out, "w") as o, open(err, "w") as e:
        p = subprocess.run(with_fds(pyrunc.cmd("create", "--preserve-fds", "2", "c1"), files),
                           cwd=sleeper.path, stdin=subprocess.DEVNULL, stdout=o, stderr=e, timeout=60)
    assert p.returncode == 0, err.read_text()
    allowed = {0: identity("/dev/null"), 1: identity(str(out)), 2: identity(str(err)),
               3: identity(str(files[0])), 4: identity(str(files[1]))}
    pid = pyrunc.state("c1")["pid"]
    check(pid, allowed, fifo=str(pyrunc.root / "c1" / "exec.fifo"))
    pyrunc("start", "c1", check=True)
    check(pid, allowed)


@pytest.mark.cve("CVE-2024-21626")
@pytest.mark.parametrize("given", [2, 4], ids=["exactly", "more"])
def test_run_preserve_fds(pyrunc, sleeper, tmp_path, given):
    """run -d --preserve-fds 2 with 2 or 4 caller fds: the program gets exactly fds 3-4."""
    files = caller_files(tmp_path, given)
    allowed = run_detached(pyrunc, sleeper, tmp_path, "r1", files, "--preserve-fds", "2")
    allowed.update({3: identity(str(files[0])), 4: identity(str(files[1]))})
    check(pyrunc.state("r1")["pid"], allowed)


@pytest.mark.cve("CVE-2024-21626")
def test_run_without_preserve_fds_passes_only_stdio(pyrunc, sleeper, tmp_path):
    files = caller_files(tmp_path, 3)
    allowed = run_detached(pyrunc, sleeper, tmp_path, "r2", files)
    check(pyrunc.state("r2")["pid"], allowed)


@pytest.mark.cve("CVE-2024-21626")
def test_foreground_run_with_log_and_preserved_fd(pyrunc, sleeper, tmp_path):
    """A foreground run with --log (opened before the command runs, so it could sit at fd 3)
    and --preserve-fds 1: the program's fd 3 is the caller's file, not the log."""
    files = caller_files(tmp_path, 1)
    pid_file, log = tmp_path / "pid", tmp_path / "log.json"
    cmd = [pyrunc.binary, "--root", str(pyrunc.root), "--log", str(log), "run", "--pid-file",
           str(pid_file), "--preserve-fds", "1", "f1"]
    pyrunc.ids.add("f1")
    with open(tmp_path / "out", "w") as o, open(tmp_path / "err", "w") as e:
        proc = subprocess.Popen(with_fds(cmd, files), cwd=sleeper.path, stdin=subprocess.DEVNULL,
                                stdout=o, stderr=e)
        try:
            pid = wait_pid_file(pid_file)
            check(pid, {0: identity("/dev/null"), 1: identity(str(tmp_path / "out")),
                        2: identity(str(tmp_path / "err")), 3: identity(str(files[0]))})
        finally:
            pyrunc("kill", "f1", "KILL")
            proc.wait(timeout=30)


@pytest.mark.cve("CVE-2024-21626")
def test_preserve_fds_fewer_than_asked_fails_cleanly(pyrunc, sleeper, tmp_path):
    """--preserve-fds 3 with one caller fd: one error line, exit 1, no hang, nothing left."""
    files = caller_files(tmp_path, 1)
    pyrunc.ids.add("few")
    try:
        p = run_to_files(["timeout", "-k", "5", "30", *with_fds(pyrunc.cmd("run", "--preserve-fds", "3", "few"),
                                                               files)], cwd=sleeper.path, timeout=60)
    finally:
        kill_stuck_inits(str(pyrunc.root))  # the defect's init ignores SIGTERM and holds the lock
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert p.stderr.strip().splitlines() == [
        "container few: create: unable to stat preserved-fd 4 (--preserve-fds 3 from fd 3): "
        "Bad file descriptor"]
    assert not (pyrunc.root / "few").exists()
    cg = sleeper.config["linux"]["cgroupsPath"]
    assert not [d for d in os.listdir("/sys/fs/cgroup") if os.path.exists(f"/sys/fs/cgroup/{d}/{cg}")]


@pytest.mark.cve("CVE-2024-21626")
def test_terminal_with_preserved_fd(pyrunc, sleeper, tmp_path):
    """create --console-socket with --preserve-fds 1: stdio is the container's pty, fd 3 the
    caller's file, and nothing else (the console socket itself stays with the runtime)."""
    files = caller_files(tmp_path, 1)
    path = str(tmp_path / "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    sleeper.config["process"]["terminal"] = True
    sleeper.config["process"]["args"] = ["sh", "-c", "echo ready; exec sleep 100"]
    sleeper.write()
    pyrunc.ids.add("t1")
    p = run_to_files(with_fds(pyrunc.cmd("create", "--console-socket", path, "--preserve-fds", "1", "t1"),
                              files), cwd=sleeper.path, timeout=60)
    assert p.returncode == 0, p.stderr
    server.settimeout(30)
    conn, _ = server.accept()
    _, fds, _, _ = socket.recv_fds(conn, 4096, 4)
    conn.close()
    server.close()
    master = fds[0]
    try:
        allowed = {3: identity(str(files[0]))}
        pid = pyrunc.state("t1")["pid"]
        check(pid, allowed, fifo=str(pyrunc.root / "t1" / "exec.fifo"), tty=True)
        pyrunc("start", "t1", check=True)
        assert b"ready" in read_until(master, b"ready")
        check(pid, allowed, tty=True)
    finally:
        os.close(master)


@pytest.mark.cve("CVE-2024-21626")
@pytest.mark.parametrize("given", [0, 1, 3], ids=["fewer", "exactly", "more"])
def test_exec_preserve_fds(pyrunc, sleeper, tmp_path, given):
    """exec -d --preserve-fds 1 with 0, 1 or 3 caller fds."""
    run_detached(pyrunc, sleeper, tmp_path, "x1", [])
    files = caller_files(tmp_path, given)
    pid_file = tmp_path / "exec.pid"
    out, err = tmp_path / "x.out", tmp_path / "x.err"
    with open(out, "w") as o, open(err, "w") as e:
        p = subprocess.run(["timeout", "-k", "5", "30", *with_fds(
            pyrunc.cmd("exec", "-d", "--pid-file", str(pid_file), "--preserve-fds", "1", "x1", "sleep", "100"),
            files)], stdin=subprocess.DEVNULL, stdout=o, stderr=e, timeout=60)
    if given == 0:
        assert p.returncode == 1, err.read_text()
        assert err.read_text().strip().splitlines() == [
            "container x1: exec: unable to stat preserved-fd 3 (--preserve-fds 1 from fd 3): Bad file descriptor"]
        return
    assert p.returncode == 0, err.read_text()
    pid = int(pid_file.read_text())
    try:
        check(pid, {0: identity("/dev/null"), 1: identity(str(out)), 2: identity(str(err)),
                    3: identity(str(files[0]))})
    finally:
        os.kill(pid, signal.SIGKILL)


@pytest.mark.cve("CVE-2024-21626")
def test_socket_activation_and_preserved_fds(pyrunc, sleeper, tmp_path):
    """LISTEN_FDS=1 (LISTEN_PID is the runtime's: sh execs it) plus --preserve-fds 1: the listen
    socket at 3, the preserved file at 4, LISTEN_FDS=1 LISTEN_PID=1 in the program's environment."""
    files = caller_files(tmp_path, 1)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "activation.sock"))
    listener.listen(1)
    sleeper.write()
    pyrunc.ids.add("l1")
    cmd = [SH, "-c", f'export LISTEN_PID=$$ LISTEN_FDS=1; exec "$@" 4<"{files[0]}"',
           "sh", *pyrunc.cmd("run", "-d", "--preserve-fds", "1", "l1")]
    try:
        # The socket goes to fd 3 in the child (dash cannot redirect from fds above 9).
        p = run_to_files(cmd, cwd=sleeper.path, timeout=60, pass_fds=(3,),
                         preexec_fn=lambda: os.dup2(listener.fileno(), 3))
        assert p.returncode == 0, p.stderr
        pid = pyrunc.state("l1")["pid"]
        table = census(pid)
        assert table[3][0] == identity(f"/proc/self/fd/{listener.fileno()}")
        assert table[4][0] == identity(str(files[0]))
        assert sorted(table) == [0, 1, 2, 3, 4], table
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read().split(b"\0")
        assert b"LISTEN_FDS=1" in env and b"LISTEN_PID=1" in env
    finally:
        listener.close()
