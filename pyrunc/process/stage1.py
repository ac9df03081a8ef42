"""Stage 1: the first process forked by `create`.

Stage 1 is born in the container's cgroup2 directory (cloned there by the parent) and joins its
v1 cgroups itself (``stages.join_cgroups_at_birth``), then joins the namespaces given by path,
unshares the new ones (a user namespace first, its maps written by the parent) and forks the
init, which is PID 1 of the new pid namespace and inherits every cgroup; it reports the init's
pid and exits, so the init is reparented to the caller (a subreaper) and no pyrunc process stays
between them.

The init's own steps (init.py: rootfs, devices, capabilities, console ...) are imported by the
init itself, right after the fork: their import then overlaps the parent's move of the init into
its cgroup instead of delaying the fork. What every stage shares is in stages.py.
"""

from __future__ import annotations

import os
import time

from .. import linux, namespaces
from ..errors import CREATE_USER_NAMESPACE, CgroupError, PyruncError
from . import channel
from .stages import (
    InitContext,
    become_stage,
    detach_stdio,
    fork_after_report,
    join_cgroups_at_birth,
    report,
    set_oom_score_adj,
)


def stage1(ctx: InitContext) -> None:
    """Join/unshare namespaces, fork the init into them, report its pid, exit."""
    step = "stage1"
    try:
        set_oom_score_adj(ctx)  # still the caller, dumpable, on the host: see its docstring
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
        if "user" in ctx.ns.join:
            step = BECOME_ROOT
            become_root_in_joined_user_namespace()
        if ctx.ns.creates("user"):
            step = CREATE_USER_NAMESPACE
            create_user_namespace(ctx)
        step = "create namespaces"
        # A cgroup namespace is rooted where its creator stands: the init unshares it once it is
        # in the container's cgroup for sure (enter_cgroup).
        rest = ctx.ns.new_flags & ~(linux.CLONE_NEWUSER | linux.CLONE_NEWCGROUP)
        if rest:
            try:
                linux.unshare(rest)
            except OSError as e:
                raise PyruncError(f"unshare: {e.strerror}", step=step, errno=e.errno or 0) from None
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


def create_user_namespace(ctx: InitContext) -> None:
    """First of the new namespaces: its credentials own every later one.

    The parent writes our uid_map/gid_map from outside (only a process in
    the parent namespace may); then we become root of the new namespace.
    """
    try:
        linux.unshare(linux.CLONE_NEWUSER)
    except OSError as e:
        raise PyruncError(f"unshare user namespace: {e.strerror}", step=CREATE_USER_NAMESPACE,
                          errno=e.errno or 0) from None
    # Dumpable while the parent writes our maps: a non-dumpable process's /proc files belong to
    # root, which an unprivileged parent (and newuidmap's owner check) is not.
    linux.set_dumpable(True)
    try:
        ctx.chan.send(channel.USERNS)
        ctx.chan.expect(channel.USERNS_DONE)
    finally:
        linux.set_dumpable(False)
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


BECOME_ROOT = "become root in the user namespace"


def become_root_in_joined_user_namespace() -> None:
    """Identity 0 in a user namespace we joined, as after creating one (runc 1.2.1+).

    setns keeps our host ids, which the joined namespace does not map: every file we would make
    (mount points, devices) fails with EOVERFLOW, and no capability applies to its inodes. The
    gid too, unlike runc: a file made before switch_user then has a mapped group as well."""
    try:
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    except OSError as e:
        raise PyruncError(f"setresuid/setresgid 0 in the joined user namespace: {e.strerror} "
                          "(does it map uid and gid 0?)", step=BECOME_ROOT, errno=e.errno or 0) from None


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

        fd = procfs.open_once("self/timens_offsets", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, "".join(lines).encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise PyruncError(f"write timens_offsets: {e.strerror}", step="set time offsets",
                          errno=e.errno or 0) from None
    finally:
        linux.set_dumpable(False)


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
