"""Plot the latency distributions of a saved run: ``bench/plot results.json out.png``.

Needs matplotlib, which the project does not depend on: ``bench/plot``
creates ``bench/.venv-plot`` with it on first use and runs this file there.
"""

from __future__ import annotations

import json
import sys

COLORS = ("#d95f02", "#1b9e77")  # subject, oracle


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: plot.py RESULTS.json OUT.png", file=sys.stderr)
        return 2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(args[0], encoding="utf-8") as f:
        data = json.load(f)
    names = data["names"]
    rows = [r for r in data["results"] if not r.get("na") and r["unit"] == "s" and len(r["subject"]) > 2
            and not r["key"].startswith("seq")]
    seq = [r for r in data["results"] if r["key"] in ("seq100", "conc20") and not r.get("na")]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), gridspec_kw={"width_ratios": [3, 1]})
    ax = axes[0]
    for i, r in enumerate(rows):
        for j, (side, color) in enumerate(zip(("subject", "oracle"), COLORS, strict=True)):
            ms = [v * 1e3 for v in r[side]]
            pos = i * 3 + j
            ax.boxplot([ms], positions=[pos], widths=0.7, showfliers=False,
                       medianprops={"color": "black"}, boxprops={"color": color},
                       whiskerprops={"color": color}, capprops={"color": color})
            jitter = [pos + ((k * 37) % 11 - 5) * 0.04 for k in range(len(ms))]
            ax.scatter(jitter, ms, s=8, color=color, alpha=0.6, label=names[j] if i == 0 else None)
    ax.set_xticks([i * 3 + 0.5 for i in range(len(rows))])
    ax.set_xticklabels([r["title"].strip().replace("step: ", "") for r in rows], rotation=20, ha="right")
    ax.set_yscale("log")
    ax.set_ylabel("wall time per command (ms, log scale)")
    ax.set_title("latency distributions, alternating runs")
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend()
    ax2 = axes[1]
    for i, r in enumerate(seq):
        ratios = [a / b for a, b in zip(r["subject"], r["oracle"], strict=False) if b]
        ax2.scatter([i] * len(ratios), ratios, color=COLORS[0], s=18)
    ax2.axhline(1.0, color="gray", linestyle="--")
    ax2.set_xticks(range(len(seq)))
    ax2.set_xticklabels(["100 sequential\n(time ratio)", "20 concurrent\n(throughput ratio)"][:len(seq)])
    ax2.set_xlim(-0.5, len(seq) - 0.5)
    ax2.set_title(f"{names[0]}/{names[1]} per round")
    m = data["machine"]
    fig.suptitle(f"{m['subject']} vs {m['oracle']} on {m['cpu']} x{m['cpus']}, kernel {m['kernel']}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(args[1], dpi=110)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
