"""What a caller asks of `create`/`run`/`restore` and of `exec`, as plain objects.

Kept apart from container.py, which uses them, so that the process and criu layers below it can
name them without importing upwards. ``__slots__``: a misspelt option is an AttributeError, not
a silently ignored attribute.
"""

from __future__ import annotations

import os


class CreateOptions:
    """Everything `create`/`run` (and `restore`) were told about the container to make."""

    __slots__ = ("bundle", "pid_file", "console_socket", "pidfd_socket", "no_pivot", "no_new_keyring",
                 "preserve_fds", "systemd_cgroup", "rootless", "subreaper", "detach")

    def __init__(self, *, bundle: str = ".", pid_file: str | None = None,
                 console_socket: str | None = None, pidfd_socket: str | None = None, no_pivot: bool = False,
                 no_new_keyring: bool = False, preserve_fds: int = 0, systemd_cgroup: bool = False,
                 rootless: str = "auto", subreaper: bool = False, detach: bool = True):
        self.bundle = os.path.abspath(bundle)
        self.pid_file = os.path.abspath(pid_file) if pid_file else None
        self.console_socket = console_socket
        self.pidfd_socket = pidfd_socket  # the init's pidfd goes there (runc 1.2+)
        self.no_pivot = no_pivot
        self.no_new_keyring = no_new_keyring
        self.preserve_fds = preserve_fds
        self.systemd_cgroup = systemd_cgroup
        self.rootless = rootless  # auto, true or false (pyrunc/rootless.py)
        self.subreaper = subreaper
        self.detach = detach


class ExecOptions:
    """How `exec` starts its process (what it runs is the process document)."""

    __slots__ = ("console_socket", "pidfd_socket", "pid_file", "detach", "preserve_fds", "ignore_paused",
                 "sub_cgroups")

    def __init__(self, *, console_socket: str | None = None, pidfd_socket: str | None = None,
                 pid_file: str | None = None, detach: bool = False, preserve_fds: int = 0,
                 ignore_paused: bool = False, sub_cgroups: dict[str, str] | None = None):
        self.console_socket = console_socket
        self.pidfd_socket = pidfd_socket
        # exec --cgroup: {controller: path below the container's cgroup}, "" for every hierarchy
        self.sub_cgroups = sub_cgroups or {}
        self.pid_file = os.path.abspath(pid_file) if pid_file else None
        self.detach = detach
        self.preserve_fds = preserve_fds
        self.ignore_paused = ignore_paused
