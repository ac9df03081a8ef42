"""What `create` and `restore` share: checking a bundle, making the cgroup and the record, and
one creation with an undo stack.

A creation reserves the id, makes a cgroup, saves a ``creating`` record, starts processes and
finally saves the finished record; if anything fails on the way, everything made so far must go
again, newest first, and the caller must get one error naming the container and the step.
``Creation`` is that sequence's frame: each step that makes something registers how to take it
back (``undo``), much as runc's deferred cleanups and crun's cleanup attributes do; leaving the
``with`` block by an exception unwinds the stack, runs the poststop hooks runtime.md wants after
a failed create, and stamps the error once.
"""

from __future__ import annotations

import _signal as signal  # the C module: no enum import on the hot path
import errno
import os
import time

from .. import log, proc
from ..errors import (
    CREATE_CGROUP,
    RESERVE_STATE,
    SAVE_STATE,
    VALIDATE,
    PyruncError,
    from_os_error,
    release_frames,
)
from ..log import rfc3339
from ..state import Record, StateDir, oci_state, write_pid_file
from .launch import check_terminal, kill_started


class Creation:
    """One create or restore in progress (see the module docstring)."""

    def __init__(self, sd: StateDir, operation: str, *, nest: bool = False,
                 poststop_on_failure: bool = False):
        self.sd = sd
        self.cid = sd.id
        self.operation = operation
        self.nest = nest  # restore: "restore: STEP" for every error, not only a stage's
        self.poststop_on_failure = poststop_on_failure
        self.config: dict = {}
        self.bundle = ""
        self.mgr = None
        self.stage_pid = 0  # a forked stage of ours, still to be reaped
        self.stage_known = True  # False from ``forking`` until ``started``
        self.stage_inode = 0  # the inode of the stage's end of the channel (``forking``)
        self.parent_end = None  # our end, naming its senders (``forking``, the Python API)
        self.init_pid = 0  # the container's init once its pid is known
        self.step = VALIDATE  # the step running now (``at``)
        self._undo: list = []
        self._always: list = []

    def at(self, step: str) -> None:
        """Name the step that runs now. An OSError no code below caught (a full or read-only
        state filesystem, a quota, the fd limit: any open, mkfifo or socketpair can meet them)
        leaves the creation as one error naming this step and the errno (``__exit__``)."""
        self.step = step

    def undo(self, fn, *args) -> None:
        """On failure, call ``fn(*args)`` (newest first)."""
        self._undo.append((fn, args))

    def always(self, fn, *args) -> None:
        """On leaving, whatever happened, call ``fn(*args)`` (fds, sockets, the lock)."""
        self._always.append((fn, args))

    def __enter__(self) -> Creation:
        return self

    def __exit__(self, kind, error, _tb) -> bool:
        interrupted = None
        try:
            if error is not None:
                interrupted = self._unwind()
                if isinstance(error, PyruncError):
                    error.stamp(self.cid, self.operation, nest=self.nest)
                elif isinstance(error, OSError):
                    what = error.filename if isinstance(error.filename, str) else self.step
                    named = from_os_error(error, what, step=self.step, container=self.cid)
                    named.stamp(self.cid, self.operation, nest=self.nest)
                    raise named from None
        finally:
            interrupted = self._close() or interrupted
        if interrupted is not None and not isinstance(error, KeyboardInterrupt):
            try:
                raise interrupted  # the caller asked to stop: that wins over a failure (or success)
            finally:
                interrupted = None  # no cycle through this frame: what it holds is freed at once
        return False

    def _close(self) -> KeyboardInterrupt | None:
        """Run the ``always`` list once (fds, sockets, the lock). A KeyboardInterrupt does not
        stop it (the rest still runs; not retried: an fd closed twice may be someone else's)."""
        interrupted = None
        always, self._always = self._always, []
        for fn, args in reversed(always):
            try:
                fn(*args)
            except OSError:
                pass
            except KeyboardInterrupt as e:
                release_frames(e)
                interrupted = e
        return interrupted

    def _unwind(self) -> KeyboardInterrupt | None:
        """Run the undo stack, newest first. A KeyboardInterrupt (the Python API's caller pressing
        Ctrl-C, at any bytecode) does not stop it: the interrupted undo runs again (each is
        idempotent) and the interrupt is returned, so nothing made is left behind. At the fd
        limit (the very fault being unwound, often) an undo cannot open what it removes: what
        the creation holds is closed first, then the undo runs once more."""
        interrupted = None
        for fn, args in reversed(self._undo):
            for _attempt in range(3):
                try:
                    try:
                        fn(*args)
                    except OSError as e:
                        if e.errno not in (errno.EMFILE, errno.ENFILE) or not self._always:
                            raise
                        interrupted = self._close() or interrupted
                        fn(*args)
                    break
                except (PyruncError, OSError) as e:
                    cause = e.cause if isinstance(e, PyruncError) else str(e)
                    log.get().warning(f"container {self.cid}: cleanup: {cause}")
                    break
                except KeyboardInterrupt as e:
                    release_frames(e)  # the retried undo must not wait for what the first held
                    interrupted = e
        self._undo = []
        return interrupted

    # -- the steps every creation has ------------------------------------------------------

    def reserve(self) -> None:
        """Claim the id (the state directory, locked); on failure it goes again, after the
        poststop hooks of a failed create have run."""
        self.at(RESERVE_STATE)
        self.sd.reserve(step=self.operation, fault_step=RESERVE_STATE)
        self.always(self.sd.unlock)
        self.undo(self.sd.remove)
        if self.poststop_on_failure and (self.config.get("hooks") or {}).get("poststop"):
            self.undo(self._run_failed_create_hooks)

    def make_cgroup(self, *, systemd: bool, rootless: bool):
        """The container's cgroup (or systemd unit), removed again on failure with every process
        in it; before the manager creates anything, so a half-made one is removed too."""
        self.at(CREATE_CGROUP)
        mgr = new_manager(self.config, self.cid, systemd=systemd, rootless=rootless)
        self.mgr = mgr
        self.undo(destroy_cgroup, mgr)
        mgr.create()
        return mgr

    def forking(self, stage_end, parent_end=None) -> None:
        """A stage that takes ``stage_end`` (its end of the channel) is about to be forked. Should
        the creation be interrupted before ``started`` learns the stage's pid (a KeyboardInterrupt
        in a program using the Python API, raised between the fork's return and the assignment),
        the stage, and an init it forked, are found by that socket, killed and reaped: nothing
        else we could know them by exists yet. One fstat here; the search only on that path.

        A stage that finished on its own first (stage 1 reports and exits within milliseconds)
        holds no socket any more: with ``parent_end`` (the Python API, whose caller lives on
        and would keep the zombie) every message on our end carries its sender's pid, so its
        report names it. The command line does without: its zombies go when it exits."""
        if parent_end is not None:
            import _socket  # the C module, as channel.py uses

            parent_end.sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_PASSCRED, 1)
        self.parent_end = parent_end
        self.stage_known = False
        self.stage_inode = os.fstat(stage_end.fileno()).st_ino
        self.undo(self._kill_lost_stage)

    def started(self, stage_pid: int) -> None:
        """A stage was forked: on failure it (and the init, once known) is killed."""
        self.stage_pid = stage_pid
        # Listed before the stage counts as known: an interrupt between the two must leave one
        # of _kill_processes and _kill_lost_stage to find it (both running is harmless).
        self.undo(self._kill_processes)
        self.stage_known = True

    def _kill_lost_stage(self) -> None:
        if self.stage_known:
            return
        if self.stage_pid:  # learnt, but interrupted before _kill_processes was listed
            self._kill_processes()
            return
        kill_holders(self.stage_inode)
        if self.parent_end is not None:
            for pid in set(self.parent_end.senders()) - {os.getpid()}:
                reap_if_ours(pid)

    def new_record(self, rootfs: str, *, systemd_cgroup: bool, rootfs_mount: int | None = None) -> Record:
        """The record saved before any process runs (``creating``): if we die from here on,
        `delete --force` finds the cgroup, and every process in it, from this record."""
        record = Record(self.cid, bundle=self.bundle, rootfs=rootfs, config=self.config,
                        cgroup=self.mgr.save() if self.mgr is not None else None)
        record.created = rfc3339()
        record.systemd_cgroup = systemd_cgroup
        record.rootfs_mount = rootfs_mount
        record.creating = True
        self.at(SAVE_STATE)
        self.sd.save(record)
        return record

    def finish(self, record: Record, init_pid: int, pid_file: str | None) -> None:
        """The init runs: record it (no longer ``creating``) and write the pid file."""
        record.pid = init_pid
        record.start_time = proc.pid_start_time(init_pid)
        record.creating = False
        record.created = rfc3339()
        self.at(SAVE_STATE)
        self.sd.save(record)
        if pid_file:
            self.at("write pid file")
            write_pid_file(pid_file, init_pid)

    def _kill_processes(self) -> None:
        if not self.init_pid and self.stage_inode:
            # An init may run whose pid we have not learnt yet (interrupted while stage 1 told
            # us, or before it could): it still holds the channel, as stage 1 does. Killed with
            # stage 1 here, it is reaped once ours; after stage 1's death it would be a zombie
            # with nothing left to find it by.
            kill_holders(self.stage_inode)
        kill_started((self.stage_pid, self.init_pid), children=(self.stage_pid,))
        self.stage_pid = 0
        if self.init_pid:
            wait_gone(self.init_pid)

    def _run_failed_create_hooks(self) -> None:
        """runtime.md: the poststop hooks of a container whose create failed still run."""
        from ..hooks import run_hooks_warn

        record = Record(self.cid, bundle=self.bundle, config=self.config)
        run_hooks_warn(self.config["hooks"], "poststop", oci_state(record, "stopped", pid=0),
                       lambda msg: log.get().warning(f"container {self.cid}: {msg}"))


def new_manager(config: dict, cid: str, *, systemd: bool, rootless: bool):
    """The container's cgroup manager, nothing made yet (create, and `pyrunc plan`, which asks it
    what it would make)."""
    from ..cgroups import create_manager

    lin = config.get("linux") or {}
    return create_manager(lin.get("cgroupsPath"), cid, systemd=systemd, rootless=rootless,
                          resources=cgroup_resources(config), annotations=config.get("annotations"))


def destroy_cgroup(mgr) -> None:
    """Remove a creation's cgroup, first killing anything in it (an init we never heard of),
    and reap those of them that were our children: a stage whose pid we never learnt (the
    Python API's caller interrupted us right after the fork) would stay a zombie otherwise.

    The cgroup may vanish between the look and the kill: systemd stops a scope, and removes
    its cgroup, as soon as its last process is gone, so ENODEV/ENOENT here mean "empty".
    """
    pids: list[int] = []
    try:
        pids = mgr.pids() if mgr.exists() else []
        if pids:
            mgr.signal_all(signal.SIGKILL)
    except (OSError, PyruncError) as e:
        if e.errno not in (errno.ENODEV, errno.ENOENT):
            raise
    mgr.destroy()
    for pid in pids:
        reap_if_ours(pid)


def kill_holders(inode: int, timeout: float = 2.0) -> None:
    """SIGKILL the processes below us (children and grandchildren) that hold the socket
    ``inode``, and reap them as they become ours: a stage first, then its init once the kernel
    has reparented it to us, the child subreaper (or to someone else, who reaps it)."""
    me = os.getpid()
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    data = f.read()
            except OSError:
                continue
            parents[int(name)] = int(data[data.rfind(b")") + 2:].split()[1])
    below = [pid for pid, ppid in parents.items() if ppid == me or parents.get(ppid) == me]
    target = f"socket:[{inode}]"
    holders = [pid for pid in below if pid != me and holds(pid, target)]
    for pid in holders:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    for pid in holders:
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    break
            except ChildProcessError:  # not (yet) ours: gone, or still being reparented
                if proc.pid_state(pid) is None:
                    break
            time.sleep(0.001)


def holds(pid: int, target: str) -> bool:
    """Whether process ``pid`` has an fd whose link reads ``target`` (``socket:[inode]``)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                return True
        except OSError:
            pass
    return False


def reap_if_ours(pid: int, timeout: float = 1.0) -> None:
    """Reap ``pid`` if it is our child; it was killed, so wait (briefly) for it to exit."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] or time.monotonic() > deadline:
                return
        except ChildProcessError:
            return
        time.sleep(0.001)


def wait_gone(pid: int, timeout: float = 10.0) -> None:
    """Wait until pid is dead or a zombie; reap it if it became our child (run's subreaper)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return
        except ChildProcessError:
            pass
        if not proc.pid_alive(pid, None):
            try:  # a zombie now: reap it if it is ours (seen between the two looks)
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            return
        time.sleep(0.005)


def resolve_rootfs(config: dict, bundle: str) -> str:
    """root.path, relative to the bundle, must be an existing directory."""
    path = (config.get("root") or {}).get("path")
    if not path:
        raise PyruncError("root.path is not set in config.json", step=VALIDATE)
    full = os.path.normpath(os.path.join(bundle, path))
    try:
        real = os.path.realpath(full)
        if not os.path.isdir(real):
            raise FileNotFoundError
    except OSError:
        raise PyruncError(f"rootfs {full} does not exist or is not a directory", step=VALIDATE) from None
    return real


def check_supported(config: dict, *, detach: bool, console_socket: str | None) -> None:
    """Refuse, before anything is created, what this build cannot do."""
    process = config.get("process")
    if not process:
        raise PyruncError("process is not set in config.json", step=VALIDATE)
    check_terminal(bool(process.get("terminal")), detach, console_socket, VALIDATE)
    lin = config.get("linux") or {}
    if lin.get("netDevices") and not any(ns.get("type") == "network" and not ns.get("path")
                                         for ns in lin.get("namespaces") or []):
        raise PyruncError("linux.netDevices needs a new network namespace", step=VALIDATE)
    if lin.get("intelRdt"):
        if not os.path.exists("/sys/fs/resctrl/schemata"):
            raise PyruncError("linux.intelRdt requested but resctrl is not mounted at /sys/fs/resctrl "
                              "(no Intel RDT on this host)", step=VALIDATE)
        raise PyruncError("linux.intelRdt is not supported yet", step=VALIDATE)
    from .. import scheduling
    from ..security import lsm

    scheduling.check(config)
    lsm.check(process, lin)


def cgroup_resources(config: dict) -> dict:
    """linux.resources (unknown keys dropped) plus the device rules runc always adds."""
    from ..cgroups.resources import DEFAULT_ALLOWED_DEVICES, KNOWN_KEYS

    lin = config.get("linux") or {}
    resources = {}
    for key, value in (lin.get("resources") or {}).items():
        if key not in KNOWN_KEYS[""]:
            continue  # config.md: unknown properties MUST be ignored
        known = KNOWN_KEYS.get(key)
        if known is not None and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k in known}
        resources[key] = value
    # The config's rules in order, then the ones every container needs: a "deny all" in
    # the config resets whatever came before it, so it cannot lock out /dev/null.
    rules = list(resources.get("devices") or [])
    rules.extend(DEFAULT_ALLOWED_DEVICES)
    resources["devices"] = rules
    return resources
