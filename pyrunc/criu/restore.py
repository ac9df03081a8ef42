"""`restore`: bring a checkpointed container back with CRIU (a RESTORE request over swrk).

Order, as runc 1.1: check the bundle and the image directory, claim the id, create the cgroup
from the config's resources and record it (so `delete --force` finds whatever a failed restore
left), start CRIU and move it into that cgroup (CRIU places the restored tasks in the cgroup it
runs in: cg_root), describe external mounts/namespaces/stdio pipes, then serve CRIU's
notifications: `setup-namespaces` runs the prestart and createRuntime hooks, `orphan-pts-master`
hands the new pty master to --console-socket, `post-restore` gives the init's pid. The init is
CRIU's sibling (rst_sibling), so it is our child, as a `run` init is.

CRIU needs the root it restores into to be a mount point; runc bind-mounts the rootfs to a
directory of its state dir in the host's mount table. We bind the rootfs on itself inside a
private mount namespace of this process instead: nothing can be left mounted on the host if
we die, and the namespace goes away with us and CRIU.
"""

from __future__ import annotations

import json
import os

from .. import linux, proc
from ..errors import RESTORE, AlreadyExists, PyruncError
from ..options import CreateOptions
from ..process.creation import Creation, check_supported, resolve_rootfs
from ..process.launch import connect_console
from ..spec import load_config
from ..state import Record, StateDir, oci_state
from . import rpc
from .common import (
    DESCRIPTORS,
    LAZY_PAGES_REFUSED,
    NS_KEYS,
    Conversation,
    CriuOptions,
    base_request,
    close_fds,
    device_paths,
    find_criu,
    is_bind,
    namespace_paths,
    open_image_dirs,
)

LOG = "restore.log"
NS_NAMES = {"mount": "mnt", "uts": "uts", "ipc": "ipc", "user": "user", "time": "time", "cgroup": "cgroup"}


def restore(sd: StateDir, o: CriuOptions, opts: CreateOptions, criu_path: str | None) -> Record:
    """Restore container ``sd.id`` from ``o.image_path``; return its record. On any failure
    nothing is left: no state, no cgroup, no process (creation.Creation)."""
    if sd.exists():  # before the images are looked at, as runc (reserve() below settles races)
        raise AlreadyExists(sd.id, step=RESTORE)
    with Creation(sd, RESTORE, nest=True) as c:
        if o.lazy_pages:
            raise PyruncError(LAZY_PAGES_REFUSED)
        criu = find_criu(criu_path)
        c.bundle = opts.bundle
        c.config = config = load_config(opts.bundle)
        rootfs = resolve_rootfs(config, opts.bundle)
        check_supported(config, detach=opts.detach, console_socket=opts.console_socket)
        if (config.get("process") or {}).get("terminal") and not (opts.console_socket or o.shell_job):
            raise PyruncError("a container with a terminal is restored with --console-socket "
                              "(the new pty master goes there) or --shell-job")
        descriptors = read_images(o.image_path)
        console_sock = connect_console(opts.console_socket)
        if console_sock is not None:
            c.always(console_sock.close)
        c.reserve()
        mgr = c.make_cgroup(systemd=opts.systemd_cgroup, rootless=False)
        record = c.new_record(rootfs, systemd_cgroup=opts.systemd_cgroup)
        c.at("criu restore")
        fds: list[int] = []
        c.always(close_fds, fds)
        req_opts = restore_request(o, config, rootfs, opts.bundle, descriptors, fds)
        log_path = os.path.join(o.log_dir, LOG)
        conv = Conversation(criu, log_path, "restore", extra_fds=req_opts.pop("extra_fds"), stdin_fd=0)
        c.undo(conv.abort)
        mgr.apply(conv.pid)
        mgr.set(mgr.resources)
        req_opts["cg_root"] = cgroup_roots(conv.pid) or None
        init_pid = converse(conv, req_opts, record, console_sock)
        c.init_pid = init_pid
        if not init_pid or not proc.pid_alive(init_pid, None):
            raise PyruncError("CRIU reported success but the restored init is not running "
                              f"(CRIU log: {log_path})")
        note_time_namespace(record, init_pid)
        record.restored_from = o.image_path
        c.finish(record, init_pid, opts.pid_file)
        return record


def restore_request(o: CriuOptions, config: dict, rootfs: str, bundle: str, descriptors: list[str],
                    fds: list[int]) -> dict:
    """The RESTORE request's options: external mounts, namespaces to join or inherit, the stdio
    pipes re-plumbed, the image fds (appended to ``fds``), made in a private mount namespace where
    the rootfs is a mount point; ``extra_fds`` are the fds CRIU inherits (4, 5, 6 ...)."""
    req_opts = base_request(o, config, rootfs, LOG)
    req_opts.update(evasive_devices=True, rst_sibling=True)
    private_root(rootfs)  # first: the directory fds CRIU uses must belong to this namespace
    open_image_dirs(o, req_opts, fds, create_images=False)
    # CRIU's fds 4, 5, 6 are our stdio: the container's stdio pipes are re-plumbed to them.
    extra = [0, 1, 2]
    inherit = [{"key": name, "fd": 4 + i} for i, name in enumerate(descriptors) if "pipe:" in name]
    join = []
    for kind, path in namespace_paths(config).items():
        if kind in NS_KEYS:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                raise PyruncError(f"{kind} namespace {path}: {e.strerror}", errno=e.errno or 0) from None
            fds.append(fd)
            extra.append(fd)
            inherit.append({"key": NS_KEYS[kind][1], "fd": 4 + len(extra) - 1})
        elif kind == "cgroup":
            raise PyruncError("CRIU cannot join an existing cgroup namespace (linux.namespaces "
                              "cgroup with a path)")
        elif kind in NS_NAMES:
            join.append({"ns": NS_NAMES[kind], "ns_file": path})
    req_opts["inherit_fd"] = inherit or None
    req_opts["join_ns"] = join or None
    req_opts["ext_mnt"] = restore_mounts(config, bundle) or None
    prepare_mountpoints(rootfs, config, bundle)
    req_opts["extra_fds"] = extra
    return req_opts


def converse(conv: Conversation, req_opts: dict, record: Record, console_sock) -> int:
    """Send the RESTORE request and serve CRIU's notifications: `setup-namespaces` runs the
    prestart and createRuntime hooks, `orphan-pts-master` hands the new pty master to the console
    socket, `post-restore` gives the init's pid. Returns that pid."""
    restored = {"pid": 0}

    def on_notify(script: str, pid: int, passed: list[int]) -> None:
        if script == "setup-namespaces":
            run_restore_hooks(record, pid)
        elif script == "post-restore":
            restored["pid"] = pid
        elif script == "orphan-pts-master":
            if console_sock is None or not passed:
                return
            from ..console import send_master

            send_master(console_sock, passed[0], "orphan-pts-master")  # runc's name;
            # an empty payload would drop the fd on a stream socket

    resp = conv.run({"type": rpc.RESTORE, "opts": req_opts}, on_notify)
    conv.close()
    return (resp.get("restore") or {}).get("pid") or restored["pid"]


def read_images(image_path: str) -> list[str]:
    """The image directory must hold a checkpoint: CRIU's inventory and our descriptors.json."""
    if not os.path.isdir(image_path):
        raise PyruncError(f"image directory {image_path} does not exist")
    if not os.path.exists(os.path.join(image_path, "inventory.img")):
        raise PyruncError(f"image directory {image_path} holds no checkpoint (no inventory.img)")
    path = os.path.join(image_path, DESCRIPTORS)
    try:
        with open(path) as f:
            names = json.load(f)
    except FileNotFoundError:
        raise PyruncError(f"{path} is missing (was the checkpoint made by a pre-dump?)") from None
    except (OSError, ValueError) as e:
        raise PyruncError(f"{path} is unreadable: {e}") from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise PyruncError(f"{path} is corrupt: expected a list of strings")
    return names


def restore_mounts(config: dict, bundle: str) -> list[dict]:
    """External mounts on restore: the label given on dump -> the host path to bind there."""
    out = []
    for mnt in config.get("mounts") or []:
        if is_bind(mnt):
            src = mnt.get("source") or ""
            if not src.startswith("/"):
                src = os.path.join(bundle, src)
            out.append({"key": os.path.normpath("/" + mnt["destination"].lstrip("/")), "val": src})
    if (config.get("linux") or {}).get("maskedPaths"):
        out.append({"key": "/dev/null", "val": "/dev/null"})
    for path in device_paths(config):
        out.append({"key": path, "val": path})
    return out


def private_root(rootfs: str) -> None:
    """A private mount namespace for us (and the CRIU we start) where the rootfs is a mount point."""
    from ..linux import mount as m

    try:
        linux.unshare(linux.CLONE_NEWNS)
        m.mount(None, "/", None, m.MS_REC | m.MS_SLAVE)
        m.mount(rootfs, rootfs, None, m.MS_BIND | m.MS_REC)
    except OSError as e:
        raise PyruncError(f"bind the rootfs {rootfs} on itself for CRIU: {e.strerror}",
                          errno=e.errno or 0) from None


def cgroup_roots(pid: int) -> list[dict]:
    """CRIU's cgroup roots: where the restored tasks go, the cgroups CRIU itself was put in."""
    out = []
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise PyruncError(f"read CRIU's cgroups: {e.strerror}") from None
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if not ctrls:
            out.append({"ctrl": "", "path": path})
            continue
        for ctrl in ctrls.split(","):
            out.append({"ctrl": ctrl, "path": path})
    return out


def run_restore_hooks(record: Record, pid: int) -> None:
    """runc runs prestart and createRuntime when CRIU has set up the namespaces."""
    hooks = record.hooks
    if not (hooks.get("prestart") or hooks.get("createRuntime")):
        return
    from ..hooks import run_hooks

    state = oci_state(record, "creating", pid=pid)
    run_hooks(hooks, "prestart", state)
    run_hooks(hooks, "createRuntime", state)


def note_time_namespace(record: Record, pid: int) -> None:
    """CRIU restores the tasks into a time namespace of its own (their clocks go on from the
    dump); recorded like runc does, so that `exec` joins it too."""
    lin = record.config.setdefault("linux", {})
    kinds = {ns.get("type") for ns in lin.get("namespaces") or []}
    if "time" in kinds:
        return
    try:
        if os.stat(f"/proc/{pid}/ns/time").st_ino == os.stat("/proc/self/ns/time").st_ino:
            return
    except OSError:
        return
    lin["namespaces"] = list(lin.get("namespaces") or []) + [{"type": "time"}]


def prepare_mountpoints(rootfs: str, config: dict, bundle: str) -> None:
    """runc's prepareCriuRestoreMounts: CRIU mounts onto existing mount points only, and a rootfs
    that is not the one the container ran in (a restore elsewhere, a fresh copy) lacks those the
    create made. They are made the way create makes them (inside the rootfs, never through a
    symlink); none below a tmpfs (CRIU brings its content back) and none for cgroup mounts."""
    from ..rootfs import resolve

    mounts = config.get("mounts") or []
    dests = [(m, os.path.normpath("/" + (m.get("destination") or "").lstrip("/"))) for m in mounts]
    tmpfs = [d for m, d in dests if m.get("type") == "tmpfs"]
    try:
        root_fd = resolve.open_root(rootfs)
    except OSError as e:
        raise PyruncError(f"open rootfs {rootfs}: {e.strerror}") from None
    try:
        for mnt, dest in dests:
            if dest == "/" or mnt.get("type") in ("cgroup", "cgroup2") or \
                    any(dest.startswith(t + "/") for t in tmpfs):
                continue
            as_file = False
            if is_bind(mnt):
                src = mnt.get("source") or ""
                src = src if src.startswith("/") else os.path.join(bundle, src)
                as_file = os.path.exists(src) and not os.path.isdir(src)
            try:
                fd = (resolve.create_file_in_root if as_file else resolve.mkdir_all_in_root)(root_fd, dest)
                os.close(fd)
            except OSError as e:
                raise PyruncError(f"create mount point {dest} in the rootfs: {e.strerror}") from None
    finally:
        os.close(root_fd)
