"""One runtime under test: its command, a private --root, and cleanup of what it created."""

from __future__ import annotations

import ctypes
import itertools
import os
import re
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

PR_SET_CHILD_SUBREAPER = 36
_ids = itertools.count()


class RuntimeFailed(RuntimeError):
    """A runtime command exited non-zero; ``reason`` is the error it printed."""

    def __init__(self, what: str, reason: str):
        super().__init__(f"{what}: {reason}")
        self.reason = reason


def error_reason(stderr: bytes) -> str:
    """The last error a runtime printed, without logrus' time/level decoration."""
    lines = [ln for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
    if not lines:
        return ""
    last = lines[-1]
    m = re.search(r'msg="((?:[^"\\]|\\.)*)"', last)
    return m.group(1) if m else last.strip()


def become_subreaper() -> None:
    """Adopt container inits like a shim does, so their exit can be waited for and reaped."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def reap_zombies() -> int:
    """Reap every exited child; return how many (call only when no subprocess is pending)."""
    n = 0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return n
        if pid == 0:
            return n
        n += 1


def id_prefix() -> str:
    return f"bench-{os.getpid()}-"


def new_id(tag: str) -> str:
    """A container id unique to this benchmark process."""
    return f"{id_prefix()}{tag}-{next(_ids)}"


def _own_cgroup_dirs() -> list[str]:
    """This process's cgroup directory in every mounted hierarchy (v1 controllers and unified)."""
    mounts: dict[str, str] = {}
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype == "cgroup2":
                mounts["unified"] = fields[4]
            elif fstype == "cgroup":
                for opt in fields[-1].split(","):
                    if opt not in ("rw", "ro", "nosuid", "nodev", "noexec", "relatime"):
                        mounts.setdefault(opt, fields[4])
    out = set()
    with open("/proc/self/cgroup", encoding="utf-8") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            for c in ctrls.split(",") if ctrls else ["unified"]:
                if c in mounts:
                    out.add(os.path.join(mounts[c], path.lstrip("/")))
    return sorted(out)


def sweep_leaked_cgroups() -> list[str]:
    """Kill and remove cgroups named after this run's ids that no runtime deleted (a runtime bug).

    Only directories whose name starts with this process's id prefix are
    touched: those were created for containers this benchmark created.
    """
    leaked = []
    for base in _own_cgroup_dirs():
        try:
            names = [n for n in os.listdir(base) if n.startswith(id_prefix())]
        except OSError:
            continue
        for name in names:
            path = os.path.join(base, name)
            leaked.append(path)
            for _ in range(100):
                try:
                    with open(os.path.join(path, "cgroup.procs"), encoding="ascii") as f:
                        pids = [int(x) for x in f.read().split()]
                except OSError:
                    pids = []
                for pid in pids:
                    try:
                        os.kill(pid, 9)
                    except ProcessLookupError:
                        pass
                reap_zombies()
                try:
                    os.rmdir(path)
                    break
                except OSError:
                    time.sleep(0.02)
    return sorted({os.path.basename(p) for p in leaked})


@dataclass
class Runtime:
    """A runtime's command line (``argv``) with its own state root under the temp dir."""

    name: str
    argv: list[str]
    root: str
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    def cmd(self, *args: str) -> list[str]:
        return [*self.argv, "--root", self.root, *args]

    def call(self, *args: str) -> float:
        """Run one command to completion; return its wall time in seconds; raise if it failed.

        stderr goes to a file, not a pipe: a created container's init inherits
        the runtime's stdio and would hold a pipe open until it exits. No
        timeout either: with one, Popen.wait polls with sleeps of up to 50 ms,
        which quantizes every measurement.
        """
        with tempfile.TemporaryFile() as err:
            t0 = time.perf_counter()
            p = subprocess.run(self.cmd(*args), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=err, env=self.env, check=False)
            dt = time.perf_counter() - t0
            if p.returncode != 0:
                err.seek(0)
                raise RuntimeFailed(f"{self.name} {' '.join(args)}: exit {p.returncode}",
                                    error_reason(err.read()))
        return dt

    def output(self, *args: str) -> bytes:
        """Run one command and return its stdout (raise if it failed)."""
        p = subprocess.run(self.cmd(*args), stdin=subprocess.DEVNULL, capture_output=True,
                           env=self.env, check=False)
        if p.returncode != 0:
            raise RuntimeFailed(f"{self.name} {' '.join(args)}: exit {p.returncode}",
                                error_reason(p.stderr))
        return p.stdout

    def spawn(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(self.cmd(*args), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=self.env)

    def ids(self) -> list[str]:
        """Container ids present under our root (state directories)."""
        try:
            return sorted(n for n in os.listdir(self.root) if os.path.isdir(os.path.join(self.root, n)))
        except FileNotFoundError:
            return []

    def delete_force(self, cid: str) -> bool:
        """delete --force one container; True on success."""
        p = subprocess.run(self.cmd("delete", "--force", cid), stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.env,
                           timeout=60, check=False)
        return p.returncode == 0

    def cleanup(self, workers: int = 4) -> list[str]:
        """delete --force everything under our root; return ids that could not be removed."""
        from concurrent.futures import ThreadPoolExecutor

        ids = self.ids()
        if ids:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(self.delete_force, ids))
        reap_zombies()
        return self.ids()

    def describe(self) -> str:
        return shlex.join(self.argv)


def runtime_works(rt: Runtime) -> str | None:
    """None if ``<runtime> --version`` succeeds, else its error output."""
    p = subprocess.run([*rt.argv, "--version"], capture_output=True, env=rt.env, check=False)
    if p.returncode == 0:
        return None
    return (p.stderr or p.stdout).decode(errors="replace").strip() or f"exit {p.returncode}"
