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



def default_id(bundle: str) -> str:
    """`plan` and `check` without an id: the bundle directory's name, if it is a valid id (it
    names the cgroup where the config has no cgroupsPath)."""
    from ..errors import InvalidID
    from ..state import check_id

    name = os.path.basename(os.path.abspath(bundle))
    try:
        check_id(name)
    except InvalidID:
        return "container"
    return name


# `pyrunc plan` and `create --dry-run`: the output format of the plan.
PLAN_OPTS = [Opt("format", True, "f", default="text",
                 doc="how to print the plan: text (for people) or json (for programs)")]


def print_plan(opts: dict, glob, cid: str) -> int:
    """Plan what `create` would do (Container.plan) and print it: text for people, or
    ``--format json``. Exit status 1 when the plan found problems create would fail on."""
    import sys

    from ..container import Container

    fmt = opts["format"]
    if fmt not in ("text", "json"):
        raise UsageError(f"invalid --format {fmt!r}: expected text or json")
    try:
        preserve = int(opts["preserve_fds"])
    except ValueError:
        raise UsageError(f"invalid value {opts['preserve_fds']!r} for --preserve-fds") from None
    # No create_options(): its --preserve-fds claim moves our own fds, and a plan touches nothing.
    create = CreateOptions(bundle=opts["bundle"], pid_file=opts["pid_file"],
                           console_socket=opts["console_socket"], no_pivot=opts["no_pivot"],
                           no_new_keyring=opts["no_new_keyring"], preserve_fds=preserve,
                           systemd_cgroup=glob.systemd_cgroup, rootless=glob.rootless, detach=True)
    doc = Container.plan(glob.root, cid, create)
    if fmt == "json":
        import json

        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        from ..process.plan import render_text

        sys.stdout.write(render_text(doc))
    return 1 if doc["problems"] else 0
