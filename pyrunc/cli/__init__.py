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
from .args import Opt, parse

COMMANDS = {
    "create": "create a container",
    "start": "executes the user defined process in a created container",
    "run": "create and run a container",
    "state": "output the state of a container",
    "kill": "kill sends the specified signal (default: SIGTERM) to the container's init process",
    "delete": "delete any resources held by the container often used with detached container",
    "list": "lists containers started by pyrunc with the given root",
    "spec": "create a new specification file",
    "exec": "execute new process inside the container",
    "features": "show the enabled features",
    "pause": "pause suspends all processes inside the container",
    "resume": "resumes all processes that have been previously paused",
    "ps": "ps displays the processes running inside a container",
    "update": "update container resource constraints",
    "events": "display container events such as OOM notifications, cpu, memory, and IO usage statistics",
    "checkpoint": "checkpoint a running container",
    "restore": "restore a container from a previous checkpoint",
}

GLOBAL = [
    Opt("root", True, default=None),
    Opt("log", True, default=None),
    Opt("log-format", True, default="text"),
    Opt("debug"),
    Opt("systemd-cgroup"),
    Opt("rootless", True, default="auto"),
    Opt("criu", True, default=None),
    Opt("version", short="v"),
    Opt("help", short="h"),
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


def usage() -> str:
    lines = [f"pyrunc {__version__}: an OCI runtime with runc's command line", "",
             "usage: pyrunc [global options] command [command options] [arguments...]", "",
             "commands:"]
    lines += [f"   {name:<8} {text}" for name, text in COMMANDS.items()]
    lines += ["", "global options:",
              "   --root value        root directory for storage of container state (default: /run/pyrunc,\n"
              "                       or $XDG_RUNTIME_DIR/pyrunc when rootless)",
              "   --log value         set the log file to write pyrunc logs to (default: stderr)",
              "   --log-format value  set the log format ('text' (default), or 'json')",
              "   --debug             enable debug logging",
              "   --systemd-cgroup    use systemd for cgroups (slice:prefix:name cgroupsPath)",
              "   --rootless value    run rootless: skip cgroups we may not write to ('true', 'false', or 'auto')",
              "   --criu value        path to the criu binary used for checkpoint and restore (default: criu in PATH)",
              "   --version, -v       print the version",
              "   --help, -h          show help"]
    return "\n".join(lines) + "\n"


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
    cid = None
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
            sys.stdout.write(usage())
            return 0 if opts["help"] or rest else 1
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
