"""The whole rootfs setup, run for real in a forked child with its own mount namespace.

Each test forks; the child unshares CLONE_NEWNS, runs the pyrunc.rootfs steps on a busybox bundle,
inspects the result from inside (mountinfo, device nodes, file contents) and sends a JSON report
back through a pipe. The parent asserts on the report and, for every test, that the host mount
table and a sentinel directory next to the bundle are exactly as before.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest

import pyrunc.rootfs as rf
from pyrunc.errors import PyruncError
from pyrunc.linux._libc import libc

CLONE_NEWNS = 0x00020000
BUSYBOX = shutil.which("busybox") or "/bin/busybox"

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not os.path.exists(BUSYBOX), reason="needs busybox"),
]

# What `runc spec` (runc 1.1.5) writes: mounts, masked and read-only paths, from the stored capture.
_RUNC_SPEC = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "configs" / "runc-spec.json")
                        .read_text())
RUNC_SPEC_MOUNTS = _RUNC_SPEC["mounts"]
MASKED = _RUNC_SPEC["linux"]["maskedPaths"]
READONLY = _RUNC_SPEC["linux"]["readonlyPaths"]


# ---------------------------------------------------------------------------------------------
# harness


def host_mounts() -> list[str]:
    """Host mount table without ids (ids of unrelated mounts are stable, but keep it strict anyway)."""
    with open("/proc/self/mountinfo") as f:
        return sorted(f.read().splitlines())


def snapshot(path: str) -> dict[str, str]:
    """Listing plus link targets / file contents of a directory tree (the sentinel)."""
    out = {}
    for dirpath, dirs, files in os.walk(path):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                out[p] = "->" + os.readlink(p)
            elif os.path.isfile(p):
                with open(p) as f:
                    out[p] = f.read()
            else:
                out[p] = "dir"
    return out


@pytest.fixture
def bundle(tmp_path):
    """A busybox bundle plus a host sentinel dir; both checked unchanged (and no mount leaks) after the test."""
    root = tmp_path / "bundle" / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, root / "bin" / "busybox")
    for applet in ("sh", "ls", "cat", "mount"):
        os.symlink("busybox", root / "bin" / applet)
    for d in ("etc", "tmp", "proc", "sys", "dev"):
        (root / d).mkdir()
    (root / "etc" / "secret").write_text("secret")
    sentinel = tmp_path / "host"
    sentinel.mkdir()
    (sentinel / "marker").write_text("host")
    before, sbefore = host_mounts(), snapshot(str(sentinel))
    yield str(tmp_path / "bundle"), str(root), str(sentinel)
    assert host_mounts() == before, "mount leaked to the host"
    assert snapshot(str(sentinel)) == sbefore, "host sentinel changed"


def in_child(body: Callable[[], object]) -> dict:
    """Fork, unshare the mount namespace, run ``body`` and return its JSON report.

    Exceptions become {"error": ..., "step": ..., "cause": ...}; the child always _exit()s so pytest
    never continues in two processes.
    """
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            if libc.unshare(CLONE_NEWNS) != 0:
                raise OSError("unshare failed")
            try:
                report = {"ok": body()}
            except PyruncError as e:
                report = {"error": str(e), "step": e.step, "cause": e.cause}
            except BaseException as e:  # report anything, the parent decides
                report = {"error": repr(e), "trace": traceback.format_exc()}
            os.write(wfd, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(wfd)
    data = b""
    while chunk := os.read(rfd, 1 << 16):
        data += chunk
    os.close(rfd)
    os.waitpid(pid, 0)
    return json.loads(data)


def mountinfo() -> list[dict]:
    """The child's mounts as dicts (root, mountpoint, per-mount options, fstype, super options)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, post = line.split(" - ")
            a, b = pre.split(), post.split()
            out.append({"root": a[3], "mp": a[4], "opts": a[5].split(","), "optional": a[6:],
                        "fstype": b[0], "super": b[2]})
    return out


def ok(report: dict):
    """Unwrap a successful report (with the child's traceback on failure)."""
    assert "ok" in report, report.get("trace") or report
    return report["ok"]


def node(path: str) -> list:
    """[kind, major, minor, mode] or the symlink target of a /dev entry."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return ["link", os.readlink(path)]
    kind = "c" if stat.S_ISCHR(st.st_mode) else "b" if stat.S_ISBLK(st.st_mode) else "other"
    return [kind, os.major(st.st_rdev), os.minor(st.st_rdev), stat.S_IMODE(st.st_mode)]


# ---------------------------------------------------------------------------------------------
# the full default setup


def test_runc_spec_default_setup(bundle) -> None:
    """prepare/mount_all/create_devices/pivot/finish with runc spec's config give runc's layout."""
    bdir, root, _ = bundle

    def body():
        rf.prepare_root(root, None)
        rf.mount_all(root, RUNC_SPEC_MOUNTS, bundle=bdir)
        rf.create_devices(root, [{"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200,
                                  "fileMode": 0o600, "uid": 0, "gid": 0}])
        rf.pivot_root(root)
        rf.finish_rootfs(masked_paths=MASKED + ["/etc/secret"], readonly_paths=READONLY,
                         readonly_root=True)
        devs = {n: node("/dev/" + n) for n in os.listdir("/dev")}
        devs["net/tun"] = node("/dev/net/tun")
        writes = {}
        for p in ("/etc/x", "/sys/x", "/proc/sys/kernel/domainname", "/sys/fs/cgroup/x"):
            try:
                with open(p, "w") as f:
                    f.write("x")
                writes[p] = "written"
            except OSError as e:
                writes[p] = e.errno
        return {"mounts": mountinfo(), "devs": devs, "secret": open("/etc/secret").read(),
                "secret_node": node("/etc/secret"), "writes": writes, "cwd": os.getcwd(),
                "root_entries": sorted(os.listdir("/"))}

    rep = ok(in_child(body))
    mounts = {mi["mp"]: mi for mi in rep["mounts"]}
    assert mounts["/"]["root"].endswith("/bundle/rootfs") and "ro" in mounts["/"]["opts"]
    assert not any(o.startswith("shared:") for o in mounts["/"]["optional"])
    for mp, fstype in [("/proc", "proc"), ("/dev", "tmpfs"), ("/dev/pts", "devpts"),
                       ("/dev/shm", "tmpfs"), ("/dev/mqueue", "mqueue"), ("/sys", "sysfs"),
                       ("/sys/fs/cgroup", "tmpfs")]:
        assert mounts[mp]["fstype"] == fstype, mp
    assert {"nosuid"} <= set(mounts["/dev"]["opts"])
    assert {"nosuid", "noexec"} <= set(mounts["/dev/pts"]["opts"])
    assert "newinstance" not in mounts["/dev/pts"]["super"]  # data went to the kernel, not shown
    assert {"nosuid", "nodev", "noexec"} <= set(mounts["/dev/shm"]["opts"])
    assert "ro" in mounts["/sys"]["opts"]
    cg = [mi for mi in rep["mounts"] if mi["mp"].startswith("/sys/fs/cgroup")]
    assert all("ro" in mi["opts"] for mi in cg), cg
    # masks and read-only paths
    assert mounts["/proc/keys"]["root"] == "/null" and mounts["/proc/keys"]["fstype"] == "tmpfs"
    if os.path.isdir("/proc/acpi"):
        assert mounts["/proc/acpi"]["fstype"] == "tmpfs" and "ro" in mounts["/proc/acpi"]["opts"]
    assert "ro" in mounts["/sys/firmware"]["opts"]
    for p in ("/proc/sys", "/proc/bus", "/proc/fs", "/proc/irq"):
        assert "ro" in mounts[p]["opts"] and mounts[p]["fstype"] == "proc"
    assert rep["secret"] == "" and rep["secret_node"] == ["c", 1, 3, 0o666]
    # devices and links
    devs = rep["devs"]
    for name, (major, minor) in {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8),
                                 "urandom": (1, 9), "tty": (5, 0)}.items():
        assert devs[name] == ["c", major, minor, 0o666], name
    assert devs["net/tun"] == ["c", 10, 200, 0o600]
    assert devs["ptmx"] == ["link", "pts/ptmx"]
    assert devs["fd"] == ["link", "/proc/self/fd"]
    assert devs["stdin"] == ["link", "/proc/self/fd/0"]
    assert devs["stderr"] == ["link", "/proc/self/fd/2"]
    # read-only everywhere it should be
    assert rep["writes"]["/etc/x"] == 30  # EROFS
    assert rep["writes"]["/proc/sys/kernel/domainname"] == 30
    assert rep["writes"]["/sys/fs/cgroup/x"] in (30, 13)
    assert rep["cwd"] == "/" and "bin" in rep["root_entries"]


def test_no_pivot_and_rw_root(bundle) -> None:
    bdir, root, _ = bundle

    def body():
        rf.prepare_root(root, "rprivate")
        rf.mount_all(root, RUNC_SPEC_MOUNTS[:2], bundle=bdir)
        rf.create_devices(root, [])
        rf.pivot_root(root, no_pivot=True)
        rf.finish_rootfs(masked_paths=[], readonly_paths=[], readonly_root=False)
        with open("/etc/x", "w") as f:
            f.write("ok")
        return sorted(os.listdir("/"))

    assert "bin" in ok(in_child(body))
    assert open(os.path.join(root, "etc", "x")).read() == "ok"


def test_bind_mounts_relative_source_and_readonly(bundle) -> None:
    """Bind sources are relative to the bundle; ro/nosuid binds go through bind-then-remount."""
    bdir, root, sentinel = bundle
    os.mkdir(os.path.join(bdir, "vol"))
    with open(os.path.join(bdir, "vol", "f"), "w") as f:
        f.write("vol")
    mounts = [
        {"destination": "/mnt/vol", "type": "bind", "source": "vol", "options": ["rbind", "ro", "nosuid"]},
        {"destination": "/mnt/file", "type": "none", "source": os.path.join(bdir, "vol", "f"),
         "options": ["bind", "rprivate"]},
        {"destination": "/mnt/rw", "type": "bind", "source": sentinel, "options": ["rbind", "rro"]},
    ]

    def body():
        rf.prepare_root(root, None)
        rf.mount_all(root, mounts, bundle=bdir)
        try:
            open(os.path.join(root, "mnt/vol/new"), "w")
            wrote = True
        except OSError:
            wrote = False
        return {"mounts": {mi["mp"]: mi for mi in mountinfo()}, "wrote": wrote,
                "file": open(os.path.join(root, "mnt/file")).read()}

    rep = ok(in_child(body))
    vol = rep["mounts"][os.path.join(root, "mnt/vol")]
    assert {"ro", "nosuid"} <= set(vol["opts"]) and not rep["wrote"]
    assert rep["file"] == "vol"
    assert "ro" in rep["mounts"][os.path.join(root, "mnt/rw")]["opts"]
    assert os.path.isfile(os.path.join(root, "mnt/file"))  # file mount point created as a file


# ---------------------------------------------------------------------------------------------
# security cases


@pytest.mark.parametrize("style", ["absolute", "relative"])
def test_symlinked_destinations_land_inside_rootfs(bundle, style) -> None:
    """CVE-2021-30465 class: /evil -> /<host dir> or ../../../../<host dir> as a tmpfs destination."""
    bdir, root, sentinel = bundle
    target = sentinel if style == "absolute" else "../../../../../../../.." + sentinel
    os.symlink(target, os.path.join(root, "evil"))
    os.symlink("/" + sentinel.lstrip("/"), os.path.join(root, "evil2"))
    mounts = [{"destination": "/evil", "type": "tmpfs", "source": "tmpfs"},
              {"destination": "/evil2/sub", "type": "tmpfs", "source": "tmpfs"}]

    def body():
        rf.prepare_root(root, None)
        rf.mount_all(root, mounts, bundle=bdir)
        return [mi["mp"] for mi in mountinfo() if mi["fstype"] == "tmpfs"]

    mps = ok(in_child(body))
    assert root + sentinel in mps and root + sentinel + "/sub" in mps
    assert sentinel not in mps and sentinel + "/sub" not in mps


@pytest.mark.parametrize("link", ["/bad-proc", "./x/../bad-proc"])
def test_proc_on_symlink_is_rejected(bundle, link) -> None:
    """CVE-2019-19921 / CVE-2023-27561 / CVE-2023-28642: /proc must be an ordinary directory."""
    bdir, root, _ = bundle
    os.rmdir(os.path.join(root, "proc"))
    os.mkdir(os.path.join(root, "bad-proc"))
    os.mkdir(os.path.join(root, "x"))
    os.symlink(link, os.path.join(root, "proc"))

    def body():
        rf.prepare_root(root, None)
        rf.mount_all(root, RUNC_SPEC_MOUNTS[:1], bundle=bdir)
        return "mounted"

    rep = in_child(body)
    assert rep.get("step") == "mount", rep
    assert "ordinary directory" in rep["cause"]


def test_sysfs_on_symlink_is_rejected(bundle) -> None:
    bdir, root, _ = bundle
    os.rmdir(os.path.join(root, "sys"))
    os.mkdir(os.path.join(root, "bad-sys"))
    os.symlink("/bad-sys", os.path.join(root, "sys"))
    rep = in_child(lambda: (rf.prepare_root(root, None),
                            rf.mount_all(root, RUNC_SPEC_MOUNTS[5:6], bundle=bdir)) and "mounted")
    assert rep.get("step") == "mount" and "ordinary directory" in rep["cause"], rep


@pytest.mark.parametrize("dest,allowed", [
    ("/proc/sys/kernel", False), ("/proc/sysrq-trigger", False), ("/proc/sys/kernel/domainname", False), ("/proc/self/attr", False),
    ("/proc/meminfo", True), ("/proc/uptime", True), ("/etc/evil", False),
])
def test_proc_subpath_policy(bundle, dest, allowed) -> None:
    """Only runc's lxcfs allow-list may be mounted over inside /proc; checked on the resolved path."""
    bdir, root, sentinel = bundle
    os.symlink("/proc/sys/kernel/domainname", os.path.join(root, "etc", "evil"))
    src = os.path.join(sentinel, "marker")
    mounts = RUNC_SPEC_MOUNTS[:1] + [{"destination": dest, "type": "bind", "source": src,
                                      "options": ["bind"]}]

    def body():
        rf.prepare_root(root, None)
        rf.mount_all(root, mounts, bundle=bdir)
        return "mounted"

    rep = in_child(body)
    if allowed:
        assert rep.get("ok") == "mounted", rep
    else:
        assert rep.get("step") == "mount" and "/proc" in rep["cause"], rep


def test_bind_of_non_proc_over_proc_is_rejected(bundle) -> None:
    """CVE-2019-16884: a volume at /proc (not procfs) must be refused."""
    bdir, root, sentinel = bundle
    rep = in_child(lambda: (rf.prepare_root(root, None), rf.mount_all(
        root, [{"destination": "/proc", "type": "bind", "source": sentinel, "options": ["rbind"]}],
        bundle=bdir)) and "mounted")
    assert rep.get("step") == "mount" and "not of type proc" in rep["cause"], rep


@pytest.mark.parametrize("style", ["absolute", "relative"])
def test_dev_symlinked_outside_is_not_populated(bundle, style, tmp_path) -> None:
    """CVE-2026-41579 class: rootfs /dev -> outside dir holding a 'ptmx' marker stays untouched."""
    bdir, root, _ = bundle
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "ptmx").write_text("marker")
    os.rmdir(os.path.join(root, "dev"))
    os.symlink(str(outside) if style == "absolute" else "../../../../../.." + str(outside),
               os.path.join(root, "dev"))

    def body():
        rf.prepare_root(root, None)
        rf.mount_all(root, RUNC_SPEC_MOUNTS[:1], bundle=bdir)
        rf.create_devices(root, [])
        return sorted(os.listdir(root + str(outside)))

    rep = in_child(body)
    assert sorted(os.listdir(outside)) == ["ptmx"]
    assert (outside / "ptmx").read_text() == "marker" and not (outside / "ptmx").is_symlink()
    assert "null" in ok(rep)  # populated inside the rootfs instead


@pytest.mark.parametrize("replacement", ["symlink-domainname", "symlink-file", "regular-file", "missing"])
def test_dev_null_replaced_in_image_dev(bundle, replacement) -> None:
    """CVE-2025-31133: no /dev tmpfs; image /dev/null is not the null device -> masking fails, never binds it."""
    bdir, root, _ = bundle
    null = os.path.join(root, "dev", "null")
    with open(os.path.join(root, "etc", "target"), "w") as f:
        f.write("target")
    if replacement == "symlink-domainname":
        os.symlink("/proc/sys/kernel/domainname", null)
    elif replacement == "symlink-file":
        os.symlink("/etc/target", null)
    elif replacement == "regular-file":
        with open(null, "w") as f:
            f.write("fake")

    def body():
        rf.prepare_root(root, None)
        rf.mount_all(root, RUNC_SPEC_MOUNTS[:1], bundle=bdir)
        if replacement != "missing":
            rf.create_devices(root, [])
        rf.pivot_root(root)
        rf.finish_rootfs(masked_paths=["/etc/secret"], readonly_paths=[], readonly_root=False)
        return {"secret": open("/etc/secret").read(), "node": node("/etc/secret")}

    rep = in_child(body)
    assert rep.get("step") == "mask_paths", rep
    assert "/dev/null" in rep["cause"]
    assert open(os.path.join(root, "etc", "target")).read() == "target"


def test_masking_with_real_dev_null_in_image_dev(bundle) -> None:
    """Baseline for the above: an image /dev/null that really is 1:3 masks correctly."""
    bdir, root, _ = bundle
    os.mknod(os.path.join(root, "dev", "null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))

    def body():
        rf.prepare_root(root, None)
        rf.mount_all(root, RUNC_SPEC_MOUNTS[:1], bundle=bdir)
        rf.pivot_root(root)
        rf.finish_rootfs(masked_paths=["/etc/secret", "/etc/missing"], readonly_paths=["/nope"],
                         readonly_root=False)
        return {"secret": open("/etc/secret").read(), "node": node("/etc/secret")}

    rep = ok(in_child(body))
    assert rep["secret"] == "" and rep["node"][:3] == ["c", 1, 3]


def test_error_messages_name_destination_and_errno(bundle) -> None:
    bdir, root, _ = bundle
    rep = in_child(lambda: (rf.prepare_root(root, None), rf.mount_all(
        root, [{"destination": "/x", "type": "nosuchfs", "source": "none"}], bundle=bdir)) and 1)
    assert rep["step"] == "mount" and rep["cause"] == "mount nosuchfs on /x: No such device", rep
    rep = in_child(lambda: (rf.prepare_root(root, None), rf.mount_all(
        root, [{"destination": "/x", "type": "bind", "source": "nosuch", "options": ["bind"]}],
        bundle=bdir)) and 1)
    assert rep["step"] == "mount" and "No such file or directory" in rep["cause"], rep
    rep = in_child(lambda: (rf.prepare_root(root, None), rf.mount_all(
        root, [{"destination": "/x", "type": "tmpfs", "options": ["idmap"]}], bundle=bdir)) and 1)
    assert rep["step"] == "mount" and "idmap" in rep["cause"], rep


def test_mknod_refused_falls_back_to_binding_host_nodes(bundle) -> None:
    """Where mknod is not allowed (user namespaces) the host node is bound onto an empty file, like runc."""
    bdir, root, _ = bundle

    def refuse(*_a, **_k):
        raise PermissionError(1, "Operation not permitted")

    def body():
        rf.devices.m.mknodat = refuse  # only in this forked child
        rf.prepare_root(root, None)
        rf.mount_all(root, RUNC_SPEC_MOUNTS[1:2], bundle=bdir)
        rf.create_devices(root, [])
        mps = {mi["mp"]: mi for mi in mountinfo()}
        return {"null": node(os.path.join(root, "dev/null")),
                "bound": os.path.join(root, "dev/null") in mps}

    rep = ok(in_child(body))
    assert rep["bound"] and rep["null"][:3] == ["c", 1, 3]


def test_bad_rootfs_propagation_is_a_clean_error(bundle) -> None:
    _, root, _ = bundle
    rep = in_child(lambda: rf.prepare_root(root, "sideways"))
    assert rep["step"] == "mount" and "sideways" in rep["cause"], rep
