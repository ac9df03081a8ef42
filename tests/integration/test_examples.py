"""examples/: each script runs, from the venv, as a reader would run it, and says what its
comments say; nothing is left under the default state root, in the mount table or in cgroupfs."""

from __future__ import annotations

import os

import pytest

from tests.conftest import REPO, mounts_snapshot, run_to_files

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

PYTHON = str(REPO / ".venv" / "bin" / "python")
EXAMPLES = REPO / "examples"
STATE = "/run/pyrunc"

# script -> (which path it takes: bundle or rootfs, lines its output must contain)
EXPECTED = {
    "hello.py": ("bundle", ["0 b'hi\\n'", "3 SHOUT"]),
    "limits_and_timeout.py": ("rootfs", ["pids.max inside: 16", "b'working\\n'", "failed with status 1"]),
    "lifecycle.py": ("rootfs", ["created", "running", "hello from pyrunc", "paused", "stats pids.current =",
                                "exit: -9", "gone: "]),
    "errors.py": ("bundle", ["bad config at ['/hostname', '/process/args']", "bad argument: ",
                             "example-missing failed at create: ", "not found: no-such-container"]),
}


def state_ids() -> set[str]:
    return set(os.listdir(STATE)) if os.path.isdir(STATE) else set()


def test_every_example_is_tested():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs(bundle, script):
    takes, lines = EXPECTED[script]
    bundle.config["process"]["terminal"] = False
    bundle.write()
    path = str(bundle.path if takes == "bundle" else bundle.rootfs)
    ids, mounts = state_ids(), mounts_snapshot()
    p = run_to_files([PYTHON, str(EXAMPLES / script), path], timeout=120, cwd=str(bundle.path.parent))
    assert p.returncode == 0, p.stdout + p.stderr
    for line in lines:
        assert line in p.stdout, f"{line!r} not in:\n{p.stdout}{p.stderr}"
    assert state_ids() - ids == set()
    assert mounts_snapshot() == mounts
