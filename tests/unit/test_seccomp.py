"""linux.seccomp without installing anything: validation, compilation, the ENOSYS stub, the cache.

Compiled programs are checked by running them in a small classic-BPF
interpreter against hand-made seccomp_data, so every action, operator and
the stub are exercised without touching the test process's own filter.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pyrunc.errors import PyruncError
from pyrunc.security import seccomp
from pyrunc.security.seccomp_abi import (
    ARCHES,
    SECCOMP_FILTER_FLAG_NEW_LISTENER,
    SECCOMP_FILTER_FLAG_TSYNC,
    SECCOMP_FILTER_FLAG_TSYNC_ESRCH,
    SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
    SECCOMP_RET_ALLOW,
    SECCOMP_RET_ERRNO,
    SECCOMP_RET_KILL_PROCESS,
    SECCOMP_RET_KILL_THREAD,
    SECCOMP_RET_LOG,
    SECCOMP_RET_TRACE,
    SECCOMP_RET_TRAP,
    SECCOMP_RET_USER_NOTIF,
)

REPO = Path(__file__).resolve().parents[2]
PODMAN = REPO / "tests" / "fixtures" / "configs" / "podman.json"
X86_64 = ARCHES["SCMP_ARCH_X86_64"]
X86 = ARCHES["SCMP_ARCH_X86"]
X32 = ARCHES["SCMP_ARCH_X32"]
X32_BIT = 0x40000000
# x86_64 numbers for the syscalls the tests name
NR = {"read": 0, "write": 1, "socket": 41, "mkdir": 83, "umask": 95, "personality": 135, "getpid": 39}

needs_x86_64 = pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers are x86_64")


def run_bpf(prog: bytes, nr: int, args: tuple[int, ...] = (), arch: int = X86_64) -> int:
    """Evaluate a classic BPF seccomp program the way the kernel does; return the action value."""
    full = list(args) + [0] * (6 - len(args))
    data = struct.pack("<iIQ6Q", nr, arch, 0, *full)
    insns = [struct.unpack_from("<HBBI", prog, i) for i in range(0, len(prog), 8)]
    a = x = 0
    mem = [0] * 16
    pc = 0
    mask = 0xFFFFFFFF
    while True:
        code, jt, jf, k = insns[pc]
        pc += 1
        cls = code & 0x07
        if cls == 0x00:  # LD
            mode = code & 0xE0
            a = struct.unpack_from("<I", data, k)[0] if mode == 0x20 else mem[k] if mode == 0x60 else k
        elif cls == 0x01:  # LDX
            x = mem[k] if code & 0xE0 == 0x60 else k
        elif cls == 0x02:
            mem[k] = a
        elif cls == 0x03:
            mem[k] = x
        elif cls == 0x04:  # ALU
            src = x if code & 0x08 else k
            op = code & 0xF0
            a = {0x00: a + src, 0x10: a - src, 0x20: a * src, 0x40: a | src, 0x50: a & src,
                 0x60: a << src, 0x70: a >> src, 0x80: -a, 0xA0: a ^ src}[op] & mask
        elif cls == 0x05:  # JMP
            op = code & 0xF0
            src = x if code & 0x08 else k
            if op == 0x00:
                pc += k
                continue
            cond = {0x10: a == src, 0x20: a > src, 0x30: a >= src, 0x40: bool(a & src)}[op]
            pc += jt if cond else jf
        elif cls == 0x06:  # RET
            return a if code & 0x18 == 0x10 else k
        elif cls == 0x07:
            if code & 0xF8 == 0x80:
                a = x
            else:
                x = a
        else:  # pragma: no cover
            raise AssertionError(f"opcode {code:#x}")


def compiled(cfg: dict) -> seccomp.CompiledFilter:
    return seccomp.compile_filter(cfg, cache_dir=None)


def profile(default: str = "SCMP_ACT_ALLOW", *rules: dict, **extra) -> dict:
    return {"defaultAction": default, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86",
                                                        "SCMP_ARCH_X32"],
            "syscalls": list(rules), **extra}


# -- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("cfg, field", [
    ({"defaultAction": "SCMP_ACT_NOPE"}, "defaultAction"),
    ({"defaultAction": None}, "defaultAction"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}, "errnoRet"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}, "errnoRet"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": True}, "errnoRet"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}, "architectures[0]"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]}, "flags[0]"),
    (profile("SCMP_ACT_ALLOW", {"names": ["mkdir"], "action": "SCMP_ACT_KILL_ALL"}), "syscalls[0].action"),
    (profile("SCMP_ACT_ALLOW", {"names": [], "action": "SCMP_ACT_KILL"}), "syscalls[0].names"),
    (profile("SCMP_ACT_ALLOW", {"action": "SCMP_ACT_KILL"}), "syscalls[0].names"),
    (profile("SCMP_ACT_ALLOW", {"names": ["mkdir"], "action": "SCMP_ACT_KILL", "errnoRet": 1}),
     "errnoRet"),
    (profile("SCMP_ACT_ALLOW", {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                                "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}),
     "args[0].index"),
    (profile("SCMP_ACT_ALLOW", {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                                "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_LIKE"}]}),
     "args[0].op"),
    (profile("SCMP_ACT_ALLOW", {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                                "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}),
     "args[0].value"),
    (profile("SCMP_ACT_ALLOW", {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                                "args": [{"index": 0, "value": 1 << 64, "op": "SCMP_CMP_EQ"}]}),
     "args[0].value"),
    (profile("SCMP_ACT_ALLOW", {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                                "args": [{"index": 0, "value": 1, "valueTwo": "2",
                                          "op": "SCMP_CMP_MASKED_EQ"}]}),
     "args[0].valueTwo"),
])
def test_bad_profiles_name_the_field(cfg, field):
    with pytest.raises(PyruncError) as ei:
        seccomp.normalise(cfg)
    assert ei.value.step == "seccomp"
    assert field in ei.value.cause
    assert "\n" not in ei.value.cause


def test_errno_and_trace_default_to_eperm():
    n = seccomp.normalise(profile("SCMP_ACT_ERRNO", {"names": ["mkdir"], "action": "SCMP_ACT_TRACE"},
                                  {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 0}))
    assert n["default"] == SECCOMP_RET_ERRNO | errno.EPERM
    assert n["rules"][0][0] == SECCOMP_RET_TRACE | errno.EPERM
    assert n["rules"][1][0] == SECCOMP_RET_ERRNO  # errnoRet 0 is honoured, as runc does


@pytest.mark.parametrize("name, value", [
    ("SCMP_ACT_KILL", SECCOMP_RET_KILL_THREAD), ("SCMP_ACT_KILL_THREAD", SECCOMP_RET_KILL_THREAD),
    ("SCMP_ACT_KILL_PROCESS", SECCOMP_RET_KILL_PROCESS), ("SCMP_ACT_TRAP", SECCOMP_RET_TRAP),
    ("SCMP_ACT_LOG", SECCOMP_RET_LOG), ("SCMP_ACT_ALLOW", SECCOMP_RET_ALLOW),
    ("SCMP_ACT_NOTIFY", SECCOMP_RET_USER_NOTIF),
])
def test_action_values(name, value):
    assert seccomp.action_value(name, None, "x") == value


def test_notify_and_flag_rules():
    notify = {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}
    n = seccomp.normalise(profile("SCMP_ACT_ALLOW", notify, flags=["SECCOMP_FILTER_FLAG_TSYNC",
                                                                   "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]))
    assert n["flags"] == (SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_TSYNC_ESRCH
                          | SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
    # Without a listener the kernel refuses WAIT_KILLABLE_RECV; it is dropped.
    n = seccomp.normalise(profile("SCMP_ACT_ALLOW", flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]))
    assert n["flags"] == 0


def test_normalised_form_ignores_noise():
    a = profile("SCMP_ACT_ERRNO", {"names": ["read"], "action": "SCMP_ACT_ALLOW"})
    b = json.loads(json.dumps(a))
    b["syscalls"][0].update(comment="hi", includes={}, excludes={}, args=None)
    b["listenerMetadata"] = ""
    assert seccomp.normalise(a) == seccomp.normalise(b)


def test_arch_tokens_match_libseccomp():
    lib = ctypes.CDLL("libseccomp.so.2")
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    checked = 0
    for name, token in ARCHES.items():
        got = lib.seccomp_arch_resolve_name(name[len("SCMP_ARCH_"):].lower().encode())
        if got:  # 0: this libseccomp does not know the arch (m68k, sh, loongarch64 on 2.5)
            assert got == token, name
            checked += 1
    assert checked >= 19


# -- compiled programs ----------------------------------------------------------------------


@needs_x86_64
def test_actions_and_default():
    cfg = profile("SCMP_ACT_ERRNO",
                  {"names": ["read", "write", "getpid"], "action": "SCMP_ACT_ALLOW"},
                  {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV},
                  {"names": ["umask"], "action": "SCMP_ACT_KILL_PROCESS"},
                  {"names": ["socket"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
                  {"names": ["personality"], "action": "SCMP_ACT_LOG"},
                  defaultErrnoRet=errno.EACCES)
    prog = compiled(cfg).bpf
    assert run_bpf(prog, NR["read"]) == SECCOMP_RET_ALLOW
    assert run_bpf(prog, NR["mkdir"]) == SECCOMP_RET_ERRNO | errno.EXDEV
    assert run_bpf(prog, NR["umask"]) == SECCOMP_RET_KILL_PROCESS
    assert run_bpf(prog, NR["socket"]) == SECCOMP_RET_TRACE | 7
    assert run_bpf(prog, NR["personality"]) == SECCOMP_RET_LOG
    assert run_bpf(prog, 60) == SECCOMP_RET_ERRNO | errno.EACCES  # exit: not listed
    # The 32-bit ABI gets the same rules under its own numbers (i386 mkdir = 39).
    assert run_bpf(prog, 39, arch=X86) == SECCOMP_RET_ERRNO | errno.EXDEV
    # An arch not in the filter is killed (libseccomp's bad-arch action).
    assert run_bpf(prog, 0, arch=ARCHES["SCMP_ARCH_AARCH64"]) == SECCOMP_RET_KILL_THREAD


@needs_x86_64
@pytest.mark.parametrize("op, value, two, hits, misses", [
    ("SCMP_CMP_EQ", 5, 0, [5], [4, 6]),
    ("SCMP_CMP_NE", 5, 0, [4, 6, 1 << 40], [5]),
    ("SCMP_CMP_LT", 5, 0, [0, 4], [5, 6]),
    ("SCMP_CMP_LE", 5, 0, [0, 5], [6, 1 << 33]),
    ("SCMP_CMP_GE", 5, 0, [5, 6, 1 << 33], [4]),
    ("SCMP_CMP_GT", 5, 0, [6, (1 << 64) - 1], [5, 0]),
    ("SCMP_CMP_MASKED_EQ", 0xF0, 0x30, [0x30, 0x3F, 0x135], [0x40, 0x0F]),
    ("SCMP_CMP_EQ", 0xFFFFFFFF, 0, [0xFFFFFFFF], [0xFFFFFFFE, (1 << 64) - 1]),
])
def test_every_operator(op, value, two, hits, misses):
    rule = {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV,
            "args": [{"index": 0, "value": value, "valueTwo": two, "op": op}]}
    prog = compiled(profile("SCMP_ACT_ALLOW", rule)).bpf
    for v in hits:
        assert run_bpf(prog, NR["personality"], (v,)) == SECCOMP_RET_ERRNO | errno.EXDEV, hex(v)
    for v in misses:
        assert run_bpf(prog, NR["personality"], (v,)) == SECCOMP_RET_ALLOW, hex(v)


@needs_x86_64
def test_distinct_args_are_anded_repeated_index_is_ored():
    both = {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV,
            "args": [{"index": 0, "value": socket.AF_INET, "op": "SCMP_CMP_EQ"},
                     {"index": 1, "value": socket.SOCK_DGRAM, "op": "SCMP_CMP_EQ"}]}
    prog = compiled(profile("SCMP_ACT_ALLOW", both)).bpf
    deny = SECCOMP_RET_ERRNO | errno.EXDEV
    assert run_bpf(prog, NR["socket"], (socket.AF_INET, socket.SOCK_DGRAM)) == deny
    assert run_bpf(prog, NR["socket"], (socket.AF_INET, socket.SOCK_STREAM)) == SECCOMP_RET_ALLOW
    assert run_bpf(prog, NR["socket"], (socket.AF_UNIX, socket.SOCK_DGRAM)) == SECCOMP_RET_ALLOW
    either = {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV,
              "args": [{"index": 0, "value": socket.AF_INET, "op": "SCMP_CMP_EQ"},
                       {"index": 0, "value": socket.AF_INET6, "op": "SCMP_CMP_EQ"}]}
    prog = compiled(profile("SCMP_ACT_ALLOW", either)).bpf
    assert run_bpf(prog, NR["socket"], (socket.AF_INET,)) == deny
    assert run_bpf(prog, NR["socket"], (socket.AF_INET6,)) == deny
    assert run_bpf(prog, NR["socket"], (socket.AF_UNIX,)) == SECCOMP_RET_ALLOW


@needs_x86_64
def test_unknown_names_warn_and_default_equal_rules_are_skipped():
    cfg = profile("SCMP_ACT_ERRNO",
                  {"names": ["read", "no_such_syscall", "no_such_syscall"], "action": "SCMP_ACT_ALLOW"},
                  {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"})  # == default: skipped
    f = compiled(cfg)
    assert len(f.warnings) == 1 and "no_such_syscall" in f.warnings[0]
    assert run_bpf(f.bpf, NR["read"]) == SECCOMP_RET_ALLOW
    assert run_bpf(f.bpf, NR["mkdir"]) == SECCOMP_RET_ERRNO | errno.EPERM


@needs_x86_64
def test_enosys_stub_for_syscalls_newer_than_the_profile():
    cfg = profile("SCMP_ACT_ERRNO", {"names": ["read", "write", "mkdir"], "action": "SCMP_ACT_ALLOW"})
    prog = compiled(cfg).bpf
    enosys = SECCOMP_RET_ERRNO | errno.ENOSYS
    assert run_bpf(prog, NR["mkdir"]) == SECCOMP_RET_ALLOW
    assert run_bpf(prog, NR["mkdir"] + 1) == enosys  # above the last named syscall
    assert run_bpf(prog, NR["mkdir"] - 1) == SECCOMP_RET_ERRNO | errno.EPERM  # known, not allowed
    assert run_bpf(prog, 39, arch=X86) == SECCOMP_RET_ALLOW  # i386 mkdir
    assert run_bpf(prog, 500, arch=X86) == enosys
    # x32 shares x86_64's AUDIT_ARCH; its numbers carry the x32 bit.
    assert run_bpf(prog, X32_BIT | NR["mkdir"], arch=X86_64) == SECCOMP_RET_ALLOW
    assert run_bpf(prog, X32_BIT | 600, arch=X86_64) == enosys
    # Permissive defaults and an ENOSYS default get no stub: the program is libseccomp's alone.
    for default, extra in (("SCMP_ACT_ALLOW", {}), ("SCMP_ACT_LOG", {}),
                           ("SCMP_ACT_ERRNO", {"defaultErrnoRet": errno.ENOSYS})):
        rule = {"names": ["mkdir"], "action": "SCMP_ACT_KILL"}
        from pyrunc.security import seccomp_compile
        norm = seccomp.normalise(profile(default, rule, **extra))
        assert seccomp_compile.resolved_max(seccomp_compile.lib(), norm, {"mkdir": NR["mkdir"]}) == {}


@needs_x86_64
def test_x86_64_only_filter_leaves_x32_to_libseccomp():
    cfg = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
           "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}
    prog = compiled(cfg).bpf
    assert run_bpf(prog, 5) == SECCOMP_RET_ERRNO | errno.ENOSYS
    assert run_bpf(prog, X32_BIT | 0, arch=X86_64) == SECCOMP_RET_KILL_THREAD


def test_podman_profile_compiles_without_warnings():
    cfg = json.loads(PODMAN.read_text())["linux"]["seccomp"]
    f = compiled(cfg)
    # podman's profile names no flags: SPEC_ALLOW by default, as runc 1.2+ loads it
    assert f.warnings == [] and f.flags == seccomp.SECCOMP_FILTER_FLAG_SPEC_ALLOW and not f.needs_notify
    assert 100 < len(f) < 4096
    if os.uname().machine == "x86_64":
        assert run_bpf(f.bpf, NR["read"]) == SECCOMP_RET_ALLOW
        assert run_bpf(f.bpf, NR["personality"], (8,)) == SECCOMP_RET_ALLOW
        assert run_bpf(f.bpf, NR["personality"], (0x12345,)) == SECCOMP_RET_ERRNO | errno.ENOSYS
        assert run_bpf(f.bpf, 170) == SECCOMP_RET_ERRNO | errno.EPERM  # sethostname


def test_kernel_refusals_are_errors():
    from pyrunc.security import seccomp_compile

    bogus = {"default": SECCOMP_RET_ALLOW, "arches": [], "flags": 1 << 20, "rules": []}
    with pytest.raises(PyruncError, match="refuses seccomp flags"):
        seccomp_compile.check_kernel(bogus)


def test_no_flags_means_spec_allow_and_an_empty_list_means_none():
    from pyrunc.security import seccomp_abi

    """runc 1.5.1 (strace): no "flags" -> SECCOMP_FILTER_FLAG_SPEC_ALLOW; "flags": [] -> 0."""
    assert seccomp.normalise(profile("SCMP_ACT_ALLOW"))["flags"] == seccomp.SECCOMP_FILTER_FLAG_SPEC_ALLOW
    assert seccomp.normalise(profile("SCMP_ACT_ALLOW", flags=None))["flags"] == seccomp.SECCOMP_FILTER_FLAG_SPEC_ALLOW
    assert seccomp.normalise(profile("SCMP_ACT_ALLOW", flags=[]))["flags"] == 0
    assert seccomp.normalise(profile("SCMP_ACT_ALLOW", flags=["SECCOMP_FILTER_FLAG_LOG"]))["flags"] == \
        seccomp_abi.SECCOMP_FILTER_FLAG_LOG


def test_flags_the_kernel_accepts():
    from pyrunc.security import seccomp_compile

    flags = ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
             "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    notify = {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}
    seccomp_compile.check_kernel(seccomp.normalise(profile("SCMP_ACT_ALLOW", notify, flags=flags)))
    seccomp_compile.check_kernel(seccomp.normalise(profile("SCMP_ACT_ALLOW", flags=flags)))


# -- the cache ----------------------------------------------------------------------------


def test_cache_hit_returns_the_same_program(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cfg = json.loads(PODMAN.read_text())["linux"]["seccomp"]
    first = seccomp.compile_filter(cfg, cache_dir=str(cache))
    assert oct(cache.stat().st_mode & 0o777) == "0o700"
    assert len(list(cache.iterdir())) == 1

    from pyrunc.security import seccomp_compile

    def boom(*a, **k):
        raise AssertionError("compiled on a cache hit")

    monkeypatch.setattr(seccomp_compile, "compile_bpf", boom)
    again = seccomp.compile_filter(cfg, cache_dir=str(cache))
    assert again.bpf == first.bpf and again.flags == first.flags and again.warnings == first.warnings


def test_cache_keeps_warnings_and_flags(tmp_path):
    cfg = profile("SCMP_ACT_ALLOW", {"names": ["mkdir", "bogus_call"], "action": "SCMP_ACT_NOTIFY"},
                  flags=["SECCOMP_FILTER_FLAG_LOG"])
    a = seccomp.compile_filter(cfg, cache_dir=str(tmp_path / "c"))
    b = seccomp.compile_filter(cfg, cache_dir=str(tmp_path / "c"))
    assert b.warnings == a.warnings and len(a.warnings) == 1
    assert b.needs_notify and b.flags == a.flags


def test_different_profiles_do_not_share_an_entry(tmp_path):
    c = str(tmp_path / "c")
    a = seccomp.compile_filter(profile("SCMP_ACT_ALLOW", {"names": ["mkdir"], "action": "SCMP_ACT_KILL"}),
                               cache_dir=c)
    b = seccomp.compile_filter(profile("SCMP_ACT_ALLOW", {"names": ["rmdir"], "action": "SCMP_ACT_KILL"}),
                               cache_dir=c)
    assert a.bpf != b.bpf and len(os.listdir(c)) == 2


def test_damaged_or_foreign_cache_is_ignored(tmp_path):
    c = tmp_path / "c"
    cfg = profile("SCMP_ACT_ALLOW", {"names": ["mkdir"], "action": "SCMP_ACT_KILL"})
    good = seccomp.compile_filter(cfg, cache_dir=str(c)).bpf
    (entry,) = c.iterdir()
    entry.write_bytes(entry.read_bytes()[:-8])  # truncated
    assert seccomp.compile_filter(cfg, cache_dir=str(c)).bpf == good
    assert seccomp.compile_filter(cfg, cache_dir=str(c)).bpf == good  # rewritten
    # A directory others can write to is never trusted: a planted allow-all must not be read.
    allow_all = struct.pack("<HBBI", 0x06, 0, 0, SECCOMP_RET_ALLOW)
    entry.write_bytes(entry.read_bytes().split(b"PYRSECC1", 1)[0] + seccomp._MAGIC
                      + entry.read_bytes()[8:-len(good)] + allow_all * (len(good) // 8))
    c.chmod(0o777)
    assert seccomp.compile_filter(cfg, cache_dir=str(c)).bpf == good


def test_cache_hit_loads_nothing_heavy(tmp_path):
    """A fresh interpreter: the hit path maps no libseccomp and imports no compiler or pyseccomp."""
    cache = str(tmp_path / "c")
    code = f"""
import json, sys
from pyrunc.security import seccomp
cfg = json.load(open({str(PODMAN)!r}))["linux"]["seccomp"]
f = seccomp.compile_filter(cfg, cache_dir={cache!r})
maps = open("/proc/self/maps").read()
print(json.dumps({{"n": len(f), "libseccomp": "libseccomp" in maps,
                   "mods": [m for m in ("pyrunc.security.seccomp_compile", "pyseccomp", "ctypes.util")
                            if m in sys.modules]}}))
"""
    run = [sys.executable, "-c", code]
    cold = json.loads(subprocess.run(run, cwd=REPO, check=True, capture_output=True, text=True).stdout)
    assert cold["libseccomp"] and "pyrunc.security.seccomp_compile" in cold["mods"]
    hot = json.loads(subprocess.run(run, cwd=REPO, check=True, capture_output=True, text=True).stdout)
    assert hot == {"n": cold["n"], "libseccomp": False, "mods": []}


# -- SCMP_ACT_NOTIFY hand-over ------------------------------------------------------------------


def test_send_listener_passes_fd_and_state(tmp_path):
    path = str(tmp_path / "agent.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    got: dict = {}

    def agent():
        conn, _ = server.accept()
        with conn:
            data, fds, _, _ = socket.recv_fds(conn, 65536, 4)
            while chunk := conn.recv(65536):
                data += chunk
            got["doc"] = json.loads(data)
            got["fds"] = fds

    t = threading.Thread(target=agent)
    t.start()
    r, w = os.pipe()
    state = {"ociVersion": "1.0.2", "id": "c1", "status": "creating", "pid": 4242, "bundle": "/b"}
    seccomp.send_listener(path, w, state, "MKNOD=/dev/null")
    t.join(5)
    server.close()
    os.close(w)
    doc = got["doc"]
    assert doc == {"ociVersion": "1.0.2", "fds": ["seccompFd"], "pid": 4242,
                   "metadata": "MKNOD=/dev/null", "state": state}
    (fd,) = got["fds"]
    os.write(fd, b"x")
    assert os.read(r, 1) == b"x"
    os.close(fd)
    os.close(r)


def test_send_listener_failure_is_an_error(tmp_path):
    with pytest.raises(PyruncError, match="listenerPath"):
        seccomp.send_listener(str(tmp_path / "nobody"), 0, {"pid": 1})
