"""`pyrunc spec [--rootless] [--bundle DIR]`: write a starting config.json (our own default,
spec/default.py, which the Python API builds its configs from too)."""

from __future__ import annotations

import json
import os

from ..errors import PyruncError
from ..spec.default import default_config
from .args import Opt, parse

OPTIONS = [
    Opt("bundle", True, "b", default=".", doc="the directory to write config.json into"),
    Opt("rootless", doc="a config for a container run without root (user namespace, no cgroup limits)"),
]


def run(argv: list[str], glob) -> int:
    p = parse(argv, OPTIONS, command="spec")
    path = os.path.join(p.opts["bundle"], "config.json")
    if os.path.exists(path):
        raise PyruncError("File config.json exists. Remove it first", step="spec")
    try:
        with open(path, "x") as f:
            f.write(json.dumps(default_config(p.opts["rootless"]), indent="\t") + "\n")
    except OSError as e:
        raise PyruncError(f"write {path}: {e.strerror}", step="spec") from None
    return 0
