"""The ``Manager`` interface every cgroup driver offers, the directory drivers' shared part
(``FsManager``), and the control-file helpers.

Callers hold a ``Manager`` and ask it what they need (processes, the freezer, statistics, the
directory CRIU freezes through); none of them looks at which driver it is. ``FsManager`` owns
one container's cgroup directories. It remembers which directories it created itself (parents
included) so that ``destroy`` removes exactly those and never a directory someone else made;
that list survives in the container state file through ``save()``/``from_record()``.

Only ``os``, ``errno`` and ``time`` are imported: this module is on the hot path
of ``pyrunc kill/delete/state``.
"""

from __future__ import annotations

import errno
import os
import time

from pyrunc.errors import APPLY_CGROUP, CREATE_CGROUP, DESTROY_CGROUP, SET_RESOURCES, CgroupError

# How long destroy() keeps retrying rmdir on EBUSY (tasks may still be exiting).
RMDIR_RETRY_SECONDS = 2.0
# How often _mkdirs() starts again when a parent is removed under it (see _mkdirs).
MKDIR_ATTEMPTS = 100
# How long freeze() waits for the kernel to report the cgroup frozen.
FREEZE_TIMEOUT_SECONDS = 5.0


def clean_path(path: str) -> str:
    """Normalise a cgroup path without letting ``..`` climb above its start.

    Absolute paths stay absolute; relative ones stay relative. This is the same
    safety rule runc applies (``utils.CleanPath``): the path is resolved as if it
    were rooted, so ``../../etc`` becomes ``etc``.
    """
    if not path:
        return ""
    absolute = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    joined = "/".join(parts)
    return "/" + joined if absolute else joined


def join(base: str, *rest: str) -> str:
    """Join path pieces that may start with ``/`` (cgroup paths) under ``base``."""
    out = base.rstrip("/") or "/"
    for piece in rest:
        piece = piece.strip("/")
        if piece:
            out = out + "/" + piece if out != "/" else "/" + piece
    return out


def write_file(directory: str, name: str, value: str, *, step: str = SET_RESOURCES,
               container: str | None = None) -> None:
    """Write one control file, turning errno into a message that names the file (and keeping
    the errno: ESRCH for a pid that is gone, EACCES/EPERM for a hierarchy we may not write).

    The file is never created: the kernel makes every control file with its cgroup, so a
    missing one means the controller is not there.
    """
    path = directory + "/" + name
    data = value.encode() if isinstance(value, str) else value
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    except OSError as e:
        if e.errno in (errno.EACCES, errno.ENOENT) and os.path.isdir(directory) and not os.path.exists(path):
            cause = f"{path} does not exist (controller not available or not enabled)"
        else:
            cause = f"writing {value.strip()!r} to {path}: {e.strerror}"
        raise CgroupError(cause, step=step, container=container, errno=e.errno or 0) from e


def read_file(directory: str, name: str) -> str:
    """Read a control file and strip the trailing newline (raises OSError)."""
    with open(directory + "/" + name, encoding="utf-8") as f:
        return f.read().strip()


def procs_under(directory: str) -> list[int]:
    """Every pid in ``directory`` and all its sub-cgroups (a missing tree gives [])."""
    pids: list[int] = []
    stack = [directory]
    while stack:
        d = stack.pop()
        try:
            with open(d + "/cgroup.procs", "rb") as f:  # bytes: no codec module to import
                pids.extend(int(x) for x in f.read().split())
        except FileNotFoundError:
            continue
        try:
            with os.scandir(d) as it:
                stack.extend(e.path for e in it if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            continue
    return sorted(set(pids))


class Manager:
    """One container's cgroup, as every caller sees it, whatever the driver.

    ``create_manager`` builds one for a new container, given the ``resources`` the container is
    created with and whether the runtime is ``rootless``; ``save()`` describes it for the state
    record and ``load_manager`` rebuilds it from there through the driver's ``from_record``. A
    driver implements the methods below; callers need no other name and never the driver's.
    """

    driver = ""  # the name in the saved record, which load_manager dispatches on

    def __init__(self, container_id: str, *, rootless: bool = False, resources: dict | None = None):
        self.container_id = container_id
        # Rootless: hierarchies we may not write to are dropped instead of failing.
        self.rootless = rootless
        # linux.resources the container is created with (the systemd driver starts its unit with
        # them as properties); set() writes them, as it writes an update's.
        self.resources = resources

    def _err(self, cause: str, step: str, errno: int = 0) -> CgroupError:
        return CgroupError(cause, step=step, container=self.container_id, errno=errno)

    # ----- persistence -------------------------------------------------------------------------
    @classmethod
    def from_record(cls, saved: dict) -> Manager:
        """The manager ``save()`` described, without looking at the system (raises KeyError or
        TypeError on a record that is not one of this driver's)."""
        raise NotImplementedError

    def save(self) -> dict:
        """A marshal- and JSON-serialisable record: ``driver`` names the class ``from_record``
        is called on, and ``freezer`` is ``[file, value]``: the container is paused when the
        file reads ``value`` (``pyrunc.cgroups.frozen`` reads it without importing a driver)."""
        raise NotImplementedError

    def paths(self) -> dict[str, str]:
        """controller -> absolute directory of the container's cgroup (empty: none we may use)."""
        raise NotImplementedError

    # ----- lifecycle ---------------------------------------------------------------------------
    def create(self) -> None:
        """Make the cgroup, or what the driver makes before there is a process."""
        raise NotImplementedError

    def birth_plan(self) -> tuple[list[str], str | None]:
        """Where a new process can be placed without a cgroup.procs write (and its grace period):
        the v1 directories it joins itself by writing "0" to their ``tasks`` (a single thread
        moving itself takes no threadgroup lock), and the cgroup2 directory it is cloned into
        (CLONE_INTO_CGROUP), if any. See process/stage1.py."""
        raise NotImplementedError

    def can_place_at_birth(self) -> bool:
        """Can a new process be born in the cgroup (``birth_plan``) now?"""
        return True

    def apply(self, pid: int) -> None:
        """Put ``pid`` into the container's cgroup. A pid that is gone raises a CgroupError whose
        ``errno`` is ESRCH."""
        raise NotImplementedError

    def exists(self) -> bool:
        """Is there a cgroup of this container's (so its processes may be signalled)?"""
        raise NotImplementedError

    def destroy(self) -> None:
        """Remove the container's cgroup and what was made for it (idempotent)."""
        raise NotImplementedError

    # ----- what callers ask --------------------------------------------------------------------
    def pids(self) -> list[int]:
        """All pids in the container cgroup, sub-cgroups included."""
        raise NotImplementedError

    def freeze(self) -> None:
        raise NotImplementedError

    def thaw(self) -> None:
        raise NotImplementedError

    def frozen(self) -> bool:
        """Is the container's own cgroup frozen (paused)? False without a freezer."""
        raise NotImplementedError

    def set(self, resources: dict) -> None:
        """Apply OCI ``linux.resources`` (validated before the first write)."""
        raise NotImplementedError

    def plan(self) -> dict:
        """What creating this container's cgroup would do, found without changing anything
        (``pyrunc plan``): ``driver``, ``paths`` (controller -> directory), ``mkdir`` (the
        directories ``create`` makes), ``writes`` (``[file, value, step]`` in the order they are
        made: create's own set-up, then ``set(self.resources)``), ``placement`` (how the init
        gets in: ``how`` is "born" (``clone_into`` a cgroup2 directory, ``tasks`` files stage 1
        writes "0" to), "moved" (``procs`` files written with its pid) or "unit"), and driver extras (a systemd unit and its properties, a device program).
        Computed by the same code ``create``/``set`` run, on a fresh cgroup's defaults; raises
        what they would raise for these resources."""
        raise NotImplementedError

    def signal_all(self, sig: int) -> None:
        """Signal every process in the cgroup (``kill --all``)."""
        raise NotImplementedError

    def stats(self) -> dict:
        """The ``data`` object of a runc ``{"type": "stats"}`` event (cgroups/stats.py)."""
        raise NotImplementedError

    def oom_watcher(self):
        """A ``stats.OomWatcher`` on the container's memory cgroup; ``close()`` it when done."""
        raise NotImplementedError

    def freezer_cgroup(self) -> str | None:
        """The directory CRIU freezes the container through (its ``freeze_cgroup``), if any."""
        raise NotImplementedError

    def sub_cgroups(self, subs: dict[str, str]) -> SubCgroups:
        """Where `exec --cgroup` puts a process: existing sub-cgroups of the container's, by
        controller (``{"pids": "sub"}``) or in every hierarchy (``{"": "sub"}``)."""
        return sub_cgroups_of(self.container_id, self.paths(), subs, rootless=self.rootless)


def sub_cgroups_of(container_id: str, paths: dict[str, str], subs: dict[str, str], *,
                   rootless: bool = False) -> SubCgroups:
    """The directories of ``subs`` below the container's cgroup ``paths`` (runc 1.5's rules):
    a path is relative to the container's cgroup (a leading ``/`` too) and may not climb out of
    it; a bare path (key "") means every hierarchy; on a cgroup v2 host, where one directory holds
    every controller, a controller prefix picks nothing and only the path counts. Each directory
    must exist: exec never makes cgroups."""
    def below(base: str, sub: str) -> str:
        rel = sub.strip("/")
        if not rel or any(part == ".." for part in rel.split("/")):
            raise CgroupError(f"bad sub cgroup path: {sub}", step=APPLY_CGROUP, container=container_id)
        return base + "/" + rel

    targets: dict[str, str] = {}
    if set(paths) <= {"unified"}:  # cgroup v2: one hierarchy
        wanted = set(subs.values())
        if len(wanted) > 1:
            raise CgroupError(f"--cgroup gives {len(wanted)} different sub-cgroups, and cgroup v2 "
                              "has one hierarchy: " + ", ".join(sorted(wanted)), step=APPLY_CGROUP,
                              container=container_id)
        for key, base in paths.items():
            targets[key] = below(base, wanted.pop() if wanted else "")
    elif "" in subs:
        targets = {key: below(base, subs[""]) for key, base in paths.items()}
    else:
        for ctrl, sub in subs.items():
            if ctrl not in paths:
                raise CgroupError(f"unknown controller {ctrl} in --cgroup (this container's: "
                                  f"{', '.join(sorted(paths))})", step=APPLY_CGROUP,
                                  container=container_id)
            targets[ctrl] = below(paths[ctrl], sub)
        # co-mounted controllers share a directory: the ones not named stay where they are
        targets = {key: targets.get(key, base) for key, base in paths.items()}
    for directory in sorted(set(targets.values()) - set(paths.values())):
        if not os.path.isdir(directory):
            raise CgroupError(f"sub-cgroup {directory} does not exist", step=APPLY_CGROUP,
                              container=container_id, errno=errno.ENOENT)
    return SubCgroups(container_id, targets, rootless=rootless)


class SubCgroups:
    """Existing cgroup directories a new process is placed in (`exec --cgroup`): the placement
    half of a manager (``birth_plan``, ``apply``), nothing that makes or removes cgroups."""

    def __init__(self, container_id: str, paths: dict[str, str], *, rootless: bool = False):
        self.container_id = container_id
        self._paths = paths
        self.rootless = rootless

    def can_place_at_birth(self) -> bool:
        return True

    def birth_plan(self) -> tuple[list[str], str | None]:
        return sorted({d for key, d in self._paths.items() if key != "unified"}), self._paths.get("unified")

    def apply(self, pid: int) -> None:
        for directory in sorted(set(self._paths.values())):
            try:
                write_file(directory, "cgroup.procs", str(pid), step=APPLY_CGROUP,
                           container=self.container_id)
            except CgroupError as e:
                if not (self.rootless and e.errno in (errno.EACCES, errno.EPERM)):
                    raise


class FsManager(Manager):
    """The drivers that own their directories (v1, v2, hybrid): what they share.

    ``_paths`` maps a controller (v1 names such as ``memory`` or ``name=systemd``,
    ``unified`` for the cgroup2 hierarchy) to an absolute directory. ``_created``
    lists the directories this manager made, in creation order (parents first).
    """

    def __init__(self, container_id: str, paths: dict[str, str], *, created: list[str] | None = None,
                 mountpoints: dict[str, str] | None = None, rootless: bool = False,
                 resources: dict | None = None):
        super().__init__(container_id, rootless=rootless, resources=resources)
        self._paths = dict(paths)
        self._created = list(created or [])
        # controller -> hierarchy mount point; tells create() where mkdir may start.
        self._mountpoints = dict(mountpoints or {})
        self._made = False  # create() ran on this instance
        # plan(): file probes look at what a fresh cgroup would have, nothing is written.
        self._planning = False

    # ----- persistence -------------------------------------------------------------------------
    @classmethod
    def from_record(cls, saved: dict) -> FsManager:
        return cls(saved.get("id", ""), saved["paths"], created=saved.get("created") or [],
                   mountpoints=saved.get("mountpoints") or {}, rootless=bool(saved.get("rootless")))

    def save(self) -> dict:
        point = self._freeze_point()
        return {
            "driver": self.driver,
            "id": self.container_id,
            "paths": dict(self._paths),
            "created": list(self._created),
            "mountpoints": dict(self._mountpoints),
            "rootless": self.rootless,
            "freezer": [point[0] + "/" + point[1], point[2]] if point else None,
        }

    def paths(self) -> dict[str, str]:
        return dict(self._paths)

    # ----- lifecycle ---------------------------------------------------------------------------
    def _dirs(self) -> list[tuple[str, str]]:
        """Distinct ``(mountpoint, directory)`` pairs; co-mounted controllers share one."""
        seen: dict[str, str] = {}
        for ctrl, d in self._paths.items():
            if d not in seen:
                seen[d] = self._mountpoints.get(ctrl, "")
        return [(mp, d) for d, mp in seen.items()]

    def _mkdirs(self, mountpoint: str, directory: str) -> list[str]:
        """mkdir every missing component of ``directory`` below ``mountpoint``; return new ones.

        Parents are shared: another container's ``destroy`` removes an empty parent it created,
        and may do so between our finding that parent present (EEXIST) and our mkdir below it
        (ENOENT). The walk then starts again from the top, re-creating the parent (which becomes
        ours to remove). Each restart means the other side removed a directory, which it only
        does once per directory it made, so ``MKDIR_ATTEMPTS`` is a bound that is never reached
        in practice; once our leaf exists, its parents cannot be removed (rmdir of a cgroup with
        children fails), so what follows (cpuset seeding, subtree_control, the clone into the
        leaf) no longer races. Keeping parents forever, as runc does, would avoid this too, but
        leaves an empty directory per pod parent behind on every host that does not clean up
        after itself.
        """
        if mountpoint and not (directory == mountpoint or directory.startswith(mountpoint.rstrip("/") + "/")):
            raise self._err(f"cgroup path {directory} is outside its hierarchy {mountpoint}", CREATE_CGROUP)
        if mountpoint and not os.path.isdir(mountpoint):
            raise self._err(f"cgroup hierarchy {mountpoint} is not mounted", CREATE_CGROUP)
        made: list[str] = []
        for _ in range(MKDIR_ATTEMPTS):
            try:
                self._mkdir_walk(mountpoint, directory, made)
                return made
            except _ParentVanished:
                continue
        raise self._err(f"mkdir {directory}: a parent cgroup kept being removed ({MKDIR_ATTEMPTS} attempts)",
                        CREATE_CGROUP)

    def _mkdir_walk(self, mountpoint: str, directory: str, made: list[str]) -> None:
        """One pass of ``_mkdirs``; raises _ParentVanished if a parent disappeared under us."""
        start = mountpoint.rstrip("/") if mountpoint else "/"
        rest = directory[len(start):].strip("/") if mountpoint else directory.strip("/")
        current = start if mountpoint else ""
        for depth, part in enumerate(rest.split("/") if rest else []):
            current = current + "/" + part
            try:
                os.mkdir(current, 0o755)
            except FileExistsError:
                continue
            except FileNotFoundError as e:
                if depth > 0 or not mountpoint:
                    raise _ParentVanished from e
                raise self._err(f"mkdir {current}: {e.strerror}", CREATE_CGROUP, e.errno) from e
            except OSError as e:
                raise self._err(f"mkdir {current}: {e.strerror}", CREATE_CGROUP, e.errno) from e
            made.append(current)
            if current not in self._created:
                self._created.append(current)

    def create(self) -> None:
        """Create the cgroup directories (idempotent); subclasses add controller setup."""
        for mountpoint, d in self._dirs():
            try:
                self._mkdirs(mountpoint, d)
            except CgroupError as e:
                self._drop_if_rootless(d, e)
        self._made = True

    def birth_plan(self) -> tuple[list[str], str | None]:
        v1 = sorted({d for key, d in self._paths.items() if key != "unified"})
        return v1, self._paths.get("unified")

    # ----- planning (pyrunc plan) --------------------------------------------------------------
    def plan(self) -> dict:
        self._planning = True
        try:
            mkdir = [d for mountpoint, leaf in self._dirs() for d in _missing_dirs(mountpoint, leaf)]
            writes = self._plan_create(mkdir)
            writes += [[d + "/" + name, value, SET_RESOURCES]
                       for d, name, value in self._resource_writes(self.resources or {})]
            extra = self._plan_extra(self.resources or {})
        finally:
            self._planning = False
        v1_dirs, cgroup2 = self.birth_plan()
        if self.rootless:  # apply() then skips what we may not write, which birth cannot
            placement = {"how": "moved", "procs": [d + "/cgroup.procs" for _, d in self._dirs()]}
        else:
            placement = {"how": "born", "clone_into": cgroup2, "tasks": [d + "/tasks" for d in v1_dirs]}
        out = {"driver": self.driver, "paths": self.paths(), "mkdir": mkdir, "writes": writes,
               "placement": placement}
        out.update(extra)
        return out

    def _plan_create(self, new_dirs: list[str]) -> list[list[str]]:
        """The writes ``create`` makes besides the mkdirs (a driver's controller set-up)."""
        return []

    def _resource_writes(self, resources: dict) -> list[tuple[str, str, str]]:
        """``(directory, file, value)`` that ``set(resources)`` writes, in order."""
        raise NotImplementedError

    def _plan_extra(self, resources: dict) -> dict:
        """What a driver does besides file writes (a device program), for ``plan``."""
        return {}

    def _existing(self, directory: str) -> str:
        """``directory``, or while planning one still to be made, its nearest existing ancestor."""
        d = directory
        while self._planning and d and d != "/" and not os.path.isdir(d):
            d = d.rsplit("/", 1)[0] or "/"
        return d

    def _probe(self, directory: str) -> str:
        """Where to look for the control files ``directory`` has: itself, or while planning a
        cgroup that does not exist yet, its nearest existing ancestor (a new cgroup gets the same
        files), and below a hierarchy's root, which lacks most of them, any cgroup."""
        if not self._planning or os.path.isdir(directory):
            return directory
        d = self._existing(directory)
        if d in {mp.rstrip("/") for mp in self._mountpoints.values()}:
            # A hierarchy's root lacks most control files (cgroup v2 root): any child has them.
            try:
                with os.scandir(d) as it:
                    child = next((e.path for e in it if e.is_dir(follow_symlinks=False)), None)
            except OSError:
                child = None
            return child or d
        return d

    def _fresh(self, directory: str) -> bool:
        """Planning a cgroup that ``create`` has yet to make (its files hold the kernel's defaults)."""
        return self._planning and not os.path.isdir(directory)

    def apply(self, pid: int) -> None:
        """Move ``pid`` into the container cgroup of every hierarchy (creating it unless this
        manager already did: a second round of mkdirs costs create ~1 ms)."""
        if not self._made:
            self.create()
        self.place(pid)

    def place(self, pid: int) -> None:
        """Move ``pid`` into the container's existing directories; nothing is made."""
        for _, d in self._dirs():
            try:
                write_file(d, "cgroup.procs", str(pid), step=APPLY_CGROUP, container=self.container_id)
            except CgroupError as e:
                self._drop_if_rootless(d, e)

    def _drop_if_rootless(self, directory: str, error: CgroupError) -> None:
        """Rootless runtimes skip hierarchies they lack permission for (as runc does)."""
        if not (self.rootless and error.errno in (errno.EACCES, errno.EPERM)):
            raise error
        self._paths = {k: v for k, v in self._paths.items() if v != directory}

    def exists(self) -> bool:
        """True if the container cgroup is present in at least one hierarchy."""
        return any(os.path.isdir(d) for d in self._paths.values())

    def destroy(self) -> None:
        """Remove what this manager created, deepest first, on every hierarchy.

        Sub-cgroups the container made inside its own cgroup are removed too
        (they cannot outlive it). Ancestors we created that now hold someone
        else's cgroups are left in place. EBUSY (tasks still exiting) is retried
        for ``RMDIR_RETRY_SECONDS`` before giving up with a CgroupError.
        """
        leaves = set(self._paths.values())
        failures: list[str] = []
        for d in sorted(self._created, key=lambda p: p.count("/"), reverse=True):
            if d in leaves:
                err = self._remove_tree(d)
            else:
                err = self._rmdir_shared_parent(d)
            if err:
                failures.append(err)
        if failures:
            raise self._err("; ".join(failures), DESTROY_CGROUP)
        self._created = [d for d in self._created if os.path.isdir(d)]

    def remove_own(self) -> None:
        """Remove the container's own directories with every sub-cgroup in them, whoever made
        them: a systemd unit's cgroup, which systemd made, once the unit is stopped."""
        failures = [err for err in map(self._remove_tree, set(self._paths.values())) if err]
        if failures:
            raise self._err("; ".join(failures), DESTROY_CGROUP)

    def _remove_tree(self, top: str) -> str | None:
        """rmdir ``top`` after its sub-cgroups (children first); return an error text or None."""
        order: list[str] = []
        stack = [top]
        while stack:
            d = stack.pop()
            order.append(d)
            try:
                with os.scandir(d) as it:
                    stack.extend(e.path for e in it if e.is_dir(follow_symlinks=False))
            except (FileNotFoundError, NotADirectoryError):
                continue
        for d in reversed(order):
            err = self._rmdir_retry(d)
            if err:
                return err
        return None

    def _rmdir_shared_parent(self, d: str) -> str | None:
        """Remove an ancestor we created unless another cgroup now lives below it.

        A sibling may be created between the look and the rmdir: the kernel then refuses with
        EBUSY, and a child present at that point means the parent is in use, not busy with
        exiting tasks, so it is left to whoever removes the last child (no waiting, no error).
        """
        if _has_subdirs(d):
            return None
        try:
            os.rmdir(d)
            return None
        except FileNotFoundError:
            return None
        except OSError as e:
            if e.errno in (errno.EBUSY, errno.ENOTEMPTY) and _has_subdirs(d):
                return None
        return self._rmdir_retry(d)

    @staticmethod
    def _rmdir_retry(d: str) -> str | None:
        deadline = time.monotonic() + RMDIR_RETRY_SECONDS
        delay = 0.005
        while True:
            try:
                os.rmdir(d)
                return None
            except FileNotFoundError:
                return None
            except OSError as e:
                if e.errno != errno.EBUSY or time.monotonic() >= deadline:
                    return f"rmdir {d}: {e.strerror}"
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    # ----- processes ---------------------------------------------------------------------------
    def pids(self) -> list[int]:
        """All pids in the container cgroup, sub-cgroups included."""
        return procs_under(self._primary())

    def _primary(self) -> str:
        """The directory whose tree lists the container's processes."""
        raise NotImplementedError

    def _freeze_point(self) -> tuple[str, str, str] | None:
        """(directory, file, value when frozen) of the container's own freeze state; None without
        a freezer. What save() records for ``pyrunc.cgroups.frozen`` and frozen() reads."""
        raise NotImplementedError

    def frozen(self) -> bool:
        point = self._freeze_point()
        if point is None:
            return False
        directory, name, value = point
        try:
            return read_file(directory, name) == value
        except OSError:
            return False

    def signal_all(self, sig: int) -> None:
        """Signal every process in the cgroup, runc 1.1 ``kill --all`` style.

        The cgroup is frozen first so nothing can fork between listing and
        signalling. Afterwards it is thawed, except that a container that was
        already paused stays paused for signals other than SIGKILL (runc 1.1
        thaws unconditionally, which silently resumes a paused container).
        A missing cgroup means nothing is left to signal.
        """
        if not self.exists():
            return
        was_frozen = self.frozen()
        if not was_frozen:
            self.freeze()
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if not was_frozen or sig == 9:
                self.thaw()

    def freezer_cgroup(self) -> str | None:
        """The cgroup2 directory when there is one (its cgroup.freeze needs no controller, so on
        a hybrid host too), else the v1 freezer hierarchy's."""
        return self._paths.get("unified") or self._paths.get("freezer")


def _missing_dirs(mountpoint: str, directory: str) -> list[str]:
    """The directories ``FsManager._mkdirs`` would make for ``directory`` (those missing now)."""
    start = mountpoint.rstrip("/") if mountpoint else ""
    rest = directory[len(start):].strip("/") if mountpoint else directory.strip("/")
    out, current = [], start
    for part in rest.split("/") if rest else []:
        current = current + "/" + part
        if not os.path.isdir(current):
            out.append(current)
    return out


class _ParentVanished(Exception):
    """A parent cgroup seen present was removed before the mkdir below it (see FsManager._mkdirs)."""


def _has_subdirs(d: str) -> bool:
    try:
        with os.scandir(d) as it:
            return any(e.is_dir(follow_symlinks=False) for e in it)
    except OSError:
        return False

