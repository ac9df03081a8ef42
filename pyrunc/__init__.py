"""pyrunc: an OCI runtime with runc's command line, written in Python, and a Python API.

This module imports nothing: every command pays for the modules it uses and
no more (see docs/architecture.md, "Keeping it fast"). The Python API
(pyrunc/api/: ``pyrunc.run``, ``pyrunc.Container``, the errors) is loaded on
first use of one of its names (PEP 562), never by the `pyrunc` command.
"""

__version__ = "0.1.0"
OCI_VERSION = "1.3.0"

# The API's names, served from pyrunc.api when first asked for (kept equal to its __all__ by
# tests/unit/test_api_args.py).
_API = frozenset((
    "run", "Container", "CompletedRun", "PIPE", "STDOUT", "DEVNULL",
    "Error", "PyruncError", "InvalidArgument", "UsageError", "ConfigError", "ContainerError",
    "NotFound", "AlreadyExists", "InvalidID", "WrongStatus", "WrongState", "ChildError",
    "HookError", "CgroupError", "TimeoutExpired", "ProcessFailed",
))


def __getattr__(name: str):
    """``pyrunc.run`` and the rest of the API, imported on first use (the CLI never asks)."""
    if name not in _API:
        raise AttributeError(f"module 'pyrunc' has no attribute {name!r}")
    from . import api

    value = getattr(api, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | _API)
