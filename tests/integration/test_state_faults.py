"""Faults of the state directory's filesystem and of the fd limit (issue 24): a full `--root`
(blocks or inodes), an unwritable one, and every fd limit a `create` can meet on its way give one
line naming the container, the step and the cause, exit 1, and leave nothing behind (no state
directory, cgroup, mount or process). Before, a full state filesystem printed
``internal error: OSError: [Errno 28] No space left on device``.

The roots are small tmpfs instances mounted for the test (and unmounted after); EDQUOT takes the
same paths as ENOSPC (tests/unit/test_creation.py injects it).
"""

from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PYRUNC, Runtime, mounts_snapshot, run_to_files
from tests.integration.test_bad_input import cgroup_dirs_named

pytestmark = pytest.mark.root


@pytest.fixture
def tmpfs_root(tmp_path):
    """Mount a tmpfs with the given options at a fresh directory; a Runtime whose --root is in it."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    mounted: list[Path] = []

    def make(options: str) -> Runtime:
        point = tmp_path / f"fs{len(mounted)}"
        point.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], check=True)
        mounted.append(point)
        return Runtime(PYRUNC, point / "state", "pyrunc")

    yield make
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def fill(directory: Path) -> None:
    """Use up every block and then every inode of the filesystem holding ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    try:
        with open(directory / "ballast", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:
        pass
    n = 0
    try:
        while True:
            (directory / f"i{n}").mkdir()
            n += 1
    except OSError:
        pass


def left_behind(rt: Runtime, cid: str, bundle) -> list[str]:
    found = []
    if (rt.root / cid).exists():
        found.append(f"state directory {rt.root / cid}")
    if cgroup_dirs_named(bundle.config["linux"]["cgroupsPath"]):
        found.append("cgroup (and whatever runs in it)")
    return found


def one_line(p, cid: str, step: str, cause: str) -> None:
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert len(lines) == 1 and "Traceback" not in p.stderr and "internal error" not in p.stderr, p.stderr
    assert lines[0].startswith(f"container {cid}: {step}: "), lines[0]
    assert lines[0].endswith(cause), lines[0]


def test_full_state_filesystem_names_the_step(tmpfs_root, bundle):
    """Blocks gone: the state file's write fails (save state); inodes gone too: the id's
    directory cannot be made (reserve state directory)."""
    before = mounts_snapshot(str(bundle.path))
    rt = tmpfs_root("size=256k")
    # A first container fits: the root works at all.
    assert rt("create", "fits", bundle=bundle).returncode == 0
    assert rt("delete", "--force", "fits").returncode == 0
    fill(rt.root / ".ballast")
    # No block left, inodes left: the directory and the fifo are made, the record is not.
    (rt.root / ".ballast" / "i0").rmdir()
    (rt.root / ".ballast" / "i1").rmdir()
    (rt.root / ".ballast" / "i2").rmdir()
    p = rt("create", "full1", bundle=bundle)
    one_line(p, "full1", "save state", "No space left on device")
    assert left_behind(rt, "full1", bundle) == []
    fill(rt.root / ".ballast")
    p = rt("create", "full2", bundle=bundle)
    one_line(p, "full2", "reserve state directory", "No space left on device")
    assert left_behind(rt, "full2", bundle) == []
    assert mounts_snapshot(str(bundle.path)) == before


def test_read_only_root_names_the_step(tmpfs_root, bundle):
    rt = tmpfs_root("size=64k,ro")
    p = rt("create", "ro1", bundle=bundle)
    one_line(p, "ro1", "reserve state directory", "Read-only file system")
    assert left_behind(rt, "ro1", bundle) == []


def test_root_under_a_file_names_the_step(pyrunc, bundle, tmp_path):
    (tmp_path / "afile").write_text("")
    rt = Runtime(PYRUNC, tmp_path / "afile" / "state", "pyrunc")
    p = rt("create", "nd1", bundle=bundle)
    one_line(p, "nd1", "reserve state directory", "Not a directory")


def test_every_fd_limit_is_a_named_step_or_works(pyrunc, bundle):
    """`create` under RLIMIT_NOFILE from the lowest the interpreter starts with to one where it
    works: each run either creates the container or fails with one line naming it, the step and
    EMFILE, and leaves nothing."""
    seen_failures = 0
    worked = False
    for limit in range(3, 40):
        cid = f"fd{limit}"
        # Only the soft limit: the init may still raise it to the config's rlimits (1024).
        p = run_to_files(pyrunc.cmd("create", cid), timeout=60, cwd=str(bundle.path),
                         preexec_fn=lambda n=limit: resource.setrlimit(resource.RLIMIT_NOFILE, (n, 4096)))
        pyrunc.ids.add(cid)
        if p.returncode == 0:
            worked = True
            assert pyrunc("delete", "--force", cid).returncode == 0
            break
        lines = p.stderr.strip().splitlines()
        if not lines[0].startswith(f"container {cid}: "):
            # Below what the interpreter needs to load pyrunc: it is not pyrunc that fails.
            assert seen_failures == 0, f"limit {limit}: {p.stderr}"
            continue
        seen_failures += 1
        assert len(lines) == 1 and "internal error" not in p.stderr, f"limit {limit}: {p.stderr}"
        assert "Too many open files" in lines[0], f"limit {limit}: {p.stderr}"
        assert left_behind(pyrunc, cid, bundle) == [], f"limit {limit}"
    assert worked, "no limit up to 40 let create work"
    assert seen_failures > 0, "no limit made pyrunc itself fail: the test proved nothing"
