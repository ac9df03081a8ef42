"""``bench/compare``: pyrunc against runc on the same bundle, alternating, with warm-up.

Prints one row per metric: both runtimes' median with p10-p90 and the paired
ratio pyrunc/runc with its p10-p90 (each iteration measures both runtimes
back to back, first one then the other, swapping the order every time).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import asdict

from . import bundle as bundles
from . import report
from . import scenarios as sc
from .runtime import (
    Runtime,
    RuntimeFailed,
    become_subreaper,
    new_id,
    reap_zombies,
    runtime_works,
    sweep_leaked_cgroups,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENARIOS = ("run", "csd", "exec", "seq", "conc", "many", "rss", "seccomp", "userns")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runtime", default=os.path.join(REPO, ".venv", "bin", "pyrunc"),
                   help="command of the runtime under test (default: the repo's .venv/bin/pyrunc)")
    p.add_argument("--oracle", default="runc", help="command of the reference runtime (default: runc)")
    p.add_argument("--iterations", type=int, default=None,
                   help="measured iterations per single-command metric (default 30, quick 8)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up iterations (default 3, quick 1)")
    p.add_argument("--rounds", type=int, default=None,
                   help="rounds of the 100-sequential and 20-concurrent metrics (default 5, quick 2)")
    p.add_argument("--containers", type=int, default=None,
                   help="containers present for state/list (default 1000, quick 100)")
    p.add_argument("--only", default=",".join(SCENARIOS),
                   help=f"comma-separated subset of {','.join(SCENARIOS)}")
    p.add_argument("--json", metavar="FILE", help="write every sample and the machine description here")
    p.add_argument("--quick", action="store_true", help="fewer iterations, 100 containers")
    a = p.parse_args(argv)
    quick = a.quick
    a.iterations = a.iterations or (8 if quick else 30)
    a.warmup = a.warmup if a.warmup is not None else (1 if quick else 3)
    a.rounds = a.rounds or (2 if quick else 5)
    a.containers = a.containers or (100 if quick else 1000)
    a.only = [s for s in a.only.split(",") if s]
    unknown = set(a.only) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    return a


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Bench:
    """Holds the two runtimes, the bundles and the results of one comparison."""

    def __init__(self, args: argparse.Namespace, tmp: str):
        self.args = args
        self.tmp = tmp
        self.notes: list[str] = []
        self.results: list[sc.Result] = []
        self.subject = Runtime("pyrunc", shlex.split(args.runtime), os.path.join(tmp, "root-pyrunc"))
        self.oracle = Runtime("runc", shlex.split(args.oracle), os.path.join(tmp, "root-runc"))
        self.subject.name = os.path.basename(self.subject.argv[0])
        self.oracle.name = os.path.basename(self.oracle.argv[0])
        if self.oracle.name == self.subject.name:  # two pyrunc checkouts, before and after
            self.oracle.name += " (oracle)"  # every per-runtime dict below is keyed by name
        self.pair = (self.subject, self.oracle)
        rootfs = os.path.join(tmp, "rootfs")
        bundles.make_rootfs(rootfs)
        self.bundle = bundles.make_bundle(os.path.join(tmp, "bundle"), bundles.base_config(), rootfs)
        self.seccomp_bundle = bundles.make_bundle(os.path.join(tmp, "bundle-seccomp"),
                                                  bundles.seccomp_heavy_config(), rootfs)
        self.userns_bundle = bundles.make_bundle(os.path.join(tmp, "bundle-userns"),
                                                 bundles.userns_config(), rootfs)
        sleeper = bundles.base_config()
        sleeper["process"]["args"] = ["sleep", "3600"]
        self.sleep_bundle = bundles.make_bundle(os.path.join(tmp, "bundle-sleep"), sleeper, rootfs)

    def check_runtimes(self) -> None:
        """Fail early if a runtime does not start; work around a stale editable install."""
        err = runtime_works(self.subject)
        if err and "No module named 'pyrunc'" in err and os.path.isdir(os.path.join(REPO, "pyrunc")):
            self.subject.env = dict(self.subject.env, PYTHONPATH=REPO)
            self.notes.append(f"{self.subject.describe()} could not import pyrunc (stale editable "
                              f"install?); ran it with PYTHONPATH={REPO}")
            err = runtime_works(self.subject)
        if err:
            raise SystemExit(f"{self.subject.describe()} does not run: {err}")
        err = runtime_works(self.oracle)
        if err:
            raise SystemExit(f"{self.oracle.describe()} does not run: {err}")

    def add(self, result: sc.Result) -> None:
        self.results.append(result)
        r = asdict(result)
        table = report.rows([r], (self.subject.name, self.oracle.name))
        log(" | ".join(table[1]))

    # -- metrics -----------------------------------------------------------------

    def run(self) -> None:
        a = self.args
        log("run of /bin/true")
        s, o = sc.alternate(a.iterations, a.warmup, self.pair, lambda rt: sc.run_true(rt, self.bundle))
        self.add(sc.Result("run", "run /bin/true", "s", "<= 1.0", s, o))

    def exec(self) -> None:
        """`exec` of /bin/true in a running container of each runtime (no target in issue 7:
        it is how health checks and `kubectl exec` reach the runtime)."""
        a = self.args
        log("exec of /bin/true in a running container")
        cids = {}
        for rt in self.pair:
            cids[rt.name] = new_id("exec")
            rt.call("run", "--detach", "--bundle", self.sleep_bundle, cids[rt.name])
        try:
            s, o = sc.alternate(a.iterations, a.warmup, self.pair,
                                lambda rt: rt.call("exec", cids[rt.name], "/bin/true"))
        finally:
            for rt in self.pair:
                rt.delete_force(cids[rt.name])
        self.add(sc.Result("exec", "exec /bin/true (running container)", "s", "", s, o))

    def csd(self) -> None:
        a = self.args
        log("create + start + wait + delete")
        samples: dict[str, dict[str, list[float]]] = {self.subject.name: {}, self.oracle.name: {}}

        def measure(rt: Runtime) -> float:
            steps = sc.create_start_delete(rt, self.bundle, self.tmp)
            for k, v in steps.items():
                samples[rt.name].setdefault(k, []).append(v)
            return steps["total"]

        s, o = sc.alternate(a.iterations, a.warmup, self.pair, measure)
        self.add(sc.Result("csd", "create+start+delete", "s", "<= 1.0", s, o))
        n = a.iterations  # the warm-up samples come first; keep only the measured ones
        for step in ("create", "start", "delete"):
            self.add(sc.Result(f"csd.{step}", f"  step: {step}", "s", "",
                               samples[self.subject.name][step][-n:],
                               samples[self.oracle.name][step][-n:]))

    def seq(self) -> None:
        a = self.args
        log(f"100 sequential runs x {a.rounds} rounds")
        failures: list[str] = []
        s, o = sc.alternate(a.rounds, 0, self.pair,
                            lambda rt: sc.sequential_runs(rt, self.bundle, 100, failures))
        self.add(sc.Result("seq100", "100 sequential runs (total)", "s", "<= 1.0", s, o,
                           note=f"{len(failures)} failed" if failures else ""))
        self.notes += [f"seq100 failure: {f}" for f in failures]

    def conc(self) -> None:
        a = self.args
        log(f"20 concurrent runs x {a.rounds} rounds")
        failures: list[str] = []
        s, o = sc.alternate(a.rounds, 1, self.pair,
                            lambda rt: sc.concurrent_runs(rt, self.bundle, 20, failures))
        self.add(sc.Result("conc20", "20 concurrent runs (throughput)", "1/s", ">= 1.0", s, o,
                           note="successful runs/s" + (f", {len(failures)} rounds with failures"
                                                        if failures else "")))
        self.notes += [f"conc20 failure: {f}" for f in failures]

    def rss(self) -> None:
        a = self.args
        n = max(5, a.iterations // 3)
        log(f"memory of the waiting init x {n}")
        mem: dict[str, list[tuple[int, int]]] = {self.subject.name: [], self.oracle.name: []}

        def measure(rt: Runtime) -> float:
            rss, pss = sc.waiting_init_memory(rt, self.bundle)
            mem[rt.name].append((rss, pss))
            return float(rss)

        s, o = sc.alternate(n, 1, self.pair, measure)
        self.add(sc.Result("rss", "waiting init VmRSS", "kB", "<= 1.5", s, o))
        self.add(sc.Result("pss", "waiting init Pss", "kB", "",
                           [float(p) for _, p in mem[self.subject.name][-n:]],
                           [float(p) for _, p in mem[self.oracle.name][-n:]]))

    def many(self) -> None:
        a = self.args
        n = a.containers
        # Probe the cost per container on a small batch before committing to n of each.
        probe = min(20, n)
        log(f"probing memory of {probe} created containers per runtime")
        per_kb = 0.0
        failures: list[str] = []
        for rt in self.pair:
            pop = sc.populate(rt, self.bundle, self.tmp, probe, failures)
            per_kb += max(pop.mem_drop_kb, pop.pss_kb) / probe
            rt.cleanup()
        budget = sc.mem_available_kb() * 0.6
        if per_kb * n > budget:
            fit = max(10, int(budget / per_kb))
            self.notes.append(f"{n} containers per runtime would need ~{per_kb * n / 1024:.0f} MiB; "
                              f"used {fit}")
            n = fit
        log(f"creating {n} containers per runtime (4 at a time)")
        pops = {}
        for rt in self.pair:
            pops[rt.name] = sc.populate(rt, self.bundle, self.tmp, n, failures)
            p = pops[rt.name]
            log(f"{rt.name}: {n} created in {p.create_wall:.1f} s, MemAvailable -{p.mem_drop_kb / 1024:.0f} MiB,"
                f" inits' Pss {p.pss_kb / 1024:.0f} MiB")
        s_ids, o_ids = pops[self.subject.name].ids, pops[self.oracle.name].ids
        k = {"i": 0}

        def state(rt: Runtime) -> float:
            ids = s_ids if rt is self.subject else o_ids
            k["i"] += 1
            return rt.call("state", ids[(k["i"] * 7919) % len(ids)])

        s, o = sc.alternate(a.iterations, a.warmup, self.pair, state)
        self.add(sc.Result("state", f"state with {n} present", "s", "<= 1.0", s, o))
        m = max(5, a.iterations // 3)
        s, o = sc.alternate(m, 1, self.pair, lambda rt: rt.call("list"))
        self.add(sc.Result("list", f"list with {n} present", "s", "", s, o))
        for rt in self.pair:
            p = pops[rt.name]
            self.notes.append(f"{rt.name}: {n} created containers: creation {p.create_wall:.1f} s "
                              f"(4 parallel), MemAvailable dropped {p.mem_drop_kb / 1024:.0f} MiB, "
                              f"inits' summed Pss {p.pss_kb / 1024:.0f} MiB "
                              f"({p.pss_kb / max(1, n):.0f} kB each)")
        self.add(sc.Result("many.mem", f"memory held by {n} created", "kB", "",
                           [float(pops[self.subject.name].mem_drop_kb)],
                           [float(max(1, pops[self.oracle.name].mem_drop_kb))],
                           note="MemAvailable drop, one sample"))
        self.notes += [f"many: create failure (retried): {f}" for f in failures]
        log("deleting them")
        t0 = time.perf_counter()
        for rt in self.pair:
            left = rt.cleanup()
            if left:
                self.notes.append(f"{rt.name}: {len(left)} containers could not be deleted")
        log(f"deleted in {time.perf_counter() - t0:.1f} s")

    def optional(self, key: str, title: str, bundle: str) -> None:
        """A config pyrunc may not support yet: try once, measure only if both runtimes run it."""
        a = self.args
        log(f"{title}: probing")
        for rt in (self.oracle, self.subject):
            try:
                sc.run_true(rt, bundle)
            except RuntimeFailed as e:
                self.add(sc.Result(key, title, "s", "<= 1.0" if key == "seccomp" else "",
                                   na=f"{rt.name}: {e.reason}"))
                return
        s, o = sc.alternate(a.iterations, a.warmup, self.pair, lambda rt: sc.run_true(rt, bundle))
        self.add(sc.Result(key, title, "s", "<= 1.0" if key == "seccomp" else "", s, o))

    def seccomp(self) -> None:
        n = len(bundles.syscall_names())
        self.optional("seccomp", f"run, seccomp-heavy ({n} names)", self.seccomp_bundle)

    def userns(self) -> None:
        self.optional("userns", "run, user namespace", self.userns_bundle)

    def cleanup(self) -> None:
        for rt in self.pair:
            left = rt.cleanup()
            if left:
                log(f"WARNING: {rt.name} left {len(left)} containers under {rt.root}: {left[:5]}")
        leaked = sweep_leaked_cgroups()
        if leaked:
            msg = (f"{len(leaked)} container(s) had no state but a live cgroup (killed and removed "
                   f"by the benchmark): {', '.join(leaked[:5])}")
            log(f"WARNING: {msg}")
            self.notes.append(msg)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench/compare needs root (it creates containers with both runtimes)", file=sys.stderr)
        return 2
    become_subreaper()
    tmp = tempfile.mkdtemp(prefix="pyrunc-bench-")
    os.chmod(tmp, 0o711)  # the user-namespace container's root (uid 100000) must reach the rootfs
    bench = None
    try:
        bench = Bench(args, tmp)
        bench.check_runtimes()
        machine = report.machine(REPO, bench.subject.argv, bench.oracle.argv, bench.subject.env)
        if machine["pyrunc_py_without_pyc"] != "0":
            bench.notes.append(f"{machine['pyrunc_py_without_pyc']} pyrunc modules have no .pyc "
                               "(run `.venv/bin/python -m compileall -q pyrunc` first)")
        names = (bench.subject.name, bench.oracle.name)
        t0 = time.perf_counter()
        for key in SCENARIOS:
            if key in args.only:
                try:
                    getattr(bench, key)()
                except RuntimeFailed as e:
                    log(f"{key}: FAILED: {e}")
                    bench.notes.append(f"{key} failed: {e}")
                finally:
                    bench.cleanup()
        elapsed = time.perf_counter() - t0
        data = {"names": list(names), "machine": machine, "notes": bench.notes,
                "args": {k: v for k, v in vars(args).items()}, "elapsed_s": elapsed,
                "results": [asdict(r) for r in bench.results]}
        table = report.rows(data["results"], names)
        print()
        print(report.text_table(table))
        print()
        for k, v in machine.items():
            print(f"{k}: {v}")
        for note in bench.notes:
            print(f"note: {note}")
        print(f"elapsed: {elapsed:.0f} s")
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1)
        return 0
    finally:
        if bench is not None:
            bench.cleanup()
        reap_zombies()
        shutil.rmtree(tmp, ignore_errors=True)
