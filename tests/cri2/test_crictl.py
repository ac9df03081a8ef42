"""crictl 1.36 through containerd 2.3's CRI, once per handler (runc 1.5.1 and pyrunc).

The full pod cycle of the 1.6 lane (tests/cri/test_crictl.py), collected here against this lane's
daemon: the ``cri`` fixture of tests/cri2/conftest.py is containerd 2.3.
"""

from __future__ import annotations

import pytest

from tests.cri.test_crictl import pods, test_pod_and_container_lifecycle  # noqa: F401 - run against containerd 2.3

pytestmark = [pytest.mark.root, pytest.mark.slow]
