"""The option table create and run share, and turning it into CreateOptions."""

from __future__ import annotations

import os

from ..errors import UsageError
from ..options import CreateOptions
from .args import Opt

CREATE_OPTS = [
    Opt("bundle", True, "b", default="."),
    Opt("console-socket", True, default=None),
    Opt("pid-file", True, default=None),
    Opt("no-pivot"),
    Opt("no-new-keyring"),
    Opt("preserve-fds", True, default="0"),
    Opt("pidfd-socket", True, default=None),
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
                         console_socket=opts["console_socket"], no_pivot=opts["no_pivot"],
                         no_new_keyring=opts["no_new_keyring"], preserve_fds=preserve,
                         systemd_cgroup=glob.systemd_cgroup, rootless=glob.rootless,
                         subreaper=subreaper, detach=detach)

