"""Rootless: pyrunc run by an unprivileged user, side by side with runc, and under rootless podman.

A test user is made for the session (``useradd``, which takes /etc/subuid and /etc/subgid's
lock and writes them atomically; a subordinate range is added the same way with ``usermod``
when useradd gave none) and removed at the end with its home, its ranges and any process it
still has. Everything the user touches lives in its home (pytest's temp dirs are 0700 root):
bundles from ``runc spec --rootless``, $XDG_RUNTIME_DIR, podman's vfs storage. Commands run
as the user through ``setpriv`` with a clean environment.

This host is cgroup v1/hybrid: an unprivileged user can write no cgroup, so containers run
without one (as runc's), limits are refused by name and pause is refused clearly.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import PYRUNC, RUNC, run_to_files

NEWUIDMAP = shutil.which("newuidmap")
PODMAN = shutil.which("podman")
SUBID_SIZE = 65536

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (creates a test user)"),
    pytest.mark.skipif(not shutil.which("useradd"), reason="useradd is not installed"),
    pytest.mark.skipif(not os.path.exists(RUNC), reason="runc is not installed (the oracle)"),
]


class User:
    """The session's unprivileged user and a way to run commands as it."""

    def __init__(self, name: str):
        pw = pwd.getpwnam(name)
        self.name, self.uid, self.gid, self.home = name, pw.pw_uid, pw.pw_gid, Path(pw.pw_dir)
        self.xdg = self.home / "run"
        self.subuid = subid_start("/etc/subuid", name)
        self.subgid = subid_start("/etc/subgid", name)

    def env(self) -> dict[str, str]:
        return {"HOME": str(self.home), "USER": self.name, "LOGNAME": self.name,
                "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "XDG_RUNTIME_DIR": str(self.xdg)}

    def run(self, *argv: str, timeout: float = 60, cwd: Path | None = None, **kw) -> subprocess.CompletedProcess:
        cmd = ["timeout", "-k", "5", str(int(timeout)), "setpriv", f"--reuid={self.uid}",
               f"--regid={self.gid}", "--init-groups", *argv]
        return run_to_files(cmd, timeout=timeout + 10, env=self.env(), cwd=str(cwd or self.home), **kw)

    def pids(self) -> list[int]:
        """Every live process of the user (by the real uid in /proc/PID/status)."""
        out = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/status") as f:
                    for line in f:
                        if line.startswith("Uid:"):
                            if int(line.split()[1]) == self.uid:
                                out.append(int(entry))
                            break
            except OSError:
                continue
        return out

    def kill_all(self) -> None:
        """Only this session's user's processes, each by pid (podman's pause process, leftovers)."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.05)


def subid_start(path: str, name: str) -> int | None:
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[0] == name and int(parts[2]) >= SUBID_SIZE:
                    return int(parts[1])
    except OSError:
        pass
    return None


def free_subid_range() -> int:
    """A start above every range in either file (the files are only read here; usermod writes)."""
    top = 100000
    for path in ("/etc/subuid", "/etc/subgid"):
        try:
            with open(path) as f:
                for line in f:
                    parts = line.strip().split(":")
                    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                        top = max(top, int(parts[1]) + int(parts[2]))
        except OSError:
            pass
    return top + SUBID_SIZE


def open_path_to(target: str) -> list[tuple[Path, int]]:
    """Let every user traverse (o+x, not read) the directories above ``target`` that forbid it,
    so the test user can run the checkout's pyrunc from a clone in e.g. `mktemp -d` (mode 0700).
    Returns what to put back: (directory, its mode before)."""
    changed = []
    for d in Path(target).resolve().parents:
        mode = d.stat().st_mode & 0o7777
        if not mode & 0o001:
            os.chmod(d, mode | 0o001)
            changed.append((d, mode))
    return changed


@pytest.fixture(scope="session")
def user():
    if not NEWUIDMAP:
        pytest.skip("newuidmap is not installed (Debian package uidmap)")
    name = f"pyrl{os.getpid()}"[:31]
    opened: list[tuple[Path, int]] = []
    p = subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        pytest.skip(f"useradd failed: {p.stderr.strip()}")
    try:
        for path, flag in (("/etc/subuid", "--add-subuids"), ("/etc/subgid", "--add-subgids")):
            if subid_start(path, name) is None:
                start = free_subid_range()
                subprocess.run(["usermod", flag, f"{start}-{start + SUBID_SIZE - 1}", name],
                               check=True, capture_output=True, timeout=60)
        u = User(name)
        u.xdg.mkdir(mode=0o700)
        os.chown(u.xdg, u.uid, u.gid)
        opened = open_path_to(PYRUNC)
        yield u
    finally:
        for d, mode in reversed(opened):
            os.chmod(d, mode)
        try:
            User(name).kill_all()
        except KeyError:
            pass
        # userdel removes the user's subordinate ranges too (shadow >= 4.x); make sure.
        for path, flag in (("/etc/subuid", "--del-subuids"), ("/etc/subgid", "--del-subgids")):
            start = subid_start(path, name)
            if start is not None:
                subprocess.run(["usermod", flag, f"{start}-{start + SUBID_SIZE - 1}", name],
                               capture_output=True, timeout=60)
        subprocess.run(["userdel", "--remove", name], capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def spec_template(user, rootfs_template) -> Path:
    """`runc spec --rootless` written by the user, next to a copy of the busybox rootfs it owns."""
    top = user.home / "template"
    shutil.copytree(rootfs_template, top / "rootfs", symlinks=True)
    subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", str(top)], check=True)
    p = user.run(RUNC, "spec", "--rootless", cwd=top)
    assert p.returncode == 0, p.stderr
    return top


_serial = iter(range(1, 1 << 30))


class RootlessBundle:
    def __init__(self, user: User, template: Path, args: list[str]):
        self.user = user
        self.path = user.home / f"b{next(_serial)}"
        shutil.copytree(template, self.path, symlinks=True)
        self.config = json.loads((self.path / "config.json").read_text())
        self.config["process"]["terminal"] = False
        self.config["process"]["args"] = args
        self.write()

    def write(self) -> None:
        (self.path / "config.json").write_text(json.dumps(self.config, indent=1))
        subprocess.run(["chown", "-R", f"{self.user.uid}:{self.user.gid}", str(self.path)], check=True)

    def map_subordinate_ids(self) -> None:
        """Root is the user itself; 1..65536 are its subordinate ids (newuidmap's case)."""
        lin = self.config["linux"]
        lin["uidMappings"] = [{"containerID": 0, "hostID": self.user.uid, "size": 1},
                              {"containerID": 1, "hostID": self.user.subuid, "size": SUBID_SIZE}]
        lin["gidMappings"] = [{"containerID": 0, "hostID": self.user.gid, "size": 1},
                              {"containerID": 1, "hostID": self.user.subgid, "size": SUBID_SIZE}]


class UserRuntime:
    """pyrunc or runc as the user, with the default state root unless told otherwise."""

    def __init__(self, user: User, name: str):
        self.user, self.name = user, name
        self.binary = PYRUNC if name == "pyrunc" else RUNC
        self.root = user.xdg / ("pyrunc" if name == "pyrunc" else "runc")
        self.ids: set[str] = set()

    def __call__(self, *args: str, bundle: RootlessBundle | None = None, timeout: float = 60,
                 glob: tuple[str, ...] = (), **kw) -> subprocess.CompletedProcess:
        if bundle is not None:
            bundle.write()
        if args and args[0] in ("create", "run"):
            self.ids.add(args[-1])
        return self.user.run(self.binary, *glob, *args, timeout=timeout,
                             cwd=bundle.path if bundle else None, **kw)

    def state(self, cid: str) -> dict:
        p = self("state", cid)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    def cleanup(self) -> None:
        for cid in self.ids:
            self("delete", "--force", cid, timeout=30)


@pytest.fixture(params=["pyrunc", "runc"])
def rt(request, user):
    r = UserRuntime(user, request.param)
    yield r
    r.cleanup()


@pytest.fixture
def pyrunc_user(user):
    r = UserRuntime(user, "pyrunc")
    yield r
    r.cleanup()


def unique(prefix: str) -> str:
    return f"{prefix}{os.getpid()}-{next(_serial)}"


def error_lines(stderr: str) -> list[str]:
    """stderr without warnings: what a failure printed."""
    return [line for line in stderr.splitlines() if line.strip() and "level=warning" not in line]


# ------------------------------------------------------------------------------- runtimes ----

def test_run_maps_root_to_the_user(rt, user, spec_template):
    b = RootlessBundle(user, spec_template, ["sh", "-c", "id -u; id -g; cat /proc/self/uid_map; ls /dev/null"])
    cid = unique("run")
    p = rt("run", cid, bundle=b)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split("\n")
    assert lines[0] == "0" and lines[1] == "0"
    assert lines[2].split() == ["0", str(user.uid), "1"]
    assert lines[3] == "/dev/null"
    # The default state root: $XDG_RUNTIME_DIR/<runtime>, 0700, nothing left after `run`.
    st = rt.root.stat()
    assert st.st_uid == user.uid and st.st_mode & 0o777 == 0o700
    assert cid not in os.listdir(rt.root)


def test_our_own_rootless_spec_runs(pyrunc_user, user, spec_template):
    b = RootlessBundle(user, spec_template, ["id", "-u"])
    (b.path / "config.json").unlink()
    p = user.run(PYRUNC, "spec", "--rootless", cwd=b.path)
    assert p.returncode == 0, p.stderr
    b.config = json.loads((b.path / "config.json").read_text())
    b.config["process"].update(terminal=False, args=["id", "-u"])
    p = pyrunc_user("run", unique("spec"), bundle=b)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "0"


def test_lifecycle_create_exec_start_kill_delete(rt, user, spec_template):
    b = RootlessBundle(user, spec_template, ["sleep", "1000"])
    cid = unique("lc")
    p = rt("create", cid, bundle=b)
    assert p.returncode == 0, p.stderr
    assert rt.state(cid)["status"] == "created"
    pid = rt.state(cid)["pid"]
    assert os.stat(f"/proc/{pid}").st_uid == user.uid, "container root is the user on the host"
    p = rt("exec", cid, "sh", "-c", "id -u; readlink /proc/self/ns/user")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["0", os.readlink(f"/proc/{pid}/ns/user")]
    assert rt("start", cid).returncode == 0
    assert rt.state(cid)["status"] == "running"
    p = rt("exec", cid, "cat", "/proc/self/uid_map")
    assert p.returncode == 0 and p.stdout.split() == ["0", str(user.uid), "1"], p.stderr
    assert rt("kill", cid, "KILL").returncode == 0
    deadline = time.monotonic() + 10
    while rt.state(cid)["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rt.state(cid)["status"] == "stopped"
    p = rt("delete", cid)
    assert p.returncode == 0, p.stderr
    assert cid not in os.listdir(rt.root)


def test_terminal_through_console_socket(rt, user, spec_template):
    sock_dir = user.home / unique("sock")
    sock_dir.mkdir()
    os.chown(sock_dir, user.uid, user.gid)
    path = str(sock_dir / "c.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chown(path, user.uid, user.gid)
    server.listen(1)
    server.settimeout(30)
    b = RootlessBundle(user, spec_template, ["sh", "-c", "tty; echo done"])
    b.config["process"]["terminal"] = True
    cid = unique("tty")
    try:
        p = rt("create", "--console-socket", path, cid, bundle=b)
        assert p.returncode == 0, p.stderr
        conn, _ = server.accept()
        _, fds, _, _ = socket.recv_fds(conn, 4096, 4)
        conn.close()
        assert len(fds) == 1 and os.isatty(fds[0])
        assert rt("start", cid).returncode == 0
        out = b""
        deadline = time.monotonic() + 20
        while b"done" not in out and time.monotonic() < deadline:
            try:
                chunk = os.read(fds[0], 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        os.close(fds[0])
        text = out.replace(b"\r", b"").decode()
        assert "/dev/pts/" in text or "/dev/console" in text, text
    finally:
        server.close()


def test_subordinate_ids_mapped_through_newuidmap(rt, user, spec_template):
    b = RootlessBundle(user, spec_template, ["sh", "-c", "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map"])
    b.map_subordinate_ids()
    b.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    p = rt("run", unique("sub"), bundle=b)
    assert p.returncode == 0, p.stderr
    lines = [line.split() for line in p.stdout.splitlines()]
    assert lines[0] == ["1000"] and lines[1] == ["1000"]
    assert lines[2:4] == [["0", str(user.uid), "1"], ["1", str(user.subuid), str(SUBID_SIZE)]]
    assert lines[4:6] == [["0", str(user.gid), "1"], ["1", str(user.subgid), str(SUBID_SIZE)]]


def test_sysfs_refused_falls_back_to_the_hosts_read_only(pyrunc_user, user, spec_template):
    """A new sysfs needs a network namespace of our own; without one the host's /sys is bound
    (read-only here, submounts too). runc 1.1.5 fails this config with EPERM."""
    b = RootlessBundle(user, spec_template, ["sh", "-c", "grep ' /sys ' /proc/self/mounts; ls /sys/class/net; "
                                                         "touch /sys/kernel/x 2>&1; echo end"])
    for mnt in b.config["mounts"]:
        if mnt["destination"] == "/sys":
            mnt.update(type="sysfs", source="sysfs", options=["nosuid", "noexec", "nodev", "ro"])
    p = pyrunc_user("run", unique("sysfs"), bundle=b)
    assert p.returncode == 0, p.stderr
    first = p.stdout.splitlines()[0].split()
    assert first[1:3] == ["/sys", "sysfs"] and "ro" in first[3].split(","), first
    assert "lo" in p.stdout.split(), "the host's network devices: its /sys"
    assert "Read-only file system" in p.stdout


def test_kill_all_without_a_cgroup_signals_the_init(pyrunc_user, user, spec_template):
    b = RootlessBundle(user, spec_template, ["sleep", "1000"])
    cid = unique("killall")
    assert pyrunc_user("run", "-d", cid, bundle=b).returncode == 0
    p = pyrunc_user("kill", "--all", cid, "KILL")
    assert p.returncode == 0, p.stderr
    deadline = time.monotonic() + 10
    while pyrunc_user.state(cid)["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pyrunc_user.state(cid)["status"] == "stopped"


# --------------------------------------------------------------------------- cgroups (v1) ----

def _unprivileged_cgroups() -> bool:
    """This host gives an unprivileged user no cgroup (v1/hybrid without delegation)."""
    return not os.path.exists("/sys/fs/cgroup/cgroup.controllers")


@pytest.mark.skipif(not _unprivileged_cgroups(), reason="a cgroup v1/hybrid host")
def test_pause_is_refused_clearly_without_a_cgroup(pyrunc_user, user, spec_template):
    b = RootlessBundle(user, spec_template, ["sleep", "1000"])
    cid = unique("pause")
    assert pyrunc_user("run", "-d", cid, bundle=b).returncode == 0
    p = pyrunc_user("pause", cid)
    assert p.returncode == 1
    err = error_lines(p.stderr)
    assert len(err) == 1 and "Traceback" not in p.stderr, p.stderr
    assert f"container {cid}" in err[0] and "freezer" in err[0] and "rootless" in err[0], err
    assert pyrunc_user.state(cid)["status"] == "running"


@pytest.mark.skipif(not _unprivileged_cgroups(), reason="a cgroup v1/hybrid host")
def test_a_limit_without_a_writable_cgroup_is_refused_by_name(pyrunc_user, user, spec_template):
    b = RootlessBundle(user, spec_template, ["true"])
    b.config["linux"]["resources"] = {"memory": {"limit": 64 << 20}}
    cid = unique("mem")
    p = pyrunc_user("run", cid, bundle=b)
    assert p.returncode == 1
    err = error_lines(p.stderr)
    assert len(err) == 1 and "Traceback" not in p.stderr, p.stderr
    assert "linux.resources.memory" in err[0] and "rootless" in err[0], err
    assert_nothing_left(pyrunc_user, cid)


# ------------------------------------------------------------------------------ bad input ----

def assert_nothing_left(r: UserRuntime, cid: str, root: Path | None = None) -> None:
    root = root or r.root
    assert not (root / cid).exists(), "no state left"
    assert not strays(r.user), "no stray process of the user"


def strays(user: User) -> list[str]:
    """The user's processes other than podman's own (its pause process keeps the namespace)."""
    out = []
    for pid in user.pids():
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state == "Z":
            continue  # dead, waiting for whoever reaps the host's orphans
        if comm not in ("podman", "podman pause", "catatonit", "conmon"):
            out.append(f"{pid} {comm}")
    return out


def _refused(r: UserRuntime, b: RootlessBundle, cid: str, *, glob: tuple[str, ...] = ()) -> str:
    p = r("run", cid, bundle=b, glob=glob)
    assert p.returncode == 1, (p.stdout, p.stderr)
    err = error_lines(p.stderr)
    assert len(err) == 1 and "Traceback" not in p.stderr and "internal error" not in p.stderr, p.stderr
    return err[0]


def test_ids_outside_the_subordinate_range(pyrunc_user, user, spec_template):
    b = RootlessBundle(user, spec_template, ["true"])
    b.map_subordinate_ids()
    b.config["linux"]["uidMappings"][1]["hostID"] = user.subuid + SUBID_SIZE  # just past the range
    cid = unique("range")
    line = _refused(pyrunc_user, b, cid)
    assert f"container {cid}" in line and "newuidmap" in line and "not allowed" in line, line
    assert_nothing_left(pyrunc_user, cid)


def test_a_mapping_that_misses_the_process_uid(pyrunc_user, user, spec_template):
    b = RootlessBundle(user, spec_template, ["true"])
    b.config["process"]["user"] = {"uid": 1000, "gid": 0}
    cid = unique("unmapped")
    line = _refused(pyrunc_user, b, cid)
    assert "process.user.uid 1000 is not mapped by linux.uidMappings" in line, line
    assert_nothing_left(pyrunc_user, cid)


def test_a_rootfs_the_user_cannot_read(pyrunc_user, user, spec_template):
    b = RootlessBundle(user, spec_template, ["true"])
    os.chown(b.path / "rootfs", 0, 0)
    os.chmod(b.path / "rootfs", 0o700)
    cid = unique("rootfs")
    p = pyrunc_user("run", "--bundle", str(b.path), cid)
    assert p.returncode == 1
    err = error_lines(p.stderr)
    assert len(err) == 1 and "Traceback" not in p.stderr, p.stderr
    assert "rootfs" in err[0] and ("Permission denied" in err[0] or "not readable" in err[0]), err
    assert_nothing_left(pyrunc_user, cid)


def test_an_unwritable_state_root(pyrunc_user, user, spec_template):
    b = RootlessBundle(user, spec_template, ["true"])
    cid = unique("root")
    line = _refused(pyrunc_user, b, cid, glob=("--root", "/run/pyrunc-rootless-test"))
    assert f"container {cid}" in line and "/run/pyrunc-rootless-test" in line
    assert "Permission denied" in line, line
    assert not os.path.exists("/run/pyrunc-rootless-test")
    assert_nothing_left(pyrunc_user, cid)


def test_an_invalid_rootless_value(pyrunc_user):
    p = pyrunc_user("list", glob=("--rootless", "maybe"))
    assert p.returncode == 1
    assert p.stderr.strip() == "invalid --rootless value 'maybe': expected auto, true or false"


# --------------------------------------------------------------------------------- podman ----

@pytest.fixture(scope="session")
def podman(user, rootfs_template):
    """Rootless podman confined to the user's home: vfs storage, private config, an image
    imported from the busybox rootfs as the user."""
    if not PODMAN or not shutil.which("conmon"):
        pytest.skip("podman/conmon are not installed")
    pm = user.home / "podman"
    for d in ("root", "runroot", "tmp"):
        (pm / d).mkdir(parents=True)
    (pm / "storage.conf").write_text(f'[storage]\ndriver = "vfs"\ngraphroot = "{pm}/root"\n'
                                     f'runroot = "{pm}/runroot"\n')
    (pm / "containers.conf").write_text(
        '[containers]\nnetns = "none"\nlog_driver = "k8s-file"\n'
        'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
        f'[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\ntmp_dir = "{pm}/tmp"\n')
    (pm / "registries.conf").write_text("unqualified-search-registries = []\n")
    wrapper = pm / "podman"
    wrapper.write_text("#!/bin/sh\n"
                       f"export CONTAINERS_CONF={pm}/containers.conf CONTAINERS_STORAGE_CONF={pm}/storage.conf "
                       f"CONTAINERS_REGISTRIES_CONF={pm}/registries.conf\n"
                       f'exec podman --root {pm}/root --runroot {pm}/runroot --tmpdir {pm}/tmp '
                       '--storage-driver vfs --cgroup-manager cgroupfs --events-backend file "$@"\n')
    wrapper.chmod(0o755)
    tar = pm / "rootfs.tar"
    subprocess.run(["tar", "-C", str(rootfs_template), "-cf", str(tar), "."], check=True)
    subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", str(pm)], check=True)
    p = user.run(str(wrapper), "import", str(tar), "localhost/pyrunc-rootless:1", timeout=120)
    if p.returncode != 0:
        pytest.skip(f"rootless podman cannot import an image here: {p.stderr.strip()[-300:]}")
    yield wrapper
    user.run(str(wrapper), "rm", "--all", "--force", timeout=120)


RUN = ("--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")


def test_podman_run_exec_stop_rm(user, podman):
    def pm(*args: str, timeout: float = 120):
        return user.run(str(podman), "--runtime", PYRUNC, *args, timeout=timeout)

    p = pm("run", "--rm", *RUN, "localhost/pyrunc-rootless:1", "sh", "-c", "id -u; cat /proc/self/uid_map")
    assert p.returncode == 0, p.stderr
    lines = [line.split() for line in p.stdout.splitlines()]
    assert lines[0] == ["0"]
    assert lines[1] == ["0", str(user.uid), "1"]
    assert lines[2] == ["1", str(user.subuid), str(SUBID_SIZE)], "podman's namespace maps the range"

    name = unique("pm")
    p = pm("run", "-d", "--name", name, *RUN, "localhost/pyrunc-rootless:1", "sleep", "1000")
    assert p.returncode == 0, p.stderr
    p = pm("exec", name, "sh", "-c", "echo in-$((6*7))")
    assert p.returncode == 0 and p.stdout.strip() == "in-42", p.stderr
    p = pm("stop", "-t", "1", name)
    assert p.returncode == 0, p.stderr
    p = pm("inspect", "--format", "{{.State.Status}}", name)
    assert p.stdout.strip() == "exited", (p.stdout, p.stderr)
    p = pm("rm", name)
    assert p.returncode == 0, p.stderr
    # pyrunc kept its state under the XDG runtime dir podman passed, never under /run.
    assert (user.xdg / "pyrunc").is_dir()
    assert os.listdir(user.xdg / "pyrunc") == [], "every container's state removed"
    assert not strays(user)
