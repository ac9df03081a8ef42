"""Our protobuf wire codec for CRIU's RPC (pyrunc/criu/rpc.py) against CRIU's own definitions:
the bytes we send parse with pycriu's generated rpc_pb2 (Debian's criu + python3-protobuf), and
what it serialises we decode. Skipped where pycriu or protobuf is not installed."""

from __future__ import annotations

import sys

import pytest

from pyrunc.criu import rpc

DIST = "/usr/lib/python3/dist-packages"


@pytest.fixture(scope="module")
def pb():
    added = DIST not in sys.path
    if added:
        sys.path.append(DIST)  # after the venv's own paths: nothing of ours is shadowed
    try:
        from pycriu import rpc_pb2
    except Exception as e:  # noqa: BLE001 - any import failure means "not available here"
        pytest.skip(f"pycriu/protobuf not importable: {e}")
    finally:
        if added:
            sys.path.remove(DIST)
    return rpc_pb2


def test_request_matches_criu_definitions(pb):
    req = {"type": rpc.RESTORE, "notify_success": True, "opts": {
        "images_dir_fd": 7, "log_level": 4, "log_file": "restore.log", "root": "/r/rootfs",
        "rst_sibling": True, "manage_cgroups_mode": rpc.CG_MODES["soft"], "empty_ns": 0x40000000,
        "ext_mnt": [{"key": "/etc/hosts", "val": "/b/hosts"}, {"key": "/dev/null", "val": "/dev/null"}],
        "inherit_fd": [{"key": "pipe:[123]", "fd": 5}, {"key": "extRootNetNS", "fd": -1}],
        "cg_root": [{"ctrl": "", "path": "/x/y"}], "external": ["net[4026531840]:extRootNetNS"],
        "join_ns": [{"ns": "uts", "ns_file": "/proc/1/ns/uts"}], "ps": {"address": "10.0.0.1", "port": 27},
        "freeze_cgroup": "/sys/fs/cgroup/x", "orphan_pts_master": True, "shell_job": False}}
    msg = pb.criu_req()
    msg.ParseFromString(rpc.encode(req, rpc.REQ))
    assert msg.type == pb.RESTORE and msg.notify_success
    o = msg.opts
    assert (o.images_dir_fd, o.log_level, o.log_file, o.root) == (7, 4, "restore.log", "/r/rootfs")
    assert o.rst_sibling and o.orphan_pts_master and not o.shell_job and o.HasField("shell_job")
    assert o.manage_cgroups_mode == pb.SOFT and o.empty_ns == 0x40000000
    assert [(m.key, m.val) for m in o.ext_mnt] == [("/etc/hosts", "/b/hosts"), ("/dev/null", "/dev/null")]
    assert [(f.key, f.fd) for f in o.inherit_fd] == [("pipe:[123]", 5), ("extRootNetNS", -1)]
    assert o.cg_root[0].HasField("ctrl") and o.cg_root[0].ctrl == "" and o.cg_root[0].path == "/x/y"
    assert list(o.external) == ["net[4026531840]:extRootNetNS"]
    assert (o.join_ns[0].ns, o.join_ns[0].ns_file) == ("uts", "/proc/1/ns/uts")
    assert (o.ps.address, o.ps.port) == ("10.0.0.1", 27)
    assert o.freeze_cgroup == "/sys/fs/cgroup/x"
    # our own field table agrees with CRIU's numbering, field by field
    fields = pb.criu_opts.DESCRIPTOR.fields_by_name
    for name, (num, _kind) in rpc.OPTS.items():
        assert fields[name].number == num, name


def test_responses_decode(pb):
    resp = pb.criu_resp(type=pb.NOTIFY, success=True, cr_errno=-2, cr_errmsg="boom")
    resp.notify.script = "post-restore"
    resp.notify.pid = 4242
    resp.version.major_number = 3
    resp.version.minor_number = 17
    resp.features.mem_track = True
    resp.restore.pid = 99
    got = rpc.decode(resp.SerializeToString(), rpc.RESP)
    assert got["type"] == rpc.NOTIFY and got["success"] is True
    assert got["notify"] == {"script": "post-restore", "pid": 4242}
    assert got["cr_errno"] == -2 and got["cr_errmsg"] == "boom"
    assert got["version"]["major"] == 3 and got["version"]["minor"] == 17
    assert got["features"] == {"mem_track": True} and got["restore"] == {"pid": 99}


def test_codec_without_pycriu():
    data = rpc.encode({"type": rpc.DUMP, "opts": {"images_dir_fd": 3, "pid": -1}}, rpc.REQ)
    assert data[:2] == b"\x08\x01"
    assert rpc.decode(b"\x08\x01\x10\x00\x38\x05", rpc.RESP) == {"type": 1, "success": False, "cr_errno": 5}
    with pytest.raises(ValueError):
        rpc.decode(b"\x08", rpc.RESP)
