"""linux/ffi.py against the real ctypes: the same sizes, buffers and calls (a mismatch would corrupt
syscall arguments, and only some of them are exercised by the container tests)."""

from __future__ import annotations

import ctypes
import os

import pytest

from pyrunc.linux import ffi

TYPES = ["c_int", "c_uint", "c_long", "c_ulong", "c_ushort", "c_char", "c_char_p", "c_void_p",
         "c_size_t", "c_int32", "c_uint32", "c_uint64"]


@pytest.mark.parametrize("name", TYPES)
def test_sizes_match_ctypes(name):
    assert ffi.sizeof(getattr(ffi, name)) == ctypes.sizeof(getattr(ctypes, name))


@pytest.mark.parametrize("args", [(b"abc",), (b"abc", 8), (b"a\0b\0", 4), (16,), (b"",), (b"xyz", 3)])
def test_create_string_buffer_matches_ctypes(args):
    ours, theirs = ffi.create_string_buffer(*args), ctypes.create_string_buffer(*args)
    assert ffi.sizeof(ours) == ctypes.sizeof(theirs)
    assert ours.raw == theirs.raw


def test_create_string_buffer_refuses_what_does_not_fit():
    with pytest.raises(ValueError):
        ctypes.create_string_buffer(b"xyz", 2)
    with pytest.raises(ValueError):
        ffi.create_string_buffer(b"xyz", 2)


def test_libc_calls_return_ints_and_set_errno():
    libc = ffi.CDLL(None, use_errno=True)
    assert libc.getpid() == os.getpid()
    assert libc.close(-1) == -1 and ffi.get_errno() == 9  # EBADF
    fresh = libc["getppid"]  # item access: a new function object, its own restype
    assert fresh is not libc["getppid"] and fresh() == os.getppid()


def test_structures_and_pointers():
    class Pair(ffi.Structure):
        _fields_ = [("a", ffi.c_uint32), ("b", ffi.c_uint64)]

    class TheirPair(ctypes.Structure):
        _fields_ = [("a", ctypes.c_uint32), ("b", ctypes.c_uint64)]

    p = Pair(1, 2)
    assert ffi.sizeof(Pair) == ctypes.sizeof(TheirPair) == 16
    assert ffi.addressof(p) == ctypes.addressof(p)
    assert ffi.POINTER(Pair).__name__ == "LP_Pair"


def test_prepared_exec_reports_errno_and_refuses_nul():
    """The init's execve (linux.PreparedExec): a failed call returns errno; NUL is refused
    like os.execve does, rather than silently cutting the string."""
    import errno

    from pyrunc import linux

    assert linux.PreparedExec("/no/such/program", ["x"], {"A": "1"})() == errno.ENOENT
    with pytest.raises(ValueError):
        linux.PreparedExec("/bin/true", ["a\0b"], {})
