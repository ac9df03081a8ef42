"""Checkpoint and restore with CRIU, pyrunc and runc side by side (the v2 guest: tests/vm/run.sh).

The host's kernel makes CRIU refuse to run (tests/integration/test_checkpoint_host.py covers
that); the guest's Debian kernel passes `criu check`. Bundles live on a tmpfs, as CRIU wants
(the guest's /tmp is an overlay). Every dump and restore costs seconds under TCG, so each test
covers several behaviours with as few of them as it can.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from pyrunc.cgroups import detect
from tests.conftest import Bundle

pytestmark = [pytest.mark.vm, pytest.mark.root]

CRIU = shutil.which("criu")


def _criu_skip() -> str | None:
    if os.geteuid() != 0 or detect.detect().mode != "v2":
        return "needs root on a pure cgroup v2 host (tests/vm/run.sh)"
    if not CRIU:
        return "criu is not installed"
    p = subprocess.run([CRIU, "check"], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        lines = (p.stderr or p.stdout).strip().splitlines()
        return f"`criu check` fails here: {lines[-1] if lines else p.returncode}"
    return None


_reason = _criu_skip()
if _reason:
    pytest.skip(_reason, allow_module_level=True)

HELD: list[int] = []  # our ends of the containers' stdio pipes
COUNTER = "i=0; while true; do i=$((i+1)); echo $i > /count; sleep 0.1; done"


@pytest.fixture
def tbundle(bundle, tmp_path):
    """The bundle copied onto a fresh tmpfs."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mnt)], check=True)
    b = bundle.clone(mnt / "bundle")
    b.config["process"]["args"] = ["sh", "-c", COUNTER]
    yield b
    while HELD:
        os.close(HELD.pop())
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def count(b: Bundle) -> int:
    for _ in range(50):
        try:
            return int((b.rootfs / "count").read_text())
        except (OSError, ValueError):
            time.sleep(0.05)  # between the truncate and the write
    raise AssertionError("no count")


def wait_count_above(b: Bundle, n: int, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = count(b)
        if c > n:
            return c
        time.sleep(0.1)
    raise AssertionError(f"counter stuck at {count(b)} (wanted > {n})")


def cgroup_of(pid: int) -> Path:
    line = Path(f"/proc/{pid}/cgroup").read_text().strip()
    return Path("/sys/fs/cgroup" + line.split(":", 2)[2])


def ok(p, what: str, log: Path | None = None) -> None:
    if p.returncode != 0 and log is not None and log.exists():
        errors = [line for line in log.read_text(errors="replace").splitlines() if "Error" in line]
        raise AssertionError(f"{what} failed ({p.returncode}): {p.stderr.strip()}\n" + "\n".join(errors[-5:]))
    assert p.returncode == 0, f"{what} failed ({p.returncode}): {p.stderr.strip()}"


def detached(runtime, *args: str, bundle: Bundle) -> subprocess.CompletedProcess:
    """`run -d` / `restore -d` with stdout and stderr on a pipe, as a shim gives them: the
    container inherits it (CRIU records it as pipe:[N], restore plumbs the new one in). We read
    what the runtime said once it exits, and keep our end open until the test ends."""
    bundle.write()
    for a in args[1:]:
        if not a.startswith("-"):
            runtime.ids.add(a)
    r, w = os.pipe()
    try:
        p = subprocess.run(runtime.cmd(*args), stdin=subprocess.DEVNULL, stdout=w, stderr=w,
                           cwd=str(bundle.path), timeout=120)
    finally:
        os.close(w)
    HELD.append(r)
    os.set_blocking(r, False)
    try:
        said = os.read(r, 65536).decode(errors="replace")
    except BlockingIOError:
        said = ""
    return subprocess.CompletedProcess(p.args, p.returncode, "", said)


def test_counter_continues_after_restore(runtime, tbundle, tmp_path):
    """Dump (the container is gone afterwards, as runc does it), restore: the loop goes on from
    where it was, in a cgroup with the config's limits; delete removes that cgroup."""
    tbundle.config["linux"]["resources"] = {"pids": {"limit": 50}}
    # a bind mount from the host: CRIU must be told it is external, on dump and on restore
    (tbundle.path / "hosts").write_text("127.0.0.1 restored\n")
    tbundle.config["mounts"].append({"destination": "/etc/hosts", "type": "bind",
                                     "source": str(tbundle.path / "hosts"), "options": ["bind"]})
    tbundle.config["process"]["args"] = ["sh", "-c", "cat /etc/hosts > /hosts.seen; " + COUNTER]
    # runc runs prestart and createRuntime again on restore, once CRIU has the namespaces up
    seen = tmp_path / "hooks.log"
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"cat >> {seen}; echo >> {seen}"]}
    tbundle.config["hooks"] = {"prestart": [hook], "createRuntime": [hook]}
    ok(detached(runtime, "run", "-d", "c1", bundle=tbundle), "run")
    before = wait_count_above(tbundle, 3)
    img = tmp_path / "img"
    ok(runtime("checkpoint", "--image-path", str(img), "c1"), "checkpoint")
    assert runtime("state", "c1").returncode != 0  # destroyed, not `stopped` (runc 1.1)
    frozen = count(tbundle)
    assert frozen >= before
    time.sleep(0.5)
    assert count(tbundle) == frozen  # nothing runs while checkpointed
    p = detached(runtime, "restore", "-d", "--image-path", str(img), "c1", bundle=tbundle)
    ok(p, "restore")
    st = runtime.state("c1")
    assert st["status"] == "running"
    after = wait_count_above(tbundle, frozen)
    assert after > frozen  # continued from memory, not started again at 1
    cg = cgroup_of(st["pid"])
    assert (cg / "pids.max").read_text().strip() == "50"
    states = [json.loads(line) for line in seen.read_text().splitlines() if line.strip()]
    assert len(states) == 4, states  # two at run, two at restore
    assert [s["pid"] for s in states[2:]] == [st["pid"]] * 2
    p = runtime("exec", "c1", "cat", "/hosts.seen")  # exec joins the restored namespaces
    ok(p, "exec")
    assert p.stdout == "127.0.0.1 restored\n"
    p = runtime("exec", "c1", "readlink", "/proc/self/ns/time")  # CRIU's time namespace too
    ok(p, "exec")
    if runtime.name == "pyrunc":  # measured: runc 1.1.5's exec stays in the host's time namespace
        assert p.stdout.strip() == os.readlink(f"/proc/{st['pid']}/ns/time")
    hosts = Path(f"/proc/{st['pid']}/root/etc/hosts").read_text()
    assert hosts == "127.0.0.1 restored\n"  # the bind is back
    ok(runtime("delete", "--force", "c1"), "delete")
    assert not cg.exists()


def test_leave_running_and_restore_under_a_new_id(runtime, tbundle, tmp_path):
    """Restored under another id into a fresh copy of the bundle: the mount points the create
    made in the first rootfs are made in this one too (a bound directory and file)."""
    (tbundle.path / "seed").mkdir()
    (tbundle.path / "seed" / "a").write_text("a\n")
    tbundle.config["mounts"] += [
        {"destination": "/srv/seed", "type": "bind", "source": str(tbundle.path / "seed"), "options": ["rbind"]},
        {"destination": "/srv/one/a", "type": "bind", "source": str(tbundle.path / "seed" / "a"),
         "options": ["bind", "ro"]}]
    tbundle.write()
    fresh = tbundle.clone(tbundle.path.parent / "fresh")
    assert not (fresh.rootfs / "srv").exists()
    ok(detached(runtime, "run", "-d", "c1", bundle=tbundle), "run")
    wait_count_above(tbundle, 3)
    img = tmp_path / "img"
    ok(runtime("checkpoint", "--leave-running", "--image-path", str(img), "c1"), "checkpoint")
    assert runtime.state("c1")["status"] == "running"
    at = wait_count_above(tbundle, count(tbundle))
    ok(runtime("delete", "--force", "c1"), "delete")
    # a bundle whose rootfs is not the checkpointed one: CRIU refuses; pyrunc leaves nothing
    other = tbundle.clone(tbundle.path.parent / "other")
    shutil.rmtree(other.rootfs / "bin")
    p = detached(runtime, "restore", "-d", "--image-path", str(img), "bad", bundle=other)
    assert p.returncode != 0
    if runtime.name == "pyrunc":
        assert "container bad: restore: CRIU restore failed" in p.stderr, p.stderr
        assert f"(CRIU log: {img / 'restore.log'})" in p.stderr
        assert not (runtime.root / "bad").exists()
        from pyrunc.cgroups import create_manager

        where = create_manager(tbundle.config["linux"]["cgroupsPath"], "bad").paths()["unified"]
        assert not os.path.exists(where), where
    p = detached(runtime, "restore", "-d", "--image-path", str(img), "c2", bundle=fresh)
    ok(p, "restore", img / "restore.log")
    st = runtime.state("c2")
    assert st["status"] == "running" and st["bundle"] == str(fresh.path)
    wait_count_above(fresh, 0)
    assert count(fresh) < at + 200  # the checkpointed counter, resumed (not the later one)
    assert Path(f"/proc/{st['pid']}/root/srv/one/a").read_text() == "a\n"
    ok(runtime("delete", "--force", "c2"), "delete")


def test_pre_dump_then_dump_with_parent(runtime, tbundle, tmp_path):
    ok(detached(runtime, "run", "-d", "c1", bundle=tbundle), "run")
    wait_count_above(tbundle, 3)
    pre, final = tmp_path / "pre", tmp_path / "final"
    ok(runtime("checkpoint", "--pre-dump", "--image-path", str(pre), "c1"), "pre-dump")
    assert runtime.state("c1")["status"] == "running"
    ok(runtime("checkpoint", "--image-path", str(final), "--parent-path", "../pre", "c1"), "dump")
    assert (final / "parent").is_symlink()
    frozen = count(tbundle)
    # restored in the foreground this time: the runtime waits for the init and passes its status on
    fg = subprocess.Popen(runtime.cmd("restore", "--image-path", str(final), "c1"), cwd=str(tbundle.path),
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_count_above(tbundle, frozen)
        assert runtime.state("c1")["status"] == "running"
        ok(runtime("kill", "c1", "KILL"), "kill")
        _, err = fg.communicate(timeout=60)
    finally:
        if fg.poll() is None:
            fg.kill()
            fg.wait()
    assert fg.returncode == 137, err
    assert runtime("state", "c1").returncode != 0  # gone with its init, as after `run`


def read_until(fd: int, needle: bytes, timeout: float = 20) -> bytes:
    import select

    buf = b""
    deadline = time.monotonic() + timeout
    while needle not in buf and time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                buf += os.read(fd, 4096)
            except OSError:
                break
    return buf


class ConsoleSocket:
    def __init__(self, path: Path):
        self.path = str(path)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(2)
        self.server.settimeout(60)

    def take(self) -> int:
        conn, _ = self.server.accept()
        _, fds, _, _ = socket.recv_fds(conn, 4096, 4)
        conn.close()
        return fds[0]


def test_tty_through_the_console_socket(runtime, tbundle, tmp_path):
    """A terminal container: CRIU hands the restored pty master over (orphan_pts_master) and it
    goes to --console-socket; the restored shell answers on it."""
    tbundle.config["process"]["terminal"] = True
    tbundle.config["process"]["args"] = ["sh"]
    cs = ConsoleSocket(tmp_path / "console.sock")
    ok(detached(runtime, "run", "-d", "--console-socket", cs.path, "c1", bundle=tbundle), "run")
    master = cs.take()
    os.write(master, b"X=41; echo ready-$((X+1))\n")
    assert b"ready-42" in read_until(master, b"ready-42")
    img = tmp_path / "img"
    ok(runtime("checkpoint", "--image-path", str(img), "c1"), "checkpoint")
    os.close(master)
    ok(detached(runtime, "restore", "-d", "--console-socket", cs.path, "--image-path", str(img), "c1",
               bundle=tbundle), "restore")
    master = cs.take()
    os.write(master, b"echo again-$((X+2))\n")  # the shell's variable survived
    out = read_until(master, b"again-43")
    os.close(master)
    assert b"again-43" in out, out
    ok(runtime("delete", "--force", "c1"), "delete")


TCP = ("sleep 100000 | nc -l -p 5000 > /received & sleep 1; "
       "i=0; while true; do i=$((i+1)); echo $i; echo $i > /count; sleep 0.1; done | nc 127.0.0.1 5000")


def test_tcp_connection_in_a_netns_survives_with_tcp_established(runtime, tbundle, tmp_path):
    """An established connection inside the container's network namespace: refused without
    --tcp-established, carried over with it (the data keeps flowing after restore)."""
    tbundle.config["process"]["args"] = ["sh", "-c", TCP]
    assert {"type": "network"} in tbundle.config["linux"]["namespaces"]
    ok(detached(runtime, "run", "-d", "c1", bundle=tbundle), "run")
    wait_count_above(tbundle, 5)
    img = tmp_path / "img"
    p = runtime("checkpoint", "--leave-running", "--image-path", str(tmp_path / "no"), "c1")
    assert p.returncode != 0  # CRIU: "Connected TCP socket, consider using --tcp-established"
    ok(runtime("checkpoint", "--tcp-established", "--image-path", str(img), "c1"), "checkpoint")
    received = len((tbundle.rootfs / "received").read_text().split())
    p = detached(runtime, "restore", "-d", "--tcp-established", "--image-path", str(img), "c1",
                 bundle=tbundle)
    log = img / "restore.log"
    if runtime.name == "runc" and p.returncode != 0 and "Network is unreachable" in log.read_text():
        # Measured in this guest: runc 1.1.5's restore of the same images fails in CRIU
        # ("soccr: Can't connect inet socket back: Network is unreachable"); pyrunc's passes.
        pytest.xfail("runc 1.1.5 cannot restore an established TCP connection here (CRIU: "
                     "Can't connect inet socket back: Network is unreachable)")
    ok(p, "restore", log)
    frozen = count(tbundle)
    wait_count_above(tbundle, frozen + 5)
    deadline = time.monotonic() + 20
    while len((tbundle.rootfs / "received").read_text().split()) <= received + 5:
        assert time.monotonic() < deadline, "no data over the restored connection"
        time.sleep(0.1)
    ok(runtime("delete", "--force", "c1"), "delete")


@pytest.fixture(params=["pyrunc", "runc-1.5.1"])
def runtime15(request, tmp_path):
    """pyrunc and runc 1.5.1 (flags runc 1.1.5 does not have)."""
    from tests.oracles import runtime_named

    yield from runtime_named(request.param, tmp_path)


# A file open under a name that is then removed while another hard link keeps it: CRIU neither
# finds it by its name nor may dump it as a ghost (it still has links).
LINKED = "echo kept > /kept; ln /kept /gone; exec 3</gone; rm /gone; " + COUNTER


def test_link_remap_and_tcp_skip_in_flight(runtime15, tbundle, tmp_path):
    """--link-remap lets CRIU dump an unlinked file that has other links (refused without it);
    --tcp-skip-in-flight is accepted and passed on; the restored process still reads the file."""
    runtime = runtime15
    tbundle.config["process"]["args"] = ["sh", "-c", LINKED]
    ok(detached(runtime, "run", "-d", "c1", bundle=tbundle), "run")
    wait_count_above(tbundle, 3)
    p = runtime("checkpoint", "--leave-running", "--image-path", str(tmp_path / "no"), "c1")
    assert p.returncode != 0, "CRIU dumped an unlinked file with links without --link-remap"
    assert runtime.state("c1")["status"] == "running"
    img = tmp_path / "img"
    ok(runtime("checkpoint", "--link-remap", "--tcp-skip-in-flight", "--image-path", str(img), "c1"),
       "checkpoint", img / "dump.log")
    dump_log = (img / "dump.log").read_text(errors="replace")
    assert "link_remap" in dump_log or "link-remap" in dump_log or "link remap" in dump_log.lower(), \
        "CRIU's log shows no link remap"
    p = detached(runtime, "restore", "-d", "--image-path", str(img), "c1", bundle=tbundle)
    ok(p, "restore", img / "restore.log")
    pid = runtime.state("c1")["pid"]
    assert Path(f"/proc/{pid}/fd/3").read_text() == "kept\n"
    ok(runtime("delete", "--force", "c1"), "delete")


@pytest.fixture(scope="module")
def podman(rootfs_template, tmp_path_factory):
    """podman with its store on a tmpfs (vfs driver: the guest's root is an overlay), the busybox
    rootfs imported as an image once for the module."""
    if not shutil.which("podman"):
        pytest.skip("podman is not installed")
    store = tmp_path_factory.mktemp("podman")
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(store)], check=True)
    base = ["podman", "--storage-driver", "vfs", "--root", str(store / "root"),
            "--runroot", str(store / "run"), "--cgroup-manager", "cgroupfs", "--events-backend", "none"]

    def call(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([*base, *args], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    tar = subprocess.Popen(["tar", "-C", str(rootfs_template), "-c", "."], stdout=subprocess.PIPE)
    p = subprocess.run([*base, "import", "-", "localhost/criu-bb"], stdin=tar.stdout,
                       capture_output=True, text=True, timeout=300)
    tar.wait()
    if p.returncode != 0:
        pytest.skip(f"podman cannot import an image here: {p.stderr.strip()[-300:]}")
    yield call
    call("rm", "-a", "-f", "-t", "0")
    subprocess.run(["umount", "-l", str(store)], check=False)


def test_podman_container_checkpoint_and_restore(runtime, podman):
    """podman drives the runtime's checkpoint and restore (it asks `checkpoint --help` first)."""
    name = f"criu-{runtime.name}"
    rt = ["--runtime", runtime.binary]
    ok(podman(*rt, "run", "-d", "--name", name, "--network", "none", "localhost/criu-bb",
              "sh", "-c", COUNTER), "podman run")
    p = podman("mount", name)
    ok(p, "podman mount")
    rootfs = Path(p.stdout.strip())

    def b_count() -> int:
        return int((rootfs / "count").read_text().strip() or 0)

    deadline = time.monotonic() + 30
    while not (rootfs / "count").exists() or b_count() < 3:
        assert time.monotonic() < deadline, "the counter never started"
        time.sleep(0.1)
    ok(podman(*rt, "container", "checkpoint", name), "podman container checkpoint")
    frozen = b_count()
    assert podman("inspect", "-f", "{{.State.Status}}", name).stdout.strip() == "exited"
    ok(podman(*rt, "container", "restore", name), "podman container restore")
    assert podman("inspect", "-f", "{{.State.Status}}", name).stdout.strip() == "running"
    deadline = time.monotonic() + 30
    while b_count() <= frozen:
        assert time.monotonic() < deadline, f"counter stuck at {b_count()} after restore"
        time.sleep(0.1)
    ok(podman("rm", "-f", "-t", "0", name), "podman rm")
