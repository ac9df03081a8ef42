"""User namespaces made only to carry an id mapping: the handle an idmapped mount needs.

mount_setattr(MOUNT_ATTR_IDMAP) takes the mapping from a user namespace fd.
We make one by forking a child that unshares CLONE_NEWUSER, writing its maps
from here (the parent namespace), opening /proc/CHILD/ns/user and letting
the child go. Done in the runtime before anything else is forked, so the
init only receives finished fds.
"""

from __future__ import annotations

import _signal as signal  # the C module: no enum import on the hot path
import os

from . import linux
from .errors import PyruncError


def map_text(mappings: list[dict]) -> str:
    return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in mappings)


def make_userns_fd(uid_mappings: list[dict], gid_mappings: list[dict]) -> int:
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # the child: unshare, say so, wait to be killed
        try:
            os.close(r)
            linux.unshare(linux.CLONE_NEWUSER)
            os.write(w, b"1")
            signal.pause()
        finally:
            os._exit(0)
    os.close(w)
    try:
        if os.read(r, 1) != b"1":
            raise PyruncError("could not create a user namespace for an idmapped mount", step="idmap")
        for name, maps in (("uid_map", uid_mappings), ("gid_map", gid_mappings)):
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(map_text(maps))
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise PyruncError(f"idmapped mount: write id mappings: {e.strerror}", step="idmap") from None
    finally:
        os.close(r)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def idmap_fds(config: dict) -> dict[int, int]:
    """mount index -> user namespace fd, for every mount that asks to be idmapped."""
    lin = config.get("linux") or {}
    out: dict[int, int] = {}
    try:
        for i, mnt in enumerate(config.get("mounts") or []):
            opts = mnt.get("options") or []
            wants = "idmap" in opts or "ridmap" in opts or mnt.get("uidMappings") or mnt.get("gidMappings")
            if not wants:
                continue
            uids = mnt.get("uidMappings") or lin.get("uidMappings")
            gids = mnt.get("gidMappings") or lin.get("gidMappings")
            if not uids or not gids:
                raise PyruncError(f"mount {mnt.get('destination')}: idmap needs uidMappings and "
                                  "gidMappings (on the mount or the container)", step="idmap")
            out[i] = make_userns_fd(uids, gids)
    except BaseException:
        for fd in out.values():
            os.close(fd)
        raise
    return out
