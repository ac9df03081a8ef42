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


def regressions(rows: list[dict]) -> list[dict]:
    """Scenarios the oracle passes and the runtime fails: what must never ship."""
    return [r for r in rows if r["oracle"] == "pass" and r["runtime"] == "fail"]


def runtime_only(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["runtime"] == "pass" and r["oracle"] == "fail"]


def summary(rows: list[dict]) -> str:
    rt, orc = Counter(r["runtime"] for r in rows), Counter(r["oracle"] for r in rows)
    return (f"{len(rows)} scenarios: runtime {rt['pass']} pass/{rt['fail']} fail/{rt['skip']} skip, "
            f"oracle {orc['pass']} pass/{orc['fail']} fail/{orc['skip']} skip, "
            f"runtime-only passes {len(runtime_only(rows))}, regressions {len(regressions(rows))}")


def write_json(path: Path, rows: list[dict], meta: dict) -> None:
    doc = {"meta": meta, "scenarios": [{k: r[k] for k in ("id", "spec", "level", "runtime", "oracle", "detail",
                                                          "seconds")}
                                       for r in rows]}
    path.write_text(json.dumps(doc, indent=1) + "\n")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(rows: list[dict]) -> str:
    lines = ["| id | spec | level | runtime | oracle | detail |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| `{r['id']}` | {r['spec']} | {r['level']} | {r['runtime']} | {r['oracle']} | "
                     f"{_cell(r['detail'])[:400]} |")
    return "\n".join(lines) + "\n"


def environment(runtime: str, oracle: str) -> dict:
    def out(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "kernel": platform.release(),
        "runtime": runtime,
        "oracle": oracle,
        "oracle_version": out([oracle, "--version"]).splitlines()[0] if oracle else "",
        "pyrunc_commit": out(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
        "cgroups": "hybrid (v1 controllers + v2 at /sys/fs/cgroup/unified)"
        if os.path.isdir("/sys/fs/cgroup/unified") else
        ("v2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "v1"),
    }


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


def markdown(rows: list[dict], meta: dict, *, full: bool) -> str:
    """The markdown report; `full` adds the counts and lists that docs/CONFORMANCE.md carries."""
    parts = []
    if full:
        parts.append("# Conformance: pyrunc against runc\n\n"
                     "Generated by `make conformance` (`conformance/run`), a differential harness: every\n"
                     "scenario cites one requirement of runtime-spec v1.3.0, runs a busybox bundle under\n"
                     "pyrunc (*runtime*) and runc (*oracle*), and judges both only from outside\n"
                     "(/proc, cgroup files, probe output, state JSON, exit codes, hook records).\n"
                     "Do not edit by hand.\n")
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
        parts.append("## Regressions (runc passes, pyrunc fails)\n\n" + (
            "\n".join(f"- `{r['id']}` ({r['spec']}, {r['level']}): {_cell(r['detail'])[:300]}" for r in reg)
            or "None.") + "\n")
        only = runtime_only(rows)
        parts.append("## pyrunc passes, runc fails\n\n" + (
            "\n".join(f"- `{r['id']}` ({r['spec']}, {r['level']})" for r in only) or "None.") + "\n")
        parts.append("## Choices where the spec leaves room\n\n"
                     + "\n".join(f"- {what}: {why}" for what, why in CHOICES) + "\n")
        parts.append(FOREIGN_CONFIGS)
        parts.append("## All scenarios\n")
    parts.append(table(rows))
    return "\n".join(parts)
