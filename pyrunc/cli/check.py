"""`pyrunc check [options] [<container-id>]`: lint a bundle's config.json.

Errors (what `create` would refuse, with JSON pointers, and jsonschema's second opinion), the
security posture and where runc 1.1, runc 1.5 and the spec disagree: pyrunc/lint.py. Text for
people or `--format json`; the exit status is 1 when a finding is at the `--fail-on` level
(error, the default, or warning) or worse.
"""

from __future__ import annotations

import os
import sys

from ..errors import UsageError
from ..options import CreateOptions
from .args import Opt, parse
from .common import default_id

CHECK_OPTS = [
    Opt("bundle", True, "b", default=".", doc="path to the bundle whose config.json is checked"),
    Opt("format", True, "f", default="text", doc="how to print the findings: text or json"),
    Opt("fail-on", True, default="error",
        doc="exit 1 when a finding at this level or above is found: error or warning"),
]


def run(argv: list[str], glob) -> int:
    p = parse(argv, CHECK_OPTS, command="check")
    if len(p.args) > 1:
        raise UsageError('"check" takes at most 1 argument (usage: pyrunc check [command options] '
                         "[<container-id>])", step="check")
    fmt, fail_on = p.opts["format"], p.opts["fail_on"]
    if fmt not in ("text", "json"):
        raise UsageError(f"invalid --format {fmt!r}: expected text or json", step="check")
    if fail_on not in ("warning", "error"):
        raise UsageError(f"invalid --fail-on {fail_on!r}: expected warning or error", step="check")
    from .. import lint

    bundle = os.path.abspath(p.opts["bundle"])
    cid = p.args[0] if p.args else default_id(bundle)
    # The config is judged, not one invocation of it: a terminal needs a console socket only
    # when create detaches, so check plans a foreground create (`run`'s).
    opts = CreateOptions(bundle=bundle, systemd_cgroup=glob.systemd_cgroup, rootless=glob.rootless,
                         detach=False)
    report = lint.check(bundle, root=glob.root, cid=cid, opts=opts)
    if fmt == "json":
        import json

        sys.stdout.write(json.dumps(report.as_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(lint.render_text(report))
    return 1 if report.fails(fail_on) else 0
