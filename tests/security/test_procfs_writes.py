"""CVE-2025-52881: procfs writes made on a container's behalf cannot be redirected (T12).

- The race (issue 24's attack): two containers share a rootfs; one, with that rootfs as a volume,
  swaps the directory ``proc`` with a fake tree in a tight loop (renameat2 RENAME_EXCHANGE) while
  the other is started 200 times with a ``linux.sysctl`` entry. The fake tree's
  ``sys/kernel/domainname`` is a canary (so is the one under the real ``proc`` directory: which
  of the two ends up under the procfs mount depends on the race). No run may write a canary;
  runs may fail, with one line each.
- Deterministic, on the writer itself (linux/procfs.py), in a private mount namespace: a tmpfs
  file bound over /proc/sys/kernel/domainname and over /proc/thread-self/attr/exec cannot catch
  the sysctl or the LSM-attribute write, with a private procfs (the write reaches the kernel) and
  with the host-/proc fallback (RESOLVE_NO_XDEV refuses to cross the bind).

Shown failing on the code before the fix (commit 3f125a3 in /tmp/i24-base; see the commit
message): the race wrote the sysctl value into a canary, and the deterministic test cannot run
there (no linux/procfs.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, Bundle, base_config
from tests.security.test_escapes import _renameat2_exchange

SWAPPER = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
int main(int argc, char **argv)
{
	for (;;)
		renameat2(AT_FDCWD, argv[1], AT_FDCWD, argv[2], RENAME_EXCHANGE);
}
"""
CANARY = "canary\n"
VALUE = "from-sysctl"
RUNS = 200


class Canary:
    """sys/kernel/domainname in one of the two trees, followed by a directory fd: the racer keeps
    swapping the trees' names, the fd stays on the same tree."""

    def __init__(self, tree: Path):
        (tree / "sys" / "kernel").mkdir(parents=True, exist_ok=True)
        (tree / "sys" / "kernel" / "domainname").write_text(CANARY)
        self.name = tree.name
        self.dir = os.open(tree / "sys" / "kernel", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def read(self) -> str:
        fd = os.open("domainname", os.O_RDONLY | os.O_CLOEXEC, dir_fd=self.dir)
        try:
            return os.read(fd, 100).decode()
        finally:
            os.close(fd)

    def reset(self) -> None:
        fd = os.open("domainname", os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC, dir_fd=self.dir)
        try:
            os.write(fd, CANARY.encode())
        finally:
            os.close(fd)


def plant_fake(rootfs: Path) -> list[Canary]:
    """A fake proc tree beside the real directory; both carry a canary domainname."""
    return [Canary(rootfs / name) for name in ("proc", "fake")]


def swapper_binary(tmp_path: Path) -> Path | None:
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None
    src = tmp_path / "swap.c"
    src.write_text(SWAPPER)
    out = tmp_path / "swap"
    if subprocess.run([cc, "-O2", "-static", "-o", str(out), str(src)], capture_output=True).returncode:
        return None
    return out


@pytest.mark.race
@pytest.mark.cve("CVE-2025-52881")
def test_sysctl_write_while_a_co_tenant_swaps_proc(pyrunc, bundle, tmp_path, rootfs_template):
    """A container swapping `proc` of a shared rootfs with a fake tree; 200 starts with a sysctl.

    The swapping container is a static renameat2 loop with the victim's rootfs as its volume;
    without a C compiler a host thread does the same renames (the kernel cannot tell).
    """
    canaries = plant_fake(bundle.rootfs)
    bundle.config["linux"]["sysctl"] = {"kernel.domainname": VALUE}
    bundle.config["process"]["args"] = ["true"]
    bundle.write()
    swap = swapper_binary(tmp_path)
    stop = threading.Event()
    racer = None
    if swap is not None:
        cfg = base_config(["/swap", "/shared/proc", "/shared/fake"])
        cfg["linux"]["cgroupsPath"] = bundle.config["linux"]["cgroupsPath"] + "-swap"
        cfg["mounts"].append({"destination": "/shared", "type": "bind", "source": str(bundle.rootfs),
                              "options": ["rbind"]})
        attacker = Bundle(tmp_path / "attacker", cfg)
        attacker.path.mkdir()
        shutil.copytree(rootfs_template, attacker.rootfs, symlinks=True)
        shutil.copy2(swap, attacker.rootfs / "swap")
        pyrunc("run", "-d", "swapper", bundle=attacker, check=True)
    else:
        exchange = _renameat2_exchange()

        def loop() -> None:
            while not stop.is_set():
                exchange(str(bundle.rootfs / "proc"), str(bundle.rootfs / "fake"))

        racer = threading.Thread(target=loop, daemon=True)
        racer.start()
    ok = 0
    written: list[str] = []
    unclean: list[str] = []
    try:
        time.sleep(0.2)
        for i in range(RUNS):
            p = pyrunc("run", f"s{i}", bundle=bundle)
            pyrunc.ids.discard(f"s{i}")
            for c in canaries:
                got = c.read()
                if got != CANARY:
                    written.append(f"run {i}: the tree first named {c.name}: {got!r}")
                    c.reset()
            if p.returncode == 0:
                ok += 1
            elif "Traceback" in p.stderr or len(p.stderr.strip().splitlines()) != 1:
                unclean.append(f"run {i}: {p.stderr.strip()}")
    finally:
        if racer is not None:
            stop.set()
            racer.join()
        else:
            pyrunc("delete", "--force", "swapper")
        for c in canaries:
            os.close(c.dir)
    assert written == [], f"{len(written)} of {RUNS} runs wrote the sysctl into a fake: {written[:5]}"
    assert unclean == [], f"{len(unclean)} failures were not one clean line: {unclean[:5]}"
    assert ok > RUNS // 4, f"only {ok} of {RUNS} runs succeeded: the race proved little"


WRITER = r"""
import errno, os, sys
sys.path.insert(0, sys.argv[1])
from pyrunc.linux import mount as m, procfs
mode, value = sys.argv[2], sys.argv[3]
m.unshare(0x00020000 | 0x04000000)  # CLONE_NEWNS | CLONE_NEWUTS
m.mount(None, "/", None, m.MS_REC | m.MS_PRIVATE)
m.mount("tmpfs", sys.argv[4], "tmpfs", 0, "size=64k")
for name in ("domainname", "exec", "oom"):
    with open(os.path.join(sys.argv[4], name), "w") as f:
        f.write("canary\n")
m.mount(os.path.join(sys.argv[4], "oom"), f"/proc/{os.getpid()}/oom_score_adj", None, m.MS_BIND)
early = []
try:  # stage 1's way: the host's /proc for one open, no handle kept
    os.close(procfs.open_once("self/oom_score_adj", os.O_RDWR))
    early.append("oom-opened")
except OSError as e:
    early.append("oom-" + errno.errorcode[e.errno])
early.append("no-handle" if procfs.kind() is None else "handle-kept")
m.mount(os.path.join(sys.argv[4], "domainname"), "/proc/sys/kernel/domainname", None, m.MS_BIND)
tid = os.readlink("/proc/thread-self")
m.mount(os.path.join(sys.argv[4], "exec"), f"/proc/{tid}/attr/exec", None, m.MS_BIND)
if mode == "host":
    def refuse(**kw):
        raise OSError(errno.EPERM, "no private procfs in this test")
    procfs.open_private = refuse
kind = procfs.prepare(sysctl=True)
out = [kind] + early
try:
    procfs.write_sysctl("kernel.domainname", value)
    out.append("sysctl-written")
except OSError as e:
    out.append("sysctl-" + errno.errorcode[e.errno])
try:
    fd = procfs.open("thread-self/attr/exec", os.O_WRONLY)
    out.append("attr-opened-on-procfs" if m.fstatfs_type(fd) == procfs.PROC_SUPER_MAGIC else "attr-elsewhere")
    os.close(fd)
except OSError as e:
    out.append("attr-" + errno.errorcode[e.errno])
for name in ("domainname", "exec", "oom"):
    with open(os.path.join(sys.argv[4], name)) as f:
        out.append(name + "=" + f.read().strip())
if kind != "host":
    fd = m.openat2(procfs._sysctl, "kernel/domainname", os.O_RDONLY, 0, procfs.RESOLVE)
    out.append("kernel=" + os.read(fd, 100).decode().strip())
print(" ".join(out))
"""


@pytest.mark.cve("CVE-2025-52881")
@pytest.mark.cve("CVE-2019-16884")
@pytest.mark.parametrize("mode", ["private", "host"])
def test_procfs_writer_cannot_be_redirected_by_a_bind(tmp_path, mode):
    """The writer on its own, with a tmpfs file bound over the sysctl, the exec attribute and
    oom_score_adj (the last opened as stage 1 does, through a one-call host handle)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    (tmp_path / "t").mkdir()
    p = subprocess.run([sys.executable, "-I", "-c", WRITER, str(REPO), mode, VALUE, str(tmp_path / "t")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = p.stdout.split()
    assert "domainname=canary" in out and "exec=canary" in out and "oom=canary" in out, out
    assert "oom-EXDEV" in out and "no-handle" in out, out
    if mode == "private":
        assert out[0] == "private-pid" and "sysctl-written" in out and f"kernel={VALUE}" in out, out
        assert "attr-opened-on-procfs" in out, out
    else:
        assert out[0] == "host", out
        assert "sysctl-EXDEV" in out and "attr-EXDEV" in out, out
