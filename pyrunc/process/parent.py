"""The runtime side of `create`: everything before and around the forked stages.

Order: validate and prepare in the parent (config, rootfs, namespace fds,
capability plan, cgroup), then clone stage 1 into the cgroup (it joins the
rest itself, so the init is born there; rootless, it is moved instead: see
plan_cgroup_birth), learn the init's pid, write the resources while the init
sets up its rootfs, serve the init's requests (hooks, console, ready), and
only then record the state and the pid file. Any failure tears down
everything created so far: the init, the cgroup and the state directory.
"""

from __future__ import annotations

import _signal as signal  # the C module: no enum import on the hot path
import errno
import os
import stat
import time

from .. import OCI_VERSION, linux, log, namespaces, proc, rootless
from ..errors import CgroupError, ChildError, PyruncError
from ..hooks import preload_for_hooks, run_hooks, run_hooks_warn
from ..log import rfc3339
from ..security import capabilities
from ..spec import load_config
from ..state import StateDir, write_pid_file
from ..userns import idmap_fds, write_mappings
from . import execfifo
from .channel import Channel
from .stage1 import InitContext, stage1


def create_container(sd: StateDir, cid: str, opts) -> dict:
    """Create container `cid`; return the state record. Raises PyruncError, leaving nothing."""
    config = load_config(opts.bundle, container=cid)
    rootfs = resolve_rootfs(config, opts.bundle, cid)
    opts.is_rootless = rootless.detect(opts.rootless)
    if opts.is_rootless:
        rootless.check_config(config, cid)
        rootless.check_rootfs(rootfs, cid)
    check_supported(config, opts, cid)
    ns_plan = namespaces.Plan((config.get("linux") or {}).get("namespaces") or [])
    caps = capabilities.plan((config.get("process") or {}).get("capabilities"))
    if caps is not None:
        for name in caps.unknown:
            log.get().warning(f"container {cid}: unknown capability {name!r} skipped")
        for warning in caps.restrict(capabilities.held_bounding()):
            log.get().warning(f"container {cid}: {warning}")
    seccomp = compile_seccomp(config, cid)
    preload_for_hooks(config.get("hooks"))
    join_fds = namespaces.open_join_fds(ns_plan)
    console_sock = None
    if opts.console_socket:
        from ..console import connect_console_socket

        try:
            console_sock = connect_console_socket(opts.console_socket)
        except BaseException:
            for _, fd in join_fds:
                os.close(fd)
            raise

    sd.reserve()
    fault_point("reserve")
    mgr = None
    init_pid = 0
    stage1_pid = 0
    rootfs_mount = None
    try:
        fifo_fd = execfifo.make(sd.fifo)
        if not ns_plan.has("mount"):
            rootfs_mount = attach_inherited_rootfs(config, rootfs)
        mgr = make_cgroup(config, cid, opts)
        # Recorded before anything runs: if we die from here on, `delete --force` finds the
        # cgroup (and every process in it) from this record.
        record = new_record(cid, config, opts, rootfs, 0, mgr)
        if rootfs_mount is not None:
            record["rootfs_mount"] = rootfs_mount
        record["creating"] = True
        sd.save(record)
        fault_point("cgroup")
        parent_chan, child_chan = Channel.pair()
        ctx = InitContext(cid=cid, config=config, bundle=opts.bundle, rootfs_path=rootfs,
                          chan=child_chan, fifo_fd=fifo_fd, ns_plan=ns_plan, join_fds=join_fds,
                          caps=caps, no_pivot=opts.no_pivot, no_new_keyring=opts.no_new_keyring,
                          preserve_fds=listen_fds_passed(config) + opts.preserve_fds)
        pass_notify_socket(config)
        ctx.seccomp = seccomp
        ctx.unprivileged_caller = os.geteuid() != 0
        ctx.fault_step = FAULT
        if log.get().min_level == 0:
            ctx.timeline = []
        ctx.idmap_fds = idmap_fds(config)
        birth, cgroup2_fd = plan_cgroup_birth(mgr, ctx)
        if opts.subreaper:
            linux.set_child_subreaper()
        stage1_pid, born = fork_stage1(cgroup2_fd)
        if stage1_pid == 0:
            parent_chan.close()
            stage1(ctx)  # never returns
        child_chan.close()
        os.close(fifo_fd)
        for fd in ctx.idmap_fds.values():
            os.close(fd)
        for _, fd in join_fds:
            os.close(fd)
        join_fds = []
        if cgroup2_fd is not None:
            os.close(cgroup2_fd)
        if mgr is not None and not birth and mgr.can_place_at_birth():  # systemd: the init's pid starts the unit
            start_cgroup_move(mgr, stage1_pid)
        fault_point("fork")
        msg = parent_chan.recv()
        if msg["type"] == "userns":
            write_mappings(stage1_pid, config)
            parent_chan.send("userns_done")
            msg = parent_chan.recv()
        if msg["type"] != "pid":
            raise ChildError(f"expected 'pid' from stage 1, got {msg['type']!r}", step="sync")
        init_pid = msg["pid"]
        if mgr is not None:
            resources = cgroup_resources(config)
            if not (birth and born and msg.get("placed")):
                move_init(mgr, init_pid, parent_chan)
            mgr.set(resources)
        parent_chan.send("cgroup_joined")  # an init that failed meanwhile: send raises its error
        if (config.get("linux") or {}).get("netDevices"):
            from ..netdevices import move_devices

            move_devices(init_pid, config["linux"]["netDevices"])
        reap(stage1_pid)
        stage1_pid = 0
        # Not saved yet: should we die now, the cgroup in the record still finds the init.
        record["pid"] = init_pid
        record["start_time"] = proc.pid_start_time(init_pid)
        fault_point("init_pid")
        serve_init(parent_chan, config, record, console_sock, opts)
        parent_chan.close()
        del record["creating"]
        record["created"] = rfc3339()
        sd.save(record)
        fault_point("saved")
        if opts.pid_file:
            write_pid_file(opts.pid_file, init_pid)
        return record
    except BaseException as e:
        cleanup(sd, mgr, init_pid, stage1_pid, (rootfs, rootfs_mount) if rootfs_mount else None)
        if (config.get("hooks") or {}).get("poststop"):  # runtime.md: a failed create goes on at delete
            run_hooks_warn(config["hooks"], "poststop",
                           {"ociVersion": OCI_VERSION, "id": cid, "status": "stopped", "pid": 0,
                            "bundle": opts.bundle},
                           lambda msg: log.get().warning(f"container {cid}: {msg}"))
        for _, fd in join_fds:
            os.close(fd)
        if isinstance(e, PyruncError):
            e.container = cid
            if isinstance(e, ChildError) and e.step and not e.step.startswith("create"):
                e.step = f"create: {e.step}"
        raise
    finally:
        if console_sock is not None:
            console_sock.close()
        sd.unlock()


# Test-only fault injection (tests/integration/test_crash.py): the name of a point at which
# this process SIGKILLs itself (parent points) or is SIGKILLed by the init (init step names).
FAULT = os.environ.get("PYRUNC_TEST_FAULT") or None


def fault_point(name: str) -> None:
    if FAULT == name:
        os.kill(os.getpid(), signal.SIGKILL)


def listen_fds_passed(config: dict) -> int:
    """Socket activation: fds 3.. handed to us (LISTEN_PID is our pid) go on to the container.

    They come before the --preserve-fds ones, and the container's environment says
    LISTEN_FDS=<n>, LISTEN_PID=1 (its own init), as systemd's protocol wants.
    """
    if "LISTEN_FDS" not in os.environ:
        return 0  # the usual case: no import of passfds on the hot path
    from .passfds import listen_fds

    count = listen_fds()  # checked open and ours alone since the command began (passfds.claim)
    if count <= 0:
        return 0
    process = config.setdefault("process", {})
    env = [e for e in process.get("env") or [] if not e.startswith(("LISTEN_FDS=", "LISTEN_PID="))]
    process["env"] = env + [f"LISTEN_FDS={count}", "LISTEN_PID=1"]
    return count


NOTIFY_IN_CONTAINER = "/run/notify/notify.sock"


def pass_notify_socket(config: dict) -> None:
    """sd_notify readiness: the caller's NOTIFY_SOCKET, bound into the container.

    The socket itself is bind-mounted at /run/notify/notify.sock and the
    program's NOTIFY_SOCKET points there, so READY=1 from inside reaches the
    caller directly (runc relays through a socket of its own instead).
    """
    path = os.environ.get("NOTIFY_SOCKET", "")
    try:
        if not path.startswith("/") or not stat.S_ISSOCK(os.stat(path).st_mode):
            return
    except OSError:
        return
    config.setdefault("mounts", []).append({"destination": NOTIFY_IN_CONTAINER, "type": "bind",
                                            "source": path, "options": ["bind"]})
    process = config.setdefault("process", {})
    env = [e for e in process.get("env") or [] if not e.startswith("NOTIFY_SOCKET=")]
    process["env"] = env + [f"NOTIFY_SOCKET={NOTIFY_IN_CONTAINER}"]


def resolve_rootfs(config: dict, bundle: str, cid: str) -> str:
    """root.path, relative to the bundle, must be an existing directory."""
    path = (config.get("root") or {}).get("path")
    if not path:
        raise PyruncError("root.path is not set in config.json", step="validate", container=cid)
    full = os.path.normpath(os.path.join(bundle, path))
    try:
        real = os.path.realpath(full)
        if not os.path.isdir(real):
            raise FileNotFoundError
    except OSError:
        raise PyruncError(f"rootfs {full} does not exist or is not a directory", step="validate",
                          container=cid) from None
    return real


def check_supported(config: dict, opts, cid: str) -> None:
    """Refuse, before anything is created, what this build cannot do yet."""
    process = config.get("process")
    if not process:
        raise PyruncError("process is not set in config.json", step="validate", container=cid)
    if process.get("terminal") and opts.detach and not opts.console_socket:
        raise PyruncError("cannot allocate tty if pyrunc will detach without setting console socket",
                          step="validate", container=cid)
    if opts.console_socket and not process.get("terminal"):
        raise PyruncError("cannot use console socket if pyrunc will not detach or allocate tty",
                          step="validate", container=cid)
    lin = config.get("linux") or {}
    if lin.get("netDevices") and not any(ns.get("type") == "network" and not ns.get("path")
                                         for ns in lin.get("namespaces") or []):
        raise PyruncError("linux.netDevices needs a new network namespace", step="validate", container=cid)
    if lin.get("intelRdt"):
        if not os.path.exists("/sys/fs/resctrl/schemata"):
            raise PyruncError("linux.intelRdt requested but resctrl is not mounted at /sys/fs/resctrl "
                              "(no Intel RDT on this host)", step="validate", container=cid)
        raise PyruncError("linux.intelRdt is not supported yet", step="validate", container=cid)
    from .. import scheduling
    from ..security import lsm

    try:
        scheduling.check(config)
        lsm.check(process, lin)
    except PyruncError as e:
        e.container = cid
        raise


def compile_seccomp(config: dict, cid: str):
    """linux.seccomp compiled to BPF here, before any fork (cached by profile hash)."""
    sc = (config.get("linux") or {}).get("seccomp")
    if sc is None:
        return None
    from ..security.seccomp import compile_filter

    try:
        flt = compile_filter(sc)
    except PyruncError as e:
        e.container = cid
        raise
    for warning in flt.warnings:
        log.get().warning(f"container {cid}: {warning}")
    return flt


def send_seccomp_listener(config: dict, fd: int, state: dict, pid: int) -> None:
    """The notify listener fd goes to the agent at linux.seccomp.listenerPath."""
    from ..security.seccomp import send_listener

    sc = (config.get("linux") or {}).get("seccomp") or {}
    try:
        if not sc.get("listenerPath"):
            raise PyruncError("SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath", step="seccomp")
        send_listener(sc["listenerPath"], fd, state, sc.get("listenerMetadata"), pid=pid)
    finally:
        os.close(fd)


def make_cgroup(config: dict, cid: str, opts):
    from ..cgroups import create_manager

    lin = config.get("linux") or {}
    mgr = create_manager(lin.get("cgroupsPath"), cid, systemd=opts.systemd_cgroup,
                         rootless=opts.is_rootless, resources=cgroup_resources(config))
    mgr.create()
    return mgr


def plan_cgroup_birth(mgr, ctx) -> tuple[bool, int | None]:
    """Place the container's processes at birth instead of moving them (stage1.py): stage 1 is
    cloned into the cgroup2 directory (the fd returned, if there is one) and joins the v1
    hierarchies itself; the init inherits all of it. No cgroup.procs write, and none of its RCU
    grace period, is then on the way to the container.

    Not rootless: apply() skips the hierarchies we may not write to, which this cannot know.
    Not into a systemd unit that does not exist yet: the init's pid starts it (cgroups/systemd.py).
    """
    if mgr is None or mgr.rootless or not mgr.can_place_at_birth():
        return False, None
    v1_dirs, cgroup2 = mgr.birth_plan()
    fd = None
    if cgroup2:
        try:
            fd = os.open(cgroup2, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return False, None
    ctx.cgroup_v1_dirs = v1_dirs
    return True, fd


def fork_stage1(cgroup2_fd: int | None) -> tuple[int, bool]:
    """Fork stage 1, into the cgroup2 directory when given: (pid or 0, born there). When the
    kernel refuses the clone (no clone3, say) it is a plain fork and the parent moves the init."""
    if cgroup2_fd is not None:
        try:
            return linux.fork_into_cgroup(cgroup2_fd), True
        except OSError:
            return os.fork(), False
    return os.fork(), True


def start_cgroup_move(mgr, stage1_pid: int) -> None:
    """Move stage 1 into the cgroup while it is busy forking the init.

    The first cgroup.procs write of a create sleeps through an RCU grace
    period (~10 ms); started here it overlaps stage 1's unshare and fork, and
    the init's own move (after its pid arrives) finds the grace period over.
    The init may be forked before this move lands, so it is always moved
    itself; stage 1 may already be gone (ESRCH), which is fine.
    """
    try:
        mgr.apply(stage1_pid)
    except CgroupError as e:
        if e.errno != errno.ESRCH:
            raise


def move_init(mgr, init_pid: int, chan: Channel) -> None:
    """Move the init into the cgroup. It sets up its rootfs meanwhile and may already have
    failed and exited (a bad mount, say): then its own report is the error, not our ESRCH."""
    try:
        mgr.apply(init_pid)
    except CgroupError as e:
        if e.errno == errno.ESRCH:
            chan.recv()  # raises the init's error (or "exited before reporting")
        raise


def cgroup_resources(config: dict) -> dict:
    """linux.resources (unknown keys dropped) plus the device rules runc always adds."""
    from ..cgroups.resources import DEFAULT_ALLOWED_DEVICES, KNOWN_KEYS

    lin = config.get("linux") or {}
    resources = {}
    for key, value in (lin.get("resources") or {}).items():
        if key not in KNOWN_KEYS[""]:
            continue  # config.md: unknown properties MUST be ignored
        known = KNOWN_KEYS.get(key)
        if known is not None and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k in known}
        resources[key] = value
    # The config's rules in order, then the ones every container needs: a "deny all" in
    # the config resets whatever came before it, so it cannot lock out /dev/null.
    rules = list(resources.get("devices") or [])
    rules.extend(DEFAULT_ALLOWED_DEVICES)
    resources["devices"] = rules
    return resources


def new_record(cid: str, config: dict, opts, rootfs: str, pid: int, mgr) -> dict:
    annotations = dict(config.get("annotations") or {})
    return {
        "id": cid,
        "ociVersion": config.get("ociVersion", ""),
        "bundle": opts.bundle,
        "rootfs": rootfs,
        "created": rfc3339(),
        "owner": "",
        "annotations": annotations,
        "pid": pid,
        "start_time": proc.pid_start_time(pid),
        "cgroup": mgr.save() if mgr is not None else None,
        "hooks": config.get("hooks") or {},
        "config": config,
        "systemd_cgroup": opts.systemd_cgroup,
    }


def serve_init(chan: Channel, config: dict, record: dict, console_sock, opts) -> None:
    """Answer the init until it reports ready: hooks run here, on the host; the pty master is
    passed on to the console socket (or kept for a foreground `run` to proxy)."""
    while True:
        msg = chan.recv()
        if msg["type"] == "ready":
            for step, seconds in msg.get("timeline") or []:
                log.get().debug(f"container {record['id']}: init step {step}: {seconds * 1000:.2f} ms")
            return
        if msg["type"] == "seccomp":
            if not msg["fds"]:
                raise ChildError("seccomp message without the listener fd", step="sync")
            state = {"ociVersion": OCI_VERSION, "id": record["id"], "status": "creating",
                     "pid": record["pid"], "bundle": record["bundle"]}
            send_seccomp_listener(config, msg["fds"][0], state, record["pid"])
            chan.send("seccomp_done")
            continue
        if msg["type"] == "console":
            if not msg["fds"]:
                raise ChildError("console message without the pty master", step="sync")
            master = msg["fds"][0]
            if console_sock is not None:
                from ..console import send_master

                try:
                    send_master(console_sock, master, str(msg.get("name", "")))
                finally:
                    os.close(master)
            else:
                opts.console_master = master
            continue
        if msg["type"] == "hooks":
            state = {"ociVersion": OCI_VERSION, "id": record["id"], "status": "creating",
                     "pid": record["pid"], "bundle": record["bundle"]}
            if record["annotations"]:
                state["annotations"] = record["annotations"]
            hooks = config.get("hooks") or {}
            run_hooks(hooks, "prestart", state)
            run_hooks(hooks, "createRuntime", state)
            chan.send("hooks_done")
            continue
        raise ChildError(f"unexpected message {msg['type']!r} from the container init", step="sync")


def reap(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return status


def attach_inherited_rootfs(config: dict, rootfs: str) -> int:
    """No mount namespace in the config: the container shares ours, so the rootfs mount its
    mounts go into is made here, where it can be recorded and removed (rootfs/inherited.py)."""
    from ..rootfs.inherited import attach_rootfs

    return attach_rootfs(rootfs, (config.get("linux") or {}).get("rootfsPropagation"))


def cleanup(sd: StateDir, mgr, init_pid: int, stage1_pid: int,
            rootfs_mount: tuple[str, int] | None = None) -> None:
    """Undo a failed create: kill what was started, remove the cgroup, the rootfs mount made in
    the caller's namespace (no mount namespace) and the state directory."""
    for pid in (stage1_pid, init_pid):
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if stage1_pid:
        try:
            reap(stage1_pid)
        except ChildProcessError:
            pass
    if init_pid:
        wait_gone(init_pid)
    if mgr is not None:
        try:
            if mgr.exists() and mgr.pids():  # an init we never heard of still lives there
                mgr.signal_all(signal.SIGKILL)
            mgr.destroy()
        except PyruncError as e:
            log.get().warning(f"container {sd.id}: cleanup: {e.cause}")
    if rootfs_mount is not None:
        from ..rootfs.inherited import detach_rootfs

        try:
            detach_rootfs(*rootfs_mount)
        except PyruncError as e:
            log.get().warning(f"container {sd.id}: cleanup: {e.cause}")
    sd.remove()


def wait_gone(pid: int, timeout: float = 10.0) -> None:
    """Wait until pid is dead or a zombie; reap it if it became our child (run's subreaper)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return
        except ChildProcessError:
            pass
        if not proc.pid_alive(pid, None):
            return
        time.sleep(0.005)
