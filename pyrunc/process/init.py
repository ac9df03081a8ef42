"""The stages that run inside the new container: stage 1 and the init (stage 2).

Stage 1 is forked by pyrunc. Once the parent has put it into the container's
cgroup it joins the namespaces given by path, unshares the new ones and forks
the init, which is PID 1 of the new pid namespace; stage 1 reports the init's
pid and exits, so the init is reparented to the caller (a subreaper) and no
pyrunc process stays between them.

The init runs STEPS in order. Each is a function named after what it does;
its docstring says why it sits where it does. A failure in any step is sent to
the parent as ``{"type": "error", "step": name}`` and the init exits.
Everything the init needs is imported here, at module import time: after
pivot_root the host's site-packages are no longer reachable.
"""

from __future__ import annotations

import _signal as signal  # the C module: no enum import on the hot path
import os
import resource
import stat
import sys
import time

from .. import OCI_VERSION, console, linux, namespaces, rootfs, scheduling
from ..errors import PyruncError
from ..hooks import run_hooks
from ..rootfs import resolve
from ..security import capabilities, lsm
from . import execfifo
from .channel import Channel

# The kernel's resource numbers (Python's resource module lacks some, e.g. RLIMIT_LOCKS).
RLIMITS = {"RLIMIT_" + n: i for i, n in enumerate(
    ("CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE", "MEMLOCK", "AS", "LOCKS",
     "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME"))}


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


# -- stage 1 ------------------------------------------------------------------------


def stage1(ctx: InitContext) -> None:
    """Join/unshare namespaces, fork the init into them, report its pid, exit."""
    step = "stage1"
    try:
        become_stage(ctx, "pyrunc:[1:STAGE]")
        if ctx.process.get("terminal"):
            detach_stdio()
        ctx.chan.expect("go")
        step = "join namespaces"
        namespaces.join(ctx.join_fds)
        for _, fd in ctx.join_fds:
            os.close(fd)
        if ctx.ns.creates("user"):
            step = "create user namespace"
            create_user_namespace(ctx)
        step = "create namespaces"
        rest = ctx.ns.new_flags & ~linux.CLONE_NEWUSER
        if rest:
            try:
                linux.unshare(rest)
            except OSError as e:
                raise PyruncError(f"unshare: {e.strerror}", step=step) from None
        if ctx.ns.creates("time"):
            step = "set time offsets"
            set_time_offsets(ctx)
        step = "fork init"
        pid = fork_after_report(ctx.chan)
        if pid == 0:
            init_main(ctx)  # never returns
        os._exit(0)
    except BaseException as e:  # noqa: BLE001 - a stage only ever leaves through os._exit
        report(ctx.chan, e, step)
        os._exit(1)


def become_stage(ctx: InitContext, title: str) -> None:
    """What every forked stage does first: a name for `ps`, death with its parent, no ptrace or
    /proc access from the container (non-dumpable), and none of the parent's other fds."""
    linux.set_name(title)
    linux.set_pdeathsig(signal.SIGKILL)
    linux.set_dumpable(False)
    close_foreign_fds(ctx)


def fork_after_report(chan: Channel) -> int:
    """Fork; the parent reports the child's pid before the child may say anything.

    Both share the channel: without the gate the child's first message could
    overtake the pid report. Returns 0 in the child, the pid in the parent.
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
        chan.send("pid", pid=pid)
    finally:
        os.close(gate_w)
    return pid


def create_user_namespace(ctx: InitContext) -> None:
    """First of the new namespaces: its credentials own every later one.

    The parent writes our uid_map/gid_map from outside (only a process in
    the parent namespace may); then we become root of the new namespace.
    """
    try:
        linux.unshare(linux.CLONE_NEWUSER)
    except OSError as e:
        raise PyruncError(f"unshare user namespace: {e.strerror}", step="create user namespace") from None
    ctx.chan.send("userns")
    ctx.chan.expect("userns_done")
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
        fd = os.open("/proc/self/timens_offsets", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, "".join(lines).encode())
        finally:
            os.close(fd)
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


# -- the init (stage 2) ---------------------------------------------------------------


def init_main(ctx: InitContext) -> None:
    linux.set_name("pyrunc:[2:INIT]")
    step = "init"
    try:
        clock = time.monotonic
        for fn in STEPS:
            step = fn.__name__
            if ctx.fault_step == step:
                ctx.chan.send("fault")  # the parent's pid is not visible from here
            if ctx.timeline is not None:
                began = clock()
                fn(ctx)
                ctx.timeline.append((step, clock() - began))
            else:
                fn(ctx)
    except BaseException as e:  # noqa: BLE001
        if not report(ctx.chan, e, step):
            # After `ready` the parent is gone: say it on the container's stderr instead.
            cause = e.cause if isinstance(e, PyruncError) else str(e)
            os.write(2, f"pyrunc: container {ctx.cid}: {step}: {cause}\n".encode())
        os._exit(1)
    os._exit(127)  # unreachable: exec_process replaces the process


def start_session(ctx: InitContext) -> None:
    """A new session first, so the container never shares the caller's controlling terminal."""
    os.setsid()


def bring_up_loopback(ctx: InitContext) -> None:
    """A fresh network namespace has `lo` down; containers expect 127.0.0.1 to work."""
    if ctx.ns.creates("network"):
        linux.bring_up_loopback()


def prepare_rootfs(ctx: InitContext) -> None:
    """Stop mount propagation to the host, then make the rootfs a mount point for pivot_root."""
    rootfs.prepare_root(ctx.rootfs, ctx.linux.get("rootfsPropagation"))


def mount_filesystems(ctx: InitContext) -> None:
    """Config mounts in listed order, each resolved inside the rootfs."""
    rootfs.mount_all(ctx.rootfs, ctx.config.get("mounts") or [], bundle=ctx.bundle,
                     mount_label=ctx.linux.get("mountLabel"), idmap_fds=ctx.idmap_fds)
    for fd in ctx.idmap_fds.values():
        os.close(fd)
    ctx.idmap_fds = {}


def create_devices(ctx: InitContext) -> None:
    """Default and configured device nodes, before the hooks so they can see them."""
    rootfs.create_devices(ctx.rootfs, ctx.linux.get("devices") or [])


def run_runtime_hooks(ctx: InitContext) -> None:
    """prestart and createRuntime run in the runtime namespace: the parent runs them for us."""
    hooks = ctx.config.get("hooks") or {}
    if hooks.get("prestart") or hooks.get("createRuntime"):
        ctx.chan.send("hooks")
        ctx.chan.expect("hooks_done")


def run_container_hooks(ctx: InitContext) -> None:
    """createContainer hooks run in the container namespaces, after mounts, before pivot_root."""
    hooks = ctx.config.get("hooks") or {}
    if hooks.get("createContainer"):
        run_hooks(hooks, "createContainer", hook_state(ctx, "creating"))


def pivot_root(ctx: InitContext) -> None:
    """Make the rootfs our / (or MS_MOVE + chroot with --no-pivot)."""
    rootfs.pivot_root(ctx.rootfs, no_pivot=ctx.no_pivot)


def finish_rootfs(ctx: InitContext) -> None:
    """Masked and read-only paths and a read-only /, once the container's /proc and /dev exist."""
    rootfs.finish_rootfs(masked_paths=ctx.linux.get("maskedPaths") or [],
                         readonly_paths=ctx.linux.get("readonlyPaths") or [],
                         readonly_root=bool((ctx.config.get("root") or {}).get("readonly")))


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
        ctx.chan.send("console", name=name, fds=[master])
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


def apply_sysctl(ctx: InitContext) -> None:
    """linux.sysctl through the container's own /proc/sys (validated as namespaced earlier)."""
    for key, value in (ctx.linux.get("sysctl") or {}).items():
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as e:
            raise PyruncError(f"write sysctl {key}: {e.strerror}", step="apply_sysctl") from None
        try:
            os.write(fd, value.encode())
        except OSError as e:
            raise PyruncError(f"write sysctl {key}={value}: {e.strerror}", step="apply_sysctl") from None
        finally:
            os.close(fd)


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
        except (OSError, ValueError) as e:
            raise PyruncError(f"setrlimit {rl['type']} {rl['soft']}:{rl['hard']}: {e}",
                              step="set_rlimits") from None


def set_oom_score_adj(ctx: InitContext) -> None:
    """Written before the uid switch: the file belongs to root."""
    adj = ctx.process.get("oomScoreAdj")
    if adj is None:
        return
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(adj))
    except OSError as e:
        raise PyruncError(f"set oom_score_adj {adj}: {e.strerror}", step="set_oom_score_adj") from None


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
    """cwd is created when missing and must stay inside the container's root."""
    cwd = ctx.process.get("cwd") or "/"
    try:
        os.makedirs(cwd, 0o755, exist_ok=True)
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


def prepare_environment(ctx: InitContext) -> None:
    """Exactly process.env, plus HOME from the container's passwd when unset (as runc does)."""
    env: dict[str, str] = {}
    for item in ctx.process.get("env") or []:
        k, _, v = item.partition("=")
        env[k] = v
    if "HOME" not in env:
        uid = (ctx.process.get("user") or {}).get("uid", 0)
        env["HOME"] = home_of(uid) or "/"
    ctx.env = env


def home_of(uid: int) -> str | None:
    """The home directory of uid in the container's /etc/passwd, read without following links.

    Parsed by hand: NSS would dlopen libraries from the container's rootfs.
    """
    try:
        fd = os.open("/etc/passwd", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, 1 << 20)
    finally:
        os.close(fd)
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
    """Install the filter now, unless it can wait until just before execve.

    Without noNewPrivileges loading needs CAP_SYS_ADMIN, so it has to happen
    before the capabilities are dropped (runc's order); a notify filter must be
    loaded while the parent can still pass its listener on. Otherwise
    exec_process loads it as the very last thing.
    """
    flt = ctx.seccomp
    if flt is None or (ctx.process.get("noNewPrivileges") and not flt.needs_notify):
        return
    if flt.needs_notify and ctx.process.get("noNewPrivileges"):
        linux.set_no_new_privs()
    listener = flt.load()
    ctx.seccomp = None
    if listener is not None:
        try:
            ctx.chan.send("seccomp", fds=[listener])
        finally:
            os.close(listener)
        ctx.chan.expect("seccomp_done")


def drop_bounding_set(ctx: InitContext) -> None:
    """Needs CAP_SETPCAP, so it runs before the uid switch and the final capability sets."""
    if ctx.caps is not None:
        capabilities.drop_bounding(ctx.caps)


def switch_user(ctx: InitContext) -> None:
    """Exactly the configured groups (never the caller's), then gid, then uid, keeping caps."""
    user = ctx.process.get("user") or {}
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    os.setgroups(list(user.get("additionalGids") or []))
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


def set_capabilities(ctx: InitContext) -> None:
    """The five sets exactly as configured; inheritable and ambient only from the config."""
    if ctx.caps is not None:
        capabilities.apply_sets(ctx.caps)


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


def report_ready(ctx: InitContext) -> None:
    """Tell the parent all setup is done (with the step timeline under --debug); it records the
    state and exits."""
    ctx.chan.send("ready", timeline=ctx.timeline or [])
    ctx.chan.close()


def wait_for_start(ctx: InitContext) -> None:
    """Block on the exec fifo until `pyrunc start`; keep the write end open until execve."""
    ctx.start_fd = execfifo.wait_for_start(ctx.fifo_fd)


def run_start_hooks(ctx: InitContext) -> None:
    """startContainer hooks run in the container, after start and before the user program."""
    hooks = ctx.config.get("hooks") or {}
    if hooks.get("startContainer"):
        run_hooks(hooks, "startContainer", hook_state(ctx, "created"))


def exec_process(ctx: InitContext) -> None:
    """Python's signal state and our fds must not reach the program: reset, close, execve."""
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
    if ctx.seccomp is not None:  # noNewPrivileges: the filter goes on last of all
        try:
            ctx.seccomp.load()
        except PyruncError as e:
            os.write(2, f"pyrunc: container {ctx.cid}: exec_process: {e.cause}\n".encode())
            os._exit(1)
    try:
        os.execve(ctx.executable, ctx.process["args"], ctx.env)
    except OSError as e:
        # The parent is gone by now; stderr is the only place left to say why.
        os.write(2, f"pyrunc: container {ctx.cid}: exec_process: exec {ctx.executable}: "
                    f"{e.strerror}\n".encode())
        os._exit(126 if e.errno == 13 else 127)


def hook_state(ctx: InitContext, status: str) -> dict:
    doc = {"ociVersion": OCI_VERSION, "id": ctx.cid, "status": status,
           "pid": os.getpid(), "bundle": ctx.bundle}
    if ctx.config.get("annotations"):
        doc["annotations"] = ctx.config["annotations"]
    return doc


STEPS = (
    start_session,
    bring_up_loopback,
    prepare_rootfs,
    mount_filesystems,
    create_devices,
    run_runtime_hooks,
    run_container_hooks,
    pivot_root,
    set_up_console,
    apply_sysctl,
    set_hostname,
    finish_rootfs,
    set_rlimits,
    set_oom_score_adj,
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
    report_ready,
    wait_for_start,
    run_start_hooks,
    exec_process,
)
