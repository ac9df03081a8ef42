"""`exec`: a new process that joins a running container.

The parent (pyrunc exec) opens the init's namespaces after re-checking the
init's start time and starts a joiner in the container's cgroups, the way
`create` starts stage 1 (born there; moved when rootless or when an initial
CPU affinity must come first), then lets it go. The joiner makes itself non-dumpable, joins every namespace
(mount last, so host paths stay reachable until then) and forks once more so
its child lands in the container's pid namespace; that child runs
TENANT_STEPS and execs. The channel is close-on-exec: after the "exec"
message, end-of-file means the program now runs; an error message means the
execve failed.
"""

from __future__ import annotations

import os

from .. import linux, namespaces, proc
from ..errors import EXEC, JOIN_CGROUPS, JOIN_NAMESPACES, PyruncError
from ..linux import procfs
from ..state import Record, oci_state
from . import channel
from . import init as steps
from .channel import Channel
from .launch import (
    compile_seccomp,
    fork_stage,
    kill_started,
    pass_seccomp_listener,
    plan_cgroup_birth,
    take_console,
)
from .stages import (
    InitContext,
    become_stage,
    fork_after_report,
    join_cgroups_at_birth,
    report,
    run_steps,
    send_pidfd,
    set_oom_score_adj,
)

PROC_NS = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
           "user": "user", "cgroup": "cgroup", "time": "time"}
JOIN_ORDER = ("user", "ipc", "uts", "network", "cgroup", "time", "pid", "mount")


def open_container_namespaces(pid: int, config: dict) -> list[tuple[str, int]]:
    """fds of the init's namespaces for every type the container has, in joining order."""
    kinds = {ns["type"] for ns in (config.get("linux") or {}).get("namespaces") or []}
    fds: list[tuple[str, int]] = []
    try:
        for kind in JOIN_ORDER:
            if kind in kinds:
                fds.append((kind, os.open(f"/proc/{pid}/ns/{PROC_NS[kind]}", os.O_RDONLY | os.O_CLOEXEC)))
        if "mount" not in kinds:  # it shares our mount namespace: its root is a chroot
            fds.append(("root", os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)))
    except OSError as e:
        for _, fd in fds:
            os.close(fd)
        raise PyruncError(f"open namespaces of the container init: {e.strerror}", step=EXEC,
                          errno=e.errno or 0) from None
    return fds


def enter_root(fd: int) -> None:
    """chroot into the init's root (a container without a mount namespace of its own): joining
    no mount namespace would leave the process at our /, outside the container's root."""
    try:
        os.fchdir(fd)
        os.chroot(".")
        os.chdir("/")
    except OSError as e:
        raise PyruncError(f"chroot into the container's root: {e.strerror}", step=JOIN_NAMESPACES,
                          errno=e.errno or 0) from None


def joiner(ctx: InitContext) -> None:
    """Child of `pyrunc exec`: join the namespaces, fork the process into the pid ns, exit."""
    step = JOIN_NAMESPACES
    try:
        set_oom_score_adj(ctx)  # on the host, before non-dumpable (stages.set_oom_score_adj)
        become_stage(ctx, "pyrunc:[1:EXEC]")
        initial = (ctx.process.get("execCPUAffinity") or {}).get("initial")
        if initial:  # config.md: before the move into the container's cgroup
            from .. import scheduling

            scheduling.apply_affinity(initial, "initial")
        step = JOIN_CGROUPS
        join_cgroups_at_birth(ctx)  # a failure is exec's: the parent will not move us
        step = JOIN_NAMESPACES
        ctx.chan.expect(channel.GO)
        procfs.prepare()  # while /proc is the host's (linux/procfs.py); the tenant may do better
        namespaces.join([(kind, fd) for kind, fd in ctx.join_fds if kind != "root"])
        for kind, fd in ctx.join_fds:
            if kind == "root":
                enter_root(fd)
            os.close(fd)
        step = "fork"
        pid = fork_after_report(ctx.chan)
        if pid == 0:
            tenant_main(ctx)
        os._exit(0)
    except BaseException as e:  # noqa: BLE001 - a stage only ever leaves through os._exit
        report(ctx.chan, e, step)
        os._exit(1)


def tenant_main(ctx: InitContext) -> None:
    linux.set_name("pyrunc:[2:EXEC]")
    run_steps(ctx, TENANT_STEPS, 255)


def open_private_procfs(ctx: InitContext) -> None:
    """A procfs of the container's own pid namespace if the kernel lets us make one here (not in
    a user namespace whose /proc is masked); else the joiner's handle stays."""
    try:
        procfs.prepare(private_only=True)
    except OSError:
        pass


def set_up_exec_console(ctx: InitContext) -> None:
    """A pty of the container's devpts, when the process asks for a terminal (start_session made
    us a session leader, so the pty becomes our controlling terminal)."""
    if not ctx.process.get("terminal"):
        return
    from .. import console

    user = ctx.process.get("user") or {}
    master, slave, name = console.open_console(ctx.process.get("consoleSize"), user.get("uid", 0),
                                               user.get("gid", 0))
    try:
        ctx.chan.send(channel.CONSOLE, name=name, fds=[master])
    finally:
        os.close(master)
    console.make_controlling(slave)


def send_exec_pidfd(ctx: InitContext) -> None:
    """--pidfd-socket: our pidfd to the caller, after the console and before the last privileges
    go, as runc's exec sends it."""
    send_pidfd(ctx, b"setns")


def announce_exec(ctx: InitContext) -> None:
    """Everything is set: the next thing the parent hears is end-of-file (success) or an error."""
    ctx.chan.send(channel.EXEC)


TENANT_STEPS = (
    # With or without a terminal, as runc does: our process group and session otherwise stay
    # the caller's, which lie outside the container's pid namespace (getpgrp() would say 0).
    steps.start_session,
    open_private_procfs,
    set_up_exec_console,
    send_exec_pidfd,
    steps.set_rlimits,
    steps.set_scheduling,
    steps.change_directory,
    steps.prepare_environment,
    steps.look_up_executable,
    steps.load_seccomp,
    steps.drop_bounding_set,
    steps.switch_user,
    steps.set_capabilities,
    steps.set_no_new_privileges,
    steps.apply_lsm_labels,
    steps.set_personality,
    steps.set_final_cpu_affinity,
    announce_exec,
    steps.exec_process,
)


def spawn(record: Record, process: dict, cgroup, *, preserve_fds: int = 0, console_sock=None,
          pidfd_sock=None, subreaper: bool = False,
          stdio: tuple[int, int, int] | None = None) -> tuple[int, int | None]:
    """Start ``process`` in the container of ``record``; return (its host pid, the pty master or
    None). The container's own filter applies to the process too; ``stdio`` are the fds it gets
    as stdin, stdout and stderr (None: ours)."""
    cid, config = record.id, record.config
    caps = plan_capabilities(cid, process)
    seccomp = compile_seccomp(config, cid)
    join_fds = open_container_namespaces(record.pid, config)
    if not proc.pid_alive(record.pid, record.start_time):  # checked after opening: the right fds
        for _, fd in join_fds:
            os.close(fd)
        raise PyruncError("cannot exec in a stopped container", step=EXEC)
    parent_chan, child_chan = Channel.pair()
    ctx = InitContext(cid=cid, config=config, bundle="", rootfs_path="/", chan=child_chan, fifo_fd=-1,
                      ns_plan=namespaces.Plan([]), join_fds=join_fds, caps=caps, no_pivot=False,
                      no_new_keyring=True, preserve_fds=preserve_fds)
    ctx.process = process
    ctx.seccomp = seccomp
    ctx.pidfd_socket = pidfd_sock.fileno() if pidfd_sock is not None else None
    ctx.stdio = stdio
    # Born in the container's cgroups like a create's stage 1 (launch.plan_cgroup_birth), except
    # when an initial CPU affinity must be set before the cgroup is joined (config.md).
    birth, cgroup2_fd = False, None
    if not (process.get("execCPUAffinity") or {}).get("initial"):
        birth, cgroup2_fd = plan_cgroup_birth(cgroup, ctx)
    if subreaper:
        linux.set_child_subreaper()
    joiner_pid, born = fork_stage(cgroup2_fd)
    if joiner_pid == 0:
        parent_chan.close()
        joiner(ctx)
    child_chan.close()
    if cgroup2_fd is not None:
        os.close(cgroup2_fd)
    ctx.close_parent_fds()
    try:
        return serve_tenant(parent_chan, record, cgroup, joiner_pid, birth and born, console_sock)
    finally:
        parent_chan.close()


def plan_capabilities(cid: str, process: dict):
    """The process's capability plan, with a warning for each capability we cannot grant."""
    from ..security import capabilities

    caps = capabilities.plan(process.get("capabilities"))
    if caps is not None:
        from .. import log

        for warning in caps.restrict(capabilities.held_bounding()):
            log.get().warning(f"container {cid}: exec: {warning}")
    return caps


def serve_tenant(chan: Channel, record: Record, cgroup, joiner_pid: int, born_in_cgroup: bool,
                 console_sock) -> tuple[int, int | None]:
    """Move the joiner into the cgroup unless it was born there, let it go, and answer its child
    until it execs: (the child's pid, the pty master kept for a foreground exec or None)."""
    master = None
    child = 0
    try:
        if cgroup is not None and not born_in_cgroup:
            cgroup.apply(joiner_pid)
        chan.send(channel.GO)
        child = chan.expect(channel.PID)["pid"]
        os.waitpid(joiner_pid, 0)
        joiner_pid = 0
        while True:
            msg = chan.recv()
            if msg["type"] == channel.CONSOLE:
                master = take_console(msg, console_sock)
            elif msg["type"] == channel.SECCOMP:
                pass_seccomp_listener(chan, msg, record.config, oci_state(record, "running"), child)
            elif msg["type"] == channel.EXEC:
                break
        chan.recv(eof_ok=True)  # EOF: the program runs; an error: execve failed
    except BaseException:
        kill_started((joiner_pid, child), children=(joiner_pid,))
        if master is not None:
            os.close(master)
        raise
    return child, master
