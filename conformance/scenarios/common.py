"""Small judges shared by the scenario modules."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ..harness import Ctx, Fail, parse_mountinfo

CAP_NAMES = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
             "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
             "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
             "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
             "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
             "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
             "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
             "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"]


def host_caps() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split()[1], 16)
    return 0


def last_cap() -> int:
    try:
        return int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except OSError:
        return len(CAP_NAMES) - 1


def mount_at(ctx: Ctx, point: str, script_prefix: str = "") -> list[dict]:
    """All mountinfo entries at `point` inside the container, in mount order."""
    out = ctx.probe(f"{script_prefix}cat /proc/self/mountinfo")
    hits = [m for m in parse_mountinfo(out) if m["point"] == point]
    if not hits:
        raise Fail(f"nothing mounted at {point} in the container")
    return hits


def status_field(text: str, key: str) -> str:
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].strip()
    raise Fail(f"no {key} in status output: {text[:200]!r}")


def host_mount(ctx: Ctx, target: Path, fstype: str = "tmpfs", options: str = "") -> None:
    """Mount on the host for a scenario (rbind/recursive options need submounts); undone in cleanup."""
    target.mkdir(parents=True, exist_ok=True)
    cmd = ["mount", "-t", fstype, "-o", options or "size=1m", fstype, str(target)]
    subprocess.run(cmd, check=True, capture_output=True)
    ctx.cleanups.append(lambda: subprocess.run(["umount", "-l", str(target)], capture_output=True))


def netns_of(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/ns/net")
