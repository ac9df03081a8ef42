"""A rootfs without a bundle, resource limits, a timeout, and check=True.

    sudo .venv/bin/python examples/limits_and_timeout.py ROOTFS

ROOTFS is a root filesystem directory (a busybox one is enough). The config is the one
`pyrunc spec` writes, pointing at ROOTFS.
"""

import sys

import pyrunc

rootfs = sys.argv[1] if len(sys.argv) > 1 else "bundle/rootfs"

# Limits: memory in bytes or runc's size syntax, pids, CPUs' worth of time.
result = pyrunc.run(rootfs=rootfs, args=["sh", "-c", "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null"
                                         " || cat /sys/fs/cgroup/pids.max"],
                    memory="64m", pids=16, cpus=0.5, capture=True, text=True)
print("pids.max inside:", result.stdout.strip())  # 16

# A timeout kills the container, deletes it, and raises TimeoutExpired with the output so far.
try:
    pyrunc.run(rootfs=rootfs, args=["sh", "-c", "echo working; sleep 60"], timeout=1, capture=True)
except pyrunc.TimeoutExpired as e:
    print("timed out:", e.container, e.stdout)  # timed out: pyrunc-... b'working\n'

# check=True turns a status other than 0 into ProcessFailed.
try:
    pyrunc.run(rootfs=rootfs, args=["false"], check=True)
except pyrunc.ProcessFailed as e:
    print("failed with status", e.returncode)  # failed with status 1
