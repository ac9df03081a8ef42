"""The CRI lane: a private containerd with its CRI plugin, driven by crictl and critest.

One containerd for the lane (a package-scoped fixture: it ends after the lane's
last test), private in everything (root, state, grpc/ttrpc sockets, ``opt``,
CNI config and IPAM data, streaming port), with two runtime
handlers of the runc-v2 shim: ``pyrunc`` (``BinaryName`` = this worktree's
pyrunc) and ``runc``, each with its own ``Root`` so their state stays apart
(and a test can tell which runtime ran a container). The images are local
stand-ins (tests/cri/images.py) imported with ctr. Pods get their network from
containernetworking-plugins' bridge on a bridge the lane creates, with a
private /24, no default route and no masquerading: traffic only flows between
this machine and the pods' own network namespaces.

Settings this machine needs (../shared/cri/README.md): root lacks
CAP_SYS_RESOURCE, so ``restrict_oom_score_adj``; hybrid cgroups without
systemd, so cgroupfs and no hugetlb controller.

Teardown removes every pod, stops containerd, deletes the bridge and the pods'
parent cgroup and then checks that nothing is left (sockets under
/run/containerd/s, mounts, processes, veths, cgroups): a leftover fails the
lane's teardown. ``Lane`` and ``run_lane`` are shared with the containerd 2.3
lane (tests/cri2).
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
from collections.abc import Callable, Iterator
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


class Lane:
    """What one CRI lane is: its tools, its handlers and the names of what it makes on the host.

    Two lanes (containerd 1.6 here, containerd 2.3 in tests/cri2) run in one pytest session, and
    may run at once on one machine, so each has its own prefix (pod namespace, cgroup parent, CNI
    network), bridge and subnet. ``bin_dir`` holds crictl and critest, and
    ``containerd``/``ctr`` run from it too when ``own_daemon`` says so (its shim is then first
    in the daemon's PATH); otherwise Debian's containerd and ctr run.
    """

    def __init__(self, *, prefix: str, bridge: str, subnet_prefix: str, bin_dir: Path,
                 handlers: dict[str, str], own_daemon: bool = False) -> None:
        self.prefix = prefix
        self.bridge = bridge
        self.subnet_prefix = subnet_prefix
        self.network = f"{prefix}-net"
        self.cgroup_parent = f"/{prefix}"
        self.bin_dir = bin_dir
        self.crictl = bin_dir / "crictl"
        self.critest = bin_dir / "critest"
        self.handlers = handlers
        self.containerd = str(bin_dir / "containerd") if own_daemon else "containerd"
        self.ctr = str(bin_dir / "ctr") if own_daemon else "ctr"
        self.path_first = str(bin_dir) if own_daemon else ""

    def daemon_env(self) -> dict[str, str]:
        """The daemon's environment: its own bin directory first, so it starts its own shim."""
        env = dict(os.environ)
        if self.path_first:
            env["PATH"] = f"{self.path_first}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
        return env


LANE = Lane(prefix=PREFIX, bridge=BRIDGE, subnet_prefix=SUBNET_PREFIX, bin_dir=CRI_BIN, handlers=HANDLERS)


def _free_port() -> int:
    """A free TCP port on 127.0.0.1 for the CRI streaming server (exec/attach URLs carry it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def containerd_config(w: Path, port: int, lane: Lane = LANE) -> str:
    """The private containerd config: CRI on, two handlers, CNI and this machine's settings."""
    runtimes = "".join(f"""
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}]
          runtime_type = "io.containerd.runc.v2"
          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}.options]
            BinaryName = "{binary}"
            Root = "{w}/rt/{name}"
            SystemdCgroup = false
""" for name, binary in lane.handlers.items())
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


def cni_config(w: Path, lane: Lane = LANE) -> dict:
    """bridge + host-local on the session's own bridge: no gateway on it, no routes, no masquerade.

    isGateway stays false so the plugin neither assigns the bridge an address
    nor turns on the host's ip_forward; the session gave the bridge its .1.
    """
    return {"cniVersion": "1.0.0", "name": lane.network, "plugins": [{
        "type": "bridge", "bridge": lane.bridge, "isGateway": False, "ipMasq": False, "hairpinMode": False,
        "ipam": {"type": "host-local", "dataDir": f"{w}/ipam",
                 "ranges": [[{"subnet": f"{lane.subnet_prefix}.0/24", "gateway": f"{lane.subnet_prefix}.1"}]]}}]}


class Cri:
    """crictl against the private containerd, plus the daemon's lifecycle."""

    def __init__(self, w: Path, lane: Lane = LANE):
        self.w = w
        self.lane = lane
        self.sock = w / "c.sock"
        self.log = w / "containerd.log"
        self.config = w / "crictl.yaml"
        self.proc: subprocess.Popen | None = None

    # ---- the daemon ----
    def start(self) -> None:
        """Start containerd in its own session and wait until CRI answers."""
        log = open(self.log, "a")
        self.proc = subprocess.Popen([self.lane.containerd, "--config", str(self.w / "config.toml")],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                     env=self.lane.daemon_env())
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
        argv = [str(self.lane.crictl), "--config", str(self.config), *args]
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
        spec: dict = {"metadata": {"name": name, "namespace": self.lane.prefix, "uid": uuid.uuid4().hex,
                                   "attempt": 0},
                      "log_directory": str(self.w / "logs" / name),
                      "linux": {"cgroup_parent": self.lane.cgroup_parent}}
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


def _veths_on_bridge(bridge: str = BRIDGE) -> list[str]:
    p = subprocess.run(["ip", "-o", "link", "show", "master", bridge], capture_output=True, text=True)
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


def lane_cgroups(prefix: str = PREFIX) -> list[Path]:
    """The lane's parent cgroup in every hierarchy where it exists."""
    return [h / prefix for h in CGROUP_ROOT.iterdir() if (h / prefix).is_dir()] if CGROUP_ROOT.is_dir() else []


def _create_bridge(lane: Lane = LANE) -> None:
    subprocess.run(["ip", "link", "add", lane.bridge, "type", "bridge"], check=True, capture_output=True)
    subprocess.run(["ip", "addr", "add", f"{lane.subnet_prefix}.1/24", "dev", lane.bridge], check=True,
                   capture_output=True)
    subprocess.run(["ip", "link", "set", lane.bridge, "up"], check=True, capture_output=True)


def _bridge_exists(bridge: str = BRIDGE) -> bool:
    return subprocess.run(["ip", "link", "show", bridge], capture_output=True).returncode == 0


@pytest.fixture(scope="package")
def cri() -> Iterator[Cri]:
    """The lane's containerd with CRI, images imported, bridge up; everything removed afterwards."""
    yield from run_lane(LANE, containerd_config, "crictl/critest come from ../shared/cri, see its README",
                        ("containerd", "runc", "containernetworking-plugins", "busybox-static", "iproute2"))


def run_lane(lane: Lane, config: Callable[[Path, int, Lane], str], whence: str,
             packages: tuple[str, ...]) -> Iterator[Cri]:
    """Set a lane up (containerd with ``config``, CNI, bridge, images), yield its ``Cri``, tear it
    down and fail if anything is left; skip with the reason where a tool or package is missing."""
    if os.geteuid() != 0:
        pytest.skip("the CRI lane needs root")
    tools = [lane.crictl, lane.critest] + ([Path(lane.containerd), Path(lane.ctr)] if lane.path_first else [])
    for tool in tools:
        if not os.access(tool, os.X_OK):
            pytest.skip(f"{tool} is absent ({whence})")
    for name, binary in lane.handlers.items():
        if not os.access(binary, os.X_OK):
            pytest.skip(f"handler {name}: {binary} is not installed")
    reason = ensure_packages(*packages)
    if reason:
        pytest.skip(reason)
    if _bridge_exists(lane.bridge):
        pytest.skip(f"bridge {lane.bridge} already exists: another CRI lane is running on this machine")
    if lane_cgroups(lane.prefix):
        pytest.skip(f"cgroup {lane.cgroup_parent} already exists: another CRI lane is running on this machine")
    sockets_before = _shim_sockets()
    existed = {d: d.exists() for d in HOST_DIRS}
    w = Path(tempfile.mkdtemp(prefix="pycri.", dir="/tmp"))
    # Searchable, not listable, by others (as containerd's own /run/containerd task directories
    # are): a user-namespaced pod's runtime reaches its rootfs below here as the pod's mapped root.
    w.chmod(0o711)
    cri = Cri(w, lane)
    try:
        for d in ("root", "state", "tmp", "opt", "v1", "net.d", "ipam", "logs", "shim",
                  *(f"rt/{name}" for name in lane.handlers)):
            (w / d).mkdir(parents=True)
        (w / "config.toml").write_text(config(w, _free_port(), lane))
        (w / "net.d" / f"10-{lane.prefix}.conflist").write_text(json.dumps(cni_config(w, lane), indent=1))
        endpoint = f"unix://{w}/c.sock"
        cri.config.write_text(f"runtime-endpoint: {endpoint}\nimage-endpoint: {endpoint}\ntimeout: 60\n"
                              "debug: false\npull-image-on-create: false\n")
        _create_bridge(lane)
        archive = build_archive(w / "images")
        cri.start()
        p = subprocess.run([lane.ctr, "--address", str(w / "c.sock"), "-n", K8S_NS, "images", "import",
                            "--all-platforms", str(archive)], capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            raise RuntimeError(f"ctr images import failed: {p.stderr[-1500:]}")
        # containerd 2.x fills the CRI's image store from the import's events, a moment later.
        def missing() -> list[str]:
            listed = cri.ok("images", "-o", "json")
            return [n for n in IMAGES if n not in listed]
        wait_for(lambda: not missing(), timeout=30, step=0.2)
        assert not missing(), f"images not visible to CRI: {missing()}"
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
    lane = cri.lane
    if _bridge_exists(lane.bridge):
        veths = _veths_on_bridge(lane.bridge)
        if veths:
            left["veths"] = veths
        subprocess.run(["ip", "link", "del", lane.bridge], capture_output=True)
    killed = remove_cgroup_tree(lane.prefix, set())
    if killed:
        left["cgroup processes"] = killed
    if lane_cgroups(lane.prefix):
        left["cgroups"] = [str(p) for p in lane_cgroups(lane.prefix)]
    new_sockets = _shim_sockets() - sockets_before
    if new_sockets:
        left["shim sockets"] = sorted(new_sockets)
    results = Path("/var/lib/cni/results")
    cached = sorted(p.name for p in results.glob(f"{lane.network}-*")) if results.is_dir() else []
    if cached:  # libcni's cache of an attachment that was never deleted
        left["cni results"] = cached
    for d, was_there in existed.items():
        if not was_there:  # made by containerd or libcni for this session; only removed when empty
            remove_empty_dirs(d)
    shutil.rmtree(w, ignore_errors=True)
    return left
