"""`pyrunc events [--interval 5s] [--stats] <id>`: resource statistics and OOM events as JSON lines.

``--stats`` prints one ``{"type":"stats","id":..,"data":{..}}`` object and exits.
Otherwise a stats object is printed every interval and an ``{"type":"oom","id":..}``
object for each OOM kill, until the container stops. Each object is one line,
flushed at once, so a reader sees it as soon as it happens.
"""

from __future__ import annotations

import json
import re
import sys
import time

from ..container import Container
from ..errors import PyruncError, UsageError
from .args import Opt, exactly, parse

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# While waiting for the next tick, check this often whether the container is still there.
STATUS_POLL_SECONDS = 0.5
OPTIONS = [
    Opt("interval", True, default="5s", doc="how often to print statistics, a Go duration (500ms, 10s, 1m)"),
    Opt("stats", doc="print the statistics once and exit"),
]


def parse_duration(text: str) -> float:
    """A Go ``time.Duration`` string (``5s``, ``1m30s``, ``250ms``, ``0``) in seconds."""
    raw = text.strip()
    if raw in ("0", "+0", "-0"):
        return 0.0
    sign = -1.0 if raw.startswith("-") else 1.0
    body = raw.lstrip("+-")
    pos = 0
    total = 0.0
    while pos < len(body):
        m = _DURATION_PART.match(body, pos)
        if not m:
            raise UsageError(f'invalid value "{text}" for flag -interval: parse error', step="events")
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if not body:
        raise UsageError(f'invalid value "{text}" for flag -interval: parse error', step="events")
    return sign * total


def _emit(event: dict) -> None:
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _not_running(cid: str) -> PyruncError:
    return PyruncError(f"container with id {cid} is not running", step="events")


def run(argv: list[str], glob) -> int:
    p = parse(argv, OPTIONS, command="events")
    (cid,) = exactly(p, 1, "events", "[command options] <container-id>")
    interval = parse_duration(p.opts["interval"])
    if interval <= 0:
        raise UsageError("duration interval must be greater than 0", step="events")
    c = Container.load(glob.root, cid, lock=False)
    if c.status() == "stopped":
        raise _not_running(cid)
    cg = c.cgroup
    if cg is None:
        raise PyruncError("container has no cgroup", step="events", container=cid)
    if p.opts["stats"]:
        _emit({"type": "stats", "id": cid, "data": cg.stats()})
        return 0
    from ..foreground import stay_for_the_container

    stay_for_the_container()
    watcher = cg.oom_watcher()
    try:
        next_tick = time.monotonic()
        while True:
            if c.status() == "stopped" or not cg.exists():
                return 0
            now = time.monotonic()
            if now >= next_tick:
                _emit({"type": "stats", "id": cid, "data": cg.stats()})
                next_tick = now + interval
            for _ in range(watcher.wait(min(next_tick - time.monotonic(), STATUS_POLL_SECONDS))):
                _emit({"type": "oom", "id": cid})
    finally:
        watcher.close()
