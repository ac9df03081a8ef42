"""pyrunc beside runc 1.5.1 on the same bundle: the behaviours runc changed after 1.1 (issue 22).

runc 1.5.1 comes from ../shared/oracle (or $PYRUNC_SHARED): each test runs the bundle under both
runtimes and requires the same observable result, plus the value runc 1.5.1 was measured to give
(README, "Behaviour of runc 1.5", lists them). Without the oracle the tests skip with the reason.
The cgroup v2 ones (cpu.weight) are in tests/vm/test_runc15_v2.py.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import RUNC15, run_to_files

pytestmark = pytest.mark.skipif(not RUNC15.exists(), reason=f"runc 1.5.1 oracle not present ({RUNC15})")


def wrapped(rt, wrapper: list[str], *args: str, bundle, timeout: float = 60):
    """``wrapper... RUNTIME --root ROOT args...`` in the bundle (the container is cleaned up after)."""
    bundle.write()
    rt.ids.add(args[-1])
    return run_to_files([*wrapper, *rt.cmd(*args)], timeout=timeout, cwd=str(bundle.path))


def own_cgroup(bundle, rt) -> None:
    """A cgroupsPath per runtime: containers that stay alive must not share one (runc refuses)."""
    if not hasattr(bundle, "base_cgroup"):
        bundle.base_cgroup = bundle.config["linux"]["cgroupsPath"]
    bundle.config["linux"]["cgroupsPath"] = f"{bundle.base_cgroup}-{rt.name}"


# -- loopback where AF_INET is forbidden -----------------------------------------------------

NO_INET = r'''
import ctypes, os, sys
lib = ctypes.CDLL("libseccomp.so.2")
lib.seccomp_init.restype = ctypes.c_void_p
ctx = ctypes.c_void_p(lib.seccomp_init(ctypes.c_uint32(0x7fff0000)))   # SCMP_ACT_ALLOW
class Arg(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("a", ctypes.c_uint64), ("b", ctypes.c_uint64)]
for family in (2, 10):  # socket(AF_INET|AF_INET6, ...) fails EAFNOSUPPORT, as under
    # systemd's RestrictAddressFamilies=AF_UNIX AF_NETLINK
    assert lib.seccomp_rule_add(ctx, ctypes.c_uint32(0x00050000 | 97), ctypes.c_int(41), ctypes.c_uint(1),
                                Arg(0, 4, family, 0)) == 0
lib.seccomp_attr_set(ctx, 2, 0)  # no NO_NEW_PRIVS: we are root
assert lib.seccomp_load(ctx) == 0
os.execv(sys.argv[1], sys.argv[1:])
'''


def test_loopback_comes_up_without_af_inet(pyrunc, runc15, bundle, tmp_path):
    wrapper = tmp_path / "no-inet.py"
    wrapper.write_text(NO_INET)
    bundle.config["process"]["args"] = ["cat", "/sys/class/net/lo/flags"]
    for rt in (pyrunc, runc15):
        p = wrapped(rt, [sys.executable, "-I", str(wrapper)], "run", f"lo-{rt.name}", bundle=bundle)
        assert p.returncode == 0 and p.stdout.strip() == "0x9", (rt.name, p.stderr)


# -- linux.rootfsPropagation -----------------------------------------------------------------

def _root_tags(mountinfo: str, points=("/", "/proc", "/dev")) -> dict[str, list[str]]:
    """Optional fields of the given mount points, peer group numbers dropped (shared:7 -> shared)."""
    tags = {}
    for line in mountinfo.splitlines():
        f = line.split()
        if f[4] in points:
            tags[f[4]] = sorted(re.sub(r":\d+$", "", t) for t in f[6:f.index("-")])
    return tags


@pytest.mark.parametrize(("prop", "expected"), [
    ("shared", {"/": ["shared"], "/proc": [], "/dev": []}),
    ("rshared", {"/": ["shared"], "/proc": ["shared"], "/dev": ["shared"]}),
    ("unbindable", {"/": ["unbindable"], "/proc": [], "/dev": []}),
    ("slave", {"/": [], "/proc": [], "/dev": []}),
    ("private", {"/": [], "/proc": [], "/dev": []}),
])
def test_rootfs_propagation_as_runc_151(pyrunc, runc15, bundle, prop, expected):
    bundle.config["linux"]["rootfsPropagation"] = prop
    bundle.config["process"]["args"] = ["cat", "/proc/self/mountinfo"]
    seen = {}
    for rt in (pyrunc, runc15):
        p = rt("run", f"prop-{rt.name}", bundle=bundle)
        assert p.returncode == 0, (rt.name, p.stderr)
        seen[rt.name] = _root_tags(p.stdout)
    assert seen["pyrunc"] == seen["runc-1.5.1"] == expected


def test_private_propagation_without_pivot_root_is_refused_as_runc(pyrunc, runc15, bundle):
    bundle.config["linux"]["rootfsPropagation"] = "rprivate"
    for rt in (pyrunc, runc15):
        p = rt("run", "--no-pivot", f"np-{rt.name}", bundle=bundle)
        assert p.returncode == 1, rt.name
        assert "rootfsPropagation of [r]private is not safe without pivot_root" in p.stderr, p.stderr
        assert rt("state", f"np-{rt.name}").returncode != 0, f"{rt.name} left the container behind"


# -- masked directories ----------------------------------------------------------------------

def test_masked_directories_share_one_read_only_tmpfs(pyrunc, runc15, bundle):
    (bundle.rootfs / "m1" / "x").mkdir(parents=True)
    (bundle.rootfs / "m2").mkdir()
    (bundle.rootfs / "mf").write_text("secret\n")
    bundle.config["linux"]["maskedPaths"] = ["/m1", "/m2", "/mf", "/proc/acpi", "/sys/firmware"]
    bundle.config["process"]["args"] = ["sh", "-c", "cat /proc/self/mountinfo; touch /m1/y 2>&1; cat /mf"]
    for rt in (pyrunc, runc15):
        p = rt("run", f"mask-{rt.name}", bundle=bundle)
        assert p.returncode == 0, (rt.name, p.stderr)
        dirs = {}
        for line in p.stdout.splitlines():
            f = line.split()
            if len(f) > 6 and f[4] in ("/m1", "/m2", "/proc/acpi", "/sys/firmware"):
                sep = f.index("-")
                dirs[f[4]] = (f[2], f[5].split(","), f[sep + 1], f[sep + 3].split(","))
        assert len(dirs) == 4, (rt.name, p.stdout)
        assert len({dev for dev, *_ in dirs.values()}) == 1, f"{rt.name}: one tmpfs for all: {dirs}"
        for _dev, opts, fstype, sb in dirs.values():
            assert fstype == "tmpfs" and "ro" in opts, (rt.name, opts)
            assert {"ro", "size=4k", "nr_inodes=1"} <= set(sb), (rt.name, sb)
        assert "Read-only file system" in p.stdout and "secret" not in p.stdout, (rt.name, p.stdout)


# -- seccomp: SPEC_ALLOW unless the profile names its flags -----------------------------------

def _load_flags(trace: str) -> str:
    """The flags the filter was loaded with: prctl(PR_SET_SECCOMP) means none."""
    for line in trace.splitlines():
        if "PR_SET_SECCOMP" in line and "filter=" in line:
            return "0"
        m = re.search(r"seccomp\(SECCOMP_SET_MODE_FILTER, ([^,]+), \{len=", line)
        if m:
            return m.group(1)
    raise AssertionError(f"no filter load in:\n{trace[-2000:]}")


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
@pytest.mark.parametrize(("flags", "expected"), [
    (None, "SECCOMP_FILTER_FLAG_SPEC_ALLOW"), ([], "0"), (["SECCOMP_FILTER_FLAG_LOG"], "SECCOMP_FILTER_FLAG_LOG"),
], ids=["absent", "empty", "log"])
def test_seccomp_flags_as_runc_151(pyrunc, runc15, bundle, tmp_path, flags, expected):
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    if flags is not None:
        profile["flags"] = flags
    bundle.config["linux"]["seccomp"] = profile
    bundle.config["process"]["args"] = ["true"]
    for rt in (pyrunc, runc15):
        trace = tmp_path / f"strace-{rt.name}"
        p = wrapped(rt, ["strace", "-f", "-qq", "-e", "trace=seccomp,prctl", "-o", str(trace)],
                    "run", f"sc-{rt.name}", bundle=bundle, timeout=120)
        assert p.returncode == 0, (rt.name, p.stderr)
        assert _load_flags(trace.read_text()) == expected, rt.name


# -- cgroups on this (hybrid) host -----------------------------------------------------------

def _cgroup_file(pid: int, controller: str, name: str) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        if controller in ctrls.split(","):
            return (Path("/sys/fs/cgroup") / controller / path.lstrip("/") / name).read_text().strip()
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():  # pure v2
        path = Path(f"/proc/{pid}/cgroup").read_text().strip()[3:]
        return (Path("/sys/fs/cgroup" + path) / name).read_text().strip()
    raise AssertionError(f"no {controller} cgroup for {pid}")


def test_pids_limit_zero_is_a_limit(pyrunc, runc15, bundle):
    bundle.config["linux"]["resources"] = {"pids": {"limit": 0}}
    bundle.config["process"]["args"] = ["sleep", "60"]
    for rt in (pyrunc, runc15):
        cid = f"pz-{rt.name}"
        own_cgroup(bundle, rt)
        assert rt("run", "-d", cid, bundle=bundle).returncode == 0
        pid = rt.state(cid)["pid"]
        assert _cgroup_file(pid, "pids", "pids.max") == "1", rt.name  # 0 -> 1, as runc 1.4+
        assert rt("update", "--pids-limit", "7", cid).returncode == 0
        assert rt("update", "--pids-limit", "0", cid).returncode == 0
        assert _cgroup_file(pid, "pids", "pids.max") == "1", rt.name


def _block_devices(n: int) -> list[tuple[int, int]]:
    found = []
    for d in sorted(Path("/sys/block").iterdir()):
        major, minor = (d / "dev").read_text().strip().split(":")
        if d.name.startswith(("loop", "vd", "sd", "nvme", "zram")) and (int(major), int(minor)) not in found:
            found.append((int(major), int(minor)))
    if len(found) < n:
        pytest.skip(f"needs {n} block devices, /sys/block has {found}")
    return found[:n]


def test_update_merges_blkio_throttles_by_device(pyrunc, runc15, bundle, tmp_path):
    if not Path("/sys/fs/cgroup/blkio").is_dir():
        pytest.skip("no v1 blkio hierarchy here (the v2 io.max case is the same merge)")
    (a, b) = _block_devices(2)
    bundle.config["linux"]["resources"] = {"blockIO": {
        "throttleReadBpsDevice": [{"major": a[0], "minor": a[1], "rate": 1048576}]}}
    bundle.config["process"]["args"] = ["sleep", "60"]
    patches = [{"blockIO": {"throttleReadBpsDevice": [{"major": b[0], "minor": b[1], "rate": 2097152}]}},
               {"blockIO": {"throttleReadBpsDevice": [{"major": a[0], "minor": a[1], "rate": 4096}]}},
               {"blockIO": {"throttleWriteIOPSDevice": [{"major": a[0], "minor": a[1], "rate": 50}]}}]
    seen = {}
    for rt in (pyrunc, runc15):
        cid = f"bio-{rt.name}"
        own_cgroup(bundle, rt)
        assert rt("run", "-d", cid, bundle=bundle).returncode == 0
        pid = rt.state(cid)["pid"]
        files = []
        for i, patch in enumerate(patches):
            f = tmp_path / f"{rt.name}-{i}.json"
            f.write_text(json.dumps(patch))
            p = rt("update", "-r", str(f), cid)
            assert p.returncode == 0, (rt.name, p.stderr)
            files.append([_cgroup_file(pid, "blkio", n) for n in ("blkio.throttle.read_bps_device",
                                                                  "blkio.throttle.write_iops_device")])
        seen[rt.name] = files
    assert seen["pyrunc"] == seen["runc-1.5.1"]
    read_bps, write_iops = seen["pyrunc"][-1]
    assert sorted(read_bps.splitlines()) == sorted([f"{a[0]}:{a[1]} 4096", f"{b[0]}:{b[1]} 2097152"])
    assert write_iops == f"{a[0]}:{a[1]} 50"


# -- process.ioPriority ------------------------------------------------------------------------

def _ioprio(pid: int) -> tuple[int, int]:
    libc = ctypes.CDLL(None, use_errno=True)
    value = libc.syscall(252, 1, pid)  # ioprio_get(IOPRIO_WHO_PROCESS, pid)
    assert value >= 0, os.strerror(ctypes.get_errno())
    return value >> 13, value & 0x1FFF


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="ioprio_get number is x86_64's")
@pytest.mark.parametrize(("io", "expected"), [
    ({"class": "IOPRIO_CLASS_IDLE"}, (3, 0)), ({"class": "IOPRIO_CLASS_BE"}, (2, 0)),
    ({"class": "IOPRIO_CLASS_BE", "priority": 3}, (2, 3)), ({"class": "IOPRIO_CLASS_BE", "priority": 8}, None),
], ids=["idle-class-only", "be-class-only", "be-3", "be-8-refused"])
def test_io_priority_as_runc_151(pyrunc, runc15, bundle, io, expected):
    bundle.config["process"]["ioPriority"] = io
    bundle.config["process"]["args"] = ["sleep", "60"]
    for rt in (pyrunc, runc15):
        cid = f"io-{rt.name}"
        own_cgroup(bundle, rt)
        p = rt("create", cid, bundle=bundle)
        if expected is None:
            assert p.returncode == 1 and "8" in p.stderr, (rt.name, p.stderr)
            assert rt("state", cid).returncode != 0
            continue
        assert p.returncode == 0, (rt.name, p.stderr)
        assert _ioprio(rt.state(cid)["pid"]) == expected, rt.name


# -- features ------------------------------------------------------------------------------------

def _keys(doc: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in doc.items():
        out.add(prefix + k)
        if isinstance(v, dict) and k != "annotations":
            out |= _keys(v, f"{prefix}{k}.")
    return out


def test_features_has_every_field_runc_151_has(pyrunc, runc15):
    ours = json.loads(pyrunc("features", check=True).stdout)
    theirs = json.loads(runc15("features", check=True).stdout)
    assert _keys(theirs) <= _keys(ours), sorted(_keys(theirs) - _keys(ours))
    lin, their_lin = ours["linux"], theirs["linux"]
    # What the build supports, not what this host mounts: the same on every host.
    assert {k: v for k, v in lin["cgroup"].items() if k != "systemdUser"} == \
        {k: v for k, v in their_lin["cgroup"].items() if k != "systemdUser"}
    assert lin["memoryPolicy"] == their_lin["memoryPolicy"]
    assert lin["namespaces"] == their_lin["namespaces"]
    for key in ("actions", "operators", "knownFlags"):
        assert sorted(lin["seccomp"][key]) == sorted(their_lin["seccomp"][key]), key
    assert set(their_lin["seccomp"]["archs"]) <= set(lin["seccomp"]["archs"])
    assert ours["annotations"].get("io.github.seccomp.libseccomp.version")
    assert "org.systemd.property." in ours["potentiallyUnsafeConfigAnnotations"]
    assert set(theirs["mountOptions"]) - set(ours["mountOptions"]) <= {"remount"}
