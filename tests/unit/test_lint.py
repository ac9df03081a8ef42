"""ruff is part of the suite: style findings fail `make test` like any other regression."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import REPO


def test_ruff_is_clean():
    ruff = REPO / ".venv" / "bin" / "ruff"
    if not ruff.exists() and not shutil.which("ruff"):
        pytest.skip("ruff is not installed (make test-setup installs it)")
    p = subprocess.run([str(ruff) if ruff.exists() else "ruff", "check", "pyrunc", "tests", "spec",
                        "conformance", "bench"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout[-3000:]
