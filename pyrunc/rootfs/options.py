"""Translate OCI mount ``options`` (mount(8) words) into what the kernel takes.

The parse follows runc: options are applied left to right (so ``ro,rw`` ends
read-write), propagation words become separate mount calls made after the
mount itself, recursive words (``rro``, ``rnosuid``...) become a
mount_setattr(AT_RECURSIVE) change, and anything unrecognised is passed
through verbatim in the data string (``mode=755``, ``size=64k``...), because
that is where filesystem-specific options belong.
"""

from __future__ import annotations

from pyrunc.linux import mount as m

# word -> (clears the flag?, MS_* bits)
FLAGS: dict[str, tuple[bool, int]] = {
    "defaults": (False, 0),
    "ro": (False, m.MS_RDONLY),
    "rw": (True, m.MS_RDONLY),
    "suid": (True, m.MS_NOSUID),
    "nosuid": (False, m.MS_NOSUID),
    "dev": (True, m.MS_NODEV),
    "nodev": (False, m.MS_NODEV),
    "exec": (True, m.MS_NOEXEC),
    "noexec": (False, m.MS_NOEXEC),
    "sync": (False, m.MS_SYNCHRONOUS),
    "async": (True, m.MS_SYNCHRONOUS),
    "dirsync": (False, m.MS_DIRSYNC),
    "remount": (False, m.MS_REMOUNT),
    "mand": (False, m.MS_MANDLOCK),
    "nomand": (True, m.MS_MANDLOCK),
    "atime": (True, m.MS_NOATIME),
    "noatime": (False, m.MS_NOATIME),
    "diratime": (True, m.MS_NODIRATIME),
    "nodiratime": (False, m.MS_NODIRATIME),
    "relatime": (False, m.MS_RELATIME),
    "norelatime": (True, m.MS_RELATIME),
    "strictatime": (False, m.MS_STRICTATIME),
    "nostrictatime": (True, m.MS_STRICTATIME),
    "lazytime": (False, m.MS_LAZYTIME),
    "nolazytime": (True, m.MS_LAZYTIME),
    "symfollow": (True, m.MS_NOSYMFOLLOW),
    "nosymfollow": (False, m.MS_NOSYMFOLLOW),
    "silent": (False, 1 << 15),   # MS_SILENT
    "loud": (True, 1 << 15),
    "iversion": (False, 1 << 23),  # MS_I_VERSION
    "noiversion": (True, 1 << 23),
    "bind": (False, m.MS_BIND),
    "rbind": (False, m.MS_BIND | m.MS_REC),
}

PROPAGATION: dict[str, int] = {
    "private": m.MS_PRIVATE,
    "rprivate": m.MS_PRIVATE | m.MS_REC,
    "shared": m.MS_SHARED,
    "rshared": m.MS_SHARED | m.MS_REC,
    "slave": m.MS_SLAVE,
    "rslave": m.MS_SLAVE | m.MS_REC,
    "unbindable": m.MS_UNBINDABLE,
    "runbindable": m.MS_UNBINDABLE | m.MS_REC,
}

_ATIME = m.MOUNT_ATTR__ATIME
# word -> (attr_clr, attr_set) for mount_setattr(AT_RECURSIVE)
RECURSIVE: dict[str, tuple[int, int]] = {
    "rro": (0, m.MOUNT_ATTR_RDONLY),
    "rrw": (m.MOUNT_ATTR_RDONLY, 0),
    "rnosuid": (0, m.MOUNT_ATTR_NOSUID),
    "rsuid": (m.MOUNT_ATTR_NOSUID, 0),
    "rnodev": (0, m.MOUNT_ATTR_NODEV),
    "rdev": (m.MOUNT_ATTR_NODEV, 0),
    "rnoexec": (0, m.MOUNT_ATTR_NOEXEC),
    "rexec": (m.MOUNT_ATTR_NOEXEC, 0),
    "rnodiratime": (0, m.MOUNT_ATTR_NODIRATIME),
    "rdiratime": (m.MOUNT_ATTR_NODIRATIME, 0),
    "rnosymfollow": (0, m.MOUNT_ATTR_NOSYMFOLLOW),
    "rsymfollow": (m.MOUNT_ATTR_NOSYMFOLLOW, 0),
    # The kernel only accepts the atime mode as a whole: clear all of _ATIME and set one.
    "rrelatime": (_ATIME, m.MOUNT_ATTR_RELATIME),
    "rnorelatime": (_ATIME, m.MOUNT_ATTR_RELATIME),
    "rnoatime": (_ATIME, m.MOUNT_ATTR_NOATIME),
    "ratime": (_ATIME, m.MOUNT_ATTR_RELATIME),
    "rstrictatime": (_ATIME, m.MOUNT_ATTR_STRICTATIME),
    "rnostrictatime": (_ATIME, m.MOUNT_ATTR_RELATIME),
}

# Recognised but not implemented yet; callers must refuse rather than ignore them.
UNSUPPORTED: frozenset[str] = frozenset()
# runc's extension: a tmpfs starts with the content of the directory it covers (rootfs/copyup.py).
COPYUP = "tmpcopyup"
# Idmapped mounts: the mapping comes with the mount (a user namespace fd), see pyrunc.userns.
IDMAP = frozenset({"idmap", "ridmap"})


class MountOptions:
    """The outcome of parsing one mount's options.

    ``flags`` are the MS_* bits to pass, ``clear`` the bits the options explicitly turned off (so a
    bind remount knows ``rw`` was asked for), ``propagation`` the MS_* propagation calls in order,
    ``rec_set``/``rec_clr`` the MOUNT_ATTR_* bits for a recursive mount_setattr, ``data`` the
    filesystem-specific string, ``unsupported`` recognised options pyrunc cannot honour and
    ``copyup`` whether a tmpfs starts with the covered directory's content.
    """

    __slots__ = ("flags", "clear", "propagation", "rec_set", "rec_clr", "data", "unsupported", "idmap",
                 "copyup")

    def __init__(self) -> None:
        self.flags = 0
        self.clear = 0
        self.propagation: list[int] = []
        self.rec_set = 0
        self.rec_clr = 0
        self.data = ""
        self.unsupported: list[str] = []
        self.idmap: str | None = None  # "idmap" or "ridmap" (recursive)
        self.copyup = False  # tmpcopyup (honoured on tmpfs mounts only, as runc does)

    @property
    def is_bind(self) -> bool:
        """True for ``bind``/``rbind`` (the mount is a bind, whatever the type says)."""
        return bool(self.flags & m.MS_BIND)

    @property
    def is_recursive_bind(self) -> bool:
        """True for ``rbind``."""
        return self.flags & (m.MS_BIND | m.MS_REC) == (m.MS_BIND | m.MS_REC)

    def __repr__(self) -> str:
        return (f"MountOptions(flags={self.flags:#x}, clear={self.clear:#x}, propagation="
                f"{[hex(p) for p in self.propagation]}, rec_set={self.rec_set:#x}, "
                f"rec_clr={self.rec_clr:#x}, data={self.data!r}, unsupported={self.unsupported})")


def parse(options: list[str] | None) -> MountOptions:
    """Parse OCI mount options in order; the last word about a flag wins, as with runc."""
    out = MountOptions()
    data: list[str] = []
    for opt in options or ():
        if opt in FLAGS:
            clear, bits = FLAGS[opt]
            if clear:
                out.flags &= ~bits
                out.clear |= bits
            else:
                out.flags |= bits
                out.clear &= ~bits
        elif opt in PROPAGATION:
            out.propagation.append(PROPAGATION[opt])
        elif opt in RECURSIVE:
            clr, set_ = RECURSIVE[opt]
            out.rec_clr |= clr
            out.rec_set = (out.rec_set & ~clr) | set_
            out.rec_clr &= ~set_ | (clr & set_)
        elif opt in IDMAP:
            out.idmap = opt
        elif opt == COPYUP:
            out.copyup = True
        elif opt in UNSUPPORTED:
            out.unsupported.append(opt)
        else:
            data.append(opt)
    out.data = ",".join(data)
    return out


def propagation_flag(name: str) -> int:
    """MS_* bits for a ``linux.rootfsPropagation`` value; ValueError for anything else."""
    try:
        return PROPAGATION[name]
    except KeyError:
        raise ValueError(f"unknown rootfs propagation {name!r}") from None
