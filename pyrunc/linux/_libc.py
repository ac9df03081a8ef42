"""The one handle on libc that every ``pyrunc.linux`` module shares.

libc is already mapped into the interpreter, so ``CDLL(None)`` costs nothing
and never runs ``ctypes.util.find_library`` (which spawns processes).
``check`` turns a -1 return into ``OSError`` carrying errno and a short
description of the call, so callers can branch on ``e.errno``.
"""

from __future__ import annotations

import os

from . import ffi

libc = ffi.CDLL(None, use_errno=True)

_syscall = libc.syscall
_syscall.restype = ffi.c_long


def check(ret: int, what: str) -> int:
    """Raise OSError(errno, "<what>: <strerror>") when a libc call returned -1."""
    if ret == -1:
        err = ffi.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def syscall(number: int, *args, what: str = "syscall") -> int:
    """Call a raw system call by number (for calls glibc 2.36 does not wrap)."""
    return check(_syscall(ffi.c_long(number), *args), what)


def fn(name: str, restype, *argtypes):
    """Bind a libc function with its C signature."""
    f = getattr(libc, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f
