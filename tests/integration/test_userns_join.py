"""Joining a user namespace made by someone else, as containerd 2.x asks for a user-namespaced pod
(issue 25): pyrunc beside runc 1.5.1 on the same bundle.

Another process (``unshare --user``) holds the namespace and root writes its maps, ``0 100000
65536``, as containerd does for a ``hostUsers: false`` pod. The bundle names it by path, gives the
same mappings beside it (containerd sends both), an ``oomScoreAdj`` and two binds whose sources sit
in a 0700 directory, as containerd's state directories are: an idmapped ``/etc/hosts`` and a plain
read-only file. Inside, the process must be uid 0 with the namespace's maps, the idmapped file
owned by 0, the plain one readable; on the host it is uid 100000 in the holder's namespace. The
same bundle with a user namespace to *create* must work alike (the host-side work is the same).
Bad input (mappings that disagree, a path that is no user namespace, one we cannot enter) fails
with one line naming the container and the step, and leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest

from tests.conftest import mounts_snapshot
from tests.integration.test_bad_input import cgroup_dirs_named

HOST_ID = 100000
MAP = [{"containerID": 0, "hostID": HOST_ID, "size": 65536}]

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare (util-linux) is not installed")


class Holder:
    """A user namespace made by another process, its maps written from outside by root."""

    def __init__(self, uid_map: str | None = "0 100000 65536", owner: int | None = None):
        argv = ["unshare", "--user", "sleep", "300"]
        if owner is not None:
            argv = ["setpriv", f"--reuid={owner}", f"--regid={owner}", "--clear-groups", *argv]
        self.proc = subprocess.Popen(argv)
        self.path = f"/proc/{self.proc.pid}/ns/user"
        deadline = time.monotonic() + 10
        while os.readlink(self.path) == os.readlink("/proc/self/ns/user"):
            assert time.monotonic() < deadline, "unshare --user did not make a namespace"
            time.sleep(0.01)
        if uid_map is not None:
            for name in ("uid_map", "gid_map"):
                with open(f"/proc/{self.proc.pid}/{name}", "w") as f:
                    f.write(uid_map + "\n")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def holder():
    h = Holder()
    yield h
    h.close()


def reachable_by_mapped_root(bundle) -> None:
    """The namespace's root (host uid 100000) owns the rootfs (containerd idmaps the image to it)
    and can search its way down to it (pytest's temp dirs are 0700)."""
    for parent in bundle.rootfs.parents:
        if str(parent) in ("/", "/tmp"):
            break
        os.chmod(parent, os.stat(parent).st_mode | 0o711)
    subprocess.run(["chown", "-R", f"{HOST_ID}:{HOST_ID}", str(bundle.rootfs)], check=True)


def private_sources(bundle) -> tuple[str, str]:
    """Two files in a 0700 directory only the host's root may search."""
    private = bundle.path / "private"
    private.mkdir(mode=0o700)
    (private / "hosts").write_text("127.0.0.1 localhost joined\n")
    (private / "plain").write_text("secret\n")
    return str(private / "hosts"), str(private / "plain")


def userns_bundle(bundle, path: str | None, *, oom: int = 500) -> None:
    reachable_by_mapped_root(bundle)
    hosts, plain = private_sources(bundle)
    cfg = bundle.config
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "cgroup"]
    cfg["linux"]["namespaces"].append({"type": "user", "path": path} if path else {"type": "user"})
    cfg["linux"]["uidMappings"] = MAP
    cfg["linux"]["gidMappings"] = MAP
    cfg["process"]["oomScoreAdj"] = oom
    cfg["mounts"].append({"destination": "/etc/hosts", "type": "bind", "source": hosts,
                          "options": ["rbind", "rprivate", "rw"], "uidMappings": MAP, "gidMappings": MAP})
    cfg["mounts"].append({"destination": "/etc/plain", "type": "bind", "source": plain,
                          "options": ["rbind", "rprivate", "ro"]})
    cfg["process"]["args"] = ["sleep", "100"]


PROBE = ("id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; ls -ln /etc/hosts; cat /etc/hosts; "
         "cat /etc/plain; cat /proc/self/oom_score_adj; "
         "grep -E ' /etc/(hosts|plain) ' /proc/self/mountinfo | cut -d' ' -f5,6; "
         "echo x > /etc/plain 2>/dev/null && echo plain-writable || echo plain-read-only")


def check_inside_and_host(rt, cid: str, holder_path: str | None) -> str:
    """What both runtimes must show: identity 0 inside with the namespace's maps, the idmapped file
    owned by 0, the private plain file readable and read-only, the oom score inherited; on the
    host, uid/gid 100000 in the holder's namespace (or a new one). Returns the probe's output."""
    pid = rt.state(cid)["pid"]
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.split(":", 1) for line in f)
    assert status["Uid"].split() == [str(HOST_ID)] * 4, status["Uid"]
    assert status["Gid"].split() == [str(HOST_ID)] * 4, status["Gid"]
    ns = os.readlink(f"/proc/{pid}/ns/user")
    if holder_path is not None:
        assert ns == os.readlink(holder_path), "the init joined the holder's user namespace"
    else:
        assert ns != os.readlink("/proc/self/ns/user")
    with open(f"/proc/{pid}/oom_score_adj") as f:
        assert f.read().strip() == "500"
    p = rt("exec", cid, "sh", "-c", PROBE)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[:2] == ["0", "0"], p.stdout
    assert [line.split() for line in lines[2:4]] == [["0", str(HOST_ID), "65536"]] * 2
    owner = lines[4].split()
    assert owner[2:4] == ["0", "0"], f"idmapped /etc/hosts owned by 0 inside: {lines[4]}"
    assert lines[5] == "127.0.0.1 localhost joined"
    assert lines[6] == "secret"
    assert lines[7] == "500"
    mountinfo = dict(line.split(" ", 1) for line in lines[8:10])
    assert "idmapped" in mountinfo["/etc/hosts"].split(","), mountinfo
    assert mountinfo["/etc/plain"].split(",")[0] == "ro", mountinfo
    assert lines[10] == "plain-read-only"
    return p.stdout


def exec_with_oom(rt, cid: str, tmp_path) -> list[str]:
    """An exec whose process.json carries oomScoreAdj, as containerd's do (copied from the spec):
    it runs as 0. pyrunc gives the exec'd process its own oomScoreAdj (600, written on the host
    side before the joiner enters the namespace); runc 1.5.1 ignores it and the process keeps the
    container's (500)."""
    proc = {"args": ["sh", "-c", "id -u; cat /proc/self/oom_score_adj"], "cwd": "/", "user": {"uid": 0, "gid": 0},
            "env": ["PATH=/bin:/usr/bin"], "oomScoreAdj": 600}
    path = tmp_path / f"process-{rt.name}.json"
    path.write_text(json.dumps(proc))
    p = rt("exec", "--process", str(path), cid)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["0", "600" if rt.name == "pyrunc" else "500"]
    return p.stdout.split()


def test_join_user_namespace_made_by_another_process(runtime15, bundle, holder, tmp_path):
    userns_bundle(bundle, holder.path)
    runtime15("run", "-d", "uj", bundle=bundle, check=True)
    check_inside_and_host(runtime15, "uj", holder.path)
    exec_with_oom(runtime15, "uj", tmp_path)
    runtime15("delete", "-f", "uj", check=True)


def test_created_user_namespace_with_private_and_idmapped_sources(runtime15, bundle, tmp_path):
    """The same host-side work for a namespace the runtime creates itself."""
    userns_bundle(bundle, None)
    runtime15("run", "-d", "uc", bundle=bundle, check=True)
    check_inside_and_host(runtime15, "uc", None)
    exec_with_oom(runtime15, "uc", tmp_path)
    runtime15("delete", "-f", "uc", check=True)


def test_joined_namespace_files_made_by_root_inside_are_mapped(runtime15, bundle, holder):
    """Mount points the runtime makes after the join (here /etc/newdir/f, absent in the image)
    belong to the namespace's root, host uid 100000: the runtime is root *in* the namespace."""
    userns_bundle(bundle, holder.path)
    bundle.config["mounts"].append({"destination": "/newdir/f", "type": "bind",
                                    "source": str(bundle.path / "private" / "plain"),
                                    "options": ["bind", "ro"]})
    runtime15("run", "-d", "um", bundle=bundle, check=True)
    st = os.stat(bundle.rootfs / "newdir")
    assert (st.st_uid, st.st_gid) == (HOST_ID, HOST_ID)
    runtime15("delete", "-f", "um", check=True)


# -- bad input ------------------------------------------------------------------------------------


def fails_leaving_nothing(rt, bundle, cid: str, argv_prefix: tuple[str, ...] = ()) -> str:
    before = mounts_snapshot()
    if argv_prefix:
        bundle.write()
        p = subprocess.run([*argv_prefix, *rt.cmd("run", cid)], cwd=str(bundle.path), capture_output=True,
                           text=True, timeout=60, stdin=subprocess.DEVNULL)
        rt.ids.add(cid)
    else:
        p = rt("run", cid, bundle=bundle)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    assert not (rt.root / cid).exists(), "state directory left behind"
    assert mounts_snapshot() == before, "mounts left behind"
    assert cgroup_dirs_named(bundle.config["linux"]["cgroupsPath"]) == [], "cgroup left behind"
    return p.stderr.strip()


def one_line(err: str, cid: str, step: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"container {cid}: ") and f"{step}: " in lines[0], lines[0]
    return lines[0]


def test_mappings_that_disagree_with_the_joined_namespace(runtime15, bundle, holder):
    userns_bundle(bundle, holder.path)
    other = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    bundle.config["linux"]["uidMappings"] = other
    err = fails_leaving_nothing(runtime15, bundle, "ubad")
    if runtime15.name == "pyrunc":
        line = one_line(err, "ubad", "join namespaces")
        assert "0 200000 65536" in line and "0 100000 65536" in line and holder.path in line
    else:
        assert "non-matching mapping" in err


def test_path_that_is_not_a_user_namespace(runtime15, bundle, holder):
    userns_bundle(bundle, f"/proc/{holder.proc.pid}/ns/net")
    err = fails_leaving_nothing(runtime15, bundle, "ubad")
    if runtime15.name == "pyrunc":
        assert "is not a user namespace" in one_line(err, "ubad", "join namespaces")
    else:
        assert "setns into user namespace" in err


def test_path_that_does_not_exist(runtime15, bundle):
    userns_bundle(bundle, "/proc/999999999/ns/user")
    err = fails_leaving_nothing(runtime15, bundle, "ubad")
    if runtime15.name == "pyrunc":
        assert "No such file or directory" in one_line(err, "ubad", "join namespaces")


@pytest.mark.parametrize("mappings", [True, False], ids=["with-mappings", "path-alone"])
def test_namespace_the_caller_cannot_enter(runtime15, bundle, mappings):
    """Root without CAP_SYS_ADMIN may not enter a user namespace another user owns: with mappings
    pyrunc finds out while reading its maps (before anything is made), without them stage 1's
    setns fails once the cgroup exists; either way one line and nothing left."""
    other = Holder(owner=65534, uid_map=None)
    try:
        userns_bundle(bundle, other.path)
        del bundle.config["process"]["oomScoreAdj"]
        if not mappings:
            del bundle.config["linux"]["uidMappings"], bundle.config["linux"]["gidMappings"]
        # Nothing else needs CAP_SYS_ADMIN before the join: the plain bind's source is reachable,
        # and no idmapped mount (whose host-side clone would be refused first).
        os.chmod(bundle.path / "private", 0o755)
        bundle.config["mounts"] = [m for m in bundle.config["mounts"] if "uidMappings" not in m]
        drop = ("setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin")
        err = fails_leaving_nothing(runtime15, bundle, "ubad", drop)
        if runtime15.name == "pyrunc":
            line = one_line(err, "ubad", "join namespaces")
            assert "Operation not permitted" in line, line
    finally:
        other.close()

