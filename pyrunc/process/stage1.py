"""Stage 1: the first process forked by `create`, and what every forked stage shares.

Stage 1 is born in the container's cgroup2 directory (cloned there by the
parent) and joins its v1 cgroups itself (``join_cgroups_at_birth``), then
joins the namespaces given by path, unshares the new ones (a user namespace
first, its maps written by the parent) and forks the init, which is PID 1 of
the new pid namespace and inherits every cgroup; it reports the init's pid and exits, so
the init is reparented to the caller (a subreaper) and no pyrunc process
stays between them.

This module is all the parent imports of the stages. The init's own steps
(init.py: rootfs, devices, capabilities, console ...) are imported by the
init itself, right after the fork: their import then overlaps the parent's
move of the init into its cgroup instead of delaying the fork.
"""

from __future__ import annotations

import _signal as signal  # the C module: no enum import on the hot path
import os
import time

from .. import linux, namespaces
from ..cgroups.base import write_file
from ..errors import CgroupError, PyruncError
from .channel import Channel

TYPE_CHECKING = False  # typing's own flag without importing typing on the hot path
if TYPE_CHECKING:
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
        self.idmap_fds: dict[int, int] = {}  # mount index -> user namespace fd (idmapped mounts)
        self.timeline: list | None = None  # [(step, seconds)] when --debug asks for a timeline
        self.fault_step: str | None = None  # test-only: have the parent SIGKILLed before this step
        self.env: dict[str, str] = {}
        # Not root in the initial user namespace (init.let_owner_join): rootless without privileges.
        self.unprivileged_caller = False
        self.in_cgroup = False  # "cgroup_joined" received: placed, resources written
        # Placement at birth, when the parent chose it (parent.plan_cgroup_birth): stage 1 was
        # cloned into the cgroup2 directory and writes "0" to the tasks file of each of these.
        self.cgroup_v1_dirs: list[str] = []


def stage1(ctx: InitContext) -> None:
    """Join/unshare namespaces, fork the init into them, report its pid, exit."""
    step = "stage1"
    try:
        become_stage(ctx, "pyrunc:[1:STAGE]")
        if ctx.process.get("terminal"):
            detach_stdio()
        try:
            join_cgroups_at_birth(ctx)
            placed = True
        except CgroupError:
            placed = False  # the parent moves the init the usual way
        if ctx.ns.creates("user") or any(kind == "user" for kind, _ in ctx.join_fds):
            step = "import init"
            import_init_steps()
        step = "join namespaces"
        namespaces.join(ctx.join_fds)
        for _, fd in ctx.join_fds:
            os.close(fd)
        if ctx.ns.creates("user"):
            step = "create user namespace"
            create_user_namespace(ctx)
        step = "create namespaces"
        # A cgroup namespace is rooted where its creator stands: the init unshares it once it is
        # in the container's cgroup for sure (enter_cgroup).
        rest = ctx.ns.new_flags & ~(linux.CLONE_NEWUSER | linux.CLONE_NEWCGROUP)
        if rest:
            try:
                linux.unshare(rest)
            except OSError as e:
                raise PyruncError(f"unshare: {e.strerror}", step=step) from None
        if ctx.ns.creates("time"):
            step = "set time offsets"
            set_time_offsets(ctx)
        step = "fork init"
        pid = fork_after_report(ctx.chan, placed=placed)
        if pid == 0:
            enter_init(ctx)  # never returns
        os._exit(0)
    except BaseException as e:  # noqa: BLE001 - a stage only ever leaves through os._exit
        report(ctx.chan, e, step)
        os._exit(1)


def import_init_steps() -> None:
    """Import the init's steps before entering a user namespace, not in the init after it.

    Once our uid is a mapped one, pyrunc's own files may be out of reach: a checkout under a
    0700 directory (`mktemp -d`) is readable by the host's root only, and capabilities in the
    new namespace do not cover host root's inodes. The init forked later inherits the modules.
    """
    from . import init  # noqa: F401


def become_stage(ctx: InitContext, title: str) -> None:
    """What every forked stage does first: a name for `ps`, death with its parent, no ptrace or
    /proc access from the container (non-dumpable), and none of the parent's other fds."""
    linux.set_name(title)
    linux.set_pdeathsig(signal.SIGKILL)
    linux.set_dumpable(False)
    close_foreign_fds(ctx)


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
        write_file(directory, "tasks", "0", step="join cgroups", container=ctx.cid)


def create_user_namespace(ctx: InitContext) -> None:
    """First of the new namespaces: its credentials own every later one.

    The parent writes our uid_map/gid_map from outside (only a process in
    the parent namespace may); then we become root of the new namespace.
    """
    try:
        linux.unshare(linux.CLONE_NEWUSER)
    except OSError as e:
        raise PyruncError(f"unshare user namespace: {e.strerror}", step="create user namespace") from None
    # Dumpable while the parent writes our maps: a non-dumpable process's /proc files belong to
    # root, which an unprivileged parent (and newuidmap's owner check) is not.
    linux.set_dumpable(True)
    try:
        ctx.chan.send("userns")
        ctx.chan.expect("userns_done")
    finally:
        linux.set_dumpable(False)
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def set_time_offsets(ctx: InitContext) -> None:
    """Offsets can only be written before any process lives in the new time namespace."""
    lines = []
    for clock, off in (ctx.linux.get("timeOffsets") or {}).items():
        lines.append(f"{clock} {off.get('secs', 0)} {off.get('nanosecs', 0)}\n")
    if not lines:
        return
    # Non-dumpable /proc/self files belong to the host's root, which a new user namespace's
    # root is not: be dumpable just for this write (no process runs in the container yet).
    linux.set_dumpable(True)
    try:
        from ..linux import procfs  # the host's /proc: we have not left the host's mount tree

        procfs.write("self/timens_offsets", "".join(lines).encode())
    except OSError as e:
        raise PyruncError(f"write timens_offsets: {e.strerror}", step="set time offsets") from None
    finally:
        linux.set_dumpable(False)


def close_foreign_fds(ctx: InitContext) -> None:
    """Close every inherited fd the stages do not need (the lock, --log, state dirs ...).

    The init keeps a flock'd fd otherwise and holds the container's lock
    forever; it would also carry host directory fds into the container.
    """
    keep = {0, 1, 2, ctx.chan.fileno(), ctx.fifo_fd, *(fd for _, fd in ctx.join_fds)}
    keep.update(range(3, 3 + ctx.preserve_fds))
    keep.update(ctx.idmap_fds.values())
    low = 3
    for fd in sorted(k for k in keep if k >= 3) + [1 << 30]:
        if fd > low:
            linux.close_range(low, fd - 1)
        low = max(low, fd + 1)


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


def enter_init(ctx: InitContext) -> None:
    """The init's first act: import its steps (host paths are still reachable; pivot_root comes
    later) while the parent moves it into the cgroup, then run them."""
    step = "import init"
    try:
        began = time.monotonic()
        from .. import bundle
        from .init import init_main

        bundle.uninstall()  # all imported: the waiting init need not keep the bundle's code
        if ctx.timeline is not None:
            ctx.timeline.append((step, time.monotonic() - began))
    except BaseException as e:  # noqa: BLE001
        report(ctx.chan, e, step)
        os._exit(1)
    init_main(ctx)
