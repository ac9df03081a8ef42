"""`pyrunc restore [options] <id>`: restore a container from a checkpoint with CRIU (pyrunc/criu).

Detached (-d), the restored init is left running and we exit. In the foreground, as `run`:
we stay, forward signals, wait for the init (CRIU made it our child) and pass its exit status
on, then remove the container.
"""

from __future__ import annotations

import sys

from ..container import Container, CreateOptions
from ..errors import PyruncError
from .args import Opt, exactly, parse

OPTIONS = [
    Opt("image-path", True, default=None),
    Opt("work-path", True, default=None),
    Opt("tcp-established"),
    Opt("ext-unix-sk"),
    Opt("shell-job"),
    Opt("file-locks"),
    Opt("manage-cgroups-mode", True, default=None),
    Opt("bundle", True, "b", default="."),
    Opt("detach", short="d"),
    Opt("pid-file", True, default=None),
    Opt("no-subreaper"),
    Opt("no-pivot"),
    Opt("empty-ns", True, multi=True),
    Opt("auto-dedup"),
    Opt("lazy-pages"),
    Opt("console-socket", True, default=None),
    Opt("lsm-profile", True, default=None),
    Opt("lsm-mount-context", True, default=None),
    Opt("help", short="h"),
]


def run(argv: list[str], glob) -> int:
    p = parse(argv, OPTIONS, command="restore")
    if p.opts["help"]:  # podman asks `<runtime> checkpoint --help` whether C/R is supported
        from .args import help_text

        sys.stdout.write(help_text("restore", "restore a container from a previous checkpoint", OPTIONS))
        return 0
    (cid,) = exactly(p, 1, "restore", "[command options] <container-id>")
    from ..criu.common import CriuOptions
    from ..criu.restore import restore

    o = p.opts
    try:
        if o["lsm_profile"] or o["lsm_mount_context"]:
            raise PyruncError("--lsm-profile and --lsm-mount-context are not supported by pyrunc")
        copts = CriuOptions(**{k: o[k] for k in ("image_path", "work_path", "tcp_established",
                                                 "ext_unix_sk", "shell_job", "file_locks",
                                                 "manage_cgroups_mode", "empty_ns", "auto_dedup",
                                                 "lazy_pages")})
    except PyruncError as e:
        e.container, e.step = cid, "restore"
        raise
    detach = o["detach"]
    opts = CreateOptions(bundle=o["bundle"], pid_file=o["pid_file"], console_socket=o["console_socket"],
                         no_pivot=o["no_pivot"], systemd_cgroup=glob.systemd_cgroup,
                         rootless=glob.rootless, subreaper=not detach and not o["no_subreaper"],
                         detach=detach)
    if opts.subreaper:
        from .. import linux

        linux.set_child_subreaper()
    record = restore(glob.root, cid, copts, opts, glob.criu)
    if detach:
        return 0
    from .common import stay_for_the_container
    from .run import forward_signals, wait_for

    stay_for_the_container()
    forward_signals(record["pid"])
    status = wait_for(record["pid"])
    c = Container.load(glob.root, cid)
    try:
        c.destroy()
    finally:
        c.dir.unlock()
    return status
