"""`pyrunc restore [options] <id>`: restore a container from a checkpoint with CRIU (pyrunc/criu).

Detached (-d), the restored init is left running and we exit. In the foreground, as `run`:
we stay, forward signals, wait for the init (CRIU made it our child) and pass its exit status
on, then remove the container.
"""

from __future__ import annotations

from ..container import Container
from ..errors import RESTORE, Boundary, PyruncError
from ..options import CreateOptions
from .args import Opt, exactly, parse

OPTIONS = [
    Opt("image-path", True, default=None, doc="directory holding CRIU's image files (default: ./checkpoint)"),
    Opt("work-path", True, default=None, doc="directory for CRIU's log and work files (default: the image path)"),
    Opt("tcp-established", doc="restore established TCP connections (dumped with --tcp-established)"),
    Opt("ext-unix-sk", doc="allow unix sockets connected to peers outside the container"),
    Opt("shell-job", doc="allow a process attached to the caller's terminal or session"),
    Opt("file-locks", doc="restore file locks"),
    Opt("manage-cgroups-mode", True, default=None,
        doc="how CRIU treats cgroups: soft, full, strict or ignore (default: CRIU's, soft)"),
    Opt("bundle", True, "b", default=".", doc="the bundle directory: config.json and the root filesystem"),
    Opt("detach", short="d", doc="leave the restored container running and return at once"),
    Opt("pid-file", True, default=None, doc="write the restored init's host pid to this file (no newline)"),
    Opt("no-subreaper", doc="accepted for runc's callers; a foreground restore is always a subreaper"),
    Opt("no-pivot", doc="accepted for runc's callers; CRIU restores the mounts, so it changes nothing"),
    Opt("empty-ns", True, multi=True, doc="a namespace that was left empty: only network (repeatable)"),
    Opt("auto-dedup", doc="free the image pages as they are restored (deduplication)"),
    Opt("lazy-pages", doc="restore memory pages lazily through userfaultfd: not supported, refused"),
    Opt("console-socket", True, default=None,
        doc="AF_UNIX socket to send the restored terminal's new master fd to"),
    Opt("lsm-profile", True, default=None, doc="TYPE:NAME of an LSM profile for the restored process: not supported, refused"),
    Opt("lsm-mount-context", True, default=None, doc="LSM mount context for the restored rootfs: not supported, refused"),
]


def run(argv: list[str], glob) -> int:
    p = parse(argv, OPTIONS, command="restore")  # `--help` too: podman asks before it restores
    (cid,) = exactly(p, 1, "restore", "[command options] <container-id>")
    from ..criu.common import CriuOptions

    o = p.opts
    with Boundary(cid, RESTORE):
        if o["lsm_profile"] or o["lsm_mount_context"]:
            raise PyruncError("--lsm-profile and --lsm-mount-context are not supported by pyrunc")
        copts = CriuOptions(**{k: o[k] for k in ("image_path", "work_path", "tcp_established",
                                                 "ext_unix_sk", "shell_job", "file_locks",
                                                 "manage_cgroups_mode", "empty_ns", "auto_dedup",
                                                 "lazy_pages")})
    detach = o["detach"]
    opts = CreateOptions(bundle=o["bundle"], pid_file=o["pid_file"], console_socket=o["console_socket"],
                         no_pivot=o["no_pivot"], systemd_cgroup=glob.systemd_cgroup,
                         rootless=glob.rootless, subreaper=not detach and not o["no_subreaper"],
                         detach=detach)
    c = Container.restore(glob.root, cid, copts, opts, glob.criu)
    if detach:
        return 0
    from ..foreground import attend

    status = attend(c.pid, None)
    with c.locked():
        c.destroy()
    return status
