"""cgroup v2 driver: a single directory in the unified hierarchy.

v2 only lets a cgroup use a controller its parent enabled in
``cgroup.subtree_control``, so ``create`` enables every available controller on
the way down (runc's fs2 driver does the same). Values given in v1 units
(cpu shares, blkio weight, memory+swap) are converted by ``resources``.
"""

from __future__ import annotations

import errno
import os
import time

from pyrunc.cgroups import base
from pyrunc.cgroups.base import FsManager, read_file, write_file
from pyrunc.errors import CREATE_CGROUP, SET_RESOURCES, CgroupError

KEY = "unified"


class V2Manager(FsManager):
    """Manager for a pure cgroup v2 host (also the unified part of a hybrid one)."""

    driver = "v2"

    @property
    def _dir(self) -> str:
        d = self._paths.get(KEY)
        if d is None:  # rootless without a delegated subtree: create() dropped it
            raise self._err("rootless, and the container has no cgroup (none it may write to: "
                            "cgroup v2 needs a subtree delegated to this user)", "cgroup")
        return d

    # ----- creation ----------------------------------------------------------------------------
    def create(self) -> None:
        """mkdir the cgroup, enabling the controllers in each ancestor's subtree_control."""
        mountpoint = self._mountpoints.get(KEY, "").rstrip("/")
        super().create()
        if not mountpoint or KEY not in self._paths:
            return
        parent = mountpoint
        for part in self._dir[len(mountpoint):].strip("/").split("/")[:-1]:
            self._enable_controllers(parent)
            parent = parent + "/" + part
        if self._dir != mountpoint:
            self._enable_controllers(parent)

    def _enable_controllers(self, directory: str) -> None:
        """Enable in ``directory`` every controller it has that is not yet enabled.

        Writing them all at once is one syscall; if the kernel refuses (a
        controller may be unavailable, e.g. cpuset busy or rt tasks blocking
        cpu), each one is tried alone and refusals are ignored: set() reports a
        clear error later if a refused controller is actually needed.
        """
        try:
            available = read_file(directory, "cgroup.controllers").split()
            enabled = set(read_file(directory, "cgroup.subtree_control").split())
        except OSError as e:
            raise self._err(f"reading the controllers of {directory}: {e.strerror}", CREATE_CGROUP,
                            e.errno) from e
        wanted = [c for c in available if c not in enabled]
        if not wanted:
            return
        try:
            write_file(directory, "cgroup.subtree_control", " ".join("+" + c for c in wanted),
                       step=CREATE_CGROUP, container=self.container_id)
            return
        except CgroupError:
            pass  # fall back to one controller at a time
        for c in wanted:
            try:
                write_file(directory, "cgroup.subtree_control", "+" + c,
                           step=CREATE_CGROUP, container=self.container_id)
            except CgroupError:
                continue

    # ----- processes ---------------------------------------------------------------------------
    def _primary(self) -> str:
        return self._dir

    def _freeze_point(self) -> tuple[str, str, str] | None:
        """Asked to freeze (cgroup.freeze), not frozen by the kernel: a frozen parent is not our
        pause."""
        d = self._paths.get(KEY)
        return (d, "cgroup.freeze", "1") if d else None

    def freeze(self) -> None:
        """Write 1 to cgroup.freeze and wait until cgroup.events says ``frozen 1``."""
        self._set_frozen(True)

    def thaw(self) -> None:
        self._set_frozen(False)

    def _set_frozen(self, frozen: bool) -> None:
        step = "freeze" if frozen else "thaw"
        d = self._dir
        if not os.path.exists(d + "/cgroup.freeze"):
            if not os.path.isdir(d):
                raise self._err(f"cgroup {d} does not exist", step)
            raise self._err("the kernel has no cgroup v2 freezer (cgroup.freeze, Linux >= 5.2)", step)
        write_file(d, "cgroup.freeze", "1" if frozen else "0", step=step, container=self.container_id)
        want = "frozen 1" if frozen else "frozen 0"
        deadline = time.monotonic() + base.FREEZE_TIMEOUT_SECONDS
        delay = 0.0005
        while True:
            try:
                events = read_file(d, "cgroup.events")
            except OSError:
                return  # no events file: nothing to wait on
            if want in events.splitlines():
                return
            if time.monotonic() >= deadline:
                if frozen:
                    write_file(d, "cgroup.freeze", "0", step=step, container=self.container_id)
                raise self._err(f"timed out waiting for {d} to become {want}", step)
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def signal_all(self, sig: int) -> None:
        """SIGKILL goes through cgroup.kill (Linux >= 5.14): atomic, no freeze needed."""
        if sig == 9 and os.path.exists(self._dir + "/cgroup.kill"):
            write_file(self._dir, "cgroup.kill", "1", step="kill", container=self.container_id)
            return
        super().signal_all(sig)

    def stats(self) -> dict:
        from pyrunc.cgroups.stats import v2_stats

        return v2_stats(self._dir)

    def oom_watcher(self):
        from pyrunc.cgroups.stats import OomWatcher

        return OomWatcher(memory_events=self._paths.get(KEY))

    # ----- resources ---------------------------------------------------------------------------
    def set(self, resources: dict) -> None:
        """Apply OCI ``linux.resources`` (v1-style values converted); validated before writing."""
        ops = self._ops(resources)
        if ops is None:
            return
        for name, val in ops:
            write_file(self._dir, name, val, step=SET_RESOURCES, container=self.container_id)
        devices = resources.get("devices")
        if devices is not None:
            from pyrunc.cgroups import devices_bpf

            try:
                devices_bpf.apply(self._dir, devices, container=self.container_id)
            except CgroupError as e:
                # Rootless: no CAP_SYS_ADMIN for bpf(2); the cgroup is unfiltered, as with runc.
                if not (self.rootless and e.errno in (errno.EPERM, errno.EACCES)):
                    raise

    def _ops(self, resources: dict) -> list[tuple[str, str]] | None:
        """The file writes ``set`` makes, in order, all validated first (what ``plan`` shows too);
        None for a rootless container without a cgroup, which may only ask for no limits."""
        from pyrunc.cgroups import resources as res

        res.check_keys(resources)
        if KEY not in self._paths:  # rootless without a cgroup: only "no limits" is possible
            wanted = [k for k, v in resources.items() if v and k != "devices"]
            if wanted:
                raise self._err(res.rootless_refusal([], keys=wanted), SET_RESOURCES)
            return None
        ops: list[tuple[str, str]] = []
        ops += self._memory(resources.get("memory") or {})
        ops += self._cpu(resources.get("cpu") or {})
        value = res.pids_max((resources.get("pids") or {}).get("limit"))
        if value:
            ops.append(("pids.max", value))
        ops += self._io(resources.get("blockIO") or {})
        for entry in resources.get("hugepageLimits") or []:
            size = res.check_page_size(entry.get("pageSize"))
            ops.append((f"hugetlb.{size}.max", str(int(entry["limit"]))))
            if os.path.exists(f"{self._probe(self._dir)}/hugetlb.{size}.rsvd.max"):
                ops.append((f"hugetlb.{size}.rsvd.max", str(int(entry["limit"]))))
        for device, limits in (resources.get("rdma") or {}).items():
            ops.append(("rdma.max", res.rdma_line(device, limits or {})))
        net = resources.get("network") or {}
        if net.get("classID") is not None or net.get("priorities"):
            raise self._err("linux.resources.network (net_cls/net_prio) has no cgroup v2 equivalent",
                            SET_RESOURCES)
        # linux.resources.devices: v2 has no devices files; access is enforced by an eBPF
        # program attached to the cgroup (devices_bpf). Rules are checked here, before any
        # write, and the program is installed after the limits, as runc does.
        devices = resources.get("devices")
        if devices is not None:
            from pyrunc.cgroups import devices_bpf

            devices_bpf.effective_rules(devices)
        for key, val in (resources.get("unified") or {}).items():
            res.unified_key(key)
            ops.append((key, str(val)))
        self._check_controllers([name for name, _ in ops])
        return ops

    def _controllers(self, directory: str) -> set[str]:
        """The controllers ``directory`` has (its cgroup.controllers); while planning one still to
        be made, those of its nearest existing ancestor: ``create`` enables all of them on the way
        down."""
        return set(read_file(self._existing(directory), "cgroup.controllers").split())

    def _check_controllers(self, names: list[str]) -> None:
        """Fail clearly when a file belongs to a controller not enabled for this cgroup."""
        try:
            available = self._controllers(self._dir)
        except OSError as e:
            raise self._err(f"reading the controllers of {self._dir}: {e.strerror}", SET_RESOURCES,
                            e.errno) from e
        for name in names:
            ctrl = name.split(".", 1)[0]
            if ctrl != "cgroup" and ctrl not in available:
                raise self._err(f"cannot write {name}: the {ctrl} controller is not available in "
                                f"{self._dir} (cgroup.controllers: {' '.join(sorted(available)) or 'empty'})",
                                SET_RESOURCES)

    # ----- planning ----------------------------------------------------------------------------
    def _resource_writes(self, resources: dict) -> list[tuple[str, str, str]]:
        return [(self._dir, name, value) for name, value in self._ops(resources) or []]

    def _plan_extra(self, resources: dict) -> dict:
        """The device program ``set`` attaches (cgroup v2 has no devices files)."""
        devices = resources.get("devices")
        if devices is None or KEY not in self._paths:
            return {}
        from pyrunc.cgroups import devices_bpf

        default_allow, rules = devices_bpf.effective_rules(devices)
        return {"device_program": {"attach": self._dir, "default": "allow" if default_allow else "deny",
                                   "rules": [devices_bpf.describe(r) for r in rules]}}

    def _plan_create(self, new_dirs: list[str]) -> list[list[str]]:
        """The controllers ``create`` enables in each ancestor's cgroup.subtree_control."""
        mountpoint = self._mountpoints.get(KEY, "").rstrip("/")
        if not mountpoint or KEY not in self._paths:
            return []
        writes: list[list[str]] = []
        parent, available = mountpoint, None
        chain: list[str] = []
        for part in self._dir[len(mountpoint):].strip("/").split("/")[:-1]:
            chain.append(parent)
            parent = parent + "/" + part
        if self._dir != mountpoint:
            chain.append(parent)
        for d in chain:
            try:
                if d in new_dirs:
                    have, enabled = list(available or ()), set()
                else:
                    have = read_file(d, "cgroup.controllers").split()
                    enabled = set(read_file(d, "cgroup.subtree_control").split())
            except OSError:
                continue
            wanted = [c for c in have if c not in enabled]
            if wanted:
                writes.append([d + "/cgroup.subtree_control", " ".join("+" + c for c in wanted),
                               CREATE_CGROUP])
            available = have
        return writes

    def _memory(self, mem: dict) -> list[tuple[str, str]]:
        from pyrunc.cgroups import resources as res

        ops: list[tuple[str, str]] = []
        limit = mem.get("limit") or 0
        swap = res.memory_swap_to_v2(mem.get("swap") or 0, limit)
        if limit > 0 and mem.get("checkBeforeUpdate") and not self._fresh(self._dir):
            try:
                current = int(read_file(self._dir, "memory.current"))
            except (OSError, ValueError):
                current = 0
            if limit < current:
                raise self._err(f"memory limit {limit} is below current usage {current}", SET_RESOURCES)
        # swap before memory.max, as runc does: a lower swap.max never conflicts.
        if swap:
            ops.append(("memory.swap.max", res.limit_str(swap)))
        if limit:
            ops.append(("memory.max", res.limit_str(limit)))
        if mem.get("reservation"):
            ops.append(("memory.low", res.limit_str(mem["reservation"])))
        # kernel, kernelTCP, swappiness, disableOOMKiller and useHierarchy have no v2 file and
        # are ignored, as runc 1.1 does.
        return ops

    def _cpu(self, cpu: dict) -> list[tuple[str, str]]:
        from pyrunc.cgroups import resources as res

        if cpu.get("realtimePeriod") or cpu.get("realtimeRuntime"):
            raise self._err("realtime cpu settings (realtimePeriod/realtimeRuntime) are not supported "
                            "on cgroup v2", SET_RESOURCES)
        ops: list[tuple[str, str]] = []
        if cpu.get("shares"):
            ops.append(("cpu.weight", str(res.cpu_shares_to_weight(cpu["shares"]))))
        line = res.cpu_max(cpu.get("quota"), cpu.get("period"))
        if line:
            ops.append(("cpu.max", line))
        if cpu.get("burst") is not None:
            ops.append(("cpu.max.burst", str(cpu["burst"])))
        if cpu.get("idle") is not None:
            ops.append(("cpu.idle", str(cpu["idle"])))
        if cpu.get("cpus"):
            ops.append(("cpuset.cpus", cpu["cpus"]))
        if cpu.get("mems"):
            ops.append(("cpuset.mems", cpu["mems"]))
        return ops

    def _io(self, bio: dict) -> list[tuple[str, str]]:
        """blockIO -> io.bfq.weight (same 10..1000 scale) when BFQ is there, else io.weight."""
        from pyrunc.cgroups import resources as res

        if bio.get("leafWeight") or any(e.get("leafWeight") for e in bio.get("weightDevice") or []):
            raise self._err("blockIO leafWeight is not supported on cgroup v2", SET_RESOURCES)
        ops: list[tuple[str, str]] = []
        bfq = os.path.exists(self._probe(self._dir) + "/io.bfq.weight")
        if bio.get("weight"):
            w = bio["weight"]
            ops.append(("io.bfq.weight", str(w)) if bfq
                       else ("io.weight", f"default {res.blkio_weight_to_io_weight(w)}"))
        for entry in bio.get("weightDevice") or []:
            if entry.get("weight"):
                dev = res.device_numbers(entry, "weightDevice")
                w = entry["weight"]
                ops.append(("io.bfq.weight", f"{dev} {w}") if bfq
                           else ("io.weight", f"{dev} {res.blkio_weight_to_io_weight(w)}"))
        for key, _, io_key in res.THROTTLES:
            for entry in bio.get(key) or []:
                ops.append(("io.max", f"{res.device_numbers(entry, key)} {io_key}={int(entry.get('rate', 0))}"))
        return ops
