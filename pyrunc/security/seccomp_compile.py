"""The cold path of seccomp: libseccomp through ctypes, BPF export, kernel checks.

Imported only on a cache miss. libseccomp is opened by its soname with
``ffi.CDLL`` (the dynamic loader finds it; no ctypes.util.find_library,
which spawns ldconfig), and the program is exported with seccomp_export_bpf
into a memfd instead of loaded: the init installs it later with seccomp(2).
"""

from __future__ import annotations

import errno as _errno
import os

from ..errors import PyruncError
from ..linux import ffi
from .seccomp_abi import (
    ARCHES,
    SECCOMP_GET_ACTION_AVAIL,
    SECCOMP_NR,
    SECCOMP_RET_ALLOW,
    SECCOMP_RET_ERRNO,
    SECCOMP_RET_LOG,
    SECCOMP_RET_TRACE,
    SECCOMP_SET_MODE_FILTER,
    STEP,
)

# enum scmp_filter_attr
SCMP_FLTATR_CTL_NNP = 3
SCMP_FLTATR_CTL_TSYNC = 4
_NR_SCMP_ERROR = -1
_X32_SYSCALL_BIT = 0x40000000
_AUDIT_ARCH_X86_64 = ARCHES["SCMP_ARCH_X86_64"]
_AUDIT_ARCH_X32 = ARCHES["SCMP_ARCH_X32"]

# classic BPF opcodes used by the ENOSYS stub
_BPF_LD_W_ABS = 0x20
_BPF_JEQ_K = 0x15
_BPF_JGT_K = 0x25
_BPF_JSET_K = 0x45
_BPF_RET_K = 0x06
_BPF_JA = 0x05


class _ArgCmp(ffi.Structure):
    """struct scmp_arg_cmp."""

    _fields_ = [("arg", ffi.c_uint), ("op", ffi.c_int),
                ("datum_a", ffi.c_uint64), ("datum_b", ffi.c_uint64)]


class _Version(ffi.Structure):
    _fields_ = [("major", ffi.c_uint), ("minor", ffi.c_uint), ("micro", ffi.c_uint)]


class Lib:
    """The handful of libseccomp functions we need, with their C signatures."""

    def __init__(self) -> None:
        try:
            lib = ffi.CDLL("libseccomp.so.2", use_errno=True)
        except OSError as e:
            raise PyruncError(f"cannot load libseccomp.so.2 ({e}); install libseccomp2", step=STEP) from None
        vp, u32, i = ffi.c_void_p, ffi.c_uint32, ffi.c_int

        def bind(name, restype, *argtypes):
            f = getattr(lib, name)
            f.restype = restype
            f.argtypes = list(argtypes)
            return f

        self.init = bind("seccomp_init", vp, u32)
        self.release = bind("seccomp_release", None, vp)
        self.arch_add = bind("seccomp_arch_add", i, vp, u32)
        self.arch_native = bind("seccomp_arch_native", u32)
        self.attr_set = bind("seccomp_attr_set", i, vp, i, u32)
        self.resolve = bind("seccomp_syscall_resolve_name", i, ffi.c_char_p)
        self.resolve_arch = bind("seccomp_syscall_resolve_name_arch", i, u32, ffi.c_char_p)
        self.rule_add = bind("seccomp_rule_add_array", i, vp, u32, i, ffi.c_uint,
                             ffi.POINTER(_ArgCmp))
        self.export_bpf = bind("seccomp_export_bpf", i, vp, i)
        version = bind("seccomp_version", ffi.POINTER(_Version))()[0]
        self.version = f"{version.major}.{version.minor}.{version.micro}"


_LIB: Lib | None = None


def lib() -> Lib:
    global _LIB
    if _LIB is None:
        _LIB = Lib()
    return _LIB


def _arch_name(token: int) -> str:
    return next((n for n, t in ARCHES.items() if t == token), hex(token))


def compile_bpf(norm: dict) -> tuple[bytes, list[str]]:
    """Build the filter with libseccomp and return (BPF program bytes, warnings).

    ``norm`` is ``seccomp.normalise()`` output. Mirrors runc's setup: every
    configured arch added next to the native one, unknown names skipped with
    a warning, rules equal to the default action skipped, repeated argument
    indexes split into one rule per condition.
    """
    L = lib()
    warnings: list[str] = []
    ctx = L.init(norm["default"])
    if not ctx:
        raise PyruncError(f"seccomp_init: invalid default action {norm['default']:#x}", step=STEP)
    try:
        # We load the exported program ourselves; libseccomp must not decide on NNP or TSYNC.
        L.attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)
        for token in norm["arches"]:
            rc = L.arch_add(ctx, token)
            if rc < 0 and rc != -_errno.EEXIST:
                raise PyruncError(f"architecture {_arch_name(token)} is not supported by libseccomp "
                                  f"{L.version}: {os.strerror(-rc)}", step=STEP)
        resolved: dict[str, int] = {}
        for i, (action, names, args) in enumerate(norm["rules"]):
            for name in names:
                nr = resolved.get(name)
                if nr is None:
                    # Resolved even for skipped rules: the ENOSYS stub counts every named syscall.
                    nr = resolved[name] = L.resolve(name.encode())
                if action == norm["default"]:
                    continue  # libseccomp refuses a rule equal to the default; it changes nothing
                if nr == _NR_SCMP_ERROR:
                    warnings.append(f"seccomp: unknown syscall {name!r} skipped "
                                    f"(libseccomp {L.version})")
                    continue
                for conds in _condition_sets(args):
                    arr = (_ArgCmp * len(conds))(*[_ArgCmp(*c) for c in conds]) if conds else None
                    rc = L.rule_add(ctx, action, nr, len(conds), arr)
                    if rc < 0:
                        raise PyruncError(f"linux.seccomp.syscalls[{i}]: adding rule for {name}: "
                                          f"{os.strerror(-rc)}", step=STEP)
        main = _export(L, ctx)
    finally:
        L.release(ctx)
    stub = enosys_stub(norm, resolved_max(L, norm, resolved))
    prog = stub + main
    if len(prog) // 8 > 4096:
        raise PyruncError(f"seccomp program too long ({len(prog) // 8} instructions, the kernel "
                          "allows 4096)", step=STEP)
    # A warning per distinct name (podman lists some names twice), in profile order.
    return prog, list(dict.fromkeys(warnings))


def _condition_sets(args: list[list[int]]) -> list[list[tuple[int, int, int, int]]]:
    """runc's rule: conditions on distinct arguments AND in one rule; if any argument index
    repeats, each condition becomes a rule of its own (libseccomp cannot AND those)."""
    conds = [(index, op, value, two) for index, op, value, two in args]
    if not conds:
        return [[]]
    indexes = [c[0] for c in conds]
    if len(set(indexes)) < len(indexes):
        return [[c] for c in conds]
    return [conds]


def _export(L: Lib, ctx: int) -> bytes:
    fd = os.memfd_create("pyrunc-seccomp", os.MFD_CLOEXEC)
    try:
        rc = L.export_bpf(ctx, fd)
        if rc < 0:
            raise PyruncError(f"seccomp_export_bpf: {os.strerror(-rc)}", step=STEP)
        size = os.lseek(fd, 0, os.SEEK_END)
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


# -- runc's ENOSYS stub -----------------------------------------------------------------


def resolved_max(L: Lib, norm: dict, resolved: dict[str, int]) -> dict[int, int]:
    """Per arch in the filter, the highest syscall number the profile names (runc findLastSyscalls).

    Empty when no stub is wanted: a permissive default action (ALLOW, LOG,
    TRACE: a tracer handles new syscalls itself) or a default that already
    returns ENOSYS.
    """
    default = norm["default"]
    if default in (SECCOMP_RET_ALLOW, SECCOMP_RET_LOG) or default & 0xFFFF0000 == SECCOMP_RET_TRACE:
        return {}
    if default == SECCOMP_RET_ERRNO | _errno.ENOSYS:
        return {}
    arches = list(dict.fromkeys([L.arch_native(), *norm["arches"]]))
    names = [n for n, nr in resolved.items() if nr != _NR_SCMP_ERROR]
    last: dict[int, int] = {}
    for token in arches:
        for name in names:
            nr = L.resolve_arch(token, name.encode())
            if nr >= 0 and nr > last.get(token, -1):
                last[token] = nr
    return last


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return code.to_bytes(2, "little") + bytes((jt, jf)) + (k & 0xFFFFFFFF).to_bytes(4, "little")


def enosys_stub(norm: dict, last: dict[int, int]) -> bytes:
    """A BPF prologue: for a known arch, syscall numbers above the profile's last return ENOSYS.

    Without it a program calling a syscall newer than the profile gets the
    default action (EPERM or a kill) and cannot fall back, e.g. glibc trying
    clone3 or fchmodat2. Anything else jumps to libseccomp's program, which
    follows the stub, so its bad-arch handling is untouched. x86_64 and x32
    share one AUDIT_ARCH and are told apart by the x32 syscall bit.
    """
    if not last:
        return b""
    enosys = SECCOMP_RET_ERRNO | _errno.ENOSYS
    # (code, jt, jf, k); "main" in jt/jf/k means "the first instruction after the stub".
    insns: list[tuple] = [(_BPF_LD_W_ABS, 0, 0, 4)]  # A = seccomp_data.arch

    def limit(nr: int | None) -> list[tuple]:
        if nr is None:
            return [(_BPF_JA, 0, 0, "main")]
        return [(_BPF_JGT_K, 0, "main", nr), (_BPF_RET_K, 0, 0, enosys)]

    x86_64, x32 = last.get(_AUDIT_ARCH_X86_64), last.get(_AUDIT_ARCH_X32)
    for token in sorted(last):
        if token == _AUDIT_ARCH_X32 and x86_64 is not None:
            continue  # checked inside the x86_64 section
        body: list[tuple] = [(_BPF_LD_W_ABS, 0, 0, 0)]  # A = seccomp_data.nr
        if token in (_AUDIT_ARCH_X86_64, _AUDIT_ARCH_X32):
            # One AUDIT_ARCH for both ABIs: the x32 syscall bit tells them apart. An ABI
            # not in the filter goes on to libseccomp's program (which rejects it).
            plain = limit(x86_64)
            body += [(_BPF_JSET_K, len(plain), 0, _X32_SYSCALL_BIT), *plain, *limit(x32)]
            token = _AUDIT_ARCH_X86_64
        else:
            body += limit(last[token])
        insns += [(_BPF_JEQ_K, 0, len(body), token), *body]  # A still holds arch when skipped
    total = len(insns)
    out = b""
    for pos, (code, jt, jf, k) in enumerate(insns):
        rel = total - pos - 1
        out += _insn(code, rel if jt == "main" else jt, rel if jf == "main" else jf,
                     rel if k == "main" else k)
    return out


# -- what the running kernel accepts -------------------------------------------------------


def check_kernel(norm: dict) -> None:
    """Refuse at create time what the kernel would refuse at load time.

    Flags: seccomp(SET_MODE_FILTER, flags, NULL) fails with EFAULT when the
    flags are acceptable (the NULL program is read after they are checked)
    and EINVAL when not. Actions: SECCOMP_GET_ACTION_AVAIL.
    """
    from ..linux._libc import libc

    call = libc["syscall"]
    call.restype = ffi.c_long
    call.argtypes = (ffi.c_long, ffi.c_ulong, ffi.c_ulong, ffi.c_void_p)
    nr = SECCOMP_NR[os.uname().machine]
    if call(nr, SECCOMP_SET_MODE_FILTER, norm["flags"], None) != -1:
        raise PyruncError("seccomp flag probe unexpectedly installed a filter", step=STEP)
    err = ffi.get_errno()
    if err != _errno.EFAULT:
        raise PyruncError(f"the kernel refuses seccomp flags {norm['flags']:#x}: {os.strerror(err)}",
                          step=STEP)
    seen = {norm["default"] & 0xFFFF0000} | {r[0] & 0xFFFF0000 for r in norm["rules"]}
    for action in sorted(seen):
        value = ffi.c_uint32(action)
        if call(nr, SECCOMP_GET_ACTION_AVAIL, 0, ffi.addressof(value)) != 0:
            err = ffi.get_errno()
            raise PyruncError(f"the kernel does not support seccomp action {action:#x}: "
                              f"{os.strerror(err)}", step=STEP)
