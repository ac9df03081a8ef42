"""The second CRI lane: containerd 2.3.4 and crictl/critest 1.36 (../shared/cri2), as Kubernetes
nodes run them today, beside the containerd 1.6 lane of tests/cri.

One private containerd (config version 3) with two handlers of the runc-v2 shim: ``pyrunc`` and
``runc``, which here is runc 1.5.1 (../shared/oracle), the runc such nodes ship. The daemon, its
shim, ``ctr``, ``crictl`` and ``critest`` all come from ../shared/cri2/bin (the daemon gets that
directory first in its PATH, so it starts its own shim, never Debian's). Everything else (images,
CNI bridge, teardown and its leftover checks) is the 1.6 lane's (tests/cri/conftest.py), under
names of its own so both lanes can be alive in one session.

Settings this machine needs (../shared/cri2/README.md): ``restrict_oom_score_adj`` (root lacks
CAP_SYS_RESOURCE), cgroupfs and no hugetlb controller (hybrid cgroups, no systemd). NRI is off
(it would listen on the host's /var/run/nri), no config is imported from /etc/containerd, shim
sockets go to the lane's own directory and pod network namespaces under its state directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PYRUNC, SHARED
from tests.cri.conftest import PAUSE, Cri, Lane, run_lane

CRI2_BIN = SHARED / "cri2" / "bin"
RUNC_15 = SHARED / "oracle" / "bin" / "runc-1.5.1"
LANE2 = Lane(prefix="pyrunc-cri2", bridge="pyrcri2", subnet_prefix="10.213.88", bin_dir=CRI2_BIN,
             handlers={"pyrunc": PYRUNC, "runc": str(RUNC_15)}, own_daemon=True)


def containerd2_config(w: Path, port: int, lane: Lane) -> str:
    """containerd 2.x config (version 3): the CRI runtime and images plugins, two handlers."""
    runtimes = "".join(f"""
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.{name}]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.{name}.options]
          BinaryName = '{binary}'
          Root = '{w}/rt/{name}'
          SystemdCgroup = false
""" for name, binary in lane.handlers.items())
    return f"""# private containerd 2.x of pyrunc's second CRI lane (tests/cri2/conftest.py)
version = 3
root = '{w}/root'
state = '{w}/state'
temp = '{w}/tmp'
imports = []
disabled_plugins = ['io.containerd.nri.v1.nri']

[grpc]
  address = '{w}/c.sock'
[ttrpc]
  address = '{w}/c.sock.ttrpc'
[debug]
  address = ''
  level = 'info'
[metrics]
  address = ''

[plugins]
  [plugins.'io.containerd.internal.v1.opt']
    path = '{w}/opt'
  [plugins.'io.containerd.shim.v1.manager']
    socket_dir = '{w}/shim'
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '127.0.0.1'
    stream_server_port = '{port}'
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '{PAUSE}'
  [plugins.'io.containerd.cri.v1.runtime']
    restrict_oom_score_adj = true
    tolerate_missing_hugetlb_controller = true
    disable_hugetlb_controller = true
    disable_apparmor = true
    enable_selinux = false
    enable_cdi = false
    netns_mounts_under_state_dir = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
{runtimes}
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['/usr/lib/cni']
      conf_dir = '{w}/net.d'
      max_conf_num = 1
"""


@pytest.fixture(scope="package")
def cri() -> Iterator[Cri]:
    """containerd 2.3 with CRI, images imported, bridge up; everything removed afterwards."""
    yield from run_lane(LANE2, containerd2_config,
                        "containerd 2.3, crictl and critest 1.36 come from ../shared/cri2, see its README",
                        ("containernetworking-plugins", "busybox-static", "iproute2"))
