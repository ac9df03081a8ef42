"""Shared fixtures: a busybox rootfs, bundles built from it, and runtimes to drive.

Integration tests run real containers as root. Each test gets private state
roots for pyrunc and runc, and every container left at the end is deleted
with --force, so a failing test leaves nothing behind.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The team's shared data (oracles, upstream spec): beside the checkout; PYRUNC_SHARED overrides it
# (a git worktree lives elsewhere). Tests that need it skip with a reason when it is absent.
SHARED = Path(os.environ.get("PYRUNC_SHARED") or REPO.parent / "shared")
# runc 1.5.1, the second oracle (issue 22): what current Docker/containerd/Kubernetes ship.
RUNC15 = SHARED / "oracle" / "bin" / "runc-1.5.1"
PYRUNC = str(REPO / ".venv" / "bin" / "pyrunc")
# The Python script the `pyrunc` command runs (for `python -X importtime`): the C launcher, an
# ELF where gcc built it, execs this script; without it the command is the script itself.
_LAUNCHER_SCRIPT = REPO / ".venv" / "bin" / "pyrunc-launcher.py"
PYRUNC_SCRIPT = str(_LAUNCHER_SCRIPT) if _LAUNCHER_SCRIPT.exists() else PYRUNC
RUNC = shutil.which("runc") or "/usr/sbin/runc"
BUSYBOX = shutil.which("busybox") or "/bin/busybox"

sys.path.insert(0, str(REPO))
from pyrunc.testing.busybox import build_rootfs  # noqa: E402

_serial = itertools.count()


@pytest.fixture(scope="session")
def rootfs_template(tmp_path_factory) -> Path:
    if not os.path.exists(BUSYBOX):
        pytest.skip("busybox-static is not installed")
    return build_rootfs(tmp_path_factory.mktemp("template") / "rootfs")


def base_config(args: list[str]) -> dict:
    """Our `pyrunc spec` default with terminal off and the given args."""
    from pyrunc.cli.spec import default_config

    cfg = default_config(False)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = args
    cfg["root"]["readonly"] = False
    return cfg


class Bundle:
    """A bundle directory whose config can be edited before each run."""

    def __init__(self, path: Path, config: dict):
        self.path = path
        self.config = config

    @property
    def rootfs(self) -> Path:
        return self.path / "rootfs"

    def write(self) -> None:
        (self.path / "config.json").write_text(json.dumps(self.config, indent=1))

    def clone(self, path: Path) -> Bundle:
        shutil.copytree(self.path, path, symlinks=True)
        return Bundle(path, copy.deepcopy(self.config))


@pytest.fixture
def bundle(tmp_path, rootfs_template) -> Bundle:
    """A fresh bundle; its own relative cgroupsPath keeps tests and runtimes from colliding."""
    cfg = base_config(["true"])
    cfg["linux"]["cgroupsPath"] = f"pyrunc-test-{os.getpid()}-{next(_serial)}"
    b = Bundle(tmp_path / "bundle", cfg)
    b.path.mkdir()
    shutil.copytree(rootfs_template, b.rootfs, symlinks=True)
    b.write()
    return b


class Runtime:
    """One runtime binary with a private --root; remembers ids to clean up."""

    def __init__(self, binary: str, root: Path, name: str):
        self.binary = binary
        self.root = root
        self.name = name
        self.ids: set[str] = set()

    def cmd(self, *args: str, log: str | None = None, log_format: str | None = None) -> list[str]:
        glob = ["--root", str(self.root)]
        if log:
            glob += ["--log", log]
        if log_format:
            glob += ["--log-format", log_format]
        return [self.binary, *glob, *args]

    def __call__(self, *args: str, bundle: Bundle | None = None, timeout: float = 60,
                 log: str | None = None, log_format: str | None = None, check: bool = False,
                 stdin=subprocess.DEVNULL, **kw) -> subprocess.CompletedProcess:
        if bundle is not None:
            bundle.write()
        for a in args[1:]:
            if args[0] in ("create", "run") and not a.startswith("-"):
                self.ids.add(a)
        proc = run_to_files(self.cmd(*args, log=log, log_format=log_format), timeout=timeout,
                            stdin=stdin, cwd=str(bundle.path) if bundle else kw.pop("cwd", None), **kw)
        if check and proc.returncode != 0:
            raise AssertionError(f"{self.name} {' '.join(args)} failed ({proc.returncode}): "
                                 f"{proc.stderr.strip()}")
        return proc

    def state(self, cid: str) -> dict:
        return json.loads(self("state", cid, check=True).stdout)

    def cleanup(self) -> None:
        for cid in self.ids:
            subprocess.run(self.cmd("delete", "--force", cid), capture_output=True, timeout=30)


def run_to_files(cmd: list[str], *, timeout: float, stdin=subprocess.DEVNULL, input: str | None = None,
                 **kw) -> subprocess.CompletedProcess:
    """Run with stdout/stderr in files, not pipes.

    A detached container inherits the runtime's stdio (pass-through), so with
    pipes the test would wait for EOF until the container exits.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        if input is not None:
            p = subprocess.run(cmd, stdout=out, stderr=err, input=input, timeout=timeout, text=True, **kw)
        else:
            p = subprocess.run(cmd, stdout=out, stderr=err, stdin=stdin, timeout=timeout, text=True, **kw)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(cmd, p.returncode, out.read(), err.read())


def _runtime(binary: str, tmp_path: Path, name: str):
    rt = Runtime(binary, tmp_path / f"{name}-root", name)
    yield rt
    rt.cleanup()


@pytest.fixture
def pyrunc(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    yield from _runtime(PYRUNC, tmp_path, "pyrunc")


@pytest.fixture
def runc(tmp_path):
    if not os.path.exists(RUNC):
        pytest.skip("runc is not installed")
    yield from _runtime(RUNC, tmp_path, "runc")


@pytest.fixture
def runc15(tmp_path):
    """runc 1.5.1 from ../shared/oracle (skips with the reason where it is absent)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if not RUNC15.exists():
        pytest.skip(f"runc 1.5.1 oracle not present ({RUNC15})")
    yield from _runtime(str(RUNC15), tmp_path, "runc-1.5.1")


@pytest.fixture(params=["pyrunc", "runc-1.5.1"])
def runtime15(request, tmp_path):
    """pyrunc and runc 1.5.1, for differential tests of behaviour runc changed after 1.1."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    binary = PYRUNC if request.param == "pyrunc" else str(RUNC15)
    if not os.path.exists(binary):
        pytest.skip(f"{request.param} not present ({binary})")
    yield from _runtime(binary, tmp_path, request.param)


@pytest.fixture(params=["pyrunc", "runc"])
def runtime(request, tmp_path):
    """Both runtimes, for differential tests: same bundle, same expectations."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    binary = PYRUNC if request.param == "pyrunc" else RUNC
    if not os.path.exists(binary):
        pytest.skip(f"{request.param} is not installed")
    yield from _runtime(binary, tmp_path, request.param)


def mounts_snapshot(under: str | None = None) -> list[str]:
    """Host mount table (mount point and options), optionally only mounts mentioning `under`."""
    with open("/proc/self/mountinfo") as f:
        lines = sorted(line.split(" ", 4)[4] for line in f)
    return [line for line in lines if under is None or under in line]


def _dev_null_identity() -> tuple:
    st = os.stat("/dev/null")
    return (st.st_ino, st.st_mode, st.st_rdev, st.st_uid, st.st_gid)


@pytest.fixture(autouse=True)
def host_dev_null_untouched():
    """The host's /dev/null must come out of every test exactly as it went in.

    A runtime that follows a rootfs symlink out of the container (or chowns
    stdio) changes it; this catches the test that did it.
    """
    before = _dev_null_identity()
    yield
    after = _dev_null_identity()
    assert after == before, f"host /dev/null changed: {before} -> {after}"
