"""crictl through containerd's CRI plugin, once per runtime handler (runc, the oracle, and pyrunc).

The runc-v2 shim runs every pod and container with the handler's ``BinaryName``
and ``--root <Root>/k8s.io``; each test proves which runtime ran it by that
runtime's state directory (pyrunc's holds a ``state`` file, runc's a
``state.json``) and the absence of one under the other handler's root.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.cri.conftest import CGROUP_PARENT, HANDLERS, PREFIX, Cri, lane_cgroups, processes_mentioning
from tests.e2e.conftest import CGROUP_ROOT, wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]

STATE_FILE = {"pyrunc": "state", "runc": "state.json"}


def state_dir(cri: Cri, handler: str, cid: str) -> Path:
    return cri.w / "rt" / handler / "k8s.io" / cid


def assert_ran_by(cri: Cri, handler: str, cid: str) -> None:
    """``cid``'s state lives under ``handler``'s root only, in that runtime's format."""
    assert (state_dir(cri, handler, cid) / STATE_FILE[handler]).is_file(), list(
        (cri.w / "rt" / handler).rglob("*"))
    other = next(h for h in cri.lane.handlers if h != handler)
    assert not state_dir(cri, other, cid).exists(), f"{cid} has state under {other}'s root"


def container_state(cri: Cri, cid: str) -> dict:
    return cri.inspect("inspect", cid)["status"]


def cgroup_of(cid: str, controller: str = "memory", prefix: str = PREFIX) -> Path:
    return CGROUP_ROOT / controller / prefix / cid


@pytest.fixture
def pods(cri: Cri):
    """Pods a test made (by id) are stopped and removed afterwards, whatever happened."""
    made: list[str] = []
    yield made
    for pod in made:
        cri("stopp", pod, quiet=True)
        cri("rmp", "-f", pod, quiet=True)


@pytest.mark.parametrize("handler", list(HANDLERS))
def test_pod_and_container_lifecycle(cri: Cri, pods: list[str], handler: str) -> None:
    """runp, create, start, logs, exec (codes, timeout, tty), update, stats, stop, rm, stopp, rmp."""
    pod, spec = cri.runp(handler, f"life-{handler}")
    pods.append(pod)
    assert_ran_by(cri, handler, pod)
    cid = cri.run_container(pod, spec, "main", ["sh", "-c", "echo out-line; echo err-line >&2; "
                                                             "trap 'echo got-term; exit 7' TERM; "
                                                             "while :; do sleep 0.2; done"])
    assert_ran_by(cri, handler, cid)
    assert wait_for(lambda: container_state(cri, cid)["state"] == "CONTAINER_RUNNING", timeout=20)
    assert wait_for(lambda: "err-line" in cri("logs", cid, quiet=True).err, timeout=10)
    logs = cri("logs", cid)
    assert logs.out.split() == ["out-line"] and "err-line" in logs.err

    # exec: output, exit codes, a command that does not exist, the sync timeout, a tty
    assert cri.ok("exec", "-s", cid, "sh", "-c", "echo $((6*7))") == "42"
    r = cri("exec", "-s", cid, "sh", "-c", "exit 3")  # crictl 1.26 exits 1 and names the code, 1.36 exits 3
    assert (r.rc, "exited with 3" in r.err) in ((1, True), (3, False), (3, True)), r
    r = cri("exec", "-s", cid, "no-such-command")
    assert r.rc != 0 and "no-such-command" in r.out + r.err, r
    t0 = time.monotonic()
    r = cri("exec", "-s", "--timeout", "2", cid, "sleep", "30")
    assert r.rc != 0 and "timeout" in (r.out + r.err).lower() and time.monotonic() - t0 < 25, r
    r = cri("exec", "-it", cid, "tty", tty=True)
    assert r.rc == 0 and r.out.strip().startswith("/dev/pts/"), r
    r = cri("exec", "-i", cid, "tty")
    assert r.out.strip() == "not a tty", r

    # update: the new memory limit lands in the container's cgroup
    cri.ok("update", "--memory", str(96 << 20), cid)
    assert (cgroup_of(cid, prefix=cri.lane.prefix) / "memory.limit_in_bytes").read_text().strip() == str(96 << 20)
    stats = json.loads(cri.ok("stats", "-o", "json", "--id", cid))["stats"]
    assert len(stats) == 1 and int(stats[0]["memory"]["workingSetBytes"]["value"]) > 0, stats

    # stop: SIGTERM reaches the trap, the exit code comes back
    cri.ok("stop", "-t", "10", cid)
    st = container_state(cri, cid)
    assert st["state"] == "CONTAINER_EXITED" and st["exitCode"] == 7, st
    assert "got-term" in cri("logs", cid).out
    cri.ok("rm", cid)
    assert not state_dir(cri, handler, cid).exists()
    assert not cgroup_of(cid, prefix=cri.lane.prefix).exists()
    cri.ok("stopp", pod)
    cri.ok("rmp", pod)
    pods.remove(pod)
    assert not state_dir(cri, handler, pod).exists()
    assert not cgroup_of(pod, prefix=cri.lane.prefix).exists()


@pytest.mark.parametrize("handler", list(HANDLERS))
def test_memory_hog_is_reported_oomkilled(cri: Cri, pods: list[str], handler: str) -> None:
    """A container above its memory limit is killed by the kernel and CRI says OOMKilled."""
    pod, spec = cri.runp(handler, f"oom-{handler}")
    pods.append(pod)
    limit = 32 << 20
    # The hog waits for a go-ahead: once the kernel kills it (milliseconds after it starts),
    # containerd deletes the task and with it the runtime's state, which names the runtime.
    cid = cri.run_container(pod, spec, "hog", ["sh", "-c", "until [ -e /tmp/go ]; do sleep 0.1; done; "
                                                           "tail /dev/zero"],  # one endless line
                            linux={"resources": {"memory_limit_in_bytes": limit,
                                                 "memory_swap_limit_in_bytes": limit}})
    assert_ran_by(cri, handler, cid)
    cri.ok("exec", "-s", cid, "touch", "/tmp/go")
    assert wait_for(lambda: container_state(cri, cid)["state"] == "CONTAINER_EXITED", timeout=60)
    st = container_state(cri, cid)
    assert st["reason"] == "OOMKilled" and st["exitCode"] == 137, st


@pytest.mark.parametrize("handler", list(HANDLERS))
def test_containerd_restart_recovers_running_pods(cri: Cri, pods: list[str], handler: str) -> None:
    """containerd stops and starts again while a pod runs: the pod is recovered, exec and stop work."""
    pod, spec = cri.runp(handler, f"restart-{handler}")
    pods.append(pod)
    cid = cri.run_container(pod, spec, "main", ["sleep", "3600"])
    assert wait_for(lambda: container_state(cri, cid)["state"] == "CONTAINER_RUNNING", timeout=20)
    cri.stop()
    cri.start()
    assert container_state(cri, cid)["state"] == "CONTAINER_RUNNING"
    assert cri.inspect("inspectp", pod)["status"]["state"] == "SANDBOX_READY"
    assert cri.ok("exec", "-s", cid, "echo", "after-restart") == "after-restart"
    cri.ok("stop", "-t", "2", cid)
    st = container_state(cri, cid)
    # the pod shares one pid namespace (the pause process is its init), so TERM ends a plain sleep
    assert st["state"] == "CONTAINER_EXITED" and st["exitCode"] == 143, st
    cri.ok("rm", cid)
    cri.ok("stopp", pod)
    cri.ok("rmp", pod)
    pods.remove(pod)
    assert not state_dir(cri, handler, cid).exists()


def _shim_pid(cri: Cri, pod: str) -> int:
    pids = [p for p in processes_mentioning(pod)
            if b"containerd-shim" in Path(f"/proc/{p}/cmdline").read_bytes()]
    assert len(pids) == 1, pids
    return pids[0]


@pytest.mark.parametrize("handler", list(HANDLERS))
def test_shim_killed(cri: Cri, pods: list[str], handler: str) -> None:
    """SIGKILL to the pod's shim: its container is marked exited and cleaned up, rmp leaves nothing."""
    pod, spec = cri.runp(handler, f"shim-{handler}")
    pods.append(pod)
    cid = cri.run_container(pod, spec, "main", ["sleep", "3600"])
    assert wait_for(lambda: container_state(cri, cid)["state"] == "CONTAINER_RUNNING", timeout=20)
    os.kill(_shim_pid(cri, pod), signal.SIGKILL)
    assert wait_for(lambda: container_state(cri, cid)["state"] == "CONTAINER_EXITED", timeout=60), \
        container_state(cri, cid)
    assert wait_for(lambda: not cgroup_of(cid).exists() or not (cgroup_of(cid) / "cgroup.procs").read_text(),
                    timeout=30), "the container's processes outlived the cleanup"
    cri.ok("rm", cid)
    cri("stopp", pod)
    cri.ok("rmp", pod)
    pods.remove(pod)
    assert wait_for(lambda: not processes_mentioning(pod), timeout=20), [
        Path(f"/proc/{p}/cmdline").read_bytes() for p in processes_mentioning(pod)]
    assert not state_dir(cri, handler, cid).exists() and not state_dir(cri, handler, pod).exists()
    assert not cgroup_of(cid).exists() and not cgroup_of(pod).exists()
    # A shim removes its socket when it shuts down; one SIGKILLed cannot, and containerd 1.6's
    # dead-shim cleanup does not either. It is named after (containerd address, namespace, id).
    sock = Path("/run/containerd/s") / hashlib.sha256(f"{cri.sock}/k8s.io/{pod}".encode()).hexdigest()
    sock.unlink(missing_ok=True)


@pytest.mark.parametrize("sysctl", ["kernel.pyrunc_no_such_sysctl", "net.ipv4.pyrunc_no_such_sysctl"])
def test_bad_sysctl_fails_with_pyruncs_error(cri: Cri, pods: list[str], sysctl: str) -> None:
    """A pod sysctl pyrunc cannot set: runp fails with pyrunc's error, nothing is left.

    kernel.* is refused while the config is checked (not namespaced); net.ipv4.* passes that
    check and fails in the container's init, when /proc/sys has no such file.
    """
    before = set(os.listdir(cri.w / "rt" / "pyrunc" / "k8s.io")) if (cri.w / "rt/pyrunc/k8s.io").is_dir() else set()
    r = cri("runp", "--runtime", "pyrunc",
            str(cri.pod_spec("badsysctl", linux={"cgroup_parent": CGROUP_PARENT, "sysctls": {sysctl: "1"}})))
    assert r.rc != 0
    assert sysctl.split(".", 1)[1] in r.err and "Traceback" not in r.err, r.err
    assert sysctl.split(".", 1)[1] in cri.log_tail(20000)
    _assert_nothing_left_for(cri, "badsysctl", before)


def test_bad_seccomp_profile_fails_with_pyruncs_error(cri: Cri, pods: list[str]) -> None:
    """A localhost seccomp profile with an action pyrunc does not know: create or start fails with
    pyrunc's error (containerd passes the profile through unchecked), rmp leaves nothing."""
    profile = cri.w / "specs" / "bad-seccomp.json"
    profile.parent.mkdir(exist_ok=True)
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_PYRUNC_BOGUS"}))
    before = set(os.listdir(cri.w / "rt" / "pyrunc" / "k8s.io")) if (cri.w / "rt/pyrunc/k8s.io").is_dir() else set()
    pod, spec = cri.runp("pyrunc", "badseccomp")
    pods.append(pod)
    r = cri("create", pod, str(cri.ctr_spec("main", ["true"], linux={"security_context": {
        "seccomp": {"profile_type": 2, "localhost_ref": str(profile)}}})), str(spec))
    if r.rc == 0:
        r = cri("start", r.out.strip())
    assert r.rc != 0
    assert "SCMP_ACT_PYRUNC_BOGUS" in r.err and "Traceback" not in r.err, r.err
    cri("stopp", pod)
    cri.ok("rmp", pod)
    pods.remove(pod)
    _assert_nothing_left_for(cri, "badseccomp", before)


def _assert_nothing_left_for(cri: Cri, name: str, state_before: set[str]) -> None:
    assert name not in cri("pods", "-q", "--name", name).out
    left = set(os.listdir(cri.w / "rt/pyrunc/k8s.io")) - state_before if (cri.w / "rt/pyrunc/k8s.io").is_dir() \
        else set()
    assert not left, f"pyrunc state left: {left}"
    for top in lane_cgroups():
        assert not [d for d in top.iterdir() if d.is_dir()], f"cgroups left under {top}"
