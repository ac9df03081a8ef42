"""Is this runtime rootless, and what follows from it for its defaults.

runc's rules, with our own names: ``--rootless auto`` means rootless when
the caller is not root, or is root only inside a user namespace that is not
the initial one (rootless podman runs the runtime that way: "root" in the
namespace that maps the user's subordinate ids). A rootless runtime keeps
its state under ``$XDG_RUNTIME_DIR/pyrunc`` (created 0700), skips the
cgroups it may not write to, bind-mounts devices instead of mknod, writes
multi-range id mappings through newuidmap/newgidmap and only ever lowers
its own privileges (rlimits, oom_score_adj).

Only ``os`` is imported: `state`, `kill` and `delete` resolve the default
root through here on every call.
"""

from __future__ import annotations

import os

from .errors import UsageError

MODES = ("auto", "true", "false")
_INITIAL_UID_MAP = (b"0", b"0", b"4294967295")


def in_initial_userns() -> bool:
    """The initial user namespace maps every id to itself: ``0 0 4294967295``.

    Any other /proc/self/uid_map is a user namespace someone made (podman's,
    `unshare -r`'s). Unreadable /proc: assume the initial one, as runc does.
    """
    try:
        with open("/proc/self/uid_map", "rb") as f:
            lines = f.read().split(b"\n")
    except OSError:
        return True
    return tuple(lines[0].split()) == _INITIAL_UID_MAP and not any(lines[1:])


def outer_uid() -> int:
    """Our effective uid as the parent user namespace sees it (the uid_map line that maps it);
    in the initial namespace, or with /proc unreadable, the uid itself. For root of a user
    namespace that maps the user (rootless podman), that is the user: whose ``/run/user/UID``
    and ``systemd --user`` to use."""
    euid = os.geteuid()
    try:
        with open("/proc/self/uid_map", "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return euid
    for line in lines:
        fields = line.split()
        if len(fields) == 3:
            inside, outside, count = (int(x) for x in fields)
            if inside <= euid < inside + count:
                return outside + euid - inside
    return euid


def detect(mode: str = "auto") -> bool:
    """True when pyrunc runs rootless, by ``--rootless auto|true|false``."""
    if mode not in MODES:
        raise UsageError(f"invalid --rootless value {mode!r}: expected auto, true or false")
    if mode != "auto":
        return mode == "true"
    return os.geteuid() != 0 or not in_initial_userns()


def state_root(default: str) -> str:
    """``$XDG_RUNTIME_DIR/pyrunc`` for a rootless caller that has one (runc's rule), else
    ``default``. Root inside a user namespace honours it unless $USER says root (a root shell
    that only unshared a namespace keeps /run)."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if not xdg:
        return default
    if os.geteuid() != 0:
        return os.path.join(xdg, "pyrunc")
    if in_initial_userns() or os.environ.get("USER") == "root":
        return default
    return os.path.join(xdg, "pyrunc")


def _covered(value: int, mappings: list[dict]) -> bool:
    return any(int(m.get("containerID", 0)) <= value < int(m.get("containerID", 0)) + int(m.get("size", 0))
               for m in mappings)


def check_config(config: dict) -> None:
    """What a rootless container needs beyond what root's does, refused before anything is made:
    its own user namespace (unless already root in one), and mappings that cover the ids the
    process runs as (else setresuid in the init fails with a bare EINVAL)."""
    from .errors import PyruncError

    lin = config.get("linux") or {}
    nss = {ns.get("type") for ns in lin.get("namespaces") or []}
    if "user" not in nss:
        if os.geteuid() != 0:
            raise PyruncError('rootless containers need a user namespace (linux.namespaces has no '
                              '"user"; see `pyrunc spec --rootless`)', step="validate")
        return
    if any(ns.get("type") == "user" and ns.get("path") for ns in lin.get("namespaces") or []):
        return  # joined: its mappings are someone else's
    user = (config.get("process") or {}).get("user") or {}
    for key, mkey, values in (("uid", "uidMappings", [user.get("uid", 0)]),
                              ("gid", "gidMappings", [user.get("gid", 0)]),
                              ("additionalGids", "gidMappings", user.get("additionalGids") or [])):
        mappings = lin.get(mkey) or []
        for value in values:
            if not _covered(int(value), mappings):
                raise PyruncError(f"process.user.{key} {value} is not mapped by linux.{mkey} "
                                  f"({_show(mappings)})", step="validate")


def _show(mappings: list[dict]) -> str:
    if not mappings:
        return "none given"
    return ", ".join(f"{m.get('containerID')}->{m.get('hostID')}+{m.get('size')}" for m in mappings)


def check_rootfs(rootfs: str) -> None:
    """An unprivileged caller must be able to enter and list its rootfs: we mount from it."""
    if os.geteuid() != 0 and not os.access(rootfs, os.R_OK | os.X_OK):
        from .errors import PyruncError

        raise PyruncError(f"rootfs {rootfs} is not readable by uid {os.geteuid()}",
                          step="validate")
