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

import _signal as signal  # the C module: no enum import on the hot path
import os

from .. import OCI_VERSION, linux, namespaces, proc
from ..errors import PyruncError
from ..linux import procfs
from . import init as steps
from .channel import Channel
from .stage1 import InitContext, become_stage, fork_after_report, join_cgroups_at_birth, report

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
        raise PyruncError(f"open namespaces of the container init: {e.strerror}", step="exec") from None
    return fds


def enter_root(fd: int) -> None:
    """chroot into the init's root (a container without a mount namespace of its own): joining
    no mount namespace would leave the process at our /, outside the container's root."""
    try:
        os.fchdir(fd)
        os.chroot(".")
        os.chdir("/")
    except OSError as e:
        raise PyruncError(f"chroot into the container's root: {e.strerror}", step="join namespaces") from None


def joiner(ctx: InitContext) -> None:
    """Child of `pyrunc exec`: join the namespaces, fork the process into the pid ns, exit."""
    step = "join namespaces"
    try:
        become_stage(ctx, "pyrunc:[1:EXEC]")
        initial = (ctx.process.get("execCPUAffinity") or {}).get("initial")
        if initial:  # config.md: before the move into the container's cgroup
            from .. import scheduling

            scheduling.apply_affinity(initial, "initial")
        step = "join cgroups"
        join_cgroups_at_birth(ctx)  # a failure is exec's: the parent will not move us
        step = "join namespaces"
        ctx.chan.expect("go")
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
    step = "exec"
    try:
        for fn in TENANT_STEPS:
            step = fn.__name__
            fn(ctx)
    except BaseException as e:  # noqa: BLE001
        report(ctx.chan, e, step)
        os._exit(255)
    os._exit(255)


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
        ctx.chan.send("console", name=name, fds=[master])
    finally:
        os.close(master)
    console.make_controlling(slave)


def announce_exec(ctx: InitContext) -> None:
    """Everything is set: the next thing the parent hears is end-of-file (success) or an error."""
    ctx.chan.send("exec")


TENANT_STEPS = (
    # With or without a terminal, as runc does: our process group and session otherwise stay
    # the caller's, which lie outside the container's pid namespace (getpgrp() would say 0).
    steps.start_session,
    open_private_procfs,
    set_up_exec_console,
    steps.set_rlimits,
    steps.set_oom_score_adj,
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


def spawn(cid: str, pid: int, start_time: int | None, config: dict, process: dict, cgroup,
          *, preserve_fds: int = 0, console_sock=None, subreaper: bool = False) -> tuple[int, int | None]:
    """Start `process` in the container; return (its host pid, pty master or None)."""
    from ..security import capabilities
    from .parent import compile_seccomp, fork_stage1, plan_cgroup_birth, send_seccomp_listener

    caps = capabilities.plan(process.get("capabilities"))
    if caps is not None:
        from .. import log

        for warning in caps.restrict(capabilities.held_bounding()):
            log.get().warning(f"container {cid}: exec: {warning}")
    seccomp = compile_seccomp(config, cid)  # the container's filter applies to exec'd processes too
    join_fds = open_container_namespaces(pid, config)
    if not proc.pid_alive(pid, start_time):  # checked after opening: the fds are the right ones
        for _, fd in join_fds:
            os.close(fd)
        raise PyruncError("cannot exec in a stopped container", step="exec", container=cid)
    parent_chan, child_chan = Channel.pair()
    ctx = InitContext(cid=cid, config=config, bundle="", rootfs_path="/", chan=child_chan, fifo_fd=-1,
                      ns_plan=namespaces.Plan([]), join_fds=join_fds, caps=caps, no_pivot=False,
                      no_new_keyring=True, preserve_fds=preserve_fds)
    ctx.process = process
    ctx.seccomp = seccomp
    # Born in the container's cgroups like a create's stage 1 (parent.plan_cgroup_birth), except
    # when an initial CPU affinity must be set before the cgroup is joined (config.md).
    birth, cgroup2_fd = False, None
    if not (process.get("execCPUAffinity") or {}).get("initial"):
        birth, cgroup2_fd = plan_cgroup_birth(cgroup, ctx)
    if subreaper:
        linux.set_child_subreaper()
    joiner_pid, born = fork_stage1(cgroup2_fd)
    if joiner_pid == 0:
        parent_chan.close()
        joiner(ctx)
    child_chan.close()
    if cgroup2_fd is not None:
        os.close(cgroup2_fd)
    for _, fd in join_fds:
        os.close(fd)
    master = None
    child = 0
    try:
        if cgroup is not None and not (birth and born):
            cgroup.apply(joiner_pid)
        parent_chan.send("go")
        child = parent_chan.expect("pid")["pid"]
        os.waitpid(joiner_pid, 0)
        joiner_pid = 0
        while True:
            msg = parent_chan.recv()
            if msg["type"] == "console":
                master = msg["fds"][0] if msg["fds"] else None
                if console_sock is not None and master is not None:
                    from ..console import send_master

                    try:
                        send_master(console_sock, master, str(msg.get("name", "")))
                    finally:
                        os.close(master)
                        master = None
                continue
            if msg["type"] == "seccomp" and msg["fds"]:
                state = {"ociVersion": OCI_VERSION, "id": cid, "status": "running",
                         "pid": pid, "bundle": ""}
                send_seccomp_listener(config, msg["fds"][0], state, child)
                parent_chan.send("seccomp_done")
                continue
            if msg["type"] == "exec":
                break
        parent_chan.recv(eof_ok=True)  # EOF: the program runs; an error: execve failed
    except BaseException:
        for p in (joiner_pid, child):
            if p:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if joiner_pid:
            os.waitpid(joiner_pid, 0)
        if master is not None:
            os.close(master)
        raise
    finally:
        parent_chan.close()
    return child, master
