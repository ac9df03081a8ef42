"""`checkpoint`: dump a running container with CRIU (a DUMP or PRE_DUMP request over swrk).

As runc 1.1: the images go to --image-path (created 0700), CRIU's log is dump.log in the work
directory (--work-path, else the image directory), descriptors.json records the init's stdio,
the cgroup freezer stops the tasks, and after a final dump without --leave-running the
container is destroyed (its state is gone, poststop hooks run), not left `stopped`.
"""

from __future__ import annotations

import json
import os
import stat

from ..errors import PyruncError
from . import rpc
from .common import (
    DESCRIPTORS,
    LAZY_PAGES_REFUSED,
    NS_KEYS,
    Conversation,
    CriuOptions,
    base_request,
    close_fds,
    device_paths,
    exit_text,
    find_criu,
    is_bind,
    namespace_paths,
    open_image_dirs,
)

LOG = "dump.log"


def dump(c, o: CriuOptions, criu_path: str | None) -> None:
    """Dump container ``c`` (loaded, locked, running or paused) with CRIU: a DUMP, or a PRE_DUMP
    with --pre-dump. The caller (Container.checkpoint) destroys it afterwards unless asked not to."""
    if o.lazy_pages:
        raise PyruncError(LAZY_PAGES_REFUSED, step="checkpoint")
    criu = find_criu(criu_path)
    config = c.config
    pid = c.pid
    req_opts = base_request(o, config, c.record.rootfs, LOG)
    req_opts.update(pid=pid, leave_running=o.leave_running)
    # dump-only, as in runc: connections still in their handshake are left out rather than
    # failing the dump; a file open under a removed name is linked back under a new one.
    if o.tcp_skip_in_flight:
        req_opts["tcp_skip_in_flight"] = True
    if o.link_remap:
        req_opts["link_remap"] = True
    if o.page_server:
        addr, _, port = o.page_server.rpartition(":")
        if not addr or not port.isdigit():
            raise PyruncError(f"--page-server {o.page_server!r}: expected ADDRESS:PORT", step="checkpoint")
        req_opts["ps"] = {"address": addr, "port": int(port)}
    if o.parent_path:
        req_opts["parent_img"] = o.parent_path
        req_opts["track_mem"] = True
    external = []
    for kind, path in namespace_paths(config).items():
        if kind in NS_KEYS:
            try:
                ino = os.stat(path).st_ino
            except OSError as e:
                raise PyruncError(f"{kind} namespace {path}: {e.strerror}", step="checkpoint") from None
            name, key = NS_KEYS[kind]
            external.append(f"{name}[{ino}]:{key}")
    req_opts["external"] = external or None
    cg = c.cgroup
    if cg is not None:
        freezer = cg.freezer_cgroup()
        if freezer:
            req_opts["freeze_cgroup"] = freezer
    if not o.pre_dump:
        req_opts["ext_mnt"] = dump_mounts(config, pid) or None

    fds: list[int] = []
    try:
        open_image_dirs(o, req_opts, fds, create_images=True)
        if not o.pre_dump:
            write_descriptors(o.image_path, pid)
        log_path = os.path.join(o.log_dir, LOG)
        what = "pre-dump" if o.pre_dump else "dump"
        if o.pre_dump:
            check_mem_track(criu, log_path)
        conv = Conversation(criu, log_path, what)
        try:
            conv.run({"type": rpc.PRE_DUMP if o.pre_dump else rpc.DUMP, "opts": req_opts})
        finally:
            status = conv.close()
        # CRIU serves further pre-dumps after a PRE_DUMP and exits non-zero when we hang up
        # (runc ignores that status too); after a DUMP a failed exit is a failure.
        if not o.pre_dump and status != 0:
            raise conv.failure(f"CRIU exited ({exit_text(status)}) after the dump")
    finally:
        close_fds(fds)


def check_mem_track(criu: str, log_path: str) -> None:
    """--pre-dump needs CRIU's dirty memory tracking (runc asks the same feature question)."""
    conv = Conversation(criu, log_path, "feature check")
    try:
        resp = conv.run({"type": rpc.FEATURE_CHECK, "features": {"mem_track": True}})
    finally:
        conv.close()
    if not (resp.get("features") or {}).get("mem_track"):
        raise PyruncError("--pre-dump needs CRIU's memory tracking, which this kernel lacks "
                          "(CONFIG_MEM_SOFT_DIRTY)", step="checkpoint")


def dump_mounts(config: dict, pid: int) -> list[dict]:
    """External mounts as CRIU must see them on dump (runc's list)."""
    out = []
    for mnt in config.get("mounts") or []:
        if is_bind(mnt):
            dest = os.path.normpath("/" + mnt["destination"].lstrip("/"))
            out.append({"key": dest, "val": dest})
    for path in (config.get("linux") or {}).get("maskedPaths") or []:
        try:
            st = os.stat(f"/proc/{pid}/root{path}")
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            out.append({"key": path, "val": "/dev/null"})
    for path in device_paths(config):
        out.append({"key": path, "val": path})
    return out


def write_descriptors(image_dir: str, pid: int) -> None:
    """descriptors.json: what the init's fds 0-2 are (pipe:[N] ones are re-plumbed on restore)."""
    names = []
    for fd in range(3):
        try:
            names.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            names.append("/dev/null")
    path = os.path.join(image_dir, DESCRIPTORS)
    try:
        with open(path, "w") as f:
            json.dump(names, f)
        os.chmod(path, 0o600)
    except OSError as e:
        raise PyruncError(f"write {path}: {e.strerror}", step="checkpoint") from None
