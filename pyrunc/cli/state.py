"""`pyrunc state <id>`: the OCI state document on stdout."""

from __future__ import annotations

import sys

from ..container import Container
from .args import exactly, parse


def run(argv: list[str], glob) -> int:
    (cid,) = exactly(parse(argv, [], command="state"), 1, "state", "<container-id>")
    c = Container.load(glob.root, cid, lock=False)
    from ..jsonout import dumps

    sys.stdout.write(dumps(c.oci_state(), indent=2))
    sys.stdout.flush()
    return 0
