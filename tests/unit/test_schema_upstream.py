"""Our schemas held against the upstream runtime-spec schemas, property by property (issue 22).

Rule (README, "Config validation"): our config schema is nowhere stricter than upstream's
unless the spec's text says MUST, and then the node carries that sentence in ``x-must`` so the
problem a user sees names the reason. The walk (schema_diff.py) also fails when upstream defines
a property we do not name, so a field added upstream cannot slip through unchecked.
Skips, with the reason, where ../shared (or $PYRUNC_SHARED) is not beside the checkout.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pyrunc.spec import validate
from tests.unit.schema_diff import differences

REPO = Path(__file__).resolve().parents[2]
SPEC = Path(os.environ.get("PYRUNC_SHARED") or REPO.parent / "shared") / "oci-runtime-spec"
UPSTREAM = SPEC / "schema"
DOCS = SPEC / "docs"

pytestmark = pytest.mark.skipif(not (UPSTREAM / "config-schema.json").exists(),
                                reason=f"upstream runtime-spec schema not present ({UPSTREAM})")

# Platform sections pyrunc, a Linux runtime, accepts as plain objects without looking inside.
PLATFORMS = frozenset(f"config:/{p}" for p in ("solaris", "windows", "vm", "zos", "freebsd"))

# Findings that are not stricter in fact (the walker cannot compare two regexes).
NOT_STRICTER = {
    ("config:/linux/resources/hugepageLimits/[]/pageSize", "pattern"):
        "ours is upstream's with T, P and E pages added: every value upstream accepts, we accept",
    ("features:/linux/capabilities/[]", "pattern"):
        "ours is upstream's with digits added (CAP_... names have none today)",
}

# state and features are documents pyrunc writes, not input it must accept: checking our own
# output more strictly than upstream costs callers nothing.
OWN_OUTPUT = ("state:", "features:")


def _findings() -> list[tuple]:
    return differences(UPSTREAM, REPO / "spec", skip=PLATFORMS)


def test_no_upstream_property_is_missing_from_our_schemas():
    missing = [(ptr, detail) for ptr, kind, detail, _ in _findings() if kind == "missing"]
    assert not missing, f"upstream defines properties our schema does not name: {missing}"


def test_our_config_schema_is_stricter_only_where_the_spec_says_must():
    loose = []
    for ptr, kind, detail, must in _findings():
        if kind == "missing" or ptr.startswith(OWN_OUTPUT) or (ptr, kind) in NOT_STRICTER:
            continue
        if not must:
            loose.append((ptr, kind, detail))
            continue
        doc, _, sentence = must.partition(": ")
        assert (DOCS / doc).exists(), f"{ptr}: x-must names {doc}, which the spec does not have"
        assert "MUST" in sentence, f"{ptr}: x-must must quote a MUST sentence: {must!r}"
    assert not loose, f"stricter than upstream without a MUST sentence (x-must): {loose}"


def test_every_x_must_is_still_needed():
    """A reason for a strictness that upstream has since adopted (or we dropped) is stale."""
    def walk(node, path=""):
        if isinstance(node, dict):
            if "x-must" in node:
                yield path, node["x-must"]
            for k, v in node.items():
                yield from walk(v, f"{path}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from walk(v, f"{path}/{i}")
    ours = {m for _, m in walk(json.loads((REPO / "spec" / "config-schema.json").read_text()))}
    used = {must for *_, must in _findings() if must}
    assert ours == used, f"x-must reasons no finding needs: {sorted(ours - used)}"


def test_not_stricter_claims_hold():
    """The two regex pairs: everything upstream accepts in a sample, ours accepts."""
    for size in ("2MB", "1GB", "64KB", "16384KB", "10MB"):
        config = {"ociVersion": "1.3.0", "linux": {"resources": {"hugepageLimits": [
            {"pageSize": size, "limit": 1}]}}}
        assert validate(config, "config") == [], size


def test_the_reason_is_in_the_problem():
    problems = validate({"ociVersion": "1.0"}, "config")
    assert problems == [("/ociVersion", problems[0][1])]
    assert problems[0][1].endswith("(runtime-spec: config.md: ociVersion MUST be in SemVer v2.0.0 format)")
    problems = validate({"ociVersion": "1.3.0", "mounts": [{"destination": "/x", "uidMappings": []}]}, "config")
    assert any("MUST be specified along with gidMappings" in m for _, m in problems), problems


@pytest.mark.parametrize("config", [
    {"process": {"cwd": "/", "ioPriority": {"class": "IOPRIO_CLASS_IDLE"}}},
    {"process": {"cwd": "/", "user": {}}},
    {"process": {"cwd": "/", "consoleSize": {"height": 70000, "width": 5000000000}}},
    {"process": {"cwd": "/", "execCPUAffinity": {"initial": "0, 1"}}},
    {"linux": {"devices": [{"path": "/dev/x", "type": "c"}]}},
    {"linux": {"resources": {"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0}]}}}},
    {"linux": {"resources": {"cpu": {"cpus": "0, 1"}}}},
], ids=["ioPriority-class-only", "user-empty", "console-big", "affinity-spaces", "device-no-numbers",
        "throttle-no-rate", "cpus-spaces"])
def test_what_upstream_and_runc_151_accept_our_schema_accepts(config):
    """Each of these ran under runc 1.5.1 (README, "Behaviour of runc 1.5") and passes upstream's schema."""
    assert validate({"ociVersion": "1.3.0", **config}, "config") == []
