"""The rootfs of a container without a mount namespace of its own.

config-linux.md: a namespace type absent from ``linux.namespaces`` is
inherited from the runtime, so such a container's mounts (proc, dev, cgroup,
masks ...) live in the caller's mount namespace. runc does them there as
well, but first makes the caller's / rslave (and the rootfs's parent mount
private), lets every mount propagate from there, and leaves them all behind
at `delete`. pyrunc keeps the caller's namespace as it found it:

- ``attach_rootfs`` (the parent, before the init exists) binds the rootfs
  onto itself as one mount made private before it is attached, so nothing
  mounted into it later propagates anywhere; every container mount lands
  inside it. Its mount id goes into the state record.
- the init never calls pivot_root or MS_MOVE (they would move the caller's
  own root): it chroots into that mount (pivot.chroot_into) and changes no
  propagation outside it.
- ``detach_rootfs`` (delete, or a failed create) detaches that one mount,
  and everything mounted inside it goes with it. It is named by the recorded
  id, so a mount somebody else put on the rootfs is never touched.
"""

from __future__ import annotations

import os

from pyrunc.errors import PyruncError
from pyrunc.linux import mount as m
from pyrunc.rootfs import options

STEP = "rootfs mount"


def mount_id(fd: int) -> int:
    """The id of the mount ``fd`` is on, as /proc/self/mountinfo numbers it."""
    with open(f"/proc/self/fdinfo/{fd}", encoding="ascii") as f:
        for line in f:
            if line.startswith("mnt_id:"):
                return int(line.split()[1])
    raise OSError("no mnt_id in fdinfo")


def attach_rootfs(rootfs: str, propagation: str | None) -> int:
    """Bind ``rootfs`` onto itself, private (then ``rootfsPropagation`` if given); its mount id.

    The copy is made detached (open_tree) and moved into place, then made private before
    anything is mounted inside it: no mount the init makes there reaches the caller's other
    mounts or other namespaces. (Where the rootfs's parent mount is shared, the bind itself
    propagates like any mount in that namespace would; its unmount then propagates too.)
    """
    try:
        flag = options.propagation_flag(propagation) if propagation else 0
    except ValueError as e:
        raise PyruncError(str(e), step=STEP) from None
    try:
        tree = m.open_tree(m.AT_FDCWD, rootfs, m.OPEN_TREE_CLONE | m.OPEN_TREE_CLOEXEC | m.AT_RECURSIVE)
    except OSError as e:
        raise PyruncError(f"bind rootfs {rootfs}: {e.strerror}", step=STEP) from None
    try:
        try:
            m.move_mount(tree, "", m.AT_FDCWD, rootfs, m.MOVE_MOUNT_F_EMPTY_PATH)
        except OSError as e:
            raise PyruncError(f"bind rootfs {rootfs}: {e.strerror}", step=STEP) from None
        try:
            # Attached under a shared parent it became shared (a new peer group, whose copies
            # the attach itself propagated): private now, before anything is mounted inside.
            m.mount_setattr(tree, "", m.AT_EMPTY_PATH | m.AT_RECURSIVE, propagation=m.MS_PRIVATE)
            if flag:
                m.mount(None, f"/proc/thread-self/fd/{tree}", None, flag)
            return mount_id(tree)
        except OSError as e:
            _detach(tree)
            raise PyruncError(f"set up rootfs mount {rootfs}: {e.strerror}", step=STEP) from None
    finally:
        os.close(tree)


def _detach(fd: int) -> None:
    """Lazily unmount the mount whose root ``fd`` is, with everything mounted inside it."""
    m.umount2(f"/proc/thread-self/fd/{fd}", m.MNT_DETACH)


def detach_rootfs(rootfs: str, mid: int) -> None:
    """Unmount the rootfs mount ``attach_rootfs`` made (id ``mid``), if it is still there.

    Nothing is done when the mount on the rootfs now is another one (ours is gone already,
    or something was mounted over it): only our own mount is ever removed.
    """
    try:
        fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except OSError as e:
        raise PyruncError(f"open rootfs {rootfs}: {e.strerror}", step=STEP) from None
    try:
        if mount_id(fd) != mid:
            return
        _detach(fd)
    except OSError as e:
        raise PyruncError(f"unmount rootfs {rootfs}: {e.strerror}", step=STEP) from None
    finally:
        os.close(fd)
