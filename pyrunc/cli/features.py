"""`pyrunc features`: the features document (runtime-spec features.md) on stdout."""

from __future__ import annotations

import json
import sys

from .args import parse


def run(argv: list[str], glob) -> int:
    parse(argv, [], command="features")
    from ..features import document

    sys.stdout.write(json.dumps(document(), indent=4) + "\n")
    return 0
