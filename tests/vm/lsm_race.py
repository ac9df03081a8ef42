"""The LSM half of CVE-2025-52881, shared by the AppArmor and SELinux guests.

A co-tenant sharing the rootfs swaps the directory ``proc`` with a fake tree in a loop
(renameat2 RENAME_EXCHANGE) while containers are started with an exec label. A runtime that
writes the label by path (``/proc/thread-self/attr/...``) after pivot_root writes it into the
fake tree whenever the swap wins, and that container runs unconfined. Both trees carry canary
attr files; every container that starts must run under its label (read from the host), and no
canary may change.
"""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path

CANARY = "canary\n"
ATTRS = ("attr/exec", "attr/apparmor/exec", "attr/current")


def _renameat2_exchange():
    fn = ctypes.CDLL(None, use_errno=True).renameat2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return lambda a, b: fn(-100, a.encode(), -100, b.encode(), 2)  # AT_FDCWD, RENAME_EXCHANGE


def plant(rootfs: Path) -> list[tuple[int, str]]:
    """Canary attr files under self/ and thread-self/ of both trees: (directory fd, relative name)."""
    out = []
    for tree in ("proc", "fake"):
        base = os.open(rootfs / tree, os.O_RDONLY | os.O_DIRECTORY) if (rootfs / tree).is_dir() else None
        if base is None:
            (rootfs / tree).mkdir()
            base = os.open(rootfs / tree, os.O_RDONLY | os.O_DIRECTORY)
        for who in ("self", "thread-self"):
            for attr in ATTRS:
                path = rootfs / tree / who / attr
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(CANARY)
                out.append((base, f"{who}/{attr}"))
    return out


def read_at(base: int, rel: str) -> str:
    fd = os.open(rel, os.O_RDONLY, dir_fd=base)
    try:
        return os.read(fd, 200).decode()
    finally:
        os.close(fd)


def race(pyrunc, bundle, key: str, value: str, expect: str, runs: int) -> tuple[int, list[str]]:
    """Start `runs` containers with process[key] = value while proc is swapped; return how many
    started and what went wrong (canaries written, containers not under their label)."""
    canaries = plant(bundle.rootfs)
    bundle.config["process"][key] = value
    bundle.config["process"]["args"] = ["sleep", "60"]
    bundle.write()
    exchange = _renameat2_exchange()
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            exchange(str(bundle.rootfs / "proc"), str(bundle.rootfs / "fake"))

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    ok, problems = 0, []
    try:
        for i in range(runs):
            cid = f"race{i}"
            p = pyrunc("run", "-d", cid, bundle=bundle)
            if p.returncode == 0:
                ok += 1
                pid = pyrunc.state(cid)["pid"]
                label = Path(f"/proc/{pid}/attr/current").read_text().strip("\0\n ")
                if label != expect:
                    problems.append(f"run {i}: the container runs as {label!r}, not {expect!r}")
            elif "Traceback" in p.stderr or len(p.stderr.strip().splitlines()) != 1:
                problems.append(f"run {i}: {p.stderr.strip()}")
            pyrunc("delete", "--force", cid)
            for base, rel in canaries:
                got = read_at(base, rel)
                if got != CANARY:
                    problems.append(f"run {i}: a label was written into the fake {rel}: {got!r}")
                    with open(os.open(rel, os.O_WRONLY | os.O_TRUNC, dir_fd=base), "w") as f:
                        f.write(CANARY)
    finally:
        stop.set()
        t.join()
        for base in {b for b, _ in canaries}:
            os.close(base)
    return ok, problems
