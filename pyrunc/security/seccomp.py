"""linux.seccomp: validate and compile in the parent, install raw BPF in the init.

Why it is split this way:

* libseccomp is only needed to turn the profile into a BPF program. That
  happens in the parent, before fork (``compile_filter``), and the result is
  cached on disk keyed by everything that can change the program (the
  normalised profile, the libseccomp build, the machine and kernel), so a
  cache hit costs a stat, a read and a hash: no libseccomp, no ctypes.util
  (``import pyseccomp`` runs find_library, which spawns processes).
  The compiler itself lives in ``seccomp_compile`` and is imported lazily.
* The init only installs a ready-made ``sock_fprog`` with seccomp(2).
  Everything that call needs (the filter buffer, the fprog struct, the bound
  ``syscall`` function) is built before fork. A filter is loaded by
  ``load_and_exec``, which calls execve(2) right after seccomp(2), both as
  bare C calls with arguments prepared beforehand (linux.PreparedExec): the
  program's execve is the only system call the filter ever sees from us, so a
  profile need not allow close_range, openat2 or anything else the runtime
  uses (runc's rule). tests/integration/test_seccomp_trace.py proves it with
  strace for both noNewPrivileges values, with a terminal and for `exec`.
  Only a notify filter is loaded earlier with ``load`` (its listener must be
  passed on before the parent leaves).

Semantics follow runc 1.1 so the same profile gives the same results:
rules whose syscall libseccomp does not know are skipped with a warning; a
rule whose action equals the default action is skipped (libseccomp refuses
it); ERRNO and TRACE without ``errnoRet`` mean EPERM; conditions on the same
argument index are added as separate rules (OR), otherwise one rule (AND);
and when the default action is not permissive, syscalls numbered above the
highest one the profile names return ENOSYS (runc's patchbpf stub), so a
program can detect and fall back from syscalls newer than the profile.
"""

from __future__ import annotations

import errno as _errno
import json
import os
import struct
import sys

from ..errors import PyruncError, SyscallError
from .seccomp_abi import (
    ACTIONS,
    ARCHES,
    FLAGS,
    OPERATORS,
    SECCOMP_FILTER_FLAG_NEW_LISTENER,
    SECCOMP_FILTER_FLAG_SPEC_ALLOW,
    SECCOMP_FILTER_FLAG_TSYNC,
    SECCOMP_FILTER_FLAG_TSYNC_ESRCH,
    SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
    SECCOMP_NR,
    SECCOMP_RET_USER_NOTIF,
    SECCOMP_SET_MODE_FILTER,
    STEP,
)

CACHE_DIR = "/run/pyrunc-cache/seccomp"  # outside every --root: no id can collide with it
_FORMAT = 1  # bump when the normalised form, the compiler or the cache file layout changes
_MAGIC = b"PYRSECC1"
_MAX_BPF_INSNS = 4096  # BPF_MAXINSNS


def _fail(cause: str) -> PyruncError:
    return PyruncError(cause, step=STEP)


def _uint(value: object, bits: int, where: str) -> int:
    """JSON gives Python ints and bools alike; only a real int in range is a valid uint."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise _fail(f"{where}: {value!r} is not an unsigned {bits}-bit integer")
    return value


def action_value(name: object, errno_ret: object, where: str) -> int:
    """The 32-bit kernel return value for an action name (+ errnoRet), as runc computes it."""
    if not isinstance(name, str) or name not in ACTIONS:
        raise _fail(f"{where}: unknown seccomp action {name!r}")
    base, takes_data = ACTIONS[name]
    if errno_ret is None:
        return base | (_errno.EPERM if takes_data else 0)
    if not takes_data:
        raise _fail(f"{where}: errnoRet is not supported with action {name}")
    return base | _uint(errno_ret, 16, where + " errnoRet")


def normalise(seccomp: dict) -> dict:
    """Validate linux.seccomp and reduce it to what determines the BPF program.

    The result is both the compiler's input and the cache key material, so
    comments, podman's extra fields and key order do not split the cache.
    Raises PyruncError(step="seccomp") naming the offending field.
    """
    if not isinstance(seccomp, dict):
        raise _fail("linux.seccomp must be an object")
    base = "linux.seccomp"
    default = action_value(seccomp.get("defaultAction"), seccomp.get("defaultErrnoRet"),
                           base + ".defaultAction")
    arches = []
    for i, name in enumerate(seccomp.get("architectures") or []):
        if not isinstance(name, str) or name not in ARCHES:
            raise _fail(f"{base}.architectures[{i}]: unknown architecture {name!r}")
        if ARCHES[name] not in arches:
            arches.append(ARCHES[name])
    # No "flags" at all: SPEC_ALLOW, as runc 1.2+ (measured with 1.5.1: seccomp(2) gets
    # SECCOMP_FILTER_FLAG_SPEC_ALLOW): otherwise the kernel forces the speculative-store-bypass
    # mitigation, a slowdown, on every process that loads a filter. An explicit list, even an
    # empty one, is taken as given (runc 1.5.1 then loads with no flags).
    flags = SECCOMP_FILTER_FLAG_SPEC_ALLOW if seccomp.get("flags") is None else 0
    for i, name in enumerate(seccomp.get("flags") or []):
        if not isinstance(name, str) or name not in FLAGS:
            raise _fail(f"{base}.flags[{i}]: unknown seccomp flag {name!r}")
        flags |= FLAGS[name]
    rules = []
    for i, rule in enumerate(seccomp.get("syscalls") or []):
        where = f"{base}.syscalls[{i}]"
        if not isinstance(rule, dict):
            raise _fail(f"{where}: must be an object")
        act = action_value(rule.get("action"), rule.get("errnoRet"), where + ".action")
        names = rule.get("names")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise _fail(f"{where}.names: must be a non-empty list of syscall names")
        args = []
        for j, arg in enumerate(rule.get("args") or []):
            aw = f"{where}.args[{j}]"
            if not isinstance(arg, dict):
                raise _fail(f"{aw}: must be an object")
            index = arg.get("index")
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= 5:
                raise _fail(f"{aw}.index: {index!r} is not a syscall argument index (0..5)")
            op = arg.get("op")
            if not isinstance(op, str) or op not in OPERATORS:
                raise _fail(f"{aw}.op: unknown seccomp operator {op!r}")
            value = _uint(arg.get("value"), 64, aw + ".value")
            two = _uint(arg.get("valueTwo", 0), 64, aw + ".valueTwo")
            args.append([index, OPERATORS[op], value, two])
        rules.append([act, list(names), args])
    uses_notify = default == SECCOMP_RET_USER_NOTIF or any(r[0] == SECCOMP_RET_USER_NOTIF for r in rules)
    if uses_notify:
        flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER
        if flags & SECCOMP_FILTER_FLAG_TSYNC:
            # TSYNC + NEW_LISTENER is EINVAL unless TSYNC failures report ESRCH.
            flags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH
    else:
        # The kernel refuses WAIT_KILLABLE_RECV without a listener; it means nothing then.
        flags &= ~SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
    return {"default": default, "arches": arches, "flags": flags, "rules": rules}


# -- the compiled program and the init-side load -------------------------------------


class CompiledFilter:
    """A BPF program ready for seccomp(2), plus what the caller must know about it.

    Everything ``load`` touches is created here, in the parent, so the init
    does no allocation-heavy or syscall-making work around the load.
    """

    def __init__(self, bpf: bytes, flags: int, warnings: list[str]):
        if not bpf or len(bpf) % 8 or len(bpf) // 8 > _MAX_BPF_INSNS:
            raise _fail(f"compiled seccomp program has a bad size ({len(bpf)} bytes)")
        from ..linux import ffi

        self.bpf = bytes(bpf)
        self.flags = flags
        self.warnings = list(warnings)
        self.needs_notify = bool(flags & SECCOMP_FILTER_FLAG_NEW_LISTENER)
        nr = SECCOMP_NR.get(os.uname().machine)
        if nr is None:
            raise _fail(f"seccomp(2) syscall number unknown for machine {os.uname().machine}")
        self._nr = nr
        self._buf = ffi.create_string_buffer(self.bpf, len(self.bpf))
        self._prog = _sock_fprog_type()(len(self.bpf) // 8, ffi.addressof(self._buf))
        self._prog_ptr = ffi.addressof(self._prog)
        # A private function pointer (libc[...] is never cached), so setting argtypes
        # cannot disturb pyrunc.linux's shared `syscall`.
        call = _libc()["syscall"]
        call.restype = ffi.c_long
        call.argtypes = (ffi.c_long, ffi.c_ulong, ffi.c_ulong, ffi.c_void_p)
        self._call = call
        self._get_errno = ffi.get_errno

    def __len__(self) -> int:
        return len(self.bpf) // 8

    def load(self) -> int | None:
        """Install the filter on the calling thread (notify filters; others use load_and_exec).

        Returns the user-notification listener fd (close-on-exec, as the kernel
        creates it) when the profile uses SCMP_ACT_NOTIFY, else None. Needs
        no_new_privs or CAP_SYS_ADMIN in the caller's user namespace.
        """
        ret = self._call(self._nr, SECCOMP_SET_MODE_FILTER, self.flags, self._prog_ptr)
        if ret < 0:
            err = self._get_errno()
            cause = f"seccomp(SECCOMP_SET_MODE_FILTER, {self.flags:#x}): {os.strerror(err)}"
            if err == _errno.EACCES:
                cause += " (without noNewPrivileges the filter must be loaded while CAP_SYS_ADMIN is held)"
            raise SyscallError(cause, err, step=STEP)
        return ret if self.needs_notify else None

    def load_and_exec(self, exe) -> int:
        """Install the filter and execve ``exe`` (a linux.PreparedExec) at once.

        Returns errno when execve failed; raises SyscallError when the load
        failed (nothing was exec'd then). Between the two calls only bytecode of
        this frame runs: the C functions and all their arguments are fetched
        first, and neither call pushes a Python frame or converts a Python
        object that needs a fresh allocation.
        """
        call, nr, flags, prog = self._call, self._nr, self.flags, self._prog_ptr
        execve, path, argv, envp = exe.parts()
        if call(nr, SECCOMP_SET_MODE_FILTER, flags, prog) >= 0:
            execve(path, argv, envp)
            return self._get_errno()
        err = self._get_errno()
        cause = f"seccomp(SECCOMP_SET_MODE_FILTER, {self.flags:#x}): {os.strerror(err)}"
        if err == _errno.EACCES:
            cause += " (without noNewPrivileges the filter must be loaded while CAP_SYS_ADMIN is held)"
        raise SyscallError(cause, err, step=STEP)


_FPROG = None
_LIBC = None


def _libc():
    """libc is already mapped: CDLL(None) is free (pyrunc.linux's handle would pull in its package)."""
    global _LIBC
    if _LIBC is None:
        from ..linux import ffi

        _LIBC = ffi.CDLL(None, use_errno=True)
    return _LIBC


def _sock_fprog_type():
    """struct sock_fprog { unsigned short len; struct sock_filter *filter; } (built once)."""
    global _FPROG
    if _FPROG is None:
        from ..linux import ffi

        class SockFprog(ffi.Structure):
            _fields_ = [("len", ffi.c_ushort), ("filter", ffi.c_void_p)]

        _FPROG = SockFprog
    return _FPROG


# -- compile + cache (parent side) ------------------------------------------------------


def compile_filter(seccomp: dict, *, cache_dir: str | None = CACHE_DIR) -> CompiledFilter:
    """In the parent, before fork: validate and compile linux.seccomp to BPF (cached).

    Raises PyruncError(cause, step="seccomp") for bad actions, arches,
    operators, flags the kernel refuses, or rules libseccomp rejects. Syscall
    names unknown to libseccomp are skipped and listed in ``warnings`` (the
    caller logs them). ``cache_dir=None`` disables the on-disk cache.
    """
    norm = normalise(seccomp)
    key = None
    if cache_dir is not None:
        ident = _libseccomp_identity()
        if ident is not None:
            key = _cache_key(norm, ident)
            hit = _cache_read(cache_dir, key)
            if hit is not None:
                return hit
    from . import seccomp_compile

    bpf, warnings = seccomp_compile.compile_bpf(norm)
    seccomp_compile.check_kernel(norm)
    result = CompiledFilter(bpf, norm["flags"], warnings)
    if key is not None:
        _cache_write(cache_dir, key, result)
    return result


_LIB_DIRS = ("/lib", "/usr/lib", "/lib64", "/usr/lib64", "/usr/local/lib")


def _libseccomp_identity() -> str | None:
    """Which libseccomp build the dynamic loader would pick, without loading it.

    Stats the usual directories (multiarch first) for libseccomp.so.2; the
    resolved file name (it carries the version), size and mtime identify the
    build. None when not found: then there is no caching (the compiler will
    still find the library through the loader, or fail clearly).
    """
    multiarch = getattr(sys.implementation, "_multiarch", "")
    dirs = [f"{d}/{multiarch}" for d in ("/lib", "/usr/lib") if multiarch] + list(_LIB_DIRS)
    for d in dirs:
        path = f"{d}/libseccomp.so.2"
        try:
            st = os.stat(path)
        except OSError:
            continue
        return f"{os.path.realpath(path)}:{st.st_size}:{st.st_mtime_ns}"
    return None


def _cache_key(norm: dict, ident: str) -> str:
    """Hash of everything that decides the program and the kernel checks done at compile."""
    try:
        from _sha256 import sha256  # the builtin module: hashlib would load OpenSSL (~3 ms)
    except ImportError:  # pragma: no cover - CPython built without it
        from hashlib import sha256

    u = os.uname()
    material = json.dumps([_FORMAT, ident, u.machine, u.release, norm], sort_keys=True,
                          separators=(",", ":"))
    return sha256(material.encode()).hexdigest()


def _safe_dir(path: str) -> bool:
    """Only trust a cache directory that is ours and not writable by anyone else.

    A planted cache file would replace the container's filter, so a directory
    another user could write to is ignored rather than used.
    """
    try:
        st = os.lstat(path)
    except OSError:
        return False
    import stat as _stat

    return _stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _cache_read(cache_dir: str, key: str) -> CompiledFilter | None:
    if not _safe_dir(cache_dir):
        return None
    try:
        fd = os.open(f"{cache_dir}/{key}", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = b""
        while chunk := os.read(fd, 1 << 16):
            data += chunk
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        if data[:8] != _MAGIC:
            return None
        (hlen,) = struct.unpack_from("<I", data, 8)
        head = json.loads(data[12:12 + hlen])
        bpf = data[12 + hlen:]
        if head.get("key") != key or head.get("len") != len(bpf):
            return None
        return CompiledFilter(bpf, head["flags"], head["warnings"])
    except (ValueError, KeyError, TypeError, struct.error, PyruncError):
        return None  # a damaged entry is just a miss; it is rewritten below


def _cache_write(cache_dir: str, key: str, f: CompiledFilter) -> None:
    """Write atomically (temp file + rename); a cache that cannot be written is not an error."""
    try:
        os.makedirs(cache_dir, 0o700, exist_ok=True)
    except OSError:
        return
    if not _safe_dir(cache_dir):
        return
    head = json.dumps({"key": key, "len": len(f.bpf), "flags": f.flags,
                       "warnings": f.warnings}).encode()
    blob = _MAGIC + struct.pack("<I", len(head)) + head + f.bpf
    tmp = f"{cache_dir}/.{key}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, blob)
        finally:
            os.close(fd)
        os.rename(tmp, f"{cache_dir}/{key}")
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


# -- SCMP_ACT_NOTIFY: hand the listener to the agent -------------------------------------


def notify_payload(state: dict, *, pid: int, metadata: str | None = None,
                   oci_version: str | None = None) -> bytes:
    """The runtime-spec "container process state" JSON sent with the listener fd."""
    doc: dict = {"ociVersion": oci_version or state.get("ociVersion", ""), "fds": ["seccompFd"],
                 "pid": pid}
    if metadata:
        doc["metadata"] = metadata
    doc["state"] = state
    return json.dumps(doc, separators=(",", ":")).encode()


def connect_listener(listener_path: str):
    """Connect to listenerPath (AF_UNIX, SOCK_STREAM); do it on the host side, before pivot_root."""
    from ..linux import unixsock

    return unixsock.connect(listener_path, "seccomp listenerPath", step=STEP)


def send_listener(listener, fd: int, state: dict, metadata: str | None = None,
                  *, pid: int | None = None) -> None:
    """Send the listener fd (SCM_RIGHTS) and the process state to the seccomp agent.

    ``listener`` is listenerPath or a socket already connected to it (see
    ``connect_listener``). Exactly one state per connection, then the
    connection is closed, as runtime-spec requires; any failure is an error.
    """
    import socket

    payload = notify_payload(state, pid=state.get("pid", 0) if pid is None else pid, metadata=metadata)
    sock = connect_listener(listener) if isinstance(listener, str) else listener
    try:
        sent = socket.send_fds(sock, [payload], [fd])
        if sent < len(payload):
            sock.sendall(payload[sent:])
    except OSError as e:
        raise PyruncError(f"send seccomp listener fd: {e.strerror}", step=STEP) from None
    finally:
        sock.close()
