"""Namespace types, the flags that create them and joining existing ones by path."""

from __future__ import annotations

import os

from . import linux
from .errors import PyruncError

FLAGS = {
    "pid": linux.CLONE_NEWPID,
    "network": linux.CLONE_NEWNET,
    "mount": linux.CLONE_NEWNS,
    "ipc": linux.CLONE_NEWIPC,
    "uts": linux.CLONE_NEWUTS,
    "user": linux.CLONE_NEWUSER,
    "cgroup": linux.CLONE_NEWCGROUP,
    "time": linux.CLONE_NEWTIME,
}
# Joining order: user first (its credentials govern the rest), mount last (it
# changes our root, and the other paths are host paths).
JOIN_ORDER = ("user", "pid", "network", "ipc", "uts", "cgroup", "time", "mount")


class Plan:
    """What the config asks: namespaces to create (flags) and to join (type -> path)."""

    def __init__(self, namespaces: list[dict]):
        self.new_flags = 0
        self.join: dict[str, str] = {}
        self.types: set[str] = set()
        for ns in namespaces or []:
            kind = ns["type"]
            self.types.add(kind)
            if ns.get("path"):
                self.join[kind] = ns["path"]
            else:
                self.new_flags |= FLAGS[kind]

    def has(self, kind: str) -> bool:
        return kind in self.types

    def creates(self, kind: str) -> bool:
        return bool(self.new_flags & FLAGS[kind])


def open_join_fds(plan: Plan) -> list[tuple[str, int]]:
    """Open every namespace to join and check its type, before anything is forked.

    Done in the parent so that a wrong path is a clean config-time error and
    the stages only call setns on fds that are known good.
    """
    fds: list[tuple[str, int]] = []
    try:
        for kind in JOIN_ORDER:
            path = plan.join.get(kind)
            if path is None:
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                raise PyruncError(f"open {kind} namespace {path}: {e.strerror}",
                                  step="join namespaces") from None
            fds.append((kind, fd))
            try:
                actual = linux.ns_fd_type(fd)
            except OSError:
                raise PyruncError(f"{path} is not a namespace file", step="join namespaces") from None
            if actual != FLAGS[kind]:
                raise PyruncError(f"{path} is not a {kind} namespace", step="join namespaces")
    except BaseException:
        for _, fd in fds:
            os.close(fd)
        raise
    return fds


def join(fds: list[tuple[str, int]]) -> None:
    for kind, fd in fds:
        try:
            linux.setns(fd, FLAGS[kind])
        except OSError as e:
            raise PyruncError(f"setns {kind}: {e.strerror}", step="join namespaces") from None
