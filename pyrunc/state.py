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

from . import OCI_VERSION, proc
from .errors import CREATE, LOAD_STATE, SAVE_STATE, AlreadyExists, InvalidID, NotFound, PyruncError

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


class Record:
    """What pyrunc remembers of one container, saved in its state directory.

    A class with ``__slots__`` rather than a dict read by key in six modules (a typo was a
    silent ``None``) and rather than a dataclass (``dataclasses`` imports ``re`` and ``inspect``,
    more than everything else `pyrunc state` does). On disk it is still a marshal'd dict with
    these names (``to_dict``/``from_dict``), so state written by an earlier pyrunc loads.
    """

    __slots__ = ("id", "oci_version", "bundle", "rootfs", "created", "owner", "annotations", "pid",
                 "start_time", "cgroup", "hooks", "config", "systemd_cgroup", "rootfs_mount",
                 "creating", "restored_from")

    # attribute -> key on disk (the ones that differ)
    _KEYS = {"oci_version": "ociVersion"}

    def __init__(self, cid: str = "", *, bundle: str = "", rootfs: str = "", config: dict | None = None,
                 pid: int = 0, start_time: int | None = None, cgroup: dict | None = None):
        config = config or {}
        self.id = cid
        self.oci_version: str = config.get("ociVersion", "")
        self.bundle = bundle
        self.rootfs = rootfs
        self.created = ""
        self.owner = ""
        self.annotations: dict = dict(config.get("annotations") or {})
        self.pid = pid
        self.start_time = start_time
        self.cgroup = cgroup  # the cgroup manager's own record (cgroups.load_manager)
        self.hooks: dict = config.get("hooks") or {}
        self.config = config
        self.systemd_cgroup = False
        self.rootfs_mount: int | None = None  # the inherited rootfs mount (rootfs/inherited.py)
        self.creating = False  # saved before the init exists: `delete --force` still finds it all
        self.restored_from: str | None = None

    def to_dict(self) -> dict:
        out = {self._KEYS.get(k, k): getattr(self, k) for k in self.__slots__}
        if not self.creating:
            del out["creating"]
        return out

    @classmethod
    def from_dict(cls, d: dict) -> Record:
        r = cls()
        for k in cls.__slots__:
            key = cls._KEYS.get(k, k)
            if key in d:
                setattr(r, k, d[key])
        r.pid = int(r.pid or 0)
        r.annotations = r.annotations or {}
        r.hooks = r.hooks or {}
        r.config = r.config or {}
        return r

    def recovery(self) -> dict:
        """The minimal record kept beside the state: enough for `delete --force` to kill and remove
        everything should the state file be damaged."""
        return {"pid": self.pid, "start_time": self.start_time, "cgroup": self.cgroup,
                "rootfs": self.rootfs, "rootfs_mount": self.rootfs_mount}


def oci_state(record: Record, status: str, *, pid: int | None = None, full: bool = False) -> dict:
    """The OCI state document (runtime.md "State"), the one builder of it.

    For hooks (and seccomp agents) in the spec's key order; ``full`` is what `pyrunc state` and
    `list` print, runc's superset in runc's order (rootfs, created, owner). ``pid`` overrides the
    record's (a hook run before the record knows it); a stopped container's pid is 0 (runc)."""
    if pid is None:
        pid = record.pid if status != "stopped" else 0
    if full:
        doc = {"ociVersion": OCI_VERSION, "id": record.id, "pid": pid, "status": status,
               "bundle": record.bundle, "rootfs": record.rootfs, "created": record.created,
               "owner": record.owner}
    else:
        doc = {"ociVersion": OCI_VERSION, "id": record.id, "status": status, "pid": pid,
               "bundle": record.bundle}
    if record.annotations:
        doc["annotations"] = record.annotations
    return doc


class StateDir:
    """One container's directory under the root, with its lock held while in use."""

    def __init__(self, root: str, cid: str):
        self.root = root
        self.id = cid
        self.path = os.path.join(root, cid)
        self.lock_fd: int | None = None
        self.lock_pid = 0
        self.lock_key: tuple[int, int] | None = None  # (st_dev, st_ino) of the locked directory
        # True from just before our mkdir of the directory until we removed it again: whoever
        # is interrupted (a KeyboardInterrupt in the Python API) in between knows it may have
        # left the directory, and only then removes it by id (it may be someone else's).
        self.claimed = False

    @property
    def fifo(self) -> str:
        return os.path.join(self.path, FIFO)

    def reserve(self, step: str = CREATE, fault_step: str | None = None) -> None:
        """Claim the id atomically: exactly one concurrent create (or restore) wins the mkdir.
        ``step`` names a lost race, ``fault_step`` (default: ``step``) a filesystem's refusal."""
        try:
            os.makedirs(self.root, mode=0o700, exist_ok=True)
            self.claimed = True
            os.mkdir(self.path, 0o711)
        except FileExistsError:
            self.claimed = False
            raise AlreadyExists(self.id, step=step) from None
        except OSError as e:  # an unwritable --root (or /run for a rootless caller without one)
            self.claimed = False
            raise PyruncError(f"state directory {e.filename}: {e.strerror}", step=fault_step or step,
                              container=self.id, errno=e.errno or 0) from None
        try:
            os.chmod(self.path, 0o711)
            self.lock()
        except OSError as e:  # the fd limit, say: the directory we just made must not stay
            os.rmdir(self.path)
            self.claimed = False
            raise PyruncError(f"lock state directory {self.path}: {e.strerror}", step=fault_step or step,
                              container=self.id, errno=e.errno or 0) from None

    def lock(self) -> None:
        """flock the directory itself; a waiter that finds it deleted afterwards gets NotFound.

        The fd is remembered before the flock, so an exception that interrupts the wait (a
        KeyboardInterrupt) never leaves a lock held on an fd nobody can release."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotFound(self.id) from None
        self.unlock()
        st = os.fstat(fd)
        self.lock_key = (st.st_dev, st.st_ino)
        self.lock_pid = os.getpid()
        self.lock_fd = fd
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink == 0:  # removed while we waited
            self.unlock()
            raise NotFound(self.id)

    def unlock(self) -> None:
        """Release the lock; safe to call again after a KeyboardInterrupt anywhere in it.

        The fd is forgotten only after it is closed: forgotten first, an interrupt before the
        close would leave the lock held by an fd nobody knows, and this process's next lock of
        the container (the Python API's teardown deletes it) would wait for itself forever.
        A number that no longer names our directory (closed by an interrupted call, maybe
        reused since) is forgotten without being closed."""
        fd = self.lock_fd
        if fd is None:
            return
        try:
            st = os.fstat(fd)
        except OSError:
            st = None
        if st is not None and (st.st_dev, st.st_ino) == self.lock_key:
            os.close(fd)
        self.lock_fd = None

    def __del__(self) -> None:
        """A StateDir dropped while locked (an exception between ``load`` and the ``with`` that
        would unlock it: a KeyboardInterrupt in a program) releases its lock, or the next
        ``lock`` of this container in this process would wait forever."""
        if self.lock_fd is not None and self.lock_pid == os.getpid():  # never in a forked stage
            try:
                self.unlock()
            except OSError:
                pass

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

    def load(self) -> Record:
        try:
            with open(os.path.join(self.path, STATE_FILE), "rb") as f:
                data = f.read()
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(self.id) from None
        except OSError as e:
            raise PyruncError(f"state file is unreadable ({e.strerror}); `delete --force` removes it",
                              step=LOAD_STATE, container=self.id, errno=e.errno or 0) from None
        try:
            st = marshal.loads(data)
            if not isinstance(st, dict) or "pid" not in st:
                raise ValueError("missing fields")
            return Record.from_dict(st)
        except (ValueError, EOFError, TypeError) as e:
            raise PyruncError(f"state file is corrupt ({e}); `delete --force` removes it",
                              step=LOAD_STATE, container=self.id) from None

    def save(self, record: Record) -> None:
        """Write the record atomically: a temp file in the same directory, then rename.

        A second, minimal record (``Record.recovery``) is kept beside it, so that a damaged
        state file still leaves `delete --force` able to kill and remove everything.
        """
        try:
            self._write(RECOVER_FILE, marshal.dumps(record.recovery()))
            self._write(STATE_FILE, marshal.dumps(record.to_dict()))
        except OSError as e:  # a full or read-only state filesystem, a quota
            raise PyruncError(f"write state file in {self.path}: {e.strerror}", step=SAVE_STATE,
                              container=self.id, errno=e.errno or 0) from None

    def _write(self, name: str, data: bytes) -> None:
        tmp = os.path.join(self.path, f".{name.lstrip('.')}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, data)
        except OSError:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        os.rename(tmp, os.path.join(self.path, name))

    def load_recovery(self) -> Record | None:
        """The minimal record, or None if it is missing or unreadable too."""
        try:
            with open(os.path.join(self.path, RECOVER_FILE), "rb") as f:
                rec = marshal.loads(f.read())
        except (OSError, ValueError, EOFError, TypeError):
            return None
        return Record.from_dict(rec) if isinstance(rec, dict) else None

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
        self.claimed = False


def list_ids(root: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n)))
    except FileNotFoundError:
        return []


def compute_status(sd: StateDir, record: Record) -> str:
    """created / running / paused / stopped, from live facts only.

    stopped: the recorded init is gone, a zombie (its caller has not reaped it
    yet), or a different process now holds the pid (start time differs).
    paused: the cgroup is frozen. created: the exec fifo still exists.
    """
    if not proc.pid_alive(record.pid, record.start_time):
        return "stopped"
    saved = record.cgroup
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
