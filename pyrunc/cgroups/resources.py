"""Pure conversions from OCI ``linux.resources`` values to cgroup file contents.

Nothing here touches the filesystem, so every rule can be unit-tested (and
property-tested) on its own. Where cgroup v1 and v2 use different scales the
conversion follows runc 1.5.1 (the oracle since issue 22); where runc 1.1 differed,
that is stated next to the formula.
"""

from __future__ import annotations

from pyrunc.errors import CgroupError

# Range limits of the kernel interfaces, used for clamping and validation.
CPU_SHARES_MIN, CPU_SHARES_MAX = 2, 262144
CPU_WEIGHT_MIN, CPU_WEIGHT_MAX = 1, 10000
BLKIO_WEIGHT_MIN, BLKIO_WEIGHT_MAX = 10, 1000
IO_WEIGHT_MIN, IO_WEIGHT_MAX = 1, 10000


def cpu_shares_to_weight(shares: int) -> int:
    """v1 ``cpu.shares`` (2..262144) -> v2 ``cpu.weight`` (1..10000), as runc 1.3.2+ and crun 1.23 do.

    With ``l = log2(shares)``: ``weight = ceil(10 ** ((l*l + 125*l) / 612 - 7/34))``, a quadratic in
    log2 that passes through (2, 1), (1024, 100) and (262144, 10000), so the v1 default share count
    becomes v2's default weight (runc 1.1's linear mapping gave 39 and starved every converted
    container against native v2 ones). 0 means "not set" and stays 0. Measured in the v2 guest with
    runc 1.5.1: 100 -> 17, 512 -> 59, 1024 -> 100, 2048 -> 174, 10000 -> 627
    (tests/unit/test_cgroups_resources.py). ``cpu_shares_to_weight_linear`` keeps runc 1.1's formula.
    """
    import math  # only needed here; keeps the hot import path lean

    if shares == 0:
        return 0
    if shares <= CPU_SHARES_MIN:
        return CPU_WEIGHT_MIN
    if shares >= CPU_SHARES_MAX:
        return CPU_WEIGHT_MAX
    lg = math.log2(shares)
    return min(CPU_WEIGHT_MAX, math.ceil(10 ** ((lg * lg + 125 * lg) / 612.0 - 7.0 / 34.0)))


def cpu_shares_to_weight_linear(shares: int) -> int:
    """runc 1.1's linear mapping ``1 + ((shares - 2) * 9999) // 262142`` (1024 -> 39), for comparison."""
    if shares == 0:
        return 0
    shares = min(max(shares, CPU_SHARES_MIN), CPU_SHARES_MAX)
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight: int) -> int:
    """v1 ``blkio.weight`` (10..1000) -> v2 ``io.weight`` (1..10000), linear as in runc.

    Formula: ``1 + ((weight - 10) * 9999) // 990``; 0 means "not set" and stays 0.
    """
    if weight == 0:
        return 0
    weight = min(max(weight, BLKIO_WEIGHT_MIN), BLKIO_WEIGHT_MAX)
    return 1 + ((weight - 10) * 9999) // 990


def memory_swap_to_v2(swap: int, limit: int) -> int:
    """OCI ``memory.swap`` (memory+swap, the v1 ``memsw`` meaning) -> v2 ``memory.swap.max``.

    v2 limits swap alone, so the value is ``swap - limit``. Special cases, as in
    runc: unlimited memory with swap unset means "swap unlimited too" (-1);
    -1 stays "max"; 0 stays "not set". A swap limit needs a positive memory
    limit, and memory+swap below memory is impossible: both are errors.
    Returns -1 for "max", 0 for "leave alone", else the byte count. With unlimited memory a swap
    value is swap alone (runc 1.2.1+: there is no memory limit to subtract).
    """
    if limit == -1 and swap == 0:
        return -1
    if swap in (-1, 0):
        return swap
    if limit == -1:
        return swap
    if limit == 0:
        raise CgroupError("unable to set a swap limit without a memory limit", step="set cgroup resources")
    if limit < 0:
        raise CgroupError(f"invalid memory limit: {limit}", step="set cgroup resources")
    if swap < limit:
        raise CgroupError("memory+swap limit should be >= memory limit", step="set cgroup resources")
    return swap - limit


def limit_str(value: int) -> str:
    """A byte or count limit for a v2 ``*.max`` file: negative means ``max``."""
    return "max" if value < 0 else str(value)


def v1_limit_str(value: int) -> str:
    """A v1 ``*limit_in_bytes`` value: -1 is the kernel's own word for unlimited."""
    return "-1" if value < 0 else str(value)


def cpu_max(quota: int | None, period: int | None) -> str | None:
    """Build the v2 ``cpu.max`` line ``"$QUOTA $PERIOD"`` or ``None`` when neither is set.

    A quota that is missing, 0 or negative means ``max`` (unlimited); a missing
    period is left out so the kernel keeps the current one (runc does the same).
    """
    quota = quota or 0
    period = period or 0
    if quota == 0 and period == 0:
        return None
    text = str(quota) if quota > 0 else "max"
    if period:
        text += f" {period}"
    return text


def pids_max(limit: int | None) -> str | None:
    """``pids.max`` contents for an OCI ``pids.limit``: ``None`` (absent) leaves the file alone.

    Runtime-spec 1.3: 0 is a real limit. runc 1.4+ writes ``1`` for it, because systemd cannot
    express ``TasksMax=0`` and both drivers must agree; for a container whose init is already
    inside, 0 and 1 behave the same (no process can fork). Measured with runc 1.5.1 on v1 and v2.
    Negative means ``max``. (runc 1.1 treated 0 as unset.)
    """
    if limit is None:
        return None
    if limit == 0:
        return "1"
    return "max" if limit < 0 else str(limit)


def device_rule(entry: dict) -> tuple[str, str]:
    """One OCI device-cgroup entry -> (``"devices.allow"``/``"devices.deny"``, rule line).

    Unset type is ``a``, unset major/minor are ``*``, unset access is ``rwm``.
    """
    dev_type = entry.get("type") or "a"
    if dev_type not in ("a", "b", "c"):
        raise CgroupError(f"invalid device type {dev_type!r} in linux.resources.devices",
                          step="set cgroup resources")
    access = entry.get("access") or "rwm"
    if not access or any(ch not in "rwm" for ch in access):
        raise CgroupError(f"invalid device access {access!r} in linux.resources.devices",
                          step="set cgroup resources")
    major = entry.get("major")
    minor = entry.get("minor")
    major_s = "*" if major is None or major < 0 else str(major)
    minor_s = "*" if minor is None or minor < 0 else str(minor)
    target = "devices.allow" if entry.get("allow") else "devices.deny"
    return target, f"{dev_type} {major_s}:{minor_s} {access}"


def device_numbers(entry: dict, what: str) -> str:
    """``"MAJOR:MINOR"`` of a blockIO device entry; both numbers are required."""
    try:
        return f"{int(entry['major'])}:{int(entry['minor'])}"
    except (KeyError, TypeError, ValueError) as e:
        raise CgroupError(f"linux.resources.blockIO.{what}: entry needs major and minor",
                          step="set cgroup resources") from e


def check_page_size(size: str) -> str:
    """Validate an OCI hugepage ``pageSize`` (``2MB``, ``1GB``, ``64KB``) for use in a file name."""
    if (not isinstance(size, str) or len(size) < 3 or not size.endswith("B")
            or size[-2] not in "KMGT" or not size[:-2].isdigit()):
        raise CgroupError(f"invalid hugepage size {size!r}", step="set cgroup resources")
    return size


# Keys the OCI spec defines in each ``linux.resources`` section; anything else is
# rejected instead of being silently dropped.
KNOWN_KEYS = {
    "": frozenset({"devices", "memory", "cpu", "blockIO", "hugepageLimits", "network", "pids",
                   "rdma", "unified"}),
    "memory": frozenset({"limit", "reservation", "swap", "kernel", "kernelTCP", "swappiness",
                         "disableOOMKiller", "useHierarchy", "checkBeforeUpdate"}),
    "cpu": frozenset({"shares", "quota", "burst", "period", "realtimeRuntime", "realtimePeriod",
                      "cpus", "mems", "idle"}),
    "blockIO": frozenset({"weight", "leafWeight", "weightDevice", "throttleReadBpsDevice",
                          "throttleWriteBpsDevice", "throttleReadIOPSDevice", "throttleWriteIOPSDevice"}),
    "pids": frozenset({"limit"}),
    "network": frozenset({"classID", "priorities"}),
}

# blockIO throttle key -> (v1 file, v2 io.max key)
THROTTLES = (
    ("throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rbps"),
    ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "wbps"),
    ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "riops"),
    ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", "wiops"),
)


def check_keys(resources: dict) -> None:
    """Reject unknown keys anywhere in ``linux.resources`` before anything is written."""
    if not isinstance(resources, dict):
        raise CgroupError("linux.resources must be an object", step="set cgroup resources")
    for key, value in resources.items():
        if key not in KNOWN_KEYS[""]:
            raise CgroupError(f"unsupported cgroup resource linux.resources.{key}", step="set cgroup resources")
        allowed = KNOWN_KEYS.get(key)
        if allowed is not None and isinstance(value, dict):
            for sub in value:
                if sub not in allowed:
                    raise CgroupError(f"unsupported cgroup resource linux.resources.{key}.{sub}",
                                      step="set cgroup resources")


# Which linux.resources key writes to which controller's cgroup (v1 names; "unified" is v2).
RESOURCE_OF = {"memory": "memory", "cpu": "cpu", "cpuacct": "cpu", "cpuset": "cpu",
               "pids": "pids", "blkio": "blockIO", "io": "blockIO", "net_cls": "network",
               "net_prio": "network", "rdma": "rdma", "hugetlb": "hugepageLimits",
               "unified": "unified", "devices": "devices"}


def rootless_refusal(controllers: list[str], *, keys: list[str] | None = None) -> str:
    """runc's refusal in our words: a rootless container asked for a limit it has no cgroup for
    (named by v1 controller, or by linux.resources key when there is no cgroup at all)."""
    if keys is not None:
        wanted = ", ".join(f"linux.resources.{k}" for k in sorted(keys))
    else:
        wanted = ", ".join(sorted({f"linux.resources.{RESOURCE_OF.get(c, c)} ({c} controller)"
                                   for c in controllers}))
    return (f"cannot set {wanted}: rootless, and the container could not create or join a "
            "cgroup it may write to (needs cgroup v2 with a subtree delegated to this user; "
            "or drop the limit)")


def rdma_line(device: str, limits: dict) -> str:
    """``rdma.max`` line for one device: only the given limits are named."""
    parts = [device]
    if limits.get("hcaHandles") is not None:
        parts.append(f"hca_handle={int(limits['hcaHandles'])}")
    if limits.get("hcaObjects") is not None:
        parts.append(f"hca_object={int(limits['hcaObjects'])}")
    if len(parts) == 1:
        raise CgroupError(f"linux.resources.rdma.{device}: needs hcaHandles or hcaObjects",
                          step="set cgroup resources")
    return " ".join(parts)


def unified_key(key: str) -> str:
    """Validate a ``linux.resources.unified`` key and return its controller name.

    A key must be a plain file name ``CONTROLLER.FILE``: no slashes (it must not
    escape the container cgroup) and no leading dot.
    """
    if not key or "/" in key or key.startswith(".") or "." not in key or key in (".", ".."):
        raise CgroupError(f"invalid linux.resources.unified key {key!r}", step="set cgroup resources")
    return key.split(".", 1)[0]


# Device rules runc 1.1 appends after the config's own linux.resources.devices when it
# sets up a v1 devices cgroup (mknod of anything; rw on the standard /dev nodes, ptys and
# tun). The manager does not add them by itself: the caller decides (see the report on
# default-device handling), and passes the merged list to set().
DEFAULT_ALLOWED_DEVICES: tuple[dict, ...] = (
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},    # /dev/null
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},    # /dev/random
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},    # /dev/full
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},    # /dev/tty
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},    # /dev/zero
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},    # /dev/urandom
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},              # /dev/pts/*
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},    # /dev/ptmx
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},  # /dev/net/tun
)


# Sections of linux.resources that `update` merges key by key; the others are merged per entry.
_MERGED_BY_KEY = ("memory", "cpu", "blockIO", "pids", "network", "unified", "rdma")
# blockIO lists whose entries are per device: `update` merges them by major:minor (runc 1.3.3+).
_PER_DEVICE = ("weightDevice", "throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice",
               "throttleWriteIOPSDevice")


def merge_devices(old: list, patch: list) -> list:
    """Merge per-device blockIO entries by ``(major, minor)``: a patch entry updates the recorded
    entry of its device (only the keys it names), a new device is appended, the rest stay.

    runc 1.5.1 does the same on ``update -r`` (measured: create with 254:0, update with 253:0 keeps
    both; a rate of 0 stays recorded and makes the kernel drop the device's line); runc 1.1 ignored
    blockIO in ``update`` altogether.
    """
    import copy

    merged = [dict(e) for e in old or [] if isinstance(e, dict)]
    index = {(e.get("major"), e.get("minor")): i for i, e in enumerate(merged)}
    for entry in patch or []:
        if not isinstance(entry, dict):
            continue
        key = (entry.get("major"), entry.get("minor"))
        if key in index:
            merged[index[key]].update(copy.deepcopy(entry))
        else:
            index[key] = len(merged)
            merged.append(copy.deepcopy(entry))
    return merged


def merge_resources(old: dict, patch: dict) -> tuple[dict, list[str]]:
    """Merge an ``update`` patch into recorded ``linux.resources``; return (merged, touched sections).

    Object sections are merged key by key (a patch naming only ``memory.limit``
    keeps the recorded swap and reservation), ``null`` values are treated as
    absent, ``hugepageLimits`` entries replace the entry with the same
    ``pageSize``, and the per-device blockIO lists are merged by major:minor
    (``merge_devices``). ``devices`` is not merged or touched: update never changes
    device rules (see ``Container.update``). Neither input is modified.
    """
    import copy

    merged = copy.deepcopy(old or {})
    touched: list[str] = []
    for key, value in (patch or {}).items():
        if value is None or key == "devices":
            continue
        if key in _MERGED_BY_KEY and isinstance(value, dict):
            section = dict(merged.get(key) or {})
            for sub, v in value.items():
                if v is None:
                    continue
                if key == "blockIO" and sub in _PER_DEVICE and isinstance(v, list):
                    section[sub] = merge_devices(section.get(sub) or [], v)
                else:
                    section[sub] = copy.deepcopy(v)
            merged[key] = section
        elif key == "hugepageLimits" and isinstance(value, list):
            by_size = {e.get("pageSize"): e for e in merged.get(key) or [] if isinstance(e, dict)}
            for entry in value:
                by_size[entry.get("pageSize")] = dict(entry)
            merged[key] = list(by_size.values())
        else:
            merged[key] = copy.deepcopy(value)
        touched.append(key)
    return merged, touched
