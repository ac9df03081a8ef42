"""The few ctypes pieces pyrunc calls C with, defined straight on the ``_ctypes`` C module.

``import ctypes`` costs about 1 ms on every `create`, `run` and `exec`: its
``__init__`` imports ``struct`` and ``types``, defines some forty types and
builds a callback trampoline. pyrunc needs eight C types, function pointers
from libc and libseccomp, and a handful of helpers; defining just those on
``_ctypes`` (the module ctypes itself is built on, and which it re-exports
``Structure``, ``POINTER``, ``byref`` and friends from) costs a few
microseconds on top of loading ``_ctypes``. The names and behaviour match
ctypes', so the code that uses them reads like ctypes code.
"""

from __future__ import annotations

import _ctypes
from _ctypes import POINTER, Structure, addressof, byref, get_errno, sizeof

__all__ = ["CDLL", "POINTER", "Structure", "addressof", "byref", "c_char", "c_char_p", "c_int",
           "c_int32", "c_long", "c_size_t", "c_uint", "c_uint32", "c_uint64", "c_ulong", "c_ushort",
           "c_void_p", "create_string_buffer", "get_errno", "sizeof"]


class c_int(_ctypes._SimpleCData):
    _type_ = "i"


class c_uint(_ctypes._SimpleCData):
    _type_ = "I"


class c_long(_ctypes._SimpleCData):
    _type_ = "l"


class c_ulong(_ctypes._SimpleCData):
    _type_ = "L"


class c_ushort(_ctypes._SimpleCData):
    _type_ = "H"


class c_char(_ctypes._SimpleCData):
    _type_ = "c"


class c_char_p(_ctypes._SimpleCData):
    _type_ = "z"  # NUL-terminated bytes in, bytes (or None) out


class c_void_p(_ctypes._SimpleCData):
    _type_ = "P"


# LP64 (every Linux pyrunc runs on): int is 32 bits, long and size_t 64.
c_size_t = c_ulong
c_int32 = c_int
c_uint32 = c_uint
c_uint64 = c_ulong


def create_string_buffer(init: bytes | int, size: int | None = None):
    """A mutable char array: ``size`` zero bytes, or ``init`` copied in (plus a NUL if it fits)."""
    if isinstance(init, int):
        return (c_char * init)()
    if size is not None and len(init) > size:
        raise ValueError("byte string too long")
    buf = (c_char * (len(init) + 1 if size is None else size))()
    buf.raw = init.ljust(len(buf), b"\0")
    return buf


class CDLL:
    """A shared library (``None``: the running program, where libc already is) whose attributes
    are its C functions, each returning int until ``restype`` says otherwise."""

    def __init__(self, name: str | None, use_errno: bool = False):
        flags = _ctypes.FUNCFLAG_CDECL | (_ctypes.FUNCFLAG_USE_ERRNO if use_errno else 0)

        class Function(_ctypes.CFuncPtr):
            _flags_ = flags
            _restype_ = c_int

        self._function = Function
        self._handle = _ctypes.dlopen(name, 0)  # _ctypes adds RTLD_NOW; RTLD_LOCAL is 0

    def __getattr__(self, name: str):
        """The function, kept: later lookups (and their restype/argtypes) share it."""
        if name.startswith("_"):
            raise AttributeError(name)
        fn = self[name]
        setattr(self, name, fn)
        return fn

    def __getitem__(self, name: str):
        """A fresh function object, for a caller that needs its own restype/argtypes."""
        return self._function((name, self))
