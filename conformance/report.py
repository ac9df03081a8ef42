"""Reports: the JSON document, the markdown table, docs/CONFORMANCE.md and the summary line."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


# Where runc 1.5.1 and runtime-spec 1.3 changed what runc 1.1 did, pyrunc follows 1.5.1: a
# scenario runc 1.1.x passes and pyrunc fails is then expected, for this reason, not a regression.
# Keyed by scenario id; applies to oracles whose label starts with "runc 1.1".
CHANGED_SINCE_11: dict[str, str] = {}


def expected_difference(scenario_id: str, label: str) -> str:
    """The documented reason a failure against this oracle is expected, or ""."""
    if label.startswith("runc 1.1"):
        return CHANGED_SINCE_11.get(scenario_id, "")
    return ""


def regressions(rows: list[dict]) -> list[tuple[dict, str]]:
    """(row, oracle label) where that oracle passes and the runtime fails, documented changes aside:
    what must never ship."""
    return [(r, label) for r in rows for label, status in _oracles(r).items()
            if status == "pass" and r["runtime"] == "fail" and not expected_difference(r["id"], label)]


def documented(rows: list[dict]) -> list[tuple[dict, str, str]]:
    """(row, oracle label, reason): failures against an old oracle that CHANGED_SINCE_11 explains."""
    return [(r, label, expected_difference(r["id"], label)) for r in rows for label, status in _oracles(r).items()
            if status == "pass" and r["runtime"] == "fail" and expected_difference(r["id"], label)]


def runtime_only(rows: list[dict]) -> list[dict]:
    """The runtime passes where every oracle fails (or skips)."""
    return [r for r in rows if r["runtime"] == "pass" and all(v != "pass" for v in _oracles(r).values())]


def _oracles(row: dict) -> dict[str, str]:
    return row.get("oracles") or {"oracle": row["oracle"]}


def labels(binaries: list[str]) -> list[str]:
    """'runc 1.5.1' from `runc --version`; the file name where two would read the same."""
    out = []
    for b in binaries:
        try:
            first = subprocess.run([b, "--version"], capture_output=True, text=True, timeout=10).stdout
            words = first.splitlines()[0].split() if first.strip() else []
        except (OSError, subprocess.SubprocessError):
            words = []
        label = f"{words[0]} {words[-1]}" if len(words) >= 2 else os.path.basename(b)
        if label in out:
            label = f"{label} ({os.path.basename(b)})"
        out.append(label)
    return out


def summary(rows: list[dict]) -> str:
    rt = Counter(r["runtime"] for r in rows)
    parts = [f"{len(rows)} scenarios: runtime {rt['pass']} pass/{rt['fail']} fail/{rt['skip']} skip"]
    names = list(_oracles(rows[0])) if rows else []
    for label in names:
        c = Counter(_oracles(r)[label] for r in rows)
        parts.append(f"{label if len(names) > 1 else 'oracle'} {c['pass']} pass/{c['fail']} fail/{c['skip']} skip")
    tail = f"runtime-only passes {len(runtime_only(rows))}"
    if documented(rows):
        tail += f", documented changes since runc 1.1 {len(documented(rows))}"
    return ", ".join(parts) + f", {tail}, regressions {len(regressions(rows))}"


def write_json(path: Path, rows: list[dict], meta: dict) -> None:
    keys = ("id", "spec", "level", "runtime", "oracle", "oracles", "detail", "details", "seconds")
    doc = {"meta": meta, "scenarios": [{k: r[k] for k in keys if k in r} for r in rows]}
    path.write_text(json.dumps(doc, indent=1) + "\n")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(rows: list[dict]) -> str:
    names = list(_oracles(rows[0])) if rows else ["oracle"]
    head = "| id | spec | level | pyrunc | " + " | ".join(names) + " | detail |"
    lines = [head, "|" + "---|" * (5 + len(names))]
    for r in rows:
        cells = " | ".join(_oracles(r)[n] for n in names)
        lines.append(f"| `{r['id']}` | {r['spec']} | {r['level']} | {r['runtime']} | {cells} | "
                     f"{_cell(r['detail'])[:400]} |")
    return "\n".join(lines) + "\n"


def environment(runtime: str, oracles: list[str] | str) -> dict:
    def out(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"
    if isinstance(oracles, str):
        oracles = [oracles]
    meta = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "kernel": platform.release(),
        "runtime": runtime,
    }
    for i, o in enumerate(oracles):
        key = "oracle" if i == 0 else f"oracle{i + 1}"
        meta[key] = o
        meta[f"{key}_version"] = (out([o, "--version"]).splitlines() or [""])[0]
    meta["pyrunc_commit"] = out(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    meta["cgroups"] = ("hybrid (v1 controllers + v2 at /sys/fs/cgroup/unified)"
                      if os.path.isdir("/sys/fs/cgroup/unified") else
                      ("v2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "v1"))
    return meta


# Where the spec leaves pyrunc a choice, what it chose; printed in docs/CONFORMANCE.md.
CHOICES = [
    ("`linux.seccomp.listenerPath` without an `SCMP_ACT_NOTIFY` action",
     "config-linux.md#seccomp: the runtime sends the listener to `listenerPath` \"when the "
     "SCMP_ACT_NOTIFY action is used\". Without such an action pyrunc never connects to that "
     "socket (for the init or for `exec`), so no agent needs to be listening there; as runc does "
     "(`tests/integration/test_seccomp_container.py::test_listener_only_used_with_a_notify_rule`)."),
]


#: Written by hand (not measured by this harness): what tests/integration/test_foreign_configs.py shows.
FOREIGN_CONFIGS = """## Configs other tools wrote

`tests/integration/test_foreign_configs.py` (in `make test`) runs the config.json files that
real callers wrote on this host (`tests/fixtures/configs`: ctr and containerd 1.6.20 with and
without `--seccomp`, containerd's CRI plugin through crictl 1.26.1 for a pod sandbox and a
container, podman 4.3.1, Docker 20.10.24, `runc spec` and `runc spec --rootless` of runc 1.1.5)
and a 2019-vintage deny-by-default seccomp profile (`tests/fixtures/seccomp`) under runc and
pyrunc, adapted only where they name things absent here, with a probe (`id`, the capability,
seccomp and no_new_privs lines of /proc/self/status, `ls /`). Exit status and output are the
same for every one, including the two cases that issue 12 fixed: the 2019 profile with
`noNewPrivileges` false (no system call but the exec after the filter) and `runc spec
--rootless`, whose `/sys` rbind used to bring the host's cgroup v1 mounts along.

Differences seen beyond that probe (mount table compared line by line), kept on purpose:

- A read-only `cgroup` mount on a v1/hybrid host: pyrunc makes the tmpfs at `/sys/fs/cgroup`
  read-only too; runc 1.1.5 leaves that tmpfs writable (the hierarchies are read-only in both).

## AppArmor

Not measured by this harness (this host's kernel has no AppArmor). `tests/vm/test_apparmor.py`,
in the QEMU guest lane of `make test`, loads a profile there and checks both runtimes the same
way: the init and `exec` run in the profile (`/proc/self/attr/current`), `exec --apparmor` and
a process file's `apparmorProfile` override it, a write the profile denies fails with EACCES,
and a profile that is not loaded fails `create` with nothing left behind (pyrunc's line:
`apparmor profile 'X' is not loaded`). Both runtimes give the same results.
"""


ORACLES_TEXT = """## Two oracles

Debian's runc 1.1.5 is what Debian's containerd, podman and Docker packages call; runc 1.5.1
(`../shared/oracle/bin/runc-1.5.1`, built from its v1.5.1 tag) is what current Docker and
containerd packages, Kubernetes nodes and new distributions ship. Each scenario runs under both.
Where the two runcs differ, pyrunc follows runc 1.5.1 and runtime-spec 1.3 (issue 22); a scenario
that only runc 1.1.5 passes is then listed below with the reason, not counted as a regression.
What changed between them, and what pyrunc does about each change, is in README
("Behaviour of runc 1.5").
"""


def markdown(rows: list[dict], meta: dict, *, full: bool) -> str:
    """The markdown report; `full` adds the counts and lists that docs/CONFORMANCE.md carries."""
    parts = []
    names = list(_oracles(rows[0])) if rows else []
    if full:
        parts.append("# Conformance: pyrunc against runc\n\n"
                     "Generated by `make conformance` (`conformance/run`), a differential harness: every\n"
                     "scenario cites one requirement of runtime-spec v1.3.0, runs a busybox bundle under\n"
                     "pyrunc (*runtime*) and each runc (*oracles*), and judges them only from outside\n"
                     "(/proc, cgroup files, probe output, state JSON, exit codes, hook records).\n"
                     "Do not edit by hand.\n")
        if len(names) > 1:
            parts.append(ORACLES_TEXT)
        env = "\n".join(f"- {k}: `{v}`" for k, v in meta.items())
        parts.append(f"## Environment\n\n{env}\n")
        by = Counter((r["spec"].split("#")[0], r["level"]) for r in rows)
        specs = sorted({s for s, _ in by})
        t = ["| spec file | MUST | SHOULD | MAY | total |", "|---|---|---|---|---|"]
        for s in specs:
            n = [by[(s, lv)] for lv in ("MUST", "SHOULD", "MAY")]
            t.append(f"| {s} | {n[0]} | {n[1]} | {n[2]} | {sum(n)} |")
        parts.append("## Scenarios by spec file and level\n\n" + "\n".join(t) + "\n")
        parts.append(f"## Summary\n\n{summary(rows)}\n")
        reg = regressions(rows)
        parts.append("## Regressions (a runc passes, pyrunc fails)\n\n" + (
            "\n".join(f"- `{r['id']}` ({r['spec']}, {r['level']}) against {label}: {_cell(r['detail'])[:300]}"
                      for r, label in reg) or "None.") + "\n")
        if len(names) > 1:
            doc = documented(rows)
            parts.append("## Documented differences from runc 1.1 (pyrunc follows runc 1.5.1 and the spec)\n\n" + (
                "\n".join(f"- `{r['id']}` ({r['spec']}): {why}" for r, _, why in doc) or "None.") + "\n")
            differ = [r for r in rows if len(set(_oracles(r).values())) > 1]
            lines = [f"- `{r['id']}` ({r['spec']}, {r['level']}): "
                     + ", ".join(f"{n} {_oracles(r)[n]}" for n in names) + f"; pyrunc {r['runtime']}"
                     for r in differ]
            parts.append("## Where runc 1.1.5 and runc 1.5.1 differ\n\n" + ("\n".join(lines) or "Nowhere.") + "\n")
        only = runtime_only(rows)
        parts.append("## pyrunc passes, every runc fails\n\n" + (
            "\n".join(f"- `{r['id']}` ({r['spec']}, {r['level']})" for r in only) or "None.") + "\n")
        parts.append("## Choices where the spec leaves room\n\n"
                     + "\n".join(f"- {what}: {why}" for what, why in CHOICES) + "\n")
        parts.append(FOREIGN_CONFIGS)
        parts.append("## All scenarios\n")
    parts.append(table(rows))
    return "\n".join(parts)
