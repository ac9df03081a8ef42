"""``pyrunc.run``: create, start, wait, delete, in one call that always cleans up.

The steps are the ones `pyrunc run` takes (Container.make, Container.start_or_destroy, delete
by id); only the waiting differs, because a library shares its process with the program
(foreground.wait_child: no signal handlers, only our own child reaped).

Interrupts. A KeyboardInterrupt can be raised between any two bytecodes of the main thread.
Creation's undo stack runs to its end even when one arrives while it unwinds; what a create
interrupted at any other point may leave (a state directory we made, ``StateDir.claimed``) is
deleted by id; and that teardown itself is repeated if an interrupt cuts it short (each of its
steps may run twice). The interrupt is raised once everything is gone.
"""

from __future__ import annotations

import os

from .. import proc
from ..container import Container as Lifecycle
from ..container import delete_by_id
from ..errors import RUN, ProcessFailed, PyruncError, TimeoutExpired, release_frames
from ..foreground import Pipes, wait_child
from ..options import CreateOptions
from ._prepare import (
    Stdio,
    container_id,
    fail,
    prepare_config,
    rootless_mode,
    state_root,
    timeout_seconds,
)

# After the container is gone every writer of its pipes is dead; a process outside it that
# holds one (a hook's child, say) gets this long before we stop reading.
DRAIN_SECONDS = 5.0
TEARDOWN_ATTEMPTS = 5


class CompletedRun:
    """What ``run`` (or ``Container.exec``) returns, shaped like subprocess.CompletedProcess.

    ``returncode`` is the exit code, or ``-N`` when signal N killed the process;
    ``exit_status`` is what a shell (and `pyrunc run`) reports: the code, or 128+N.
    ``stdout``/``stderr`` are bytes (str with ``text=True``) when captured, else None.
    """

    __slots__ = ("id", "args", "returncode", "stdout", "stderr")

    def __init__(self, cid: str, args: list[str], returncode: int, stdout=None, stderr=None):
        self.id = cid
        self.args = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    @property
    def exit_status(self) -> int:
        return 128 - self.returncode if self.returncode < 0 else self.returncode

    def check_returncode(self) -> None:
        """Raise ProcessFailed if the process did not exit with 0."""
        if self.returncode:
            raise ProcessFailed(f"process {self.args!r} exited with status {self.exit_status}",
                                returncode=self.returncode, container=self.id, step=RUN,
                                stdout=self.stdout, stderr=self.stderr)

    def __repr__(self) -> str:
        extra = "".join(f", {k}={getattr(self, k)!r}" for k in ("stdout", "stderr")
                        if getattr(self, k) is not None)
        return f"CompletedRun(id={self.id!r}, args={self.args!r}, returncode={self.returncode}{extra})"


def run(bundle=None, args=None, *, rootfs=None, config=None, id=None, root=None, env=None, cwd=None,
        user=None, memory=None, pids=None, cpus=None, resources=None, stdin=None, stdout=None,
        stderr=None, capture=False, input=None, text=False, timeout=None, check=False,
        rootless=None, systemd_cgroup=False) -> CompletedRun:
    """Run a container to its end and delete it; return its exit status (and output).

    What runs, one of:
      * ``bundle``: a directory with a config.json (and its rootfs); ``args`` replace its
        ``process.args``. ``pyrunc.run("bundle", ["echo", "hi"], capture=True).stdout``.
      * ``rootfs``: a root filesystem directory and ``args``; the config is the one
        `pyrunc spec` writes (read-only root, new namespaces, no network), pointing at it.
      * ``config``: a config as a dict (relative paths are relative to ``bundle``, default the
        current directory); checked exactly as a config.json file would be.

    Changes to the process: ``env`` (a dict or ``NAME=value`` list, over the config's), ``cwd``,
    ``user`` (a uid or a ``(uid, gid)`` pair). The process never gets a terminal here.
    Limits: ``memory`` (bytes, or ``"512m"``), ``pids`` (most processes at once), ``cpus``
    (CPUs' worth of time, ``0.5``), ``resources`` (a dict shaped like ``linux.resources``).

    Input and output, as subprocess.run: ``stdin``/``stdout``/``stderr`` are None (the container
    shares ours), PIPE, DEVNULL, an fd or a file (``stderr=STDOUT`` merges); ``capture=True``
    collects stdout and stderr, ``input`` feeds stdin; ``text=True`` decodes UTF-8.

    ``timeout`` (seconds, counted from the start) kills the container, deletes it, and raises
    TimeoutExpired carrying what was captured. ``check=True`` raises ProcessFailed for a
    non-zero status. ``id`` (default: a random one) and ``root`` (default /run/pyrunc, as the
    CLI) say where the container is kept while it runs; ``rootless`` None means auto.

    Errors are pyrunc.Error subclasses: InvalidArgument (a bad argument; nothing was made),
    ConfigError (``.problems``: JSON pointer and message), AlreadyExists, and any failure of a
    step, naming the container and the step (``.container``, ``.step``, ``.cause``). However it
    ends, a timeout or a KeyboardInterrupt included, nothing is left: no state, cgroup, mount or
    process.

    Process-wide effects, as the kernel has them: the calling process becomes a child subreaper
    (PR_SET_CHILD_SUBREAPER, for good), so that the container's init becomes its child and its
    exit status can be read; only that child is reaped. No signal handler is installed, so
    ``run`` may be called from any thread, and from several at once (each container is locked
    on its own); a program that reaps every child itself (``os.wait()`` in a loop) takes the
    status away, which ``run`` then reports as an error.
    """
    if not isinstance(check, bool) or not isinstance(systemd_cgroup, bool):
        raise fail("check and systemd_cgroup must be True or False")
    root = state_root(root)
    cid = container_id(id)
    limit = timeout_seconds(timeout)
    mode = rootless_mode(rootless)
    io = Stdio(stdin, stdout, stderr, capture=capture, input=input, text=text)
    bundle_dir, cfg = prepare_config(bundle, rootfs, config, mode, args=args, env=env, cwd=cwd,
                                     user=user, memory=memory, pids=pids, cpus=cpus,
                                     resources=resources)
    opts = CreateOptions(bundle=bundle_dir, config=cfg, subreaper=True, detach=False,
                         rootless=mode, systemd_cgroup=systemd_cgroup)
    return _run(Lifecycle(root, cid), opts, io, limit, check)


def _run(lc: Lifecycle, opts: CreateOptions, io: Stdio, limit: float | None, check: bool) -> CompletedRun:
    pipes = None
    reap: list = [None]  # the init's pid until we have reaped it (take_down)
    try:
        io.open()
        pipes = Pipes(*_ends(io))
        opts.stdio = io.child
        lc.make(opts)
        reap[0] = lc.pid
        io.close_child()
        lc.start_or_destroy()
        status = wait_for(lc.id, lc.pid, limit, pipes)
        if status is not None:
            reap[0] = 0
        shielded(take_down, lc, reap)
        pipes.drain(DRAIN_SECONDS)
        out, err = io.decode(pipes.output(pipes.stdout)), io.decode(pipes.output(pipes.stderr))
    finally:
        teardown((take_down, lc, reap), (io.close,), (pipes.close,) if pipes is not None else None)
    args = list((lc.config.get("process") or {}).get("args") or [])
    if status is None:
        raise TimeoutExpired(f"timed out after {limit:g} seconds: killed and deleted", timeout=limit,
                             step=RUN, container=lc.id, stdout=out, stderr=err)
    result = CompletedRun(lc.id, args, os.waitstatus_to_exitcode(status), out, err)
    if check:
        result.check_returncode()
    return result


def _ends(io: Stdio) -> tuple:
    stdin, stdout, stderr = io.take_parent()
    return stdin, io.input, stdout, stderr


def wait_for(cid: str, pid: int, limit: float | None, pipes: Pipes | None) -> int | None:
    """foreground.wait_child, its surprises as pyrunc errors."""
    try:
        return wait_child(pid, limit, pipes)
    except ChildProcessError:
        raise PyruncError(f"process {pid} is not a child of this process any more: its exit status "
                          "was taken by another waiter (os.wait in the program?)", step="wait",
                          container=cid) from None


def take_down(lc: Lifecycle, reap: list) -> None:
    """Delete the container if a state directory of ours may be left (forced: processes, cgroup,
    mounts, state), then reap its init if it is still our unreaped child. ``reap[0]`` is the
    init's pid, 0 once reaped, None when an interrupt came before we learnt it. May run twice."""
    lc.dir.unlock()
    if reap[0] is None:
        rec = lc.dir.load_recovery() if lc.dir.claimed else None
        reap[0] = lc.record.pid or (rec.pid if rec is not None else 0)
        lc.record.start_time = lc.record.start_time or (rec.start_time if rec is not None else None)
    if lc.dir.claimed:
        delete_by_id(lc.dir.root, lc.id, force=True)
        lc.dir.claimed = False
    if reap[0]:
        reap_child(reap[0], lc.record.start_time)
    reap[0] = 0  # only now: an interrupt inside reap_child has it run again


def reap_child(pid: int, start_time: int | None, timeout: float = 5.0) -> None:
    """Reap ``pid`` if it is still the process we started (its start time says so; a zombie
    keeps it) and our child; it has been killed, so it exits at once."""
    if start_time is None or proc.pid_start_time(pid) != start_time:
        return
    try:
        wait_child(pid, timeout)
    except ChildProcessError:
        pass


def shielded(fn, *args) -> None:
    """Run ``fn`` to its end although KeyboardInterrupts arrive meanwhile: each interrupted call
    is made again (``fn`` must bear that), and the interrupt is raised when it is done."""
    interrupted = None
    for _ in range(TEARDOWN_ATTEMPTS):
        try:
            fn(*args)
            break
        except KeyboardInterrupt as e:
            release_frames(e)  # what the interrupted call held (a lock) must not outlive it
            interrupted = e
    if interrupted is not None:
        try:
            raise interrupted
        finally:
            interrupted = None  # no cycle through this frame: what it holds is freed at once


def teardown(*steps) -> None:
    """Run each step, ``(fn, *args)`` (None: nothing), ``shielded``; every one of them, even when
    an earlier one raised (a KeyboardInterrupt after its retry, say), then raise the first
    exception. A ``finally`` of several plain calls would skip the rest at the first raise."""
    first = None
    for step in steps:
        if step is None:
            continue
        try:
            shielded(*step)
        except BaseException as e:  # noqa: BLE001 - raised again below, after the other steps
            if first is None:
                first = e
    if first is not None:
        try:
            raise first
        finally:
            first = None
