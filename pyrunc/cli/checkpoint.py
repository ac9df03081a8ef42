"""`pyrunc checkpoint [options] <id>`: checkpoint a running container with CRIU (pyrunc/criu)."""

from __future__ import annotations

from ..container import Container
from ..errors import CHECKPOINT, Boundary, UsageError
from .args import Opt, exactly, parse

OPTIONS = [
    Opt("image-path", True, default=None, doc="directory for CRIU's image files (default: ./checkpoint)"),
    Opt("work-path", True, default=None, doc="directory for CRIU's log and work files (default: the image path)"),
    Opt("parent-path", True, default=None,
        doc="the images of an earlier --pre-dump, relative to the image path"),
    Opt("leave-running", doc="keep the container running after the dump"),
    Opt("tcp-established", doc="dump established TCP connections"),
    Opt("ext-unix-sk", doc="allow unix sockets connected to peers outside the container"),
    Opt("shell-job", doc="allow a process attached to the caller's terminal or session"),
    Opt("lazy-pages", doc="leave memory pages for a lazy-pages daemon: not supported, refused"),
    Opt("status-fd", True, default="-1", doc="fd CRIU signals when lazy pages are ready (with --lazy-pages)"),
    Opt("page-server", True, default=None, doc="send the memory pages to a CRIU page server at ADDRESS:PORT"),
    Opt("file-locks", doc="dump file locks"),
    Opt("pre-dump", doc="dump only the memory and keep the container running (for a later --parent-path)"),
    Opt("manage-cgroups-mode", True, default=None,
        doc="how CRIU treats cgroups: soft, full, strict or ignore (default: CRIU's, soft)"),
    Opt("empty-ns", True, multi=True,
        doc="a namespace to leave empty in the images: only network (repeatable)"),
    Opt("auto-dedup", doc="free the parent images' pages as they are written (deduplication)"),
    Opt("tcp-skip-in-flight", doc="leave out TCP connections not yet established (with --tcp-established)"),
    Opt("link-remap", doc="dump a file whose name was removed but that has other links, "
        "by linking it back under a temporary name"),
]


def run(argv: list[str], glob) -> int:
    # podman asks `<runtime> checkpoint --help` whether C/R is supported: parse answers it.
    p = parse(argv, OPTIONS, command="checkpoint")
    (cid,) = exactly(p, 1, "checkpoint", "[command options] <container-id>")
    try:
        p.opts["status_fd"] = int(p.opts["status_fd"])
    except ValueError:
        raise UsageError(f"invalid value {p.opts['status_fd']!r} for --status-fd") from None
    from ..criu.common import CriuOptions

    with Boundary(cid, CHECKPOINT):
        o = CriuOptions(**p.opts)
    with Container.load(glob.root, cid) as c:
        c.checkpoint(o, glob.criu)
    return 0
