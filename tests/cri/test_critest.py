"""critest, the CRI validation suite, with runc and with pyrunc on the same containerd.

Both runs use the same daemon, images and skip list, at the same time (each spec
names its pods and containers with fresh UUIDs and lists by id or label, so the
two runs do not see each other's objects; measured: the same outcomes as two
runs one after the other, in half the time). The
spec outcomes come from ginkgo's junit report. pyrunc must pass every spec runc
passes; a spec runc fails here (a stand-in image that cannot do what the real
one does) is reported, not required.
"""

from __future__ import annotations

import os
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.cri.conftest import Cri

pytestmark = [pytest.mark.root, pytest.mark.slow]

#: Specs that cannot run on this machine, by name, with the reason.
SKIPPED = {
    r"\[k8s\.io\] Image Manager": "pulls images from a registry; this machine has none",
    r"port mapping": "host port mapping needs the portmap CNI plugin and iptables NAT on the host",
    r"portforward in host network": "needs gcr.io/k8s-staging-cri-tools/hostnet-nginx (a registry pull) and "
                                    "a server on this shared machine's own network",
}
#: Specs the two concurrent runs cannot share the machine for: run afterwards, one handler at a time.
ALONE = {
    r"should support portforward \[Conformance\]": "critest listens on the host's 127.0.0.1:12001 for the "
                                                     "port-forward: two at once collide (address already in use)",
}
CRITEST_TIMEOUT = 1200
#: (report file name, spec) -> the start of its failure message, for the test's output.
FAILURE_TEXT: dict[tuple[str, str], str] = {}


def junit_outcomes(report: Path) -> dict[str, str]:
    """spec name -> passed / failed / skipped, from a ginkgo junit report."""
    outcomes: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = case.get("name", "")
        if name.startswith("[BeforeSuite]") or name.startswith("[AfterSuite]") or name.startswith("[Synchronized"):
            continue
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        if bad is not None:
            outcomes[name] = "failed"
            FAILURE_TEXT[(report.name, name)] = (bad.get("message") or bad.text or "")[:400]
        elif case.find("skipped") is not None:
            outcomes[name] = "skipped"
        else:
            outcomes[name] = "passed"
    return outcomes


IPCMK = """#!/bin/sh
# ipcmk as critest's HostIpc specs run it on the host, recording the segment so the lane can remove
# it (critest never does: each run would leave two 1 MiB segments in the host's IPC namespace)
out=$(/usr/bin/ipcmk "$@") || exit $?
echo "$out"
echo "$out" | sed -n 's/^Shared memory id: //p' >>"{ids}"
"""


def ipcmk_wrapper(cri: Cri) -> tuple[Path, Path]:
    """A directory to put first on critest's PATH, and the file its ipcmk records segment ids in."""
    d = cri.w / "critest-bin"
    d.mkdir(exist_ok=True)
    ids = cri.w / "critest-shm-ids"
    (d / "ipcmk").write_text(IPCMK.format(ids=ids))
    (d / "ipcmk").chmod(0o755)
    return d, ids


def remove_recorded_segments(ids: Path) -> list[str]:
    """ipcrm every segment the wrapper recorded; the ids that could not be removed."""
    failed = []
    for shmid in ids.read_text().split() if ids.exists() else []:
        if subprocess.run(["ipcrm", "-m", shmid], capture_output=True).returncode != 0:
            failed.append(shmid)
    return failed


def start_critest(cri: Cri, handler: str, skipped: dict[str, str] = SKIPPED, focus: str = "",
                  tag: str = "") -> tuple[subprocess.Popen, Path, float]:
    """Start one critest run with ``handler`` (only the specs matching ``focus``, if given); its
    output goes to a file next to its junit report, both named by handler and ``tag``."""
    report = cri.w / f"critest-{handler}{tag}.xml"
    bin_dir, _ = ipcmk_wrapper(cri)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}")
    endpoint = f"unix://{cri.sock}"
    argv = [str(cri.lane.critest), f"--runtime-endpoint={endpoint}", f"--image-endpoint={endpoint}",
            f"--runtime-handler={handler}", "--ginkgo.no-color", f"--ginkgo.junit-report={report}",
            f"--ginkgo.skip={'|'.join(skipped)}"] + ([f"--ginkgo.focus={focus}"] if focus else [])
    with open(cri.w / f"critest-{handler}{tag}.out", "w") as out:
        p = subprocess.Popen(["timeout", "-k", "10", str(CRITEST_TIMEOUT), *argv], stdout=out,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cri.w, env=env)
    return p, report, time.monotonic()


def finish_critest(cri: Cri, handler: str, run: tuple[subprocess.Popen, Path, float],
                   tag: str = "") -> tuple[dict, float, str]:
    """Wait for a run: (outcomes, seconds, output tail)."""
    p, report, t0 = run
    p.wait()
    took = time.monotonic() - t0
    tail = (cri.w / f"critest-{handler}{tag}.out").read_text(errors="replace")[-6000:]
    assert report.exists(), f"critest ({handler}) wrote no report (rc={p.returncode}): {tail}"
    return junit_outcomes(report), took, tail


def run_both(cri: Cri, skipped: dict[str, str] = SKIPPED) -> dict[str, tuple[dict, float, str]]:
    """critest with runc and with pyrunc at the same time, then the ``ALONE`` specs one handler
    after the other: {handler: (outcomes, seconds, output tail)}."""
    _, shm_ids = ipcmk_wrapper(cri)
    runs: dict[str, tuple[subprocess.Popen, Path, float]] = {}
    try:
        for h in ("runc", "pyrunc"):
            runs[h] = start_critest(cri, h, {**skipped, **ALONE})
        results = {h: finish_critest(cri, h, r) for h, r in runs.items()}
        for h in ("runc", "pyrunc"):
            runs[h] = start_critest(cri, h, skipped, focus="|".join(ALONE), tag="-alone")
            alone, took, tail = finish_critest(cri, h, runs[h], tag="-alone")
            assert alone, f"critest ({h}) ran none of {list(ALONE)}: {tail}"
            outcomes = {**results[h][0], **{n: o for n, o in alone.items() if o != "skipped"}}
            results[h] = (outcomes, results[h][1] + took, results[h][2] + tail)
    finally:
        for p, _, _ in runs.values():  # a run still going when the other one failed
            if p.poll() is None:
                p.terminate()  # timeout(1) passes SIGTERM on to critest
                p.wait(timeout=60)
        stuck = remove_recorded_segments(shm_ids)
    assert not stuck, f"host shm segments critest made could not be removed: {stuck}"
    return results


def report(results: dict[str, tuple[dict, float, str]]) -> dict[str, set[str]]:
    """Print each handler's counts and failures (the lane's record); {handler: passed specs}."""
    passed = {h: {n for n, o in r[0].items() if o == "passed"} for h, r in results.items()}
    for h, (outcomes, took, _) in results.items():
        failed = sorted(n for n, o in outcomes.items() if o == "failed")
        print(f"critest {h}: {len(passed[h])} passed, {len(failed)} failed, "
              f"{sum(o == 'skipped' for o in outcomes.values())} skipped in {took:.0f}s")
        for name in failed:
            why = next((t for (f, n), t in FAILURE_TEXT.items() if n == name and f.startswith(f"critest-{h}")), "")
            print(f"  failed: {name}\n    {why!r}")
    return passed


def test_critest_pyrunc_passes_what_runc_passes(cri: Cri) -> None:
    """critest with runc, then with pyrunc: pyrunc's passed set contains runc's."""
    results = run_both(cri)
    passed = report(results)
    assert passed["runc"], f"runc passed nothing: the harness is broken\n{results['runc'][2]}"
    lost = sorted(passed["runc"] - passed["pyrunc"])
    assert not lost, f"specs runc passes but pyrunc does not: {lost}\n{results['pyrunc'][2]}"
