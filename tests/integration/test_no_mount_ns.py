"""A container without a mount namespace in linux.namespaces (issue 12, defect 5).

config-linux.md: an absent namespace type is inherited from the runtime. runc runs such a
container (chroot instead of pivot_root) but changes the caller's namespace to do it (its / made
rslave) and leaves every rootfs mount there after `delete`. pyrunc must run it too, and leave the
caller's mount table exactly as it found it: after `delete`, after a failed `create`, and in
other namespaces that receive propagation from the caller's.

Every runtime here runs inside a fresh mount namespace of the test's (a slave of the host's,
made rshared inside): it is "the caller's namespace" of these tests, and nothing done in it, by
runc either, reaches the host's, which other tests share.
"""

from __future__ import annotations

import os
import shlex
import uuid

import pytest

from tests.conftest import run_to_files

MARK = "i12cg-rootfs-mark"


def no_mount_ns(bundle, *, hardened: bool) -> None:
    """Drop the mount namespace; runc refuses masked/readonly paths then, so only with
    ``hardened`` (pyrunc alone) keep them, with a read-only root on top."""
    lin = bundle.config["linux"]
    lin["namespaces"] = [ns for ns in lin["namespaces"] if ns["type"] != "mount"]
    if hardened:
        (bundle.rootfs / "etc" / "secret").write_text("masked\n")
        lin["maskedPaths"] = [*(lin.get("maskedPaths") or []), "/etc/secret"]
    else:
        lin.pop("maskedPaths", None)
        lin.pop("readonlyPaths", None)
    bundle.config["root"]["readonly"] = hardened
    (bundle.rootfs / MARK).write_text("in the rootfs\n")


def in_caller_ns(tmp_path, steps: list[list[str]], probe: str = "") -> dict:
    """Run ``steps`` (command lines) in a fresh caller namespace; snapshot its mount table (and
    that of a namespace receiving its propagation) before and after, and the stdout of each.

    Returns {"before", "after", "peer_before", "peer_after": mountinfo lines, "out": [stdout],
    "rc": [status], "err": [stderr], "ns": the caller namespace's mnt link}.
    """
    d = tmp_path / f"ns-{uuid.uuid4().hex[:6]}"
    d.mkdir()
    lines = ["mount --make-rshared /",
             "unshare -m --propagation unchanged sleep 120 & peer=$!",
             "sleep 0.3",
             f"readlink /proc/self/ns/mnt > {d}/ns",
             f"cat /proc/self/mountinfo > {d}/before; cat /proc/$peer/mountinfo > {d}/peer_before"]
    for i, cmd in enumerate(steps):
        lines.append(f"{shlex.join(cmd)} > {d}/out{i} 2> {d}/err{i}; echo $? > {d}/rc{i}")
    if probe:
        lines.append(probe)
    lines += [f"cat /proc/self/mountinfo > {d}/after; cat /proc/$peer/mountinfo > {d}/peer_after",
              "kill $peer; wait"]
    p = run_to_files(["unshare", "-m", "--propagation", "slave", "sh", "-c", "\n".join(lines)],
                     timeout=180)
    assert p.returncode == 0, p.stderr
    rd = lambda name: (d / name).read_text()  # noqa: E731
    return {"before": rd("before").splitlines(), "after": rd("after").splitlines(),
            "peer_before": rd("peer_before").splitlines(), "peer_after": rd("peer_after").splitlines(),
            "out": [rd(f"out{i}") for i in range(len(steps))],
            "err": [rd(f"err{i}") for i in range(len(steps))],
            "rc": [int(rd(f"rc{i}")) for i in range(len(steps))], "ns": rd("ns").strip()}


def propagation(lines: list[str]) -> dict[str, str]:
    """mount id -> its mount point and optional fields (shared:N, master:N): what runc changes."""
    out = {}
    for line in lines:
        f = line.split(" - ")[0].split()
        out[f[0]] = f"{f[4]} {' '.join(f[6:])}"
    return out


def assert_untouched(rep: dict, bundle) -> None:
    """Nothing of the bundle's is mounted any more, and no mount's propagation changed, in the
    caller's namespace or in one that receives its propagation (other tests' mounts come and go
    meanwhile: mounts that exist only before or only after are theirs)."""
    where = str(bundle.path)
    for before, after in (("before", "after"), ("peer_before", "peer_after")):
        assert not [line for line in rep[after] if where in line], rep[after]
        old, new = propagation(rep[before]), propagation(rep[after])
        changed = {k: (old[k], new[k]) for k in old.keys() & new.keys() if old[k] != new[k]}
        assert not changed, changed


def test_inherits_the_mount_namespace(runtime, bundle, tmp_path) -> None:
    """Both runtimes run it, chrooted into the rootfs, in the caller's mount namespace; only
    pyrunc also leaves that namespace as it was."""
    no_mount_ns(bundle, hardened=False)
    bundle.config["process"]["args"] = ["sh", "-c", f"readlink /proc/1/ns/mnt; cat /{MARK}"]
    bundle.write()
    cid = f"i12cg-nomnt-{uuid.uuid4().hex[:6]}"
    runtime.ids.add(cid)
    rep = in_caller_ns(tmp_path, [runtime.cmd("run", "--bundle", str(bundle.path), cid)])
    assert rep["rc"] == [0], rep["err"]
    assert rep["out"][0].splitlines() == [rep["ns"], "in the rootfs"]
    if runtime.name == "pyrunc":
        assert_untouched(rep, bundle)


@pytest.mark.parametrize("no_pivot", [False, True], ids=["pivot", "no-pivot"])
def test_lifecycle_without_mount_ns_leaves_nothing(pyrunc, bundle, tmp_path, no_pivot: bool) -> None:
    """create/start/exec/delete with masked and read-only paths and a read-only root (runc
    refuses the first two and ignores the third without a mount namespace); --no-pivot must
    not MS_MOVE the rootfs over the caller's /. exec lands in the container's root too."""
    no_mount_ns(bundle, hardened=True)
    bundle.config["process"]["args"] = ["sleep", "60"]
    bundle.write()
    cid = f"i12cg-nomnt-{uuid.uuid4().hex[:6]}"
    pyrunc.ids.add(cid)
    create = ["create", "--bundle", str(bundle.path), cid]
    if no_pivot:
        create.insert(1, "--no-pivot")
    probe = ("sh -c 'cat /" + MARK + "; touch /x 2>/dev/null && echo rw || echo ro; "
             "wc -c < /etc/secret; grep -c . /proc/self/mountinfo >/dev/null && echo mountinfo'")
    rep = in_caller_ns(tmp_path, [
        pyrunc.cmd(*create), pyrunc.cmd("start", cid),
        pyrunc.cmd("exec", cid, *shlex.split(probe)),
        pyrunc.cmd("delete", "--force", cid)])
    assert rep["rc"] == [0, 0, 0, 0], rep["err"]
    assert rep["out"][2].split() == ["in", "the", "rootfs", "ro", "0", "mountinfo"]
    assert_untouched(rep, bundle)


@pytest.mark.parametrize("fault", ["missing-program", "bad-mount"])
def test_failed_create_without_mount_ns_leaves_nothing(pyrunc, bundle, tmp_path, fault: str) -> None:
    """A create that fails after the mounts (no such program) or during them (a bind source
    that does not exist): one line, no state, and the caller's mounts as they were."""
    no_mount_ns(bundle, hardened=True)
    if fault == "missing-program":
        bundle.config["process"]["args"] = ["/no/such/program"]
    else:
        bundle.config["mounts"].append({"destination": "/mnt", "type": "bind",
                                        "source": str(tmp_path / "missing"), "options": ["bind"]})
    bundle.write()
    cid = f"i12cg-nomnt-{uuid.uuid4().hex[:6]}"
    pyrunc.ids.add(cid)
    rep = in_caller_ns(tmp_path, [pyrunc.cmd("create", "--bundle", str(bundle.path), cid),
                                  pyrunc.cmd("state", cid)])
    assert rep["rc"][0] == 1
    err = rep["err"][0].strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"container {cid}: create: "), err
    assert rep["rc"][1] == 1  # no such container
    assert_untouched(rep, bundle)
    assert not os.listdir(pyrunc.root)


@pytest.mark.parametrize("point", ["cgroup", "fork", "mount_filesystems", "pivot_root", "saved"])
def test_killed_create_without_mount_ns_is_recoverable(pyrunc, bundle, tmp_path, point: str) -> None:
    """pyrunc SIGKILLed during create (test_crash.py's switch): `delete --force` still finds
    the rootfs mount in the state record and removes it with everything inside."""
    no_mount_ns(bundle, hardened=True)
    bundle.config["process"]["args"] = ["sleep", "100"]
    bundle.write()
    cid = f"i12cg-nomnt-{uuid.uuid4().hex[:6]}"
    pyrunc.ids.add(cid)
    rep = in_caller_ns(tmp_path, [
        ["env", f"PYRUNC_TEST_FAULT={point}", *pyrunc.cmd("create", "--bundle", str(bundle.path), cid)],
        pyrunc.cmd("delete", "--force", cid)])
    assert rep["rc"] == [137, 0], rep["err"]
    assert_untouched(rep, bundle)
    assert not (pyrunc.root / cid).exists()
