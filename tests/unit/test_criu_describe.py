"""How checkpoint/restore describe a container to CRIU (no kernel, no CRIU needed)."""

from __future__ import annotations

import json

import pytest

from pyrunc.criu import common, dump, restore
from pyrunc.errors import PyruncError

CONFIG = {
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/etc/hosts", "type": "bind", "source": "/var/lib/x/hosts", "options": ["bind"]},
        {"destination": "data//sub/", "type": "none", "source": "vol", "options": ["rbind", "ro"]},
    ],
    "linux": {"maskedPaths": ["/proc/kcore", "/proc/acpi"], "devices": [{"path": "/dev/fuse"}],
              "namespaces": [{"type": "pid"}, {"type": "network", "path": "/var/run/netns/n1"},
                             {"type": "uts", "path": "/proc/7/ns/uts"}]},
}


def test_dump_mounts_label_binds_masked_files_and_devices(tmp_path, monkeypatch):
    out = dump.dump_mounts(CONFIG, 999999999)  # no such pid: masked paths cannot be looked at
    assert out[:2] == [{"key": "/etc/hosts", "val": "/etc/hosts"}, {"key": "/data/sub", "val": "/data/sub"}]
    keys = [m["key"] for m in out]
    assert "/proc/kcore" not in keys  # unknowable without the process: skipped, as runc does
    assert keys[2:] == list(common.DEFAULT_DEVICE_PATHS) + ["/dev/fuse"]


def test_restore_mounts_map_labels_to_host_sources():
    out = restore.restore_mounts(CONFIG, "/bundle")
    assert out[0] == {"key": "/etc/hosts", "val": "/var/lib/x/hosts"}
    assert out[1] == {"key": "/data/sub", "val": "/bundle/vol"}  # relative to the bundle
    assert {"key": "/dev/null", "val": "/dev/null"} in out  # the masked files' label


def test_namespaces_by_path():
    assert common.namespace_paths(CONFIG) == {"network": "/var/run/netns/n1", "uts": "/proc/7/ns/uts"}


def test_cgroup_roots(tmp_path, monkeypatch):
    f = tmp_path / "cgroup"
    f.write_text("0::/a/b\n")
    real_open = open
    monkeypatch.setattr("builtins.open", lambda p, *a, **k: real_open(f if p == "/proc/1/cgroup" else p, *a, **k))
    assert restore.cgroup_roots(1) == [{"ctrl": "", "path": "/a/b"}]
    f.write_text("4:cpu,cpuacct:/x\n1:name=systemd:/y\n")
    assert restore.cgroup_roots(1) == [{"ctrl": "cpu", "path": "/x"}, {"ctrl": "cpuacct", "path": "/x"},
                                       {"ctrl": "name=systemd", "path": "/y"}]


def test_options():
    o = common.CriuOptions(image_path="img", empty_ns=["network"], manage_cgroups_mode="strict")
    assert o.image_path.endswith("/img") and o.log_dir == o.image_path
    assert o.empty_ns_flags() == 0x40000000
    with pytest.raises(PyruncError, match="invalid manage-cgroups-mode"):
        common.CriuOptions(manage_cgroups_mode="x")
    with pytest.raises(PyruncError, match="only 'network'"):
        common.CriuOptions(empty_ns=["pid"]).empty_ns_flags()
    assert common.config_file_opt({}) == common.RUNC_CRIU_CONFIG
    assert common.config_file_opt({"annotations": {"org.criu.config": ""}}) is None
    assert common.config_file_opt({"annotations": {"org.criu.config": "/c.conf"}}) == "/c.conf"


def test_read_images(tmp_path):
    with pytest.raises(PyruncError, match="does not exist"):
        restore.read_images(str(tmp_path / "nope"))
    with pytest.raises(PyruncError, match="no inventory.img"):
        restore.read_images(str(tmp_path))
    (tmp_path / "inventory.img").write_bytes(b"")
    (tmp_path / "descriptors.json").write_text(json.dumps(["pipe:[1]", "/dev/null", "pipe:[2]"]))
    assert restore.read_images(str(tmp_path)) == ["pipe:[1]", "/dev/null", "pipe:[2]"]
    (tmp_path / "descriptors.json").write_text(json.dumps({"a": 1}))
    with pytest.raises(PyruncError, match="corrupt"):
        restore.read_images(str(tmp_path))


def test_tail_errors(tmp_path):
    log = tmp_path / "dump.log"
    log.write_text("(00.1) fine\n(00.2) Error (criu/x.c:1): first\n(00.3) Error (criu/y.c:2): second\n")
    assert common.tail_errors(str(log)) == "first; second"
    assert common.tail_errors(str(tmp_path / "none")) == ""
