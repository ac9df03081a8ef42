"""The state directory: id rules, reservation, per-container locks, atomic state files.

Layout: ``<root>`` (0700) / ``<id>`` (0711) / ``state`` (private, not the OCI
state document) and ``exec.fifo`` while the container is `created`. The
record is stored with ``marshal``: it is built in, so reading it costs no
import (``json`` would pull in ``re``), and only pyrunc ever reads it.
Status is never stored: it is derived on every query from the recorded init
pid and its start time, the cgroup freezer and the fifo (see ``status``).
"""

from __future__ import annotations

import errno
import fcntl
import marshal
import os

from . import proc
from .errors import AlreadyExists, InvalidID, NotFound, PyruncError

DEFAULT_ROOT = "/run/pyrunc"
STATE_FILE = "state"
RECOVER_FILE = ".recover"  # pid + cgroup only: what `delete --force` needs if `state` is damaged
FIFO = "exec.fifo"
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+.-")
MAX_ID = 1024


def default_root() -> str:
    """runc's rule with our own name: /run/pyrunc for root, $XDG_RUNTIME_DIR/pyrunc when rootless
    (pyrunc/rootless.py); root in the initial user namespace reads no file to know it."""
    if os.geteuid() == 0 and not os.environ.get("XDG_RUNTIME_DIR"):
        return DEFAULT_ROOT
    from .rootless import state_root

    return state_root(DEFAULT_ROOT)


def check_id(cid: str) -> None:
    """runc's id rule: non-empty, [A-Za-z0-9_+.-] only, and not `.` or `..`."""
    if not cid or cid in (".", "..") or len(cid) > MAX_ID or not set(cid) <= _ID_CHARS:
        raise InvalidID(cid)


class StateDir:
    """One container's directory under the root, with its lock held while in use."""

    def __init__(self, root: str, cid: str):
        self.root = root
        self.id = cid
        self.path = os.path.join(root, cid)
        self.lock_fd: int | None = None

    @property
    def fifo(self) -> str:
        return os.path.join(self.path, FIFO)

    def reserve(self) -> None:
        """Claim the id atomically: exactly one concurrent create wins the mkdir."""
        try:
            os.makedirs(self.root, mode=0o700, exist_ok=True)
            os.mkdir(self.path, 0o711)
        except FileExistsError:
            raise AlreadyExists(self.id, step="create") from None
        except OSError as e:  # an unwritable --root (or /run for a rootless caller without one)
            raise PyruncError(f"state directory {e.filename}: {e.strerror}", step="create",
                              container=self.id) from None
        os.chmod(self.path, 0o711)
        self.lock()

    def lock(self) -> None:
        """flock the directory itself; a waiter that finds it deleted afterwards gets NotFound."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotFound(self.id) from None
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink == 0:  # removed while we waited
            os.close(fd)
            raise NotFound(self.id)
        self.lock_fd = fd

    def unlock(self) -> None:
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None

    def being_created(self) -> bool:
        """True while a live `create` holds this directory's lock (its record says creating)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def exists(self) -> bool:
        return os.path.isdir(self.path)

    def load(self) -> dict:
        try:
            with open(os.path.join(self.path, STATE_FILE), "rb") as f:
                data = f.read()
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(self.id) from None
        except OSError as e:
            raise PyruncError(f"state file is unreadable ({e.strerror}); `delete --force` removes it",
                              step="load state", container=self.id) from None
        try:
            st = marshal.loads(data)
            if not isinstance(st, dict) or "pid" not in st:
                raise ValueError("missing fields")
        except (ValueError, EOFError, TypeError) as e:
            raise PyruncError(f"state file is corrupt ({e}); `delete --force` removes it",
                              step="load state", container=self.id) from None
        return st

    def save(self, st: dict) -> None:
        """Write the record atomically: a temp file in the same directory, then rename.

        A second, minimal record (pid, start time, cgroup) is kept beside it, so that a
        damaged state file still leaves `delete --force` able to kill and remove everything.
        """
        recover = {k: st.get(k) for k in ("pid", "start_time", "cgroup", "rootfs", "rootfs_mount")}
        self._write(RECOVER_FILE, marshal.dumps(recover))
        self._write(STATE_FILE, marshal.dumps(st))

    def _write(self, name: str, data: bytes) -> None:
        tmp = os.path.join(self.path, f".{name.lstrip('.')}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(self.path, name))

    def load_recovery(self) -> dict | None:
        """The minimal record, or None if it is missing or unreadable too."""
        try:
            with open(os.path.join(self.path, RECOVER_FILE), "rb") as f:
                rec = marshal.loads(f.read())
        except (OSError, ValueError, EOFError, TypeError):
            return None
        return rec if isinstance(rec, dict) else None

    def remove(self) -> None:
        """Delete the directory and everything in it (files only: we never create subdirs)."""
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return
        for name in names:
            try:
                os.unlink(os.path.join(self.path, name))
            except FileNotFoundError:
                pass
            except IsADirectoryError:
                import shutil

                shutil.rmtree(os.path.join(self.path, name), ignore_errors=True)
        try:
            os.rmdir(self.path)
        except FileNotFoundError:
            pass
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise


def list_ids(root: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n)))
    except FileNotFoundError:
        return []


def compute_status(sd: StateDir, st: dict) -> str:
    """created / running / paused / stopped, from live facts only.

    stopped: the recorded init is gone, a zombie (its caller has not reaped it
    yet), or a different process now holds the pid (start time differs).
    paused: the cgroup is frozen. created: the exec fifo still exists.
    """
    if not proc.pid_alive(st.get("pid", 0), st.get("start_time")):
        return "stopped"
    saved = st.get("cgroup")
    if saved:
        from .cgroups import frozen  # reads one file; the drivers stay unimported

        if frozen(saved):
            return "paused"
    if os.path.exists(sd.fifo):
        return "created"
    return "running"


def write_pid_file(path: str, pid: int) -> None:
    """Decimal pid, no newline (containerd parses it with strconv.Atoi), replaced atomically."""
    d, base = os.path.split(path)
    tmp = os.path.join(d, f".{base}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, str(pid).encode())
    finally:
        os.close(fd)
    os.rename(tmp, path)
