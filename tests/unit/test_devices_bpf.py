"""The eBPF device filter: rule semantics checked by running the assembled bytecode.

``run_program`` is a tiny interpreter for exactly the instructions the
assembler emits, so the jump offsets and verdicts are tested without a kernel.
The last test loads and attaches the program for real when a cgroup2 mount is
writable (the unified tree of a hybrid host, or a pure v2 host).
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys

import pytest

from pyrunc.cgroups import devices_bpf as bpf
from pyrunc.errors import CgroupError

CHAR, BLOCK = bpf.BPF_DEVCG_DEV_CHAR, bpf.BPF_DEVCG_DEV_BLOCK
M, R, W = bpf.BPF_DEVCG_ACC_MKNOD, bpf.BPF_DEVCG_ACC_READ, bpf.BPF_DEVCG_ACC_WRITE


def run_program(code: bytes, dev_type: int, access: int, major: int, minor: int) -> int:
    """Interpret the subset of eBPF the assembler uses; return r0 at exit."""
    ctx = {0: (access << 16) | dev_type, 4: major, 8: minor}
    regs = [0] * 11
    pc = 0
    steps = 0
    insns = [struct.unpack_from("<BBhi", code, i) for i in range(0, len(code), 8)]
    while True:
        steps += 1
        assert steps < 10_000, "program does not terminate"
        code_, regs_byte, off, imm = insns[pc]
        dst, src = regs_byte & 0xF, regs_byte >> 4
        pc += 1
        if code_ == 0x61:
            assert src == 1
            regs[dst] = ctx[off]
        elif code_ == 0xB7:
            regs[dst] = imm
        elif code_ == 0xBF:
            regs[dst] = regs[src]
        elif code_ == 0x57:
            regs[dst] &= imm & 0xFFFFFFFFFFFFFFFF
        elif code_ == 0x77:
            regs[dst] >>= imm
        elif code_ == 0x15:
            pc += off if regs[dst] == imm else 0
        elif code_ == 0x55:
            pc += off if regs[dst] != imm else 0
        elif code_ == 0x95:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code_:#x}")
        assert 0 <= pc < len(insns), "jump out of the program"


def verdict(rules: list[dict], dev_type: int, access: int, major: int, minor: int) -> bool:
    return run_program(bpf.assemble(rules), dev_type, access, major, minor) == 1


DENY_ALL = {"allow": False, "access": "rwm"}


def test_empty_rules_allow_everything() -> None:
    assert verdict([], CHAR, R | W, 1, 3)
    assert verdict([], BLOCK, M, 8, 0)


def test_deny_all_then_allow_one() -> None:
    rules = [DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
    assert verdict(rules, CHAR, R | W, 1, 3)
    assert not verdict(rules, CHAR, R, 1, 5)
    assert not verdict(rules, BLOCK, R, 1, 3), "type must match"


def test_partial_access_allow_needs_every_requested_bit() -> None:
    rules = [DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "r"}]
    assert verdict(rules, CHAR, R, 1, 5)
    assert not verdict(rules, CHAR, R | W, 1, 5)
    assert not verdict(rules, CHAR, M, 1, 5)


def test_last_match_wins_and_partial_deny() -> None:
    rules = [DENY_ALL, {"allow": True, "type": "c", "major": 1, "access": "rwm"},
             {"allow": False, "type": "c", "major": 1, "minor": 9, "access": "w"}]
    assert verdict(rules, CHAR, R, 1, 9)
    assert not verdict(rules, CHAR, R | W, 1, 9), "any denied bit refuses"
    assert verdict(rules, CHAR, R | W, 1, 8), "wildcard minor"


def test_reset_forgets_earlier_rules() -> None:
    rules = [{"allow": True, "type": "c", "major": 1, "minor": 3}, DENY_ALL]
    assert not verdict(rules, CHAR, R, 1, 3)
    allow_all = [DENY_ALL, {"allow": True, "access": "rwm"}]
    assert verdict(allow_all, BLOCK, R | W | M, 8, 1)


def test_wildcard_type_rule_matches_both_types() -> None:
    rules = [DENY_ALL, {"allow": True, "access": "m"}]
    assert verdict(rules, CHAR, M, 4, 4) and verdict(rules, BLOCK, M, 8, 0)
    assert not verdict(rules, CHAR, R, 4, 4)


def test_runc_default_rules() -> None:
    from pyrunc.cgroups.resources import DEFAULT_ALLOWED_DEVICES

    rules = [DENY_ALL, *DEFAULT_ALLOWED_DEVICES]
    assert verdict(rules, CHAR, R | W, 1, 3)        # /dev/null
    assert verdict(rules, CHAR, R | W, 136, 7)      # /dev/pts/7
    assert verdict(rules, BLOCK, M, 8, 0)           # mknod any block device
    assert not verdict(rules, BLOCK, R, 8, 0)       # but not read it
    assert not verdict(rules, CHAR, R, 1, 1)        # /dev/mem


@pytest.mark.parametrize("entry", [{"type": "x"}, {"access": "rwx"}])
def test_bad_rules_are_refused(entry: dict) -> None:
    with pytest.raises(CgroupError):
        bpf.assemble([entry])


def _is_cgroup2(path: str) -> bool:
    from pyrunc.linux.mount import CGROUP2_SUPER_MAGIC, fstatfs_type

    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return fstatfs_type(fd) == CGROUP2_SUPER_MAGIC
    finally:
        os.close(fd)


def _writable_cgroup2() -> str | None:
    for mp in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        if os.path.isdir(mp) and _is_cgroup2(mp) and os.access(mp, os.W_OK):
            return mp
    return None


@pytest.mark.skipif(os.geteuid() != 0 or _writable_cgroup2() is None, reason="needs root and a cgroup2 mount")
def test_real_attach_denies_and_replaces(tmp_path) -> None:
    """Attach to a fresh cgroup holding a forked probe: /dev/null allowed, /dev/zero denied; then swap."""
    top = os.path.join(_writable_cgroup2(), f"pyrunc-bpf-unit-{os.getpid()}")
    os.mkdir(top)
    try:
        allow_null = [DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}]
        bpf.apply(top, allow_null)
        assert len(bpf.query_programs_at(top)) == 1
        assert _probe(top) == {"/dev/null": True, "/dev/zero": False}
        bpf.apply(top, [DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rw"}])
        assert len(bpf.query_programs_at(top)) == 1, "the old program was detached"
        assert _probe(top) == {"/dev/null": False, "/dev/zero": True}
    finally:
        os.rmdir(top)


def _probe(cgroup: str) -> dict[str, bool]:
    """Fork a python that joins ``cgroup`` and tries to open two devices."""
    code = ("import os,sys,json\n"
            f"open({cgroup + '/cgroup.procs'!r},'w').write(str(os.getpid()))\n"
            "res={}\n"
            "for p in ('/dev/null','/dev/zero'):\n"
            "    try:\n        os.close(os.open(p, os.O_RDWR)); res[p]=True\n"
            "    except PermissionError:\n        res[p]=False\n"
            "print(json.dumps(res))\n")
    import json

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    return json.loads(out.stdout)
