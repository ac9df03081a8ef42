"""Facts read from /proc (processes, mountinfo fields), with no ctypes: cheap enough for `state`
and `kill`."""

from __future__ import annotations

import os


def pid_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None if the pid is gone.

    Stored at create time and compared later, it guards every signal and status
    query against the pid having been reused by an unrelated process.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rfind(b")") + 2:].split()
    # rest[0] is field 3 (state); field 22 is rest[19]
    return int(rest[19])


def pid_state(pid: int) -> str | None:
    """The one-letter state of a pid (R, S, Z, ...), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rfind(b")") + 2:data.rfind(b")") + 3].decode()


def pid_alive(pid: int, start_time: int | None) -> bool:
    """True if pid runs (not a zombie or dead) and is the same process we recorded."""
    if pid <= 0:
        return False
    st = pid_state(pid)
    if st is None or st in ("Z", "X", "x"):
        return False
    return start_time is None or pid_start_time(pid) == start_time


def waitpid_status(status: int) -> int:
    """Shell-style exit code of a wait status: the code, or 128+signal."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def unescape_mountinfo(field: str) -> str:
    """Undo /proc/*/mountinfo's octal escapes (``\\040`` for a space and friends)."""
    if "\\" not in field:
        return field
    out = []
    i = 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit() and len(field[i + 1:i + 4]) == 3:
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)
