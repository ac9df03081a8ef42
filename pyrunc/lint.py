"""`pyrunc check`: everything wrong with, risky in, or unportable about a bundle's config.

Findings, each ``{level, class, pointer, message}`` with level "error", "warning" or "info":

- json, schema, semantic: what `create` says when it refuses config.json (the same loader,
  validator and semantic checks, pyrunc/spec), every problem at once;
- jsonschema: a second opinion, the jsonschema library on the same schema (spec/*.json as
  pyrunc/spec/_schemas.py holds it). Imported here only: `check` is not on the hot path, and
  `create` never pays for it. Where the two disagree it is said: pyrunc's validator is stricter
  on purpose in two places (integers written 1.0, a pattern's ``$``), anything else is a bug;
- create: what create itself would refuse beyond the config's text on this host (a missing bind
  source, a namespace path of the wrong type, an unknown filesystem, a sysctl the kernel lacks,
  a program not in the rootfs ...), found by `pyrunc plan` (pyrunc/process/plan.py);
- security: the posture report (pyrunc/spec/posture.py);
- portability: where runc 1.1, runc 1.5 and the runtime spec disagree (pyrunc/spec/portability.py).

``--fail-on warning|error`` picks the level that makes the exit status 1.
"""

from __future__ import annotations

import os

from .errors import ConfigError, PyruncError
from .options import CreateOptions

LEVELS = ("info", "warning", "error")


class Report:
    """The findings for one bundle."""

    def __init__(self, bundle: str):
        self.bundle = bundle
        self.findings: list[dict] = []
        self.jsonschema: dict = {"available": False}

    def add(self, level: str, cls: str, pointer: str, message: str) -> None:
        self.findings.append({"level": level, "class": cls, "pointer": pointer, "message": message})

    def count(self, level: str) -> int:
        return sum(1 for f in self.findings if f["level"] == level)

    def fails(self, at: str) -> bool:
        """Is there a finding at level ``at`` or worse?"""
        floor = LEVELS.index(at)
        return any(LEVELS.index(f["level"]) >= floor for f in self.findings)

    def as_dict(self) -> dict:
        return {"bundle": self.bundle, "findings": self.findings, "jsonschema": self.jsonschema,
                "summary": {level: self.count(level) for level in reversed(LEVELS)}}


def check(bundle: str, *, root: str, cid: str, opts: CreateOptions) -> Report:
    """Check ``bundle`` (see the module docstring). Raises ConfigError only when config.json
    cannot be read at all (a missing or unreadable bundle): one line says so."""
    from .spec.load import parse_config, read_config_bytes

    bundle = os.path.abspath(bundle)
    report = Report(bundle)
    data = read_config_bytes(os.path.join(bundle, "config.json"))
    try:
        config = parse_config(data)
    except ConfigError as e:
        for pointer, message in e.problems:
            report.add("error", "json", pointer, message)
        return report
    if type(config) is not dict:
        report.add("error", "json", "", "config.json must hold a JSON object")
        return report
    schema_ok = check_schema(report, config)
    if not schema_ok:
        return report
    guarded(report, "semantic", check_semantic, report, config, bundle)
    plan = guarded(report, "create", check_create, report, bundle, root, cid, opts)
    guarded(report, "security", check_posture, report, config, bundle)
    guarded(report, "portability", check_portability, report, config, plan)
    return report


def guarded(report: Report, cls: str, fn, *args):
    """One class of checks; if it breaks on an odd config, the others still report."""
    try:
        return fn(*args)
    except PyruncError as e:
        report.add("error", cls, "", e.cause)
    except Exception as e:  # noqa: BLE001 - a check's own failure is a finding, never a traceback
        report.add("error", cls, "", f"the {cls} checks failed: {type(e).__name__}: {e}")
    return None


def check_schema(report: Report, config: dict) -> bool:
    """Our validator, and jsonschema's opinion on the same schema. True when ours found nothing."""
    from .spec import validate

    ours = validate(config, "config")
    for pointer, message in ours:
        report.add("error", "schema", pointer, message)
    report.jsonschema = second_opinion(report, config, ours)
    return not ours


# Where our validator is stricter than JSON Schema, by design (pyrunc/spec/validator.py).
STRICTER = ("integers written with a fraction (1.0) are not integers, as for Go's encoding/json; a "
            "pattern's '$' anchors at the very end of the string")


def second_opinion(report: Report, config: dict, ours: list[tuple[str, str]]) -> dict:
    """jsonschema on our schema; disagreements become findings."""
    try:
        import jsonschema
    except ImportError:
        report.add("info", "jsonschema", "", "the jsonschema library is not installed: no second opinion")
        return {"available": False}
    from .spec._schemas import SCHEMAS

    validator = jsonschema.Draft202012Validator(SCHEMAS["config"])
    theirs = {}
    for error in validator.iter_errors(config):
        pointer = "".join("/" + str(k).replace("~", "~0").replace("/", "~1") for k in error.absolute_path)
        theirs.setdefault(pointer, error.message)
    mine = {pointer for pointer, _ in ours}
    only_theirs = sorted(set(theirs) - mine)
    only_ours = sorted(mine - set(theirs))
    for pointer in only_theirs:
        report.add("error", "jsonschema", pointer, f"jsonschema: {theirs[pointer]} (pyrunc's validator "
                                                   "let this through: a bug in it)")
    for pointer in only_ours:
        report.add("info", "jsonschema", pointer, f"jsonschema accepts what pyrunc refuses here: {STRICTER}")
    return {"available": True, "version": _version(),
            "problems": len(theirs), "agrees": not only_theirs and not only_ours}


def _version() -> str | None:
    try:
        from importlib.metadata import version

        return version("jsonschema")
    except Exception:  # noqa: BLE001 - only shown
        return None


def check_semantic(report: Report, config: dict, bundle: str) -> None:
    from .spec import semantic_problems

    for pointer, message in semantic_problems(config, bundle):
        report.add("error", "semantic", pointer, message)


def check_create(report: Report, bundle: str, root: str, cid: str, opts: CreateOptions) -> dict | None:
    """What create would refuse on this host, and its warnings: `pyrunc plan`'s problems."""
    if any(f["level"] == "error" for f in report.findings):
        return None  # create stops at the config's own errors
    from .process.plan import plan_create

    try:
        plan = plan_create(bundle, cid, root, opts)
    except ConfigError as e:
        for pointer, message in e.problems:
            report.add("error", "create", pointer, message)
        return None
    for where, cause in plan["problems"]:
        if where == "reserve":
            continue  # the id is the bundle's name here, not a container to make
        report.add("error", "create", where if where.startswith("/") else "", cause if where.startswith("/")
                   else f"{where}: {cause}")
    for text in plan["warnings"]:
        report.add("warning", "create", "", text)
    return plan


def check_posture(report: Report, config: dict, bundle: str) -> None:
    from .spec.posture import posture

    for level, pointer, message in posture(config, bundle):
        report.add(level, "security", pointer, message)


def check_portability(report: Report, config: dict, plan: dict | None) -> None:
    from .spec.portability import portability

    dirs = None
    if plan is not None:
        dirs = [m["point"] for m in plan.get("mounts") or []
                if m["origin"].startswith("maskedPaths") and m["source"] == "tmpfs"]
    for level, pointer, message in portability(config, masked_dirs=dirs):
        report.add(level, "portability", pointer, message)


def render_text(report: Report) -> str:
    """For people: the findings by level, each ``POINTER: MESSAGE [class]``, then a summary."""
    out = [f"pyrunc check: {report.bundle}/config.json"]
    for level in reversed(LEVELS):
        found = [f for f in report.findings if f["level"] == level]
        if not found:
            continue
        out += ["", f"{level}s:"]
        for f in found:
            where = f"{f['pointer']}: " if f["pointer"] else ""
            out.append(f"  {where}{f['message']} [{f['class']}]")
    js = report.jsonschema
    out.append("")
    if js.get("available"):
        out.append(f"jsonschema {js.get('version') or ''}: "
                   + ("agrees" if js["agrees"] else "disagrees (see above)")
                   + f" ({js['problems']} schema problems)")
    summary = report.as_dict()["summary"]
    out.append(", ".join(f"{n} {level}{'s' if n != 1 else ''}" for level, n in summary.items()))
    return "\n".join(out) + "\n"
