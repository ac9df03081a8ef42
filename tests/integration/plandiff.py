"""The plan against what create did: one bundle, `pyrunc plan` then `pyrunc create`, compared.

Used by test_plan_differential.py for every bundle of the conformance corpus and of the
foreign-config corpus. What is compared, each read back from the created container:

- mounts: /proc/PID/mountinfo of the init (waiting for `start`, its mount table complete):
  the same mount points with the same filesystem types in the same order, and per mount the
  per-mount flags (ro/rw, nosuid, nodev, noexec, the atime mode, nodiratime, nosymfollow); the
  propagation where the config asked for one;
- cgroup writes: every file the plan says create writes, read back from cgroupfs (values in the
  kernel's spelling: page-rounded byte counts, cpu lists, "max"); the v1 device rules through
  devices.list;
- capabilities: the five sets of /proc/PID/status, as the init installed them (created) and as
  the program has them after execve (running);
- namespaces (/proc/PID/ns against the host's and the joined paths) and rlimits (/proc/PID/limits).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYRUNC = str(REPO / ".venv" / "bin" / "pyrunc")
ATIME = ("noatime", "relatime")
FLAG_WORDS = ("ro", "nosuid", "nodev", "noexec", "noatime", "nodiratime", "relatime", "nosymfollow")
CAP_SETS = {"bounding": "CapBnd", "effective": "CapEff", "permitted": "CapPrm", "inheritable": "CapInh",
            "ambient": "CapAmb"}
RLIMIT_NAMES = {"RLIMIT_CPU": "Max cpu time", "RLIMIT_FSIZE": "Max file size", "RLIMIT_DATA": "Max data size",
                "RLIMIT_STACK": "Max stack size", "RLIMIT_CORE": "Max core file size",
                "RLIMIT_RSS": "Max resident set", "RLIMIT_NPROC": "Max processes",
                "RLIMIT_NOFILE": "Max open files", "RLIMIT_MEMLOCK": "Max locked memory",
                "RLIMIT_AS": "Max address space", "RLIMIT_LOCKS": "Max file locks",
                "RLIMIT_SIGPENDING": "Max pending signals", "RLIMIT_MSGQUEUE": "Max msgqueue size",
                "RLIMIT_NICE": "Max nice priority", "RLIMIT_RTPRIO": "Max realtime priority",
                "RLIMIT_RTTIME": "Max realtime timeout"}
NS_FILES = {"user": "user", "pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "mount": "mnt",
            "cgroup": "cgroup", "time": "time"}


def pyrunc(root: Path, *args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """Output in files: a created container keeps the runtime's stdio open (pipes would not end)."""
    from tests.conftest import run_to_files

    return run_to_files([PYRUNC, "--root", str(root), *args], cwd=cwd, timeout=timeout)


def mountinfo(pid: int) -> list[dict]:
    out = []
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        f = line.split()
        sep = f.index("-")
        tags = {o.split(":", 1)[0] for o in f[6:sep]}
        prop = ("shared" if "shared" in tags else "slave" if "master" in tags
                else "unbindable" if "unbindable" in tags else "private")
        out.append({"point": _unescape(f[4]), "type": f[sep + 1], "flags": set(f[5].split(",")), "propagation": prop})
    return out


def _unescape(text: str) -> str:
    return text.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def _words(flags: set[str]) -> set[str]:
    return {w for w in flags if w in FLAG_WORDS}


def compare_mounts(plan: dict, pid: int) -> list[str]:
    want = plan.get("mounts") or []
    got = mountinfo(pid)
    diffs = []
    wpoints = [(m["point"], m["type"]) for m in want]
    gpoints = [(m["point"], m["type"]) for m in got]
    if wpoints != gpoints:
        return [f"mount table differs:\n  plan:   {wpoints}\n  actual: {gpoints}"]
    for w, g in zip(want, got, strict=True):
        wf = _words(set(w["flags"].split(",")))
        gf = _words(g["flags"])
        if wf != gf:
            diffs.append(f"{w['point']} ({w['origin']}): flags plan {sorted(wf)} actual {sorted(gf)}")
        if w.get("propagation_set") and w["propagation"] != g["propagation"]:
            diffs.append(f"{w['point']} ({w['origin']}): propagation plan {w['propagation']} "
                         f"actual {g['propagation']}")
    return diffs


# -- cgroups -------------------------------------------------------------------------------------

def _cpus(text: str) -> set[int]:
    out: set[int] = set()
    for part in text.replace("\n", ",").split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def _page(value: str) -> str:
    """Byte limits read back rounded down to the page size; "max" and v1's -1 as themselves."""
    try:
        n = int(value)
    except ValueError:
        return value
    return str(n - n % os.sysconf("SC_PAGE_SIZE")) if n > 0 else str(n)


def same_value(name: str, wrote: str, read: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    wrote, read = wrote.strip(), read.strip()
    if base.endswith(("cpuset.cpus", "cpuset.mems")):
        return _cpus(wrote) == _cpus(read)
    if base in ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes",
                "memory.kmem.tcp.limit_in_bytes", "memory.max", "memory.low", "memory.high", "memory.min",
                "memory.swap.max") or base.startswith("hugetlb."):
        if wrote == "-1":
            return int(read) >= (1 << 62)
        return _page(wrote) == _page(read)
    if base == "memory.oom_control":
        return f"oom_kill_disable {wrote}" in read.splitlines()
    if base == "cgroup.subtree_control":
        return {c.lstrip("+") for c in wrote.split()} <= set(read.split())
    if base in ("io.max", "io.weight", "io.bfq.weight", "rdma.max") or base.startswith("blkio.throttle"):
        key = wrote.split()[0]
        lines = [ln for ln in read.splitlines() if ln.split()[:1] == [key]]
        return bool(lines) and all(tok in lines[0].split() for tok in wrote.split()[1:])
    if base == "cpu.max":
        w, r = wrote.split(), read.split()
        return w[0] == r[0] and (len(w) < 2 or w[1] == r[1])
    if base == "net_prio.ifpriomap":
        return wrote in read.splitlines()
    return wrote == read


def expected_devices_list(writes: list[list[str]]) -> dict[tuple[str, str], set[str]] | None:
    """The v1 devices.list after the plan's device writes, when they start by denying all."""
    rules: dict[tuple[str, str], set[str]] = {}
    reset = False
    for f, value, _ in writes:
        base = f.rsplit("/", 1)[-1]
        if base not in ("devices.allow", "devices.deny"):
            continue
        typ, dev, access = value.split()
        if base == "devices.deny" and typ == "a" and dev == "*:*" and access == "rwm":
            rules, reset = {}, True
        elif base == "devices.allow" and reset:
            rules.setdefault((typ, dev), set()).update(access)
        elif base == "devices.deny" and reset:
            left = rules.get((typ, dev), set()) - set(access)
            if left:
                rules[(typ, dev)] = left
            else:
                rules.pop((typ, dev), None)
    return rules if reset else None


def compare_cgroup(plan: dict) -> list[str]:
    cg = plan.get("cgroup") or {}
    diffs = []
    for d in cg.get("mkdir") or []:
        if not os.path.isdir(d):
            diffs.append(f"cgroup directory {d} was planned but not made")
    writes = cg.get("writes") or []
    devices_dir = None
    last = {f: value for f, value, _ in writes}  # a file written twice holds the second value
    for f, value in last.items():
        base = f.rsplit("/", 1)[-1]
        if base in ("devices.allow", "devices.deny"):
            devices_dir = f.rsplit("/", 1)[0]
            continue
        try:
            read = Path(f).read_text()
        except OSError as e:
            diffs.append(f"{f}: planned write {value!r}, but reading it back: {e.strerror}")
            continue
        if not same_value(f, value, read):
            diffs.append(f"{f}: planned {value!r}, cgroupfs says {read.strip()!r}")
    want = expected_devices_list(writes)
    if devices_dir and want is not None:
        got: dict[tuple[str, str], set[str]] = {}
        for line in Path(devices_dir, "devices.list").read_text().splitlines():
            typ, dev, access = line.split()
            got.setdefault((typ, dev), set()).update(access)
        if got != want:
            diffs.append(f"{devices_dir}/devices.list: planned {sorted(want.items())}, got {sorted(got.items())}")
    return diffs


# -- capabilities, namespaces, rlimits -----------------------------------------------------------

def status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def mask(names: list[str]) -> int:
    from pyrunc.security.capabilities import NUMBERS

    return sum(1 << NUMBERS[n] for n in names)


def compare_caps(sets: dict | None, pid: int, what: str) -> list[str]:
    if sets is None:
        return []
    st = status(pid)
    return [f"{what} {which}: plan {sets[which]} ({mask(sets[which]):#x}), /proc says {st[field]}"
            for which, field in CAP_SETS.items() if int(st[field], 16) != mask(sets[which])]


def compare_namespaces(plan: dict, pid: int) -> list[str]:
    diffs = []
    for row in plan.get("namespaces") or []:
        f = NS_FILES[row["type"]]
        try:
            theirs = os.readlink(f"/proc/{pid}/ns/{f}")
        except OSError:
            continue
        mine = os.readlink(f"/proc/self/ns/{f}")
        if row["action"] == "host" and theirs != mine:
            diffs.append(f"{row['type']} namespace: plan says the host's, the container has its own")
        if row["action"] == "new" and theirs == mine:
            diffs.append(f"{row['type']} namespace: plan says new, the container shares the host's")
        if row["action"] == "join" and theirs != os.readlink(row["path"]):
            diffs.append(f"{row['type']} namespace: plan says join {row['path']}, the container has {theirs}")
    return diffs


def compare_rlimits(plan: dict, pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/limits").read_text()
    diffs = []
    for r in plan.get("rlimits") or []:
        label = RLIMIT_NAMES[r["type"]]
        line = next(ln for ln in text.splitlines() if ln.startswith(label))
        soft, hard = line[len(label):].split()[:2]

        def num(v: str) -> int:
            return (1 << 64) - 1 if v == "unlimited" else int(v)

        if (num(soft), num(hard)) != (r["soft"] % (1 << 64), r["hard"] % (1 << 64)):
            diffs.append(f"{r['type']}: plan {r['soft']}:{r['hard']}, /proc says {soft}:{hard}")
    return diffs


# -- one bundle ----------------------------------------------------------------------------------

# Failures only running the bundle can show: a hook's own exit status or time-out (the plan
# never runs a hook, that would be doing what it only plans).
RUN_TIME_ONLY = re.compile(r"hook #\d+ \(.*\): (exit status \d+|timeout after|killed by signal)")


class Outcome:
    """What happened to one bundle: ``kind`` is "compared", "both refused" or a disagreement."""

    def __init__(self, kind: str, diffs: list[str] | None = None, detail: str = ""):
        self.kind = kind
        self.diffs = diffs or []
        self.detail = detail

    @property
    def agrees(self) -> bool:
        return not self.diffs and self.kind in ("compared", "both refused")

    def __repr__(self) -> str:
        return f"Outcome({self.kind}: {self.detail}; " + "; ".join(self.diffs) + ")"


class ConsoleSocket:
    """A console socket that takes the pty master create sends (a terminal container needs one
    when create detaches) and keeps it open until closed."""

    def __init__(self) -> None:
        import socket
        import tempfile
        import threading

        self.dir = tempfile.mkdtemp(prefix="plan-tty-", dir="/tmp")  # sun_path is short
        self.path = os.path.join(self.dir, "c.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(4)
        self.fds: list[int] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        import socket

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    _, fds, _, _ = socket.recv_fds(conn, 4096, 4)
                    self.fds += fds
                except OSError:
                    pass

    def close(self) -> None:
        import shutil

        self.sock.close()
        for fd in self.fds:
            os.close(fd)
        shutil.rmtree(self.dir, ignore_errors=True)


def differential(bundle: Path, cid: str, root: Path, flags: list[str] | None = None) -> Outcome:
    """`plan` then `create` (and `start`) the bundle with a private --root; compare; delete.
    A terminal container gets a console socket of ours (both commands are told of it)."""
    flags = list(flags or [])
    console = None
    try:
        config = json.loads((bundle / "config.json").read_text())
        terminal = bool(config["process"]["terminal"])
    except (ValueError, KeyError, TypeError):
        terminal = False
    if terminal:
        console = ConsoleSocket()
        flags += ["--console-socket", console.path]
    try:
        return _differential(bundle, cid, root, flags)
    finally:
        if console is not None:
            console.close()


def _differential(bundle: Path, cid: str, root: Path, flags: list[str]) -> Outcome:
    p = pyrunc(root, "plan", "--format", "json", *flags, cid, cwd=bundle)
    try:
        plan = json.loads(p.stdout) if p.stdout.strip() else None
    except ValueError:
        return Outcome("plan printed no JSON", detail=p.stdout[-500:] + p.stderr[-500:])
    if plan is None:  # a config error: create must refuse it too
        c = pyrunc(root, "create", *flags, cid, cwd=bundle)
        pyrunc(root, "delete", "--force", cid, cwd=bundle)
        if c.returncode == 0:
            return Outcome("plan refused, create ran", detail=p.stderr.strip())
        return Outcome("both refused", detail=p.stderr.strip())
    c = pyrunc(root, "create", *flags, cid, cwd=bundle)
    try:
        if c.returncode != 0:
            if plan["problems"]:
                return Outcome("both refused", detail=f"plan: {plan['problems']}; create: {c.stderr.strip()}")
            if RUN_TIME_ONLY.search(c.stderr):
                return Outcome("both refused", detail=f"a hook failed when run: {c.stderr.strip()}")
            return Outcome("create failed, plan found no problem", detail=c.stderr.strip())
        if plan["problems"]:
            return Outcome("plan found problems, create ran", detail=str(plan["problems"]))
        pid = json.loads(pyrunc(root, "state", cid, cwd=bundle).stdout)["pid"]
        diffs = compare_mounts(plan, pid)
        diffs += compare_cgroup(plan)
        caps = plan.get("capabilities")
        diffs += compare_caps(caps and caps["installed"], pid, "created")
        diffs += compare_namespaces(plan, pid)
        diffs += compare_rlimits(plan, pid)
        if caps and pyrunc(root, "start", cid, cwd=bundle).returncode == 0:
            if wait_exec(pid):
                diffs += compare_caps(caps["after_exec"], pid, "after execve")
        return Outcome("compared", diffs)
    finally:
        pyrunc(root, "delete", "--force", cid, cwd=bundle)


def wait_exec(pid: int, timeout: float = 5) -> bool:
    """The program runs (the init has exec'd: its comm is no longer python's)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if "python" not in Path(f"/proc/{pid}/comm").read_text() and "pyrunc" not in \
                    Path(f"/proc/{pid}/comm").read_text():
                return True
        except OSError:
            return False
        time.sleep(0.01)
    return False
