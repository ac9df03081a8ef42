"""cgroup v2 device access control: an eBPF program we assemble ourselves, attached with bpf(2).

cgroup v2 has no devices.allow/deny files; the kernel instead runs every
``BPF_PROG_TYPE_CGROUP_DEVICE`` program attached to the cgroup (and its
ancestors) on each open/mknod of a device node, and allows the access only if
they all return 1. The program sees ``struct bpf_cgroup_dev_ctx``::

    u32 access_type   low 16 bits: device type (1 block, 2 char); high 16: access (1 mknod, 2 read, 4 write)
    u32 major
    u32 minor

Rule semantics are those of the v1 devices controller that the OCI rules were
written for: the cgroup starts with "allow everything"; a rule for every
device with every access (``{"allow": false}`` alone, i.e. ``a *:* rwm``)
resets the default and forgets earlier rules; otherwise the *last* matching rule
wins. The program therefore tests the rules after the last reset in reverse
order and returns on the first match, falling through to the default. An allow
rule matches when it grants every requested access bit; a deny rule when it
names any of them (so "deny w" still refuses an open for read+write).

Updating is atomic from the container's point of view: the new program is
attached (``BPF_F_ALLOW_MULTI``) before the old ones are detached, so there is
no moment without a filter. The old ones are found with ``BPF_PROG_QUERY`` on
the container's own cgroup, which only this runtime writes to.

The bpf(2) calls themselves live in ``pyrunc.linux.bpf``.
"""

from __future__ import annotations

import errno
import os
import struct

from pyrunc.errors import CgroupError

STEP = "set cgroup devices"

# Device program constants (include/uapi/linux/bpf.h).
BPF_DEVCG_DEV_BLOCK = 1
BPF_DEVCG_DEV_CHAR = 2
BPF_DEVCG_ACC_MKNOD = 1
BPF_DEVCG_ACC_READ = 2
BPF_DEVCG_ACC_WRITE = 4

# Opcodes used by the assembler (class | op | source).
_LDX_MEM_W = 0x61     # dst = *(u32 *)(src + off)
_ALU64_MOV_K = 0xB7   # dst = imm
_ALU64_MOV_X = 0xBF   # dst = src
_ALU64_AND_K = 0x57   # dst &= imm
_ALU64_RSH_K = 0x77   # dst >>= imm
_JMP_JEQ_K = 0x15     # if dst == imm goto +off
_JMP_JNE_K = 0x55     # if dst != imm goto +off
_JMP_EXIT = 0x95

_ACCESS_BITS = {"m": BPF_DEVCG_ACC_MKNOD, "r": BPF_DEVCG_ACC_READ, "w": BPF_DEVCG_ACC_WRITE}
_ALL_ACCESS = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One ``struct bpf_insn``: u8 code, u8 dst:4|src:4 (little-endian nibble order), s16 off, s32 imm."""
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


class Rule:
    """One normalised OCI device rule."""

    __slots__ = ("allow", "type", "major", "minor", "access")

    def __init__(self, entry: dict):
        dev_type = entry.get("type") or "a"
        if dev_type not in ("a", "b", "c"):
            raise CgroupError(f"invalid device type {dev_type!r} in linux.resources.devices", step=STEP)
        access = entry.get("access") or "rwm"
        bits = 0
        for ch in access:
            if ch not in _ACCESS_BITS:
                raise CgroupError(f"invalid device access {access!r} in linux.resources.devices", step=STEP)
            bits |= _ACCESS_BITS[ch]
        major, minor = entry.get("major"), entry.get("minor")
        self.allow = bool(entry.get("allow"))
        self.type = {"a": 0, "b": BPF_DEVCG_DEV_BLOCK, "c": BPF_DEVCG_DEV_CHAR}[dev_type]
        self.major = None if major is None or major < 0 else int(major)
        self.minor = None if minor is None or minor < 0 else int(minor)
        self.access = bits

    @property
    def resets(self) -> bool:
        """``a *:* rwm``: replaces the default and cancels every earlier rule (v1 semantics)."""
        return self.type == 0 and self.major is None and self.minor is None and self.access == _ALL_ACCESS


def effective_rules(entries: list[dict]) -> tuple[bool, list[Rule]]:
    """(default allow?, rules after the last reset in their original order)."""
    rules = [Rule(e) for e in entries]
    default = True
    start = 0
    for i, rule in enumerate(rules):
        if rule.resets:
            default, start = rule.allow, i + 1
    return default, rules[start:]


def describe(rule: Rule) -> str:
    """A rule in the devices.allow/deny words: ``allow c 1:3 rwm`` (``pyrunc plan``)."""
    kind = {1: "b", 2: "c"}.get(rule.type, "a")
    major = "*" if rule.major is None else str(rule.major)
    minor = "*" if rule.minor is None else str(rule.minor)
    access = "".join(ch for ch, bit in _ACCESS_BITS.items() if rule.access & bit)
    return f"{'allow' if rule.allow else 'deny'} {kind} {major}:{minor} {''.join(sorted(access, key='rwm'.index))}"


def _rule_block(rule: Rule) -> bytes:
    """Instructions testing one rule; every mismatch jumps past the block (to the next rule)."""
    # Each test is (insns before the jump, jump opcode, register, immediate).
    tests: list[tuple[list[bytes], int, int, int]] = []
    if rule.type:
        tests.append(([], _JMP_JNE_K, 3, rule.type))
    if rule.access != _ALL_ACCESS:
        if rule.allow:  # every requested bit must be granted: (req & ~granted) == 0
            prep = [_insn(_ALU64_MOV_X, 0, 2), _insn(_ALU64_AND_K, 0, imm=_ALL_ACCESS & ~rule.access)]
            tests.append((prep, _JMP_JNE_K, 0, 0))
        else:  # any requested bit named by the rule is refused: (req & named) != 0
            prep = [_insn(_ALU64_MOV_X, 0, 2), _insn(_ALU64_AND_K, 0, imm=rule.access)]
            tests.append((prep, _JMP_JEQ_K, 0, 0))
    if rule.major is not None:
        tests.append(([], _JMP_JNE_K, 4, rule.major))
    if rule.minor is not None:
        tests.append(([], _JMP_JNE_K, 5, rule.minor))
    verdict = [_insn(_ALU64_MOV_K, 0, imm=1 if rule.allow else 0), _insn(_JMP_EXIT)]
    total = sum(len(prep) + 1 for prep, _, _, _ in tests) + len(verdict)
    out: list[bytes] = []
    for prep, op, reg, imm in tests:
        out += prep
        # The offset counts instructions after the jump up to the end of the block.
        out.append(_insn(op, reg, off=total - len(out) - 1, imm=imm))
    return b"".join(out + verdict)


def assemble(entries: list[dict]) -> bytes:
    """The program's bytecode for the OCI device rules ``entries`` (see the module docstring)."""
    default, rules = effective_rules(entries)
    prologue = [
        _insn(_LDX_MEM_W, 2, 1, 0),          # r2 = ctx->access_type
        _insn(_ALU64_MOV_X, 3, 2),           # r3 = r2
        _insn(_ALU64_AND_K, 3, imm=0xFFFF),  # r3 = device type
        _insn(_ALU64_RSH_K, 2, imm=16),      # r2 = requested access bits
        _insn(_LDX_MEM_W, 4, 1, 4),          # r4 = ctx->major
        _insn(_LDX_MEM_W, 5, 1, 8),          # r5 = ctx->minor
    ]
    body = [_rule_block(r) for r in reversed(rules)]
    epilogue = [_insn(_ALU64_MOV_K, 0, imm=1 if default else 0), _insn(_JMP_EXIT)]
    return b"".join(prologue + body + epilogue)


# ----- bpf(2), through pyrunc.linux.bpf ---------------------------------------------------------

def load_program(code: bytes) -> int:
    """BPF_PROG_LOAD the device program; returns its fd."""
    from pyrunc.linux import bpf

    return bpf.prog_load_cgroup_device(code)


def query_programs(cgroup_fd: int) -> list[int]:
    """Ids of the device programs attached directly to this cgroup (not inherited ones)."""
    from pyrunc.linux import bpf

    return bpf.prog_query_device(cgroup_fd)


def query_programs_at(cgroup_dir: str) -> list[int]:
    """``query_programs`` by path (for tests and diagnostics)."""
    fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return query_programs(fd)
    finally:
        os.close(fd)


def apply(cgroup_dir: str, entries: list[dict], *, container: str | None = None) -> None:
    """Install the program for ``entries`` on ``cgroup_dir``, replacing the one(s) attached before.

    Rules are validated (and the program assembled and verified by the kernel)
    before anything is attached, so a bad rule leaves the old filter in place.
    """
    from pyrunc.linux import bpf

    code = assemble(entries)
    try:
        cgroup_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise CgroupError(f"open {cgroup_dir}: {e.strerror}", step=STEP, container=container,
                          errno=e.errno or 0) from e
    prog_fd = -1
    try:
        try:
            old = query_programs(cgroup_fd)
            prog_fd = load_program(code)
            bpf.prog_attach_device(cgroup_fd, prog_fd)
        except OSError as e:
            raise CgroupError(f"installing the eBPF device filter on {cgroup_dir}: {e.strerror}",
                              step=STEP, container=container, errno=e.errno or 0) from e
        new_ids = set(query_programs(cgroup_fd)) - set(old)
        for prog_id in old:
            if prog_id in new_ids:
                continue
            try:
                old_fd = bpf.prog_fd_by_id(prog_id)
            except OSError as e:
                if e.errno == errno.ENOENT:
                    continue  # detached and freed meanwhile
                raise CgroupError(f"replacing the eBPF device filter on {cgroup_dir}: {e.strerror}",
                                  step=STEP, container=container, errno=e.errno or 0) from e
            try:
                bpf.prog_detach_device(cgroup_fd, old_fd)
            except OSError as e:
                if e.errno != errno.ENOENT:
                    raise CgroupError(f"detaching the old eBPF device filter from {cgroup_dir}: "
                                      f"{e.strerror}", step=STEP, container=container,
                                      errno=e.errno or 0) from e
            finally:
                os.close(old_fd)
    finally:
        if prog_fd >= 0:
            os.close(prog_fd)
        os.close(cgroup_fd)
