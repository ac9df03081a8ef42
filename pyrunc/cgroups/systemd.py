"""systemd cgroup driver (``--systemd-cgroup``): the container's cgroup is a transient unit.

Where systemd is PID 1 it owns the cgroup tree: a runtime that makes its own
directories there fights systemd's reloads and is invisible to ``systemctl``.
So the container gets a transient scope (or slice) unit, started over D-Bus
(sdbus.py), with ``Delegate=yes`` so what happens inside the container's
cgroup is the container's business; its resources become unit properties,
and are also written to the cgroup files by the v2 driver this class extends
(systemd has no property for several of them, and runc does the same).

How the init gets into the unit: systemd makes a scope only around at least
one live process (``PIDs=``; an empty scope is refused), and the unit's
cgroup does not exist before the unit. So the create path's birth placement
(CLONE_INTO_CGROUP into an existing directory) cannot be used for the init:
stage 1 is forked in the caller's cgroup and, once the init's pid is known,
the unit is started with ``PIDs=[init]`` and systemd moves it - what runc
does with its own init. The init is the right pid: it waits for
``cgroup_joined`` before anything the cgroup matters for, and stays alive,
while stage 1 may have exited already. Later processes (``exec``) are
cloned straight into the unit's existing cgroup like with the v2 driver.

Only cgroup v2 hosts are handled; on a v1 or hybrid host ``--systemd-cgroup``
is refused with a clear error before anything is created.
"""

from __future__ import annotations

import os

from pyrunc.cgroups import systemd_unit as su
from pyrunc.cgroups.base import write_file
from pyrunc.cgroups.v2 import KEY, V2Manager
from pyrunc.errors import CgroupError

STEP_CREATE = "create cgroup"
STEP_DESTROY = "destroy cgroup"
STEP_SET = "set cgroup resources"


def create_systemd_manager(cgroups_path: str | None, container_id: str, *, rootless: bool = False,
                           layout=None) -> SystemdManager:
    """Check the host and the path, and build the manager; nothing is created yet."""
    from pyrunc.cgroups import detect

    def fail(cause: str) -> CgroupError:
        return CgroupError(cause, step=STEP_CREATE, container=container_id)

    try:
        slice_, prefix, name = su.parse_cgroups_path(cgroups_path, container_id)
        unit = su.unit_name(prefix, name)
        inner = su.cgroup_path(slice_, unit)
    except CgroupError as e:
        raise fail(e.cause) from None
    if not detect.systemd_running():
        raise fail("systemd cgroup driver requested (--systemd-cgroup) but systemd is not running "
                   "as PID 1 on this host (no /run/systemd/system)")
    if rootless:
        raise fail("the systemd cgroup driver is not supported for rootless containers "
                   "(systemd user instance) yet")
    if layout is None:
        layout = detect.detect()
    if layout.mode != "v2" or layout.unified is None:
        raise fail(f"the systemd cgroup driver is only supported on cgroup v2 hosts; this host's "
                   f"cgroups are {layout.mode}")
    mountpoint = layout.unified.mountpoint
    paths = {KEY: mountpoint.rstrip("/") + inner}
    return SystemdManager(container_id, paths, [], {KEY: mountpoint}, unit=unit, slice_=slice_)


class SystemdManager(V2Manager):
    """A cgroup v2 directory owned by a transient systemd unit."""

    driver = "systemd"

    def __init__(self, container_id: str, paths: dict[str, str], created: list[str] | None = None,
                 mountpoints: dict[str, str] | None = None, *, unit: str = "", slice_: str = ""):
        super().__init__(container_id, paths, created, mountpoints)
        self.unit = unit
        self.slice = slice_
        self._bus = None
        self._started = False  # this instance started the unit (create)
        self._props_given = False  # the unit was started with the resources as properties

    def save(self) -> dict:
        saved = super().save()
        saved["unit"] = self.unit
        saved["slice"] = self.slice
        return saved

    def _systemd(self, step: str):
        if self._bus is None:
            from pyrunc.cgroups.sdbus import Systemd

            try:
                self._bus = Systemd(step)
            except CgroupError as e:
                e.container = self.container_id
                raise
        return self._bus

    def close(self) -> None:
        if self._bus is not None:
            self._bus.close()
            self._bus = None

    # ----- creation ----------------------------------------------------------------------------
    def create(self) -> None:
        """Nothing is made before the init exists (see the module docstring); connecting now
        makes an unreachable systemd fail the create before anything was forked."""
        self._systemd(STEP_CREATE)
        self._made = True

    def exists(self) -> bool:
        """A create whose unit never started has no cgroup, whatever a directory of that name
        holds: it is another container's (a unit that already existed), never to be signalled."""
        return not (self._made and not self._started) and super().exists()

    def can_place_at_birth(self) -> bool:
        """Only into a unit that already exists (``exec``), never during create."""
        return not (self._made and not self._started) and os.path.isdir(self._dir)

    def apply(self, pid: int, resources: dict | None = None) -> None:
        """create: start the unit around ``pid``; afterwards: join its cgroup directly."""
        if self._made and not self._started:
            self._start_unit(pid, resources)
            return
        write_file(self._dir, "cgroup.procs", str(pid), step="apply cgroup", container=self.container_id)

    def _start_unit(self, pid: int, resources: dict | None) -> None:
        from pyrunc.cgroups.sdbus import UNIT_EXISTS, SystemdBusError

        props = su.unit_properties(f"pyrunc container {self.container_id}", self.slice, self.unit, pid)
        try:
            if resources:
                props += su.resource_properties(resources)
        except CgroupError as e:
            e.container = self.container_id
            raise
        bus = self._systemd(STEP_CREATE)
        try:
            result = bus.start_transient_unit(self.unit, props, step=STEP_CREATE)
        except SystemdBusError as e:
            if e.name == UNIT_EXISTS:
                raise self._err(f"systemd unit {self.unit} already exists (another container or a "
                                f"leftover uses cgroupsPath slice {self.slice!r} with this name)",
                                STEP_CREATE) from None
            if not _alive(pid):  # the init died first: its own report is the real error
                raise self._err(f"pid {pid} exited before systemd could start {self.unit}",
                                STEP_CREATE) from ProcessLookupError()
            raise self._err(f"starting unit {self.unit}: {e.cause}", STEP_CREATE) from None
        except CgroupError as e:  # timeout or a lost connection: the unit may exist
            self._started = True
            e.container = self.container_id
            raise
        self._started = True
        if result != "done":
            raise self._err(f"systemd could not start unit {self.unit}: its job ended {result!r}",
                            STEP_CREATE)
        if not os.path.isdir(self._dir):
            raise self._err(f"systemd started {self.unit} but its cgroup {self._dir} is missing "
                            f"(is the slice {self.slice} a slice unit systemd knows?)", STEP_CREATE)
        self._props_given = bool(resources)

    # ----- resources ---------------------------------------------------------------------------
    def set(self, resources: dict) -> None:
        """Unit properties first (unless the unit was just started with them), then the files.

        SetUnitProperties makes systemd re-apply the unit's cgroup settings, its
        device program among them, which can briefly deny a running container
        its devices: the container is frozen meanwhile (as runc does).
        """
        try:
            props = su.resource_properties(resources)
        except CgroupError as e:
            e.container = self.container_id
            raise
        if props and not self._props_given and os.path.isdir(self._dir):
            froze = False
            if not self.frozen():
                try:
                    self.freeze()
                    froze = True
                except CgroupError:
                    pass  # no freezer: go on unfrozen, as runc does
            try:
                self._systemd(STEP_SET).set_unit_properties(self.unit, props, step=STEP_SET)
            except CgroupError as e:
                e.container = self.container_id
                raise
            finally:
                if froze:
                    self.thaw()
        self._props_given = False
        super().set(resources)

    # ----- removal -----------------------------------------------------------------------------
    def destroy(self) -> None:
        """StopUnit, wait for it, forget a failed state, and remove what systemd left behind."""
        if self._made and not self._started:
            return  # nothing of ours exists; a unit of that name would be someone else's
        from pyrunc.cgroups.sdbus import NO_SUCH_UNIT, SystemdBusError

        bus = self._systemd(STEP_DESTROY)
        try:
            bus.stop_unit(self.unit, step=STEP_DESTROY)
        except SystemdBusError as e:
            if e.name != NO_SUCH_UNIT:
                raise self._err(f"stopping unit {self.unit}: {e.cause}", STEP_DESTROY) from None
        except CgroupError as e:
            e.container = self.container_id
            raise
        try:
            bus.reset_failed_unit(self.unit, step=STEP_DESTROY)
        except SystemdBusError:
            pass  # not failed, or already gone
        err = self._remove_tree(self._dir) if os.path.isdir(self._dir) else None
        if err:
            raise self._err(err, STEP_DESTROY)
        self._started = False


def _alive(pid: int) -> bool:
    from pyrunc.proc import pid_alive

    return pid_alive(pid, None)
