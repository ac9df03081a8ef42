"""The runtime's own executable, made unwritable before any pyrunc process enters a container.

Why (CVE-2019-5736 class): stage 1, the init waiting in `created` and `exec`'s joiner and tenant
are forks of the pyrunc command, so their ``/proc/PID/exe`` is whatever the command was started
from: the interpreter, a host file (Debian's ``/usr/bin/python3.11``, shared by every Python
program on the host). A container reaches it two ways: its entrypoint (or any program `exec`
runs) is a script starting ``#!/proc/self/exe``, so the kernel runs the init's own executable
as the container's process; or a process with CAP_SYS_PTRACE opens ``/proc/PID/exe`` of a
runtime process in its pid namespace. Either way it holds a handle on the interpreter and,
once the runtime's processes are gone, opens it for writing and replaces it for the host.

So `create`, `run` and `exec` make sure, before anything else, that this process runs from a
copy nobody can write (``ensure``), and every process they fork inherits it:

1. **A read-only overlay** (``overlay_fd``): a detached overlayfs made with fsopen/fsmount whose
   only layers are the interpreter's directory and an unrelated directory below it (pyrunc's
   package: overlayfs needs two lower layers to mount without an upper one), with no upper layer
   and mounted read-only. It is attached nowhere, so no mount table changes; nothing can make it
   writable (an overlay without an upper layer refuses to be remounted read-write, unlike a
   read-only bind), and the page cache is the interpreter's own: no copy, no memory per
   container. ~0.1 ms in the kernel; with the launcher and the check below, well under the
   ~4 ms runc's own protection costs it (docs/PERFORMANCE.md). Needs CAP_SYS_ADMIN over the
   mount namespace (not rootless).
   What runc 1.2+ does for its binary.
2. **A sealed memfd copy** (``memfd_fd``), where the overlay is refused: the interpreter copied
   into a memfd and sealed (no write, grow, shrink, further seals). ~1.3 ms and the binary's
   size (6.8 MB) of memory held by every container's waiting init. runc's fallback too.
3. **Nothing**, for a caller who cannot write the interpreter at all (``cannot_write``): a
   rootless pyrunc and a root-owned interpreter without group/other write bits or ACLs. A
   container's processes never hold more power over host files than the caller that made them,
   so what the caller cannot write, they cannot write either; this spares rootless calls the
   copy.

The normal path pays none of the set-up in Python: the Makefile builds a small C launcher
(``launcher.c``) that makes the overlay and execs the interpreter through it, so ``ensure`` only
checks (one open, two fstat calls). Without that launcher (``pip install .``) the first
`create`/`run`/`exec` call makes the overlay (or copy) here and execs itself again through it
(``reexec``): the same protection, one interpreter start dearer. The re-executed interpreter gets
``-X pyrunc-exe=reexec`` so a copy that is somehow still writable is an error, not a loop.
CPython takes ``sys.executable`` and the venv from argv[0], which is kept, not from the file.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import sys

from .errors import PyruncError

STEP = "protect the runtime's executable"
OVERLAYFS_SUPER_MAGIC = 0x794C7630
F_SEAL_EXEC = 0x20  # Linux 6.3; not in Python's fcntl yet
REQUIRED_SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
MFD_EXEC = 0x10  # Linux 6.3: executable even where vm.memfd_noexec makes memfds noexec
REEXEC_OPTION = "pyrunc-exe"
# The commands whose forks enter a container; every other command stays on the host.
COMMANDS = ("create", "run", "exec")
# Below the interpreter's directory in the overlay: any directory that is neither it nor one of
# its ancestors or descendants will do; pyrunc's own package directory is always there.
SECOND_LAYER = os.path.dirname(os.path.abspath(__file__))


def protection(fd: int | None = None) -> str | None:
    """How this process's executable is kept from writes: "overlay", "memfd", "unwritable",
    or None when a container that reached it could write it."""
    own = fd is None
    if own:
        fd = os.open("/proc/self/exe", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            if fcntl.fcntl(fd, fcntl.F_GET_SEALS) & REQUIRED_SEALS == REQUIRED_SEALS:
                return "memfd"
        except OSError:
            pass  # not a memfd (EINVAL)
        if os.fstatvfs(fd).f_flag & os.ST_RDONLY:
            from .linux.mount import fstatfs_type

            if fstatfs_type(fd) == OVERLAYFS_SUPER_MAGIC:
                return "overlay"
        if cannot_write(fd):
            return "unwritable"
        return None
    finally:
        if own:
            os.close(fd)


def cannot_write(fd: int) -> bool:
    """True when neither we nor anyone we can start could write the file ``fd`` is open on.

    Only a caller without the power to write it qualifies (rootless, or root of a user namespace
    that does not map the file's owner): the file's mode must deny writes to everyone but its
    owner, no ACL may add a writer, the owner must not be us, and the kernel must refuse us write
    access (not merely a read-only mount, which says nothing about the file). Root in the
    initial user namespace never qualifies: CAP_DAC_OVERRIDE writes anything.
    """
    st = os.fstat(fd)
    if st.st_mode & 0o022 or st.st_uid == os.geteuid():
        return False
    if os.fstatvfs(fd).f_flag & os.ST_RDONLY:
        return False
    try:
        os.getxattr(fd, "system.posix_acl_access")
        return False  # an ACL may name writers the mode does not show
    except OSError as e:
        if e.errno not in (errno.ENODATA, errno.EOPNOTSUPP):
            return False
    return not os.access(f"/proc/self/fd/{fd}", os.W_OK, effective_ids=True)


def ensure(container: str | None = None) -> None:
    """Return only once this process runs from an executable no container can write; otherwise
    build such a copy and exec ourselves again through it (this call then never returns)."""
    try:
        if protection() is not None:
            return
    except OSError as e:
        raise PyruncError(f"inspect /proc/self/exe: {e.strerror}", step=STEP, container=container) from None
    if sys._xoptions.get(REEXEC_OPTION):
        raise PyruncError("/proc/self/exe is still writable after re-executing through a sealed copy",
                          step=STEP, container=container)
    try:
        fd = sealed_copy()
    except OSError as e:
        raise PyruncError(f"make a read-only copy of the interpreter: {e.strerror or e}", step=STEP,
                          container=container) from None
    reexec(fd, container)


def interpreter() -> str:
    """The file the interpreter runs from (the target of /proc/self/exe)."""
    path = os.readlink("/proc/self/exe")
    if not path.startswith("/") or path.endswith(" (deleted)"):
        raise OSError(errno.ENOENT, f"the interpreter's file is gone ({path})")
    return path


def sealed_copy() -> int:
    """An O_PATH (overlay) or sealed (memfd) fd of the interpreter; overlay first."""
    path = interpreter()
    try:
        return overlay_fd(path)
    except OSError:
        return memfd_fd(path)


def escape_layer(path: str) -> str:
    """overlayfs splits lowerdir at ':' and takes '\\' as its escape."""
    return path.replace("\\", "\\\\").replace(":", "\\:")


def overlay_fd(path: str, second_layer: str = SECOND_LAYER) -> int:
    """O_PATH fd of ``path`` seen through a detached, read-only overlayfs (see the module doc)."""
    from .linux import mount as m

    directory, name = os.path.split(path)
    ctx = m.fsopen("overlay")
    try:
        m.fsconfig(ctx, m.FSCONFIG_SET_STRING, "lowerdir",
                   f"{escape_layer(directory)}:{escape_layer(second_layer)}")
        try:
            m.fsconfig(ctx, m.FSCONFIG_SET_STRING, "xino", "off")  # only spares dmesg a warning
        except OSError:
            pass
        m.fsconfig(ctx, m.FSCONFIG_CMD_CREATE)
        mnt = m.fsmount(ctx, m.FSMOUNT_CLOEXEC,
                        m.MOUNT_ATTR_RDONLY | m.MOUNT_ATTR_NODEV | m.MOUNT_ATTR_NOSUID)
    finally:
        os.close(ctx)
    try:
        return os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=mnt)
    finally:
        os.close(mnt)


def memfd_fd(path: str) -> int:
    """The interpreter copied into a memfd, then sealed against any change (see the module doc)."""
    flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
    try:
        fd = os.memfd_create("pyrunc-python", flags | MFD_EXEC)
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise
        fd = os.memfd_create("pyrunc-python", flags)  # a kernel before 6.3
    try:
        src = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            size = os.fstat(src).st_size
            done = 0
            while done < size:
                n = os.sendfile(fd, src, done, size - done)
                if n == 0:
                    raise OSError(errno.EIO, f"short copy of {path}")
                done += n
        finally:
            os.close(src)
        os.fchmod(fd, stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
        try:
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, REQUIRED_SEALS | F_SEAL_EXEC)
        except OSError:
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, REQUIRED_SEALS)  # no F_SEAL_EXEC before 6.3
    except BaseException:
        os.close(fd)
        raise
    return fd


def reexec(fd: int, container: str | None) -> None:
    """exec this same command line again, but from ``fd``; returns only by raising."""
    argv = list(sys.orig_argv)
    argv[1:1] = ["-X", f"{REEXEC_OPTION}=reexec"]
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    try:
        os.execve(fd, argv, os.environ)
    except OSError as e:
        os.close(fd)
        raise PyruncError(f"re-execute through the sealed interpreter: {e.strerror}", step=STEP,
                          container=container) from None
