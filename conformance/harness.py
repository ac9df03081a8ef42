"""The engine: scenarios, the per-run context that drives one runtime, and cleanup.

A scenario is a function of a `Ctx`. It edits `ctx.config`, drives the
runtime through `ctx` (which writes config.json and records every container
it creates), and judges by raising `Fail` or `Skip`; returning means pass.
The same function runs once per runtime, each time in a fresh bundle, a
private `--root` and a cgroupsPath of its own, so the two runs never see each
other and parallel jobs never collide.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pyrunc.testing import busybox

BUSYBOX = busybox.BUSYBOX
HOOKPROBE = str(Path(__file__).with_name("hookprobe.py"))
CGROUP_ROOT = Path("/sys/fs/cgroup")
PREFIX = f"pyrunc-conf-{os.getpid()}"
LEVELS = ("MUST", "SHOULD", "MAY")
# What a runtime prints when it refuses a feature on purpose; for SHOULD/MAY
# scenarios such a refusal is a skip, for MUST scenarios it stays a failure.
REFUSAL = re.compile(r"not (yet )?(supported|implemented)|unsupported|unknown|not available", re.I)
_serial = itertools.count()


class Fail(Exception):
    """The runtime did something the cited requirement forbids (or did not do what it requires)."""


class Skip(Exception):
    """The feature is detectably unsupported (a clear refusal of a non-MUST feature, or no host support)."""


@dataclass
class Scenario:
    """One requirement, one bundle mutation, one judge."""

    id: str
    spec: str
    level: str
    title: str
    fn: Callable[[Ctx], None]

    def __post_init__(self) -> None:
        assert self.level in LEVELS, self.level
        assert "#" in self.spec and self.spec.split("#")[0].endswith(".md"), self.spec


CATALOG: list[Scenario] = []


def scenario(id: str, spec: str, level: str, title: str = "") -> Callable:
    """Register a scenario; the title defaults to the first docstring line (the requirement)."""
    def deco(fn: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
        doc = (fn.__doc__ or "").strip().splitlines()
        add(id, spec, level, title or (doc[0] if doc else id), fn)
        return fn
    return deco


def add(id: str, spec: str, level: str, title: str, fn: Callable[[Ctx], None]) -> None:
    if any(s.id == id for s in CATALOG):
        raise ValueError(f"duplicate scenario id {id}")
    CATALOG.append(Scenario(id, spec, level, title, fn))


@dataclass
class Result:
    """One runtime invocation: exit status and what it printed (read back from files)."""

    args: list[str]
    rc: int
    out: str
    err: str

    def brief(self) -> str:
        lines = (self.err.strip() or self.out.strip()).splitlines()
        text = lines[-1] if lines else ""  # runtimes print warnings first and the error last
        return f"`{' '.join(self.args[:2])}` rc={self.rc}" + (f": {text[-300:]}" if text else "")


# -- rootfs and base config ---------------------------------------------------------------

def build_rootfs(dest: Path) -> Path:
    """busybox-static, relative applet links, passwd/group, and /out for probe results."""
    return busybox.build_rootfs(dest, extra_dirs=("out",))


def _copy_rootfs(src: Path, dst: Path) -> None:
    """Hard-link the (read-only, large) busybox binary; copy the small files a scenario may change."""
    def copy(s: str, d: str) -> None:
        if s.endswith("/bin/busybox"):
            os.link(s, d)
        else:
            shutil.copy2(s, d)
    shutil.copytree(src, dst, symlinks=True, copy_function=copy)


def base_config() -> dict:
    """A minimal Linux config written from config.md/config-linux.md: the usual mounts and namespaces.

    No hostname, rlimits, masked or read-only paths: scenarios add exactly what
    they test, so a runtime's defaults cannot make a scenario pass by accident.
    """
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": ["true"],
            "env": ["PATH=/bin:/usr/bin:/sbin", "HOME=/root"],
            "cwd": "/",
            "capabilities": {k: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
                             for k in ("bounding", "effective", "permitted")},
            "noNewPrivileges": False,
        },
        "root": {"path": "rootfs", "readonly": False},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        },
    }


# -- host helpers ---------------------------------------------------------------------------

def controllers() -> list[Path]:
    """Every mounted cgroup hierarchy (v1 controllers, named hierarchies and the v2 mount)."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] in ("cgroup", "cgroup2"):
                found.append(Path(fields[4]))
    return found


def find_cgroups(name: str, depth: int = 6) -> list[Path]:
    """Directories called `name` anywhere in any hierarchy (deepest first, for rmdir)."""
    base = name.strip("/").rsplit("/", 1)[-1]
    hits: list[Path] = []
    for root in controllers():
        stack = [(root, 0)]
        while stack:
            d, lvl = stack.pop()
            try:
                entries = list(os.scandir(d))
            except OSError:
                continue
            for e in entries:
                if e.is_dir(follow_symlinks=False):
                    p = Path(e.path)
                    if e.name == base:
                        hits.append(p)
                    if lvl < depth:
                        stack.append((p, lvl + 1))
    return sorted(hits, key=lambda p: -len(p.parts))


def remove_cgroups(name: str) -> list[str]:
    """Kill what is left in our own uniquely named cgroups and remove them; return what was left."""
    left = []
    for d in find_cgroups(name):
        left.append(str(d))
        for _ in range(50):
            try:
                pids = [int(x) for x in (d / "cgroup.procs").read_text().split()]
            except OSError:
                pids = []
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            try:
                d.rmdir()
                break
            except OSError:
                time.sleep(0.05)
    return left


def cgroup_dir(pid: int, controller: str) -> Path | None:
    """Where `pid` sits in a v1 controller's hierarchy, as the host sees it."""
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        _, ctrls, path = line.split(":", 2)
        if controller in ctrls.split(","):
            for root in controllers():
                if root.name == controller or controller in root.name.split(","):
                    return root / path.lstrip("/")
    return None


def parse_mountinfo(text: str) -> list[dict]:
    """mountinfo lines as dicts: mountpoint, per-mount options, optional fields, fstype, super options."""
    res = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 10:
            continue
        sep = f.index("-")
        res.append({"point": f[4], "opts": set(f[5].split(",")), "optional": f[6:sep],
                    "fstype": f[sep + 1], "source": f[sep + 2], "super": set(f[sep + 3].split(","))})
    return res


def proc_status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


class Holder:
    """A host process in fresh namespaces, for scenarios that join a namespace by path."""

    def __init__(self, flags: list[str]):
        self.proc = subprocess.Popen(["unshare", *flags, "sleep", "300"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pid = self.proc.pid
        if "--fork" in flags:
            for _ in range(100):
                kids = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
                if kids:
                    self.pid = int(kids[0])
                    break
                time.sleep(0.01)
        else:
            me = os.readlink("/proc/self/ns/uts")
            for _ in range(100):  # wait until unshare has unshared (ns link differs from ours)
                if os.readlink(f"/proc/{self.pid}/ns/uts") != me or os.readlink(
                        f"/proc/{self.pid}/ns/net") != os.readlink("/proc/self/ns/net"):
                    break
                time.sleep(0.01)

    def ns(self, t: str) -> str:
        return f"/proc/{self.pid}/ns/{t}"

    def close(self) -> None:
        if self.pid != self.proc.pid:  # --fork: unshare's child outlives a killed unshare
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
        self.proc.kill()
        self.proc.wait()


# -- the context ----------------------------------------------------------------------------

@dataclass
class Ctx:
    """Everything one scenario run needs: the runtime, a fresh bundle, and the judge's helpers."""

    runtime: str
    side: str
    scenario: Scenario
    work: Path
    template: Path
    config: dict = field(default_factory=base_config)
    ids: list[str] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = self.work / "state"
        self.bundle = self.work / "bundle"
        self.out = self.work / "out"
        self.out.mkdir(parents=True)
        self.bundle.mkdir()
        _copy_rootfs(self.template, self.bundle / "rootfs")
        self.cgroup = f"{PREFIX}-{next(_serial)}"
        self.config["linux"]["cgroupsPath"] = self.cgroup
        self._n = 0

    # -- bundle ----------------------------------------------------------------------------
    @property
    def rootfs(self) -> Path:
        return self.bundle / "rootfs"

    @property
    def process(self) -> dict:
        return self.config["process"]

    @property
    def linux(self) -> dict:
        return self.config["linux"]

    def write_config(self) -> None:
        (self.bundle / "config.json").write_text(json.dumps(self.config, indent=1))

    def mount_out(self, dest: str = "/out") -> str:
        """Bind-mount the host's scenario output dir into the container; probes write there."""
        self.config["mounts"].append({"destination": dest, "type": "bind", "source": str(self.out),
                                      "options": ["rbind", "rw"]})
        return dest

    def add_mount(self, dest: str, typ: str, source: str, options: list[str]) -> None:
        self.config["mounts"].append({"destination": dest, "type": typ, "source": source, "options": options})

    def hook(self, name: str, code: int = 0, pause: float = 0.0, **extra) -> dict:
        """A host-side hook entry that appends a record to out/hooks.jsonl (see hookprobe.py)."""
        args = [sys.executable, "-I", "-S", HOOKPROBE, str(self.out / "hooks.jsonl"), name, str(code)]
        if pause:
            args.append(str(pause))
        return {"path": sys.executable, "args": args, **extra}

    def hook_records(self) -> list[dict]:
        p = self.out / "hooks.jsonl"
        if not p.exists():
            return []
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]

    # -- driving the runtime ---------------------------------------------------------------
    def cmd(self, *args: str, timeout: float = 30, wrap: list[str] | None = None,
            umask: int = -1, pass_fds: tuple[int, ...] = (), write: bool = True) -> Result:
        """Run one runtime command with stdio in files (a detached container inherits them)."""
        if args and args[0] in ("create", "run") and write:
            self.write_config()
            for a in args[1:]:
                if not a.startswith("-") and a not in self.ids:
                    self.ids.append(a)
        self._n += 1
        argv = [self.runtime, "--root", str(self.root), *args]
        outp, errp = self.work / f"cmd{self._n}.out", self.work / f"cmd{self._n}.err"
        with open(outp, "w") as out, open(errp, "w") as err:
            try:
                p = subprocess.run([*(wrap or []), *argv], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                   cwd=self.bundle, timeout=timeout, umask=umask, pass_fds=pass_fds)
                rc = p.returncode
            except subprocess.TimeoutExpired:
                raise Fail(f"`{' '.join(args[:2])}` timed out after {timeout}s") from None
        return Result(list(args), rc, outp.read_text(errors="replace"), errp.read_text(errors="replace"))

    def succeed(self, res: Result, what: str = "") -> Result:
        """Require success; a clear refusal of a SHOULD/MAY feature is a skip, anything else a failure."""
        if res.rc == 0:
            return res
        if self.scenario.level != "MUST" and REFUSAL.search(res.err + res.out):
            raise Skip(f"refused ({self.scenario.level} feature): {res.brief()}")
        prefix = "refused a MUST feature" if REFUSAL.search(res.err + res.out) else "failed"
        raise Fail(f"{what + ': ' if what else ''}{prefix}: {res.brief()}")

    def probe(self, script: str, cid: str = "c1", **kw) -> str:
        """`run` a shell script in the container and return what it printed (it must exit 0)."""
        self.process["args"] = ["sh", "-c", script]
        return self.succeed(self.cmd("run", cid, **kw), "run").out

    def create(self, cid: str = "c1", args: list[str] | None = None, **kw) -> Result:
        if args is not None:
            self.process["args"] = args
        return self.succeed(self.cmd("create", cid, **kw), "create")

    def start(self, cid: str = "c1") -> Result:
        return self.succeed(self.cmd("start", cid), "start")

    def state(self, cid: str = "c1") -> dict:
        res = self.succeed(self.cmd("state", cid), "state")
        try:
            doc = json.loads(res.out)
        except ValueError:
            raise Fail(f"state output is not JSON: {res.out[:200]!r}") from None
        if not isinstance(doc, dict):
            raise Fail(f"state output is not an object: {res.out[:200]!r}")
        return doc

    def pid(self, cid: str = "c1") -> int:
        pid = self.state(cid).get("pid")
        if not isinstance(pid, int) or pid <= 0 or not Path(f"/proc/{pid}").exists():
            raise Fail(f"state has no live pid: {pid!r}")
        return pid

    def running(self, cid: str = "c1", args: list[str] | None = None) -> int:
        """create + start a long sleeper; return the container process's host pid."""
        self.create(cid, args or ["sleep", "300"])
        self.start(cid)
        pid = self.pid(cid)
        self.wait_exec(pid, (args or ["sleep"])[0])
        return pid

    def created(self, cid: str = "c1", args: list[str] | None = None) -> int:
        self.create(cid, args or ["sleep", "300"])
        return self.pid(cid)

    def wait_exec(self, pid: int, name: str, timeout: float = 5) -> None:
        """Wait until the container process has exec'd the user program (start may return first)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if name.rsplit("/", 1)[-1] in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                    return
            except OSError:
                return
            time.sleep(0.02)

    def wait_status(self, cid: str, want: str, timeout: float = 5) -> dict:
        end = time.monotonic() + timeout
        doc: dict = {}
        while time.monotonic() < end:
            doc = self.state(cid)
            if doc.get("status") == want:
                return doc
            time.sleep(0.05)
        raise Fail(f"status stayed {doc.get('status')!r}, expected {want!r}")

    def wait_file(self, path: Path, timeout: float = 5) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if path.exists() and path.stat().st_size:
                return True
            time.sleep(0.02)
        return path.exists()

    def must_fail(self, res: Result, why: str) -> None:
        if res.rc == 0:
            raise Fail(f"`{' '.join(res.args[:2])}` succeeded, but {why}")

    def expect_nothing_created(self, res: Result, cid: str, why: str) -> None:
        """runtime.md#errors: an error leaves the environment as if the operation were never attempted."""
        self.must_fail(res, why)
        st = self.cmd("state", cid)
        if st.rc == 0:
            raise Fail(f"create failed ({res.brief()}) but `state {cid}` still succeeds: {st.out[:200]}")
        left = find_cgroups(self.cgroup)
        if left:
            raise Fail(f"create failed but its cgroup is left behind: {left[0]}")
        if self.root.exists() and any(p.name == cid for p in self.root.rglob(cid)):
            raise Fail(f"create failed but state for {cid!r} is left under --root")

    def check(self, cond: object, msg: str) -> None:
        if not cond:
            raise Fail(msg)

    def cleanup(self) -> None:
        """delete --force everything we created, run scenario cleanups, reap leftover cgroups."""
        for cid in reversed(self.ids):
            try:
                self.cmd("delete", "--force", cid, timeout=30)
            except Fail:
                self.notes.append(f"delete --force {cid} timed out")
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - cleanup must go on, the note says what failed
                self.notes.append(f"cleanup: {e}")
        left = remove_cgroups(self.cgroup)
        if left:
            self.notes.append(f"cgroup left after delete --force: {left[0]}")


# -- running ----------------------------------------------------------------------------------

def run_one(sc: Scenario, runtime: str, side: str, workroot: Path, template: Path) -> tuple[str, str, float]:
    """Run one scenario against one runtime: ("pass"|"fail"|"skip", detail, seconds). Leaves nothing behind."""
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix=re.sub(r"[^A-Za-z0-9_.-]", "_", sc.id)[:60] + "-",
                                 dir=workroot / side))
    work.chmod(0o755)  # mkdtemp makes 0700; a user-namespaced container must traverse it
    ctx = None
    status, detail = "pass", ""
    try:
        ctx = Ctx(runtime, side, sc, work, template)
        sc.fn(ctx)
    except Fail as e:
        status, detail = "fail", str(e)
    except Skip as e:
        status, detail = "skip", str(e)
    except Exception as e:  # noqa: BLE001 - a crashing judge is reported as that scenario's failure
        status, detail = "fail", f"judge error: {type(e).__name__}: {e}"
    finally:
        if ctx is not None:
            ctx.cleanup()
            if ctx.notes:
                detail = "; ".join([detail, *ctx.notes]) if detail else "; ".join(ctx.notes)
        leaked = mounts_under(work)
        if leaked:  # never rm -rf through a mount: it could be a bind of host data
            detail = "; ".join(x for x in (detail, f"mount leaked on the host: {leaked[0]}") if x)
            status = "fail"
        else:
            shutil.rmtree(work, ignore_errors=True)
    return status, detail, time.monotonic() - t0


def mounts_under(path: Path) -> list[str]:
    prefix = str(path) + "/"
    with open("/proc/self/mountinfo") as f:
        return [ln.split()[4] for ln in f if ln.split()[4].startswith(prefix)]


def copy_config(cfg: dict) -> dict:
    return copy.deepcopy(cfg)
