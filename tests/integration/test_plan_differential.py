"""`pyrunc plan` against what `create` then really does, for every bundle of both corpora.

The plan is computed by create's own code where it can decide without doing (see
pyrunc/process/plan.py); this holds it to the rest. For each bundle, `plan --format json`
and then `create` (with `start`) run on it with a private --root, and plandiff.py compares the
plan's mounts, cgroup writes, capabilities, namespaces and rlimits with what the container got
(/proc/PID/mountinfo, cgroupfs, /proc/PID/status, /proc/PID/ns, /proc/PID/limits). A bundle
create refuses must be one the plan found problems with (or one load_config refuses, which
stops both); a plan with problems must be a bundle create refuses.

The corpora:
- conformance/: every scenario that creates a container; the scenario runs up to its first
  `create` or `run` (so everything it sets up on the host, namespaces to join, mounts for
  rbind, exists), its bundle is taken there, and the scenario itself goes no further;
- tests/fixtures/configs: the configs containerd, podman, Docker, crictl and `runc spec` wrote,
  adapted to this machine as test_foreign_configs.py adapts them, plus the seccomp variants.

The program is replaced by `sleep` (a long-lived process to read /proc of; nothing else in the
bundle changes). Also here: `plan` touches nothing, shown by strace.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.integration import plandiff
from tests.integration.test_foreign_configs import CASES as FOREIGN
from tests.integration.test_foreign_configs import CONFIGS, adapt

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.root, pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real containers)")]


# -- the conformance corpus -------------------------------------------------------------------

def _catalog():
    import sys

    sys.path.insert(0, str(REPO))
    from conformance import scenarios
    from conformance.harness import CATALOG

    scenarios.load_all()
    return CATALOG


CATALOG = _catalog()


class Captured(Exception):
    """The scenario reached its first create/run: its bundle is complete."""

    def __init__(self, args: tuple):
        super().__init__(args)
        self.args_ = args


def _capturing_ctx():
    from conformance.harness import Ctx

    class PlanCtx(Ctx):
        def cmd(self, *args, **kw):  # noqa: ANN001, ANN202 - the harness's signature
            if args and args[0] in ("create", "run"):
                if kw.get("write", True):
                    self.write_config()
                raise Captured(args)
            return super().cmd(*args, **kw)

    return PlanCtx


def _flags(args: tuple) -> list[str]:
    """The create flags that change what create does (--no-pivot, --no-new-keyring); a console
    socket, if the scenario had one, is replaced by the differential's own."""
    flags: list[str] = []
    it = iter(args[1:])
    for a in it:
        if a in ("--no-pivot", "--no-new-keyring"):
            flags.append(a)
        elif a in ("--console-socket", "--pid-file", "--bundle", "-b", "--preserve-fds", "--pidfd-socket"):
            next(it, None)
    return flags


@pytest.fixture(scope="module")
def conformance_template(tmp_path_factory):
    from conformance.harness import build_rootfs

    if not shutil.which("busybox") and not os.path.exists("/bin/busybox"):
        pytest.skip("busybox-static is not installed")
    return build_rootfs(tmp_path_factory.mktemp("conf-template") / "rootfs")


@pytest.mark.parametrize("sc", CATALOG, ids=[s.id for s in CATALOG])
def test_plan_matches_create_conformance(sc, conformance_template, tmp_path):
    from conformance.harness import Fail, Skip

    # Outside pytest's 0700 tmp: a container in a user namespace must reach its rootfs.
    work = Path(tempfile.mkdtemp(prefix="pyrunc-plan-"))
    work.chmod(0o755)
    ctx = _capturing_ctx()(plandiff.PYRUNC, "plan", sc, work, conformance_template)
    try:
        try:
            sc.fn(ctx)
        except Captured as c:
            outcome = _run_captured(ctx, c.args_, tmp_path)
        except (Fail, Skip, Exception) as e:  # noqa: BLE001 - a scenario that never creates anything
            pytest.skip(f"the scenario made no bundle: {type(e).__name__}: {str(e)[:200]}")
        else:
            pytest.skip("the scenario makes no container")
    finally:
        ctx.cleanup()
        from conformance.harness import mounts_under

        if not mounts_under(work):  # never rm -rf through a mount
            shutil.rmtree(work, ignore_errors=True)
    assert outcome.agrees, outcome


def _run_captured(ctx, args: tuple, tmp_path: Path):
    flags = _flags(args)
    cfg = json.loads((ctx.bundle / "config.json").read_text())
    process = cfg.get("process")
    if isinstance(process, dict):
        process["args"] = ["/bin/sleep", "1000"]
    (ctx.bundle / "config.json").write_text(json.dumps(cfg))
    return plandiff.differential(ctx.bundle, "plan-c1", ctx.work / "plan-root", flags)


# -- the foreign-config corpus ----------------------------------------------------------------

def _with_terminal(cfg: dict) -> dict:
    cfg = copy.deepcopy(cfg)
    cfg["process"]["terminal"] = True  # adapt() turns it off; back on, as `runc spec` wrote it
    return cfg


TERMINAL = [pytest.param("runc-spec.json", "with its terminal", _with_terminal, id="runc-spec+terminal")]


@pytest.mark.parametrize("fixture,variant,transform", FOREIGN + TERMINAL)
def test_plan_matches_create_foreign(fixture, variant, transform, rootfs_template, tmp_path):
    cfg = adapt(json.loads((CONFIGS / fixture).read_text()), f"/pyrunc-plan-{os.getpid()}-{fixture}")
    cfg = transform(cfg)
    cfg["process"]["args"] = ["/bin/sleep", "1000"]
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shutil.copytree(rootfs_template, bundle / "rootfs", symlinks=True)
    (bundle / "config.json").write_text(json.dumps(cfg))
    try:
        outcome = plandiff.differential(bundle, "plan-foreign", tmp_path / "root")
    finally:
        _remove_cgroup(cfg["linux"]["cgroupsPath"])
    assert outcome.kind == "compared", outcome
    assert outcome.agrees, outcome


def _remove_cgroup(path: str) -> None:
    from conformance.harness import remove_cgroups

    remove_cgroups(path.strip("/"))


# -- plan touches nothing ---------------------------------------------------------------------

# System calls that make or change something: processes, namespaces, mounts, files, cgroups.
FORBIDDEN = re.compile(r"^(?:\d+\s+)?(clone|clone3|fork|vfork|unshare|setns|mount|umount2|pivot_root|"
                       r"move_mount|open_tree|fsopen|fsmount|mount_setattr|mkdir|mkdirat|mknod|mknodat|"
                       r"unlink|unlinkat|rmdir|rename|renameat2?|symlink|symlinkat|link|linkat|chmod|"
                       r"fchmod|fchmodat|chown|fchown|fchownat|lchown|truncate|ftruncate|bpf|"
                       r"sethostname|setdomainname|setrlimit|prlimit64|capset|prctl)\(")
OPEN_FOR_WRITE = re.compile(r"^(?:\d+\s+)?(open|openat|openat2)\(.*(O_WRONLY|O_RDWR|O_CREAT|O_TRUNC)")


def test_plan_touches_nothing(rootfs_template, tmp_path):
    """strace -f of `pyrunc plan` (with seccomp, terminal, user namespace, resources): no process,
    namespace, mount, file, cgroup or limit is made or changed, and the --root stays absent."""
    if not shutil.which("strace"):
        pytest.skip("strace is not installed")
    cfg = json.loads((CONFIGS / "docker.json").read_text())
    cfg = adapt(cfg, f"/pyrunc-plan-strace-{os.getpid()}")
    cfg["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 50},
                                 "cpu": {"shares": 512}, "devices": [{"allow": False, "access": "rwm"}]}
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["process"]["terminal"] = True
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shutil.copytree(rootfs_template, bundle / "rootfs", symlinks=True)
    (bundle / "config.json").write_text(json.dumps(cfg))
    (bundle / "rootfs" / "etc").chmod(0o755)
    before = sorted(os.listdir(bundle / "rootfs"))
    mounts_before = Path("/proc/self/mountinfo").read_text()
    root = tmp_path / "state-root"
    trace = tmp_path / "trace"
    p = subprocess.run(["strace", "-f", "-qq", "-o", str(trace), plandiff.PYRUNC, "--root", str(root), "plan",
                        "--format", "json", "--console-socket", str(tmp_path / "no-such.sock"), "t1"],
                       cwd=bundle, capture_output=True, text=True, timeout=120)
    doc = json.loads(p.stdout)
    assert doc["mounts"] and doc["cgroup"]["writes"] and doc["seccomp"], doc["problems"]
    bad = []
    for line in trace.read_text().splitlines():
        call = line.split(None, 1)[1] if line[:1].isdigit() else line
        if "= -1" in call or "resumed>" in call:
            continue
        reads = (call.startswith("prctl(PR_GET") or "PR_CAPBSET_READ" in call
                 or re.match(r"prlimit64\(\d+, \w+, NULL,", call))
        if FORBIDDEN.match(call) and not reads:
            bad.append(call)
        elif OPEN_FOR_WRITE.match(call) and "/__pycache__/" not in call and "/dev/null" not in call:
            bad.append(call)
    assert bad == [], "\n".join(bad[:20])
    assert not root.exists()
    assert sorted(os.listdir(bundle / "rootfs")) == before
    assert Path("/proc/self/mountinfo").read_text() == mounts_before
    for d in doc["cgroup"]["mkdir"]:
        assert not os.path.exists(d), d


def test_the_differential_sees_a_wrong_plan(rootfs_template, tmp_path):
    """The comparison is not vacuous: a plan with one mount point, mount flag, propagation, cgroup
    value, device rule, capability, namespace or rlimit wrong is caught, on a real container."""
    cfg = adapt(json.loads((CONFIGS / "docker.json").read_text()), f"/pyrunc-plan-neg-{os.getpid()}")
    cfg["process"]["args"] = ["/bin/sleep", "1000"]
    cfg["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 50},
                                 "devices": [{"allow": False, "access": "rwm"}]}
    cfg["mounts"].append({"destination": "/data", "type": "bind", "source": str(tmp_path),
                          "options": ["rbind", "ro", "rshared"]})
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shutil.copytree(rootfs_template, bundle / "rootfs", symlinks=True)
    (bundle / "config.json").write_text(json.dumps(cfg))
    root = tmp_path / "root"
    plan = json.loads(plandiff.pyrunc(root, "plan", "--format", "json", "neg", cwd=bundle).stdout)
    assert plandiff.pyrunc(root, "create", "neg", cwd=bundle).returncode == 0
    try:
        pid = json.loads(plandiff.pyrunc(root, "state", "neg", cwd=bundle).stdout)["pid"]
        caps = plan["capabilities"]["installed"]
        assert plandiff.compare_mounts(plan, pid) == []
        assert plandiff.compare_cgroup(plan) == []
        assert plandiff.compare_caps(caps, pid, "created") == []
        assert plandiff.compare_namespaces(plan, pid) == [] and plandiff.compare_rlimits(plan, pid) == []

        def wrong(mutate):
            doc = copy.deepcopy(plan)
            mutate(doc)
            return doc

        data = next(i for i, m in enumerate(plan["mounts"]) if m["point"] == "/data")
        assert plandiff.compare_mounts(wrong(lambda d: d["mounts"].pop(3)), pid)
        assert plandiff.compare_mounts(wrong(lambda d: d["mounts"][data].update(flags="rw,relatime")), pid)
        assert plandiff.compare_mounts(wrong(lambda d: d["mounts"][data].update(propagation="private")), pid)
        mem = next(i for i, w in enumerate(plan["cgroup"]["writes"])
                   if w[0].endswith(("memory.limit_in_bytes", "memory.max")))
        assert plandiff.compare_cgroup(wrong(lambda d: d["cgroup"]["writes"][mem].__setitem__(1, str(32 << 20))))
        allow = next((w[0] for w in plan["cgroup"]["writes"] if w[0].endswith("devices.allow")), None)
        if allow is not None:  # cgroup v1 (v2 has a device program, no files)
            assert plandiff.compare_cgroup(wrong(lambda d: d["cgroup"]["writes"].append(
                [allow, "c 1:1 rwm", "set cgroup resources"])))
        assert plandiff.compare_caps(dict(caps, effective=caps["effective"] + ["CAP_SYS_ADMIN"]), pid, "x")
        assert plandiff.compare_namespaces(wrong(lambda d: d["namespaces"][1].update(action="host")), pid)
        assert plandiff.compare_rlimits(wrong(lambda d: d["rlimits"][0].update(soft=7)), pid)
    finally:
        plandiff.pyrunc(root, "delete", "--force", "neg", cwd=bundle)
        _remove_cgroup(cfg["linux"]["cgroupsPath"])
