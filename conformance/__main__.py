"""`conformance/run [--runtime PATH] [--oracle PATH]... [--report F.json] [--markdown F.md] [-k PAT] [--jobs N]`.

Runs every selected scenario under the runtime and, separately, under each
oracle (``--oracle`` may be given more than once: Debian's runc 1.1.5 and runc
1.5.1 by default, the latter from ../shared/oracle when it is there), prints one
line per scenario and, last, the summary line. Exit status 0 only when no
scenario is a regression (an oracle passes, the runtime fails) other than the
documented places where runc 1.5.1 and the spec changed what runc 1.1 did
(report.CHANGED_SINCE_11), so CI can gate on it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import report
from .harness import CATALOG, build_rootfs, run_one
from .scenarios import load_all

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PYRUNC_SHARED") or REPO.parent / "shared")
RUNC15 = SHARED / "oracle" / "bin" / "runc-1.5.1"


def default_oracles() -> list[str]:
    """Debian's runc (what Debian's callers install) and runc 1.5.1 (what current ones ship)."""
    found = [shutil.which("runc") or "/usr/sbin/runc"]
    if RUNC15.exists():
        found.append(str(RUNC15))
    return found


def _binary(path: str) -> str:
    """Resolve to an absolute path now: the runtimes run with the bundle as their cwd."""
    found = shutil.which(path) if os.sep not in path else path
    if not found or not os.path.exists(found):
        sys.exit(f"conformance: no such runtime binary: {path}")
    return os.path.abspath(found)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="conformance/run", description=__doc__.splitlines()[0])
    ap.add_argument("--runtime", default=str(REPO / ".venv" / "bin" / "pyrunc"), help="runtime under test")
    ap.add_argument("--oracle", action="append", default=None,
                    help="reference runtime; repeat for several (default: runc and ../shared's runc 1.5.1)")
    ap.add_argument("--report", help="write the JSON report here")
    ap.add_argument("--markdown", help="write the markdown table here")
    ap.add_argument("--conformance-doc", help="write the full docs/CONFORMANCE.md page here")
    ap.add_argument("-k", dest="pattern", help="regex matched against 'id spec level'")
    ap.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--list", action="store_true", help="list the selected scenarios and exit")
    ap.add_argument("--quiet", "-q", action="store_true", help="print only failures and the summary")
    args = ap.parse_args(argv)

    load_all()
    selected = [s for s in CATALOG
                if not args.pattern or re.search(args.pattern, f"{s.id} {s.spec} {s.level}")]
    if args.list:
        for s in selected:
            print(f"{s.id}\t{s.spec}\t{s.level}\t{s.title}")
        print(f"{len(selected)} scenarios")
        return 0
    if not selected:
        sys.exit("conformance: no scenario matches")
    if os.geteuid() != 0:
        sys.exit("conformance: must run as root (real containers)")
    runtime = _binary(args.runtime)
    oracles = [_binary(o) for o in (args.oracle or default_oracles())]
    labels = report.labels(oracles)
    sides = [("runtime", runtime)] + [(f"oracle{i}", o) for i, o in enumerate(oracles)]

    workroot = Path(tempfile.mkdtemp(prefix="pyrunc-conf-"))
    workroot.chmod(0o755)
    t0 = time.monotonic()
    try:
        template = build_rootfs(workroot / "template")
        for side, _ in sides:
            (workroot / side).mkdir(mode=0o755)
        jobs = [(s, binary, side) for s in selected for side, binary in sides]
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = [pool.submit(run_one, s, binary, side, workroot, template) for s, binary, side in jobs]
            results = {}
            for (s, _, side), fut in zip(jobs, futures, strict=True):
                results[(s.id, side)] = fut.result()
                if side == sides[-1][0]:
                    _print_row(s, results[(s.id, "runtime")],
                               [results[(s.id, f"oracle{i}")] for i in range(len(oracles))], labels, args.quiet)
    finally:
        shutil.rmtree(workroot, ignore_errors=True)

    rows = []
    for s in selected:
        rs, rd, rt = results[(s.id, "runtime")]
        row = {"id": s.id, "spec": s.spec, "level": s.level, "title": s.title, "runtime": rs,
               "oracles": {}, "details": {"runtime": rd}, "seconds": [round(rt, 2)]}
        for i, label in enumerate(labels):
            os_, od, ot = results[(s.id, f"oracle{i}")]
            row["oracles"][label] = os_
            row["details"][label] = od
            row["seconds"].append(round(ot, 2))
        row["oracle"] = row["oracles"][labels[0]]  # the first oracle, as before several were possible
        row["detail"] = "; ".join(f"{k}: {v}" for k, v in row["details"].items() if v)
        rows.append(row)
    meta = report.environment(runtime, oracles)
    meta["elapsed_seconds"] = f"{time.monotonic() - t0:.0f}"
    if args.report:
        report.write_json(Path(args.report), rows, meta)
    if args.markdown:
        Path(args.markdown).write_text(report.markdown(rows, meta, full=False))
    if args.conformance_doc:
        Path(args.conformance_doc).write_text(report.markdown(rows, meta, full=True))
    for r, label in report.regressions(rows):
        print(f"REGRESSION {r['id']} ({r['spec']}) against {label}: {r['detail'][:300]}")
    print(report.summary(rows))
    return 1 if report.regressions(rows) else 0


def _print_row(s, rt: tuple, oracles: list[tuple], labels: list[str], quiet: bool) -> None:
    regressed = [label for (status, _, _), label in zip(oracles, labels, strict=True)
                 if status == "pass" and rt[0] == "fail" and not report.expected_difference(s.id, label)]
    if quiet and not regressed:
        return
    mark = "REGR" if regressed else ""
    detail = rt[1] if rt[0] != "pass" else next((o[1] for o in oracles if o[1]), "")
    statuses = " ".join(f"{o[0]:4}" for o in oracles)
    print(f"{rt[0]:4} {statuses} {mark:4} {s.id:48} {s.spec:45} {detail[:160]}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
