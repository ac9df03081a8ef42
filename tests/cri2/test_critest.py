"""critest 1.36, the CRI validation suite of today's Kubernetes, with runc 1.5.1 and with pyrunc on
containerd 2.3 (both runs at once on one daemon, as in the 1.6 lane: tests/cri/test_critest.py).

pyrunc must pass every spec runc 1.5.1 passes, but for the failures listed in
``EXPECTED_PYRUNC_FAILURES``, each with the work that removes it. That list is strict: a listed
spec that pyrunc passes (or that runc stops passing) fails the test, so the entry goes when its
reason does. The per-handler outcome is printed (``-rP`` shows it) and recorded in
docs/KUBERNETES.md.
"""

from __future__ import annotations

import pytest

from tests.cri.conftest import Cri
from tests.cri.test_critest import SKIPPED, report, run_both

pytestmark = [pytest.mark.root, pytest.mark.slow]

#: What the 1.6 lane skips, for the same reasons (no registry, no host NAT, no host-network image),
#: and critest 1.36's other specs that pull from a registry.
SKIPPED_2 = {
    **SKIPPED,
    r"\[k8s\.io\] Image Consistency": "pulls gcr.io/k8s-staging-cri-tools/test-image-tag (a registry)",
    r"\[k8s\.io\] Image Identifier Consistency": "pulls test-image-tag and registry.k8s.io/pause:3.9 (a registry)",
}
#: spec name fragment -> why pyrunc fails it today (issue 25).
EXPECTED_PYRUNC_FAILURES = {
    "should support NamespaceMode_POD": (
        "joining the user namespace containerd 2.x creates for a hostUsers:false pod (linux.namespaces "
        "user with a path) is not implemented yet: stage 1 stays host uid 0 there, bind sources, "
        "oom_score_adj and idmapped mounts are done from inside (issue 25, item 3; "
        "docs/KUBERNETES.md, user-namespaced pods)"),
}


def expected_failure(name: str) -> str | None:
    """The reason a spec is an expected pyrunc failure, or None."""
    return next((why for frag, why in EXPECTED_PYRUNC_FAILURES.items() if frag in name), None)


def test_critest_136_pyrunc_passes_what_runc_151_passes(cri: Cri) -> None:
    """Every spec runc 1.5.1 passes, pyrunc passes, but for the expected failures (strictly)."""
    results = run_both(cri, SKIPPED_2)
    passed = report(results)
    assert len(passed["runc"]) > 50, f"runc 1.5.1 passed too little: the harness is broken\n{results['runc'][2]}"
    lost = sorted(passed["runc"] - passed["pyrunc"])
    unexpected = [n for n in lost if expected_failure(n) is None]
    assert not unexpected, f"specs runc 1.5.1 passes but pyrunc does not: {unexpected}\n{results['pyrunc'][2]}"
    for frag, why in EXPECTED_PYRUNC_FAILURES.items():
        runc_passes = [n for n in passed["runc"] if frag in n]
        assert runc_passes, f"runc 1.5.1 no longer passes {frag!r}: the expected-failure entry is stale"
        now_passing = [n for n in runc_passes if n in passed["pyrunc"]]
        assert not now_passing, f"pyrunc now passes {now_passing}: remove its expected failure ({why})"
