"""`pyrunc --help`, `pyrunc help [COMMAND]` and `pyrunc COMMAND --help`, in runc's layout.

Imported only when help is asked for, so none of this text is loaded on a normal run. A
flag's meaning and default are not here: they sit with the flag in the table the command
parses with (``Opt.doc``, ``Opt.default``), and `args.parse` hands that very table over when
it meets ``--help``/``-h`` (``HelpRequested``). A flag therefore cannot be parsed without
being listed; tests/unit/test_help.py walks every command to hold that. What is here is each
command's usage line and a paragraph on what it does, in our own words.
"""

from __future__ import annotations

from .. import OCI_VERSION, __version__
from .args import Opt

ABOUT = """\
pyrunc runs containers from OCI bundles with runc's command line, so that containerd,
podman, Docker, buildah and Kubernetes (through containerd) can use it where they would
use runc. A bundle is a directory holding config.json (the runtime spec's configuration;
`pyrunc spec` writes a starting one) and the root filesystem it names.

To run a container in the foreground from the bundle in the current directory:

    pyrunc run [-b bundle] <container-id>

The id is yours to choose and must be unique under --root. Each command explains itself:
`pyrunc help COMMAND` or `pyrunc COMMAND --help`."""

# command -> (what follows `pyrunc COMMAND` in the usage line, what the command does)
COMMAND_HELP: dict[str, tuple[str, str]] = {
    "create": ("[command options] <container-id>", """\
Sets a container up from the bundle (config.json and its root filesystem): namespaces,
cgroup, mounts, devices, and an init process that waits. `pyrunc start` then runs
process.args; until then `pyrunc state` says "created". The id may hold letters, digits
and _ + . - only."""),
    "start": ("<container-id>", """\
Lets the init of a created container go on into the program in process.args (the
startContainer hooks run first, inside the container; the poststart hooks after)."""),
    "run": ("[command options] <container-id>", """\
create and start in one command. In the foreground pyrunc stays for the container: it
forwards the signals it receives to the init, passes stdio (or the terminal) through,
returns the program's exit status and then deletes the container (unless --keep). With
--detach it returns as soon as the program runs."""),
    "state": ("<container-id>", """\
Prints the container's state as the runtime spec defines it (ociVersion, id, status, pid,
bundle, annotations): JSON on stdout."""),
    "kill": ("[command options] <container-id> [signal]", """\
Sends a signal to the container's init, SIGTERM unless one is named. A signal is a name with
or without SIG (KILL, SIGKILL), a number (9), or a real-time signal (RTMIN+1)."""),
    "delete": ("[command options] <container-id>", """\
Removes a stopped container: its state, its cgroup and any mount pyrunc made for it, then
runs the poststop hooks. A container that still runs needs --force."""),
    "list": ("[command options]", """\
Lists the containers under --root: id, init pid, status, bundle, creation time and owner."""),
    "spec": ("[command options]", """\
Writes a starting config.json into the bundle directory: process.args ["sh"] on a terminal,
the usual /proc, /dev and /sys mounts, new namespaces, and a read-only root filesystem in
the directory rootfs. Edit it before running, e.g. with jq:

    jq '.process.terminal=false | .process.args=["echo","hello"]' config.json

An existing config.json is never overwritten."""),
    "exec": ("[command options] <container-id> <command> [args...]  |  -p process.json <container-id>", """\
Runs another process in a running (or created) container, in its namespaces and cgroup and
with its process settings (user, environment, capabilities, rlimits, ...) unless a flag
changes them. Everything after the container id belongs to the command. In the foreground
the exit status is the process's own; when setting the process up fails it is 255."""),
    "features": ("", """\
Prints what this pyrunc supports as the runtime spec's features document (JSON):
namespaces, mount options, capabilities, seccomp actions and architectures, cgroups, hooks."""),
    "pause": ("<container-id>", """\
Freezes every process of the container with the cgroup freezer; `pyrunc resume` thaws them."""),
    "resume": ("<container-id>", """\
Thaws the processes of a container frozen by `pyrunc pause`."""),
    "ps": ("[command options] <container-id> [ps options]", """\
Shows the processes in the container's cgroup: the host's `ps -ef` lines for them (other ps
options may follow the id), or with --format json only their host pids."""),
    "update": ("[command options] <container-id>", """\
Changes the cgroup limits of a created, running or paused container; the new values are
written to the cgroup and kept in the container's state. Sizes are binary and take units:
512m, 1g, 100k, or -1 for no limit. With --resources the file (- for stdin) is a runtime
spec linux.resources object and every other flag is ignored, e.g.

    {"memory": {"limit": 268435456}, "cpu": {"quota": 50000, "period": 100000},
     "pids": {"limit": 100}}"""),
    "events": ("[command options] <container-id>", """\
Prints the container's resource statistics as JSON lines, one every --interval, and an
"oom" line for each OOM kill, until the container stops. With --stats: one line, then exit."""),
    "checkpoint": ("[command options] <container-id>", """\
Saves a running container's processes into image files with CRIU; the container is then
gone, unless --leave-running or --pre-dump. Needs root and the criu binary (global --criu)."""),
    "restore": ("[command options] <container-id>", """\
Starts a container again from the images `pyrunc checkpoint` wrote, with the bundle given
(-b). In the foreground it behaves as `run`: it waits and returns the exit status; with
--detach it leaves the container running."""),
}


def default_text(opt: Opt) -> str:
    """`` (default: X)`` for an option with a value and a default, else nothing."""
    if not opt.value or opt.default is None or opt.multi:
        return ""
    text = str(opt.default)
    shown = text if text.lstrip("-").isdigit() else f'"{text}"'
    return f" (default: {shown})"


def flag_text(opt: Opt) -> str:
    """The flag column: ``--name value, -n value`` (runc's spelling of it)."""
    value = " value" if opt.value else ""
    short = f", -{opt.short}{value}" if opt.short else ""
    return f"--{opt.name}{value}{short}"


def option_lines(options: list[Opt]) -> list[str]:
    """One line per option: the flag, then its meaning and default, aligned as runc aligns them."""
    if not options:
        return []
    width = max(len(flag_text(o)) for o in options)
    return [f"   {flag_text(o):<{width}}  {o.doc}{default_text(o)}".rstrip() for o in options]


def indent(text: str) -> str:
    return "\n".join(f"   {line}" if line else "" for line in text.splitlines())


def command_help(command: str, summary: str, options: list[Opt]) -> str:
    """`pyrunc COMMAND --help`: NAME, USAGE, DESCRIPTION and OPTIONS, as runc prints them."""
    usage, description = COMMAND_HELP.get(command, ("[command options] [arguments...]", ""))
    parts = [f"NAME:\n   pyrunc {command} - {summary}", f"USAGE:\n   pyrunc {command} {usage}".rstrip()]
    if description:
        parts.append(f"DESCRIPTION:\n{indent(description)}")
    if options:
        parts.append("OPTIONS:\n" + "\n".join(option_lines(options)))
    return "\n\n".join(parts) + "\n"


def main_help(commands: dict[str, str], options: list[Opt]) -> str:
    """`pyrunc --help` and `pyrunc help`: what pyrunc is, its commands and global options."""
    width = max(len(name) for name in [*commands, "help, h"])
    rows = [f"   {name:<{width}}  {text}" for name, text in commands.items()]
    rows.append(f"   {'help, h':<{width}}  show the commands, or one command's help")
    return "\n\n".join([
        "NAME:\n   pyrunc - an OCI container runtime with runc's command line, written in Python",
        ABOUT,
        "USAGE:\n   pyrunc [global options] command [command options] [arguments...]",
        f"VERSION:\n   {__version__}\n   spec: {OCI_VERSION}",
        "COMMANDS:\n" + "\n".join(rows),
        "GLOBAL OPTIONS:\n" + "\n".join(option_lines(options)),
    ]) + "\n"
