"""The CRI lane: a private containerd with its CRI plugin, driven by crictl and critest.

One containerd per session, private in everything (root, state, grpc/ttrpc
sockets, ``opt``, CNI config and IPAM data, streaming port), with two runtime
handlers of the runc-v2 shim: ``pyrunc`` (``BinaryName`` = this worktree's
pyrunc) and ``runc``, each with its own ``Root`` so their state stays apart
(and a test can tell which runtime ran a container). The images are local
stand-ins (tests/cri/images.py) imported with ctr. Pods get their network from
containernetworking-plugins' bridge on a bridge this session creates, with a
private /24, no default route and no masquerading: traffic only flows between
this machine and the pods' own network namespaces.

Settings this machine needs (../shared/cri/README.md): root lacks
CAP_SYS_RESOURCE, so ``restrict_oom_score_adj``; hybrid cgroups without
systemd, so cgroupfs and no hugetlb controller.

Teardown removes every pod, stops containerd, deletes the bridge and the pods'
parent cgroup and then checks that nothing is left (sockets under
/run/containerd/s, mounts, processes, veths, cgroups): a leftover fails the
session's teardown.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SHARED
from tests.cri.images import BUSYBOX_IMAGE, IMAGES, PAUSE, build_archive
from tests.e2e.conftest import (
    CGROUP_ROOT,
    PYRUNC,
    RUNC,
    Result,
    ensure_packages,
    remove_cgroup_tree,
    remove_empty_dirs,
    run,
    unmount_below,
    wait_for,
)

REPO = Path(__file__).resolve().parents[2]
CRI_BIN = SHARED / "cri" / "bin"
CRICTL = CRI_BIN / "crictl"
CRITEST = CRI_BIN / "critest"
CNI_BIN = Path("/usr/lib/cni")
#: Names unique to this lane, so other suites on the machine never collide with it.
PREFIX = "pyrunc-cri"
BRIDGE = "pyrcri0"
SUBNET_PREFIX = "10.213.87"
NETWORK = f"{PREFIX}-net"
#: Every pod of the lane lives below this cgroupfs parent (one per hierarchy).
CGROUP_PARENT = f"/{PREFIX}"
HANDLERS = {"pyrunc": PYRUNC, "runc": RUNC}
K8S_NS = "k8s.io"


def _free_port() -> int:
    """A free TCP port on 127.0.0.1 for the CRI streaming server (exec/attach URLs carry it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def containerd_config(w: Path, port: int) -> str:
    """The private containerd config: CRI on, two handlers, CNI and this machine's settings."""
    runtimes = "".join(f"""
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}]
          runtime_type = "io.containerd.runc.v2"
          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}.options]
            BinaryName = "{binary}"
            Root = "{w}/rt/{name}"
            SystemdCgroup = false
""" for name, binary in HANDLERS.items())
    return f"""# private containerd of pyrunc's CRI lane (tests/cri/conftest.py)
version = 2
root = "{w}/root"
state = "{w}/state"
plugin_dir = ""

[grpc]
  address = "{w}/c.sock"
[ttrpc]
  address = "{w}/c.sock.ttrpc"
[debug]
  address = ""
  level = "info"
[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{w}/opt"
  [plugins."io.containerd.runtime.v1.linux"]
    runtime_root = "{w}/v1"
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "{PAUSE}"
    stream_server_address = "127.0.0.1"
    stream_server_port = "{port}"
    restrict_oom_score_adj = true
    tolerate_missing_hugetlb_controller = true
    disable_hugetlb_controller = true
    disable_apparmor = true
    enable_selinux = false
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
{runtimes}
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "{CNI_BIN}"
      conf_dir = "{w}/net.d"
      max_conf_num = 1
"""


def cni_config(w: Path) -> dict:
    """bridge + host-local on the session's own bridge: no gateway on it, no routes, no masquerade.

    isGateway stays false so the plugin neither assigns the bridge an address
    nor turns on the host's ip_forward; the session gave the bridge its .1.
    """
    return {"cniVersion": "1.0.0", "name": NETWORK, "plugins": [{
        "type": "bridge", "bridge": BRIDGE, "isGateway": False, "ipMasq": False, "hairpinMode": False,
        "ipam": {"type": "host-local", "dataDir": f"{w}/ipam",
                 "ranges": [[{"subnet": f"{SUBNET_PREFIX}.0/24", "gateway": f"{SUBNET_PREFIX}.1"}]]}}]}


class Cri:
    """crictl against the private containerd, plus the daemon's lifecycle."""

    def __init__(self, w: Path):
        self.w = w
        self.sock = w / "c.sock"
        self.log = w / "containerd.log"
        self.config = w / "crictl.yaml"
        self.proc: subprocess.Popen | None = None

    # ---- the daemon ----
    def start(self) -> None:
        """Start containerd in its own session and wait until CRI answers."""
        log = open(self.log, "a")
        self.proc = subprocess.Popen(["containerd", "--config", str(self.w / "config.toml")],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        ok = wait_for(lambda: self.sock.exists() and self("info", timeout=10, quiet=True).rc == 0, timeout=60,
                      step=0.2)
        if not ok:
            raise RuntimeError(f"containerd did not come up: {self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM containerd (shims keep running, as on a real node) and wait for it."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    # ---- crictl ----
    def __call__(self, *args: str, timeout: float = 90, tty: bool = False, quiet: bool = False) -> Result:
        argv = [str(CRICTL), "--config", str(self.config), *args]
        if quiet:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
            return Result(argv, p.returncode, p.stdout, p.stderr)
        return run(argv, timeout=timeout, tty=tty)

    def ok(self, *args: str, timeout: float = 90) -> str:
        """Run crictl and require success; return stdout stripped."""
        r = self(*args, timeout=timeout)
        assert r.rc == 0, f"crictl {' '.join(args)} failed (rc={r.rc}): {r.err}\n{self.log_tail(1500)}"
        return r.out.strip()

    def inspect(self, kind: str, ident: str) -> dict:
        """``crictl inspect``/``inspectp`` as JSON."""
        return json.loads(self.ok(kind, "-o", "json", ident))

    # ---- specs ----
    def pod_spec(self, name: str, **extra: object) -> Path:
        """A pod sandbox config (below the lane's cgroup parent) written to a file."""
        spec: dict = {"metadata": {"name": name, "namespace": PREFIX, "uid": uuid.uuid4().hex, "attempt": 0},
                      "log_directory": str(self.w / "logs" / name),
                      "linux": {"cgroup_parent": CGROUP_PARENT}}
        spec.update(extra)
        path = self.w / "specs" / f"pod-{name}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(spec))
        return path

    def ctr_spec(self, name: str, command: list[str], **extra: object) -> Path:
        """A container config running ``command`` from the lane's busybox image."""
        spec: dict = {"metadata": {"name": name}, "image": {"image": BUSYBOX_IMAGE},
                      "command": command, "log_path": f"{name}.log", "linux": {}}
        spec.update(extra)
        path = self.w / "specs" / f"ctr-{name}-{uuid.uuid4().hex[:6]}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(spec))
        return path

    def runp(self, handler: str, name: str, **extra: object) -> tuple[str, Path]:
        """Run a pod with ``handler``: (pod id, its config file)."""
        pod = self.pod_spec(name, **extra)
        return self.ok("runp", "--runtime", handler, str(pod)), pod

    def run_container(self, pod_id: str, pod: Path, name: str, command: list[str], *, start: bool = True,
                      **extra: object) -> str:
        """create (+ start) a container in the pod; its id."""
        cid = self.ok("create", pod_id, str(self.ctr_spec(name, command, **extra)), str(pod))
        if start:
            self.ok("start", cid)
        return cid

    def remove_all(self) -> None:
        """Stop and remove every pod (and so every container) of the lane."""
        for pid in self("pods", "-q", quiet=True).out.split():
            self("stopp", pid, quiet=True)
            self("rmp", "-f", pid, quiet=True)


# ------------------------------------------------------------- host checks ----
#: Host directories containerd and libcni create on first use (removed again if the lane made them).
HOST_DIRS = (Path("/run/containerd"), Path("/var/lib/cni"), Path("/run/netns"))


def _shim_sockets() -> set[str]:
    d = Path("/run/containerd/s")
    return {p.name for p in d.iterdir()} if d.is_dir() else set()


def _veths_on_bridge() -> list[str]:
    p = subprocess.run(["ip", "-o", "link", "show", "master", BRIDGE], capture_output=True, text=True)
    return [ln.split(":")[1].strip() for ln in p.stdout.splitlines() if ":" in ln]


def processes_mentioning(text: str) -> list[int]:
    """pids whose command line contains ``text`` (our work dir: shims, containerd, runtimes)."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            found.append(int(d.name))
    return found


def lane_cgroups() -> list[Path]:
    """The lane's parent cgroup in every hierarchy where it exists."""
    return [h / PREFIX for h in CGROUP_ROOT.iterdir() if (h / PREFIX).is_dir()] if CGROUP_ROOT.is_dir() else []


def _create_bridge() -> None:
    subprocess.run(["ip", "link", "add", BRIDGE, "type", "bridge"], check=True, capture_output=True)
    subprocess.run(["ip", "addr", "add", f"{SUBNET_PREFIX}.1/24", "dev", BRIDGE], check=True, capture_output=True)
    subprocess.run(["ip", "link", "set", BRIDGE, "up"], check=True, capture_output=True)


def _bridge_exists() -> bool:
    return subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def cri() -> Iterator[Cri]:
    """The lane's containerd with CRI, images imported, bridge up; everything removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("the CRI lane needs root")
    for tool in (CRICTL, CRITEST):
        if not os.access(tool, os.X_OK):
            pytest.skip(f"{tool} is absent (crictl/critest come from ../shared/cri, see its README)")
    if not os.access(PYRUNC, os.X_OK):
        pytest.skip(f"{PYRUNC} is not installed (make setup)")
    reason = ensure_packages("containerd", "runc", "containernetworking-plugins", "busybox-static", "iproute2")
    if reason:
        pytest.skip(reason)
    if _bridge_exists():
        pytest.skip(f"bridge {BRIDGE} already exists: another CRI lane is running on this machine")
    if lane_cgroups():
        pytest.skip(f"cgroup {CGROUP_PARENT} already exists: another CRI lane is running on this machine")
    sockets_before = _shim_sockets()
    existed = {d: d.exists() for d in HOST_DIRS}
    w = Path(tempfile.mkdtemp(prefix="pycri.", dir="/tmp"))
    cri = Cri(w)
    try:
        for d in ("root", "state", "opt", "v1", "net.d", "ipam", "logs", "rt/pyrunc", "rt/runc"):
            (w / d).mkdir(parents=True)
        (w / "config.toml").write_text(containerd_config(w, _free_port()))
        (w / "net.d" / "10-pyrunc-cri.conflist").write_text(json.dumps(cni_config(w), indent=1))
        endpoint = f"unix://{w}/c.sock"
        cri.config.write_text(f"runtime-endpoint: {endpoint}\nimage-endpoint: {endpoint}\ntimeout: 60\n"
                              "debug: false\npull-image-on-create: false\n")
        _create_bridge()
        archive = build_archive(w / "images")
        cri.start()
        p = subprocess.run(["ctr", "--address", str(w / "c.sock"), "-n", K8S_NS, "images", "import",
                            "--all-platforms", str(archive)], capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            raise RuntimeError(f"ctr images import failed: {p.stderr[-1500:]}")
        listed = cri.ok("images", "-o", "json")
        missing = [n for n in IMAGES if n not in listed]
        assert not missing, f"images not visible to CRI: {missing}"
        yield cri
    finally:
        leftovers = teardown(cri, sockets_before, existed)
    assert not leftovers, f"the CRI lane left things behind: {leftovers}"


def teardown(cri: Cri, sockets_before: set[str], existed: dict[Path, bool]) -> dict:
    """Remove everything the lane made; return whatever could not be removed (must be empty)."""
    w = cri.w
    if cri.proc and cri.proc.poll() is None:
        cri.remove_all()
    cri.stop()
    left: dict = {}
    strays = processes_mentioning(str(w))
    if strays:  # shims of pods that could not be removed: only ours (they name our socket)
        left["processes"] = strays
        for pid in strays:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.5)
    unmount_below(w)
    mounts = [ln.split()[1] for ln in Path("/proc/self/mounts").read_text().splitlines() if str(w) in ln]
    if mounts:
        left["mounts"] = mounts
    if _bridge_exists():
        veths = _veths_on_bridge()
        if veths:
            left["veths"] = veths
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)
    killed = remove_cgroup_tree(PREFIX, set())
    if killed:
        left["cgroup processes"] = killed
    if lane_cgroups():
        left["cgroups"] = [str(p) for p in lane_cgroups()]
    new_sockets = _shim_sockets() - sockets_before
    if new_sockets:
        left["shim sockets"] = sorted(new_sockets)
    results = Path("/var/lib/cni/results")
    cached = sorted(p.name for p in results.glob(f"{NETWORK}-*")) if results.is_dir() else []
    if cached:  # libcni's cache of an attachment that was never deleted
        left["cni results"] = cached
    for d, was_there in existed.items():
        if not was_there:  # made by containerd or libcni for this session; only removed when empty
            remove_empty_dirs(d)
    shutil.rmtree(w, ignore_errors=True)
    return left
