"""pyrunc's Python API: containers from a program, without a daemon and without spawning a CLI.

The same code path as the `pyrunc` command (pyrunc.container.Container is the lifecycle both
call), with Python's conventions on top::

    import pyrunc

    r = pyrunc.run("bundle", ["echo", "hi"], capture=True, text=True)
    print(r.returncode, r.stdout)                       # 0 hi

    r = pyrunc.run(rootfs="rootfs", args=["sh", "-c", "cat; exit 3"], input=b"data",
                   capture=True, memory="64m", pids=32, timeout=10)
    assert r.stdout == b"data" and r.returncode == 3

    with pyrunc.Container.create(rootfs="rootfs", args=["sleep", "60"]) as c:
        c.start()
        print(c.status, c.exec(["hostname"], capture=True, text=True).stdout)
    # deleted here, however the block ended

    try:
        pyrunc.Container.get("nope").start()
    except pyrunc.NotFound as e:
        print(e.container, e.cause)                     # nope container does not exist

Everything is importable from ``pyrunc`` itself (``pyrunc.run``, ``pyrunc.Container``, the
errors); ``import pyrunc`` stays free of imports, so the API costs the CLI nothing.

Errors form one family, ``pyrunc.Error`` (PyruncError); each carries ``container``, ``step``,
``cause`` and the ``errno`` of the system call behind it (0 when none):

    InvalidArgument  a bad argument (also a ValueError); raised before anything is made
    ConfigError      the config breaks the schema or the spec: ``problems`` and ``pointers``
    NotFound, AlreadyExists, InvalidID   the container id
    WrongStatus (WrongState)  the container's status forbids it; ``status`` says which
    ChildError       a step inside the container failed: ``step`` names it (``create: mount``)
    HookError, CgroupError   a hook, a cgroup
    TimeoutExpired   a ``timeout`` ran out (also a TimeoutError); ``stdout``/``stderr`` so far
    ProcessFailed    ``check=True`` and a non-zero status; ``returncode``, ``stdout``, ``stderr``

Threads: every call may be made from any thread; each container is locked on its own, as the
CLI locks it. What the kernel makes process-wide is said where it happens: ``run`` and
``Container.create`` make the process a child subreaper (``run``'s docstring), no call installs
a signal handler, and a KeyboardInterrupt reaches ``run``/``exec``/``wait`` within 0.1 s in the
main thread and leaves nothing behind.
"""

from ..errors import (
    AlreadyExists,
    CgroupError,
    ChildError,
    ConfigError,
    ContainerError,
    Error,
    HookError,
    InvalidArgument,
    InvalidID,
    NotFound,
    ProcessFailed,
    PyruncError,
    TimeoutExpired,
    UsageError,
    WrongState,
    WrongStatus,
)
from ..process import launch as _launch
from ._container import Container
from ._prepare import DEVNULL, PIPE, STDOUT
from ._run import CompletedRun, run

# A program may run threads: its stages are forked with os.fork, never a raw clone3 (see there).
_launch.RAW_CLONE = False

__all__ = [
    "run", "Container", "CompletedRun", "PIPE", "STDOUT", "DEVNULL",
    "Error", "PyruncError", "InvalidArgument", "UsageError", "ConfigError", "ContainerError",
    "NotFound", "AlreadyExists", "InvalidID", "WrongStatus", "WrongState", "ChildError",
    "HookError", "CgroupError", "TimeoutExpired", "ProcessFailed",
]
