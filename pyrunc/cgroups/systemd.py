"""systemd cgroup driver (``--systemd-cgroup``): the container's cgroup is a transient unit.

Where systemd is PID 1 it owns the cgroup tree: a runtime that makes its own
directories there fights systemd's reloads and is invisible to ``systemctl``.
So the container gets a transient scope (or slice) unit, started over D-Bus
(sdbus.py), with ``Delegate=yes`` so what happens inside the container's
cgroup is the container's business; its resources become unit properties,
and are also written to the cgroup files by the v2 manager this one holds
(systemd has no property for several of them, and runc does the same). That
v2 manager does everything in the unit's cgroup directory (processes, the
freezer, statistics, the files); this class adds only the unit.

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

import errno
import os

from pyrunc.cgroups import systemd_unit as su
from pyrunc.cgroups.base import Manager
from pyrunc.cgroups.v2 import KEY, V2Manager
from pyrunc.errors import CREATE_CGROUP, DESTROY_CGROUP, SET_RESOURCES, CgroupError

# The unit, as this manager knows it: one state instead of flags.
NOT_STARTED = "not started"  # create() ran here and apply() starts it: nothing of ours exists yet
STARTED = "started"  # apply() started it, with the creation's resources as its properties
PRESENT = "present"  # it exists, or may: a saved container's, or a start that may have happened


def create_systemd_manager(cgroups_path: str | None, container_id: str, *, rootless: bool = False,
                           resources: dict | None = None, layout=None) -> SystemdManager:
    """Check the host and the path, and build the manager; nothing is created yet."""
    from pyrunc.cgroups import detect

    def fail(cause: str) -> CgroupError:
        return CgroupError(cause, step=CREATE_CGROUP, container=container_id)

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
    fs = V2Manager(container_id, {KEY: mountpoint.rstrip("/") + inner}, mountpoints={KEY: mountpoint},
                   resources=resources)
    return SystemdManager(fs, unit=unit, slice_=slice_)


class SystemdManager(Manager):
    """A transient systemd unit around a cgroup v2 directory, which ``fs`` (a V2Manager) manages."""

    driver = "systemd"

    def __init__(self, fs: V2Manager, *, unit: str, slice_: str, state: str = PRESENT):
        super().__init__(fs.container_id, resources=fs.resources)
        self.fs = fs
        self.unit = unit
        self.slice = slice_
        self.state = state
        self._bus = None

    @classmethod
    def from_record(cls, saved: dict) -> SystemdManager:
        return cls(V2Manager.from_record(saved), unit=saved["unit"], slice_=saved.get("slice", ""))

    def save(self) -> dict:
        saved = self.fs.save()
        saved.update(driver=self.driver, unit=self.unit, slice=self.slice)
        return saved

    def paths(self) -> dict[str, str]:
        return self.fs.paths()

    def _systemd(self, step: str):
        if self._bus is None:
            from pyrunc.cgroups.sdbus import Systemd

            self._bus = Systemd(step, container=self.container_id)
        return self._bus

    def _properties(self, resources: dict, step: str) -> list:
        """The resources as unit properties; a value systemd cannot take fails naming us."""
        try:
            return su.resource_properties(resources)
        except CgroupError as e:
            raise self._err(e.cause, step) from None

    # ----- creation ----------------------------------------------------------------------------
    def create(self) -> None:
        """Nothing is made before the init exists (see the module docstring); connecting now
        makes an unreachable systemd fail the create before anything was forked."""
        self._systemd(CREATE_CGROUP)
        self.state = NOT_STARTED

    def exists(self) -> bool:
        """A create whose unit never started has no cgroup, whatever a directory of that name
        holds: it is another container's (a unit that already existed), never to be signalled."""
        return self.state != NOT_STARTED and self.fs.exists()

    def birth_plan(self) -> tuple[list[str], str | None]:
        return self.fs.birth_plan()

    def can_place_at_birth(self) -> bool:
        """Only into a unit that already exists (``exec``), never during create."""
        return self.state != NOT_STARTED and os.path.isdir(self.fs.paths()[KEY])

    def apply(self, pid: int) -> None:
        """create: start the unit around ``pid``; afterwards: join its cgroup directly."""
        if self.state == NOT_STARTED:
            self._start_unit(pid)
        else:
            self.fs.place(pid)  # the unit made the directory: nothing to create

    def _start_unit(self, pid: int) -> None:
        from pyrunc.cgroups.sdbus import UNIT_EXISTS, SystemdBusError

        props = su.unit_properties(f"pyrunc container {self.container_id}", self.slice, self.unit, pid)
        if self.resources:
            props += self._properties(self.resources, CREATE_CGROUP)
        bus = self._systemd(CREATE_CGROUP)
        try:
            result = bus.start_transient_unit(self.unit, props, step=CREATE_CGROUP)
        except SystemdBusError as e:
            if e.name == UNIT_EXISTS:
                raise self._err(f"systemd unit {self.unit} already exists (another container or a "
                                f"leftover uses cgroupsPath slice {self.slice!r} with this name)",
                                CREATE_CGROUP) from None
            if not _alive(pid):  # the init died first: its own report is the real error
                raise self._err(f"pid {pid} exited before systemd could start {self.unit}",
                                CREATE_CGROUP, errno.ESRCH) from None
            raise self._err(f"starting unit {self.unit}: {e.cause}", CREATE_CGROUP) from None
        except CgroupError:  # timeout or a lost connection: the unit may exist
            self.state = PRESENT
            raise
        self.state = PRESENT  # the job ran: the unit is there, a failed one too, until stopped
        if result != "done":
            raise self._err(f"systemd could not start unit {self.unit}: its job ended {result!r}",
                            CREATE_CGROUP)
        d = self.fs.paths()[KEY]
        if not os.path.isdir(d):
            raise self._err(f"systemd started {self.unit} but its cgroup {d} is missing "
                            f"(is the slice {self.slice} a slice unit systemd knows?)", CREATE_CGROUP)
        if self.resources:
            self.state = STARTED

    # ----- planning (pyrunc plan) --------------------------------------------------------------
    def plan(self) -> dict:
        """The unit ``create`` would start (systemd makes its cgroup and moves the init in), its
        properties, and the files the v2 manager then writes, found without a bus connection."""
        props = su.unit_properties(f"pyrunc container {self.container_id}", self.slice, self.unit, 0)
        props.append(("PIDs", ("au", ["the init's pid"])))
        if self.resources:
            props += self._properties(self.resources, CREATE_CGROUP)
        self.fs._planning = True
        try:
            writes = [[d + "/" + name, value, SET_RESOURCES]
                      for d, name, value in self.fs._resource_writes(self.resources or {})]
            extra = self.fs._plan_extra(self.resources or {})
        finally:
            self.fs._planning = False
        out = {"driver": self.driver, "paths": self.paths(), "mkdir": [], "writes": writes,
               "placement": {"how": "unit", "unit": self.unit},
               "unit": self.unit, "slice": self.slice,
               "properties": [[name, _plain(value)] for name, (_sig, value) in props]}
        out.update(extra)
        return out

    # ----- resources ---------------------------------------------------------------------------
    def set(self, resources: dict) -> None:
        """Unit properties first (unless the unit was just started with these), then the files.

        SetUnitProperties makes systemd re-apply the unit's cgroup settings, its
        device program among them, which can briefly deny a running container
        its devices: the container is frozen meanwhile (as runc does).
        """
        props = self._properties(resources, SET_RESOURCES)
        given = self.state == STARTED and resources == self.resources
        if props and not given and os.path.isdir(self.fs.paths()[KEY]):
            froze = False
            if not self.fs.frozen():
                try:
                    self.fs.freeze()
                    froze = True
                except CgroupError:
                    pass  # no freezer: go on unfrozen, as runc does
            try:
                self._systemd(SET_RESOURCES).set_unit_properties(self.unit, props, step=SET_RESOURCES)
            finally:
                if froze:
                    self.fs.thaw()
        if self.state == STARTED:
            self.state = PRESENT
        self.fs.set(resources)

    # ----- removal -----------------------------------------------------------------------------
    def destroy(self) -> None:
        """StopUnit, wait for it, forget a failed state, and remove what systemd left behind."""
        if self.state == NOT_STARTED:
            return  # nothing of ours exists; a unit of that name would be someone else's
        from pyrunc.cgroups.sdbus import NO_SUCH_UNIT, SystemdBusError

        bus = self._systemd(DESTROY_CGROUP)
        try:
            bus.stop_unit(self.unit, step=DESTROY_CGROUP)
        except SystemdBusError as e:
            if e.name != NO_SUCH_UNIT:
                raise self._err(f"stopping unit {self.unit}: {e.cause}", DESTROY_CGROUP) from None
        try:
            bus.reset_failed_unit(self.unit, step=DESTROY_CGROUP)
        except SystemdBusError:
            pass  # not failed, or already gone
        self.fs.remove_own()
        self.state = NOT_STARTED

    # ----- the unit's cgroup: the v2 manager's -------------------------------------------------
    def pids(self) -> list[int]:
        return self.fs.pids()

    def freeze(self) -> None:
        self.fs.freeze()

    def thaw(self) -> None:
        self.fs.thaw()

    def frozen(self) -> bool:
        return self.fs.frozen()

    def signal_all(self, sig: int) -> None:
        if self.exists():
            self.fs.signal_all(sig)

    def stats(self) -> dict:
        return self.fs.stats()

    def oom_watcher(self):
        return self.fs.oom_watcher()

    def freezer_cgroup(self) -> str | None:
        return self.fs.freezer_cgroup()


def _alive(pid: int) -> bool:
    from pyrunc.proc import pid_alive

    return pid_alive(pid, None)


def _plain(value):
    """A property value as JSON can show it (bitmasks as hex)."""
    if isinstance(value, bytes):
        return "0x" + value[::-1].hex()
    if isinstance(value, list):
        return [list(v) if isinstance(v, tuple) else v for v in value]
    return value
