"""AppArmor and SELinux: detect whether the host enforces them, apply exec labels if so.

A label asked for on a host whose LSM is off is an error naming the LSM
(runc does the same), never a silently unconfined container.
"""

from __future__ import annotations

import errno
import os

from ..errors import PyruncError


def apparmor_enabled() -> bool:
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read().strip() == "Y"
    except OSError:
        return False


def selinux_enabled() -> bool:
    try:
        return os.statvfs("/sys/fs/selinux").f_blocks >= 0 and os.path.exists("/sys/fs/selinux/enforce")
    except OSError:
        return False


def check(process: dict, lin: dict) -> None:
    if process.get("apparmorProfile") and not apparmor_enabled():
        raise PyruncError(f"apparmor profile {process['apparmorProfile']!r} requested but AppArmor is "
                          "not enabled on this host", step="validate")
    if process.get("selinuxLabel") and not selinux_enabled():
        raise PyruncError(f"selinux label {process['selinuxLabel']!r} requested but SELinux is not "
                          "enabled on this host", step="validate")
    if lin.get("mountLabel") and not selinux_enabled():
        raise PyruncError(f"mount label {lin['mountLabel']!r} requested but SELinux is not enabled "
                          "on this host", step="validate")


def apply_exec_labels(process: dict) -> None:
    """Labels take effect at execve; written just before it, through /proc/thread-self.

    Only the next execve of this task changes domain (forked children inherit
    the pending label, as they do under runc), so the init and an exec'd
    process start confined and the runtime code before the exec does not.
    Written through our own procfs handle (linux/procfs.py): by path, a
    co-tenant that swapped the container's /proc would get the label and the
    container would run unconfined (CVE-2019-16884, CVE-2025-52881).
    """
    profile = process.get("apparmorProfile")
    if profile:
        _write_attr(["thread-self/attr/apparmor/exec", "thread-self/attr/exec"],
                    f"exec {profile}", "apparmor")
    label = process.get("selinuxLabel")
    if label:
        _write_attr(["thread-self/attr/exec"], label, "selinux")


def _write_attr(paths: list[str], value: str, lsm: str) -> None:
    from ..linux import procfs

    last = None
    for path in paths:
        try:
            fd = procfs.open(path, os.O_WRONLY)
        except FileNotFoundError as e:
            last = e
            continue
        try:
            os.write(fd, value.encode())
            return
        except OSError as e:
            if e.errno == errno.ENOENT and lsm == "apparmor":  # the kernel's answer for a profile not loaded
                raise PyruncError(f"apparmor profile {value[5:]!r} is not loaded (apparmor_parser -r "
                                  "loads it)", step="apply_lsm_labels") from None
            raise PyruncError(f"set {lsm} exec label {value!r}: {e.strerror}", step="apply_lsm_labels") from None
        finally:
            os.close(fd)
    raise PyruncError(f"set {lsm} exec label: {last}", step="apply_lsm_labels")
