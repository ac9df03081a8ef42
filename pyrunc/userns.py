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


# ---------------------------------------------------------------------------------------------
# the container's own user namespace


def needs_mapping_tool(mappings: list[dict], own_id: int) -> bool:
    """An unprivileged writer may map only its own id, one line of size 1; anything else
    goes through the setuid helpers (newuidmap/newgidmap) that check /etc/subuid, /etc/subgid."""
    if len(mappings) != 1:
        return True
    only = mappings[0]
    return int(only.get("size", 0)) != 1 or int(only.get("hostID", -1)) != own_id


def write_mappings(pid: int, config: dict) -> None:
    """uid_map and gid_map of stage 1's new user namespace, written from outside (its parent ns).

    Root writes both files directly, as does an unprivileged caller that maps only its own
    uid and gid (setgroups denied first: the kernel's condition for an unprivileged gid_map,
    and the container then can never drop a group it was given). Multi-range or subordinate
    mappings of an unprivileged caller go through newuidmap/newgidmap. Raises PyruncError.
    """
    lin = config.get("linux") or {}
    uids, gids = lin.get("uidMappings") or [], lin.get("gidMappings") or []
    if os.geteuid() != 0:
        if not uids or not gids:
            raise PyruncError("rootless: linux.uidMappings and linux.gidMappings are required",
                              step="create user namespace")
        if needs_mapping_tool(uids, os.geteuid()):
            run_mapping_tool("newuidmap", pid, uids)
        else:
            write_map_file(pid, "uid_map", uids)
        if needs_mapping_tool(gids, os.getegid()):
            run_mapping_tool("newgidmap", pid, gids)
        else:
            write_map_file(pid, "setgroups", None)
            write_map_file(pid, "gid_map", gids)
        return
    write_map_file(pid, "uid_map", uids)
    write_map_file(pid, "gid_map", gids)


def write_map_file(pid: int, name: str, mappings: list[dict] | None) -> None:
    text = map_text(mappings) if mappings is not None else "deny\n"
    try:
        fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise PyruncError(f"write {name} ({text.strip()!r}): {e.strerror}",
                          step="create user namespace") from None


def run_mapping_tool(tool: str, pid: int, mappings: list[dict]) -> None:
    """newuidmap/newgidmap PID ID HOSTID SIZE...: their own one-line complaint becomes ours
    (a range outside /etc/subuid, say)."""
    import shutil
    import subprocess

    path = shutil.which(tool) or shutil.which(tool, path="/usr/bin:/bin:/usr/sbin:/sbin")
    if path is None:
        raise PyruncError(f"{tool} not found: a rootless multi-id mapping needs it (Debian package "
                          "uidmap)", step="create user namespace")
    argv = [path, str(pid)]
    for m in mappings:
        argv += [str(m.get("containerID", 0)), str(m.get("hostID", 0)), str(m.get("size", 0))]
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise PyruncError(f"{tool}: {e}", step="create user namespace") from None
    if done.returncode != 0:
        why = " ".join(done.stderr.decode(errors="replace").split()) or f"exit status {done.returncode}"
        raise PyruncError(f"{tool} {' '.join(argv[2:])}: {why}", step="create user namespace")


# ---------------------------------------------------------------------------------------------
# a user namespace joined by path (containerd 2.x's user-namespaced pods)


def map_lines(mappings: list[dict]) -> list[tuple[int, int, int]]:
    """Mappings as sorted (containerID, hostID, size) triples, the order-free form to compare."""
    return sorted((int(m.get("containerID", 0)), int(m.get("hostID", 0)), int(m.get("size", 0)))
                  for m in mappings)


def read_joined_maps(fd: int, path: str) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """The uid and gid maps of the user namespace open at ``fd``, as this (the host's) namespace
    sees them: a child joins it and its /proc maps are read from here, where the kernel shows them
    relative to the reader's namespace, that is in the host ids the config's hostID means. A
    namespace we may not enter fails here, naming it, before anything is made."""
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # the child: join, say so (or why not), wait to be killed
        try:
            os.close(r)
            try:
                linux.setns(fd, linux.CLONE_NEWUSER)
                os.write(w, b"ok")
            except OSError as e:
                os.write(w, str(e.errno or 0).encode())
            signal.pause()
        finally:
            os._exit(0)
    os.close(w)
    try:
        said = os.read(r, 16)
        if said != b"ok":
            err = int(said or b"0")
            raise PyruncError(f"cannot join user namespace {path}: {os.strerror(err) if err else 'helper died'}",
                              step="join namespaces", errno=err)
        maps = []
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{pid}/{name}") as f:
                maps.append(sorted(tuple(int(x) for x in line.split()) for line in f if line.strip()))
        return maps[0], maps[1]
    except OSError as e:
        raise PyruncError(f"read the id maps of user namespace {path}: {e.strerror}",
                          step="join namespaces", errno=e.errno or 0) from None
    finally:
        os.close(r)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def check_joined_mappings(config: dict, path: str, fd: int) -> None:
    """linux.uidMappings/gidMappings given with a user namespace to join must be that namespace's
    own (containerd sends both); others would be silently ignored, so they are refused before
    anything is made, as runc 1.5.1 refuses them. Nothing to check without mappings."""
    lin = config.get("linux") or {}
    uids, gids = lin.get("uidMappings") or [], lin.get("gidMappings") or []
    if not uids and not gids:
        return
    have_uids, have_gids = read_joined_maps(fd, path)
    for field, given, have in (("uidMappings", uids, have_uids), ("gidMappings", gids, have_gids)):
        if given and map_lines(given) != have:
            shown = ", ".join(f"{c} {h} {s}" for c, h, s in have) or "none"
            wanted = ", ".join(f"{c} {h} {s}" for c, h, s in map_lines(given))
            raise PyruncError(f"linux.{field} ({wanted}) disagree with the mappings of the user namespace "
                              f"to join, {path} ({shown}): give the path alone, or mappings that match it",
                              step="join namespaces")
