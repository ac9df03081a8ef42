"""The container lifecycle: create, start, state, kill, delete, list.

This module is the only writer of container state. It orchestrates: config
(``pyrunc.spec``) -> state directory (``pyrunc.state``) -> process stages
(``pyrunc.process``) -> cgroups; it never calls into ctypes itself.
"""

from __future__ import annotations

# The C module behind `signal`: the same functions and numbers without importing enum
# (5 ms), which every `kill`, `state` and `delete` would otherwise pay.
import _signal as signal
import os
import time

from . import proc
from .errors import (
    CHECKPOINT,
    DELETE,
    EXEC,
    KILL,
    PLAN,
    START,
    UPDATE,
    Boundary,
    NotFound,
    PyruncError,
    UsageError,
    WrongStatus,
)
from .options import CreateOptions, ExecOptions
from .state import STATE_FILE, Record, StateDir, check_id, compute_status, list_ids, oci_state, write_pid_file


class Container:
    """A container known to the state directory (loaded) or being created.

    The one place where lifecycle rules live (which status allows what) and the only writer of
    state; the CLI parses and prints around it, and the Python API is the same object. Each
    operation stamps its errors with the container and the operation (errors.Boundary)."""

    def __init__(self, root: str, cid: str):
        check_id(cid)
        self.id = cid
        self.dir = StateDir(root, cid)
        self.record = Record(cid)
        self.console_master: int | None = None  # a foreground create/exec's pty master
        self._cgroup = None

    # -- loading -----------------------------------------------------------------

    @classmethod
    def load(cls, root: str, cid: str, *, lock: bool = True) -> Container:
        c = cls(root, cid)
        if lock:
            c.dir.lock()
        c.record = c.dir.load()
        if c.record.creating and not lock and c.dir.being_created():
            raise NotFound(cid)  # as runc: a container being created does not exist yet
        return c

    def __enter__(self) -> Container:
        """``with Container.load(root, id) as c:`` (locked by load), or ``with c.locked():``;
        leaving the block releases the container's lock."""
        return self

    def __exit__(self, *_exc) -> bool:
        self.dir.unlock()
        return False

    def locked(self) -> Container:
        """Take the container's lock (another command on it waits), for a ``with`` block."""
        self.dir.lock()
        return self

    def owner(self) -> str:
        """Who owns the container's state (`list`'s OWNER column): the state directory's owner."""
        try:
            uid = os.stat(self.dir.path).st_uid
        except OSError:
            return ""
        try:
            import pwd

            return pwd.getpwuid(uid).pw_name
        except (KeyError, ImportError):
            return f"#{uid}"

    @property
    def cgroup(self):
        if self._cgroup is None and self.record.cgroup:
            from .cgroups import load_manager

            self._cgroup = load_manager(self.record.cgroup)
        return self._cgroup

    @property
    def pid(self) -> int:
        return self.record.pid

    @property
    def config(self) -> dict:
        return self.record.config

    def status(self) -> str:
        return compute_status(self.dir, self.record)

    def oci_state(self) -> dict:
        """The state document `pyrunc state` prints, in runc's key order."""
        return oci_state(self.record, self.status(), full=True)

    # -- operations --------------------------------------------------------------

    @classmethod
    def create(cls, root: str, cid: str, opts: CreateOptions) -> Container:
        """Create the container; its init waits for ``start``. For a foreground `run` with a
        terminal, ``console_master`` is the pty to proxy."""
        from .process.create import create_container

        c = cls(root, cid)
        c.record, c.console_master = create_container(c.dir, opts)
        c.dir.unlock()
        return c

    @staticmethod
    def plan(root: str, cid: str, opts: CreateOptions) -> dict:
        """What ``create(root, cid, opts)`` would do on this host, found without doing any of it
        (pyrunc/process/plan.py: `pyrunc plan`, `create --dry-run`). Raises ConfigError when
        config.json cannot be read or validated; the rest goes into the plan's ``problems``."""
        from .process.plan import plan_create

        with Boundary(cid, PLAN):
            return plan_create(opts.bundle, cid, root, opts)

    @classmethod
    def restore(cls, root: str, cid: str, criu_options, opts: CreateOptions,
                criu_path: str | None = None) -> Container:
        """Bring a checkpointed container back with CRIU (pyrunc/criu/restore.py)."""
        from .criu.restore import restore

        c = cls(root, cid)
        if opts.subreaper:
            from . import linux

            linux.set_child_subreaper()
        c.record = restore(c.dir, criu_options, opts, criu_path)
        c.dir.unlock()
        return c

    def start(self) -> None:
        with Boundary(self.id, START):
            status = self.status()
            if status != "created":
                if status == "stopped":
                    raise WrongStatus("cannot start a container that has stopped", status=status, op=START)
                if status == "running":
                    raise WrongStatus("cannot start an already running container", status=status, op=START)
                raise WrongStatus(f"cannot start a container in the {status} state", status=status, op=START)
            from .process.execfifo import release

            release(self.dir.fifo, self.pid, self.id)
            if self.record.hooks.get("poststart"):
                from .hooks import run_hooks

                try:
                    run_hooks(self.record.hooks, "poststart", oci_state(self.record, "running"))
                except PyruncError:
                    self._kill_and_wait()
                    raise

    def exec(self, process: dict, opts: ExecOptions) -> int:
        """Start ``process`` in this running container; its host pid. A foreground exec with a
        terminal leaves the pty master in ``console_master``. Setup failures exit 255 (runc)."""
        with Boundary(self.id, EXEC, nest=True, exit_code=255):
            status = self.status()
            if status == "stopped":
                raise WrongStatus("cannot exec in a stopped container", status=status, op=EXEC)
            if status == "paused" and not opts.ignore_paused:
                raise WrongStatus("cannot exec in a paused container (use --ignore-paused to override)",
                                  status=status, op=EXEC)
            check_exec_process(process)
            from .process.launch import check_terminal, connect_console, connect_pidfd_socket
            from .process.tenant import spawn

            check_terminal(bool(process.get("terminal")), opts.detach, opts.console_socket, EXEC)
            sockets = []
            try:
                sock = connect_console(opts.console_socket)
                sockets.append(sock)
                pidfd_sock = connect_pidfd_socket(opts.pidfd_socket)
                sockets.append(pidfd_sock)
                pid, self.console_master = spawn(self.record, process, self._exec_placement(opts),
                                                 preserve_fds=opts.preserve_fds, console_sock=sock,
                                                 pidfd_sock=pidfd_sock, subreaper=not opts.detach)
            finally:
                for s in sockets:
                    if s is not None:
                        s.close()
            if opts.pid_file:
                write_pid_file(opts.pid_file, pid)
            return pid

    def _exec_placement(self, opts: ExecOptions):
        """The cgroup an exec'd process goes to: the container's, or sub-cgroups of it."""
        if not opts.sub_cgroups:
            return self.cgroup
        if self.cgroup is None or not self.cgroup.paths():
            raise PyruncError("--cgroup: the container has no cgroup (rootless without one it may "
                              "write to)", step=EXEC)
        return self.cgroup.sub_cgroups(opts.sub_cgroups)

    def checkpoint(self, criu_options, criu_path: str | None = None) -> None:
        """Dump the running container with CRIU (pyrunc/criu/dump.py); unless asked to leave it
        running, it is destroyed afterwards, as runc does. The caller holds the lock."""
        with Boundary(self.id, CHECKPOINT):
            from .criu.dump import dump

            status = self.status()
            if status in ("created", "stopped"):
                raise WrongStatus(f"cannot checkpoint a container in the {status} state", status=status,
                                  op=CHECKPOINT)
            dump(self, criu_options, criu_path)
            if not (criu_options.leave_running or criu_options.pre_dump):
                self.destroy()

    def signal(self, sig: int, *, all_processes: bool = False) -> None:
        with Boundary(self.id, KILL):
            status = self.status()
            # Rootless without a writable cgroup there is no list of processes: the init is
            # signalled (SIGKILL to PID 1 of its pid namespace ends them all).
            if all_processes and self.cgroup is not None and self.cgroup.paths():
                if status == "stopped" and not self.cgroup.exists():
                    return
                self.cgroup.signal_all(sig)
                return
            if status == "stopped":
                raise WrongStatus("container not running", status=status, op=KILL)
            if sig == signal.SIGKILL and not self._has_own_pid_namespace() \
                    and self.cgroup is not None and self.cgroup.paths():
                # runc 1.5: without a pid namespace of its own, the init's death ends nothing
                # else, so KILL goes to every process of the container, as with --all.
                self.cgroup.signal_all(sig)
                return
            self._send(sig)
            if sig == signal.SIGKILL and status == "paused":
                self.cgroup.thaw()

    def _has_own_pid_namespace(self) -> bool:
        """A new pid namespace (not one joined by path): the kernel kills all in it with PID 1."""
        namespaces = (self.record.config.get("linux") or {}).get("namespaces") or []
        return any(ns.get("type") == "pid" and not ns.get("path") for ns in namespaces)

    def _send(self, sig: int) -> None:
        """Signal the init through a pidfd after re-checking its start time (pid reuse guard)."""
        try:
            pidfd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            raise WrongStatus("container not running", status="stopped", op=KILL,
                              container=self.id) from None
        try:
            if not proc.pid_alive(self.pid, self.record.start_time):
                raise WrongStatus("container not running", status="stopped", op=KILL,
                                  container=self.id)
            signal.pidfd_send_signal(pidfd, sig)
        except ProcessLookupError:
            raise WrongStatus("container not running", status="stopped", op=KILL,
                              container=self.id) from None
        finally:
            os.close(pidfd)

    def _kill_and_wait(self, timeout: float = 10.0) -> None:
        """SIGKILL the init (and the whole cgroup), thaw, and wait until it is gone or a zombie."""
        cg = self.cgroup
        if cg is not None and cg.exists():
            try:
                cg.signal_all(signal.SIGKILL)
            except PyruncError:
                pass
        try:
            self._send(signal.SIGKILL)
        except PyruncError:
            pass
        deadline = time.monotonic() + timeout
        while proc.pid_alive(self.pid, self.record.start_time):
            if time.monotonic() > deadline:
                raise PyruncError("container init still running", step=DELETE, container=self.id)
            time.sleep(0.01)

    def delete(self, *, force: bool = False) -> None:
        status = self.status()
        if status in ("running", "paused"):
            if not force:
                raise WrongStatus(f"cannot delete container {self.id} that is not stopped: {status}",
                                  status=status, op=DELETE)
            self._kill_and_wait()
        elif status == "created":
            self._kill_and_wait()
        self.destroy()

    def destroy(self) -> None:
        """Remove cgroups (killing stragglers), the rootfs mount, run poststop hooks, remove the
        state directory."""
        with Boundary(self.id, DELETE):
            cg = self.cgroup
            if cg is not None:
                if cg.exists() and cg.pids():
                    cg.signal_all(signal.SIGKILL)
                cg.destroy()
            detach_inherited_rootfs(self.record)
            if self.record.hooks.get("poststop"):
                from . import log
                from .hooks import run_hooks_warn

                run_hooks_warn(self.record.hooks, "poststop",
                               oci_state(self.record, "stopped", pid=self.record.pid),
                               lambda msg: log.get().warning(f"container {self.id}: {msg}"))
            self.dir.remove()

    # -- cgroup commands: pause, resume, update, ps -----------------------------

    def _require_cgroup(self, op: str):
        """The container's cgroup manager, or a clear error for a container created without one."""
        cg = self.cgroup
        if cg is None:
            raise PyruncError("container has no cgroup", step=op, container=self.id)
        return cg

    def pause(self) -> None:
        """Freeze the whole cgroup; allowed from created and running (runc's rule).

        ``paused`` is never stored: ``status()`` reads the freezer back, so a
        cgroup thawed behind our back shows up as running again.
        """
        status = self.status()
        if status not in ("created", "running"):
            raise WrongStatus("container not running", status=status, op="pause", container=self.id)
        self._require_cgroup("pause").freeze()

    def resume(self) -> None:
        """Thaw the cgroup; only a paused container can be resumed."""
        status = self.status()
        if status != "paused":
            raise WrongStatus("container not paused", status=status, op="resume", container=self.id)
        self._require_cgroup("resume").thaw()

    def update(self, patch: dict) -> None:
        """Apply new ``linux.resources`` values and persist them in the state record.

        ``patch`` has the OCI shape; each section it names is merged into the
        recorded resources and the merged section is written to the cgroup (the
        memory section as a whole, so a new limit is checked against the
        recorded swap). Device rules are not re-applied: rewriting them would
        briefly cut the running container off its devices, and runc's update
        leaves them alone too. On a kernel refusal the old values of the touched
        sections are written back, so a failed update leaves limits unchanged.
        The caller holds the container lock (``load(lock=True)``).
        """
        with Boundary(self.id, UPDATE):
            status = self.status()
            if status == "stopped":
                raise WrongStatus("container not running", status=status, op=UPDATE)
            cg = self._require_cgroup(UPDATE)
            from .cgroups.resources import merge_resources

            lin = self.record.config.setdefault("linux", {})
            old = lin.get("resources") or {}
            merged, touched = merge_resources(old, patch)
            try:
                cg.set({k: merged[k] for k in touched if k in merged})
            except PyruncError:
                try:
                    cg.set({k: old[k] for k in touched if k in old})
                except PyruncError:
                    pass
                raise
            lin["resources"] = merged
            self.dir.save(self.record)

    def processes(self) -> list[int]:
        """Host pids of every process in the container's cgroup (sub-cgroups included)."""
        cg = self.cgroup
        if cg is None or not cg.exists():
            return []
        return cg.pids()


def check_exec_process(process: dict) -> None:
    """What an exec'd process must have (runc's checks), and what this host cannot do for it."""
    if not process.get("args"):
        raise UsageError("args must not be empty", step=EXEC)
    cwd = process.get("cwd")
    if cwd is None or cwd == "":
        raise UsageError("Cwd property must not be empty", step=EXEC)
    if not cwd.startswith("/"):
        raise UsageError("Cwd must be an absolute path", step=EXEC)
    from . import scheduling
    from .security import lsm

    scheduling.check({"process": process})
    lsm.check(process, {})


def delete_missing(root: str, cid: str, force: bool) -> None:
    """delete of an id without a readable state: clear leftovers; error unless --force.

    With --force, whatever the recovery record still names is killed and removed first:
    the init (if it is still the same process) and every process in its cgroup.
    """
    check_id(cid)
    sd = StateDir(root, cid)
    if not force:
        if sd.exists() and sd.load_recovery() is None \
                and not os.path.exists(os.path.join(sd.path, STATE_FILE)):
            sd.remove()  # an empty leftover (a create that died before recording anything)
        raise NotFound(cid, step="delete")
    if not sd.exists():
        return
    rec = sd.load_recovery()
    if rec:
        c = Container(root, cid)
        c.record = rec
        with Boundary(cid, DELETE):
            c._kill_and_wait()
            cg = c.cgroup
            if cg is not None:
                cg.destroy()
            detach_inherited_rootfs(rec)
    sd.remove()


def detach_inherited_rootfs(record: Record) -> None:
    """A container without a mount namespace left its rootfs mount (and every mount inside
    it) in our namespace: remove it, so delete leaves the mount table as create found it."""
    if not record.rootfs_mount:
        return
    from .rootfs.inherited import detach_rootfs

    detach_rootfs(record.rootfs, record.rootfs_mount)


def all_containers(root: str) -> list[Container]:
    out = []
    for cid in list_ids(root):
        try:
            out.append(Container.load(root, cid, lock=False))
        except PyruncError:
            continue
    return out
