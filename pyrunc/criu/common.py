"""What checkpoint and restore share: the options, finding CRIU, describing the container's
external mounts and namespaces to it, and one request/notify conversation with its errors.

The descriptions follow runc: bind mounts, masked files (bound /dev/null) and device nodes are
external mounts (on dump key=val=destination; on restore key=destination, val=host source);
network and pid namespaces given by path are external namespaces (``net[inode]:extRootNetNS``
on dump, an inherited fd under the same key on restore); cgroup v2 mounts are real mounts.
"""

from __future__ import annotations

import os
import shutil

from ..errors import PyruncError
from . import rpc

DEFAULT_DEVICE_PATHS = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty")
DESCRIPTORS = "descriptors.json"
RUNC_CRIU_CONFIG = "/etc/criu/runc.conf"  # runc's default per-runtime CRIU configuration file


class CriuOptions:
    """The command line of checkpoint/restore, runc's names. Keyword-only with ``__slots__``: a
    misspelt option is a TypeError here, never a silently ignored setting."""

    __slots__ = ("image_path", "work_path", "parent_path", "leave_running", "tcp_established",
                 "ext_unix_sk", "shell_job", "lazy_pages", "status_fd", "page_server", "file_locks",
                 "pre_dump", "manage_cgroups_mode", "empty_ns", "auto_dedup", "tcp_skip_in_flight",
                 "link_remap")

    def __init__(self, *, image_path: str | None = None, work_path: str | None = None,
                 parent_path: str | None = None, leave_running: bool = False,
                 tcp_established: bool = False, ext_unix_sk: bool = False, shell_job: bool = False,
                 lazy_pages: bool = False, status_fd: int = -1, page_server: str | None = None,
                 file_locks: bool = False, pre_dump: bool = False,
                 manage_cgroups_mode: str | None = None, empty_ns: list[str] | None = None,
                 auto_dedup: bool = False, tcp_skip_in_flight: bool = False,
                 link_remap: bool = False):
        self.image_path = os.path.abspath(image_path or os.path.join(os.getcwd(), "checkpoint"))
        self.work_path = os.path.abspath(work_path) if work_path else None
        self.parent_path = parent_path or None
        self.leave_running = bool(leave_running)
        self.tcp_established = bool(tcp_established)
        self.ext_unix_sk = bool(ext_unix_sk)
        self.shell_job = bool(shell_job)
        self.lazy_pages = bool(lazy_pages)
        self.status_fd = int(status_fd)
        self.page_server = page_server or ""
        self.file_locks = bool(file_locks)
        self.pre_dump = bool(pre_dump)
        self.manage_cgroups_mode = manage_cgroups_mode or ""
        self.empty_ns = list(empty_ns or [])
        self.auto_dedup = bool(auto_dedup)
        self.tcp_skip_in_flight = bool(tcp_skip_in_flight)
        self.link_remap = bool(link_remap)
        if self.manage_cgroups_mode not in rpc.CG_MODES:
            raise PyruncError(f"invalid manage-cgroups-mode value {self.manage_cgroups_mode!r}: "
                              "expected soft, full, strict or ignore")

    @property
    def log_dir(self) -> str:
        return self.work_path or self.image_path

    def empty_ns_flags(self) -> int:
        """--empty-ns network: CRIU leaves the namespace empty (runc accepts only network)."""
        flags = 0
        for name in self.empty_ns:
            if name != "network":
                raise PyruncError(f"--empty-ns {name!r}: only 'network' is supported (as in runc)")
            flags |= 0x40000000  # CLONE_NEWNET
        return flags


LAZY_PAGES_REFUSED = ("--lazy-pages is not supported by pyrunc (it needs a CRIU lazy-pages daemon and "
                      "userfaultfd; refused rather than untested)")


def base_request(o: CriuOptions, config: dict, root: str, log_file: str) -> dict:
    """The CRIU options a dump and a restore share (runc sets the same ones for both)."""
    return {
        "log_level": 4, "log_file": log_file, "root": root, "manage_cgroups": True,
        "manage_cgroups_mode": rpc.CG_MODES[o.manage_cgroups_mode], "notify_scripts": True,
        "shell_job": o.shell_job, "ext_unix_sk": o.ext_unix_sk, "tcp_established": o.tcp_established,
        "file_locks": o.file_locks, "empty_ns": o.empty_ns_flags(), "orphan_pts_master": True,
        "auto_dedup": o.auto_dedup, "config_file": config_file_opt(config),
    }


def find_criu(path: str | None) -> str:
    """--criu, or `criu` on PATH (runc's default); a clear error when it is not installed."""
    name = path or "criu"
    found = shutil.which(name) if "/" not in name else (name if os.access(name, os.X_OK) else None)
    if not found:
        raise PyruncError(f"CRIU is not installed ({name!r} not found{'' if '/' in name else ' in PATH'}); "
                          "install the criu package or pass --criu PATH")
    return found


def open_dir(path: str, what: str, *, create: bool) -> int:
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError as e:
            raise PyruncError(f"{what} {path}: {e.strerror}") from None
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY)  # not CLOEXEC: CRIU opens it via /proc
    except OSError as e:
        raise PyruncError(f"{what} {path}: {e.strerror}") from None


def open_image_dirs(o: CriuOptions, req_opts: dict, fds: list[int], *, create_images: bool) -> None:
    """The image directory (and --work-path) as the fds CRIU is given; appended to ``fds``,
    which the caller closes."""
    img_fd = open_dir(o.image_path, "image directory", create=create_images)
    fds.append(img_fd)
    req_opts["images_dir_fd"] = img_fd
    if o.work_path:
        work_fd = open_dir(o.work_path, "work directory", create=True)
        fds.append(work_fd)
        req_opts["work_dir_fd"] = work_fd


def close_fds(fds) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def is_bind(mnt: dict) -> bool:
    opts = mnt.get("options") or []
    return mnt.get("type") == "bind" or "bind" in opts or "rbind" in opts


def config_file_opt(config: dict) -> str | None:
    """runc's rule: the annotation org.criu.config names a CRIU config file ("" for none);
    without it, /etc/criu/runc.conf (CRIU ignores a missing file)."""
    ann = config.get("annotations") or {}
    if "org.criu.config" in ann:
        return ann["org.criu.config"] or None
    return RUNC_CRIU_CONFIG


def device_paths(config: dict) -> list[str]:
    paths = list(DEFAULT_DEVICE_PATHS)
    for dev in (config.get("linux") or {}).get("devices") or []:
        if dev.get("path") and dev["path"] not in paths:
            paths.append(dev["path"])
    return paths


def namespace_paths(config: dict) -> dict[str, str]:
    return {ns["type"]: ns["path"] for ns in (config.get("linux") or {}).get("namespaces") or []
            if ns.get("path")}


NS_KEYS = {"network": ("net", "extRootNetNS"), "pid": ("pid", "extRootPidNS")}


def tail_errors(path: str, limit: int = 3) -> str:
    """The last few `Error` lines of a CRIU log, without their source locations."""
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    errs = []
    for line in lines:
        if "Error" in line:
            text = line.split("): ", 1)[1] if "): " in line else line
            errs.append(text.strip())
    return "; ".join(errs[-limit:])


class Conversation:
    """One CRIU request answered, notifications served by ``on_notify(script, pid, fds)``."""

    def __init__(self, criu: str, log_path: str, what: str, *, extra_fds: list[int] = (),
                 stdin_fd: int | None = None):
        import tempfile

        self.log_path = log_path
        self.what = what
        self.capture = tempfile.TemporaryFile()
        self.swrk = rpc.Swrk(criu, extra_fds=list(extra_fds), capture_fd=self.capture.fileno(),
                             stdin_fd=stdin_fd)

    @property
    def pid(self) -> int:
        return self.swrk.pid

    def failure(self, cause: str) -> rpc.CriuFailed:
        """The error for a failed request: CRIU's reason and its log, which always exists."""
        self.capture.seek(0)
        early = self.capture.read().decode("utf-8", "replace").strip()
        if early and not os.path.exists(self.log_path):
            try:  # CRIU failed before opening its log: what it said goes there, named below
                with open(self.log_path, "w") as f:
                    f.write(early + "\n")
            except OSError:
                pass
        reason = tail_errors(self.log_path) or " ".join(early.split())[:300]
        msg = f"CRIU {self.what} failed"
        for part in (cause, reason):
            if part:
                msg += f": {part}"
        if os.path.exists(self.log_path):
            msg += f" (CRIU log: {self.log_path})"
        else:
            msg += f" (no CRIU log was written at {self.log_path})"
        return rpc.CriuFailed(msg)

    def run(self, req: dict, on_notify=None) -> dict:
        """Send ``req`` and serve notifications until the answer; raise CriuFailed on failure."""
        from .. import log

        logger = log.get()
        if logger.min_level == 0:
            for key, value in sorted((req.get("opts") or {}).items()):
                logger.debug(f"CRIU {self.what} option {key}: {value!r}")
        try:
            self.swrk.send(req)
        except OSError as e:
            self.swrk.finish()
            raise self.failure(f"cannot talk to CRIU ({e.strerror})") from None
        while True:
            resp, fds = self.swrk.recv()
            if resp is None:
                close_fds(fds)
                status = self.swrk.finish()
                raise self.failure(f"CRIU exited ({exit_text(status)}) before answering")
            if not resp.get("success"):
                close_fds(fds)
                self.swrk.finish()
                parts = []
                if resp.get("cr_errno"):
                    parts.append(f"errno {resp['cr_errno']} ({os.strerror(resp['cr_errno'])})")
                if resp.get("cr_errmsg"):
                    parts.append(resp["cr_errmsg"])
                raise self.failure(": ".join(parts))
            if resp.get("type") == rpc.NOTIFY:
                notify = resp.get("notify") or {}
                try:
                    if on_notify is not None:
                        on_notify(notify.get("script", ""), notify.get("pid", 0), fds)
                finally:
                    close_fds(fds)
                self.swrk.send({"type": rpc.NOTIFY, "notify_success": True})
                continue
            return resp

    def close(self) -> int:
        status = self.swrk.finish()
        self.capture.close()
        return status

    def abort(self) -> None:
        self.swrk.kill()
        self.capture.close()


def exit_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.WEXITSTATUS(status)}"

