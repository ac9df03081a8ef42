"""Bad input: one clear line on stderr, exit 1, and nothing left behind."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import mounts_snapshot


def cgroup_dirs_named(name: str) -> list[str]:
    found = []
    for base, dirs, _ in os.walk("/sys/fs/cgroup"):
        if name in dirs:
            found.append(os.path.join(base, name))
        if base.count("/") > 8:
            dirs[:] = []
    return found


def assert_nothing_left(rt, cid, before_mounts, bundle=None):
    assert not (rt.root / cid).exists(), "state directory left behind"
    assert mounts_snapshot(str(rt.root.parent)) == before_mounts, "mounts left behind"
    if bundle is not None:
        assert cgroup_dirs_named(bundle.config["linux"]["cgroupsPath"]) == [], "cgroup left behind"


def fails_cleanly(rt, bundle, cid="bad-1", *args):
    before = mounts_snapshot(str(rt.root.parent))
    p = rt("create", *args, cid, bundle=bundle) if bundle is not None else rt("create", *args, cid)
    assert p.returncode == 1, p.stderr
    lines = p.stderr.strip().splitlines()
    assert lines, "an error must be reported"
    assert "Traceback" not in p.stderr
    assert_nothing_left(rt, cid, before, bundle)
    return lines


def test_malformed_json_names_line_and_column(pyrunc, bundle):
    (bundle.path / "config.json").write_text('{\n  "ociVersion": "1.3.0",\n  "process": {,}\n}\n')
    before = mounts_snapshot(str(pyrunc.root.parent))
    p = pyrunc("create", "bad-1", cwd=bundle.path)
    assert p.returncode == 1
    assert len(p.stderr.strip().splitlines()) == 1
    assert "line 3" in p.stderr and "column" in p.stderr
    assert_nothing_left(pyrunc, "bad-1", before)


def test_schema_violation_is_pointer_and_message(pyrunc, bundle):
    bundle.config["process"]["args"] = "x"
    lines = fails_cleanly(pyrunc, bundle)
    assert lines == ["config.json: /process/args: 'x' is not of type 'array'"]


def test_several_schema_violations_one_line_each(pyrunc, bundle):
    bundle.config["process"]["args"] = "x"
    bundle.config["hostname"] = 7
    lines = fails_cleanly(pyrunc, bundle)
    assert len(lines) == 2
    assert all(line.startswith("config.json: /") for line in lines)


def test_missing_rootfs(runtime, bundle):
    bundle.config["root"]["path"] = "nonexistent"
    fails_cleanly(runtime, bundle)


def test_missing_bind_source(runtime, bundle):
    bundle.config["mounts"].append({"destination": "/x", "type": "bind", "source": "/nonexistent/src",
                                    "options": ["rbind"]})
    fails_cleanly(runtime, bundle)


def test_bad_namespace_path(runtime, bundle):
    bundle.config["linux"]["namespaces"] = [
        ns if ns["type"] != "network" else {"type": "network", "path": "/proc/1/ns/uts"}
        for ns in bundle.config["linux"]["namespaces"]]
    fails_cleanly(runtime, bundle)


def test_nonexistent_namespace_path(runtime, bundle):
    bundle.config["linux"]["namespaces"] = [
        ns if ns["type"] != "network" else {"type": "network", "path": "/nonexistent/ns"}
        for ns in bundle.config["linux"]["namespaces"]]
    fails_cleanly(runtime, bundle)


@pytest.mark.parametrize("cid", ["a/b", "..", "../../etc", "a b", ""])
def test_bad_ids(runtime, bundle, cid):
    bundle.write()
    p = runtime("create", cid, cwd=bundle.path)
    assert p.returncode != 0
    if runtime.name == "pyrunc":
        assert "invalid container ID format" in p.stderr or '"create" requires exactly 1' in p.stderr
        assert p.returncode == 1
    assert not os.path.exists(os.path.join(runtime.root, "etc"))


def test_executable_not_found(runtime, bundle):
    bundle.config["process"]["args"] = ["no-such-program"]
    lines = fails_cleanly(runtime, bundle)
    assert "executable file not found in $PATH" in lines[-1]


def test_duplicate_namespace(pyrunc, bundle):
    bundle.config["linux"]["namespaces"].append({"type": "pid"})
    lines = fails_cleanly(pyrunc, bundle)
    assert lines[0].startswith("config.json: /linux/namespaces")


def test_relative_cwd(pyrunc, bundle):
    bundle.config["process"]["cwd"] = "relative"
    lines = fails_cleanly(pyrunc, bundle)
    assert lines[0].startswith("config.json: /process/cwd")


def test_error_in_json_log_is_one_record(pyrunc, bundle, tmp_path):
    log = tmp_path / "log.json"
    bundle.config["process"]["args"] = ["no-such-program"]
    p = pyrunc("create", "c1", bundle=bundle, log=str(log), log_format="json")
    assert p.returncode == 1
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["level"] for r in records] == ["error"]
    assert "executable file not found" in records[0]["msg"]
    assert records[0]["msg"] == p.stderr.strip()


def test_missing_config(pyrunc, tmp_path):
    p = pyrunc("create", "c1", cwd=tmp_path)
    assert p.returncode == 1
    assert "config.json" in p.stderr
    assert not (pyrunc.root / "c1").exists()


def test_unknown_command_and_flag(pyrunc):
    assert pyrunc("frobnicate").returncode != 0
    p = pyrunc("create", "--nope", "x")
    assert p.returncode == 1 and "flag provided but not defined" in p.stderr


def test_cgroups_path_with_nul_byte(runtime, bundle):
    """Issue 12 #13: the message names the NUL byte (it used to blame '..' components)."""
    bundle.config["linux"]["cgroupsPath"] = "/test\x00invalid"
    lines = fails_cleanly(runtime, bundle)
    if runtime.name == "pyrunc":
        assert lines == ["config.json: /linux/cgroupsPath: cgroupsPath '/test\\x00invalid' must not "
                         "contain NUL bytes or unpaired surrogates"]
