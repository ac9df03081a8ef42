"""Helpers for the escape-class regression tests: probes, sentinels and host invariants.

Every test here runs real containers as root. The threat model (SECURITY.md): the rootfs and the
container's processes are hostile, config.json and the caller are trusted. So each test plants its
attack in the rootfs or runs it from inside a container, and asserts on the host side.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import Bundle, mounts_snapshot


def pytest_configure(config: pytest.Config) -> None:
    """`cve` names the advisory a test guards, as runc's bats files do in comments."""
    config.addinivalue_line("markers", "cve(id): regression test for the named advisory")
    config.addinivalue_line("markers", "race: bounded race test (evidence, paired with a deterministic one)")


def tree_snapshot(path: Path) -> dict[str, tuple]:
    """Every entry under path with its type, target or content: any change by a runtime shows."""
    snap: dict[str, tuple] = {}
    for base, dirs, files in os.walk(path):
        for name in dirs + files:
            p = os.path.join(base, name)
            st = os.lstat(p)
            if os.path.islink(p):
                snap[p] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                snap[p] = ("dir", st.st_mode, st.st_uid)
            else:
                with open(p, "rb") as f:
                    snap[p] = ("file", st.st_mode, st.st_uid, f.read())
    return snap


class Sentinel:
    """A host directory the container must never reach: its tree and the host mounts are checked."""

    def __init__(self, path: Path):
        self.path = path
        path.mkdir()
        (path / "SENTINEL-host-only").write_text("host secret\n")
        self.before = tree_snapshot(path)
        self.mounts = mounts_snapshot(str(path))

    def assert_untouched(self) -> None:
        assert tree_snapshot(self.path) == self.before, "the host sentinel directory was changed"
        assert mounts_snapshot(str(self.path)) == self.mounts, "a mount landed on the host sentinel"


@pytest.fixture
def sentinel(tmp_path: Path) -> Sentinel:
    s = Sentinel(tmp_path / "sentinel")
    yield s
    s.assert_untouched()


def interpreter_hash() -> str:
    """sha256 of the host interpreter pyrunc runs on: the file CVE-2019-5736 would overwrite."""
    with open(os.path.realpath(sys.executable), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(autouse=True)
def interpreter_unchanged():
    before = interpreter_hash()
    yield
    assert interpreter_hash() == before, "the host interpreter binary was modified"


def own_pid_procfs(pid: int, fd: int) -> bool:
    """Is fd of pid a ``subset=pid`` procfs of pid's own pid namespace, process 1 there being
    pid itself? The one procfs handle the waiting init keeps (linux/procfs.py): it shows only
    the container's own processes, nothing its /proc does not."""
    from pyrunc.linux.mount import fstatfs_type

    path = f"/proc/{pid}/fd/{fd}"
    try:
        o = os.open(path, os.O_PATH | os.O_CLOEXEC)
        try:
            if fstatfs_type(o) != 0x9FA0 or os.fstat(o).st_ino != 1:
                return False
        finally:
            os.close(o)
        names = os.listdir(path)
        with open(f"{path}/1/stat") as f:
            theirs = f.read().rsplit(")", 1)[1].split()[19]
        with open(f"/proc/{pid}/stat") as f:
            ours = f.read().rsplit(")", 1)[1].split()[19]
    except OSError:
        return False
    return theirs == ours and all(n.isdigit() or n in ("self", "thread-self") for n in names)


def second_bundle(bundle: Bundle, path: Path, args: list[str]) -> Bundle:
    """A copy of `bundle` with its own cgroupsPath (two containers must not share one)."""
    b = bundle.clone(path)
    b.config["linux"]["cgroupsPath"] = bundle.config["linux"]["cgroupsPath"] + "-b"
    b.config["process"]["args"] = args
    b.write()
    return b


def without_dev_mount(bundle: Bundle) -> None:
    """Use the image's own /dev (no tmpfs): the setup the /dev attacks need."""
    bundle.config["mounts"] = [m for m in bundle.config["mounts"]
                               if not m["destination"].startswith("/dev")]
