"""`pyrunc features` is true: each advertised item is exercised on a real container."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import RUNC15, SHARED


@pytest.fixture
def features(pyrunc) -> dict:
    return json.loads(pyrunc("features", check=True).stdout)


def test_features_valid_against_our_schema_and_upstream(features):
    from pyrunc.spec import validate

    assert validate(features, "features") == []
    upstream = SHARED / "oci-runtime-spec" / "schema"
    if not upstream.exists():
        pytest.skip("shared/oci-runtime-spec is not beside the checkout")
    import jsonschema
    import referencing

    resources = []
    for f in upstream.glob("*.json"):
        doc = json.loads(f.read_text())
        resources.append((f.name, referencing.Resource.from_contents(
            doc, default_specification=referencing.jsonschema.DRAFT4)))
        resources.append((f"file://{f}", resources[-1][1]))
    registry = referencing.Registry().with_resources(resources)
    schema = json.loads((upstream / "features-schema.json").read_text())
    jsonschema.Draft4Validator(schema, registry=registry).validate(features)


def test_each_namespace(features, pyrunc, bundle):
    names = {"cgroup": "cgroup", "ipc": "ipc", "mount": "mnt", "network": "net", "pid": "pid",
             "uts": "uts", "user": "user", "time": "time"}
    import os

    for kind in features["linux"]["namespaces"]:
        bundle.config["linux"]["namespaces"] = [{"type": "mount"}] + ([] if kind == "mount" else [{"type": kind}])
        if kind != "uts":
            bundle.config.pop("hostname", None)
        bundle.config["linux"].pop("uidMappings", None)
        bundle.config["linux"].pop("gidMappings", None)
        if kind == "user":
            from tests.integration.test_userns_timens import add_userns

            # proc, sysfs and mqueue mount only for pid/net/ipc namespaces the user namespace owns.
            bundle.config["linux"]["namespaces"] = [{"type": t} for t in ("mount", "pid", "network", "ipc")]
            add_userns(bundle)
        bundle.config["process"]["args"] = ["readlink", f"/proc/self/ns/{names[kind]}"]
        p = pyrunc("run", f"ns-{kind}", bundle=bundle)
        assert p.returncode == 0, (kind, p.stderr)
        assert p.stdout.strip() != os.readlink(f"/proc/self/ns/{names[kind]}"), kind


def test_each_mount_option(features, pyrunc, bundle, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i, opt in enumerate(features["mountOptions"]):
        if opt in ("bind", "rbind"):
            mount = {"destination": f"/m/{i}", "type": "bind", "source": str(src), "options": [opt]}
        else:
            mount = {"destination": f"/m/{i}", "type": "tmpfs", "source": "tmpfs", "options": [opt]}
        bundle.config["mounts"].append(mount)
    bundle.config["process"]["args"] = ["sh", "-c", "grep -c ' /m/' /proc/self/mountinfo"]
    p = pyrunc("run", "opts", bundle=bundle)
    assert p.returncode == 0, p.stderr
    assert int(p.stdout) >= len(features["mountOptions"])


def test_all_capabilities(features, pyrunc, bundle):
    import pyrunc.security.capabilities as c

    with open("/proc/self/status") as f:
        host = int(next(line for line in f if line.startswith("CapBnd")).split()[1], 16)
    # A capability we do not hold ourselves cannot be granted (CAP_SYS_RESOURCE on these VMs).
    caps = [name for name in features["linux"]["capabilities"] if host & (1 << c.NUMBERS[name])]
    bundle.config["process"]["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}
    bundle.config["process"]["args"] = ["grep", "CapBnd", "/proc/self/status"]
    p = pyrunc("run", "caps", bundle=bundle)
    assert p.returncode == 0, p.stderr
    mask = int(p.stdout.split()[1], 16)
    assert mask == sum(1 << c.NUMBERS[name] for name in caps)


def test_hooks_and_versions(features):
    assert features["hooks"] == ["prestart", "createRuntime", "createContainer", "startContainer",
                                 "poststart", "poststop"]
    assert features["ociVersionMin"] == "1.0.0" and features["ociVersionMax"] == "1.3.0"
    for flag in ("seccomp", "apparmor", "selinux", "intelRdt", "netDevices"):
        assert isinstance(features["linux"][flag]["enabled"], bool)


def test_lsm_support_is_announced_as_runc_15_does(features):
    """Both label kinds are supported (AppArmor: tests/integration/test_process_attrs.py and the
    v2 guest; SELinux: tests/vm/test_selinux.py), so both say enabled, as runc 1.5.1 does
    wherever it runs; whether the host has the LSM on is the caller's to probe."""
    assert features["linux"]["apparmor"] == {"enabled": True}
    assert features["linux"]["selinux"] == {"enabled": True}
    if RUNC15.exists():
        theirs = json.loads(subprocess.run([str(RUNC15), "features"], capture_output=True, text=True,
                                           check=True, timeout=30).stdout)
        for lsm in ("apparmor", "selinux"):
            assert features["linux"][lsm] == theirs["linux"][lsm], lsm


def test_checkpoint_support_is_announced_as_runc_does(features, pyrunc):
    """runc says org.opencontainers.runc.checkpoint.enabled; the commands behind ours exist (their
    working paths run in the guest: tests/vm/test_criu.py)."""
    assert features["annotations"]["org.opencontainers.pyrunc.checkpoint.enabled"] == "true"
    for command in ("checkpoint", "restore"):
        p = pyrunc(command)
        assert p.returncode == 1 and "requires exactly 1 argument" in p.stderr
