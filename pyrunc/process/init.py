"""The init (stage 2): PID 1 of the new container, forked by stage 1 (stage1.py).

The init is born in the container's cgroups: the parent clones stage 1 into
the cgroup2 one, stage 1 joins the v1 ones (stage1.join_cgroups_at_birth),
and the init inherits them. Where that cannot be done (rootless, a kernel
without clone3) the parent moves it, and the first cgroup.procs write waits
for an RCU grace period (~10 ms) while the init already sets up its rootfs. Either way the parent
writes the resources meanwhile; the init waits for both (``enter_cgroup``)
before anything that depends on them: a cgroup namespace, a cgroup mount,
the hooks, the user's program.

The init runs STEPS in order. Each is a function named after what it does;
its docstring says why it sits where it does. A failure in any step is sent to
the parent as ``{"type": "error", "step": name}`` and the init exits.
Everything the init needs is imported here, at module import time (the init
imports this module first thing, see stage1.enter_init): after pivot_root the
host's site-packages are no longer reachable.
"""

from __future__ import annotations

import _signal as signal  # the C module: no enum import on the hot path
import os
import resource
import stat
import sys

from .. import console, linux, rootfs, scheduling
from ..errors import PyruncError
from ..hooks import run_hooks
from ..linux import procfs
from ..rootfs import resolve
from ..security import capabilities, lsm
from ..state import Record, oci_state
from . import channel, execfifo
from .stages import InitContext, run_steps, send_pidfd

# The kernel's resource numbers (Python's resource module lacks some, e.g. RLIMIT_LOCKS).
RLIMITS = {"RLIMIT_" + n: i for i, n in enumerate(
    ("CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE", "MEMLOCK", "AS", "LOCKS",
     "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME"))}


def init_main(ctx: InitContext) -> None:
    linux.set_name("pyrunc:[2:INIT]")
    run_steps(ctx, STEPS, 1)


def start_session(ctx: InitContext) -> None:
    """A new session first, so the container never shares the caller's controlling terminal."""
    os.setsid()


def open_private_procfs(ctx: InitContext) -> None:
    """Our own procfs handle, made while / and /proc are still the host's: after pivot_root the
    path /proc is whatever a container sharing the rootfs put at `proc` (linux/procfs.py)."""
    procfs.prepare(sysctl=bool(ctx.linux.get("sysctl")))


def bring_up_loopback(ctx: InitContext) -> None:
    """A fresh network namespace has `lo` down; containers expect 127.0.0.1 to work."""
    if ctx.ns.creates("network"):
        linux.bring_up_loopback()


def prepare_rootfs(ctx: InitContext) -> None:
    """Stop mount propagation to the host, then make the rootfs a mount point for pivot_root.
    Without a mount namespace of our own the parent made that mount already, private, and the
    caller's own mounts must keep their propagation (rootfs/inherited.py)."""
    if ctx.ns.has("mount"):
        rootfs.prepare_root(ctx.rootfs, ctx.linux.get("rootfsPropagation"))


def mount_filesystems(ctx: InitContext) -> None:
    """Config mounts in listed order, each resolved inside the rootfs."""
    rootfs.mount_all(ctx.rootfs, ctx.config.get("mounts") or [], bundle=ctx.bundle,
                     mount_label=ctx.linux.get("mountLabel"), source_trees=ctx.source_trees,
                     before_cgroup_mount=lambda: enter_cgroup(ctx), cgroupns=ctx.ns.has("cgroup"))
    for tree in ctx.source_trees.values():
        os.close(tree.fd)  # attached ones stay mounted; the unused ones vanish
    ctx.source_trees = {}


def create_devices(ctx: InitContext) -> None:
    """Default and configured device nodes, before the hooks so they can see them."""
    rootfs.create_devices(ctx.rootfs, ctx.linux.get("devices") or [])


def enter_cgroup(ctx: InitContext) -> None:
    """Wait until we are in the container's cgroup (born there, or moved by the parent) and its
    resources are written, then unshare the cgroup namespace (rooted there). Everything before
    this overlaps the parent's work; everything after it (hooks, the user's program) runs inside
    the container's limits. Also called by the first cgroup mount, which must show the
    container's own cgroup."""
    if ctx.in_cgroup:
        return
    ctx.chan.expect(channel.CGROUP_JOINED)
    ctx.in_cgroup = True
    if ctx.ns.creates("cgroup"):
        try:
            linux.unshare(linux.CLONE_NEWCGROUP)
        except OSError as e:
            raise PyruncError(f"unshare cgroup namespace: {e.strerror}", step="enter_cgroup") from None


def run_runtime_hooks(ctx: InitContext) -> None:
    """prestart and createRuntime run in the runtime namespace: the parent runs them for us."""
    hooks = ctx.config.get("hooks") or {}
    if hooks.get("prestart") or hooks.get("createRuntime"):
        ctx.chan.send(channel.HOOKS)
        ctx.chan.expect(channel.HOOKS_DONE)


def run_container_hooks(ctx: InitContext) -> None:
    """createContainer hooks run in the container namespaces, after mounts, before pivot_root."""
    hooks = ctx.config.get("hooks") or {}
    if hooks.get("createContainer"):
        run_hooks(hooks, "createContainer", hook_state(ctx, "creating"), process_env(ctx))


def pivot_root(ctx: InitContext) -> None:
    """Make the rootfs our / (MS_MOVE + chroot with --no-pivot; only chroot without a mount
    namespace of our own)."""
    rootfs.pivot_root(ctx.rootfs, no_pivot=ctx.no_pivot, own_mount_ns=ctx.ns.has("mount"),
                      propagation=ctx.linux.get("rootfsPropagation"))


def reopen_dev_null(ctx: InitContext) -> None:
    """Stdio on the host's /dev/null is pointed at the container's own /dev/null instead (runc's
    reOpenDevNull): the host's /dev is not in the container's mount tree, so an fd there would
    make CRIU refuse to checkpoint the container ("Can't lookup mount ... path=/dev/null")."""
    try:
        fd = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return  # no usable /dev/null in the container: its stdio stays as given
    try:
        null = os.fstat(fd)
        if not stat.S_ISCHR(null.st_mode):
            return
        for n in range(3):
            try:
                st = os.fstat(n)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == null.st_rdev and st.st_dev != null.st_dev:
                os.dup2(fd, n, inheritable=True)
    finally:
        os.close(fd)


def create_cwd(ctx: InitContext) -> None:
    """A missing cwd is created now, right after pivot_root as runc does: once finish_rootfs has
    made / read-only it no longer can be. Resolved inside the root (RESOLVE_IN_ROOT walk), so
    a symlink in the image can never make us create it anywhere else."""
    cwd = ctx.process.get("cwd") or "/"
    try:
        root_fd = resolve.open_root("/")
        try:
            os.close(resolve.mkdir_all_in_root(root_fd, cwd))
        finally:
            os.close(root_fd)
    except OSError as e:
        raise PyruncError(f"create cwd ({cwd!r}) set in config.json: {e.strerror}",
                          step="create_cwd") from None


def finish_rootfs(ctx: InitContext) -> None:
    """Masked and read-only paths and a read-only /, once the container's /proc and /dev exist."""
    rootfs.finish_rootfs(masked_paths=ctx.linux.get("maskedPaths") or [],
                         readonly_paths=ctx.linux.get("readonlyPaths") or [],
                         readonly_root=bool((ctx.config.get("root") or {}).get("readonly")),
                         mount_label=ctx.linux.get("mountLabel"))


def set_up_console(ctx: InitContext) -> None:
    """After pivot_root (the pty comes from the container's devpts), before the uid switch."""
    if not ctx.process.get("terminal"):
        return
    user = ctx.process.get("user") or {}
    master, slave, name = console.open_console(ctx.process.get("consoleSize"), user.get("uid", 0),
                                               user.get("gid", 0))
    try:
        target = open_console_mountpoint()
        try:
            rootfs.attach_clone(slave, target)
        finally:
            os.close(target)
        ctx.chan.send(channel.CONSOLE, name=name, fds=[master])
    finally:
        os.close(master)
    console.make_controlling(slave)


def open_console_mountpoint() -> int:
    """/dev/console as a plain file we created or checked, never through a symlink the image
    planted there (CVE-2025-52565 class): anything else in its place is removed first."""
    root_fd = resolve.open_root("/")
    try:
        dev_fd = resolve.mkdir_all_in_root(root_fd, "/dev")
    finally:
        os.close(root_fd)
    try:
        try:
            st = os.stat("console", dir_fd=dev_fd, follow_symlinks=False)
            if stat.S_ISREG(st.st_mode):
                return os.open("console", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dev_fd)
            os.unlink("console", dir_fd=dev_fd)
        except FileNotFoundError:
            pass
        return os.open("console", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                       0o600, dir_fd=dev_fd)
    except OSError as e:
        raise PyruncError(f"prepare /dev/console: {e.strerror}", step="set_up_console") from None
    finally:
        os.close(dev_fd)


def send_init_pidfd(ctx: InitContext) -> None:
    """--pidfd-socket: our pidfd to the caller, where runc's init sends it (after the console,
    before the rootfs is finished), so it arrives before `create` returns."""
    send_pidfd(ctx, b"standard")


def apply_sysctl(ctx: InitContext) -> None:
    """linux.sysctl (validated as namespaced earlier), written through our own procfs handle:
    the values land in the namespaces we are in, never in a file a co-tenant put at /proc/sys.

    After set_hostname, as runc orders them: a `kernel.domainname` sysctl wins over the
    `domainname` field."""
    for key, value in (ctx.linux.get("sysctl") or {}).items():
        try:
            procfs.write_sysctl(key, value)
        except OSError as e:
            raise PyruncError(f"write sysctl {key}={value}: {e.strerror}", step="apply_sysctl") from None


def set_hostname(ctx: InitContext) -> None:
    """hostname and domainname belong to the uts namespace the container got."""
    if ctx.config.get("hostname") is not None:
        linux.sethostname(ctx.config["hostname"])
    if ctx.config.get("domainname") is not None:
        linux.setdomainname(ctx.config["domainname"])


def set_rlimits(ctx: InitContext) -> None:
    """Limits are set while still root: raising a hard limit later needs privileges we drop."""
    for rl in ctx.process.get("rlimits") or []:
        res = RLIMITS.get(rl["type"])
        if res is None:
            raise PyruncError(f"unknown rlimit type {rl['type']}", step="set_rlimits")
        try:
            resource.setrlimit(res, (rl["soft"], rl["hard"]))
        except PermissionError:
            # Raising a hard limit needs CAP_SYS_RESOURCE in the initial user namespace, which a
            # rootless runtime (and root on some hosts) lacks: only the caller's limits fit.
            held = resource.getrlimit(res)[1]
            raise PyruncError(f"setrlimit {rl['type']} {rl['soft']}:{rl['hard']}: the hard limit is "
                              f"above the caller's ({'unlimited' if held < 0 else held}), which only "
                              "CAP_SYS_RESOURCE may raise", step="set_rlimits") from None
        except (OSError, ValueError) as e:
            raise PyruncError(f"setrlimit {rl['type']} {rl['soft']}:{rl['hard']}: {e}",
                              step="set_rlimits") from None


def set_scheduling(ctx: InitContext) -> None:
    """Scheduler, I/O priority and memory policy while still privileged (RT needs CAP_SYS_NICE)."""
    if ctx.process.get("scheduler"):
        scheduling.apply_scheduler(ctx.process["scheduler"])
    if ctx.process.get("ioPriority"):
        scheduling.apply_io_priority(ctx.process["ioPriority"])
    if ctx.linux.get("memoryPolicy"):
        scheduling.apply_memory_policy(ctx.linux["memoryPolicy"])


def join_session_keyring(ctx: InitContext) -> None:
    """A private session keyring per container (best effort: kernels may lack keyctl)."""
    if ctx.no_new_keyring:
        return
    try:
        linux.join_session_keyring(ctx.cid)
    except OSError:
        pass


def change_directory(ctx: InitContext) -> None:
    """cwd (created by create_cwd if it was missing) must stay inside the container's root."""
    cwd = ctx.process.get("cwd") or "/"
    try:
        os.chdir(cwd)
        real = os.getcwd()
    except FileNotFoundError:
        raise PyruncError(f"chdir to cwd ({cwd!r}) set in config.json: outside the container root",
                          step="change_directory") from None
    except OSError as e:
        raise PyruncError(f"chdir to cwd ({cwd!r}) set in config.json: {e.strerror}",
                          step="change_directory") from None
    if not real.startswith("/"):
        raise PyruncError(f"cwd {cwd!r} is outside the container root", step="change_directory")


def process_env(ctx: InitContext) -> dict[str, str]:
    """process.env as a dict (the last of a repeated name wins)."""
    env: dict[str, str] = {}
    for item in ctx.process.get("env") or []:
        k, _, v = item.partition("=")
        env[k] = v
    return env


def prepare_environment(ctx: InitContext) -> None:
    """Exactly process.env, plus HOME from the container's passwd when unset or empty (as runc
    1.1 and 1.5 both do: ``HOME=`` is replaced too)."""
    env = process_env(ctx)
    if not env.get("HOME"):
        uid = (ctx.process.get("user") or {}).get("uid", 0)
        env["HOME"] = home_of(uid) or "/"
    ctx.env = env


def home_of(uid: int) -> str | None:
    """The home directory of uid in the container's /etc/passwd.

    Images may make /etc/passwd a symlink (e.g. to ../usr/share/passwd): it is followed, but
    only inside our root and never through /proc magic links (resolve.open_in_root), which
    matters for `exec`, whose process still holds the runtime's descriptors here. Parsed by
    hand: NSS would dlopen libraries from the container's rootfs.
    """
    try:
        root_fd = resolve.open_root("/")
        try:
            fd = resolve.open_in_root(root_fd, "/etc/passwd", os.O_RDONLY | os.O_NONBLOCK)
        finally:
            os.close(root_fd)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, 1 << 20)
    finally:
        os.close(fd)
    return passwd_home(data, uid)


def passwd_home(data: bytes, uid: int) -> str | None:
    """The home directory of ``uid`` in the text of a passwd file (also used by `pyrunc plan`)."""
    for line in data.decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 7 and fields[2] == str(uid):
            return fields[5] or None
    return None


def look_up_executable(ctx: InitContext) -> None:
    """Resolve args[0] now, so a missing program fails `create` (podman maps it to exit 127)."""
    env = ctx.env
    name = ctx.process["args"][0]
    if "/" in name:
        candidates = [name]
    else:
        candidates = [os.path.join(d or ".", name) for d in env.get("PATH", "").split(":")
                      if env.get("PATH")]
    for path in candidates:
        try:
            st = os.stat(path)
        except OSError as e:
            if "/" in name:
                raise PyruncError(f'exec: "{name}": stat {name}: {e.strerror.lower()}',
                                  step="look_up_executable") from None
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            ctx.executable = path
            return
        if "/" in name:
            raise PyruncError(f'exec: "{name}": permission denied', step="look_up_executable")
    raise PyruncError(f'exec: "{name}": executable file not found in $PATH', step="look_up_executable")


def load_seccomp(ctx: InitContext) -> None:
    """Only a notify filter is loaded here: its listener must reach the parent (and from there
    the agent) while the parent still listens, and without noNewPrivileges the load needs
    CAP_SYS_ADMIN, which the steps below drop (runc's order). Every other filter is loaded by
    exec_process as the last call before execve, so no call of ours ever meets it."""
    flt = ctx.seccomp
    if flt is None or not flt.needs_notify:
        return
    if ctx.process.get("noNewPrivileges"):
        linux.set_no_new_privs()
    listener = flt.load()
    ctx.seccomp = None
    if listener is not None:
        try:
            ctx.chan.send(channel.SECCOMP, fds=[listener])
        finally:
            os.close(listener)
        ctx.chan.expect(channel.SECCOMP_DONE)


def filter_needs_sys_admin(ctx: InitContext) -> bool:
    """A filter still to load without no_new_privs: the kernel wants CAP_SYS_ADMIN for it."""
    return ctx.seccomp is not None and not ctx.process.get("noNewPrivileges")


def drop_bounding_set(ctx: InitContext) -> None:
    """Needs CAP_SETPCAP, so it runs before the uid switch and the final capability sets."""
    if ctx.caps is not None:
        capabilities.drop_bounding(ctx.caps)


def switch_user(ctx: InitContext) -> None:
    """Exactly the configured groups (never the caller's), then gid, then uid, keeping caps."""
    user = ctx.process.get("user") or {}
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    set_groups(list(user.get("additionalGids") or []))
    os.setresgid(gid, gid, gid)
    if uid != 0:
        linux.set_keepcaps(True)
    os.setresuid(uid, uid, uid)
    if uid != 0:
        linux.set_keepcaps(False)
    if user.get("umask") is not None:
        os.umask(user["umask"])
    else:
        os.umask(0o022)


def set_groups(groups: list[int]) -> None:
    """setgroups, unless this user namespace denies it (a rootless single-id mapping, see
    userns.write_mappings): then no group list can be set, and none is held beyond our gid."""
    try:
        os.setgroups(groups)
    except PermissionError:
        try:
            denied = procfs.read("self/setgroups").strip() == b"deny"
        except OSError:
            denied = False
        if not denied:
            raise
        if groups:
            raise PyruncError(f"cannot set process.user.additionalGids {groups}: setgroups is denied "
                              "in this user namespace (a rootless single-id mapping; map "
                              "subordinate gids with newgidmap to allow it)", step="switch_user") from None


def set_capabilities(ctx: InitContext) -> None:
    """The five sets exactly as configured; inheritable and ambient only from the config.

    Except that CAP_SYS_ADMIN stays permitted when exec_process still has to load a filter
    without noNewPrivileges; execve drops it (see security/capabilities.py)."""
    if ctx.caps is not None:
        keep = 1 << capabilities.CAP_SYS_ADMIN if filter_needs_sys_admin(ctx) else 0
        capabilities.apply_sets(ctx.caps, also_permitted=keep)


def set_no_new_privileges(ctx: InitContext) -> None:
    """Before seccomp: an unprivileged filter load requires no_new_privs."""
    if ctx.process.get("noNewPrivileges"):
        linux.set_no_new_privs()


def apply_lsm_labels(ctx: InitContext) -> None:
    """AppArmor/SELinux exec labels: they take effect at execve."""
    lsm.apply_exec_labels(ctx.process)


def set_personality(ctx: InitContext) -> None:
    """The execution domain (e.g. LINUX32: `uname -m` says i686) the program will see."""
    if ctx.linux.get("personality"):
        scheduling.apply_personality(ctx.linux["personality"])


def set_final_cpu_affinity(ctx: InitContext) -> None:
    """execCPUAffinity.final: the CPUs an exec'd program starts on (config.md: not the init's)."""
    final = (ctx.process.get("execCPUAffinity") or {}).get("final")
    if final:
        scheduling.apply_affinity(final, "final")


def release_procfs(ctx: InitContext) -> None:
    """Before the container can see us wait: no procfs handle that shows more than the
    container's own /proc stays open (procfs.release)."""
    procfs.release()


def let_owner_join(ctx: InitContext) -> None:
    """An unprivileged caller must be able to open our namespaces for `exec` before `start`: our
    memory still belongs to the initial user namespace (the runtime's python, not yet the
    program), where an unprivileged caller has no CAP_SYS_PTRACE, so while non-dumpable our
    /proc files are root's. Everything is set up by now (pivot_root, capabilities, seccomp), and
    whoever can ptrace us is the same unprivileged user; runc's init waits dumpable too."""
    if ctx.unprivileged_caller:
        linux.set_dumpable(True)


def report_ready(ctx: InitContext) -> None:
    """Tell the parent all setup is done (with the step timeline under --debug); it records the
    state and exits."""
    ctx.chan.send(channel.READY, timeline=ctx.timeline or [])
    ctx.chan.close()


def wait_for_start(ctx: InitContext) -> None:
    """Block on the exec fifo until `pyrunc start`; keep the write end open until execve."""
    ctx.start_fd = execfifo.wait_for_start(ctx.fifo_fd)


def run_start_hooks(ctx: InitContext) -> None:
    """startContainer hooks run in the container, after start and before the user program."""
    hooks = ctx.config.get("hooks") or {}
    if hooks.get("startContainer"):
        run_hooks(hooks, "startContainer", hook_state(ctx, "created"), ctx.env)


def exec_process(ctx: InitContext) -> None:
    """Python's signal state and our fds must not reach the program: reset, close, execve.

    Everything is done and prepared first; then the seccomp filter is loaded and execve follows
    at once (CompiledFilter.load_and_exec): after the load the filter sees no call of ours but
    the program's execve, so a profile need not allow what the runtime itself uses."""
    exe = linux.PreparedExec(ctx.executable, ctx.process["args"], ctx.env)
    for sig in range(1, signal.NSIG):
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    for fd in range(3, 3 + ctx.preserve_fds):
        os.set_inheritable(fd, True)
    # Marked close-on-exec rather than closed: the exec fifo's write end then closes at
    # the very moment of execve, which is how `start` knows the program runs now.
    linux.close_range(3 + ctx.preserve_fds, 0xFFFFFFFF, linux.CLOSE_RANGE_CLOEXEC)
    try:
        sys.stdout.flush()
    except Exception:  # noqa: BLE001
        pass
    if ctx.start_fd is not None:
        os.write(ctx.start_fd, execfifo.EXECUTING)
    if ctx.seccomp is None:
        err = exe()
    else:
        if filter_needs_sys_admin(ctx):
            try:
                capabilities.raise_effective(1 << capabilities.CAP_SYS_ADMIN)
            except OSError:
                pass  # the load below fails with EACCES and says why
        try:
            err = ctx.seccomp.load_and_exec(exe)
        except PyruncError as e:
            os.write(2, f"pyrunc: container {ctx.cid}: exec_process: {e.cause}\n".encode())
            os._exit(1)
    # The parent is gone by now; stderr is the only place left to say why.
    os.write(2, f"pyrunc: container {ctx.cid}: exec_process: exec {ctx.executable}: "
                f"{os.strerror(err)}\n".encode())
    os._exit(126 if err == 13 else 127)


def hook_state(ctx: InitContext, status: str) -> dict:
    """The state document for the hooks the init runs itself: our own pid (PID 1 here, as the
    container sees it) and the config's annotations."""
    return oci_state(Record(ctx.cid, bundle=ctx.bundle, config=ctx.config), status, pid=os.getpid())


STEPS = (
    start_session,
    open_private_procfs,
    bring_up_loopback,
    prepare_rootfs,
    mount_filesystems,
    create_devices,
    enter_cgroup,
    run_runtime_hooks,
    run_container_hooks,
    pivot_root,
    reopen_dev_null,
    create_cwd,
    set_up_console,
    send_init_pidfd,
    set_hostname,
    apply_sysctl,
    finish_rootfs,
    set_rlimits,
    set_scheduling,
    join_session_keyring,
    change_directory,
    prepare_environment,
    look_up_executable,
    load_seccomp,
    drop_bounding_set,
    switch_user,
    set_capabilities,
    set_no_new_privileges,
    apply_lsm_labels,
    set_personality,
    release_procfs,
    let_owner_join,
    report_ready,
    wait_for_start,
    run_start_hooks,
    exec_process,
)
