"""Bind sources cloned on the host side, before stage 1 exists (runc's mount-source fds).

In a user namespace, created or joined, the init is the namespace's root: a host uid such as
100000, without any capability over the host's files. Two things a bind may need are then out of
its reach, and runc 1.2+ does both from the host side:

- opening a source below a directory only the host's root may search (containerd keeps the
  files it binds into a pod, /etc/hosts and the rest, under its 0700 state directories);
- ``MOUNT_ATTR_IDMAP``, which needs CAP_SYS_ADMIN over the source's filesystem, whose user
  namespace is the host's.

So the parent, still host root, clones each such source as a detached mount tree
(``open_tree(OPEN_TREE_CLONE)``), idmaps it when the mount asks, and hands the fds to the stages
as it hands them namespace fds; the init ``move_mount``s a tree onto its destination (a detached
tree may be attached in another mount namespace by whoever may mount there) and applies the
mount's flags as for any bind. runc asks for a source only when the init cannot reach it; pyrunc
clones every bind of a user-namespaced container up front (no round trip on the channel) and the
init still opens the source itself first, using the clone only when that fails, so a reachable
source is bound exactly as before. A detached tree that is never attached vanishes with its last
fd: nothing on the host to clean after a failure.

The clone is made a slave (private with a private root propagation) of its source, recursively,
as a bind made inside from the rslave copy of the host tree would be: mounts made in the
container never propagate back to the host through it.
"""

from __future__ import annotations

import os

from pyrunc.errors import PyruncError
from pyrunc.linux import mount as m
from pyrunc.rootfs import options as mopts

STEP = "mount"


class SourceTree:
    """A bind source cloned on the host side: the detached tree's fd and whether it is idmapped
    (then the init must use it: it could not idmap a source it opened itself)."""

    __slots__ = ("fd", "idmapped")

    def __init__(self, fd: int, idmapped: bool) -> None:
        self.fd = fd
        self.idmapped = idmapped


def is_bind(mnt: dict) -> bool:
    """A bind mount as mounts.classify would call it (type bind, or a bind/rbind option)."""
    opts = mnt.get("options") or []
    return mnt.get("type") == "bind" or "bind" in opts or "rbind" in opts


def clone_source(source: str, recursive: bool, propagation: int) -> int:
    """A detached copy of the mount tree at ``source`` (only its top mount unless ``recursive``),
    cut off from the host's peer group."""
    tree = m.open_tree(m.AT_FDCWD, source, m.OPEN_TREE_CLONE | m.OPEN_TREE_CLOEXEC
                       | (m.AT_RECURSIVE if recursive else 0))
    try:
        m.mount_setattr(tree, "", m.AT_EMPTY_PATH | m.AT_RECURSIVE, propagation=propagation)
    except OSError:
        os.close(tree)
        raise
    return tree


def idmap_tree(tree: int, userns_fd: int, recursive: bool) -> None:
    """Give a detached tree the mapping of ``userns_fd`` (``ridmap``: every mount in it)."""
    m.mount_setattr(tree, "", m.AT_EMPTY_PATH | (m.AT_RECURSIVE if recursive else 0),
                    attr_set=m.MOUNT_ATTR_IDMAP, userns_fd=userns_fd)


def clone_bind_sources(config: dict, bundle: str, idmap_fds: dict[int, int], *,
                       all_binds: bool) -> dict[int, SourceTree]:
    """mount index -> its source cloned here: every idmapped mount (``idmap_fds``: index -> the
    user namespace carrying its mapping, made by userns.idmap_fds; closed here), and with
    ``all_binds`` (a user-namespaced container, host root) every other bind. A plain bind whose
    source cannot be cloned is left to the init, which then fails on it as it always did (a
    missing source, say); an idmapped one fails here, naming the mount. Raises PyruncError,
    leaving nothing open."""
    propagation = m.MS_PRIVATE if (config.get("linux") or {}).get("rootfsPropagation") in (
        "private", "rprivate") else m.MS_SLAVE
    out: dict[int, SourceTree] = {}
    try:
        for i, mnt in enumerate(config.get("mounts") or []):
            userns_fd = idmap_fds.get(i)
            if userns_fd is None and not (all_binds and is_bind(mnt)):
                continue
            if not is_bind(mnt):
                raise PyruncError(f"mount {mnt.get('destination')}: idmapped mounts are only supported "
                                  "for bind mounts", step=STEP)
            source = mnt.get("source") or ""
            source = source if os.path.isabs(source) else os.path.join(bundle, source)
            opts = mopts.parse(mnt.get("options"))
            try:
                tree = clone_source(source, opts.is_recursive_bind, propagation)
            except OSError as e:
                if userns_fd is None:
                    continue
                raise PyruncError(f"idmapped bind mount {source} on {mnt.get('destination')}: "
                                  f"open_tree: {os.strerror(e.errno or 0)}", step=STEP, errno=e.errno or 0) from None
            out[i] = SourceTree(tree, userns_fd is not None)
            if userns_fd is not None:
                try:
                    idmap_tree(tree, userns_fd, opts.idmap == "ridmap")
                except OSError as e:
                    raise PyruncError(f"idmapped bind mount {source} on {mnt.get('destination')}: "
                                      f"{os.strerror(e.errno or 0)}", step=STEP, errno=e.errno or 0) from None
    except BaseException:
        for t in out.values():
            os.close(t.fd)
        raise
    finally:
        for fd in idmap_fds.values():
            os.close(fd)
    return out
