"""`pyrunc kill [--all] <id> [signal]`: signal the init (or every process of the cgroup)."""

from __future__ import annotations

from ..container import Container
from ..errors import UsageError
from ..signals import parse_signal
from .args import Opt, parse

OPTIONS = [
    Opt("all", short="a", doc="signal every process in the container's cgroup, not only the init"),
    Opt("signal", True, "s", default=None,
        doc="the signal, when not given as the second argument (default: SIGTERM)"),
]


def run(argv: list[str], glob) -> int:
    p = parse(argv, OPTIONS, command="kill")
    if not 1 <= len(p.args) <= 2:
        raise UsageError('"kill" requires a minimum of 1 and a maximum of 2 arguments', step="kill")
    cid = p.args[0]
    raw = p.args[1] if len(p.args) == 2 else (p.opts["signal"] or "SIGTERM")
    sig = parse_signal(raw)
    c = Container.load(glob.root, cid, lock=False)
    c.signal(sig, all_processes=p.opts["all"])
    return 0
