"""`pyrunc check` on crafted configs: each class of finding, the exit status, bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pyrunc import lint
from pyrunc.cli import main
from pyrunc.cli.spec import default_config
from pyrunc.options import CreateOptions
from pyrunc.spec.portability import portability
from pyrunc.spec.posture import posture
from tests.unit.test_plan import rootfs


def good() -> dict:
    """`pyrunc spec` with a deny-by-default seccomp profile, the usual masks and no terminal."""
    config = default_config(False)
    config["root"]["path"] = "rootfs"
    config["process"].update(terminal=False, args=["sleep", "1"], noNewPrivileges=True)
    config["root"]["readonly"] = True
    config["linux"]["cgroupsPath"] = f"/pyrunc-unit-check-{os.getpid()}"
    config["linux"]["maskedPaths"] = sorted(set(config["linux"]["maskedPaths"]) | {"/sys/devices/virtual/powercap"})
    config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                                  "syscalls": [{"names": ["read", "write", "exit"], "action": "SCMP_ACT_ALLOW"}]}
    config["linux"]["namespaces"].append({"type": "user"})
    config["linux"]["uidMappings"] = config["linux"]["gidMappings"] = [
        {"containerID": 0, "hostID": 0, "size": 65536}]
    return config


def run(tmp_path: Path, config: dict | str) -> lint.Report:
    b = tmp_path / "bundle"
    if not (b / "rootfs").exists():
        rootfs(b)
    (b / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    return lint.check(str(b), root=str(tmp_path / "state"), cid="k1", opts=CreateOptions(bundle=str(b)))


def found(report: lint.Report, cls: str, level: str | None = None) -> list[tuple[str, str]]:
    return [(f["pointer"], f["message"]) for f in report.findings
            if f["class"] == cls and (level is None or f["level"] == level)]


def test_a_careful_config_has_no_warning(tmp_path):
    pytest.importorskip("jsonschema")
    report = run(tmp_path, good())
    assert not report.fails("warning"), report.findings
    assert report.jsonschema["available"] and report.jsonschema["agrees"]
    assert not (tmp_path / "state").exists()


def test_json_schema_and_semantic_errors_with_pointers(tmp_path):
    assert found(run(tmp_path, "{"), "json") == [("", "invalid JSON at line 1 column 2: Expecting property "
                                                     "name enclosed in double quotes")]
    c = good()
    c["process"]["args"] = "sleep"
    c["mounts"][0]["destination"] = 5
    report = run(tmp_path, c)
    assert found(report, "schema") == [("/process/args", "'sleep' is not of type 'array'"),
                                       ("/mounts/0/destination", "5 is not of type 'string'")]
    c = good()
    c["linux"]["namespaces"].append({"type": "pid"})
    c["hostname"] = "h\x00"
    report = run(tmp_path, c)
    assert [p for p, _ in found(report, "semantic")] == ["/hostname", f"/linux/namespaces/{len(c['linux']['namespaces']) - 1}/type"]


def test_jsonschema_gives_a_second_opinion(tmp_path):
    pytest.importorskip("jsonschema")
    c = good()
    c["process"]["rlimits"][0]["hard"] = 1024.0  # an integer to JSON Schema, not to Go or pyrunc
    report = run(tmp_path, c)
    assert found(report, "schema")[0][0] == "/process/rlimits/0/hard"
    assert found(report, "jsonschema", "info")[0][0] == "/process/rlimits/0/hard"
    assert not report.jsonschema["agrees"]


def test_create_refusals_found_by_the_plan(tmp_path):
    c = good()
    c["mounts"].append({"destination": "/x", "type": "bind", "source": "/no/such/source"})
    c["process"]["args"] = ["missing-program"]
    report = run(tmp_path, c)
    pointers = [p for p, _ in found(report, "create", "error")]
    assert pointers == [f"/mounts/{len(c['mounts']) - 1}", "/process/args/0"], report.findings


SECURITY = [
    ("host namespaces", lambda c: c["linux"].update(namespaces=[{"type": "mount"}]),
     "no pid namespace"),
    ("privileged capability", lambda c: c["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN"),
     "CAP_SYS_ADMIN"),
    ("no capabilities field", lambda c: c["process"].pop("capabilities"), "keeps every capability"),
    ("no seccomp", lambda c: c["linux"].pop("seccomp"), "no seccomp profile"),
    ("permissive seccomp", lambda c: c["linux"]["seccomp"].update(defaultAction="SCMP_ACT_ALLOW"), "permissive"),
    ("risky syscall allowed", lambda c: c["linux"]["seccomp"]["syscalls"][0]["names"].append("keyctl"), "keyctl"),
    ("unmasked /proc path", lambda c: c["linux"]["maskedPaths"].remove("/proc/kcore"), "/proc/kcore"),
    ("writable /proc/sys", lambda c: c["linux"]["readonlyPaths"].remove("/proc/sys"), "/proc/sys is neither"),
    ("sysfs read-write", lambda c: c["mounts"][5]["options"].remove("ro"), "sysfs on /sys is mounted read-write"),
    ("host socket", lambda c: c["mounts"].append({"destination": "/d.sock", "type": "bind", "source": "/run/docker.sock",
                                                  "options": ["rbind"]}), "host socket /run/docker.sock"),
    ("host root", lambda c: c["mounts"].append({"destination": "/host", "type": "bind", "source": "/",
                                                "options": ["rbind", "ro"]}), "binds the host's / (read-only)"),
    ("devices allowed", lambda c: c["linux"]["resources"].update(devices=[{"allow": True, "access": "rwm"}]),
     "never deny everything"),
    ("/dev/mem", lambda c: c["linux"].update(devices=[{"path": "/dev/mem", "type": "c", "major": 1, "minor": 1}]),
     "physical memory"),
    ("block device", lambda c: c["linux"].update(devices=[{"path": "/dev/sda", "type": "b", "major": 8,
                                                           "minor": 0}]), "host block device"),
]


@pytest.mark.parametrize("name,change,expect", SECURITY, ids=[s[0] for s in SECURITY])
def test_security_posture(name, change, expect):
    c = good()
    assert [f for f in posture(c) if f[0] == "warning"] == []
    change(c)
    warnings = [m for level, _, m in posture(c) if level == "warning"]
    assert any(expect in m for m in warnings), warnings


PORTABILITY = [
    ("pids.limit 0", lambda c: c["linux"]["resources"].update(pids={"limit": 0}), "pids.limit 0"),
    ("rbind,ro", lambda c: c["mounts"].append({"destination": "/d", "type": "bind", "source": "/tmp",
                                               "options": ["rbind", "ro"]}), "stay writable"),
    ("cpu.shares", lambda c: c["linux"]["resources"].update(cpu={"shares": 1024}), "cpu.weight 39"),
    ("rootfsPropagation", lambda c: c["linux"].update(rootfsPropagation="shared"), "rootfsPropagation shared"),
    ("no pid namespace", lambda c: c["linux"]["namespaces"].remove({"type": "pid"}), "no pid namespace"),
    ("seccomp without flags", lambda c: c["linux"]["seccomp"].pop("flags"), "SPEC_ALLOW"),
    ("scheduler", lambda c: c["process"].update(scheduler={"policy": "SCHED_OTHER"}), "ignored by runc before 1.2"),
    ("time namespace", lambda c: c["linux"]["namespaces"].append({"type": "time"}), "runc 1.1 refuses"),
    ("idmapped mount", lambda c: c["mounts"].append({"destination": "/d", "type": "bind", "source": "/tmp",
                                                     "options": ["rbind", "idmap"]}), "idmapped mount"),
]


@pytest.mark.parametrize("name,change,expect", PORTABILITY, ids=[p[0] for p in PORTABILITY])
def test_portability(name, change, expect):
    c = good()
    assert [f for f in portability(c, masked_dirs=[]) if f[0] == "warning"] == []
    change(c)
    warnings = [m for level, _, m in portability(c, masked_dirs=[]) if level == "warning"]
    assert any(expect in m for m in warnings), warnings


def test_masked_directories_are_a_note():
    notes = portability(good(), masked_dirs=["/proc/acpi", "/sys/firmware"])
    assert [level for level, _, m in notes if "masked directories" in m] == ["info"]


def test_exit_status_by_fail_on_and_json(tmp_path, capsys):
    c = good()
    c["linux"]["resources"]["pids"] = {"limit": 0}  # a warning, no error
    run(tmp_path, c)
    b = str(tmp_path / "bundle")
    assert main(["--root", str(tmp_path / "state"), "check", "-b", b]) == 0
    assert "pids.limit 0" in capsys.readouterr().out
    assert main(["--root", str(tmp_path / "state"), "check", "-b", b, "--fail-on", "warning", "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["error"] == 0 and doc["summary"]["warning"] >= 1
    assert {"level", "class", "pointer", "message"} <= set(doc["findings"][0])
    assert main(["check", "-b", b, "--fail-on", "never"]) == 1
    assert "invalid --fail-on" in capsys.readouterr().err


def test_unreadable_bundle_is_one_line(tmp_path, capsys):
    assert main(["check", "-b", str(tmp_path / "nope")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "No such file or directory" in lines[0], lines


def test_broken_config_lists_every_problem_never_a_traceback(tmp_path, capsys):
    c = good()
    c["process"]["args"] = 1
    c["linux"]["namespaces"] = "all"
    c["mounts"] = {"not": "a list"}
    run(tmp_path, c)
    assert main(["check", "-b", str(tmp_path / "bundle")]) == 1
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    assert out.out.count("[schema]") == 3
