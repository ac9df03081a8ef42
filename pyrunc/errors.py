"""One exception family for everything pyrunc reports to a user.

Every error carries the cause (a short lower-case sentence) and, where known,
the container id and the setup step that failed. The CLI turns any
``PyruncError`` into exactly one line on stderr (and one log record); nothing
else in pyrunc catches exceptions broadly.
"""

from __future__ import annotations


class PyruncError(Exception):
    """Base: ``cause`` is what went wrong, ``step`` where, ``container`` for whom."""

    exit_code = 1

    def __init__(self, cause: str, *, step: str | None = None, container: str | None = None):
        super().__init__(cause)
        self.cause = cause
        self.step = step
        self.container = container

    def line(self) -> str:
        """The single line shown to the user: ``container ID: STEP: CAUSE``."""
        parts = []
        if self.container:
            parts.append(f"container {self.container}")
        if self.step:
            parts.append(self.step)
        parts.append(self.cause)
        return ": ".join(parts)

    def __str__(self) -> str:
        return self.line()


class UsageError(PyruncError):
    """Bad command line (unknown flag, wrong number of arguments)."""


class ConfigError(PyruncError):
    """config.json is unreadable, malformed or violates the schema/semantics.

    ``problems`` holds ``(pointer, message)`` pairs; each becomes one line
    ``config.json: POINTER: MESSAGE`` (pointer is an RFC 6901 JSON pointer).
    """

    def __init__(self, problems: list[tuple[str, str]], *, container: str | None = None,
                 source: str = "config.json"):
        self.problems = problems
        self.source = source
        first = problems[0] if problems else ("", "invalid configuration")
        super().__init__(self._fmt(first), step=None, container=container)

    def _fmt(self, problem: tuple[str, str]) -> str:
        pointer, message = problem
        return f"{self.source}: {pointer}: {message}" if pointer else f"{self.source}: {message}"

    def lines(self) -> list[str]:
        return [self._fmt(p) for p in self.problems] or [self.line()]

    def line(self) -> str:  # the first problem; lines() gives all of them
        return self._fmt(self.problems[0]) if self.problems else f"{self.source}: invalid configuration"


class ContainerError(PyruncError):
    """A lifecycle rule refused the operation."""


class NotFound(ContainerError):
    def __init__(self, container: str, step: str | None = None):
        super().__init__("container does not exist", step=step, container=container)


class AlreadyExists(ContainerError):
    def __init__(self, container: str, step: str | None = None):
        super().__init__("container with given ID already exists", step=step, container=container)


class InvalidID(ContainerError):
    def __init__(self, container: str, step: str | None = None):
        super().__init__("invalid container ID format", step=step, container=None)
        self.bad_id = container


class WrongStatus(ContainerError):
    """The container is in a status where ``op`` is not allowed."""

    def __init__(self, cause: str, *, status: str, op: str, container: str | None = None):
        super().__init__(cause, step=op, container=container)
        self.status = status


class SyscallError(PyruncError):
    """A system call failed; ``errno`` keeps the number for callers that branch on it."""

    def __init__(self, cause: str, errno: int = 0, *, step: str | None = None,
                 container: str | None = None):
        super().__init__(cause, step=step, container=container)
        self.errno = errno


class CgroupError(PyruncError):
    """Creating, configuring or removing a cgroup failed."""


class HookError(PyruncError):
    """A hook failed, timed out or could not be started."""


class ChildError(PyruncError):
    """A setup stage inside the container reported a failure over the sync channel."""
