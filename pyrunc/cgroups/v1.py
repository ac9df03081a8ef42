"""cgroup v1 driver: one directory per mounted hierarchy (cpu, memory, freezer, ...).

Placement, cpuset seeding and the order of writes follow runc 1.1's ``fs``
driver, because callers (containerd, podman) look for the cgroups where runc
would have put them.
"""

from __future__ import annotations

import os
import time

from pyrunc.cgroups import base
from pyrunc.cgroups.base import FsManager, read_file, write_file
from pyrunc.errors import CREATE_CGROUP, SET_RESOURCES

# A write planned by set(): (controller, file name, value).
Op = tuple[str, str, str]


class V1Manager(FsManager):
    """Manager for hosts where every controller has its own v1 hierarchy."""

    driver = "v1"

    # ----- creation ----------------------------------------------------------------------------
    def create(self) -> None:
        """mkdir in every hierarchy, then give new cpuset cgroups their parent's cpus/mems.

        A fresh v1 cpuset cgroup has empty ``cpuset.cpus``/``cpuset.mems`` and
        refuses tasks (ENOSPC) until they are filled, so each level below the
        mount point that is still empty inherits its parent's values (as runc).
        """
        super().create()
        cpuset = self._paths.get("cpuset")
        mountpoint = self._mountpoints.get("cpuset")
        if cpuset and mountpoint and os.path.isdir(cpuset):
            self._seed_cpuset(mountpoint.rstrip("/"), cpuset)

    def _seed_cpuset(self, mountpoint: str, leaf: str) -> None:
        parent = mountpoint
        for part in leaf[len(mountpoint):].strip("/").split("/"):
            if not part:
                continue
            current = parent + "/" + part
            for name in ("cpuset.cpus", "cpuset.mems"):
                if not self._read_cpuset(current, name):
                    inherited = self._read_cpuset(parent, name)
                    if inherited:
                        write_file(current, name, inherited, step=CREATE_CGROUP, container=self.container_id)
            parent = current

    def _read_cpuset(self, directory: str, name: str) -> str:
        try:
            return read_file(directory, name)
        except OSError as e:
            raise self._err(f"reading {directory}/{name}: {e.strerror}", CREATE_CGROUP, e.errno) from e

    # ----- processes ---------------------------------------------------------------------------
    def _primary(self) -> str:
        for ctrl in ("freezer", "pids", "memory", "devices"):
            if ctrl in self._paths:
                return self._paths[ctrl]
        return next(iter(self._paths.values()), "")

    def _freeze_point(self) -> tuple[str, str, str] | None:
        d = self._paths.get("freezer")
        return (d, "freezer.state", "FROZEN") if d else None

    def stats(self) -> dict:
        from pyrunc.cgroups.stats import v1_stats

        return v1_stats(self._paths)

    def oom_watcher(self):
        from pyrunc.cgroups.stats import OomWatcher

        return OomWatcher(oom_control=self._paths.get("memory"))

    def _freezer(self) -> str:
        d = self._paths.get("freezer")
        if not d and self.rootless:
            raise self._err("rootless, and the container has no freezer cgroup (none it may write "
                            "to on this host): pausing needs cgroup v2 with a delegated subtree",
                            "freeze")
        if not d:
            raise self._err("the freezer cgroup controller is not mounted", "freeze")
        return d

    def freeze(self) -> None:
        """Write FROZEN and wait until the kernel reports FROZEN (not FREEZING).

        A freeze can stall while a task is in an uninterruptible sleep; the
        write is repeated now and then, and after ``FREEZE_TIMEOUT_SECONDS`` the
        cgroup is thawed again and an error is raised (never leave it half-frozen).
        """
        d = self._freezer()
        deadline = time.monotonic() + base.FREEZE_TIMEOUT_SECONDS
        tries = 0
        while True:
            if tries % 20 == 0:
                write_file(d, "freezer.state", "FROZEN", step="freeze", container=self.container_id)
            tries += 1
            try:
                state = read_file(d, "freezer.state")
            except OSError as e:
                raise self._err(f"reading {d}/freezer.state: {e.strerror}", "freeze") from e
            if state == "FROZEN":
                return
            if time.monotonic() >= deadline:
                self.thaw()
                raise self._err(f"timed out freezing {d} (state {state})", "freeze")
            time.sleep(0.001 if tries < 10 else 0.01)

    def thaw(self) -> None:
        write_file(self._freezer(), "freezer.state", "THAWED", step="thaw", container=self.container_id)

    # ----- resources ---------------------------------------------------------------------------
    def set(self, resources: dict) -> None:
        """Apply OCI ``linux.resources``; everything is validated before the first write."""
        self._run(self._ops(resources))

    def _ops(self, resources: dict) -> list[Op]:
        """The writes ``set`` makes, in order, validated (what ``plan`` shows too)."""
        from pyrunc.cgroups import resources as res

        res.check_keys(resources)
        ops: list[Op] = []
        ops += self._memory(resources.get("memory") or {})
        ops += self._cpu(resources.get("cpu") or {})
        ops += self._pids(resources.get("pids") or {})
        ops += self._blkio(resources.get("blockIO") or {})
        ops += self._network(resources.get("network") or {})
        for device, limits in (resources.get("rdma") or {}).items():
            ops.append(("rdma", "rdma.max", res.rdma_line(device, limits or {})))
        for entry in resources.get("devices") or []:
            target, rule = res.device_rule(entry)
            ops.append(("devices", target, rule))
        ops += self._hugetlb(resources.get("hugepageLimits") or [])
        ops += self._unified(resources.get("unified") or {})
        return ops

    def _checked(self, ops: list[Op]) -> list[Op]:
        """The ops this host can take: rootless drops, and a controller not mounted refused."""
        if self.rootless:
            ops = self._rootless_ops(ops)
        missing = sorted({ctrl for ctrl, _, _ in ops if ctrl not in self._paths})
        if missing:
            raise self._err("linux.resources needs the cgroup controller(s) " + ", ".join(missing)
                            + ", which are not mounted on this host", SET_RESOURCES)
        return ops

    def _run(self, ops: list[Op]) -> None:
        for ctrl, name, value in self._checked(ops):
            write_file(self._paths[ctrl], name, value, step=SET_RESOURCES, container=self.container_id)

    # ----- planning ----------------------------------------------------------------------------
    def _resource_writes(self, resources: dict) -> list[tuple[str, str, str]]:
        return [(self._paths[ctrl], name, value) for ctrl, name, value in self._checked(self._ops(resources))]

    def _plan_create(self, new_dirs: list[str]) -> list[list[str]]:
        """cpuset seeding, as ``_seed_cpuset`` does it: each level still empty gets its parent's
        cpus and mems (a level ``create`` makes is empty)."""
        cpuset = self._paths.get("cpuset")
        mountpoint = (self._mountpoints.get("cpuset") or "").rstrip("/")
        if not cpuset or not mountpoint:
            return []
        writes: list[list[str]] = []
        seen: dict[tuple[str, str], str] = {}

        def value(d: str, name: str) -> str:
            if (d, name) not in seen:
                try:
                    seen[(d, name)] = "" if d in new_dirs else read_file(d, name)
                except OSError:
                    seen[(d, name)] = ""
            return seen[(d, name)]

        parent = mountpoint
        for part in cpuset[len(mountpoint):].strip("/").split("/"):
            if not part:
                continue
            current = parent + "/" + part
            for name in ("cpuset.cpus", "cpuset.mems"):
                if not value(current, name) and value(parent, name):
                    seen[(current, name)] = value(parent, name)
                    writes.append([current + "/" + name, seen[(current, name)], CREATE_CGROUP])
            parent = current
        return writes

    def _rootless_ops(self, ops: list[Op]) -> list[Op]:
        """Rootless, a hierarchy we could not write to was dropped (``_drop_if_rootless``): the
        device rules are skipped there (a user namespace's devices are the host's bind mounts
        anyway, as with runc); any limit aimed at it is refused, naming the resource."""
        from pyrunc.cgroups import resources as res

        ops = [op for op in ops if op[0] != "devices" or "devices" in self._paths]
        missing = sorted({ctrl for ctrl, _, _ in ops if ctrl not in self._paths})
        if missing:
            raise self._err(res.rootless_refusal(missing), SET_RESOURCES)
        return ops

    def _has(self, ctrl: str, name: str) -> bool:
        d = self._paths.get(ctrl)
        return bool(d) and os.path.exists(self._probe(d) + "/" + name)

    def _memory(self, mem: dict) -> list[Op]:
        """memory.* writes; limit and memsw are ordered so the kernel never sees memsw < limit."""
        from pyrunc.cgroups import resources as res

        ops: list[Op] = []
        limit = mem.get("limit") or 0
        swap = mem.get("swap") or 0
        if limit == -1 and swap == 0 and self._has("memory", "memory.memsw.limit_in_bytes"):
            swap = -1  # unlimited memory with swap unset: lift the memsw limit too (runc)
        limit_op = ("memory", "memory.limit_in_bytes", res.v1_limit_str(limit)) if limit else None
        swap_op = None
        if swap:
            if not self._has("memory", "memory.memsw.limit_in_bytes") and "memory" in self._paths:
                if swap != -1:
                    raise self._err("linux.resources.memory.swap is set but swap accounting is not "
                                    "enabled in the kernel (no memory.memsw.limit_in_bytes)", SET_RESOURCES)
            else:
                swap_op = ("memory", "memory.memsw.limit_in_bytes", res.v1_limit_str(swap))
        if limit_op and swap_op:
            # Raising: memsw first (it must stay >= limit); lowering: limit first.
            current = self._read_int("memory", "memory.limit_in_bytes")
            if swap == -1 or (current is not None and current < swap):
                ops += [swap_op, limit_op]
            else:
                ops += [limit_op, swap_op]
        else:
            ops += [op for op in (limit_op, swap_op) if op]
        if mem.get("reservation"):
            ops.append(("memory", "memory.soft_limit_in_bytes", res.v1_limit_str(mem["reservation"])))
        if mem.get("kernelTCP"):
            ops.append(("memory", "memory.kmem.tcp.limit_in_bytes", res.v1_limit_str(mem["kernelTCP"])))
        # "kernel" (kmem) is deprecated and ignored, like runc 1.1; "useHierarchy" is always on in
        # current kernels; "checkBeforeUpdate" is what the v1 kernel does anyway.
        if mem.get("swappiness") is not None:
            sw = mem["swappiness"]
            if not 0 <= sw <= 100:
                raise self._err(f"invalid memory swappiness {sw} (must be 0..100)", SET_RESOURCES)
            ops.append(("memory", "memory.swappiness", str(sw)))
        if mem.get("disableOOMKiller"):
            ops.append(("memory", "memory.oom_control", "1"))
        return ops

    def _read_int(self, ctrl: str, name: str) -> int | None:
        """A control file's current value; None when unreadable, and for a cgroup still to be made
        (its defaults, unlimited, never change the order of the writes)."""
        try:
            if self._fresh(self._paths[ctrl]):
                return None
            return int(read_file(self._paths[ctrl], name))
        except (OSError, KeyError, ValueError):
            return None

    def _cpu(self, cpu: dict) -> list[Op]:
        ops: list[Op] = []
        if cpu.get("shares"):
            ops.append(("cpu", "cpu.shares", str(cpu["shares"])))
        period, quota = cpu.get("period") or 0, cpu.get("quota") or 0
        if period and quota:
            # The kernel checks quota against the current period; shrinking both in the wrong
            # order fails with EINVAL, so write quota first when it gets smaller.
            current = self._read_int("cpu", "cpu.cfs_quota_us")
            if current is not None and 0 < quota < current:
                ops += [("cpu", "cpu.cfs_quota_us", str(quota)), ("cpu", "cpu.cfs_period_us", str(period))]
            else:
                ops += [("cpu", "cpu.cfs_period_us", str(period)), ("cpu", "cpu.cfs_quota_us", str(quota))]
        elif period:
            ops.append(("cpu", "cpu.cfs_period_us", str(period)))
        elif quota:
            ops.append(("cpu", "cpu.cfs_quota_us", str(quota)))
        if cpu.get("burst") is not None:
            ops.append(("cpu", "cpu.cfs_burst_us", str(cpu["burst"])))
        if cpu.get("realtimePeriod"):
            ops.append(("cpu", "cpu.rt_period_us", str(cpu["realtimePeriod"])))
        if cpu.get("realtimeRuntime"):
            ops.append(("cpu", "cpu.rt_runtime_us", str(cpu["realtimeRuntime"])))
        if cpu.get("idle") is not None:
            ops.append(("cpu", "cpu.idle", str(cpu["idle"])))
        if cpu.get("cpus"):
            ops.append(("cpuset", "cpuset.cpus", cpu["cpus"]))
        if cpu.get("mems"):
            ops.append(("cpuset", "cpuset.mems", cpu["mems"]))
        return ops

    def _pids(self, pids: dict) -> list[Op]:
        from pyrunc.cgroups import resources as res

        value = res.pids_max(pids.get("limit"))
        return [("pids", "pids.max", value)] if value else []

    def _blkio(self, bio: dict) -> list[Op]:
        from pyrunc.cgroups import resources as res

        ops: list[Op] = []
        bfq = not self._has("blkio", "blkio.weight") and self._has("blkio", "blkio.bfq.weight")
        if bio.get("weight"):
            ops.append(("blkio", "blkio.bfq.weight" if bfq else "blkio.weight", str(bio["weight"])))
        if bio.get("leafWeight"):
            ops.append(("blkio", "blkio.leaf_weight", str(bio["leafWeight"])))
        for entry in bio.get("weightDevice") or []:
            dev = res.device_numbers(entry, "weightDevice")
            if entry.get("weight"):
                name = "blkio.bfq.weight_device" if bfq else "blkio.weight_device"
                ops.append(("blkio", name, f"{dev} {entry['weight']}"))
            if entry.get("leafWeight"):
                ops.append(("blkio", "blkio.leaf_weight_device", f"{dev} {entry['leafWeight']}"))
        for key, v1_file, _ in res.THROTTLES:
            for entry in bio.get(key) or []:
                ops.append(("blkio", v1_file, f"{res.device_numbers(entry, key)} {int(entry.get('rate', 0))}"))
        return ops

    def _network(self, net: dict) -> list[Op]:
        ops: list[Op] = []
        if net.get("classID") is not None:
            ops.append(("net_cls", "net_cls.classid", str(net["classID"])))
        for prio in net.get("priorities") or []:
            ops.append(("net_prio", "net_prio.ifpriomap", f"{prio['name']} {prio['priority']}"))
        return ops

    def _hugetlb(self, limits: list) -> list[Op]:
        """v1 hugetlb: the limit file, plus the reservation limit when the kernel has one."""
        from pyrunc.cgroups import resources as res

        ops: list[Op] = []
        for entry in limits:
            size = res.check_page_size(entry.get("pageSize"))
            value = str(int(entry["limit"]))
            ops.append(("hugetlb", f"hugetlb.{size}.limit_in_bytes", value))
            if self._has("hugetlb", f"hugetlb.{size}.rsvd.limit_in_bytes"):
                ops.append(("hugetlb", f"hugetlb.{size}.rsvd.limit_in_bytes", value))
        return ops

    def _unified(self, unified: dict) -> list[Op]:
        if unified:
            raise self._err("linux.resources.unified needs cgroup v2, but this host uses cgroup v1",
                            SET_RESOURCES)
        return []
