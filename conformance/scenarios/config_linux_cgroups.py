"""config-linux.md control groups: cgroupsPath, resources (memory, cpu, blockIO, pids, devices), unified."""

from __future__ import annotations

from pathlib import Path

from ..harness import CGROUP_ROOT, Ctx, Fail, Skip, add, cgroup_dir, scenario

CG = "config-linux.md"


def _v1_controllers(pid: int) -> dict[str, str]:
    res = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        for c in ctrls.split(","):
            if c in ("memory", "pids", "cpu", "cpuset", "blkio", "devices", "freezer"):
                res[c] = path
    return res


@scenario("cgroups-path-relative", f"{CG}#cgroups-path", "MUST")
def _(ctx: Ctx) -> None:
    """A relative cgroupsPath places the container in a cgroup of that name in every controller it uses."""
    pid = ctx.created()
    paths = _v1_controllers(pid)
    bad = {c: p for c, p in paths.items() if not p.endswith("/" + ctx.cgroup)}
    ctx.check(paths and not bad, f"not under {ctx.cgroup}: {bad or paths}")


@scenario("cgroups-path-absolute", f"{CG}#cgroups-path", "MUST")
def _(ctx: Ctx) -> None:
    """An absolute cgroupsPath MUST be taken relative to the cgroups mount point."""
    ctx.linux["cgroupsPath"] = "/" + ctx.cgroup
    pid = ctx.created()
    paths = _v1_controllers(pid)
    bad = {c: p for c, p in paths.items() if p != "/" + ctx.cgroup}
    ctx.check(paths and not bad, f"not at /{ctx.cgroup}: {bad}")


@scenario("cgroups-path-consistent", f"{CG}#cgroups-path", "MUST")
def _(ctx: Ctx) -> None:
    """Given the same cgroupsPath the runtime MUST attach to the same place each time."""
    pid = ctx.created("c1")
    first = _v1_controllers(pid)
    ctx.succeed(ctx.cmd("delete", "--force", "c1"), "delete")
    pid2 = ctx.created("c2")
    ctx.check(_v1_controllers(pid2) == first, f"{first} then {_v1_controllers(pid2)}")


@scenario("ns-cgroup-isolated-view", f"{CG}#namespaces", "MUST")
def _(ctx: Ctx) -> None:
    """With a cgroup namespace the container has an isolated view: its own cgroups appear as '/'."""
    out = ctx.probe("cat /proc/self/cgroup")
    paths = [line.split(":", 2)[2] for line in out.splitlines() if line]
    ctx.check(paths and all(p == "/" for p in paths), f"container sees {paths}")


def _resource(name: str, anchor: str, resources: dict, controller: str, file: str, want: str,
              level: str = "MUST", title: str = "") -> None:
    def fn(ctx: Ctx) -> None:
        if not (CGROUP_ROOT / controller).is_dir():
            raise Skip(f"this host has no {controller} hierarchy")
        for key, val in resources.items():
            ctx.linux["resources"][key] = val
        pid = ctx.created()
        d = cgroup_dir(pid, controller)
        if d is None:
            raise Fail(f"the container is not in a {controller} cgroup")
        if not (d / file).exists():  # the kernel's controller lacks this knob: nothing to judge
            raise Skip(f"this host's {controller} controller has no {file}")
        try:
            got = (d / file).read_text().strip()
        except OSError as e:
            raise Fail(f"{d / file}: {e.strerror}") from None
        ok = want(got) if callable(want) else got == want
        ctx.check(ok, f"{file} = {got!r}, want {want if not callable(want) else 'see judge'}")

    add(name, f"{CG}#{anchor}", level, title or f"{file} reflects linux.resources ({controller})", fn)


MiB = 1 << 20
_resource("memory-limit", "memory", {"memory": {"limit": 64 * MiB}}, "memory", "memory.limit_in_bytes",
          str(64 * MiB))
_resource("memory-limit-unlimited", "memory", {"memory": {"limit": -1}}, "memory", "memory.limit_in_bytes",
          lambda v: int(v) >= 1 << 62, title="memory.limit -1 means unlimited")
_resource("memory-reservation", "memory", {"memory": {"limit": 64 * MiB, "reservation": 32 * MiB}}, "memory",
          "memory.soft_limit_in_bytes", str(32 * MiB))
_resource("memory-swap", "memory", {"memory": {"limit": 64 * MiB, "swap": 96 * MiB}}, "memory",
          "memory.memsw.limit_in_bytes", str(96 * MiB))
_resource("memory-swappiness", "memory", {"memory": {"swappiness": 37}}, "memory", "memory.swappiness", "37")
_resource("memory-disable-oom-killer", "memory", {"memory": {"disableOOMKiller": True}}, "memory",
          "memory.oom_control", lambda v: "oom_kill_disable 1" in v)
_resource("memory-kernel-tcp", "memory", {"memory": {"kernelTCP": 16 * MiB}}, "memory",
          "memory.kmem.tcp.limit_in_bytes", str(16 * MiB), level="MAY",
          title="kernelTCP (NOT RECOMMENDED) sets the kernel TCP buffer limit")
_resource("cpu-shares", "cpu", {"cpu": {"shares": 512}}, "cpu", "cpu.shares", "512")
_resource("cpu-quota", "cpu", {"cpu": {"quota": 50000, "period": 100000}}, "cpu", "cpu.cfs_quota_us", "50000")
_resource("cpu-period", "cpu", {"cpu": {"quota": 20000, "period": 40000}}, "cpu", "cpu.cfs_period_us", "40000")
_resource("cpu-burst", "cpu", {"cpu": {"quota": 50000, "period": 100000, "burst": 10000}}, "cpu",
          "cpu.cfs_burst_us", "10000")
_resource("cpu-realtime-period", "cpu", {"cpu": {"realtimePeriod": 500000}}, "cpu", "cpu.rt_period_us",
          "500000")
_resource("cpu-realtime-runtime", "cpu", {"cpu": {"realtimeRuntime": 1000, "realtimePeriod": 1000000}}, "cpu",
          "cpu.rt_runtime_us", "1000")
_resource("cpu-idle", "cpu", {"cpu": {"idle": 1}}, "cpu", "cpu.idle", "1")
_resource("cpu-cpus", "cpu", {"cpu": {"cpus": "0"}}, "cpuset", "cpuset.cpus", "0")
_resource("cpu-mems", "cpu", {"cpu": {"mems": "0"}}, "cpuset", "cpuset.mems", "0")
_resource("pids-limit", "pids", {"pids": {"limit": 42}}, "pids", "pids.max", "42")
_resource("pids-limit-unlimited", "pids", {"pids": {"limit": -1}}, "pids", "pids.max", "max",
          title="pids.limit -1 means no limit (max)")
# runc 1.4+ writes 1 for 0 (systemd has no TasksMax=0, and both of its drivers must agree); for a
# container whose init is already inside, 0 and 1 forbid the same forks. Both count as a limit.
_resource("pids-limit-zero", "pids", {"pids": {"limit": 0}}, "pids", "pids.max", lambda v: v in ("0", "1"),
          level="SHOULD", title="pids.limit 0 is a valid limit and SHOULD be treated as such")


def _block_device() -> tuple[int, int] | None:
    for line in Path("/proc/partitions").read_text().splitlines()[2:]:
        f = line.split()
        if len(f) == 4 and not f[3][-1].isdigit():
            return int(f[0]), int(f[1])
    return None


_DEV = _block_device()
if _DEV:
    _maj, _min = _DEV
    for _key, _file, _rate in (("throttleReadBpsDevice", "read_bps_device", 1048576),
                               ("throttleWriteBpsDevice", "write_bps_device", 2097152),
                               ("throttleReadIOPSDevice", "read_iops_device", 300),
                               ("throttleWriteIOPSDevice", "write_iops_device", 200)):
        _resource(f"blkio-{_key}", "block-io", {"blockIO": {_key: [{"major": _maj, "minor": _min, "rate": _rate}]}},
                  "blkio", f"blkio.throttle.{_file}", f"{_maj}:{_min} {_rate}")


# -- device allow list ---------------------------------------------------------------------------------

DAL = f"{CG}#allowed-device-list"
KMSG = {"path": "/dev/conf-kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o666}


@scenario("device-cgroup-allow-entry", DAL, "MUST")
def _(ctx: Ctx) -> None:
    """An allow entry appears in the container's device cgroup list."""
    ctx.linux["resources"]["devices"].append({"allow": True, "type": "c", "major": 10, "minor": 237,
                                              "access": "rw"})
    pid = ctx.created()
    d = cgroup_dir(pid, "devices")
    if d is None:
        raise Skip("no v1 devices controller")
    lines = (d / "devices.list").read_text().split("\n")
    ctx.check("c 10:237 rw" in lines, f"devices.list: {lines}")


@scenario("device-cgroup-deny-blocks-access", DAL, "MUST")
def _(ctx: Ctx) -> None:
    """Under deny-all, a device node without an allow entry cannot be opened (EPERM)."""
    ctx.linux["devices"] = [KMSG]
    out = ctx.probe("(printf '' > /dev/conf-kmsg) 2>&1 && echo opened || echo denied")
    ctx.check(out.strip().endswith("denied"), f"a denied device was opened: {out!r}")


@scenario("device-cgroup-allow-grants-access", DAL, "MUST")
def _(ctx: Ctx) -> None:
    """An allow entry after deny-all grants exactly that access (write to c 1:11 works)."""
    ctx.linux["devices"] = [KMSG]
    ctx.linux["resources"]["devices"].append({"allow": True, "type": "c", "major": 1, "minor": 11,
                                              "access": "w"})
    out = ctx.probe("(printf '' > /dev/conf-kmsg) 2>&1 && echo opened || echo denied")
    ctx.check(out.strip().endswith("opened"), f"an allowed device was denied: {out!r}")


@scenario("device-cgroup-listed-order", DAL, "MUST")
def _(ctx: Ctx) -> None:
    """Entries MUST be applied in the listed order: a later deny-all overrides an earlier allow."""
    ctx.linux["devices"] = [KMSG]
    ctx.linux["resources"]["devices"] = [{"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"},
                                         {"allow": False, "access": "rwm"}]
    out = ctx.probe("(printf '' > /dev/conf-kmsg) 2>&1 && echo opened || echo denied")
    ctx.check(out.strip().endswith("denied"), f"the later deny-all was not applied last: {out!r}")


@scenario("unified-missing-controller-errors", f"{CG}#unified", "MUST")
def _(ctx: Ctx) -> None:
    """unified naming a controller that is not present MUST generate an error."""
    unified = CGROUP_ROOT / "unified"
    ctrl_file = unified / "cgroup.controllers" if unified.is_dir() else CGROUP_ROOT / "cgroup.controllers"
    present = ctrl_file.read_text().split() if ctrl_file.exists() else []
    if "misc" in present:
        raise Skip("the misc controller is present on this host")
    ctx.linux["resources"]["unified"] = {"misc.max": "res_a 1"}
    ctx.expect_nothing_created(ctx.cmd("create", "c1"), "c1", "the misc controller is not available")
