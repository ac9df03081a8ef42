"""bpf(2) for cgroup device programs: load, attach, detach, query, fd by id.

The attribute unions are built with ``struct``; only the buffers the kernel
reads or fills (instructions, license, verifier log, the id array) are ctypes
objects, since their addresses go into the attribute.
"""

from __future__ import annotations

import errno
import platform
import struct

from . import ffi
from ._libc import syscall

BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2

_SYS_BPF = {"x86_64": 321, "aarch64": 280, "armv7l": 386, "ppc64le": 361, "s390x": 351, "riscv64": 280}


def bpf(cmd: int, attr: bytearray) -> int:
    number = _SYS_BPF.get(platform.machine())
    if number is None:
        raise OSError(errno.ENOSYS, f"bpf: unknown syscall number on {platform.machine()}")
    buf = (ffi.c_char * len(attr)).from_buffer(attr)
    return syscall(number, ffi.c_long(cmd), buf, ffi.c_long(len(attr)), what=f"bpf(cmd {cmd})")


def prog_load_cgroup_device(code: bytes, name: bytes = b"pyrunc_dev") -> int:
    """BPF_PROG_LOAD a device program; returns its fd. The verifier's last line joins errors."""
    insns = ffi.create_string_buffer(code, len(code))
    license_ = ffi.create_string_buffer(b"Apache-2.0")
    log = ffi.create_string_buffer(64 * 1024)
    attr = bytearray(128)
    struct.pack_into("<IIQQIIQ", attr, 0, BPF_PROG_TYPE_CGROUP_DEVICE, len(code) // 8,
                     ffi.addressof(insns), ffi.addressof(license_), 1, len(log), ffi.addressof(log))
    attr[48:48 + len(name[:15])] = name[:15]  # prog_name: offset 48, 16 bytes
    try:
        return bpf(BPF_PROG_LOAD, attr)
    except OSError as e:
        detail = log.value.decode(errors="replace").strip().splitlines()
        raise OSError(e.errno, f"{e.strerror}{': ' + detail[-1] if detail else ''}") from None


def _attach_attr(cgroup_fd: int, prog_fd: int, flags: int = 0) -> bytearray:
    attr = bytearray(32)
    struct.pack_into("<IIII", attr, 0, cgroup_fd, prog_fd, BPF_CGROUP_DEVICE, flags)
    return attr


def prog_attach_device(cgroup_fd: int, prog_fd: int, flags: int = BPF_F_ALLOW_MULTI) -> None:
    bpf(BPF_PROG_ATTACH, _attach_attr(cgroup_fd, prog_fd, flags))


def prog_detach_device(cgroup_fd: int, prog_fd: int) -> None:
    bpf(BPF_PROG_DETACH, _attach_attr(cgroup_fd, prog_fd))


def prog_query_device(cgroup_fd: int) -> list[int]:
    """Ids of the device programs attached directly to this cgroup (not inherited ones)."""
    ids = (ffi.c_uint32 * 64)()
    attr = bytearray(40)
    struct.pack_into("<IIIIQI", attr, 0, cgroup_fd, BPF_CGROUP_DEVICE, 0, 0, ffi.addressof(ids), 64)
    bpf(BPF_PROG_QUERY, attr)
    count = struct.unpack_from("<I", attr, 24)[0]
    return list(ids[:count])


def prog_fd_by_id(prog_id: int) -> int:
    attr = bytearray(16)
    struct.pack_into("<I", attr, 0, prog_id)
    return bpf(BPF_PROG_GET_FD_BY_ID, attr)
