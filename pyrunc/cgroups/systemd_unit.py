"""The systemd driver's pure parts: unit naming and OCI resources as unit properties.

Nothing here talks to systemd or touches cgroupfs (except reading
/proc/devices for device group names), so every rule is unit-tested
(tests/unit/test_systemd_unit.py). The rules follow runc 1.1's systemd driver,
the behaviour callers (containerd's shim, podman, kubelet) were written against:

* ``cgroupsPath`` is ``slice:prefix:name``; empty means ``system.slice``,
  prefix ``runc``, name the container id. A ``name`` ending in ``.slice``
  makes the unit a slice (pulled in by ``Wants=`` of the parent slice),
  anything else the scope ``prefix-name.scope`` (placed with ``Slice=``).
* A slice name encodes its ancestors: ``a-b-c.slice`` lives at
  ``/a.slice/a-b.slice/a-b-c.slice``; ``-.slice`` is the root.

Property values are jeepney variants: ``(signature, value)``.
"""

from __future__ import annotations

from pyrunc.cgroups import resources as res
from pyrunc.errors import CgroupError

STEP = "create cgroup"
UINT64_MAX = (1 << 64) - 1  # systemd's "infinity" for limits and USEC_INFINITY
DEFAULT_SLICE = "system.slice"
DEFAULT_PREFIX = "runc"
CPU_QUOTA_PERIOD_DEFAULT = 100000  # the kernel's default cfs period, in us


def parse_cgroups_path(cgroups_path: str | None, container_id: str) -> tuple[str, str, str]:
    """``slice:prefix:name`` -> (slice, prefix, name); empty -> runc's defaults."""
    if not cgroups_path:
        return DEFAULT_SLICE, DEFAULT_PREFIX, container_id
    parts = cgroups_path.split(":")
    if len(parts) != 3:
        raise CgroupError(f'expected cgroupsPath to be of format "slice:prefix:name" for systemd '
                          f'cgroups, got "{cgroups_path}" instead', step=STEP)
    slice_, prefix, name = parts
    if not name:
        raise CgroupError(f'cgroupsPath "{cgroups_path}": the name part is empty', step=STEP)
    for part, what in ((prefix, "prefix"), (name, "name")):
        if "/" in part:
            raise CgroupError(f'cgroupsPath "{cgroups_path}": the {what} may not contain "/"', step=STEP)
    return slice_ or DEFAULT_SLICE, prefix, name


def unit_name(prefix: str, name: str) -> str:
    """A scope ``prefix-name.scope`` unless the name asks for a slice (runc's getUnitName)."""
    if name.endswith(".slice"):
        return name
    return f"{prefix}-{name}.scope"  # an empty prefix gives "-name.scope", as with runc


def expand_slice(slice_: str) -> str:
    """``a-b-c.slice`` -> ``/a.slice/a-b.slice/a-b-c.slice`` (its cgroup path; runc's ExpandSlice)."""
    suffix = ".slice"
    if len(slice_) < len(suffix) or not slice_.endswith(suffix):
        raise CgroupError(f"invalid slice name {slice_!r}: it must end in {suffix}", step=STEP)
    if "/" in slice_:
        raise CgroupError(f"invalid slice name {slice_!r}: it may not contain \"/\"", step=STEP)
    if slice_ == "-.slice":
        return "/"
    stem = slice_[:-len(suffix)]
    path = ""
    prefix = ""
    for component in stem.split("-"):
        if not component:  # "a--b.slice", "-a.slice", "a-.slice"
            raise CgroupError(f"invalid slice name {slice_!r}: empty component between dashes", step=STEP)
        path += f"/{prefix}{component}{suffix}"
        prefix += component + "-"
    return path


def cgroup_path(slice_: str, unit: str) -> str:
    """The unit's cgroup below the cgroup2 mount point."""
    base = expand_slice(slice_)
    return (base.rstrip("/") + "/" + unit) if base != "/" else "/" + unit


def unit_properties(description: str, slice_: str, unit: str, pid: int) -> list:
    """What every container unit gets (runc's set): placement, delegation, accounting, the pid."""
    props: list = [("Description", ("s", description))]
    if unit.endswith(".slice"):
        props.append(("Wants", ("as", [slice_])))
    else:
        props.append(("Slice", ("s", slice_)))
        props.append(("Delegate", ("b", True)))  # the container may manage its own sub-cgroups
    if pid > 0:
        props.append(("PIDs", ("au", [pid])))
    for name in ("MemoryAccounting", "CPUAccounting", "IOAccounting", "TasksAccounting"):
        props.append((name, ("b", True)))
    props.append(("DefaultDependencies", ("b", False)))  # no ordering against shutdown.target etc.
    return props


def _limit(value: int) -> int:
    return UINT64_MAX if value < 0 else value


def cpu_quota_per_sec(quota: int, period: int) -> int:
    """CPUQuotaPerSecUSec for a cfs quota/period, rounded up to whole percent as runc does.

    systemd keeps the quota as a percentage of one CPU: 33333/100000 would become
    33% and a smaller cpu.max than asked. Rounding up to the next 10 ms per
    second keeps the unit's limit at or above the container's own cpu.max.
    """
    if quota <= 0:
        return UINT64_MAX
    period = period or CPU_QUOTA_PERIOD_DEFAULT
    per_sec = quota * 1000000 // period
    if per_sec % 10000:
        per_sec = (per_sec // 10000 + 1) * 10000
    return per_sec


def range_to_bits(text: str, what: str) -> bytes:
    """A cpuset list (``0-3,5``) -> systemd's bitmask bytes, lowest CPU in bit 0 of byte 0."""
    mask = 0
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise CgroupError(f"invalid {what} {text!r}", step="set cgroup resources") from None
        if first < 0 or last < first:
            raise CgroupError(f"invalid {what} {text!r}", step="set cgroup resources")
        for bit in range(first, last + 1):
            mask |= 1 << bit
    if mask == 0:
        return b"\x00"
    return mask.to_bytes((mask.bit_length() + 7) // 8, "little")


def resource_properties(resources: dict, *, devices_file: str = "/proc/devices") -> list:
    """OCI ``linux.resources`` -> the unit properties systemd has for them.

    The same values are also written to the cgroup files afterwards (the v2
    driver), as runc does: systemd's view must agree with the files, or its
    next reload of the unit would put its own values back.
    """
    props: list = []
    if "devices" in resources and resources["devices"] is not None:
        props += device_properties(resources["devices"], devices_file)
    mem = resources.get("memory") or {}
    limit = mem.get("limit") or 0
    if limit:
        props.append(("MemoryMax", ("t", _limit(limit))))
    if mem.get("reservation"):
        props.append(("MemoryLow", ("t", _limit(mem["reservation"]))))
    swap = res.memory_swap_to_v2(mem.get("swap") or 0, limit)
    if swap:
        props.append(("MemorySwapMax", ("t", _limit(swap))))
    cpu = resources.get("cpu") or {}
    if cpu.get("shares"):
        props.append(("CPUWeight", ("t", res.cpu_shares_to_weight(cpu["shares"]))))
    quota, period = cpu.get("quota") or 0, cpu.get("period") or 0
    if period:
        props.append(("CPUQuotaPeriodUSec", ("t", period)))
    if quota or period:
        props.append(("CPUQuotaPerSecUSec", ("t", cpu_quota_per_sec(quota, period))))
    tasks = res.pids_max((resources.get("pids") or {}).get("limit"))  # 0 is TasksMax=1, as runc 1.4+
    if tasks is not None:
        props.append(("TasksMax", ("t", _limit(-1 if tasks == "max" else int(tasks)))))
    if cpu.get("cpus"):
        props.append(("AllowedCPUs", ("ay", range_to_bits(cpu["cpus"], "cpuset cpus"))))
    if cpu.get("mems"):
        props.append(("AllowedMemoryNodes", ("ay", range_to_bits(cpu["mems"], "cpuset mems"))))
    props += io_properties(resources.get("blockIO") or {})
    props += unified_properties(resources.get("unified") or {})
    return props


def io_properties(bio: dict) -> list:
    """blockIO weight and throttles (devices named by their /dev/block/MAJ:MIN link)."""
    props: list = []
    if bio.get("weight"):
        props.append(("IOWeight", ("t", res.blkio_weight_to_io_weight(bio["weight"]))))
    weights = [(f"/dev/block/{res.device_numbers(e, 'weightDevice')}", res.blkio_weight_to_io_weight(e["weight"]))
               for e in bio.get("weightDevice") or [] if e.get("weight")]
    if weights:
        props.append(("IODeviceWeight", ("a(st)", weights)))
    names = {"rbps": "IOReadBandwidthMax", "wbps": "IOWriteBandwidthMax",
             "riops": "IOReadIOPSMax", "wiops": "IOWriteIOPSMax"}
    for key, _, io_key in res.THROTTLES:
        entries = [(f"/dev/block/{res.device_numbers(e, key)}", int(e.get("rate", 0))) for e in bio.get(key) or []]
        if entries:
            props.append((names[io_key], ("a(st)", entries)))
    return props


def unified_properties(unified: dict) -> list:
    """The ``linux.resources.unified`` keys systemd has a property for; the rest go to files only."""
    props: list = []
    for key, value in unified.items():
        text = str(value).strip()
        if key in ("memory.min", "memory.low", "memory.high", "memory.max", "memory.swap.max"):
            name = {"memory.min": "MemoryMin", "memory.low": "MemoryLow", "memory.high": "MemoryHigh",
                    "memory.max": "MemoryMax", "memory.swap.max": "MemorySwapMax"}[key]
            props.append((name, ("t", UINT64_MAX if text == "max" else _int(key, text))))
        elif key == "pids.max":
            props.append(("TasksMax", ("t", UINT64_MAX if text == "max" else _int(key, text))))
        elif key == "cpu.weight":
            props.append(("CPUWeight", ("t", _int(key, text))))
        elif key == "cpu.max":
            fields = text.split()
            quota = -1 if fields[0] == "max" else _int(key, fields[0])
            period = _int(key, fields[1]) if len(fields) > 1 else 0
            if period:
                props.append(("CPUQuotaPeriodUSec", ("t", period)))
            props.append(("CPUQuotaPerSecUSec", ("t", cpu_quota_per_sec(quota, period))))
        elif key in ("cpuset.cpus", "cpuset.mems"):
            name = "AllowedCPUs" if key == "cpuset.cpus" else "AllowedMemoryNodes"
            props.append((name, ("ay", range_to_bits(text, key))))
    return props


def _int(key: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise CgroupError(f"linux.resources.unified.{key}: invalid value {text!r}",
                          step="set cgroup resources") from None


# ----- devices ---------------------------------------------------------------------------------
def _perms(access: str) -> str:
    return "".join(ch for ch in "rwm" if ch in access)


def device_properties(entries: list[dict], devices_file: str = "/proc/devices") -> list:
    """DevicePolicy/DeviceAllow for the OCI device rules.

    systemd only has allow lists, so the rules are reduced to the final set of
    allowed (type, major, minor) -> access, a later deny taking its access away
    from what it covers. A rule set that does not start by denying everything
    is either "allow all" (``DevicePolicy=auto``) or, with denies in it, not
    expressible: systemd then gets the strict empty list and the eBPF program
    pyrunc attaches itself (devices_bpf) carries the real rules - its verdict
    and systemd's must both allow, so systemd's list may be wider, never
    narrower, than the rules. Wildcard-major rules (``c *:5``) have no systemd
    form and are left to that program too (as in runc).
    """
    from pyrunc.cgroups.devices_bpf import effective_rules

    default_allow, rules = effective_rules(entries)
    if default_allow and not any(r.resets and r.allow for r in _rules(entries)):
        default_allow = False  # no "allow all" rule: systemd starts from deny-all, as runc tells it
    strict = [("DevicePolicy", ("s", "strict")), ("DeviceAllow", ("a(ss)", []))]
    if default_allow:
        if any(not r.allow for r in rules):
            return strict
        return [("DevicePolicy", ("s", "auto")), ("DeviceAllow", ("a(ss)", []))]
    allowed: dict[tuple[str, int | None, int | None], str] = {}
    for rule in rules:
        types = {1: ["b"], 2: ["c"]}.get(rule.type, ["b", "c"])
        access = "".join(ch for ch, bit in (("r", 2), ("w", 4), ("m", 1)) if rule.access & bit)
        for t in types:
            key = (t, rule.major, rule.minor)
            if rule.allow:
                allowed[key] = _perms(allowed.get(key, "") + access)
                continue
            for other in list(allowed):
                if other[0] == t and rule.major in (None, other[1]) and rule.minor in (None, other[2]):
                    left = "".join(ch for ch in allowed[other] if ch not in access)
                    if left:
                        allowed[other] = left
                    else:
                        del allowed[other]
    groups = None
    out: list[tuple[str, str]] = []
    for (t, major, minor), access in sorted(allowed.items(), key=lambda kv: (kv[0][0], kv[0][1] or -1,
                                                                           kv[0][2] or -1)):
        kind = "block" if t == "b" else "char"
        if major is None:
            if minor is not None:
                continue  # "*:n": no systemd form
            out.append((f"{kind}-*", access))
        elif minor is None:
            if groups is None:
                groups = device_groups(devices_file)
            group = groups.get((t, major))
            if group:
                out.append((f"{kind}-{group}", access))
        else:
            out.append((f"/dev/{kind}/{major}:{minor}", access))
    return [("DevicePolicy", ("s", "strict")), ("DeviceAllow", ("a(ss)", out))]


def _rules(entries: list[dict]) -> list:
    from pyrunc.cgroups.devices_bpf import Rule

    return [Rule(e) for e in entries]


def device_groups(devices_file: str = "/proc/devices") -> dict[tuple[str, int], str]:
    """(type, major) -> driver name from /proc/devices (systemd's ``char-pts`` style groups)."""
    groups: dict[tuple[str, int], str] = {}
    kind = ""
    try:
        with open(devices_file, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return groups
    for line in lines:
        if line.startswith("Character devices:"):
            kind = "c"
        elif line.startswith("Block devices:"):
            kind = "b"
        else:
            fields = line.split()
            if kind and len(fields) == 2 and fields[0].isdigit():
                groups.setdefault((kind, int(fields[0])), fields[1])
    return groups
