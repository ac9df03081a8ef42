"""critest, the CRI validation suite, with runc and with pyrunc on the same containerd.

Both runs use the same daemon, images and skip list, one after the other (critest
expects to be the only CRI client: its listing specs count what they see). The
spec outcomes come from ginkgo's junit report. pyrunc must pass every spec runc
passes; a spec runc fails here (a stand-in image that cannot do what the real
one does) is reported, not required.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.cri.conftest import CRITEST, Cri

pytestmark = [pytest.mark.root, pytest.mark.slow]

#: Specs that cannot run on this machine, by name, with the reason.
SKIPPED = {
    r"\[k8s\.io\] Image Manager": "pulls images from a registry; this machine has none",
    r"port mapping": "host port mapping needs the portmap CNI plugin and iptables NAT on the host",
    r"portforward in host network": "needs gcr.io/k8s-staging-cri-tools/hostnet-nginx (a registry pull) and "
                                    "a server on this shared machine's own network",
}
CRITEST_TIMEOUT = 1200


def junit_outcomes(report: Path) -> dict[str, str]:
    """spec name -> passed / failed / skipped, from a ginkgo junit report."""
    outcomes: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = case.get("name", "")
        if name.startswith("[BeforeSuite]") or name.startswith("[AfterSuite]") or name.startswith("[Synchronized"):
            continue
        if case.find("failure") is not None or case.find("error") is not None:
            outcomes[name] = "failed"
        elif case.find("skipped") is not None:
            outcomes[name] = "skipped"
        else:
            outcomes[name] = "passed"
    return outcomes


def run_critest(cri: Cri, handler: str) -> tuple[dict[str, str], float, str]:
    """One critest run with ``handler``: (outcomes, seconds, output tail)."""
    report = cri.w / f"critest-{handler}.xml"
    endpoint = f"unix://{cri.sock}"
    argv = [str(CRITEST), f"--runtime-endpoint={endpoint}", f"--image-endpoint={endpoint}",
            f"--runtime-handler={handler}", "--ginkgo.no-color", f"--ginkgo.junit-report={report}",
            f"--ginkgo.skip={'|'.join(SKIPPED)}"]
    t0 = time.monotonic()
    import subprocess

    p = subprocess.run(["timeout", "-k", "10", str(CRITEST_TIMEOUT), *argv], capture_output=True, text=True,
                       cwd=cri.w)
    took = time.monotonic() - t0
    assert report.exists(), f"critest ({handler}) wrote no report (rc={p.returncode}): {p.stdout[-3000:]}"
    return junit_outcomes(report), took, p.stdout[-6000:]


def test_critest_pyrunc_passes_what_runc_passes(cri: Cri) -> None:
    """critest with runc, then with pyrunc: pyrunc's passed set contains runc's."""
    results = {h: run_critest(cri, h) for h in ("runc", "pyrunc")}
    passed = {h: {n for n, o in r[0].items() if o == "passed"} for h, r in results.items()}
    for h, (outcomes, took, _) in results.items():
        failed = sorted(n for n, o in outcomes.items() if o == "failed")
        print(f"critest {h}: {len(passed[h])} passed, {len(failed)} failed, "
              f"{sum(o == 'skipped' for o in outcomes.values())} skipped in {took:.0f}s; failed: {failed}")
    assert passed["runc"], f"runc passed nothing: the harness is broken\n{results['runc'][2]}"
    lost = sorted(passed["runc"] - passed["pyrunc"])
    assert not lost, f"specs runc passes but pyrunc does not: {lost}\n{results['pyrunc'][2]}"
