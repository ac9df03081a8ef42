"""Option tables shared by create and run, and what every long-lived command does first."""

from __future__ import annotations

import os

from ..container import CreateOptions
from ..errors import UsageError
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


def stay_for_the_container() -> None:
    """Turn Python's cyclic garbage collector back on for a command that lives as long as the
    container (foreground `run` and `exec`, `events`). The launcher turns it off: start-up makes
    no garbage worth collecting, and the collections it runs during the imports cost ~1 ms of
    every call."""
    import gc

    gc.enable()
