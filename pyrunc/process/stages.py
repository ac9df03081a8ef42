"""What every forked stage shares: its context, how it starts, forks, reports and runs steps.

The stages are stage 1 and the init of `create` (stage1.py, init.py) and the joiner and tenant
of `exec` (tenant.py). Each is forked from pyrunc and leaves only through ``os._exit``; each
starts with ``become_stage`` (a name for `ps`, death with its parent, non-dumpable, none of the
parent's other fds), and any failure becomes one ``error`` message on the sync channel
(``report``), which the parent raises as a ChildError naming the step.
"""

from __future__ import annotations

import _signal as signal  # the C module: no enum import on the hot path
import os
import sys
import time

from .. import linux, namespaces
from ..cgroups.base import write_file
from ..errors import JOIN_CGROUPS, PyruncError
from . import faults
from .channel import Channel

TYPE_CHECKING = False  # typing's own flag without importing typing on the hot path
if TYPE_CHECKING:
    from ..rootfs.sources import SourceTree
    from ..security import capabilities


class InitContext:
    """What the stages need, prepared by the parent before forking (so stages do no parsing)."""

    def __init__(self, *, cid: str, config: dict, bundle: str, rootfs_path: str, chan: Channel,
                 fifo_fd: int, ns_plan: namespaces.Plan, join_fds: list[tuple[str, int]],
                 caps: capabilities.CapPlan | None, no_pivot: bool, no_new_keyring: bool,
                 preserve_fds: int):
        self.cid = cid
        self.config = config
        self.process = config.get("process") or {}
        self.linux = config.get("linux") or {}
        self.bundle = bundle
        self.rootfs = rootfs_path
        self.chan = chan
        self.fifo_fd = fifo_fd
        self.ns = ns_plan
        self.join_fds = join_fds
        self.caps = caps
        self.no_pivot = no_pivot
        self.no_new_keyring = no_new_keyring
        self.preserve_fds = preserve_fds
        self.executable: str | None = None
        self.start_fd: int | None = None
        self.seccomp = None  # a CompiledFilter, compiled by the parent before forking
        # mount index -> its bind source cloned (and idmapped) by the parent (rootfs/sources.py)
        self.source_trees: dict[int, SourceTree] = {}
        self.timeline: list | None = None  # [(step, seconds)] when --debug asks for a timeline
        self.fault_step: str | None = None  # test-only (faults.py): kill the parent before this step
        self.pidfd_socket: int | None = None  # --pidfd-socket, connected by the parent
        self.fault_fd: int | None = None  # ... by writing here (faults.arm)
        self.env: dict[str, str] = {}
        # Not root in the initial user namespace (init.let_owner_join): rootless without privileges.
        self.unprivileged_caller = False
        self.in_cgroup = False  # "cgroup_joined" received: placed, resources written
        # Placement at birth, when the parent chose it (launch.plan_cgroup_birth): stage 1 was
        # cloned into the cgroup2 directory and writes "0" to the tasks file of each of these.
        self.cgroup_v1_dirs: list[str] = []
        # The Python API's pipes or files for the process's stdin, stdout, stderr (None: ours).
        self.stdio: tuple[int, int, int] | None = None

    def close_parent_fds(self) -> None:
        """In the parent, once the stage has them (or the launch failed): our copies of the fds
        handed to the stage. Safe to call again."""
        fds = [fd for _, fd in self.join_fds] + [t.fd for t in self.source_trees.values()]
        fds += [fd for fd in (self.fifo_fd, self.fault_fd) if fd is not None and fd >= 0]
        self.join_fds, self.source_trees, self.fifo_fd, self.fault_fd = [], {}, -1, None
        for fd in fds:
            os.close(fd)


def become_stage(ctx: InitContext, title: str) -> None:
    """What every forked stage does first: a name for `ps`, death with its parent, no ptrace or
    /proc access from the container (non-dumpable), and none of the parent's other fds."""
    linux.set_name(title)
    linux.set_pdeathsig(signal.SIGKILL)
    linux.set_dumpable(False)
    take_stdio(ctx)
    close_foreign_fds(ctx)
    reset_cpu_affinity()


SET_OOM_SCORE_ADJ = "set oom_score_adj"


def set_oom_score_adj(ctx: InitContext) -> None:
    """process.oomScoreAdj, written by a stage before it becomes non-dumpable or enters any
    namespace; everything it forks inherits the value (runc's stage 0 writes it at the same point).

    Not from inside: in a user namespace, created or joined, the init is the namespace's root,
    and a non-dumpable process's /proc files belong to the host's root, whom it is not (EACCES,
    even to open the file for a value that would not change). Here we are still the caller, on
    the host's /proc, opened through procfs like every other procfs write (a value checked
    to be procfs, no path component followed). Lowering it needs CAP_SYS_RESOURCE, which a rootless caller (and root on
    some hosts) lacks: an unchanged value is not written at all."""
    adj = ctx.process.get("oomScoreAdj")
    if adj is None:
        return
    held = adj
    from ..linux import procfs

    try:
        fd = procfs.open_once("self/oom_score_adj", os.O_RDWR | os.O_CLOEXEC)
        try:
            held = int(os.read(fd, 32) or 0)
            if held != adj:
                os.pwrite(fd, str(adj).encode(), 0)
        finally:
            os.close(fd)
    except OSError as e:
        if isinstance(e, PermissionError) and adj < held:
            raise PyruncError(f"set oom_score_adj {adj}: below the caller's ({held}), which needs "
                              "CAP_SYS_RESOURCE (rootless, only raising it is allowed)",
                              step=SET_OOM_SCORE_ADJ, errno=e.errno or 0) from None
        raise PyruncError(f"set oom_score_adj {adj}: {e.strerror}", step=SET_OOM_SCORE_ADJ,
                          errno=e.errno or 0) from None


# Every CPU the kernel could have (runc sets all 1024 bits of a cpu_set_t too): the kernel keeps
# of it what the cpuset allows.
ALL_CPUS = range(1024)


def reset_cpu_affinity() -> None:
    """The container's processes run on every CPU their cpuset allows, not on the ones the
    caller happened to be pinned to (`taskset -c 0 pyrunc run ...`): runc 1.2.7+ resets the
    affinity so too (an exec's execCPUAffinity.initial is applied after this)."""
    try:
        os.sched_setaffinity(0, ALL_CPUS)
    except OSError:
        pass  # a cpuset with no CPU at all: joining it fails later, with a clear error


def take_stdio(ctx: InitContext) -> None:
    """Make the fds the caller chose (the Python API's pipes) our stdin, stdout and stderr, before
    every other fd is closed; what we fork and exec inherits them. Copied first, so fds that
    overlap 0-2 or each other land where they should. Done in the child: the caller's own
    stdio, which other threads of a program may be using, is never touched."""
    if ctx.stdio is None:
        return
    copies = [os.dup(fd) for fd in ctx.stdio]
    for target, fd in enumerate(copies):
        os.dup2(fd, target)
        os.close(fd)


def fork_after_report(chan: Channel, *, placed: bool = False) -> int:
    """Fork; the parent reports the child's pid before the child may say anything.

    Both share the channel: without the gate the child's first message could
    overtake the pid report. Returns 0 in the child, the pid in the parent.
    ``placed`` goes into the report: we joined the container's cgroups at
    birth, so the child is born in them too and needs no move.
    """
    gate_r, gate_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(gate_w)
        os.read(gate_r, 1)  # EOF or a byte: stage 1 has reported us (or died)
        os.close(gate_r)
        return 0
    os.close(gate_r)
    try:
        chan.send("pid", pid=pid, placed=placed)
    finally:
        os.close(gate_w)
    return pid


def join_cgroups_at_birth(ctx: InitContext) -> None:
    """Join the container's v1 cgroups by writing "0" to their ``tasks`` (the parent cloned us
    into the cgroup2 one already), so everything we fork is born in all of them.

    A thread that moves only itself takes no threadgroup lock, so no RCU grace period either
    (~10 ms for every cgroup.procs write that starts one). Done first: before a user namespace
    (whose root may not write there) and while the host's cgroup paths are still ours to see.
    Raises CgroupError naming the file; nothing to do when no birth was planned.
    """
    for directory in ctx.cgroup_v1_dirs:
        write_file(directory, "tasks", "0", step=JOIN_CGROUPS, container=ctx.cid)


def close_foreign_fds(ctx: InitContext) -> None:
    """Close every inherited fd the stages do not need (the lock, --log, state dirs ...).

    The init keeps a flock'd fd otherwise and holds the container's lock
    forever; it would also carry host directory fds into the container.
    """
    keep = {0, 1, 2, ctx.chan.fileno(), ctx.fifo_fd, *(fd for _, fd in ctx.join_fds)}
    if ctx.fault_fd is not None:
        keep.add(ctx.fault_fd)
    if ctx.pidfd_socket is not None:
        keep.add(ctx.pidfd_socket)
    keep.update(range(3, 3 + ctx.preserve_fds))
    keep.update(t.fd for t in ctx.source_trees.values())
    low = 3
    for fd in sorted(k for k in keep if k >= 3) + [1 << 30]:
        if fd > low:
            linux.close_range(low, fd - 1)
        low = max(low, fd + 1)
    procfs = sys.modules.get("pyrunc.linux.procfs")  # not imported for it: only if in use
    if procfs is not None:
        procfs.forget()  # a handle the caller opened is among the closed fds


def detach_stdio() -> None:
    """With a terminal, the caller's stdio must not stay open in the container (it would keep
    containerd or conmon waiting for EOF): /dev/null until the pty slave takes its place."""
    null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    for target in (0, 1, 2):
        os.dup2(null, target)
    os.close(null)


def report(chan: Channel, exc: BaseException, step: str) -> bool:
    """Send a failure to the parent; False when nobody is listening any more."""
    if isinstance(exc, PyruncError):
        return chan.send_error(exc.step or step, exc.cause)
    if isinstance(exc, OSError):
        text = exc.strerror or str(exc)
        return chan.send_error(step, f"{exc.filename}: {text}" if exc.filename else text)
    return chan.send_error(step, f"{type(exc).__name__}: {exc}")


def send_pidfd(ctx: InitContext, kind: bytes) -> None:
    """--pidfd-socket: a pidfd of this process (the container's init, or an exec'd process) to the
    caller's socket, one SCM_RIGHTS message whose payload says which (runc's ``standard`` or
    ``setns``); the socket is closed after, so the caller then sees end-of-file."""
    if ctx.pidfd_socket is None:
        return
    import _socket
    import struct

    sock = _socket.socket(fileno=ctx.pidfd_socket)
    ctx.pidfd_socket = None
    try:
        pidfd = os.pidfd_open(os.getpid())
        try:
            sock.sendmsg([kind], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("i", pidfd))])
        finally:
            os.close(pidfd)
    except OSError as e:
        raise PyruncError(f"send pidfd to the pidfd socket: {e.strerror}", errno=e.errno or 0) from None
    finally:
        sock.close()


def run_steps(ctx: InitContext, steps: tuple, exit_status: int) -> None:
    """Run a stage's steps in order; a failure is reported naming the step, then the stage exits
    with ``exit_status``. The last step execs, so returning is itself a failure.

    Under --debug each step's time goes into ``ctx.timeline`` for the parent's log; a fault armed
    by the tests (faults.py) kills the parent just before the named step."""
    step = "init"
    try:
        clock = time.monotonic
        for fn in steps:
            step = fn.__name__
            faults.before_step(ctx, step)
            if ctx.timeline is not None:
                began = clock()
                fn(ctx)
                ctx.timeline.append((step, clock() - began))
            else:
                fn(ctx)
    except BaseException as e:  # noqa: BLE001 - a stage only ever leaves through os._exit
        if not report(ctx.chan, e, step):
            # After `ready` the parent is gone: say it on the container's stderr instead.
            cause = e.cause if isinstance(e, PyruncError) else str(e)
            os.write(2, f"pyrunc: container {ctx.cid}: {step}: {cause}\n".encode())
        os._exit(exit_status)
    os._exit(exit_status)
