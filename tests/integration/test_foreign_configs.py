"""Configs other tools wrote, run under pyrunc and under runc 1.1.5: the outcomes must match.

Every `*.json` in tests/fixtures/configs is a config.json a real caller handed to
runc on this host (containerd's ctr with and without --seccomp, containerd's CRI
plugin for a pod sandbox and a container, podman, Docker, `runc spec` and
`runc spec --rootless`; CAPTURED.md says which version wrote which and how), and
tests/fixtures/seccomp adds deny-by-default profiles of older vintages.

Each config is adapted to this machine only where it names things that do not
exist here, and is otherwise kept as the tool wrote it (namespaces, seccomp,
capabilities, masked and read-only paths, sysctls, devices, resources):

- `root.path` becomes a local busybox rootfs; the program becomes PROBE, without a terminal;
- a bind mount whose source does not exist here is dropped (the callers' per-container
  files: resolv.conf, hosts, hostname, /dev/shm, .containerenv);
- a namespace `path` that does not exist (the CRI container joins its sandbox's, by pid)
  becomes a new namespace of that type;
- rlimits are lowered to this process's hard limits and `oomScoreAdj` is raised to its own:
  root here lacks CAP_SYS_RESOURCE, so neither runtime could set the caller's values;
- a hook whose program is not here (dockerd's /proc/PID/exe) is dropped;
- `cgroupsPath` is a unique name per runtime and run, so runs cannot collide.

Then runc and pyrunc each `run` their own copy: runc must run it (these tools
ran it with runc when they wrote it, so a runc failure means a bad adaptation)
and pyrunc must give the same exit status and output; anything that differs is a
defect (issue 12's defects 1 and 4 showed up here first: the 2019 profile with
noNewPrivileges false, and the `/sys` rbind of `runc spec --rootless`). The CRI pair is also run as the
CRI runs it: the container joins its sandbox's namespaces.
"""

from __future__ import annotations

import copy
import json
import os
import resource
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.root]

CONFIGS = REPO / "tests" / "fixtures" / "configs"
SECCOMP = REPO / "tests" / "fixtures" / "seccomp"
PROBE = 'id; grep -E "^(Cap|Seccomp|NoNewPrivs)" /proc/self/status; ls /; echo ok'
_serial = iter(range(1_000_000))


def _bind(m: dict) -> bool:
    return m.get("type") == "bind" or any(o in ("bind", "rbind") for o in m.get("options") or [])


def _hook_here(h: dict) -> bool:
    path = h.get("path", "")
    return not path.startswith("/proc/") and os.path.exists(path)


def adapt(cfg: dict, cgroup: str) -> dict:
    """The caller's config with only what names this machine's absent things changed (module doc)."""
    cfg = copy.deepcopy(cfg)
    cfg["root"]["path"] = "rootfs"
    proc = cfg["process"]
    proc["args"] = ["sh", "-c", PROBE]
    proc["terminal"] = False
    proc.pop("consoleSize", None)
    cfg["mounts"] = [m for m in cfg.get("mounts") or []
                     if not _bind(m) or os.path.exists(m.get("source", ""))]
    for rl in proc.get("rlimits") or []:
        _, hard = resource.getrlimit(getattr(resource, rl["type"]))
        if hard != resource.RLIM_INFINITY:
            rl["hard"] = min(rl["hard"], hard)
            rl["soft"] = min(rl["soft"], rl["hard"])
    if "oomScoreAdj" in proc:
        own = int(Path("/proc/self/oom_score_adj").read_text())
        proc["oomScoreAdj"] = max(proc["oomScoreAdj"], own)
    hooks = cfg.get("hooks") or {}
    for phase in list(hooks):
        hooks[phase] = [h for h in hooks[phase] if _hook_here(h)]
        if not hooks[phase]:
            del hooks[phase]
    if "hooks" in cfg and not hooks:
        del cfg["hooks"]
    lin = cfg.setdefault("linux", {})
    for ns in lin.get("namespaces") or []:
        if "path" in ns and not os.path.exists(ns["path"]):
            del ns["path"]
    lin["cgroupsPath"] = cgroup
    return cfg


def with_seccomp(name: str, profile: str, nnp: bool):
    def make(cfg: dict) -> dict:
        cfg = copy.deepcopy(cfg)
        cfg["linux"]["seccomp"] = json.loads((SECCOMP / profile).read_text())
        cfg["process"]["noNewPrivileges"] = nnp
        return cfg
    return name, make


def _keep(cfg: dict) -> dict:
    return cfg


# (config file, variant name, transformation)
CASES = [pytest.param(f.name, "as captured", _keep, id=f.stem)
         for f in sorted(CONFIGS.glob("*.json"))]
CASES += [
    pytest.param("runc-spec.json", *with_seccomp("2019 profile, noNewPrivileges false",
                                                 "deny-by-default-2019.json", False),
                 id="runc-spec+seccomp-2019-nnp-false"),
    pytest.param("runc-spec.json", *with_seccomp("2019 profile, noNewPrivileges true",
                                                 "deny-by-default-2019.json", True),
                 id="runc-spec+seccomp-2019-nnp-true"),
    pytest.param("docker.json", *with_seccomp("Docker with the 2019 profile", "deny-by-default-2019.json", False),
                 id="docker+seccomp-2019"),
]


def _run(rt, cfg: dict, bundle: Path, rootfs_template: Path, cid: str):
    bundle.mkdir()
    shutil.copytree(rootfs_template, bundle / "rootfs", symlinks=True)
    (bundle / "config.json").write_text(json.dumps(cfg, indent=1))
    return rt("run", cid, cwd=str(bundle), timeout=60)


def _warnings_out(text: str) -> str:
    return "\n".join(ln for ln in text.splitlines() if "level=warning" not in ln)


@pytest.mark.parametrize("fixture,variant,transform", CASES)
def test_foreign_config_runs_as_under_runc(pyrunc, runc, tmp_path, rootfs_template, fixture, variant, transform):
    original = transform(json.loads((CONFIGS / fixture).read_text()))
    results = {}
    for rt in (runc, pyrunc):
        cgroup = f"/pyrunc-foreign-{os.getpid()}-{next(_serial)}"
        cfg = adapt(original, cgroup)
        results[rt.name] = _run(rt, cfg, tmp_path / rt.name, rootfs_template, f"foreign-{next(_serial)}")
    r, p = results["runc"], results["pyrunc"]
    detail = (f"{fixture} ({variant})\nrunc: exit {r.returncode}\n{r.stdout}{r.stderr}\n"
              f"pyrunc: exit {p.returncode}\n{p.stdout}{_warnings_out(p.stderr)}")
    # Every config here ran under runc when its tool wrote it; runc failing means a bad adaptation.
    assert r.returncode == 0 and r.stdout.rstrip().endswith("ok"), detail
    assert (p.returncode, p.stdout) == (r.returncode, r.stdout), detail


def test_cri_pod_container_joins_its_sandbox(pyrunc, runc, tmp_path, rootfs_template):
    """The CRI container config joins the sandbox's namespaces by /proc/PID/ns path, as the CRI does.

    The sandbox config runs detached (its program a long sleep), then the container
    config runs with the captured paths pointed at that sandbox's init: the probe must
    see the sandbox's init as its pid 1, and both runtimes must give the same output.
    """
    sandbox = json.loads((CONFIGS / "cri-sandbox.json").read_text())
    container = json.loads((CONFIGS / "cri-container.json").read_text())
    assert {ns.get("path", "").rsplit("/", 1)[-1] for ns in container["linux"]["namespaces"]} >= {"pid", "ipc"}
    outputs = {}
    for rt in (runc, pyrunc):
        sb = adapt(sandbox, f"/pyrunc-foreign-{os.getpid()}-{next(_serial)}")
        sb["process"]["args"] = ["sleep", "1000"]
        sid = f"foreign-sb-{next(_serial)}"
        bundle = tmp_path / f"{rt.name}-sandbox"
        bundle.mkdir()
        shutil.copytree(rootfs_template, bundle / "rootfs", symlinks=True)
        (bundle / "config.json").write_text(json.dumps(sb))
        d = rt("run", "-d", sid, cwd=str(bundle), timeout=60)
        assert d.returncode == 0, f"{rt.name}: {d.stderr}"
        pid = rt.state(sid)["pid"]
        ctr = copy.deepcopy(container)
        for ns in ctr["linux"]["namespaces"]:
            if ns.get("path", "").startswith("/proc/0/"):
                ns["path"] = ns["path"].replace("/proc/0/", f"/proc/{pid}/", 1)
        cfg = adapt(ctr, f"/pyrunc-foreign-{os.getpid()}-{next(_serial)}")
        cfg["process"]["args"] = ["sh", "-c", f"cat /proc/1/comm; hostname; {PROBE}"]
        outputs[rt.name] = _run(rt, cfg, tmp_path / f"{rt.name}-container", rootfs_template,
                                f"foreign-{next(_serial)}")
        assert rt("delete", "--force", sid).returncode == 0
    r, p = outputs["runc"], outputs["pyrunc"]
    detail = f"runc: exit {r.returncode}\n{r.stdout}{r.stderr}\npyrunc: exit {p.returncode}\n{p.stdout}{p.stderr}"
    assert r.returncode == 0 and r.stdout.startswith("sleep\n"), detail
    assert (p.returncode, p.stdout) == (r.returncode, r.stdout), detail


@pytest.mark.parametrize("fixture,variant,transform", CASES)
def test_foreign_config_exec_as_under_runc(pyrunc, runc, tmp_path, rootfs_template, fixture, variant, transform):
    """`exec PROBE` into the running container (callers' exec: the config's process, new args)."""
    original = transform(json.loads((CONFIGS / fixture).read_text()))
    results = {}
    for rt in (runc, pyrunc):
        cfg = adapt(original, f"/pyrunc-foreign-{os.getpid()}-{next(_serial)}")
        cfg["process"]["args"] = ["sleep", "1000"]
        cid = f"foreign-{next(_serial)}"
        bundle = tmp_path / rt.name
        bundle.mkdir()
        shutil.copytree(rootfs_template, bundle / "rootfs", symlinks=True)
        (bundle / "config.json").write_text(json.dumps(cfg))
        d = rt("run", "-d", cid, cwd=str(bundle), timeout=60)
        results[rt.name] = rt("exec", cid, "sh", "-c", PROBE, timeout=60) if d.returncode == 0 else d
        rt("delete", "--force", cid)
    r, p = results["runc"], results["pyrunc"]
    detail = (f"{fixture} ({variant}), exec\nrunc: exit {r.returncode}\n{r.stdout}{r.stderr}\n"
              f"pyrunc: exit {p.returncode}\n{p.stdout}{_warnings_out(p.stderr)}")
    assert r.returncode == 0 and r.stdout.rstrip().endswith("ok"), detail
    assert (p.returncode, p.stdout) == (r.returncode, r.stdout), detail
