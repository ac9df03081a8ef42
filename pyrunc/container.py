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

from . import OCI_VERSION, proc
from .errors import NotFound, PyruncError, WrongStatus
from .state import STATE_FILE, StateDir, check_id, compute_status, list_ids


class CreateOptions:
    """Everything `create`/`run` were told on the command line."""

    def __init__(self, *, bundle: str = ".", pid_file: str | None = None,
                 console_socket: str | None = None, no_pivot: bool = False,
                 no_new_keyring: bool = False, preserve_fds: int = 0, systemd_cgroup: bool = False,
                 rootless: str = "auto", subreaper: bool = False, detach: bool = True):
        self.bundle = os.path.abspath(bundle)
        self.pid_file = os.path.abspath(pid_file) if pid_file else None
        self.console_socket = console_socket
        self.no_pivot = no_pivot
        self.no_new_keyring = no_new_keyring
        self.preserve_fds = preserve_fds
        self.systemd_cgroup = systemd_cgroup
        self.rootless = rootless
        self.is_rootless = False  # resolved from `rootless` by create (pyrunc/rootless.py)
        self.subreaper = subreaper
        self.detach = detach
        self.console_master: int | None = None  # set by create for a foreground `run` with a tty


class Container:
    """A container known to the state directory (loaded) or being created."""

    def __init__(self, root: str, cid: str):
        check_id(cid)
        self.id = cid
        self.dir = StateDir(root, cid)
        self.st: dict = {}
        self._cgroup = None

    # -- loading -----------------------------------------------------------------

    @classmethod
    def load(cls, root: str, cid: str, *, lock: bool = True) -> Container:
        c = cls(root, cid)
        if lock:
            c.dir.lock()
        c.st = c.dir.load()
        if c.st.get("creating") and not lock and c.dir.being_created():
            raise NotFound(cid)  # as runc: a container being created does not exist yet
        return c

    @property
    def cgroup(self):
        if self._cgroup is None and self.st.get("cgroup"):
            from .cgroups import load_manager

            self._cgroup = load_manager(self.st["cgroup"])
        return self._cgroup

    @property
    def pid(self) -> int:
        return int(self.st.get("pid", 0))

    def status(self) -> str:
        return compute_status(self.dir, self.st)

    def oci_state(self) -> dict:
        """The state document in runc's key order (runtime.md "State")."""
        status = self.status()
        doc = {
            "ociVersion": OCI_VERSION,  # the spec version this state complies with (runtime.md)
            "id": self.id,
            "pid": self.pid if status != "stopped" else 0,
            "status": status,
            "bundle": self.st["bundle"],
            "rootfs": self.st["rootfs"],
            "created": self.st["created"],
            "owner": self.st.get("owner", ""),
        }
        if self.st.get("annotations"):
            doc["annotations"] = self.st["annotations"]
        return doc

    def hook_state(self, status: str) -> dict:
        from .hooks import oci_state

        return oci_state(self.st, status)

    # -- operations --------------------------------------------------------------

    @classmethod
    def create(cls, root: str, cid: str, opts: CreateOptions) -> Container:
        from .process.parent import create_container

        c = cls(root, cid)
        c.st = create_container(c.dir, cid, opts)
        c.dir.unlock()
        return c

    def start(self) -> None:
        status = self.status()
        if status != "created":
            if status == "stopped":
                raise WrongStatus("cannot start a container that has stopped", status=status,
                                  op="start", container=self.id)
            if status == "running":
                raise WrongStatus("cannot start an already running container", status=status,
                                  op="start", container=self.id)
            raise WrongStatus(f"cannot start a container in the {status} state", status=status,
                              op="start", container=self.id)
        from .process.execfifo import release

        release(self.dir.fifo, self.pid, self.id)
        hooks = self.st.get("hooks")
        if hooks and hooks.get("poststart"):
            from .hooks import run_hooks

            try:
                run_hooks(hooks, "poststart", self.hook_state("running"))
            except PyruncError as e:
                self._kill_and_wait()
                e.container = self.id
                raise

    def signal(self, sig: int, *, all_processes: bool = False) -> None:
        status = self.status()
        # Rootless without a writable cgroup there is no list of processes: the init is signalled
        # (SIGKILL to PID 1 of its pid namespace ends them all).
        if all_processes and self.cgroup is not None and self.cgroup.paths():
            if status == "stopped" and not self.cgroup.exists():
                return
            self.cgroup.signal_all(sig)
            return
        if status == "stopped":
            raise WrongStatus("container not running", status=status, op="kill", container=self.id)
        self._send(sig)
        if sig == signal.SIGKILL and status == "paused":
            self.cgroup.thaw()

    def _send(self, sig: int) -> None:
        """Signal the init through a pidfd after re-checking its start time (pid reuse guard)."""
        try:
            pidfd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            raise WrongStatus("container not running", status="stopped", op="kill",
                              container=self.id) from None
        try:
            if not proc.pid_alive(self.pid, self.st.get("start_time")):
                raise WrongStatus("container not running", status="stopped", op="kill",
                                  container=self.id)
            signal.pidfd_send_signal(pidfd, sig)
        except ProcessLookupError:
            raise WrongStatus("container not running", status="stopped", op="kill",
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
        while proc.pid_alive(self.pid, self.st.get("start_time")):
            if time.monotonic() > deadline:
                raise PyruncError("container init still running", step="delete", container=self.id)
            time.sleep(0.01)

    def delete(self, *, force: bool = False) -> None:
        status = self.status()
        if status in ("running", "paused"):
            if not force:
                raise WrongStatus(f"cannot delete container {self.id} that is not stopped: {status}",
                                  status=status, op="delete")
            self._kill_and_wait()
        elif status == "created":
            self._kill_and_wait()
        self.destroy()

    def destroy(self) -> None:
        """Remove cgroups (killing stragglers), the rootfs mount, run poststop hooks, remove the
        state directory."""
        cg = self.cgroup
        if cg is not None:
            if cg.exists() and cg.pids():
                cg.signal_all(signal.SIGKILL)
            cg.destroy()
        detach_inherited_rootfs(self.st, self.id)
        hooks = self.st.get("hooks")
        if hooks and hooks.get("poststop"):
            from . import log
            from .hooks import run_hooks_warn

            run_hooks_warn(hooks, "poststop", self.hook_state("stopped"),
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
        status = self.status()
        if status == "stopped":
            raise WrongStatus("container not running", status=status, op="update", container=self.id)
        cg = self._require_cgroup("update")
        from .cgroups.resources import merge_resources

        config = self.st.setdefault("config", {})
        lin = config.setdefault("linux", {})
        old = lin.get("resources") or {}
        merged, touched = merge_resources(old, patch)
        try:
            cg.set({k: merged[k] for k in touched if k in merged})
        except PyruncError as e:
            try:
                cg.set({k: old[k] for k in touched if k in old})
            except PyruncError:
                pass
            e.container = self.id
            raise
        lin["resources"] = merged
        self.dir.save(self.st)

    def processes(self) -> list[int]:
        """Host pids of every process in the container's cgroup (sub-cgroups included)."""
        cg = self.cgroup
        if cg is None or not cg.exists():
            return []
        return cg.pids()


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
        c.st = {"pid": rec.get("pid") or 0, "start_time": rec.get("start_time"), "cgroup": rec.get("cgroup")}
        c._kill_and_wait()
        cg = c.cgroup
        if cg is not None:
            cg.destroy()
        detach_inherited_rootfs(rec, cid)
    sd.remove()


def detach_inherited_rootfs(record: dict, cid: str) -> None:
    """A container without a mount namespace left its rootfs mount (and every mount inside
    it) in our namespace: remove it, so delete leaves the mount table as create found it."""
    if not record.get("rootfs_mount"):
        return
    from .rootfs.inherited import detach_rootfs

    try:
        detach_rootfs(record["rootfs"], record["rootfs_mount"])
    except PyruncError as e:
        e.container = cid
        e.step = "delete"
        raise


def all_containers(root: str) -> list[Container]:
    out = []
    for cid in list_ids(root):
        try:
            out.append(Container.load(root, cid, lock=False))
        except PyruncError:
            continue
    return out
