"""linux.seccomp in real containers, pyrunc and runc side by side."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "configs"


def deny_mkdir(errno_ret=13):
    return {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno_ret}]}


@pytest.mark.parametrize("nnp", [True, False])
def test_errno_rule(runtime, bundle, nnp):
    bundle.config["process"]["noNewPrivileges"] = nnp
    bundle.config["linux"]["seccomp"] = deny_mkdir()
    bundle.config["process"]["args"] = ["sh", "-c", "mkdir /x 2>&1; grep Seccomp: /proc/self/status"]
    p = runtime("run", "s1", bundle=bundle)
    assert p.returncode == 0, p.stderr
    assert "Permission denied" in p.stdout
    assert "Seccomp:\t2" in p.stdout


def test_exec_gets_the_filter(runtime, bundle):
    bundle.config["linux"]["seccomp"] = deny_mkdir(1)
    bundle.config["process"]["args"] = ["sleep", "100"]
    runtime("run", "-d", "s2", bundle=bundle, check=True)
    p = runtime("exec", "s2", "sh", "-c", "mkdir /y 2>&1; true")
    assert "Operation not permitted" in p.stdout


def test_kill_process_action(runtime, bundle):
    bundle.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                                         "syscalls": [{"names": ["mkdir", "mkdirat"],
                                                       "action": "SCMP_ACT_KILL_PROCESS"}]}
    bundle.config["process"]["args"] = ["mkdir", "/z"]
    p = runtime("run", "s3", bundle=bundle)
    assert p.returncode == 128 + 31, "SIGSYS"


def test_unknown_syscall_name_is_a_warning(pyrunc, bundle, tmp_path):
    sc = deny_mkdir()
    sc["syscalls"].append({"names": ["no_such_syscall_xyz"], "action": "SCMP_ACT_ERRNO"})
    bundle.config["linux"]["seccomp"] = sc
    log = tmp_path / "log.json"
    p = pyrunc("run", "s4", bundle=bundle, log=str(log), log_format="json")
    assert p.returncode == 0, p.stderr
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(r["level"] == "warning" and "no_such_syscall_xyz" in r["msg"] for r in records)


def test_unknown_action_is_a_config_error(pyrunc, bundle):
    bundle.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_NOPE"}
    p = pyrunc("create", "s5", bundle=bundle)
    assert p.returncode == 1
    assert "SCMP_ACT_NOPE" in p.stderr
    assert not (pyrunc.root / "s5").exists()


PROBES = {
    "true": "true",
    "hostname": "hostname x",
    "mount": "mount -t tmpfs none /mnt",
    "unshare-net": "unshare -n true",
    "chroot": "chroot / true",
    "mknod": "rm -f /tmp/n; mknod /tmp/n c 1 3",
    "swapoff": "swapoff -a",
    "reboot": "reboot -f",
}


def test_podman_default_profile_matches_runc(pyrunc, runc, bundle, tmp_path):
    """podman's real default profile (captured config): the same probes, the same exit codes."""
    podman = json.loads((FIXTURES / "podman.json").read_text())
    bundle.config["linux"]["seccomp"] = podman["linux"]["seccomp"]
    bundle.config["process"]["capabilities"] = podman["process"]["capabilities"]
    script = "; ".join(f"{cmd} >/dev/null 2>&1; echo {name}=$?" for name, cmd in PROBES.items())
    bundle.config["process"]["args"] = ["sh", "-c", script]
    results = {}
    for rt in (pyrunc, runc):
        p = rt("run", "pod1", bundle=bundle)
        assert p.returncode == 0, (rt.name, p.stderr)
        results[rt.name] = dict(line.split("=") for line in p.stdout.split())
    assert results["pyrunc"] == results["runc"]
    assert results["pyrunc"]["true"] == "0"
    assert results["pyrunc"]["mount"] != "0"
