"""`pyrunc restore [options] <id>`: restore a container from a checkpoint with CRIU (pyrunc/criu).

Detached (-d), the restored init is left running and we exit. In the foreground, as `run`:
we stay, forward signals, wait for the init (CRIU made it our child) and pass its exit status
on, then remove the container.
"""

from __future__ import annotations

import sys

from ..container import Container
from ..errors import RESTORE, Boundary, PyruncError
from ..options import CreateOptions
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
