"""The runtimes differential tests compare: pyrunc, runc 1.5.1 (../shared/oracle) and Debian's runc 1.1.5.

A fixture parametrised over some of these names gets a ``Runtime`` with a private ``--root``;
a runtime that is absent (a clone without ../shared beside it, runc not installed) is a skip
with the reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import PYRUNC, RUNC, SHARED, _runtime

RUNC_15 = SHARED / "oracle" / "bin" / "runc-1.5.1"
BINARIES = {"pyrunc": Path(PYRUNC), "runc-1.5.1": RUNC_15, "runc-1.1.5": Path(RUNC)}


def runtime_named(name: str, tmp_path: Path):
    """Yield the named runtime (for a fixture); skip when it is not there."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    binary = BINARIES[name]
    if not os.access(binary, os.X_OK):
        why = "../shared/oracle is absent" if name == "runc-1.5.1" else "not installed"
        pytest.skip(f"{name}: {binary} ({why})")
    yield from _runtime(str(binary), tmp_path, name)
