"""Our schemas (spec/*.json) against the upstream fixtures, real configs and jsonschema.

Three questions: do the upstream good/bad fixtures get the right verdict, do
configs written by real tools validate, and does our fast interpreter agree
with the reference jsonschema library on our own schemas.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

from pyrunc.spec import validate

REPO = Path(__file__).resolve().parents[2]
UPSTREAM = Path(os.environ.get("PYRUNC_SHARED") or REPO.parent / "shared") / "oci-runtime-spec"
FIXTURES = UPSTREAM / "schema" / "test"
CONFIGS = REPO / "tests" / "fixtures" / "configs"
RUNC = "/usr/sbin/runc"
KINDS = ("config", "state", "features")
SCHEMA_FILES = {"config": "config-schema.json", "state": "state-schema.json",
                "features": "features-schema.json"}

# Upstream fixtures we do not judge, and why:
SKIPPED = {
    # Only wrong in the FreeBSD section; pyrunc is a Linux runtime and accepts
    # non-Linux platform sections as plain objects.
    "config/bad/freebsd-vnet-disable.json": "FreeBSD-only constraint",
}


def _fixture_files(kind: str, verdict: str) -> list[Path]:
    folder = FIXTURES / kind / verdict
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def _fixture_params(verdict: str) -> list:
    params = []
    for kind in KINDS:
        for path in _fixture_files(kind, verdict):
            rel = f"{kind}/{verdict}/{path.name}"
            marks = [pytest.mark.skip(reason=SKIPPED[rel])] if rel in SKIPPED else []
            params.append(pytest.param(kind, path, id=rel, marks=marks))
    return params or [pytest.param(None, None, marks=pytest.mark.skip(reason="upstream spec not present"))]


def _our_schema(kind: str) -> dict:
    return json.loads((REPO / "spec" / SCHEMA_FILES[kind]).read_text())


def _load_or_none(path: Path):
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None


@pytest.mark.parametrize(("kind", "path"), _fixture_params("good"))
def test_upstream_good_fixture_is_valid(kind, path):
    assert validate(json.loads(path.read_text()), kind) == []


@pytest.mark.parametrize(("kind", "path"), _fixture_params("bad"))
def test_upstream_bad_fixture_is_rejected(kind, path):
    document = _load_or_none(path)
    if document is None:  # invalid-json.json: rejected before any schema runs
        return
    assert validate(document, kind) != []


# -- real configs --------------------------------------------------------------------

def _captured_configs() -> list[Path]:
    return sorted(CONFIGS.glob("*.json"))


@pytest.mark.parametrize("path", _captured_configs(), ids=lambda p: p.name)
def test_captured_config_is_valid(path):
    """Every config under tests/fixtures/configs (runc, podman, containerd...) validates."""
    assert validate(json.loads(path.read_text()), "config") == []


def test_runc_captures_are_present():
    names = {p.name for p in _captured_configs()}
    assert {"runc-spec.json", "runc-spec-rootless.json"} <= names


@pytest.mark.skipif(not Path(RUNC).exists(), reason="runc is not installed")
@pytest.mark.parametrize("flags", [[], ["--rootless"]], ids=["spec", "spec-rootless"])
def test_live_runc_spec_is_valid(tmp_path, flags):
    subprocess.run([RUNC, "spec", *flags], cwd=tmp_path, check=True, capture_output=True)
    config = json.loads((tmp_path / "config.json").read_text())
    assert validate(config, "config") == []


# -- the generated module ---------------------------------------------------------------

def _generator():
    spec = importlib.util.spec_from_file_location("pyrunc_spec_generate", REPO / "spec" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_schemas_are_up_to_date():
    generate = _generator()
    expected = generate.render(generate.load_sources())
    actual = (REPO / "pyrunc" / "spec" / "_schemas.py").read_text()
    assert actual == expected, "pyrunc/spec/_schemas.py is stale: run `python spec/generate.py`"


def test_generated_schemas_equal_the_json_files():
    from pyrunc.spec._schemas import SCHEMAS

    for kind in KINDS:
        assert SCHEMAS[kind] == _our_schema(kind)


# -- agreement with jsonschema ------------------------------------------------------------

def _jsonschema():
    """Imported per test so the fixture tests above still run where jsonschema is absent."""
    return pytest.importorskip("jsonschema")


def _reference_validator(kind: str):
    """jsonschema on OUR schema, with our documented 'integer' rule (no 1.0)."""
    jsonschema = _jsonschema()
    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: type(value) is int)
    strict = jsonschema.validators.extend(base, type_checker=checker)
    return strict(_our_schema(kind))


@pytest.mark.parametrize("kind", KINDS)
def test_our_schemas_are_valid_draft_2020_12(kind):
    _jsonschema().Draft202012Validator.check_schema(_our_schema(kind))


def _reference_problems(kind: str, document) -> set[tuple[str, str]]:
    found = set()
    for error in _reference_validator(kind).iter_errors(document):
        path = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in error.absolute_path)
        found.add((path, error.message))
    return found


@pytest.mark.parametrize(("kind", "path"), _fixture_params("good") + _fixture_params("bad"))
def test_fixture_verdicts_match_jsonschema(kind, path):
    document = _load_or_none(path)
    if document is None:
        return
    assert {(p, _without_reason(m)) for p, m in validate(document, kind)} == _reference_problems(kind, document)


def _spec_example() -> dict:
    """A config with every section the BROKEN pointers reach into: `runc spec` plus the rest.

    Built here rather than taken from ../shared's upstream spec-example.json so the mutation
    tests run (and mean the same) on a fresh clone without ../shared beside it."""
    config = json.loads((CONFIGS / "runc-spec.json").read_text())
    process, linux = config["process"], config["linux"]
    process["consoleSize"] = {"height": 25, "width": 80}
    process["user"]["additionalGids"] = [5, 6]
    process["scheduler"] = {"policy": "SCHED_OTHER", "nice": 1}
    process["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 4}
    process["execCPUAffinity"] = {"initial": "0", "final": "0-1"}
    process["oomScoreAdj"] = 100
    config["hooks"] = {
        "prestart": [{"path": "/usr/bin/fix-mounts", "args": ["fix-mounts", "a"], "env": ["K=v"]}],
        "poststart": [{"path": "/usr/bin/notify-start", "timeout": 5}],
        "poststop": [{"path": "/usr/sbin/cleanup.sh", "args": ["cleanup.sh", "-f"]}],
    }
    config["annotations"] = {"com.example.key1": "value1", "com.example.key2": "value2"}
    linux["namespaces"] = linux["namespaces"] + [{"type": "user"}]
    linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    linux["timeOffsets"] = {"monotonic": {"secs": 1, "nanosecs": 0}}
    linux["devices"] = [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666, "uid": 0, "gid": 0},
        {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0, "fileMode": 0o660, "uid": 0, "gid": 0},
    ]
    linux["resources"] = {
        "devices": [{"allow": False, "access": "rwm"},
                    {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"}],
        "memory": {"limit": 536870912, "reservation": 536870912, "swap": 536870912, "swappiness": 0},
        "cpu": {"shares": 1024, "quota": 1000000, "period": 500000, "cpus": "0-1", "mems": "0"},
        "blockIO": {"weight": 10, "leafWeight": 10,
                    "weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 300},
                                     {"major": 8, "minor": 16, "weight": 500}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 9223372036854772000}],
        "pids": {"limit": 32771},
        "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]},
    }
    linux["sysctl"] = {"net.ipv4.ip_forward": "1"}
    linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"],
                        "syscalls": [{"names": ["getcwd", "chmod"], "action": "SCMP_ACT_ERRNO"}]}
    linux["rootfsPropagation"] = "slave"
    linux["cgroupsPath"] = "/myRuntime/myContainer"
    return config


def test_spec_example_is_valid():
    """The base of the mutation tests is itself valid (so each mutation is what breaks it)."""
    assert validate(_spec_example(), "config") == []


def _set(document: dict, pointer: str, value) -> dict:
    """Return a copy of ``document`` with the value at ``pointer`` replaced (or removed)."""
    document = copy.deepcopy(document)
    *parents, last = pointer.strip("/").split("/")
    node = document
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    key = int(last) if isinstance(node, list) else last
    if value is _REMOVE:
        del node[key]
    else:
        node[key] = value
    return document


_REMOVE = object()
BROKEN = [
    ("/ociVersion", 1),
    ("/ociVersion", "1.0"),
    ("/ociVersion", _REMOVE),
    ("/root/path", 7),
    ("/root", {"readonly": True}),
    ("/root/readonly", "yes"),
    ("/process/args", "sh"),
    ("/process/args/0", None),
    ("/process/cwd", _REMOVE),
    ("/process/terminal", 1),
    ("/process/user/uid", -1),
    ("/process/user/uid", 4294967296),
    ("/process/user/gid", True),
    ("/process/user/uid", 1.0),
    ("/process/user/additionalGids/0", "5"),
    ("/process/rlimits/0/type", "NOFILE"),
    ("/process/rlimits/0/soft", -5),
    ("/process/rlimits/0/hard", _REMOVE),
    ("/process/capabilities/bounding", "CAP_KILL"),
    ("/process/consoleSize", {"height": 10}),
    ("/process/scheduler", {"policy": "SCHED_FAST"}),
    ("/process/execCPUAffinity", {"initial": "0-3,a"}),
    ("/mounts/0/destination", _REMOVE),
    ("/mounts/0/options", "ro"),
    ("/mounts/0/uidMappings", [{"containerID": 0, "hostID": 1000, "size": 1}]),
    ("/hooks/prestart/0/path", _REMOVE),
    ("/hooks/poststart/0/timeout", "5"),
    ("/annotations/", "empty key"),
    ("/annotations/com.example.key1", 1),
    ("/hostname", ["a"]),
    ("/linux/namespaces/0/type", "pids"),
    ("/linux/namespaces/1", {"path": "/proc/1/ns/net"}),
    ("/linux/uidMappings/0/size", "1"),
    ("/linux/devices/0/type", "x"),
    ("/linux/devices/1/fileMode", -1),
    ("/linux/resources/devices/0/allow", "false"),
    ("/linux/resources/memory/limit", 2**63),
    ("/linux/resources/cpu/shares", -1),
    ("/linux/resources/blockIO/weight", 70000),
    ("/linux/resources/blockIO/weightDevice/1", {"major": 8, "minor": 16}),
    ("/linux/resources/hugepageLimits/0/pageSize", "2mb"),
    ("/linux/resources/pids/limit", "max"),
    ("/linux/resources/rdma", {"mlx": {}}),
    ("/linux/resources/unified", {"memory.max": 5}),
    ("/linux/resources/network/priorities/0/priority", -1),
    ("/linux/intelRdt", {"memBwSchema": "L3:0=1"}),
    ("/linux/intelRdt", {"schemata": ["L3:0=1\nMB:0=1"]}),
    ("/linux/sysctl/net.core.somaxconn", 256),
    ("/linux/seccomp/defaultAction", "SCMP_ACT_PASS"),
    ("/linux/seccomp/architectures/0", "x86"),
    ("/linux/seccomp/syscalls/0/names", []),
    ("/linux/seccomp/syscalls/0/args", [{"index": 0, "value": 1, "op": "EQ"}]),
    ("/linux/seccomp/flags", ["SECCOMP_FILTER_FLAG_FOO"]),
    ("/linux/rootfsPropagation", "rrshared"),
    ("/linux/maskedPaths", "/proc/kcore"),
    ("/linux/personality", {"domain": "LINUX64"}),
    ("/linux/netDevices/eth0", {"name": 23}),
    ("/linux/cgroupsPath", 5),
    ("/linux", []),
    ("/windows", "no"),
]


@pytest.mark.parametrize(("pointer", "value"), BROKEN, ids=[f"{p}={v!r}" for p, v in BROKEN])
def test_broken_config_matches_jsonschema(pointer, value):
    document = _set(_spec_example(), pointer, value)
    ours = validate(document, "config")
    assert ours, "the mutation should make the config invalid"
    assert {(p, _without_reason(m)) for p, m in ours} == _reference_problems("config", document)


def _without_reason(message: str) -> str:
    """Our message minus the spec's MUST sentence that an x-must node adds (jsonschema has none)."""
    head, sep, _ = message.partition(" (runtime-spec: ")
    return head if sep else message


@pytest.mark.parametrize(("pointer", "value"), [
    ("/ociVersion", "1.0.0\n"),
    ("/linux/resources/hugepageLimits/0/pageSize", "2MB\n"),
])
def test_trailing_newline_is_stricter_than_python_dollar(pointer, value):
    """ECMA '$' is end-of-string: we reject a trailing newline; jsonschema (Python re) would not."""
    document = _set(_spec_example(), pointer, value)
    assert [p for p, _ in validate(document, "config")] == [pointer]
    assert _reference_problems("config", document) == set()
