"""The runtime side of `create`: everything before and around the forked stages.

Order: validate and prepare in the parent (config, rootfs, namespace fds, capability plan,
seccomp), reserve the id, make the cgroup and save a ``creating`` record, then clone stage 1 into
the cgroup (it joins the rest itself, so the init is born there; rootless, it is moved instead:
launch.plan_cgroup_birth), learn the init's pid, write the resources while the init sets up its
rootfs, serve the init's requests (hooks, console, seccomp, ready), and only then record the
state and the pid file. Each step that makes something registers its undo with the
``Creation`` (creation.py), so a failure anywhere takes back everything made so far.
"""

from __future__ import annotations

import errno
import os
import stat

from .. import linux, log, namespaces, proc, rootless
from ..errors import CREATE, SYNC, CgroupError, ChildError
from ..hooks import preload_for_hooks, run_hooks
from ..options import CreateOptions
from ..security import capabilities
from ..spec import load_config
from ..state import Record, StateDir, oci_state
from ..userns import check_joined_mappings, idmap_fds, write_mappings
from . import channel, execfifo, faults, launch
from .channel import Channel
from .creation import Creation, check_supported, resolve_rootfs
from .launch import (
    compile_seccomp,
    connect_console,
    connect_pidfd_socket,
    fork_stage,
    pass_seccomp_listener,
    plan_cgroup_birth,
    take_console,
)
from .stage1 import stage1
from .stages import InitContext


def create_container(sd: StateDir, opts: CreateOptions) -> tuple[Record, int | None]:
    """Create container ``sd.id``: its record, and the pty master a foreground `run` with a
    terminal proxies (None otherwise). Raises PyruncError, leaving nothing behind."""
    with Creation(sd, CREATE, poststop_on_failure=True) as c:
        c.bundle = opts.bundle
        c.config = config = given_config(opts) if opts.config is not None else load_config(opts.bundle)
        c.at("prepare init")
        is_rootless = rootless.detect(opts.rootless)
        rootfs = check_bundle(config, opts, is_rootless)
        ctx = prepare_init(c, config, rootfs, opts)
        console_sock = connect_console(opts.console_socket)
        if console_sock is not None:
            c.always(console_sock.close)
        pidfd_sock = connect_pidfd_socket(opts.pidfd_socket)
        if pidfd_sock is not None:
            c.always(pidfd_sock.close)
            ctx.pidfd_socket = pidfd_sock.fileno()
        c.reserve()
        faults.point("reserve")
        c.at("make exec fifo")
        ctx.fifo_fd = execfifo.make(sd.fifo)
        c.at("attach rootfs")
        rootfs_mount = None if ctx.ns.has("mount") else attach_inherited_rootfs(c, config, rootfs)
        mgr = c.make_cgroup(systemd=opts.systemd_cgroup, rootless=is_rootless)
        record = c.new_record(rootfs, systemd_cgroup=opts.systemd_cgroup, rootfs_mount=rootfs_mount)
        faults.point("cgroup")
        c.at("start stage 1")
        chan, born_in_cgroup = start_stage1(c, ctx, mgr, subreaper=opts.subreaper)
        c.always(chan.close)
        c.at("place init")
        c.init_pid = place_init(c, chan, mgr, record, born_in_cgroup)
        faults.point("init_pid")
        c.at("serve init")
        master = serve_init(chan, config, record, console_sock)
        c.finish(record, c.init_pid, opts.pid_file)
        faults.point("saved")
        return record, master


def given_config(opts: CreateOptions) -> dict:
    """A config handed in as data (the Python API), checked by the rules config.json meets."""
    from ..spec.load import check_config

    return check_config(opts.config, opts.bundle)


def check_bundle(config: dict, opts: CreateOptions, is_rootless: bool) -> str:
    """The rootfs and everything this runtime refuses, before anything is made."""
    rootfs = resolve_rootfs(config, opts.bundle)
    if is_rootless:
        rootless.check_config(config)
        rootless.check_rootfs(rootfs)
    check_supported(config, detach=opts.detach, console_socket=opts.console_socket)
    return rootfs


def prepare_init(c: Creation, config: dict, rootfs: str, opts: CreateOptions) -> InitContext:
    """Everything the stages will need, parsed and opened in the parent before any fork: the
    namespace plan and the fds of those given by path, the capability plan, the compiled seccomp
    filter, the fds passed on, the idmapped mounts' user namespaces."""
    cid = c.cid
    ns_plan = namespaces.Plan((config.get("linux") or {}).get("namespaces") or [])
    caps = capabilities.plan((config.get("process") or {}).get("capabilities"))
    if caps is not None:
        for name in caps.unknown:
            log.get().warning(f"container {cid}: unknown capability {name!r} skipped")
        for warning in caps.restrict(capabilities.held_bounding()):
            log.get().warning(f"container {cid}: {warning}")
    seccomp = compile_seccomp(config, cid)
    preload_for_hooks(config.get("hooks"))
    ctx = InitContext(cid=cid, config=config, bundle=opts.bundle, rootfs_path=rootfs, chan=None,
                      fifo_fd=-1, ns_plan=ns_plan, join_fds=[], caps=caps, no_pivot=opts.no_pivot,
                      no_new_keyring=opts.no_new_keyring,
                      preserve_fds=listen_fds_passed(config) + opts.preserve_fds)
    c.always(ctx.close_parent_fds)
    ctx.stdio = opts.stdio
    ctx.join_fds = namespaces.open_join_fds(ns_plan)
    check_joined_user_namespace(ctx)
    pass_notify_socket(config)
    ctx.seccomp = seccomp
    ctx.unprivileged_caller = os.geteuid() != 0
    if log.get().min_level == 0:
        ctx.timeline = []
    ctx.source_trees = clone_bind_sources(config, opts.bundle, ns_plan)
    return ctx


def check_joined_user_namespace(ctx: InitContext) -> None:
    """A user namespace given by path: mappings given beside it must be its own (runc refuses
    others too), and it must be one we may enter; both said before anything is made."""
    fd = next((fd for kind, fd in ctx.join_fds if kind == "user"), None)
    if fd is not None:
        check_joined_mappings(ctx.config, ctx.ns.join["user"], fd)


def clone_bind_sources(config: dict, bundle: str, ns_plan: namespaces.Plan) -> dict:
    """Bind sources the init could not mount itself, cloned here on the host side
    (rootfs/sources.py): every idmapped one, and in a user namespace (created or joined; not
    rootless, where we hold no more than the init) every bind. Nothing on the default path."""
    idmaps = idmap_fds(config)
    every_bind = ns_plan.has("user") and ns_plan.has("mount") and os.geteuid() == 0
    if not idmaps and not every_bind:
        return {}
    from ..rootfs.sources import clone_bind_sources as clone

    return clone(config, bundle, idmaps, all_binds=every_bind)


def attach_inherited_rootfs(c: Creation, config: dict, rootfs: str) -> int:
    """No mount namespace in the config: the container shares ours, so the rootfs mount its
    mounts go into is made here, where it can be recorded and removed (rootfs/inherited.py)."""
    from ..rootfs.inherited import attach_rootfs, detach_rootfs

    mount_id = attach_rootfs(rootfs, (config.get("linux") or {}).get("rootfsPropagation"))
    c.undo(detach_rootfs, rootfs, mount_id)
    return mount_id


def start_stage1(c: Creation, ctx: InitContext, mgr, *, subreaper: bool) -> tuple[Channel, bool]:
    """Fork stage 1 and return our end of the channel, and whether the stage was born in the
    container's cgroups (else they are joined by moving it); the fds the stage took over are
    closed here."""
    parent_chan, ctx.chan = Channel.pair()
    c.always(parent_chan.close)  # also when interrupted before the caller registers it
    c.always(ctx.chan.close)
    c.forking(ctx.chan, None if launch.RAW_CLONE else parent_chan)  # RAW_CLONE off: the Python API
    faults.arm(ctx)
    birth, cgroup2_fd = plan_cgroup_birth(mgr, ctx)
    try:
        if subreaper:
            linux.set_child_subreaper()
        pid, born = fork_stage(cgroup2_fd)
        if pid == 0:
            parent_chan.close()
            stage1(ctx)  # never returns
        c.started(pid)
        ctx.chan.close()
    finally:  # also when interrupted (a KeyboardInterrupt in a program): the fd is not leaked
        if cgroup2_fd is not None:
            os.close(cgroup2_fd)
    ctx.close_parent_fds()
    if mgr is not None and not birth and mgr.can_place_at_birth():  # systemd: the init's pid starts the unit
        start_cgroup_move(mgr, pid)
    faults.point("fork")
    return parent_chan, birth and born


def place_init(c: Creation, chan: Channel, mgr, record: Record, born_in_cgroup: bool) -> int:
    """Learn the init's pid (writing its user namespace's maps first, if stage 1 asks), put it
    into its cgroup unless it was born there, write the resources, and let it go on. Returns
    the init's pid; stage 1 is reaped."""
    config = c.config
    msg = chan.recv()
    if msg["type"] == channel.USERNS:
        write_mappings(c.stage_pid, config)
        chan.send(channel.USERNS_DONE)
        msg = chan.recv()
    if msg["type"] != channel.PID:
        raise ChildError(f"expected 'pid' from stage 1, got {msg['type']!r}", step=SYNC)
    init_pid = msg["pid"]
    c.init_pid = init_pid
    if mgr is not None:
        if not (born_in_cgroup and msg.get("placed")):
            move_init(mgr, init_pid, chan)
        mgr.set(mgr.resources)
    chan.send(channel.CGROUP_JOINED)  # an init that failed meanwhile: send raises its error
    if (config.get("linux") or {}).get("netDevices"):
        from ..netdevices import move_devices

        move_devices(init_pid, config["linux"]["netDevices"])
    os.waitpid(c.stage_pid, 0)
    c.stage_pid = 0
    # Not saved yet: should we die now, the cgroup in the record still finds the init.
    record.pid = init_pid
    record.start_time = proc.pid_start_time(init_pid)
    return init_pid


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


def serve_init(chan: Channel, config: dict, record: Record, console_sock) -> int | None:
    """Answer the init until it reports ready: hooks run here, on the host; the pty master is
    passed on to the console socket (or returned for a foreground `run` to proxy)."""
    master = None
    try:
        while True:
            msg = chan.recv()
            kind = msg["type"]
            if kind == channel.READY:
                for step, seconds in msg.get("timeline") or []:
                    log.get().debug(f"container {record.id}: init step {step}: {seconds * 1000:.2f} ms")
                return master
            if kind == channel.SECCOMP:
                pass_seccomp_listener(chan, msg, config, oci_state(record, "creating"), record.pid)
            elif kind == channel.CONSOLE:
                master = take_console(msg, console_sock)
            elif kind == channel.HOOKS:
                state = oci_state(record, "creating")
                run_hooks(config.get("hooks"), "prestart", state)
                run_hooks(config.get("hooks"), "createRuntime", state)
                chan.send(channel.HOOKS_DONE)
            else:
                raise ChildError(f"unexpected message {kind!r} from the container init", step=SYNC)
    except BaseException:
        if master is not None:
            os.close(master)
        raise


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
