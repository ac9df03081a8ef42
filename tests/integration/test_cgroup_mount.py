"""The `cgroup` mount on a cgroup v1 (hybrid) host, side by side with runc (issue 12, defects 3-4).

What the container must see at /sys/fs/cgroup/<hierarchy>: its own cgroup, with the limits the
config set, whether it has a cgroup namespace (a fresh mount, rooted at the namespace's root)
or not (a bind of its own cgroup directory). One mount per hierarchy, whatever other binds of
cgroup directories the host has (an extra bind elsewhere, or one whose cgroup was removed).
The pure v2 case runs in the QEMU lane (tests/vm).
"""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

pytestmark = pytest.mark.skipif(
    not os.path.isdir("/sys/fs/cgroup/memory") or not os.path.isdir("/sys/fs/cgroup/cpu"),
    reason="needs a cgroup v1 (or hybrid) host with memory and cpu hierarchies")

MEMORY_LIMIT = 64 << 20
PIDS_LIMIT = 77
SCRIPT = ("grep ' /sys/fs/cgroup' /proc/self/mountinfo; "
          "echo LIMIT $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); "
          "echo PIDS $(cat /sys/fs/cgroup/pids/pids.max); cat /proc/self/cgroup")


def configure(bundle, *, cgroupns: bool) -> None:
    lin = bundle.config["linux"]
    lin["namespaces"] = [ns for ns in lin["namespaces"] if ns["type"] != "cgroup"]
    if cgroupns:
        lin["namespaces"].append({"type": "cgroup"})
    lin["resources"] = {"memory": {"limit": MEMORY_LIMIT}, "pids": {"limit": PIDS_LIMIT}}
    bundle.config["process"]["args"] = ["sh", "-c", SCRIPT]


def run_probe(runtime, bundle, cid: str) -> dict:
    """Run the probe; {"mounts": {mountpoint: root}, "limit", "pids", "cgroup": {ctrls: path}}."""
    p = runtime("run", cid, bundle=bundle)
    assert p.returncode == 0, p.stderr
    mounts: dict[str, list[str]] = {}
    out = {"mounts": mounts, "cgroup": {}}
    for line in p.stdout.splitlines():
        if " - " in line:
            f = line.split(" - ")[0].split()
            mounts.setdefault(f[4], []).append(f[3])
        elif line.startswith(("LIMIT ", "PIDS ")):
            key, _, value = line.partition(" ")
            out[key.lower()] = value
        elif line.count(":") >= 2:
            _, ctrls, path = line.split(":", 2)
            if ctrls:
                out["cgroup"][ctrls] = path
    return out


def hierarchy_dirs() -> set[str]:
    """The host's v1 hierarchy directories under /sys/fs/cgroup (their container names)."""
    out = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, post = line.split(" - ")
            mp = pre.split()[4]
            if post.split()[0] == "cgroup" and os.path.dirname(mp) == "/sys/fs/cgroup":
                out.add(os.path.basename(mp))
    return out


def check_own_cgroup(rep: dict, *, cgroupns: bool) -> None:
    cg_mounts = {mp: roots for mp, roots in rep["mounts"].items() if mp.count("/") == 4}
    assert set(os.path.basename(mp) for mp in cg_mounts) == hierarchy_dirs(), cg_mounts
    for mp, roots in cg_mounts.items():
        assert len(roots) == 1, f"{mp} mounted {len(roots)} times: {roots}"
        name = os.path.basename(mp)
        want = "/" if cgroupns else rep["cgroup"].get(name, rep["cgroup"].get(f"name={name}"))
        assert roots[0] == want, (mp, roots, rep["cgroup"])
    assert rep["limit"] == str(MEMORY_LIMIT)
    assert rep["pids"] == str(PIDS_LIMIT)


@pytest.mark.parametrize("cgroupns", [True, False], ids=["cgroupns", "host-cgroupns"])
def test_cgroup_mount_shows_own_cgroup(runtime, bundle, cgroupns: bool) -> None:
    """Defect 3: with a cgroup namespace the mounts' roots were /../../.. (the hierarchy's
    root) and the limits invisible; runc shows the container's own cgroup either way."""
    configure(bundle, cgroupns=cgroupns)
    rep = run_probe(runtime, bundle, f"i12cg-own-{uuid.uuid4().hex[:8]}")
    check_own_cgroup(rep, cgroupns=cgroupns)


@pytest.fixture
def extra_cpu_bind(tmp_path):
    """A cgroup of ours in the cpu hierarchy, bound at <tmp>/extra/cpu (a name that is also a
    hierarchy's): what `create` must not take for the container's cpu hierarchy."""
    cg = f"/sys/fs/cgroup/cpu/i12cg-extra-{uuid.uuid4().hex[:8]}"
    os.mkdir(cg)
    mp = tmp_path / "extra" / "cpu"
    mp.mkdir(parents=True)
    subprocess.run(["mount", "--bind", cg, str(mp)], check=True)
    state = {"cgroup": cg, "mountpoint": str(mp)}
    try:
        yield state
    finally:
        subprocess.run(["umount", str(mp)], check=False)
        if os.path.isdir(cg):
            os.rmdir(cg)


@pytest.mark.parametrize("removed", [False, True], ids=["live", "removed"])
@pytest.mark.parametrize("cgroupns", [True, False], ids=["cgroupns", "host-cgroupns"])
def test_extra_cgroup_bind_is_not_copied(runtime, bundle, extra_cpu_bind, cgroupns: bool,
                                         removed: bool) -> None:
    """Defect 4: every cgroup mount of the host was copied, keyed by the basename of its mount
    point, so an extra bind of some cgroup was stacked over the container's cpu hierarchy, and
    one whose cgroup was removed made `create` fail. One mount per hierarchy, as runc."""
    configure(bundle, cgroupns=cgroupns)
    if removed:
        os.rmdir(extra_cpu_bind["cgroup"])  # the bind stays, naming a removed cgroup
    rep = run_probe(runtime, bundle, f"i12cg-extra-{uuid.uuid4().hex[:8]}")
    check_own_cgroup(rep, cgroupns=cgroupns)
