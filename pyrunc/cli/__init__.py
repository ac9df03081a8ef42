"""Entry point: global options, lazy dispatch to one module per command, errors as one line.

Nothing here touches Linux: each command module parses its own options and
calls into ``pyrunc.container``. Only the chosen command's module is
imported, so `pyrunc state` never pays for what `pyrunc create` needs.
"""

from __future__ import annotations

import os
import sys

from .. import OCI_VERSION, __version__
from ..errors import ConfigError, PyruncError, UsageError
from .args import HelpRequested, Opt, parse

COMMANDS = {
    "create": "set a container up from a bundle; its program waits for start",
    "start": "run the program of a created container",
    "run": "create and start a container, and wait for it unless detached",
    "state": "print a container's state (JSON)",
    "kill": "send a signal to a container's init (default SIGTERM)",
    "delete": "remove a container and everything made for it",
    "list": "list the containers under --root",
    "spec": "write a starting config.json",
    "exec": "run another process in a container",
    "features": "print the features this pyrunc supports (JSON)",
    "pause": "freeze every process of a container",
    "resume": "thaw a paused container",
    "ps": "list the processes of a container",
    "update": "change a container's cgroup limits",
    "events": "print a container's resource statistics and OOM events",
    "checkpoint": "save a running container to images with CRIU",
    "restore": "start a container again from CRIU images",
    "plan": "show what create would do for a bundle on this host, doing none of it",
    "check": "lint a bundle's config: errors, security posture, runc/spec portability",
}

GLOBAL = [
    Opt("root", True, default=None,
        doc="directory for the containers' state (default: /run/pyrunc; rootless: $XDG_RUNTIME_DIR/pyrunc)"),
    Opt("log", True, default=None, doc="write log messages to this file (default: stderr)"),
    Opt("log-format", True, default="text", doc="text, or json (one object a line: level, msg, time)"),
    Opt("debug", doc="log debug messages too, and the traceback of an error"),
    Opt("systemd-cgroup", doc="make cgroups as systemd units; cgroupsPath is slice:prefix:name"),
    Opt("rootless", True, default="auto",
        doc="true, false, or auto: rootless when not root in the initial user namespace"),
    Opt("criu", True, default=None, doc="the criu binary for checkpoint and restore (default: criu in PATH)"),
    Opt("version", short="v", doc="print the version and exit"),
    Opt("help", short="h", doc="show this help"),
]


class Globals:
    """Global options after validation, handed to every command."""

    def __init__(self, opts: dict):
        from .. import state

        self.debug: bool = opts["debug"]
        self.log_format: str = opts["log_format"]
        self.systemd_cgroup: bool = opts["systemd_cgroup"]
        self.rootless: str = opts["rootless"]
        self.criu: str | None = opts["criu"]
        if self.rootless not in ("auto", "true", "false"):
            raise UsageError(f"invalid --rootless value {self.rootless!r}: expected auto, true or false")
        root = opts["root"]
        self.root_explicit = root is not None
        self.root = os.path.abspath(root) if root is not None else state.default_root()
        if self.root == "/":
            raise UsageError("option --root argument should not be set to /")


def version() -> str:
    return f"pyrunc version {__version__}\nspec: {OCI_VERSION}\npython: {sys.version.split()[0]}\n"


def main(argv: list[str] | None = None) -> int:
    """Run one command and return its exit status (tests call this directly)."""
    process_argv = argv is None  # the command line of this process: it may be re-executed
    argv = sys.argv[1:] if argv is None else argv
    # Global options end at the first token that is not one of them (the command).
    split = 0
    while split < len(argv) and argv[split].startswith("-"):
        name = argv[split].lstrip("-").partition("=")[0]
        split += 1
        takes = next((o.value for o in GLOBAL if o.name == name or o.short == name), False)
        if takes and "=" not in argv[split - 1]:
            split += 1
    from .. import log

    logger = log.get()
    cid = command = None
    try:
        opts = parse(argv[:split], GLOBAL).opts
        # Open --log first: callers expect it to exist even if everything else fails.
        if opts["log_format"] not in ("text", "json"):
            if opts["log"]:
                log.configure(opts["log"], "text", opts["debug"])
            raise UsageError(f"invalid log-format: {opts['log_format']}")
        logger = log.configure(opts["log"], opts["log_format"], opts["debug"])
        rest = argv[split:]
        if opts["version"]:
            sys.stdout.write(version())
            return 0
        if opts["help"] or not rest or rest[0] in ("help", "h"):
            topic = rest[1] if len(rest) > 1 and not opts["help"] else "help"
            if topic in ("help", "h"):
                from .help import main_help

                sys.stdout.write(main_help(COMMANDS, GLOBAL))
                return 0 if opts["help"] or rest else 1
            command, cargs = topic, ["--help"]  # `help COMMAND`: the command's own --help
        else:
            command, cargs = rest[0], rest[1:]
        if command not in COMMANDS:
            raise UsageError(f"No help topic for '{command}'")
        cid = next((a for a in cargs if not a.startswith("-")), None)
        if process_argv and command in ("create", "run", "exec"):
            from ..selfexe import ensure

            ensure(cid)  # before anything is opened: the forks of these commands enter containers
        glob = Globals(opts)
        # __import__ rather than importlib.import_module: importlib would add two modules
        # (importlib, warnings) to every call.
        __import__(f"{__name__}.{command}")
        mod = sys.modules[f"{__name__}.{command}"]
        return int(mod.run(cargs, glob) or 0)
    except HelpRequested as h:  # `--help`/`-h` among a command's options: nothing else ran
        from .help import command_help

        sys.stdout.write(command_help(h.command, COMMANDS.get(h.command, ""), h.options))
        return 0
    except ConfigError as e:
        for line in e.lines():  # exactly `config.json: POINTER: MESSAGE`, one per problem
            logger.error(line)
        return 1
    except PyruncError as e:
        logger.error(e.line())
        if logger.min_level == 0:
            import traceback

            logger.debug(traceback.format_exc())
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
    except OSError as e:  # a fault no step caught (ENOSPC, EDQUOT, EMFILE, EROFS...): its errno, not a bug
        where = f"container {cid}: " if cid else ""
        what = f"{e.filename}: " if isinstance(e.filename, str) else ""
        logger.error(f"{where}{command or 'pyrunc'}: {what}{e.strerror or e}")
        return 1
    except Exception as e:  # noqa: BLE001 - the one broad catch: no traceback reaches the user
        where = f"container {cid}: " if cid else ""
        logger.error(f"{where}internal error: {type(e).__name__}: {e}")
        if logger.min_level == 0:
            import traceback

            logger.debug(traceback.format_exc())
        return 1


def run_and_exit() -> None:
    """The command's entry point: run, flush, and leave without interpreter teardown.

    Tearing down the interpreter (module cleanup, restoring signal handlers)
    costs ~10 ms that a runtime called for every container start need not pay.
    """
    try:
        code = main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
