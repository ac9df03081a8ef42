"""`conformance/run [--runtime PATH] [--oracle PATH] [--report F.json] [--markdown F.md] [-k PAT] [--jobs N]`.

Runs every selected scenario under the runtime and, separately, under the
oracle, prints one line per scenario and, last, the summary line. Exit status
0 only when no scenario is a regression (oracle passes, runtime fails), so CI
can gate on it.
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


def _binary(path: str) -> str:
    """Resolve to an absolute path now: the runtimes run with the bundle as their cwd."""
    found = shutil.which(path) if os.sep not in path else path
    if not found or not os.path.exists(found):
        sys.exit(f"conformance: no such runtime binary: {path}")
    return os.path.abspath(found)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="conformance/run", description=__doc__.splitlines()[0])
    ap.add_argument("--runtime", default=str(REPO / ".venv" / "bin" / "pyrunc"), help="runtime under test")
    ap.add_argument("--oracle", default=shutil.which("runc") or "/usr/sbin/runc", help="reference runtime")
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
    runtime, oracle = _binary(args.runtime), _binary(args.oracle)

    workroot = Path(tempfile.mkdtemp(prefix="pyrunc-conf-"))
    workroot.chmod(0o755)
    t0 = time.monotonic()
    try:
        template = build_rootfs(workroot / "template")
        for side in ("runtime", "oracle"):
            (workroot / side).mkdir(mode=0o755)
        jobs = [(s, runtime if side == "runtime" else oracle, side) for s in selected
                for side in ("runtime", "oracle")]
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = [pool.submit(run_one, s, binary, side, workroot, template) for s, binary, side in jobs]
            results = {}
            for (s, _, side), fut in zip(jobs, futures, strict=True):
                results[(s.id, side)] = fut.result()
                if side == "oracle":
                    _print_row(s, results[(s.id, "runtime")], results[(s.id, "oracle")], args.quiet)
    finally:
        shutil.rmtree(workroot, ignore_errors=True)

    rows = []
    for s in selected:
        (rs, rd, rt), (os_, od, ot) = results[(s.id, "runtime")], results[(s.id, "oracle")]
        detail = "; ".join(x for x in (f"runtime: {rd}" if rd else "", f"oracle: {od}" if od else "") if x)
        rows.append({"id": s.id, "spec": s.spec, "level": s.level, "title": s.title,
                     "runtime": rs, "oracle": os_, "detail": detail, "seconds": [round(rt, 2), round(ot, 2)]})
    meta = report.environment(runtime, oracle)
    meta["elapsed_seconds"] = f"{time.monotonic() - t0:.0f}"
    if args.report:
        report.write_json(Path(args.report), rows, meta)
    if args.markdown:
        Path(args.markdown).write_text(report.markdown(rows, meta, full=False))
    if args.conformance_doc:
        Path(args.conformance_doc).write_text(report.markdown(rows, meta, full=True))
    for r in report.regressions(rows):
        print(f"REGRESSION {r['id']} ({r['spec']}): {r['detail'][:300]}")
    print(report.summary(rows))
    return 1 if report.regressions(rows) else 0


def _print_row(s, rt: tuple, orc: tuple, quiet: bool) -> None:
    if quiet and not (rt[0] == "fail" and orc[0] == "pass"):
        return
    mark = "REGR" if rt[0] == "fail" and orc[0] == "pass" else ""
    detail = rt[1] if rt[0] != "pass" else orc[1]
    print(f"{rt[0]:4} {orc[0]:4} {mark:4} {s.id:48} {s.spec:45} {detail[:160]}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
