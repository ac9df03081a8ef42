"""Hostile input: generated and mutated configs, hostile ids, corrupted state files.

Property for every config: `pyrunc create` either succeeds (then `delete --force` succeeds) or
exits 1 with one non-empty line per problem; never a traceback or "internal error", never a hang,
never a leftover (state dir, cgroup dir, mount mentioning the bundle, process in the cgroup).

Host safety comes first (config.json is trusted in our threat model, so these are robustness
tests, not attacks): after generation every config is pinned so that no bug can touch the host:
root.path stays the bundle's rootfs, cgroupsPath stays ours, the mount/pid/uts/ipc/network
namespaces are always new (never joined by path), hooks, sysctl and netDevices are dropped and
absolute bind sources point at a scratch directory.

Example counts: FUZZ_EXAMPLES (default 40 per strategy) keeps `make test` short; `make fuzz`
raises it.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc.spec._schemas import SCHEMAS
from tests.conftest import REPO, Bundle, mounts_snapshot, run_to_files
from tests.integration.test_bad_input import cgroup_dirs_named
from tests.integration.test_crash import processes_in_cgroup

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
FIXTURES = sorted((REPO / "tests" / "fixtures" / "configs").glob("*.json"))
SCHEMA = SCHEMAS["config"]
DEFS = SCHEMA["$defs"]
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=False, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

# Strings that probe path handling, encodings and parsers.
HOSTILE_STRINGS = ["", "/", "..", "../../../../etc", "/proc/self/fd/3", "a\nb", "\ud800", "x" * 5000,
                   "/dev/null", "rootfs", "%s%n", "\u202e", "/tmp/../..", "-1", "ro,rw", "="]
HOSTILE_NUMBERS = [-1, 0, 1, 2**31, 2**32, 2**63, -(2**63) - 1, 10**30, 0.5, 1e308, True, False]
SAFE_NS = ("mount", "pid", "uts", "ipc", "network")


# -- generating values from our schema ------------------------------------------------------------

def from_schema(node: dict, depth: int = 0) -> st.SearchStrategy:
    """A loose generator: the schema's shape, with values that are sometimes invalid on purpose."""
    if depth > 6:
        return st.none()
    if "$ref" in node:
        return st.deferred(lambda: from_schema(DEFS[node["$ref"].rsplit("/", 1)[1]], depth + 1))
    if "enum" in node:
        return st.one_of(st.sampled_from(node["enum"]), json_scalar())
    if "const" in node:
        return st.just(node["const"])
    for key in ("oneOf", "anyOf", "allOf"):
        if key in node:
            return st.one_of(*[from_schema(n, depth + 1) for n in node[key]])
    typ = node.get("type")
    if isinstance(typ, list):
        return st.one_of(*[from_schema(dict(node, type=t), depth) for t in typ])
    if typ == "object" or "properties" in node:
        props = node.get("properties", {})
        if not props:
            return st.dictionaries(st.text(max_size=8), json_scalar(), max_size=3)
        required = [k for k in node.get("required", []) if k in props]
        optional = [k for k in props if k not in required]
        return st.fixed_dictionaries(
            {k: from_schema(props[k], depth + 1) for k in required},
            optional={k: from_schema(props[k], depth + 1) for k in optional})
    if typ == "array":
        return st.lists(from_schema(node.get("items", {}), depth + 1), max_size=3)
    if typ == "string":
        return st.one_of(st.text(max_size=20), st.sampled_from(HOSTILE_STRINGS))
    if typ == "integer":
        lo, hi = node.get("minimum"), node.get("maximum")
        return st.one_of(st.integers(min_value=lo, max_value=hi), st.sampled_from(HOSTILE_NUMBERS))
    if typ == "number":
        return st.one_of(st.floats(allow_nan=False), st.sampled_from(HOSTILE_NUMBERS))
    if typ == "boolean":
        return st.one_of(st.booleans(), st.sampled_from([0, 1, "true"]))
    return json_scalar()


def json_scalar() -> st.SearchStrategy:
    return st.one_of(st.none(), st.booleans(), st.sampled_from(HOSTILE_NUMBERS),
                     st.sampled_from(HOSTILE_STRINGS), st.integers(), st.text(max_size=10))


def json_value() -> st.SearchStrategy:
    return st.recursive(json_scalar(), lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=8)


# Sections of a config a schema-shaped value replaces (pointer, schema node).
SECTIONS = [
    (("process",), DEFS["process"]),
    (("process", "user"), DEFS["user"]),
    (("process", "rlimits"), {"type": "array", "items": DEFS["rlimit"]}),
    (("process", "capabilities"), DEFS["capabilities"]),
    (("mounts",), {"type": "array", "items": DEFS["mount"]}),
    (("linux", "resources"), DEFS["resources"]),
    (("linux", "devices"), {"type": "array", "items": DEFS["device"]}),
    (("linux", "namespaces"), {"type": "array", "items": DEFS["namespace"]}),
    (("linux", "uidMappings"), DEFS["idMappings"]),
    (("linux", "seccomp"), DEFS["seccomp"]),
    (("linux",), DEFS["linux"]),
    (("root",), DEFS["root"]),
    ((), SCHEMA),
]


# -- pinning: no generated config may reach the host ---------------------------------------------

def pin(cfg: object, bundle: Bundle, scratch: Path) -> object:
    """Undo everything that could touch the host if pyrunc had a bug (see the module docstring)."""
    if not isinstance(cfg, dict):
        return cfg
    cfg.pop("hooks", None)
    if isinstance(cfg.get("root"), dict):
        cfg["root"]["path"] = "rootfs"
    elif "root" not in cfg:
        cfg["root"] = {"path": "rootfs"}
    proc = cfg.get("process")
    if isinstance(proc, dict):
        proc["terminal"] = False  # a console would need a socket; keep the failure meaningful
    lx = cfg.get("linux")
    if isinstance(lx, dict):
        lx["cgroupsPath"] = bundle.config["linux"]["cgroupsPath"]
        for key in ("sysctl", "netDevices", "intelRdt"):
            lx.pop(key, None)
        ns = lx.get("namespaces")
        if isinstance(ns, list):
            kept = [n for n in ns if not (isinstance(n, dict) and (n.get("type") in SAFE_NS or "path" in n))]
            lx["namespaces"] = kept + [{"type": t} for t in SAFE_NS]
        else:
            lx["namespaces"] = [{"type": t} for t in SAFE_NS]
    elif "linux" not in cfg:
        cfg["linux"] = {"cgroupsPath": bundle.config["linux"]["cgroupsPath"],
                        "namespaces": [{"type": t} for t in SAFE_NS]}
    mounts = cfg.get("mounts")
    if isinstance(mounts, list):
        for m in mounts:
            if isinstance(m, dict) and isinstance(m.get("source"), str) and m["source"].startswith("/"):
                m["source"] = str(scratch)
    return cfg


def set_in(cfg: dict, pointer: tuple, value: object) -> None:
    node = cfg
    for key in pointer[:-1]:
        node = node.setdefault(key, {})
    node[pointer[-1]] = value


# -- the property ------------------------------------------------------------------------------

def check_create(pyrunc, bundle: Bundle, text: str) -> None:
    """create; then the outcome property and the no-leftover property."""
    (bundle.path / "config.json").write_text(text)
    tag = bundle.config["linux"]["cgroupsPath"]
    before = mounts_snapshot(str(bundle.path))
    try:
        p = pyrunc("create", "fz", cwd=bundle.path, timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"create hung on: {text[:2000]}") from None
    bad = ("Traceback" in p.stderr or "internal error" in p.stderr.lower())
    ok_shape = p.returncode == 0 or (p.returncode == 1 and p.stderr.strip()
                                     and all(line.strip() for line in p.stderr.strip().splitlines()))
    if p.returncode == 0:
        d = pyrunc("delete", "--force", "fz")
        assert d.returncode == 0, d.stderr
    leftovers = []
    deadline = time.monotonic() + 5  # killed processes may take a moment to leave the cgroup
    while processes_in_cgroup(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    if (pyrunc.root / "fz").exists():
        leftovers.append("state dir")
    if processes_in_cgroup(tag):
        leftovers.append(f"processes {[_cmdline(p) for p in processes_in_cgroup(tag)]}")
    if cgroup_dirs_named(tag):
        leftovers.append(f"cgroups {cgroup_dirs_named(tag)}")
    if mounts_snapshot(str(bundle.path)) != before:
        leftovers.append("mounts")
    if leftovers:
        _force_clean(pyrunc, tag)
    assert not bad, f"traceback/internal error for config {text[:3000]}\n{p.stderr}"
    assert ok_shape, f"exit {p.returncode}, stderr {p.stderr!r} for config {text[:3000]}"
    assert not leftovers, f"left behind {leftovers} (exit {p.returncode}: {p.stderr}) for {text[:3000]}"


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f"{pid}:" + f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return pid


def _force_clean(pyrunc, tag: str) -> None:
    """Clean what a failing example left, so the next examples are judged on their own."""
    pyrunc("delete", "--force", "fz")
    for pid in processes_in_cgroup(tag):
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5  # a killed task leaves its cgroup a moment later
    while processes_in_cgroup(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    for d in cgroup_dirs_named(tag):
        for base, _, _ in sorted(os.walk(d), key=lambda w: -len(w[0])):
            try:
                os.rmdir(base)
            except OSError:
                pass


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    d = tmp_path / "scratch"
    d.mkdir()
    return d


@FUZZ
@given(data=st.data())
def test_schema_shaped_configs(pyrunc, bundle, scratch, data):
    """A section of a working config replaced by a value shaped by our schema."""
    pointer, node = data.draw(st.sampled_from(SECTIONS), label="section")
    cfg = copy.deepcopy(bundle.config)
    value = data.draw(from_schema(node), label="value")
    if pointer:
        set_in(cfg, pointer, value)
    else:
        cfg = value
    cfg = pin(cfg, bundle, scratch)
    check_create(pyrunc, bundle, json.dumps(cfg))


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, prefix + (i,))
    return out


def _fixture_config(name: Path) -> dict:
    cfg = json.loads(name.read_text())
    cfg["process"]["args"] = ["true"]
    return cfg


@FUZZ
@given(data=st.data())
def test_mutated_real_configs(pyrunc, bundle, scratch, data):
    """A real config (tests/fixtures/configs) with 1-3 random mutations anywhere in its tree."""
    name = data.draw(st.sampled_from(FIXTURES or [None]), label="fixture")
    cfg = _fixture_config(name) if name else copy.deepcopy(bundle.config)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        paths = [p for p in _paths(cfg) if p]
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="path")
        parent = cfg
        for k in path[:-1]:
            parent = parent[k]
        how = data.draw(st.sampled_from(["delete", "replace", "duplicate", "hostile"]), label="how")
        if how == "delete":
            del parent[path[-1]]
        elif how == "replace":
            parent[path[-1]] = data.draw(json_value(), label="new")
        elif how == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[path[-1]]))
        else:
            parent[path[-1]] = data.draw(st.sampled_from(HOSTILE_STRINGS + HOSTILE_NUMBERS), label="hostile")
    cfg = pin(cfg, bundle, scratch)
    check_create(pyrunc, bundle, json.dumps(cfg))


@pytest.mark.parametrize("text", [
    "", "{", "[]", "null", '"x"', "{}", '{"ociVersion": NaN}', '{"ociVersion": "1.0.0", "ociVersion": 1}',
    "\xff\xfe", "[" * 100000 + "]" * 100000, '{"a": ' * 5000 + "1" + "}" * 5000,
    '{"ociVersion": "1.3.0", "process": {"args": ["true"], "cwd": "/"}, "root": {"path": "rootfs"}, '
    '"x": "' + "y" * (6 << 20) + '"}',
])
def test_broken_json_documents(pyrunc, bundle, text):
    """Broken, empty, deeply nested, huge, non-UTF-8 or NaN-carrying config.json documents."""
    check_create(pyrunc, bundle, text)


# -- ids ---------------------------------------------------------------------------------------

DECOY_IDS = ["../escape", "..", ".", "a/b", "ABS", "a\nb", "x" * 1025, "-rf", "~root", "a b", "\u00e9", "..\\x",
             "../escape/../escape"]


@pytest.mark.parametrize("cid", DECOY_IDS)
def test_ids_that_try_to_leave_the_state_dir(pyrunc, bundle, tmp_path, cid):
    """Every command refuses the id in one line (runc: "invalid container ID format", exit 1).

    Decoys sit where a traversing id would land: tmp/escape (for ../escape), files next to the
    root (for ..), an absolute directory (ABS is replaced by its path). None may be touched, and
    nothing may be created. (A NUL byte cannot reach pyrunc at all: execve refuses it.)
    """
    decoy = tmp_path / "escape"
    decoy.mkdir()
    (decoy / "keep").write_text("decoy\n")
    absdecoy = tmp_path / "absdecoy"
    absdecoy.mkdir()
    (absdecoy / "keep").write_text("decoy\n")
    (tmp_path / "keep-next-to-root").write_text("decoy\n")
    cid = str(absdecoy) if cid == "ABS" else cid
    bundle.write()
    pyrunc.root.mkdir(parents=True, exist_ok=True)
    (pyrunc.root / "keep").write_text("decoy\n")  # for "." (the root itself)
    pyrunc.ids.discard(cid)
    try:
        for args in (("state", cid), ("kill", cid), ("start", cid), ("delete", cid), ("delete", "--force", cid),
                     ("create", cid)):
            p = run_to_files(pyrunc.cmd(*args), cwd=bundle.path, timeout=30)
            assert "Traceback" not in p.stderr, (args, p.stderr)
            assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1, (args, p.returncode, p.stderr)
    finally:
        survived = [(decoy / "keep").exists(), (absdecoy / "keep").exists(),
                    (tmp_path / "keep-next-to-root").exists(), (pyrunc.root / "keep").exists(),
                    (bundle.path / "config.json").exists()]
        assert all(survived), f"id {cid!r} reached files outside its state dir: {survived}"
    assert sorted(os.listdir(pyrunc.root)) == ["keep"]
    assert cgroup_dirs_named(bundle.config["linux"]["cgroupsPath"]) == []


@given(cid=st.text(min_size=1, max_size=40).filter(lambda s: "\x00" not in s and not s.startswith("-")))
@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_arbitrary_ids_for_state(pyrunc, cid):
    """`state` of any id: an error line (invalid or missing), never a traceback, never a path escape."""
    p = pyrunc("state", cid, timeout=30)
    assert p.returncode != 0
    assert "Traceback" not in p.stderr and p.stderr.strip(), p.stderr


# -- corrupted state -----------------------------------------------------------------------------

def _corruptions() -> list[tuple[str, object]]:
    return [("empty", b""), ("truncated", "half"), ("garbage", os.urandom(64)), ("json", b'{"pid": "x"}'),
            ("directory", "dir"), ("missing", None)]


@pytest.mark.parametrize("kind,how", _corruptions(), ids=[k for k, _ in _corruptions()])
def test_corrupted_state_file(pyrunc, bundle, kind, how):
    """State files truncated or corrupted on disk: commands report it, `delete --force` recovers.

    Recovers means: the state directory is gone and so are the container's processes and
    cgroups. (The test cleans any leftover itself afterwards so a failure leaks nothing.)
    """
    tag = bundle.config["linux"]["cgroupsPath"]
    bundle.config["process"]["args"] = ["sleep", "100"]
    pyrunc("create", "cs", bundle=bundle, check=True)
    d = pyrunc.root / "cs"
    files = [f for f in os.listdir(d) if f != "exec.fifo" and not f.startswith(".")]
    assert len(files) == 1, files
    state = d / files[0]
    data = state.read_bytes()
    state.unlink()
    if how == "half":
        state.write_bytes(data[: len(data) // 2])
    elif how == "dir":
        state.mkdir()
    elif how is not None:
        state.write_bytes(how)
    try:
        for args in (("state", "cs"), ("kill", "cs", "KILL"), ("start", "cs"), ("delete", "cs")):
            p = pyrunc(*args, timeout=30)
            assert "Traceback" not in p.stderr, (args, p.stderr)
            assert p.returncode != 0 and len(p.stderr.strip().splitlines()) == 1, (args, p.returncode, p.stderr)
        lst = pyrunc("list", timeout=30)
        assert "Traceback" not in lst.stderr
        d2 = pyrunc("delete", "--force", "cs", timeout=30)
        assert d2.returncode == 0, d2.stderr
        assert not d.exists()
        left = processes_in_cgroup(tag), cgroup_dirs_named(tag)
        assert left == ([], []), f"delete --force on a corrupt state leaked {left}"
    finally:
        _force_clean(pyrunc, tag)
        if d.exists():
            subprocess.run(["rm", "-rf", str(d)], check=False)
