"""Compiled filters installed for real: each case forks a child, loads the filter there, probes.

The test process itself never gets a filter. Children report over a pipe as
JSON and always leave through os._exit. Probes that would change the host if
the filter failed open (sethostname) run in a private UTS namespace.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from pyrunc.errors import SyscallError
from pyrunc.security import seccomp

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
              pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers are x86_64")]

REPO = Path(__file__).resolve().parents[2]
PODMAN_CAPTURED = REPO / "tests" / "fixtures" / "configs" / "podman.json"
PODMAN_PROFILE = Path("/usr/share/containers/seccomp.json")
ARCHES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]

libc = ctypes.CDLL(None, use_errno=True)
_syscall = libc.syscall
_syscall.restype = ctypes.c_long
PR_SET_NO_NEW_PRIVS = 38
NR_KEYCTL, NR_USERFAULTFD, NR_PERSONALITY, NR_SETHOSTNAME = 250, 323, 135, 170


def raw(nr: int, *args: int) -> int:
    """A raw syscall: the result, or -errno."""
    ret = _syscall(ctypes.c_long(nr), *[ctypes.c_ulong(a) for a in args])
    return -ctypes.get_errno() if ret == -1 else ret


def in_child(flt: seccomp.CompiledFilter, probe, *, nnp: bool = True, unshare_uts: bool = False):
    """Fork; the child loads `flt` and runs `probe()`; return (wait status, probe result or None)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            if unshare_uts:
                if libc.unshare(0x04000000) != 0:  # CLONE_NEWUTS (os.unshare is 3.12+)
                    raise OSError(ctypes.get_errno(), "unshare")
            if nnp:
                libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            fd = flt.load()
            result = probe(fd) if flt.needs_notify else probe()
            os.write(w, json.dumps(result).encode())
        except BaseException as e:  # noqa: BLE001 - report anything, never return into pytest
            try:
                os.write(w, json.dumps({"exception": repr(e)}).encode())
            except BaseException:  # noqa: BLE001
                pass
            code = 3
        os._exit(code)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return status, (json.loads(data) if data else None)


def compiled(default: str, *rules: dict, **extra) -> seccomp.CompiledFilter:
    cfg = {"defaultAction": default, "architectures": ARCHES, "syscalls": list(rules), **extra}
    return seccomp.compile_filter(cfg, cache_dir=None)


def try_mkdir(path: str) -> int:
    try:
        os.mkdir(path)
        os.rmdir(path)
        return 0
    except OSError as e:
        return e.errno


def test_errno_on_mkdir_returns_the_configured_errno(tmp_path):
    flt = compiled("SCMP_ACT_ALLOW", {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                                      "errnoRet": errno.EXDEV})
    status, got = in_child(flt, lambda: {"mkdir": try_mkdir(str(tmp_path / "d")),
                                         "rmdir_missing": raw(84, 0)})
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, got
    assert got["mkdir"] == errno.EXDEV
    assert not (tmp_path / "d").exists()


def test_errno_without_errnoret_is_eperm(tmp_path):
    flt = compiled("SCMP_ACT_ALLOW", {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"})
    _, got = in_child(flt, lambda: try_mkdir(str(tmp_path / "d")))
    assert got == errno.EPERM


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD",
                                    "SCMP_ACT_TRAP"])
def test_kill_and_trap_end_the_child_with_sigsys(tmp_path, action):
    flt = compiled("SCMP_ACT_ALLOW", {"names": ["mkdir", "mkdirat"], "action": action})
    status, got = in_child(flt, lambda: try_mkdir(str(tmp_path / "d")))
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS, (status, got)


def test_trace_without_a_tracer_fails_the_call_with_enosys(tmp_path):
    flt = compiled("SCMP_ACT_ALLOW", {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_TRACE",
                                      "errnoRet": 5})
    _, got = in_child(flt, lambda: try_mkdir(str(tmp_path / "d")))
    assert got == errno.ENOSYS


def test_log_action_and_every_flag_are_accepted(tmp_path):
    flags = ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
             "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    flt = compiled("SCMP_ACT_ALLOW", {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_LOG"},
                   flags=flags)
    status, got = in_child(flt, lambda: [try_mkdir(str(tmp_path / "d")),
                                         open("/proc/self/status").read().split("Seccomp:")[1].split()[0]])
    assert os.WIFEXITED(status) and got == [0, "2"]


def test_argument_condition_personality():
    flt = compiled("SCMP_ACT_ALLOW", {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                                      "errnoRet": errno.EXDEV,
                                      "args": [{"index": 0, "value": 0xFFFFFFFF, "op": "SCMP_CMP_EQ"}]})
    _, got = in_child(flt, lambda: [raw(NR_PERSONALITY, 0xFFFFFFFF), raw(NR_PERSONALITY, 0)])
    assert got[0] == -errno.EXDEV
    assert got[1] >= 0


def test_socket_af_inet_only_and_two_args_anded():
    # socket(AF_INET, type) with (type & SOCK_TYPE_MASK) == SOCK_DGRAM: flags like SOCK_CLOEXEC
    # in the type argument must not let the call through.
    deny_inet = {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EAFNOSUPPORT,
                 "args": [{"index": 0, "value": socket.AF_INET, "op": "SCMP_CMP_EQ"},
                          {"index": 1, "value": 0xF, "valueTwo": socket.SOCK_DGRAM,
                           "op": "SCMP_CMP_MASKED_EQ"}]}

    def probe():
        out = {}
        for name, fam, typ in (("inet_dgram", socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC),
                               ("inet_stream", socket.AF_INET, socket.SOCK_STREAM),
                               ("unix_dgram", socket.AF_UNIX, socket.SOCK_DGRAM)):
            try:
                socket.socket(fam, typ).close()
                out[name] = 0
            except OSError as e:
                out[name] = e.errno
        return out

    _, got = in_child(compiled("SCMP_ACT_ALLOW", deny_inet), probe)
    assert got == {"inet_dgram": errno.EAFNOSUPPORT, "inet_stream": 0, "unix_dgram": 0}


def test_allow_list_denies_the_rest_by_default(tmp_path):
    allow = {"names": ["read", "write", "close", "exit", "exit_group", "brk", "mmap", "munmap",
                       "rt_sigaction", "rt_sigprocmask", "getpid", "fstat", "newfstatat", "lseek"],
             "action": "SCMP_ACT_ALLOW"}
    flt = compiled("SCMP_ACT_ERRNO", allow, defaultErrnoRet=errno.EACCES)
    status, got = in_child(flt, lambda: [try_mkdir(str(tmp_path / "d")), os.getpid() > 0,
                                         raw(NR_KEYCTL, 0, 0), raw(470)])
    # keyctl is known to the profile's range (below its highest syscall): the default action.
    # 470 is above every syscall the profile names: runc's stub answers ENOSYS.
    assert os.WIFEXITED(status) and got == [errno.EACCES, True, -errno.EACCES, -errno.ENOSYS]


def test_without_nnp_load_needs_cap_sys_admin():
    flt = compiled("SCMP_ACT_ALLOW", {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"})

    def drop_then_load():
        libc.prctl(8, 0, 0, 0, 0)  # PR_SET_KEEPCAPS off
        os.setresuid(65534, 65534, 65534)
        try:
            flt.load()
        except SyscallError as e:
            return [e.errno, e.step]
        return "loaded"

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(w, json.dumps(drop_then_load()).encode())
        finally:
            os._exit(0)
    os.close(w)
    got = json.loads(os.read(r, 4096))
    os.close(r)
    os.waitpid(pid, 0)
    assert got == [errno.EACCES, "seccomp"]


# -- SCMP_ACT_NOTIFY --------------------------------------------------------------------------

SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101
NOTIF = struct.Struct("<QII iI Q 6Q")  # id, pid, flags, data{nr, arch, ip, args}
RESP = struct.Struct("<QqiI")  # id, val, error, flags


def test_notify_sends_the_listener_and_the_agent_answers(tmp_path):
    """The child hands its listener to an agent at listenerPath; the agent fails mkdir with EXDEV."""
    path = str(tmp_path / "agent.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    flt = compiled("SCMP_ACT_ALLOW", {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"},
                   flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"])
    assert flt.needs_notify
    state = {"ociVersion": "1.0.2", "id": "n1", "status": "creating", "pid": 1, "bundle": "/b"}
    conn_early = seccomp.connect_listener(path)  # as the init would, before pivot_root

    def probe(fd):
        seccomp.send_listener(conn_early, fd, state, "meta", pid=os.getpid())
        os.close(fd)
        return try_mkdir(str(tmp_path / "d"))

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        server.close()
        try:
            fd = flt.load()
            os.write(w, json.dumps(probe(fd)).encode())
        finally:
            os._exit(0)
    os.close(w)
    conn_early.close()
    conn, _ = server.accept()
    data, fds, _, _ = socket.recv_fds(conn, 65536, 4)
    conn.close()
    server.close()
    doc = json.loads(data)
    assert doc["fds"] == ["seccompFd"] and doc["pid"] == pid and doc["metadata"] == "meta"
    assert doc["state"] == state
    (listener,) = fds
    buf = bytearray(NOTIF.size)
    fcntl.ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, buf)
    nid, npid, _, nr, _, _, *_ = NOTIF.unpack(buf)
    assert npid == pid and nr in (83, 258)  # mkdir or mkdirat
    fcntl.ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, bytearray(RESP.pack(nid, 0, -errno.EXDEV, 0)))
    got = json.loads(os.read(r, 4096))
    os.close(r)
    os.close(listener)
    os.waitpid(pid, 0)
    assert got == errno.EXDEV


# -- the podman profile ---------------------------------------------------------------------------


def podman_default_caps() -> set[str]:
    return {"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
            "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID",
            "CAP_SYS_CHROOT"}


def oci_from_containers_profile(doc: dict, caps: set[str], arch: str = "amd64") -> dict:
    """Turn containers-common's seccomp.json (archMap, includes/excludes) into linux.seccomp,
    the way podman does for a container on `arch` with capability set `caps`."""
    native = {"amd64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64"}[arch]
    arches: list[str] = []
    for entry in doc.get("archMap") or []:
        if entry["architecture"] == native:
            arches = [native, *(entry.get("subArchitectures") or [])]
    rules = []
    for rule in doc.get("syscalls") or []:
        inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
        if inc.get("arches") and arch not in inc["arches"]:
            continue
        if inc.get("caps") and not set(inc["caps"]) <= caps:
            continue
        if exc.get("arches") and arch in exc["arches"]:
            continue
        if exc.get("caps") and set(exc["caps"]) & caps:
            continue
        out = {"names": rule.get("names") or [rule["name"]], "action": rule["action"],
               "args": rule.get("args") or []}
        if rule.get("errnoRet") is not None:
            out["errnoRet"] = rule["errnoRet"]
        rules.append(out)
    cfg = {"defaultAction": doc["defaultAction"], "architectures": arches, "syscalls": rules}
    if doc.get("defaultErrnoRet") is not None:
        cfg["defaultErrnoRet"] = doc["defaultErrnoRet"]
    return cfg


def podman_profiles():
    yield pytest.param(json.loads(PODMAN_CAPTURED.read_text())["linux"]["seccomp"], id="captured")
    if PODMAN_PROFILE.exists():
        doc = json.loads(PODMAN_PROFILE.read_text())
        yield pytest.param(oci_from_containers_profile(doc, podman_default_caps()), id="containers-common")
    else:
        yield pytest.param(None, id="containers-common",
                           marks=pytest.mark.skip(reason=f"{PODMAN_PROFILE} not installed"))


@pytest.mark.parametrize("cfg", list(podman_profiles()))
def test_podman_profile_runs_programs_and_denies_what_it_denies(cfg, tmp_path):
    flt = seccomp.compile_filter(cfg, cache_dir=str(tmp_path / "cache"))
    assert flt.warnings == []

    def probe():
        run = subprocess.run
        return {
            "true": run(["/bin/true"]).returncode,
            "python": run([sys.executable, "-c", "print(1)"], capture_output=True).stdout.decode(),
            "hostname": run(["busybox", "hostname", "pyrunc-must-not"], capture_output=True,
                            text=True).stderr.strip(),
            "sethostname": raw(NR_SETHOSTNAME, 0, 0),
            "userfaultfd": raw(NR_USERFAULTFD, 0),
            "personality_linux32_query": raw(NR_PERSONALITY, 0xFFFFFFFF) >= 0,
            "personality_odd": raw(NR_PERSONALITY, 0x0400000),
            "tuxcall_not_listed": raw(184),
            "newer_than_profile": raw(470),
            "keyctl_allowed": raw(NR_KEYCTL, 0, 0) != -errno.ENOSYS,
            "unshare_user": run(["unshare", "-U", "true"]).returncode,
        }

    status, got = in_child(flt, probe, unshare_uts=True)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, got
    assert got["true"] == 0 and got["python"] == "1\n"
    assert "Operation not permitted" in got["hostname"] or "not permitted" in got["hostname"].lower()
    assert got["sethostname"] == -errno.EPERM
    assert got["userfaultfd"] == -errno.EPERM
    assert got["personality_linux32_query"] is True
    assert got["personality_odd"] == -errno.ENOSYS
    assert got["tuxcall_not_listed"] == -errno.ENOSYS
    assert got["newer_than_profile"] == -errno.ENOSYS
    assert got["keyctl_allowed"] is True
    assert got["unshare_user"] == 0  # podman's profile allows unshare; only caps could stop it
    assert os.uname().nodename != "pyrunc-must-not"


def test_podman_profile_loaded_then_exec_true(tmp_path):
    """The init's order: load as the very last step, then execve; the program runs normally."""
    flt = seccomp.compile_filter(json.loads(PODMAN_CAPTURED.read_text())["linux"]["seccomp"],
                                 cache_dir=None)
    pid = os.fork()
    if pid == 0:
        try:
            flt.load()
            os.execv("/bin/sh", ["sh", "-c", "grep -q '^Seccomp:.*2' /proc/self/status && exit 7"])
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 7
