"""runc's command-line dialect, parsed without argparse.

Rules callers (containerd, podman, Docker) depend on: `--opt value` and `--opt=value`,
runc's short aliases, bare booleans (also `--flag=true|false`), the Go-style
single-dash long form (`-no-subreaper`), options in any order before the id,
and for `exec`/`ps` everything after the first positional is payload.
"""

from __future__ import annotations

from ..errors import UsageError


class Opt:
    """One option: long name (no dashes), takes a value?, short alias, repeatable?, default, and
    what it means (``doc``, shown by ``--help``).

    The meaning sits with the option so that no flag can be parsed without being documented
    (tests/unit/test_help.py walks every command); a constant string costs a normal run nothing.
    A plain class, not a dataclass: importing dataclasses costs ~30 ms, more than
    everything else `pyrunc state` does.
    """

    __slots__ = ("name", "value", "short", "multi", "default", "dest", "doc")

    def __init__(self, name: str, value: bool = False, short: str | None = None, multi: bool = False,
                 default: object = None, doc: str = ""):
        self.name = name
        self.value = value
        self.short = short
        self.multi = multi
        self.default = default
        self.dest = name.replace("-", "_")
        self.doc = doc


class HelpRequested(Exception):
    """``--help``/``-h`` among a command's options: the CLI prints that command's help, exit 0.

    Raised by `parse` only where an unknown flag would be an error, so a normal run never
    checks for it, and it carries the very table the command parses with (cli/help.py
    renders it). Not a PyruncError: asking for help is not a failure.
    """

    def __init__(self, command: str, options: list[Opt]):
        super().__init__(command)
        self.command = command
        self.options = options


class Parsed:
    __slots__ = ("opts", "args")

    def __init__(self) -> None:
        self.opts: dict = {}
        self.args: list[str] = []

    def __repr__(self) -> str:
        return f"Parsed(opts={self.opts}, args={self.args})"


TRUE = {"true", "1", "t", "yes"}
FALSE = {"false", "0", "f", "no"}


def parse(argv: list[str], options: list[Opt], *, stop_at_positional: bool = False,
          command: str = "pyrunc") -> Parsed:
    by_name = {o.name: o for o in options}
    by_short = {o.short: o for o in options if o.short}
    out = Parsed()
    for o in options:
        out.opts[o.dest] = [] if o.multi else (o.default if o.value else bool(o.default))
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            out.args.extend(argv[i + 1:])
            break
        if tok.startswith("-") and tok != "-" and not (out.args and stop_at_positional):
            body = tok.lstrip("-")
            name, eq, inline = body.partition("=")
            if tok.startswith("--") or len(name) > 1:
                opt = by_name.get(name)
            else:
                opt = by_short.get(name)
            if opt is None and name in ("help", "h"):
                if not eq or inline.lower() not in FALSE:
                    raise HelpRequested(command, options)
                i += 1  # --help=false: asks for nothing
                continue
            if opt is None:
                raise UsageError(f"flag provided but not defined: {tok.split('=')[0]}", step=command)
            if opt.value:
                if eq:
                    val = inline
                else:
                    i += 1
                    if i >= len(argv):
                        raise UsageError(f"flag needs an argument: {tok}", step=command)
                    val = argv[i]
                if opt.multi:
                    out.opts[opt.dest].append(val)
                else:
                    out.opts[opt.dest] = val
            else:
                if eq:
                    low = inline.lower()
                    if low not in TRUE | FALSE:
                        raise UsageError(f"invalid boolean value {inline!r} for {tok}", step=command)
                    out.opts[opt.dest] = low in TRUE
                else:
                    out.opts[opt.dest] = True
        else:
            out.args.append(tok)
            if stop_at_positional and len(out.args) == 1:
                out.args.extend(argv[i + 1:])
                break
        i += 1
    return out


def exactly(parsed: Parsed, n: int, command: str, usage: str) -> list[str]:
    if len(parsed.args) != n:
        need = "1 argument" if n == 1 else f"{n} arguments"
        raise UsageError(f'"{command}" requires exactly {need} (usage: pyrunc {command} {usage})',
                         step=command)
    return parsed.args

