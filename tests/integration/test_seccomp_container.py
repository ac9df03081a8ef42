"""linux.seccomp in real containers, pyrunc and runc side by side."""

from __future__ import annotations

import json
import os
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


class _CountingAgent:
    """A listenerPath socket that accepts (and drops) every connection, counting them."""

    def __init__(self, path: Path):
        import socket
        import threading

        self.path = str(path)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(8)
        self.server.settimeout(0.2)
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        import socket

        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                continue
            self.count += 1
            with conn:  # read the state and the listener fd before hanging up, as an agent does
                conn.settimeout(5)
                try:
                    _, fds, _, _ = socket.recv_fds(conn, 65536, 4)
                except OSError:
                    fds = []
                for fd in fds:
                    os.close(fd)

    def close(self) -> int:
        self._stop.set()
        self._thread.join(5)
        self.server.close()
        return self.count


@pytest.mark.parametrize("nnp", [True, False])
@pytest.mark.parametrize("notify", [False, True], ids=["no-notify-rule", "notify-rule"])
def test_listener_only_used_with_a_notify_rule(runtime, bundle, tmp_path, nnp, notify):
    """Issue 12 #12: listenerPath is for SCMP_ACT_NOTIFY; without such a rule the runtime does not
    connect to it (neither for the init nor for exec). With one (on a syscall the program never
    makes) it connects once per process, which shows the agent here would have seen a connection."""
    agent = _CountingAgent(tmp_path / "agent.sock")
    try:
        rules = [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        if notify:
            rules.append({"names": ["acct"], "action": "SCMP_ACT_NOTIFY"})
        bundle.config["process"]["noNewPrivileges"] = nnp
        bundle.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules,
                                             "listenerPath": agent.path}
        bundle.config["process"]["args"] = ["sleep", "100"]
        runtime("run", "-d", "l1", bundle=bundle, check=True)
        p = runtime("exec", "l1", "sh", "-c", "mkdir /y 2>&1; echo done")
        assert p.returncode == 0, p.stderr
        assert "Operation not permitted" in p.stdout and "done" in p.stdout
    finally:
        runtime("delete", "--force", "l1")
        connections = agent.close()
    assert connections == (2 if notify else 0)
