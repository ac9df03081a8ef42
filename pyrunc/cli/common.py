"""The option table create and run share, and turning it into CreateOptions."""

from __future__ import annotations

import os

from ..errors import UsageError
from ..options import CreateOptions
from .args import Opt

CREATE_OPTS = [
    Opt("bundle", True, "b", default=".",
        doc="the bundle directory: config.json and the root filesystem it names"),
    Opt("console-socket", True, default=None,
        doc="AF_UNIX socket to send the terminal's master fd to (process.terminal true)"),
    Opt("pid-file", True, default=None,
        doc="write the init's host pid to this file (no newline)"),
    Opt("no-pivot", doc="enter the rootfs with MS_MOVE and chroot, not pivot_root (for a rootfs on a ramdisk)"),
    Opt("no-new-keyring", doc="keep the caller's session keyring instead of making a new one"),
    Opt("preserve-fds", True, default="0",
        doc="pass N more open fds after stdio (and $LISTEN_FDS) to the container"),
    Opt("pidfd-socket", True, default=None,
        doc="path to an AF_UNIX socket that receives a pidfd of the container's init"),
]


def create_options(opts: dict, glob, *, detach: bool, subreaper: bool = False,
                   cid: str | None = None) -> CreateOptions:
    try:
        preserve = int(opts["preserve_fds"])
        if preserve < 0:
            raise ValueError
    except ValueError:
        raise UsageError(f"invalid value {opts['preserve_fds']!r} for --preserve-fds") from None
    if preserve or "LISTEN_FDS" in os.environ:
        from ..process.passfds import claim

        claim(preserve, step="create", container=cid)  # before anything of ours is opened
    return CreateOptions(bundle=opts["bundle"], pid_file=opts["pid_file"],
                         console_socket=opts["console_socket"], pidfd_socket=opts["pidfd_socket"],
                         no_pivot=opts["no_pivot"],
                         no_new_keyring=opts["no_new_keyring"], preserve_fds=preserve,
                         systemd_cgroup=glob.systemd_cgroup, rootless=glob.rootless,
                         subreaper=subreaper, detach=detach)

