"""A stage's fd sweep and the procfs handle it may have inherited (stages.close_foreign_fds)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

PROGRAM = r"""
import os, sys, types
sys.path.insert(0, sys.argv[1])
from pyrunc.linux import procfs
from pyrunc.process import stages

procfs.read("self/stat")  # the caller's way: a host /proc handle opened lazily and kept
r, w = os.pipe()
ctx = types.SimpleNamespace(chan=types.SimpleNamespace(fileno=lambda: r), fifo_fd=w, join_fds=[],
                            fault_fd=None, pidfd_socket=None, preserve_fds=0, source_trees={})
stages.close_foreign_fds(ctx)
# a file the stage opens next takes the lowest free number, the old handle's among them
files = [os.open("/dev/null", os.O_RDONLY) for _ in range(4)]
procfs.prepare()  # what the init does first: must not close any of those
for fd in files:
    os.fstat(fd)
print("kept", procfs.kind())
"""


def test_a_swept_procfs_handle_is_forgotten_not_closed_again():
    """Before the fix, prepare() closed the inherited handle's number, by then another file's
    (the init lost its rootfs fd: EBADF at /proc's mount point)."""
    p = subprocess.run([sys.executable, "-I", "-c", PROGRAM, str(REPO)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0 and p.stdout.startswith("kept "), p.stderr
