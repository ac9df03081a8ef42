"""Terminals: --console-socket (runc's protocol) and a foreground `run` proxying its pty."""

from __future__ import annotations

import os
import select
import socket
import time

from tests.conftest import run_to_files


def read_until(fd: int, needle: bytes, timeout: float = 10.0) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while needle not in buf and time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return buf


def test_console_socket_receives_one_master(runtime, bundle, tmp_path):
    path = str(tmp_path / "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    bundle.config["process"]["terminal"] = True
    bundle.config["process"]["consoleSize"] = {"height": 24, "width": 99}
    bundle.config["process"]["args"] = ["sh", "-c", "tty; stty size; ls -l /dev/console | cut -c1; echo done"]
    p = runtime("create", "--console-socket", path, "t1", bundle=bundle)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "" and p.stderr == ""
    conn, _ = server.accept()
    msg, fds, flags, _ = socket.recv_fds(conn, 4096, 4)
    assert len(fds) == 1, "exactly one fd"
    assert msg, "a non-empty payload (the pty name)"
    master = fds[0]
    assert os.isatty(master)
    runtime("start", "t1", check=True)
    out = read_until(master, b"done")
    os.close(master)
    lines = out.replace(b"\r", b"").decode().split("\n")
    assert lines[0].startswith("/dev/pts/") or lines[0] == "/dev/console"
    assert lines[1] == "24 99"
    assert lines[2] == "c", "/dev/console is the pty (a character device)"


def test_terminal_without_console_socket_is_refused_for_create(runtime, bundle):
    bundle.config["process"]["terminal"] = True
    p = runtime("create", "t1", bundle=bundle)
    assert p.returncode == 1
    assert "console socket" in p.stderr


def test_console_socket_without_terminal_is_refused(runtime, bundle, tmp_path):
    path = str(tmp_path / "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    p = runtime("create", "--console-socket", path, "t1", bundle=bundle)
    assert p.returncode == 1
    assert "console socket" in p.stderr


def test_foreground_run_proxies_the_pty(runtime, bundle):
    """Under `script`, as a user at a terminal would run it (runc needs a controlling tty)."""
    import shlex
    import shutil

    if not shutil.which("script"):
        import pytest

        pytest.skip("util-linux script is not installed")
    bundle.config["process"]["terminal"] = True
    bundle.config["process"]["args"] = ["sh", "-c", "read x; echo got:$x; tty; exit 4"]
    bundle.write()
    cmd = shlex.join(runtime.cmd("run", "t1"))
    p = run_to_files(["script", "-qec", cmd, "/dev/null"], cwd=bundle.path, input="hello\n", timeout=30)
    runtime.ids.add("t1")
    assert p.returncode == 4, p.stderr
    out = p.stdout.replace("\r", "")
    assert "got:hello" in out
    assert "/dev/pts/" in out or "/dev/console" in out


def test_terminal_stdio_is_not_the_callers(pyrunc, bundle, tmp_path):
    """In tty mode the waiting init must not hold the caller's pipes (containerd waits for EOF)."""
    path = str(tmp_path / "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    bundle.config["process"]["terminal"] = True
    bundle.config["process"]["args"] = ["sleep", "100"]
    p = pyrunc("create", "--console-socket", path, "t1", bundle=bundle)
    assert p.returncode == 0, p.stderr
    conn, _ = server.accept()
    _, fds, _, _ = socket.recv_fds(conn, 4096, 4)
    pid = pyrunc.state("t1")["pid"]
    for n in (0, 1, 2):
        target = os.readlink(f"/proc/{pid}/fd/{n}")
        assert target.startswith("/dev/pts/") or target == "/dev/console", target
    for fd in fds:
        os.close(fd)
