"""`pyrunc exec [options] <id> <command> [args...]` or `pyrunc exec -p process.json <id>`.

Without --process the container's own process is the template (env, user,
capabilities, rlimits ...) and the flags adjust it, as runc does; with it the
JSON file is the whole process and only --detach/--pid-file/--console-socket
apply. Setup failures exit 255 (runc); otherwise the exit status is the
process's own (foreground) or 0 (--detach).
"""

from __future__ import annotations

import marshal

from ..container import Container
from ..errors import EXEC, Boundary, ConfigError, UsageError
from ..options import ExecOptions
from .args import Opt, parse

EXEC_OPTS = [
    Opt("console-socket", True, default=None,
        doc="AF_UNIX socket to send the terminal's master fd to (with --tty)"),
    Opt("pidfd-socket", True, default=None,
        doc="path to an AF_UNIX socket that receives a pidfd of the exec'd process"),
    Opt("cwd", True, default=None, doc="working directory inside the container (default: the config's cwd)"),
    Opt("env", True, "e", multi=True, doc="add VAR=value to the config's environment (repeatable)"),
    Opt("tty", short="t", doc="give the process a new pseudo-terminal"),
    Opt("user", True, "u", default=None, doc="run as UID[:GID], decimal ids (default: the config's user)"),
    Opt("additional-gids", True, "g", multi=True, doc="an extra group id for the process (repeatable)"),
    Opt("process", True, "p", default=None,
        doc="a JSON file holding the whole process (runtime-spec process object); replaces the config's"),
    Opt("detach", short="d", doc="start the process and return at once"),
    Opt("pid-file", True, default=None, doc="write the process's host pid to this file (no newline)"),
    Opt("process-label", True, default=None, doc="SELinux label for the process"),
    Opt("apparmor", True, default=None, doc="AppArmor profile for the process"),
    Opt("no-new-privs", doc="set no_new_privs for the process"),
    Opt("cap", True, "c", multi=True,
        doc="add a capability (CAP_...) to the bounding, effective and permitted sets (repeatable)"),
    Opt("preserve-fds", True, default="0", doc="pass N more open fds after stdio to the process"),
    Opt("cgroup", True, multi=True, doc="run the process in an existing sub-cgroup of the container: [CTRL[,CTRL]:]PATH, repeatable"),
    Opt("ignore-paused", doc="allow exec into a paused container"),
]


def parse_user(text: str) -> tuple[int, int | None]:
    """`uid` or `uid:gid`, decimal only (a lax parser once turned `-u 1` into root)."""
    uid_s, sep, gid_s = text.partition(":")
    try:
        uid = _id(uid_s)
        gid = _id(gid_s) if sep else None
    except ValueError:
        raise UsageError(f"invalid --user {text!r}: want UID[:GID] in decimal", step="exec") from None
    return uid, gid


def _id(s: str) -> int:
    if not s.isdigit() or not s.isascii():
        raise ValueError(s)
    v = int(s)
    if v >= 0xFFFFFFFF:
        raise ValueError(s)
    return v


def json_copy(value):
    """A deep copy of JSON data (dicts, lists, scalars), without importing copy."""
    return marshal.loads(marshal.dumps(value))


def build_process(opts: dict, args: list[str], config: dict) -> dict:
    if opts["process"]:
        from ..spec.load import parse_config  # the strict _json scanner: no json (and re) import

        try:
            with open(opts["process"], "rb") as f:
                process = parse_config(f.read())
        except OSError as e:
            raise UsageError(f"read process file {opts['process']}: {e}", step="exec") from None
        except ConfigError as e:
            cause = e.problems[0][1] if e.problems else "invalid JSON"
            raise UsageError(f"read process file {opts['process']}: {cause}", step="exec") from None
        if not isinstance(process, dict):
            raise UsageError("process file must hold a JSON object", step="exec")
    else:
        if not args:
            raise UsageError("exec: args must not be empty", step="exec")
        process = json_copy(config.get("process") or {})
        process["args"] = list(args)
        process["terminal"] = bool(opts["tty"])
        process.pop("consoleSize", None)
        if opts["env"]:
            process["env"] = list(process.get("env") or []) + opts["env"]
        if opts["cwd"]:
            process["cwd"] = opts["cwd"]
        user = dict(process.get("user") or {})
        if opts["user"] is not None:
            uid, gid = parse_user(opts["user"])
            user["uid"] = uid
            user["gid"] = gid if gid is not None else 0
        if opts["additional_gids"]:
            try:
                user["additionalGids"] = [_id(g) for g in opts["additional_gids"]]
            except ValueError:
                raise UsageError("invalid --additional-gids", step="exec") from None
        process["user"] = user
        if opts["no_new_privs"]:
            process["noNewPrivileges"] = True
        if opts["cap"]:
            caps = json_copy(process.get("capabilities") or {})
            for which in ("bounding", "effective", "permitted"):
                have = caps.setdefault(which, [])
                have.extend(c for c in opts["cap"] if c not in have)
            process["capabilities"] = caps
    if opts["apparmor"]:
        process["apparmorProfile"] = opts["apparmor"]
    if opts["process_label"]:
        process["selinuxLabel"] = opts["process_label"]
    return process


def parse_sub_cgroups(args: list[str]) -> dict[str, str]:
    """``--cgroup [CTRL[,CTRL...]:]PATH``, repeatable, as runc 1.5 reads it: a bare PATH (every
    hierarchy) only alone, each controller named once; ``a:b:c`` is controller ``a``, path
    ``b:c``; an empty argument is ignored. ``{"": PATH}`` or ``{CTRL: PATH, ...}``."""
    subs: dict[str, str] = {}
    given = [a for a in args if a]
    for arg in given:
        ctrls, sep, path = arg.partition(":")
        if not sep:
            if len(given) > 1:
                raise UsageError(f"invalid --cgroup argument: {arg} (missing <controller>: prefix)",
                                 step="exec")
            return {"": arg}
        if not ctrls:
            raise UsageError(f"invalid --cgroup argument: {arg} (empty <controller> prefix)", step="exec")
        for ctrl in ctrls.split(","):
            if ctrl in subs:
                raise UsageError(f"invalid --cgroup argument(s): controller {ctrl} specified multiple times",
                                 step="exec")
            subs[ctrl] = path
    return subs


def run(argv: list[str], glob) -> int:
    p = parse(argv, EXEC_OPTS, stop_at_positional=True, command="exec")
    if not p.args:
        raise UsageError('"exec" requires a minimum of 1 argument', step="exec")
    cid, payload = p.args[0], p.args[1:]
    opts = p.opts
    try:
        preserve = int(opts["preserve_fds"])
    except ValueError:
        raise UsageError(f"invalid --preserve-fds {opts['preserve_fds']!r}", step="exec") from None
    if preserve > 0:
        from ..process.passfds import claim

        claim(preserve, step="exec", container=cid, activation=False)  # before anything of ours is opened
    c = Container.load(glob.root, cid, lock=False)
    with Boundary(cid, EXEC, nest=True, exit_code=255):
        process = build_process(opts, payload, c.config)
        sub_cgroups = parse_sub_cgroups(opts["cgroup"])
    pid = c.exec(process, ExecOptions(console_socket=opts["console_socket"], pidfd_socket=opts["pidfd_socket"],
                                      pid_file=opts["pid_file"],
                                      detach=opts["detach"], preserve_fds=preserve,
                                      ignore_paused=opts["ignore_paused"], sub_cgroups=sub_cgroups))
    if opts["detach"]:
        return 0
    from ..foreground import attend

    return attend(pid, c.console_master)
