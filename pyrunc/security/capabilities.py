"""Capability names, the plan built from `process.capabilities`, and applying it.

Order matters and is the init's job: ``drop_bounding`` needs CAP_SETPCAP, so
it runs while we are still fully privileged; the uid switch happens with
keepcaps set; ``apply_sets`` then installs exactly the configured
effective/permitted/inheritable sets and raises the ambient ones.

One exception, for a seccomp filter loaded without noNewPrivileges (which
needs CAP_SYS_ADMIN at the load, and the load must be the last call before
execve): CAP_SYS_ADMIN stays in the permitted set (``apply_sets(...,
also_permitted=...)``) and is raised in the effective set just before the
load (``raise_effective``). It never reaches the program: execve computes the
new permitted and effective sets from the bounding, inheritable and ambient
sets (and file capabilities) only, never from the old permitted set.
"""

from __future__ import annotations

from .. import linux

NAMES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)
NUMBERS = {"CAP_" + n: i for i, n in enumerate(NAMES)}
CAP_SYS_ADMIN = NUMBERS["CAP_SYS_ADMIN"]
SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")


def last_cap() -> int:
    """The highest capability the running kernel knows."""
    try:
        with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
            return int(f.read())
    except OSError:
        return len(NAMES) - 1


class CapPlan:
    """The five sets as bit masks; ``unknown`` lists names skipped with a warning."""

    def __init__(self, caps: dict, last: int):
        self.last = last
        self.unknown: list[str] = []
        self.masks: dict[str, int] = {}
        for which in SETS:
            mask = 0
            for name in caps.get(which) or []:
                num = NUMBERS.get(name)
                if num is None or num > last:
                    # runtime-spec 1.3: a capability unknown to the kernel is a warning, not an error.
                    if name not in self.unknown:
                        self.unknown.append(name)
                    continue
                mask |= 1 << num
            self.masks[which] = mask


    def restrict(self, held: int) -> list[str]:
        """Drop what cannot be granted, returning one warning per dropped capability.

        A capability we do not hold ourselves cannot be given (capset fails for all),
        and an ambient one needs to be permitted and inheritable too (runc ignores such
        ambient entries likewise): both become warnings rather than a failed start.
        """
        warnings = []
        for which in SETS:
            lost = self.masks[which] & ~held
            if lost:
                warnings += [f"{which} capability {name_of(c)} is not held by the runtime: skipped"
                             for c in bits(lost)]
                self.masks[which] &= held
        amb = self.masks["ambient"]
        ok = amb & self.masks["permitted"] & self.masks["inheritable"]
        warnings += [f"ambient capability {name_of(c)} is not also permitted and inheritable: skipped"
                     for c in bits(amb & ~ok)]
        self.masks["ambient"] = ok
        return warnings


def bits(mask: int) -> list[int]:
    return [c for c in range(mask.bit_length()) if mask & (1 << c)]


def name_of(cap: int) -> str:
    return "CAP_" + NAMES[cap] if cap < len(NAMES) else f"capability {cap}"


def held_bounding() -> int:
    """Our own bounding set (CapBnd): nothing outside it can reach a container."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapBnd:"):
                return int(line.split()[1], 16)
    return (1 << (last_cap() + 1)) - 1


def plan(caps: dict | None) -> CapPlan | None:
    return None if caps is None else CapPlan(caps, last_cap())


def drop_bounding(p: CapPlan) -> None:
    keep = p.masks["bounding"]
    for cap in range(p.last + 1):
        if not keep & (1 << cap):
            linux.capbset_drop(cap)


def apply_sets(p: CapPlan, also_permitted: int = 0) -> None:
    """The configured sets; ``also_permitted`` keeps more in the permitted set until execve."""
    linux.capset(p.masks["effective"], p.masks["permitted"] | also_permitted, p.masks["inheritable"])
    linux.cap_ambient_clear()
    amb = p.masks["ambient"]
    for cap in range(p.last + 1):
        if amb & (1 << cap):
            linux.cap_ambient_raise(cap)


def raise_effective(mask: int) -> None:
    """Add permitted capabilities to the effective set (the other sets unchanged)."""
    eff, prm, inh = linux.capget()
    if eff & mask != mask:
        linux.capset(eff | mask, prm, inh)
