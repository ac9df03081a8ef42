"""``pyrunc.Container``: one container under a state root, driven from Python.

A handle: it holds the root and the id, and every operation loads the container's state afresh
and calls the lifecycle object (pyrunc.container.Container) the CLI calls, under the same
per-container lock, so a handle is as good as the `pyrunc` command on the same root: another
process (or thread) may act on the same container between two calls, and each call sees it.
"""

from __future__ import annotations

import os
import threading

from ..container import Container as Lifecycle
from ..container import all_containers, delete_by_id
from ..errors import EXEC, NotFound, TimeoutExpired
from ..foreground import Pipes
from ..options import CreateOptions, ExecOptions
from ._prepare import (
    Stdio,
    apply_process,
    container_id,
    fail,
    limits_patch,
    prepare_config,
    rootless_mode,
    state_root,
    timeout_seconds,
)
from ._run import CompletedRun, reap_child, shielded, take_down, teardown, wait_for

EXEC_DRAIN_SECONDS = 2.0  # an exec'd process's children may outlive it and hold its pipes


class Container:
    """A container kept under ``root`` (default /run/pyrunc, as the CLI's ``--root``).

    ``Container.create(...)`` makes one (status "created"), ``Container(id)`` or
    ``Container.get(id)`` names an existing one, ``Container.list()`` gives them all. As a
    context manager it is deleted (forced) when the block ends, however it ends::

        with pyrunc.Container.create(rootfs="rootfs", args=["sleep", "60"]) as c:
            c.start()
            print(c.exec(["ps"], capture=True, text=True).stdout)
            c.kill("KILL")  # PID 1 of a pid namespace ignores an unhandled TERM
            c.wait(timeout=5)

    Thread-safe: each call locks the container as the CLI does. ``wait`` gives an exit status
    only to the process that created the container (its init is that process's child; see
    ``run`` about the subreaper); for any other it waits and returns None.
    """

    def __init__(self, id: str, *, root=None):
        self.id = container_id(id)
        self.root = state_root(root)
        self.stdin = self.stdout = self.stderr = None  # files, for PIPE at create
        self._init_pid = 0  # our unreaped child, when we created it
        self._start_time: int | None = None
        self._returncode: int | None = None
        self._reap_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"pyrunc.Container({self.id!r}, root={self.root!r})"

    # -- finding and making ----------------------------------------------------------------

    @classmethod
    def get(cls, id: str, *, root=None) -> Container:
        """The existing container ``id``; NotFound if there is none."""
        c = cls(id, root=root)
        c._load(lock=False)
        return c

    @classmethod
    def list(cls, *, root=None) -> list[Container]:
        """Every container under ``root``."""
        root = state_root(root)
        return [cls(lc.id, root=root) for lc in all_containers(root)]

    @classmethod
    def create(cls, bundle=None, args=None, *, rootfs=None, config=None, id=None, root=None,
               env=None, cwd=None, user=None, memory=None, pids=None, cpus=None, resources=None,
               stdin=None, stdout=None, stderr=None, text=False, rootless=None,
               systemd_cgroup=False) -> Container:
        """Create a container whose init waits for ``start`` (`pyrunc create`).

        The arguments are ``run``'s (bundle, rootfs or config; process changes; limits). The
        process's ``stdin``/``stdout``/``stderr`` are None (ours), DEVNULL, an fd, a file, or
        PIPE: the handle's ``stdin``/``stdout``/``stderr`` are then the other ends, as files
        (binary, or text with ``text=True``). Nothing is left if it fails or is interrupted."""
        if not isinstance(systemd_cgroup, bool):
            raise fail("systemd_cgroup must be True or False")
        c = cls(container_id(id), root=root)
        mode = rootless_mode(rootless)
        io = Stdio(stdin, stdout, stderr, text=text)
        bundle_dir, cfg = prepare_config(bundle, rootfs, config, mode, args=args, env=env, cwd=cwd,
                                         user=user, memory=memory, pids=pids, cpus=cpus,
                                         resources=resources)
        lc = Lifecycle(c.root, c.id)
        reap: list = [None]
        try:
            io.open()
            lc.make(CreateOptions(bundle=bundle_dir, config=cfg, subreaper=True, detach=True,
                                  rootless=mode, systemd_cgroup=systemd_cgroup, stdio=io.child))
            reap[0] = lc.pid
            io.close_child()
            c._adopt(lc.pid, lc.record.start_time, io)
            return c
        except BaseException:
            teardown((take_down, lc, reap), (io.close,))
            raise

    def _adopt(self, pid: int, start_time: int | None, io: Stdio) -> None:
        self._init_pid, self._start_time = pid, start_time
        ends = io.take_parent()
        for name, fd, mode in (("stdin", ends[0], "w"), ("stdout", ends[1], "r"), ("stderr", ends[2], "r")):
            if fd is not None:
                setattr(self, name, open(fd, mode + ("" if io.text else "b"), encoding="utf-8" if io.text else None,
                                         errors="replace" if io.text else None))

    def _load(self, *, lock: bool) -> Lifecycle:
        return Lifecycle.load(self.root, self.id, lock=lock)

    # -- reading -----------------------------------------------------------------------------

    @property
    def status(self) -> str:
        """"created", "running", "paused" or "stopped", read now from the kernel."""
        return self._load(lock=False).status()

    @property
    def pid(self) -> int:
        """The init's host pid (0 once stopped)."""
        return self.state()["pid"]

    def state(self) -> dict:
        """The OCI state document (what `pyrunc state` prints)."""
        return self._load(lock=False).oci_state()

    @property
    def config(self) -> dict:
        """The config the container was created with."""
        return self._load(lock=False).config

    def processes(self) -> list[int]:
        """Host pids of every process in the container's cgroup."""
        return self._load(lock=False).processes()

    def stats(self) -> dict:
        """Resource statistics of the container's cgroup (`pyrunc events --stats`'s data)."""
        return self._load(lock=False).stats()

    def events(self, interval: float = 5.0):
        """An iterator of events until the container stops: ``{"type": "stats", ...}`` every
        ``interval`` seconds, ``{"type": "oom", ...}`` for each OOM kill (`pyrunc events`).
        Close it (or leave the ``for`` loop) to stop early."""
        if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0:
            raise fail(f"interval must be a positive number of seconds, not {interval!r}")
        return self._load(lock=False).events(float(interval))

    # -- acting ------------------------------------------------------------------------------

    def start(self) -> None:
        """Run the user's program in the created container (`pyrunc start`)."""
        with self._load(lock=True) as lc:
            lc.start()

    def kill(self, signal: int | str = "SIGTERM", *, all_processes: bool = False) -> None:
        """Send ``signal`` (a number or a name: 9, "KILL", "SIGKILL") to the init, or to every
        process of the container with ``all_processes`` (`pyrunc kill [--all]`)."""
        sig = signal_number(signal)
        if not isinstance(all_processes, bool):
            raise fail("all_processes must be True or False")
        self._load(lock=False).signal(sig, all_processes=all_processes)

    def pause(self) -> None:
        """Freeze every process of the container (`pyrunc pause`)."""
        with self._load(lock=True) as lc:
            lc.pause()

    def resume(self) -> None:
        """Thaw a paused container (`pyrunc resume`)."""
        with self._load(lock=True) as lc:
            lc.resume()

    def update(self, resources: dict | None = None, *, memory=None, pids=None, cpus=None) -> None:
        """Change the container's limits (`pyrunc update`): ``resources`` shaped like
        ``linux.resources``, or the convenience ``memory``/``pids``/``cpus`` as in ``run``."""
        patch = limits_patch(memory=memory, pids=pids, cpus=cpus, resources=resources)
        if not patch:
            raise fail("nothing to update: give resources, memory, pids or cpus")
        from ..cgroups.patch import check_patch

        check_patch(patch)
        with self._load(lock=True) as lc:
            lc.update(patch)

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait until the container's init has exited. Its returncode (``-N``: killed by signal
        N) when this process created the container, else None. TimeoutExpired if ``timeout``
        seconds pass first; the container is left as it is."""
        limit = timeout_seconds(timeout)
        with self._reap_lock:
            if self._returncode is not None:
                return self._returncode
            if self._init_pid:
                status = wait_for(self.id, self._init_pid, limit, None)
                if status is None:
                    raise TimeoutExpired(f"still running after {limit:g} seconds", timeout=limit,
                                         step="wait", container=self.id)
                self._init_pid = 0
                self._returncode = os.waitstatus_to_exitcode(status)
                return self._returncode
        return self._wait_foreign(limit)

    def _wait_foreign(self, limit: float | None) -> None:
        import time

        deadline = None if limit is None else time.monotonic() + limit
        while self._load(lock=False).status() != "stopped":
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutExpired(f"still running after {limit:g} seconds", timeout=limit,
                                     step="wait", container=self.id)
            time.sleep(0.05)
        return None

    def delete(self, *, force: bool = False) -> None:
        """Remove the container (`pyrunc delete`); ``force`` kills a running one first."""
        if not isinstance(force, bool):
            raise fail("force must be True or False")
        delete_by_id(self.root, self.id, force=force)
        self._reap()

    def _reap(self) -> None:
        with self._reap_lock:
            if self._init_pid:
                reap_child(self._init_pid, self._start_time)
            self._init_pid = 0  # only now: an interrupt inside reap_child has it run again

    def exec(self, args, *, env=None, cwd=None, user=None, stdin=None, stdout=None, stderr=None,
             capture=False, input=None, text=False, timeout=None, check=False) -> CompletedRun:
        """Run ``args`` in the running container and wait for it (`pyrunc exec`): the process
        is the container's own (env, user, capabilities ...) with these changes; input, output,
        ``timeout`` (kills the process) and ``check`` as in ``run``."""
        if not isinstance(check, bool):
            raise fail("check must be True or False")
        limit = timeout_seconds(timeout)
        io = Stdio(stdin, stdout, stderr, capture=capture, input=input, text=text)
        lc = self._load(lock=False)
        process = exec_process(lc.config, args, env=env, cwd=cwd, user=user)
        pid = [0]
        pipes = None
        try:
            io.open()
            stdin_end, stdout_end, stderr_end = io.take_parent()
            pipes = Pipes(stdin_end, io.input, stdout_end, stderr_end)
            pid[0] = lc.exec(process, ExecOptions(stdio=io.child))
            io.close_child()
            status = wait_for(self.id, pid[0], limit, pipes)
            if status is None:
                kill_child(pid[0])
            pid[0] = 0  # reaped, by the wait or by kill_child
            pipes.drain(EXEC_DRAIN_SECONDS)
            out, err = io.decode(pipes.output(pipes.stdout)), io.decode(pipes.output(pipes.stderr))
        finally:
            teardown((kill_child, pid[0]) if pid[0] else None, (io.close,),
                     (pipes.close,) if pipes is not None else None)
        if status is None:
            raise TimeoutExpired(f"exec {process['args']!r} timed out after {limit:g} seconds: killed",
                                 timeout=limit, step=EXEC, container=self.id, stdout=out, stderr=err)
        result = CompletedRun(self.id, process["args"], os.waitstatus_to_exitcode(status), out, err)
        if check:
            result.check_returncode()
        return result

    # -- with --------------------------------------------------------------------------------

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *_exc) -> bool:
        """Delete the container (forced), whatever happened in the block; close the pipes."""
        try:
            shielded(self._delete_quietly)
        finally:
            for f in (self.stdin, self.stdout, self.stderr):
                if f is not None:
                    try:
                        f.close()
                    except OSError:
                        pass
        return False

    def _delete_quietly(self) -> None:
        try:
            delete_by_id(self.root, self.id, force=True)
        except NotFound:
            pass
        self._reap()


def kill_child(pid: int) -> None:
    """SIGKILL and reap our child ``pid`` (still unreaped, so the pid is still its own)."""
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def exec_process(config: dict, args, *, env=None, cwd=None, user=None) -> dict:
    """The container's own process document with the caller's changes (what `pyrunc exec`
    does without --process)."""
    import marshal

    process = marshal.loads(marshal.dumps(config.get("process") or {}))
    if args is None:
        raise fail("args are needed")
    apply_process(process, args=args, env=env, cwd=cwd, user=user)
    return process


def signal_number(sig) -> int:
    if isinstance(sig, str):
        from ..errors import UsageError
        from ..signals import parse_signal

        try:
            return parse_signal(sig)
        except UsageError as e:
            raise fail(e.cause) from None
    if isinstance(sig, bool) or not isinstance(sig, int) or not 0 < sig < 65:
        raise fail(f"signal must be a number (1-64) or a name like 'TERM', not {sig!r}")
    return int(sig)

