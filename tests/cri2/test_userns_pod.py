"""A user-namespaced pod (``hostUsers: false``: userns mode POD, ids 0 -> 100000 x 65536) end to end
through containerd 2.3's CRI, once per handler (runc 1.5.1 and pyrunc).

containerd makes the pod's user namespace itself, pins it and hands the runtime its path with the
mappings beside it; the containers join the pause's; /etc/hosts, /etc/hostname and
/etc/resolv.conf are idmapped binds of files under containerd's 0700 state directory (issue 25;
docs/KUBERNETES.md, user-namespaced pods). Checked inside (uid/gid 0, the maps, the idmapped mounts
owned by 0 and writable) and on the host (the process is uid/gid 100000 in the pod's namespace, and
a write through the idmapped /etc/hosts lands in containerd's file, still owned by host root).
"""

from __future__ import annotations

import json
import os
import uuid

import pytest

from tests.cri.conftest import Cri
from tests.cri.test_crictl import assert_ran_by, container_state, pods  # noqa: F401 - the fixture
from tests.e2e.conftest import wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]

HOST_ID = 100000
IDS = [{"host_id": HOST_ID, "container_id": 0, "length": 65536}]
USERNS = {"namespace_options": {"userns_options": {"mode": 0, "uids": IDS, "gids": IDS}}}  # mode 0: POD

PROBE = ("id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; "
         "for f in /etc/hosts /etc/hostname; do grep \" $f \" /proc/self/mountinfo | cut -d' ' -f5,6; done; "
         "ls -ln /etc/hosts /etc/hostname | while read -r m l u g rest; do echo $u $g; done; "
         "echo \"10.9.9.9 $MARK\" >> /etc/hosts && echo hosts-written")


def status_ids(pid: int) -> tuple[list[str], list[str]]:
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.split(":", 1) for line in f)
    return status["Uid"].split(), status["Gid"].split()


def runtime_config(cri: Cri, cid: str) -> dict:
    """The config.json containerd gave the runtime for ``cid`` (in the shim's bundle)."""
    path = cri.w / "state" / "io.containerd.runtime.v2.task" / "k8s.io" / cid / "config.json"
    return json.loads(path.read_text())


@pytest.mark.parametrize("handler", ["pyrunc", "runc"])
def test_user_namespaced_pod(cri: Cri, pods: list[str], handler: str) -> None:  # noqa: F811 - the fixture
    pod, spec = cri.runp(handler, f"userns-{handler}", linux={"cgroup_parent": cri.lane.cgroup_parent,
                                                            "security_context": USERNS})
    pods.append(pod)
    assert_ran_by(cri, handler, pod)
    sandbox = runtime_config(cri, pod)
    user_ns = next(n for n in sandbox["linux"]["namespaces"] if n["type"] == "user")
    assert user_ns.get("path"), f"containerd gives the pod's user namespace by path: {user_ns}"

    cid = cri.run_container(pod, spec, "main", ["sleep", "1000"], linux={"security_context": USERNS})
    assert_ran_by(cri, handler, cid)
    assert wait_for(lambda: container_state(cri, cid)["state"] == "CONTAINER_RUNNING", timeout=20)
    mark = f"pyrunc-userns-{uuid.uuid4().hex[:8]}"
    out = cri.ok("exec", "-s", cid, "env", f"MARK={mark}", "sh", "-c", PROBE).splitlines()
    assert out[:2] == ["0", "0"], out
    assert [line.split() for line in out[2:4]] == [["0", str(HOST_ID), "65536"]] * 2, out
    mounts = dict(line.split(" ", 1) for line in out[4:6])
    assert set(mounts) == {"/etc/hosts", "/etc/hostname"}, out
    for dest, opts in mounts.items():
        assert "idmapped" in opts.split(","), f"{dest} is not idmapped: {opts}"
    assert out[6:8] == ["0 0", "0 0"], f"/etc/hosts and /etc/hostname owned by 0 inside: {out}"
    assert out[8] == "hosts-written", out

    # On the host: the container's process is the pod's mapped root, in the pinned namespace.
    pid = cri.inspect("inspect", cid)["info"]["pid"]
    assert status_ids(pid) == ([str(HOST_ID)] * 4, [str(HOST_ID)] * 4)
    pause_pid = cri.inspect("inspectp", pod)["info"]["pid"]
    assert os.readlink(f"/proc/{pid}/ns/user") == os.readlink(f"/proc/{pause_pid}/ns/user")
    assert os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")
    with open(f"/proc/{pid}/uid_map") as f:
        assert f.read().split() == ["0", str(HOST_ID), "65536"]
    hosts = next(m for m in runtime_config(cri, cid)["mounts"] if m["destination"] == "/etc/hosts")
    assert hosts.get("uidMappings"), f"containerd asks for an idmapped /etc/hosts: {hosts}"
    st = os.stat(hosts["source"])
    assert (st.st_uid, st.st_gid) == (0, 0), "the write went through the idmapping: the file stays root's"
    with open(hosts["source"]) as f:
        assert f"10.9.9.9 {mark}" in f.read()

    cri.ok("stop", "-t", "2", cid)
    cri.ok("rm", cid)
    cri.ok("stopp", pod)
    cri.ok("rmp", pod)
    pods.remove(pod)
