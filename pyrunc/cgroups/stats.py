"""Resource statistics and OOM notifications of a container cgroup, in runc's ``events`` shapes.

``v1_stats(paths)`` and ``v2_stats(directory)`` read the control files of a container's
cgroup (the drivers' ``Manager.stats`` call the one that fits) and return the ``data`` object
of a runc ``{"type": "stats"}`` event. The shape is
that of runc 1.1's ``types.Stats`` as marshalled by Go: object-valued fields are
always present (``"throttling": {}``), scalar and list fields tagged
``omitempty`` there are left out when zero or empty, so a consumer that decodes
runc's output decodes ours.

Values follow runc's sources of truth: on v1 ``cpuacct`` for cpu time,
``memory.*`` / ``memory.memsw.*`` / ``memory.kmem.*`` for the four memory
entries; on v2 ``cpu.stat`` (usec converted to nsec), ``memory.current`` and
``memory.max``, with the swap entry reported as memory+swap so it means the
same as v1's memsw. An unlimited v2 limit (``max``) is reported as 2^64-1.

``OomWatcher`` turns OOM kills into wake-ups: an eventfd registered through
``cgroup.event_control`` on v1, ``poll`` on ``memory.events`` (kernfs signals
POLLPRI on change) plus its ``oom_kill`` counter on v2.
"""

from __future__ import annotations

import os
import select

from pyrunc.cgroups.base import read_file

UINT64_MAX = (1 << 64) - 1
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _read(directory: str | None, name: str) -> str | None:
    if not directory:
        return None
    try:
        return read_file(directory, name)
    except (OSError, ValueError):
        return None


def _int(directory: str | None, name: str) -> int:
    """An integer control file; ``max`` is 2^64-1, missing or unreadable is 0."""
    text = _read(directory, name)
    if not text:
        return 0
    if text == "max":
        return UINT64_MAX
    try:
        return int(text.split()[0])
    except ValueError:
        return 0


def _flat_keyed(directory: str | None, name: str) -> dict[str, int]:
    """``key value`` lines (memory.stat, cpu.stat, memory.events) as a dict."""
    out: dict[str, int] = {}
    for line in (_read(directory, name) or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return out


def _ints(directory: str | None, name: str) -> list[int]:
    text = _read(directory, name) or ""
    try:
        return [int(x) for x in text.split()]
    except ValueError:
        return []


def _cpu_list(text: str | None) -> list[int]:
    """Expand a kernel cpu list (``0-3,8``) into numbers."""
    out: list[int] = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            out.extend(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            continue
    return out


def _put(d: dict, key: str, value: object) -> None:
    """Go's ``omitempty``: leave zero numbers, empty lists and maps out."""
    if value:
        d[key] = value


def _entry(limit: int, usage: int, max_usage: int, failcnt: int) -> dict:
    """A runc ``MemoryEntry``: limit and failcnt always, usage and max only when non-zero."""
    e: dict = {"limit": limit}
    _put(e, "usage", usage)
    _put(e, "max", max_usage)
    e["failcnt"] = failcnt
    return e


def _cpuset(d: str | None) -> dict:
    out: dict = {}
    if not d:
        return out
    _put(out, "cpus", _cpu_list(_read(d, "cpuset.cpus") or _read(d, "cpuset.cpus.effective")))
    out["cpu_exclusive"] = _int(d, "cpuset.cpu_exclusive")
    _put(out, "mems", _cpu_list(_read(d, "cpuset.mems") or _read(d, "cpuset.mems.effective")))
    for key in ("mem_hardwall", "mem_exclusive", "memory_migrate", "memory_spread_page",
                "memory_spread_slab", "memory_pressure", "sched_load_balance"):
        out[key] = _int(d, f"cpuset.{key}")
    relax = _read(d, "cpuset.sched_relax_domain_level")
    out["sched_relax_domain_level"] = int(relax) if relax and relax.lstrip("-").isdigit() else 0
    return out


def _blkio_lines(d: str | None, name: str) -> list[dict]:
    """v1 ``MAJ:MIN Op value`` lines; the device-less ``Total`` line is dropped."""
    out: list[dict] = []
    for line in (_read(d, name) or "").splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue
        major, _, minor = parts[0].partition(":")
        try:
            entry: dict = {}
            _put(entry, "major", int(major))
            _put(entry, "minor", int(minor))
            _put(entry, "op", parts[1])
            _put(entry, "value", int(parts[2]))
        except ValueError:
            continue
        out.append(entry)
    return out


# runc's blkio keys -> v1 file suffixes, tried with the cfq prefix, then bfq, then throttle.
_BLKIO_KEYS = (
    ("ioServiceBytesRecursive", "io_service_bytes_recursive"),
    ("ioServicedRecursive", "io_serviced_recursive"),
    ("ioQueuedRecursive", "io_queued_recursive"),
    ("ioServiceTimeRecursive", "io_service_time_recursive"),
    ("ioWaitTimeRecursive", "io_wait_time_recursive"),
    ("ioMergedRecursive", "io_merged_recursive"),
    ("ioTimeRecursive", "time_recursive"),
    ("sectorsRecursive", "sectors_recursive"),
)


def _blkio_v1(d: str | None) -> dict:
    out: dict = {}
    if not d:
        return out
    for prefix in ("blkio.", "blkio.bfq."):
        if os.path.exists(f"{d}/{prefix}io_serviced_recursive"):
            for key, suffix in _BLKIO_KEYS:
                _put(out, key, _blkio_lines(d, prefix + suffix))
            return out
    _put(out, "ioServiceBytesRecursive", _blkio_lines(d, "blkio.throttle.io_service_bytes_recursive"))
    _put(out, "ioServicedRecursive", _blkio_lines(d, "blkio.throttle.io_serviced_recursive"))
    return out


def _hugetlb_sizes(d: str, suffix: str) -> list[str]:
    try:
        names = os.listdir(d)
    except OSError:
        return []
    return sorted({n.split(".")[1] for n in names if n.startswith("hugetlb.") and n.endswith(suffix)
                   and n.count(".") == 2})


def _hugetlb_v1(d: str | None) -> dict:
    out: dict = {}
    for size in _hugetlb_sizes(d, ".limit_in_bytes") if d else []:
        e: dict = {}
        _put(e, "usage", _int(d, f"hugetlb.{size}.usage_in_bytes"))
        _put(e, "max", _int(d, f"hugetlb.{size}.max_usage_in_bytes"))
        e["failcnt"] = _int(d, f"hugetlb.{size}.failcnt")
        out[size] = e
    return out


def _hugetlb_v2(d: str | None) -> dict:
    out: dict = {}
    for size in _hugetlb_sizes(d, ".current") if d else []:
        e: dict = {}
        _put(e, "usage", _int(d, f"hugetlb.{size}.current"))
        e["failcnt"] = _flat_keyed(d, f"hugetlb.{size}.events").get("max", 0)
        out[size] = e
    return out


def v1_stats(paths: dict[str, str]) -> dict:
    """A v1 (or hybrid) cgroup: controller -> directory."""
    acct = paths.get("cpuacct") or paths.get("cpu")
    usage: dict = {}
    _put(usage, "total", _int(acct, "cpuacct.usage"))
    _put(usage, "percpu", _ints(acct, "cpuacct.usage_percpu"))
    _put(usage, "percpu_kernel", _ints(acct, "cpuacct.usage_percpu_sys"))
    _put(usage, "percpu_user", _ints(acct, "cpuacct.usage_percpu_user"))
    ticks = _flat_keyed(acct, "cpuacct.stat")
    ns_per_tick = 1_000_000_000 // _CLK_TCK
    usage["kernel"] = ticks.get("system", 0) * ns_per_tick
    usage["user"] = ticks.get("user", 0) * ns_per_tick
    cpu_stat = _flat_keyed(paths.get("cpu"), "cpu.stat")
    throttling: dict = {}
    _put(throttling, "periods", cpu_stat.get("nr_periods", 0))
    _put(throttling, "throttledPeriods", cpu_stat.get("nr_throttled", 0))
    _put(throttling, "throttledTime", cpu_stat.get("throttled_time", 0))

    m = paths.get("memory")
    memory: dict = {}
    raw = _flat_keyed(m, "memory.stat")
    _put(memory, "cache", raw.get("cache", 0))
    for key, prefix in (("usage", "memory."), ("swap", "memory.memsw."), ("kernel", "memory.kmem."),
                        ("kernelTCP", "memory.kmem.tcp.")):
        memory[key] = _entry(_int(m, prefix + "limit_in_bytes"), _int(m, prefix + "usage_in_bytes"),
                             _int(m, prefix + "max_usage_in_bytes"), _int(m, prefix + "failcnt"))
    _put(memory, "raw", raw)

    p = paths.get("pids")
    pids: dict = {}
    _put(pids, "current", _int(p, "pids.current"))
    limit = _read(p, "pids.max")
    _put(pids, "limit", int(limit) if limit and limit.isdigit() else 0)

    hugetlb = _hugetlb_v1(paths.get("hugetlb"))
    if not hugetlb and paths.get("unified"):
        hugetlb = _hugetlb_v2(paths.get("unified"))  # hybrid: hugetlb may live in the v2 tree
    return _event_data({"cpu": {"usage": usage, "throttling": throttling},
                        "cpuset": _cpuset(paths.get("cpuset")), "memory": memory, "pids": pids,
                        "blkio": _blkio_v1(paths.get("blkio")), "hugetlb": hugetlb})


def _io_v2(d: str) -> dict:
    """io.stat (``MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=..``) as runc's two recursive lists."""
    service_bytes: list[dict] = []
    serviced: list[dict] = []
    for line in (_read(d, "io.stat") or "").splitlines():
        parts = line.split()
        if not parts or ":" not in parts[0]:
            continue
        major, _, minor = parts[0].partition(":")
        fields = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        for target, read_key, write_key in ((service_bytes, "rbytes", "wbytes"), (serviced, "rios", "wios")):
            for op, key in (("Read", read_key), ("Write", write_key)):
                entry: dict = {}
                _put(entry, "major", int(major))
                _put(entry, "minor", int(minor))
                entry["op"] = op
                _put(entry, "value", int(fields.get(key, 0)))
                target.append(entry)
    out: dict = {}
    _put(out, "ioServiceBytesRecursive", service_bytes)
    _put(out, "ioServicedRecursive", serviced)
    return out


def v2_stats(d: str) -> dict:
    """A cgroup v2 directory."""
    cpu_stat = _flat_keyed(d, "cpu.stat")
    usage: dict = {}
    _put(usage, "total", cpu_stat.get("usage_usec", 0) * 1000)
    usage["kernel"] = cpu_stat.get("system_usec", 0) * 1000
    usage["user"] = cpu_stat.get("user_usec", 0) * 1000
    throttling: dict = {}
    _put(throttling, "periods", cpu_stat.get("nr_periods", 0))
    _put(throttling, "throttledPeriods", cpu_stat.get("nr_throttled", 0))
    _put(throttling, "throttledTime", cpu_stat.get("throttled_usec", 0) * 1000)

    raw = _flat_keyed(d, "memory.stat")
    events = _flat_keyed(d, "memory.events")
    current = _int(d, "memory.current")
    limit = _int(d, "memory.max")
    swap_current = _int(d, "memory.swap.current")
    swap_max = _int(d, "memory.swap.max")
    memory: dict = {}
    _put(memory, "cache", raw.get("file", 0))
    memory["usage"] = _entry(limit, current, _int(d, "memory.peak"), events.get("max", 0))
    # memory+swap, as v1's memsw: what callers that compare with v1 expect.
    swap_limit = UINT64_MAX if UINT64_MAX in (limit, swap_max) else limit + swap_max
    memory["swap"] = _entry(swap_limit, current + swap_current, 0, 0)
    memory["kernel"] = _entry(0, raw.get("kernel", 0), 0, 0)
    memory["kernelTCP"] = _entry(0, raw.get("sock", 0), 0, 0)
    _put(memory, "raw", raw)

    pids: dict = {}
    _put(pids, "current", _int(d, "pids.current"))
    plimit = _read(d, "pids.max")
    _put(pids, "limit", int(plimit) if plimit and plimit.isdigit() else 0)
    return _event_data({"cpu": {"usage": usage, "throttling": throttling}, "cpuset": _cpuset(d),
                        "memory": memory, "pids": pids, "blkio": _io_v2(d), "hugetlb": _hugetlb_v2(d)})


def _event_data(data: dict) -> dict:
    """What runc's stats always carry besides the cgroup's: no RDT, no network interfaces."""
    data["intel_rdt"] = {}
    data["network_interfaces"] = None
    return data


class OomWatcher:
    """Wakes up on OOM kills in the container's memory cgroup; ``wait`` returns how many happened.

    v1: an eventfd registered with ``cgroup.event_control`` for ``memory.oom_control``
    (the kernel also signals it when the cgroup is removed). v2: ``memory.events``
    polled for POLLPRI, and the ``oom_kill`` counter compared with the last one seen.
    Without a memory cgroup ``wait`` simply sleeps. The drivers' ``Manager.oom_watcher`` pass
    their cgroup2 directory as ``memory_events`` or their v1 memory cgroup as ``oom_control``.
    """

    def __init__(self, *, memory_events: str | None = None, oom_control: str | None = None):
        self._efd = -1
        self._events_fd = -1
        self._oom_kills = 0
        if memory_events:
            try:
                self._events_fd = os.open(f"{memory_events}/memory.events", os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                self._events_fd = -1
            self._oom_kills = self._read_oom_kills()
        elif oom_control:
            self._register_v1(oom_control)

    def _register_v1(self, d: str) -> None:
        try:
            efd = os.eventfd(0, os.EFD_CLOEXEC)
        except (OSError, AttributeError):
            return
        try:
            ofd = os.open(f"{d}/memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            os.close(efd)
            return
        try:
            with open(f"{d}/cgroup.event_control", "w", encoding="ascii") as f:
                f.write(f"{efd} {ofd}")
        except OSError:
            os.close(efd)
            return
        finally:
            os.close(ofd)
        self._efd = efd

    def _read_oom_kills(self) -> int:
        if self._events_fd < 0:
            return 0
        try:
            data = os.pread(self._events_fd, 4096, 0).decode()
        except OSError:
            return self._oom_kills
        for line in data.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def wait(self, timeout: float) -> int:
        """Block up to ``timeout`` seconds; return the number of new OOM kills (0 on timeout)."""
        timeout = max(timeout, 0.0)
        if self._efd >= 0:
            ready, _, _ = select.select([self._efd], [], [], timeout)
            if not ready:
                return 0
            try:
                return int.from_bytes(os.read(self._efd, 8), "little")
            except OSError:
                return 0
        if self._events_fd >= 0:
            poller = select.poll()
            poller.register(self._events_fd, select.POLLPRI | select.POLLERR)
            poller.poll(int(timeout * 1000))
            now = self._read_oom_kills()
            new, self._oom_kills = max(now - self._oom_kills, 0), now
            return new
        select.select([], [], [], timeout)
        return 0

    def close(self) -> None:
        for fd in (self._efd, self._events_fd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._efd = self._events_fd = -1
