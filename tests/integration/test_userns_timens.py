"""User and time namespaces: mappings written from outside, offsets before anyone enters."""

from __future__ import annotations

import os


def add_userns(bundle, host_id=100000):
    # The container's root is an unprivileged host uid: it must be able to reach the rootfs
    # (pytest's temp dirs are 0700).
    for parent in [bundle.rootfs, *bundle.rootfs.parents]:
        if str(parent) in ("/", "/tmp"):
            break
        os.chmod(parent, os.stat(parent).st_mode | 0o711)
    bundle.config["linux"]["namespaces"].append({"type": "user"})
    bundle.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": host_id, "size": 65536}]
    bundle.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": host_id, "size": 65536}]


def test_user_namespace_mappings(runtime, bundle):
    add_userns(bundle)
    bundle.config["process"]["args"] = ["sleep", "100"]
    runtime("run", "-d", "u1", bundle=bundle, check=True)
    pid = runtime.state("u1")["pid"]
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.split(":", 1) for line in f)
    assert status["Uid"].split()[0] == "100000", "container root is host uid 100000"
    with open(f"/proc/{pid}/uid_map") as f:
        assert f.read().split() == ["0", "100000", "65536"]
    assert os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")
    p = runtime("exec", "u1", "sh", "-c", "id -u; readlink /proc/self/ns/user")
    assert p.returncode == 0, p.stderr
    uid, ns = p.stdout.split()
    assert uid == "0"
    assert ns == os.readlink(f"/proc/{pid}/ns/user"), "exec joins the user namespace"


def test_user_namespace_non_root_process(runtime, bundle):
    add_userns(bundle)
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    bundle.config["process"]["args"] = ["sh", "-c", "id -u; grep Uid /proc/self/status"]
    p = runtime("run", "u2", bundle=bundle)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == "1000"


def test_time_namespace_offsets(pyrunc, bundle):
    """runc 1.1.5 has no time namespace support; pyrunc applies timeOffsets."""
    bundle.config["linux"]["namespaces"].append({"type": "time"})
    bundle.config["linux"]["timeOffsets"] = {"boottime": {"secs": 86400, "nanosecs": 0},
                                             "monotonic": {"secs": 3600, "nanosecs": 0}}
    bundle.config["process"]["args"] = ["cat", "/proc/uptime"]
    with open("/proc/uptime") as f:
        host = float(f.read().split()[0])
    p = pyrunc("run", "t1", bundle=bundle)
    assert p.returncode == 0, p.stderr
    inside = float(p.stdout.split()[0])
    assert host + 86400 - 5 < inside < host + 86400 + 60


def test_time_namespace_with_user_namespace(pyrunc, bundle):
    add_userns(bundle)
    bundle.config["linux"]["namespaces"].append({"type": "time"})
    bundle.config["linux"]["timeOffsets"] = {"boottime": {"secs": 1000}}
    bundle.config["process"]["args"] = ["cat", "/proc/uptime"]
    with open("/proc/uptime") as f:
        host = float(f.read().split()[0])
    p = pyrunc("run", "t2", bundle=bundle)
    assert p.returncode == 0, p.stderr
    assert float(p.stdout.split()[0]) > host + 990


def test_mapping_without_user_namespace_is_rejected(pyrunc, bundle):
    bundle.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 10}]
    bundle.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 10}]
    p = pyrunc("create", "bad", bundle=bundle)
    assert p.returncode == 1
    assert p.stderr.startswith("config.json: /linux/")


def test_idmapped_bind_mount(pyrunc, bundle, tmp_path):
    """Mount mapping 0 -> 1000: on-disk root-owned files appear as 1000, and what uid 1000 creates
    through the mount lands on disk as 0."""
    src = tmp_path / "data"
    src.mkdir()
    (src / "f").write_text("x")
    bundle.config["mounts"].append({"destination": "/data", "type": "bind", "source": str(src),
                                    "options": ["rbind", "idmap"],
                                    "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                                    "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]})
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    bundle.config["process"]["args"] = ["sh", "-c", "stat -c '%u %g' /data/f; touch /data/new"]
    p = pyrunc("run", "id1", bundle=bundle)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "1000 1000"
    assert os.stat(src / "new").st_uid == 0
    assert os.stat(src / "f").st_uid == 0, "the source itself is untouched"


def test_idmap_on_a_non_bind_mount_is_refused(pyrunc, bundle):
    bundle.config["mounts"].append({"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                                    "options": ["idmap"],
                                    "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                                    "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]})
    p = pyrunc("create", "id2", bundle=bundle)
    assert p.returncode == 1 and "idmap" in p.stderr


def test_shifted_root_writes_its_rootfs(runtime, bundle):
    """Host 100000 (size 65536): root inside, 100000 outside, and it can write a rootfs it owns."""
    add_userns(bundle)
    for dirpath, dirnames, filenames in os.walk(bundle.rootfs):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            st = os.lstat(name)
            os.lchown(name, st.st_uid + 100000, st.st_gid + 100000)
    bundle.config["process"]["args"] = ["sh", "-c", "id -u; echo hello > /written; stat -c %u /written"]
    p = runtime("run", "w1", bundle=bundle)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["0", "0"]
    assert os.stat(bundle.rootfs / "written").st_uid == 100000
