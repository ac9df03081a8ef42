"""End-to-end fixtures: private containerd, podman and dockerd driving pyrunc and runc.

Every daemon runs privately under one short work dir in /tmp (own state,
storage, sockets and config files; see images.sh), is started once per
session and stopped by the session. Every scenario runs with both runtimes
in the same test, runc first, and the facts a caller can observe (exit codes,
output, states) must be the same for pyrunc.

Cleanup rules: containers a test made are removed when the test ends; at the
end of the session the daemons are stopped, mounts below the work dir are
unmounted, the cgroups the callers created for us (and only those that did
not exist before the session) are removed, and the work dir is deleted.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IMAGES_SH = Path(__file__).with_name("images.sh")
PYRUNC = str(REPO / ".venv" / "bin" / "pyrunc")
RUNC = "/usr/sbin/runc"
#: Both runtimes, runc (the oracle) first.
RUNTIMES: dict[str, str] = {"runc": RUNC, "pyrunc": PYRUNC}
IMAGE = "localhost/pyrunc-busybox:latest"
CMD_TIMEOUT = 60.0
CGROUP_ROOT = Path("/sys/fs/cgroup")
#: Hard rlimits can only be lowered on these machines (no CAP_SYS_RESOURCE).
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


# ------------------------------------------------------------------ running ----
@dataclass
class Result:
    """One finished (or timed-out) client command."""

    argv: list[str]
    rc: int | None
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        """stdout as stripped, non-empty lines."""
        return [ln.strip() for ln in self.out.splitlines() if ln.strip()]


def normalise_tty(text: str) -> str:
    """Terminal output as plain lines: CRLF -> LF, NUL bytes and their ``^@`` echo removed."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").replace("^@", "")


def run(argv: list[str], *, timeout: float = CMD_TIMEOUT, tty: bool = False, input: str | None = None,
        env: dict[str, str] | None = None) -> Result:
    """Run a client command with stdout/stderr in files, never raising on failure.

    ``tty=True`` runs it under ``script`` so it gets a pseudo-terminal (ctr,
    podman and docker refuse -t without one). A timeout becomes ``rc=None``.
    Each command and its result is printed, so a failing test shows them all.
    """
    if tty:
        argv = ["script", "-qec", shlex.join(argv), "/dev/null"]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        try:
            p = subprocess.run(argv, stdout=out, stderr=err, timeout=timeout, text=True, env=env,
                               stdin=subprocess.DEVNULL if input is None else None, input=input)
            rc: int | None = p.returncode
        except subprocess.TimeoutExpired:
            rc = None
        out.seek(0)
        err.seek(0)
        res = Result(argv, rc, out.read(), err.read())
    if tty:
        res.out = normalise_tty(res.out)
    print(f"$ {shlex.join(argv)}\n  rc={res.rc}\n  out={res.out[-2000:]!r}\n  err={res.err[-2000:]!r}")
    return res


def wait_for(pred: Callable[[], bool], timeout: float = 20.0, step: float = 0.1) -> bool:
    """Poll ``pred`` until it is true or ``timeout`` seconds passed."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def both(scenario: Callable[[str, str], dict]) -> dict[str, dict]:
    """Run ``scenario(name, binary)`` for runc then pyrunc; an exception becomes an outcome."""
    outcomes: dict[str, dict] = {}
    for name, binary in RUNTIMES.items():
        try:
            outcomes[name] = scenario(name, binary)
        except Exception as exc:  # noqa: BLE001 - reported as a differing outcome
            outcomes[name] = {"exception": f"{type(exc).__name__}: {exc}"}
    return outcomes


def assert_same(outcomes: dict[str, dict], expected: dict | None = None) -> None:
    """runc must give ``expected`` (checks the harness), pyrunc must give what runc gave."""
    if expected is not None:
        assert outcomes["runc"] == expected, f"runc (the oracle) did not behave as expected: {outcomes}"
    assert outcomes["pyrunc"] == outcomes["runc"], (
        f"pyrunc differs from runc:\n  runc:   {outcomes['runc']}\n  pyrunc: {outcomes['pyrunc']}")


def unique(prefix: str, runtime: str) -> str:
    """A container name unique to this session, scenario and runtime."""
    return f"{prefix}-{runtime}-{os.getpid()}"


# ----------------------------------------------------------------- packages ----
def _installed(pkg: str) -> bool:
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
    return p.returncode == 0 and p.stdout.strip().endswith("install ok installed")


def ensure_packages(*pkgs: str) -> str | None:
    """Install the missing Debian packages; return a skip reason if that is impossible.

    Services are kept from starting during the install (docker.io's init
    script would otherwise start a system dockerd that sets up iptables and a
    bridge): a temporary policy-rc.d is put in place only if none exists.
    """
    missing = [p for p in pkgs if not _installed(p)]
    if not missing:
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return f"packages {missing} are missing and cannot be installed here"
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = False
    if not policy.exists():
        policy.write_text("#!/bin/sh\n# temporary, from pyrunc's e2e tests: start no services\nexit 101\n")
        policy.chmod(0o755)
        made_policy = True
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=300)
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return f"apt-get install {' '.join(missing)} timed out"
    finally:
        if made_policy:
            policy.unlink(missing_ok=True)
    if p.returncode != 0 or not all(_installed(x) for x in missing):
        return f"apt-get install {' '.join(missing)} failed: {p.stderr.strip()[-300:]}"
    return None


# ------------------------------------------------------------- host hygiene ----
def _cgroup_hierarchies() -> list[Path]:
    return [h for h in CGROUP_ROOT.iterdir() if h.is_dir()] if CGROUP_ROOT.is_dir() else []


def remove_cgroup_tree(name: str, existed: set[Path]) -> list[int]:
    """rmdir ``/<name>`` (depth first) in every hierarchy where the session created it.

    A process still in there was left by a runtime (e.g. the init of a failed
    create): it is SIGKILLed first, and its pid returned so the test can say so.
    """
    killed: list[int] = []
    for h in _cgroup_hierarchies():
        top = h / name
        if top in existed or not top.is_dir():
            continue
        dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
        for d in [*dirs, top]:
            try:
                pids = [int(x) for x in (d / "cgroup.procs").read_text().split()]
            except (OSError, ValueError):
                pids = []
            for pid in pids:
                if pid not in killed:
                    killed.append(pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if pids:
                wait_for(lambda d=d: not (d / "cgroup.procs").read_text().strip(), timeout=5)
            try:
                d.rmdir()
            except OSError:
                pass
    return killed


def unmount_below(prefix: Path) -> None:
    """Unmount every mount point below ``prefix`` (deepest first), nothing else."""
    pfx = str(prefix).rstrip("/") + "/"
    with open("/proc/self/mounts") as f:
        points = [ln.split()[1].encode().decode("unicode_escape") for ln in f]
    for mp in sorted((m for m in points if m.startswith(pfx)), key=len, reverse=True):
        if subprocess.run(["umount", mp], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", mp], capture_output=True)


def remove_empty_dirs(top: Path) -> None:
    """Remove ``top`` and the empty directories below it; never a file."""
    if not top.is_dir():
        return
    for d in sorted((p for p in top.rglob("*") if p.is_dir() and not p.is_symlink()),
                    key=lambda p: len(p.parts), reverse=True):
        try:
            d.rmdir()
        except OSError:
            pass
    try:
        top.rmdir()
    except OSError:
        pass


@dataclass
class Workdir:
    """The session's private work dir plus what existed on the host before it."""

    path: Path
    ctr_namespace: str
    docker_cgroup_parent: str
    cgroups_before: set[Path] = field(default_factory=set)
    run_containerd_existed: bool = False
    moby_root_existed: bool = False
    images_built: set[str] = field(default_factory=set)

    def images(self, *steps: str, extra_env: dict[str, str] | None = None) -> None:
        """Run images.sh steps (each at most once per session)."""
        todo = [s for s in steps if s not in self.images_built or s.endswith(("-start", "-stop"))]
        if not todo:
            return
        env = dict(os.environ, PYRUNC_CTR_NAMESPACE=self.ctr_namespace, **(extra_env or {}))
        p = subprocess.run(["bash", str(IMAGES_SH), str(self.path), *todo], env=env,
                           capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            raise RuntimeError(f"images.sh {' '.join(todo)} failed: {p.stderr.strip()[-1500:]}")
        self.images_built.update(todo)


@pytest.fixture(scope="session")
def workdir() -> Iterator[Workdir]:
    """Short private dir (unix socket paths are limited to 108 bytes), removed at the end."""
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests need root")
    if not os.access(PYRUNC, os.X_OK):
        pytest.skip(f"{PYRUNC} is not installed (make setup)")
    if not os.access(RUNC, os.X_OK):
        pytest.skip(f"{RUNC} is not installed (apt-get install runc)")
    path = Path(tempfile.mkdtemp(prefix="pye2e.", dir="/tmp"))
    wd = Workdir(path, ctr_namespace=f"pyrunc-e2e-{os.getpid()}",
                 docker_cgroup_parent=f"pyrunc-e2e-docker-{os.getpid()}")
    wd.cgroups_before = {h / n for h in _cgroup_hierarchies()
                         for n in ("libpod_parent", wd.ctr_namespace, wd.docker_cgroup_parent)
                         if (h / n).exists()}
    wd.run_containerd_existed = Path("/run/containerd").exists()
    wd.moby_root_existed = Path("/run/containerd/runc/moby").exists()
    yield wd
    unmount_below(path)
    strays = []
    for name in ("libpod_parent", wd.ctr_namespace, wd.docker_cgroup_parent):
        strays += remove_cgroup_tree(name, wd.cgroups_before)
    if strays:
        print(f"e2e teardown: killed processes left in the session's cgroups: {strays}")
    if not wd.run_containerd_existed:
        remove_empty_dirs(Path("/run/containerd"))
    shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------- containerd ----
class Ctr:
    """ctr against the private containerd; remembers containers to remove."""

    def __init__(self, wd: Workdir):
        self.wrapper = str(wd.path / "bin" / "ctr")
        self.state_dir = wd.path / "containerd" / "state"
        self.namespace = wd.ctr_namespace
        self.names: set[str] = set()

    def __call__(self, *args: str, tty: bool = False, timeout: float = CMD_TIMEOUT) -> Result:
        return run([self.wrapper, *args], tty=tty, timeout=timeout)

    def track(self, name: str) -> str:
        """Remember ``name`` for cleanup and return it."""
        self.names.add(name)
        return name

    def task_status(self, name: str) -> str | None:
        """The STATUS column of ``ctr task ls`` for ``name`` (None if there is no task)."""
        for line in self("task", "ls").lines[1:]:
            cols = line.split()
            if cols and cols[0] == name:
                return cols[-1]
        return None

    def remove(self, name: str) -> None:
        """Kill and delete the task, then the container (errors ignored)."""
        if self.task_status(name) not in (None, "STOPPED"):
            self("task", "kill", "-a", "-s", "SIGKILL", name)
            wait_for(lambda: self.task_status(name) in (None, "STOPPED"), timeout=10)
        self("task", "rm", "-f", name)
        self("container", "rm", name)

    def cleanup(self) -> None:
        """Remove every container a test made (and that still exists)."""
        existing = set(self("container", "ls", "-q").lines)
        for name in sorted(self.names & existing):
            self.remove(name)
        self.names.clear()


@pytest.fixture(scope="session")
def containerd_session(workdir: Workdir) -> Iterator[Ctr]:
    """The private containerd with the busybox image imported, stopped at session end."""
    reason = ensure_packages("containerd")
    if reason:
        pytest.skip(reason)
    try:
        workdir.images("rootfs", "oci", "containerd-start")
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        workdir.images("containerd")
        yield Ctr(workdir)
    finally:
        workdir.images("containerd-stop")


@pytest.fixture
def ctr(containerd_session: Ctr) -> Iterator[Ctr]:
    """ctr for one test; the test's containers are removed afterwards."""
    yield containerd_session
    containerd_session.cleanup()


# ------------------------------------------------------------------- podman ----
class Podman:
    """The private podman (images.sh wrapper); remembers containers to remove."""

    def __init__(self, wd: Workdir):
        self.wrapper = str(wd.path / "bin" / "podman")
        self.names: dict[str, str] = {}

    def __call__(self, runtime: str, *args: str, tty: bool = False, timeout: float = CMD_TIMEOUT,
                 input: str | None = None) -> Result:
        """``podman --runtime RUNTIME args...`` (``--runtime`` is a global flag)."""
        return run([self.wrapper, "--runtime", runtime, *args], tty=tty, timeout=timeout, input=input)

    def track(self, name: str, runtime: str) -> str:
        """Remember ``name`` (made with ``runtime``) for cleanup and return it."""
        self.names[name] = runtime
        return name

    def inspect(self, runtime: str, name: str, fmt: str) -> str | None:
        """``podman inspect --format fmt`` (None if it fails)."""
        r = self(runtime, "inspect", "--format", fmt, name)
        return r.out.strip() if r.rc == 0 else None

    def cleanup(self) -> None:
        """Force-remove every container a test made."""
        for name, runtime in sorted(self.names.items()):
            self(runtime, "rm", "-f", "-t", "0", name)
        self.names.clear()


@pytest.fixture(scope="session")
def podman_session(workdir: Workdir) -> Iterator[Podman]:
    """Private podman storage with the busybox image; all containers removed at the end."""
    reason = ensure_packages("podman", "conmon")
    if reason:
        pytest.skip(reason)
    try:
        workdir.images("rootfs", "podman")
    except RuntimeError as exc:
        pytest.fail(str(exc))
    pm = Podman(workdir)
    yield pm
    left = run([pm.wrapper, "ps", "-aq"])
    for cid in left.lines:
        for binary in RUNTIMES.values():
            if run([pm.wrapper, "--runtime", binary, "rm", "-f", "-t", "0", cid]).rc == 0:
                break


@pytest.fixture
def podman(podman_session: Podman) -> Iterator[Podman]:
    """podman for one test; the test's containers are removed afterwards."""
    yield podman_session
    podman_session.cleanup()


# ------------------------------------------------------------------- docker ----
DOCKER_CLIENT = "/usr/bin/docker"  # docker.io's 20.10 client, not whatever is first on PATH


class Docker:
    """docker against the private dockerd; remembers containers to remove."""

    def __init__(self, sock: Path, config_dir: Path):
        self.base = [DOCKER_CLIENT, "-H", f"unix://{sock}"]
        self.env = dict(os.environ, DOCKER_CONFIG=str(config_dir))
        self.env.pop("DOCKER_HOST", None)
        self.names: set[str] = set()

    def __call__(self, *args: str, tty: bool = False, timeout: float = CMD_TIMEOUT) -> Result:
        return run([*self.base, *args], tty=tty, timeout=timeout, env=self.env)

    def track(self, name: str) -> str:
        """Remember ``name`` for cleanup and return it."""
        self.names.add(name)
        return name

    def inspect(self, name: str, fmt: str) -> str | None:
        """``docker inspect -f fmt`` (None if it fails)."""
        r = self("inspect", "-f", fmt, name)
        return r.out.strip() if r.rc == 0 else None

    def cleanup(self) -> None:
        """Force-remove every container a test made."""
        for name in sorted(self.names):
            self("rm", "-f", name)
        self.names.clear()


#: docker runtime names: pyrunc as the README says, runc registered the same way.
DOCKER_RUNTIMES = {"runc": "e2e-runc", "pyrunc": "pyrunc"}


@pytest.fixture(scope="session")
def docker_session(workdir: Workdir, containerd_session: Ctr) -> Iterator[Docker]:
    """A private dockerd 20.10 on the private containerd, busybox imported; stopped at the end.

    ``--iptables=false --bridge=none``: no host network changes; containers
    use ``--network none``. ``--cgroup-parent`` keeps its cgroups under a
    name this session owns.
    """
    reason = ensure_packages("docker.io")
    if reason:
        pytest.skip(reason)
    d = workdir.path / "docker"
    for sub in ("data", "exec", "client"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    (d / "daemon.json").write_text("{}\n")
    sock = d / "docker.sock"
    cd_sock = workdir.path / "containerd" / "containerd.sock"
    argv = ["dockerd", "--config-file", str(d / "daemon.json"), "--data-root", str(d / "data"),
            "--exec-root", str(d / "exec"), "--pidfile", str(d / "docker.pid"), "-H", f"unix://{sock}",
            "--containerd", str(cd_sock), "--iptables=false", "--ip6tables=false", "--bridge=none",
            "--ip-masq=false", "--userland-proxy=false", "--storage-driver", "overlay2",
            "--cgroup-parent", f"/{workdir.docker_cgroup_parent}", "--log-level", "info",
            "--add-runtime", f"pyrunc={PYRUNC}", "--add-runtime", f"e2e-runc={RUNC}"]
    with open(d / "dockerd.log", "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    client = Docker(sock, d / "client")
    try:
        if not wait_for(lambda: proc.poll() is None and sock.exists()
                        and client("version", timeout=10).rc == 0, timeout=60, step=0.3):
            pytest.fail(f"dockerd did not come up: {(d / 'dockerd.log').read_text()[-2000:]}")
        imp = client("import", "-c", 'CMD ["/bin/sh"]', "-c", "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                     str(workdir.path / "rootfs.tar"), IMAGE)
        if imp.rc != 0:
            pytest.fail(f"docker import failed: {imp.err}")
        yield client
    finally:
        for cid in client("ps", "-aq").lines:
            client("rm", "-f", cid)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        unmount_below(d)
        if not workdir.moby_root_existed:  # the shim's --root for dockerd's containerd namespace
            remove_empty_dirs(Path("/run/containerd/runc/moby"))


@pytest.fixture
def docker(docker_session: Docker) -> Iterator[Docker]:
    """docker for one test; the test's containers are removed afterwards."""
    yield docker_session
    docker_session.cleanup()


def exit_code_from_ctr_delete(res: Result) -> int | None:
    """ctr task rm reports a non-zero exit status as a warning; no warning means 0."""
    if res.rc != 0:
        return None
    m = re.search(r"exit with non-zero exit code (\d+)", res.err)
    return int(m.group(1)) if m else 0
