"""The conformance harness can pass, and, more importantly, can fail.

A harness that passes everything proves nothing, so besides a fast subset of
real scenarios (pyrunc against runc, no regressions) these tests run it
against a runtime that does nothing (/bin/true) and against a deliberately
broken pyrunc (a wrapper that strips fields from config.json before create),
and require that the matching scenarios fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RUNC15

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "conformance" / "run"
PYRUNC = REPO / ".venv" / "bin" / "pyrunc"
RUNC = shutil.which("runc") or "/usr/sbin/runc"

# Cheap scenarios from every spec file that pyrunc implements; anchored on the id.
FAST = ["hostname", "root-readonly-true", "masked-proc-acpi", "readonly-proc-sys", "rlimit-nofile",
        "cap-kill", "ns-uts-new", "ns-network-join-path", "ns-duplicate-type-errors", "state-required-fields",
        "kill-stopped-errors", "start-running-errors", "delete-running-errors", "default-device-null",
        "dev-symlink-fd", "mount-opt-nosuid", "sysctl-net.ipv4.ip_forward", "pids-limit", "oom-score-adj-set",
        "user-uid-gid", "process-env-exact", "hook-prestart-gets-state", "hook-listed-order",
        "mount-opt-tmpcopyup-metadata"]
FAST_K = "^(" + "|".join(n.replace(".", r"\.") for n in FAST) + ") "

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real containers)"),
    pytest.mark.skipif(not os.path.exists(RUNC), reason="runc is not installed"),
]


def harness(tmp_path: Path, *args: str, timeout: float = 120) -> tuple[int, dict, str]:
    report = tmp_path / "report.json"
    out = tmp_path / "harness.out"
    with open(out, "w") as f:
        rc = subprocess.run([str(RUN), "--report", str(report), "--jobs", "2", "--quiet", *args],
                            stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            timeout=timeout, cwd=REPO).returncode
    text = out.read_text()
    doc = json.loads(report.read_text()) if report.exists() else {"scenarios": []}
    return rc, {s["id"]: s for s in doc["scenarios"]}, text


def test_fast_subset_passes_without_regressions(tmp_path):
    rc, rows, out = harness(tmp_path, "--runtime", str(PYRUNC), "--oracle", RUNC, "-k", FAST_K)
    assert set(rows) == set(FAST), "the -k subset selected the wrong scenarios"
    failed = {i: r["detail"] for i, r in rows.items() if r["runtime"] != "pass"}
    assert not failed, failed
    assert rc == 0, out
    last = out.strip().splitlines()[-1]
    assert last.startswith(f"{len(FAST)} scenarios:") and last.endswith("regressions 0"), last


# The scenarios of behaviour runc changed after 1.1 (issue 22): runc 1.5.1 and pyrunc pass them.
RUNC15_SCENARIOS = ["rootfs-propagation-shared", "rootfs-propagation-unbindable", "rootfs-propagation-rshared",
                    "rootfs-propagation-rshared-submounts", "rootfs-propagation-private-no-pivot-errors",
                    "masked-dirs-share-one-tmpfs", "masked-dir-read-only", "io-priority-class-only",
                    "pids-limit-zero"]


@pytest.mark.skipif(not RUNC15.exists(), reason=f"runc 1.5.1 oracle not present ({RUNC15})")
def test_both_oracles_one_report_no_regressions(tmp_path):
    """The lane against runc 1.5.1: a column per runc, pyrunc passes what either passes."""
    names = FAST[:6] + RUNC15_SCENARIOS
    k = "^(" + "|".join(n.replace(".", r"\.") for n in names) + ") "
    rc, rows, out = harness(tmp_path, "--runtime", str(PYRUNC), "--oracle", RUNC, "--oracle", str(RUNC15),
                            "-k", k, timeout=300)
    assert set(rows) == set(names)
    assert rc == 0 and out.strip().splitlines()[-1].endswith("regressions 0"), out
    labels = list(rows[names[0]]["oracles"])
    assert len(labels) == 2 and labels[1] == "runc 1.5.1", labels
    for name in RUNC15_SCENARIOS:
        assert rows[name]["runtime"] == "pass", rows[name]
        assert rows[name]["oracles"]["runc 1.5.1"] == "pass", rows[name]


def test_a_runtime_that_does_nothing_fails(tmp_path):
    rc, rows, out = harness(tmp_path, "--runtime", "/bin/true", "--oracle", RUNC, "-k", FAST_K)
    failed = [i for i, r in rows.items() if r["runtime"] == "fail"]
    assert len(failed) >= 0.9 * len(FAST), f"/bin/true only failed {failed}"
    assert rc != 0, "regressions against runc must make the harness exit non-zero"
    assert "REGRESSION" in out


def test_a_broken_config_field_is_caught(tmp_path):
    """A pyrunc that silently drops hostname and maskedPaths is caught by exactly those scenarios."""
    broken = tmp_path / "broken-pyrunc"
    broken.write_text(
        "#!/bin/sh\n"
        "# Drop two fields from the bundle's config.json (the cwd) before create/run, then be pyrunc.\n"
        'for a in "$@"; do case "$a" in create|run)\n'
        f"  {sys.executable} -c 'import json; c = json.load(open(\"config.json\")); "
        "c.pop(\"hostname\", None); c[\"linux\"].pop(\"maskedPaths\", None); "
        "json.dump(c, open(\"config.json\", \"w\"))';;\n"
        "esac; done\n"
        f'exec {PYRUNC} "$@"\n')
    broken.chmod(0o755)
    k = "^(hostname|masked-proc-acpi|root-readonly-true) "
    rc, rows, out = harness(tmp_path, "--runtime", str(broken), "--oracle", str(PYRUNC), "-k", k)
    assert rows["hostname"]["runtime"] == "fail", rows["hostname"]
    assert rows["masked-proc-acpi"]["runtime"] == "fail", rows["masked-proc-acpi"]
    assert rows["root-readonly-true"]["runtime"] == "pass", "an untouched field must still pass"
    assert rc != 0 and "REGRESSION hostname" in out and "REGRESSION masked-proc-acpi" in out
