"""checkpoint/restore on this host, where CRIU cannot run (its kernel check fails), and the bad
input that needs no working CRIU. The working paths are in the guest (tests/vm/test_criu.py).

Every failure is one line naming the container, the step and the cause; CRIU failures name
CRIU's log; the container is left running and nothing is left by a failed restore.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

CRIU = shutil.which("criu")


def criu_refuses_this_kernel() -> str | None:
    """CRIU's own reason for refusing this host, or None when it works here."""
    if not CRIU:
        return None
    p = subprocess.run([CRIU, "check"], capture_output=True, text=True, timeout=60)
    if p.returncode == 0:
        return None
    return (p.stderr or p.stdout).strip() or f"exit {p.returncode}"


REFUSED = criu_refuses_this_kernel()


def one_line(p) -> str:
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert "Traceback" not in p.stderr
    return lines[0]


@pytest.fixture
def running(pyrunc, bundle):
    bundle.config["process"]["args"] = ["sleep", "1000"]
    assert pyrunc("run", "-d", "c1", bundle=bundle).returncode == 0
    return pyrunc


@pytest.mark.skipif(not (CRIU and REFUSED), reason="needs an installed CRIU that refuses this kernel")
def test_checkpoint_fails_clearly_and_the_container_keeps_running(running, tmp_path):
    img = tmp_path / "img"
    pid = running.state("c1")["pid"]
    p = running("checkpoint", "--image-path", str(img), "c1")
    assert p.returncode == 1
    line = one_line(p)
    assert line.startswith("container c1: checkpoint: CRIU dump failed: "), line
    log = img / "dump.log"
    assert f"(CRIU log: {log})" in line
    assert log.exists()
    # CRIU's own reason, as `criu check` gives it
    first = REFUSED.splitlines()[0].split("): ", 1)[-1]
    assert first in line, (first, line)
    st = running.state("c1")
    assert st["status"] == "running" and st["pid"] == pid
    # --leave-running and --pre-dump fail the same way and leave it running too
    p = running("checkpoint", "--pre-dump", "--image-path", str(tmp_path / "pre"), "c1")
    assert p.returncode == 1 and "CRIU" in one_line(p) and "CRIU log: " in p.stderr
    assert running.state("c1")["status"] == "running"


@pytest.mark.skipif(not (CRIU and REFUSED), reason="needs an installed CRIU that refuses this kernel")
def test_restore_fails_clearly_and_leaves_nothing(pyrunc, bundle, tmp_path):
    img = tmp_path / "img"
    img.mkdir()
    (img / "inventory.img").write_bytes(b"\0" * 8)  # looks like a checkpoint; CRIU is the one to say no
    (img / "descriptors.json").write_text(json.dumps(["/dev/null"] * 3))
    bundle.config["linux"]["cgroupsPath"] = "/pyrunc-criu-host-test"
    before = set(os.listdir("/sys/fs/cgroup")) if os.path.isdir("/sys/fs/cgroup") else set()
    p = pyrunc("restore", "-d", "--image-path", str(img), "r1", bundle=bundle)
    assert p.returncode == 1
    line = one_line(p)
    assert line.startswith("container r1: restore: CRIU restore failed: "), line
    assert f"(CRIU log: {img / 'restore.log'})" in line
    assert pyrunc("state", "r1").returncode == 1
    assert not (pyrunc.root / "r1").exists()
    assert not any(Path(d, "pyrunc-criu-host-test").exists() for d in
                   [Path("/sys/fs/cgroup") / c for c in before] + [Path("/sys/fs/cgroup")])


def test_criu_not_installed(running, tmp_path):
    p = running("--criu", str(tmp_path / "no-criu"), "checkpoint", "--image-path", str(tmp_path / "i"), "c1")
    assert p.returncode == 1
    line = one_line(p)
    assert line.startswith("container c1: checkpoint: CRIU is not installed"), line
    assert running.state("c1")["status"] == "running"


def test_restore_bad_input(pyrunc, bundle, tmp_path):
    # a missing image directory
    p = pyrunc("restore", "-d", "--image-path", str(tmp_path / "missing"), "r1", bundle=bundle)
    assert p.returncode == 1
    assert one_line(p) == f"container r1: restore: image directory {tmp_path / 'missing'} does not exist"
    # a directory that holds no checkpoint
    empty = tmp_path / "empty"
    empty.mkdir()
    p = pyrunc("restore", "-d", "--image-path", str(empty), "r1", bundle=bundle)
    assert one_line(p) == f"container r1: restore: image directory {empty} holds no checkpoint (no inventory.img)"
    # a checkpoint without (or with a corrupt) descriptors.json
    (empty / "inventory.img").write_bytes(b"\0")
    p = pyrunc("restore", "-d", "--image-path", str(empty), "r1", bundle=bundle)
    assert "descriptors.json is missing" in one_line(p)
    (empty / "descriptors.json").write_text("{not json")
    p = pyrunc("restore", "-d", "--image-path", str(empty), "r1", bundle=bundle)
    assert "descriptors.json is unreadable" in one_line(p)
    assert not (pyrunc.root / "r1").exists()
    # an id that exists already
    bundle.config["process"]["args"] = ["sleep", "1000"]
    assert pyrunc("run", "-d", "c1", bundle=bundle).returncode == 0
    p = pyrunc("restore", "-d", "--image-path", str(empty), "c1", bundle=bundle)
    assert one_line(p) == "container c1: restore: container with given ID already exists"
    assert pyrunc.state("c1")["status"] == "running"
    # refused options
    p = pyrunc("restore", "-d", "--lazy-pages", "--image-path", str(empty), "r2", bundle=bundle)
    assert "--lazy-pages is not supported" in one_line(p)
    p = pyrunc("restore", "-d", "--manage-cgroups-mode", "bogus", "--image-path", str(empty), "r2",
               bundle=bundle)
    assert one_line(p).startswith("container r2: restore: invalid manage-cgroups-mode value 'bogus'")
    assert not (pyrunc.root / "r2").exists()


def test_checkpoint_bad_input(running, tmp_path, bundle):
    p = running("checkpoint", "--image-path", str(tmp_path / "i"), "nope")
    assert one_line(p) == "container nope: container does not exist"
    p = running("checkpoint", "--lazy-pages", "c1")
    assert one_line(p).startswith("container c1: checkpoint: --lazy-pages is not supported")
    p = running("checkpoint", "--page-server", "nocolon", "--image-path", str(tmp_path / "i"), "c1")
    if CRIU:
        assert "--page-server 'nocolon': expected ADDRESS:PORT" in one_line(p)
    p = running("checkpoint", "--empty-ns", "pid", "c1")
    assert "only 'network' is supported" in one_line(p)
    # a container that is not running
    assert running("create", "c2", bundle=bundle).returncode == 0
    p = running("checkpoint", "--image-path", str(tmp_path / "i"), "c2")
    assert one_line(p) == "container c2: checkpoint: cannot checkpoint a container in the created state"
    assert running.state("c1")["status"] == "running"
