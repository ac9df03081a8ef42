"""One exception family for everything pyrunc reports to a user.

Every error carries the cause (a short lower-case sentence), the ``errno`` of the
system call behind it (0 when none), and, where known, the container id and the
setup step that failed. Code deep down raises with what it knows (the cause, its
errno, its own step); the container and the lifecycle operation are stamped on
once, at the entry point, by ``Boundary`` (``with Boundary(cid, CREATE): ...``),
so nothing in between patches errors on their way up. The CLI turns any
``PyruncError`` into exactly one line on stderr (and one log record); nothing else
in pyrunc catches exceptions broadly.
"""

from __future__ import annotations

# Lifecycle operations: the first word of every error line a command prints.
CREATE = "create"
START = "start"
RUN = "run"
EXEC = "exec"
KILL = "kill"
DELETE = "delete"
RESTORE = "restore"
CHECKPOINT = "checkpoint"
UPDATE = "update"
EVENTS = "events"
PLAN = "plan"

# Steps named by more than one module.
VALIDATE = "validate"
SYNC = "sync"
CREATE_CGROUP = "create cgroup"
APPLY_CGROUP = "apply cgroup"
SET_RESOURCES = "set cgroup resources"
DESTROY_CGROUP = "destroy cgroup"
JOIN_CGROUPS = "join cgroups"
JOIN_NAMESPACES = "join namespaces"
CREATE_USER_NAMESPACE = "create user namespace"
LOAD_STATE = "load state"
SAVE_STATE = "save state"
RESERVE_STATE = "reserve state directory"


class PyruncError(Exception):
    """Base: ``cause`` is what went wrong, ``step`` where, ``container`` for whom, ``errno`` the
    system call's error number (0 when no system call failed)."""

    exit_code = 1

    def __init__(self, cause: str, *, step: str | None = None, container: str | None = None,
                 errno: int = 0):
        super().__init__(cause)
        self.cause = cause
        self.step = step
        self.container = container
        self.errno = errno

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

    def stamp(self, container: str | None, operation: str, *, nest: bool = False) -> None:
        """Fill in what the entry point knows, once: the container when unset, and the
        operation as the step, or in front of the step when ``nest`` (or the step is a stage's,
        see ChildError), as in ``create: mount: ...``."""
        if self.container is None:
            self.container = container
        if not self.step:
            self.step = operation
        elif nest and self.step != operation and not self.step.startswith(operation + ": "):
            self.step = f"{operation}: {self.step}"


class Boundary:
    """``with Boundary(cid, CREATE):`` stamps every PyruncError leaving the block (see
    ``PyruncError.stamp``); ``exit_code`` overrides the status the CLI exits with (exec's
    setup failures exit 255, as runc's do). A class with __enter__/__exit__ rather than
    contextlib: this sits on every command's path and contextlib is one more import."""

    __slots__ = ("container", "operation", "nest", "exit_code")

    def __init__(self, container: str | None, operation: str, *, nest: bool = False,
                 exit_code: int | None = None):
        self.container = container
        self.operation = operation
        self.nest = nest
        self.exit_code = exit_code

    def __enter__(self) -> Boundary:
        return self

    def __exit__(self, kind, error, _tb) -> bool:
        if isinstance(error, PyruncError):
            error.stamp(self.container, self.operation, nest=self.nest)
            if self.exit_code is not None:
                error.exit_code = self.exit_code
        return False


def from_os_error(e: OSError, what: str, *, step: str | None = None, cls: type | None = None,
                  container: str | None = None) -> PyruncError:
    """``what: strerror`` as a PyruncError (or ``cls``) keeping the errno."""
    return (cls or PyruncError)(f"{what}: {e.strerror or e}", step=step, container=container,
                                errno=e.errno or 0)


Error = PyruncError  # the name a program catches everything by: ``except pyrunc.Error``


def release_frames(error: BaseException) -> None:
    """Clear the locals of the finished frames an exception's traceback holds.

    A KeyboardInterrupt kept to be raised after a cleanup is retried (the Python API's
    teardown, creation's unwind) keeps those frames alive, and with them what they held: a
    state directory's lock, say, which the retry would then wait for forever. The frames are
    only read for the traceback's text, which does not need their locals."""
    tb = error.__traceback__
    while tb is not None:
        try:
            tb.tb_frame.clear()
        except RuntimeError:  # a frame still running (the caller's own)
            pass
        tb = tb.tb_next


class UsageError(PyruncError):
    """Bad command line (unknown flag, wrong number of arguments)."""


class InvalidArgument(UsageError, ValueError):
    """The Python API was called with an argument it cannot use (its type or its value); raised
    before anything is made. A ValueError too, as Python code expects of a bad argument."""


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

    @property
    def pointers(self) -> list[str]:
        """The JSON pointer of each problem ("" for the document as a whole)."""
        return [pointer for pointer, _ in self.problems]

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

    def stamp(self, container: str | None, operation: str, *, nest: bool = False) -> None:
        """The bad id is never echoed as a container name (it may be a path)."""
        if not self.step:
            self.step = operation


class WrongStatus(ContainerError):
    """The container is in a status where ``op`` is not allowed."""

    def __init__(self, cause: str, *, status: str, op: str, container: str | None = None):
        super().__init__(cause, step=op, container=container)
        self.status = status


WrongState = WrongStatus  # the OCI spec says "state"; runc's messages and ours say "status"


class TimeoutExpired(PyruncError, TimeoutError):
    """The Python API's ``timeout`` ran out: the process was killed (``run``: the container
    deleted). A TimeoutError too. ``stdout``/``stderr`` hold what was captured until then."""

    def __init__(self, cause: str, *, timeout: float, step: str | None = None,
                 container: str | None = None, stdout=None, stderr=None):
        super().__init__(cause, step=step, container=container)
        self.timeout = timeout
        self.stdout = stdout
        self.stderr = stderr


class ProcessFailed(PyruncError):
    """``check=True`` and the process exited with a status other than 0 (subprocess's
    CalledProcessError): ``returncode`` (negative: killed by that signal), ``stdout``, ``stderr``."""

    def __init__(self, cause: str, *, returncode: int, step: str | None = None,
                 container: str | None = None, stdout=None, stderr=None):
        super().__init__(cause, step=step, container=container)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


class SyscallError(PyruncError):
    """A system call failed where the caller branches on which one (``errno``)."""

    def __init__(self, cause: str, errno: int = 0, *, step: str | None = None,
                 container: str | None = None):
        super().__init__(cause, step=step, container=container, errno=errno)


class CgroupError(PyruncError):
    """Creating, configuring or removing a cgroup failed."""


class HookError(PyruncError):
    """A hook failed, timed out or could not be started."""


class ChildError(PyruncError):
    """A setup stage inside the container reported a failure over the sync channel.

    Its step is the stage's own (an init step's name), so the entry point always puts the
    operation in front of it: ``create: mount_filesystems: ...``."""

    def stamp(self, container: str | None, operation: str, *, nest: bool = False) -> None:
        super().stamp(container, operation, nest=True)
