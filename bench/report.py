"""Machine description and the results table (plain text for the terminal, Markdown for docs)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

from .stats import paired_ratios, summary

UNITS = {"s": ("ms", 1e3), "1/s": ("ctr/s", 1.0), "kB": ("MB", 1 / 1024)}


def _first_line(argv: list[str], env: dict[str, str] | None = None) -> str:
    try:
        p = subprocess.run(argv, capture_output=True, env=env, timeout=30, check=False)
    except OSError as e:
        return f"unavailable ({e.strerror})"
    out = (p.stdout or p.stderr).decode(errors="replace").strip().splitlines()
    return out[0] if out else ""


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit(repo: str) -> str:
    head = _first_line(["git", "-C", repo, "rev-parse", "HEAD"])
    p = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--", "pyrunc"],
                       capture_output=True, check=False)
    dirty = bool(p.stdout.strip())
    return head + (" (+ uncommitted changes in pyrunc/)" if dirty else "")


def missing_bytecode(repo: str) -> int:
    """How many pyrunc/*.py have no cached .pyc (each costs a compile on every run here)."""
    tag = sys.implementation.cache_tag
    missing = 0
    for d, _, files in os.walk(os.path.join(repo, "pyrunc")):
        for name in files:
            if name.endswith(".py"):
                pyc = os.path.join(d, "__pycache__", f"{name[:-3]}.{tag}.pyc")
                if not os.path.exists(pyc):
                    missing += 1
    return missing


def machine(repo: str, subject_argv: list[str], oracle_argv: list[str],
            subject_env: dict[str, str]) -> dict[str, str]:
    """Everything a reader needs to compare this run with another one."""
    mem = ""
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) // 1024} MiB"
    py = os.path.join(os.path.dirname(subject_argv[0]), "python")
    return {
        "cpu": cpu_model(),
        "cpus": str(os.cpu_count()),
        "memory": mem,
        "kernel": platform.release(),
        "os": _first_line(["sh", "-c", ". /etc/os-release && echo \"$PRETTY_NAME\""]),
        "python": _first_line([py if os.path.exists(py) else sys.executable, "-V"]),
        "subject": _first_line([*subject_argv, "--version"], subject_env),
        "oracle": _first_line([*oracle_argv, "--version"]),
        "pyrunc_commit": git_commit(repo),
        "pyrunc_py_without_pyc": str(missing_bytecode(repo)),
        "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE", ""),
    }


def _fmt(v: float, unit: str) -> str:
    label, scale = UNITS[unit]
    x = v * scale
    return f"{x:.1f}" if x < 1000 else f"{x:.0f}"


def _dist(values: list[float], unit: str) -> str:
    s = summary(values)
    return f"{_fmt(s['median'], unit)} [{_fmt(s['p10'], unit)}-{_fmt(s['p90'], unit)}]"


def verdict(target: str, ratio: float) -> str:
    if not target:
        return ""
    op, _, num = target.partition(" ")
    limit = float(num)
    ok = ratio <= limit if op == "<=" else ratio >= limit
    return "yes" if ok else "NO"


def rows(results: list[dict], names: tuple[str, str]) -> list[list[str]]:
    """Table rows: metric, unit, both distributions, paired ratio with p10-p90, target, met."""
    head = ["metric", "unit", f"{names[0]} median [p10-p90]", f"{names[1]} median [p10-p90]",
            f"ratio {names[0]}/{names[1]} [p10-p90]", "target", "met"]
    out = [head]
    for r in results:
        if r.get("na"):
            out.append([r["title"], "", "n/a", "n/a", f"n/a: {r['na']}", r["target"], ""])
            continue
        ratios = paired_ratios(r["subject"], r["oracle"])
        rs = summary(ratios)
        out.append([r["title"] + (f" ({r['note']})" if r.get("note") else ""), UNITS[r["unit"]][0],
                    _dist(r["subject"], r["unit"]), _dist(r["oracle"], r["unit"]),
                    f"{rs['median']:.2f} [{rs['p10']:.2f}-{rs['p90']:.2f}]",
                    r["target"], verdict(r["target"], rs["median"])])
    return out


def text_table(table: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(table: list[list[str]]) -> str:
    lines = ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in table[1:]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.report results.json``: print the Markdown table and machine of a saved run."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m bench.report RESULTS.json", file=sys.stderr)
        return 2
    with open(args[0], encoding="utf-8") as f:
        data = json.load(f)
    names = (data["names"][0], data["names"][1])
    print(markdown_table(rows(data["results"], names)))
    print()
    for k, v in data["machine"].items():
        print(f"- {k}: {v}")
    for note in data.get("notes", []):
        print(f"- note: {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
