"""Semantic checks: one case per rule, each asserting the exact pointer and the gist of the message."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrunc.spec import semantic_problems, validate
from pyrunc.spec.semantic import check_mappings

CONFIGS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "configs"


@pytest.fixture
def bundle(tmp_path) -> str:
    (tmp_path / "rootfs").mkdir()
    return str(tmp_path)


def runc_config(rootless: bool = False) -> dict:
    name = "runc-spec-rootless.json" if rootless else "runc-spec.json"
    return json.loads((CONFIGS / name).read_text())


def ns(*types: str) -> list[dict]:
    return [{"type": t} for t in types]


def mutated(change, rootless: bool = False) -> dict:
    config = runc_config(rootless)
    change(config)
    assert validate(config) == [], "semantic cases must start from a schema-valid config"
    return config


def test_runc_configs_have_no_problems(bundle):
    assert semantic_problems(runc_config(), bundle) == []
    assert semantic_problems(runc_config(rootless=True), bundle) == []


def _set(path: str, value):
    """A change function setting the value at a '/'-separated path, creating objects on the way."""
    def change(config):
        *parents, last = path.strip("/").split("/")
        node = config
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        node[int(last) if isinstance(node, list) else last] = value
    return change


def _delete(path: str):
    def change(config):
        *parents, last = path.strip("/").split("/")
        node = config
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[int(last) if isinstance(node, list) else last]
    return change


def _append(path: str, value):
    """A change function appending ``value`` to the list at ``path``."""
    def change(config):
        node = config
        for part in path.strip("/").split("/"):
            node = node[int(part)] if isinstance(node, list) else node[part]
        node.append(value)
    return change


def _both(*changes):
    def change(config):
        for each in changes:
            each(config)
    return change


CASES = [
    # ociVersion
    ("major-2", _set("/ociVersion", "2.0.0"), "/ociVersion", "major version 1"),
    ("major-0", _set("/ociVersion", "0.5.0-dev"), "/ociVersion", "unsupported ociVersion"),
    # root
    ("no-root", _delete("/root"), "", "'root' is required"),
    ("root-missing", _set("/root/path", "nope"), "/root/path", "No such file or directory"),
    ("root-not-dir", _set("/root/path", "/etc/hostname"), "/root/path", "is not a directory"),
    # process
    ("args-empty", _set("/process/args", []), "/process/args", "at least one entry"),
    ("args-missing", _delete("/process/args"), "/process", "at least one entry"),
    ("args-nul", _set("/process/args", ["sh", "a\x00b"]), "/process/args/1", "NUL"),
    ("args-surrogate", _set("/process/args", ["sh", "\ud800"]), "/process/args/1", "unpaired surrogates"),
    ("cwd-relative", _set("/process/cwd", "tmp"), "/process/cwd", "absolute"),
    ("env-no-equals", _set("/process/env/1", "TERM"), "/process/env/1", "has no '='"),
    ("env-empty-name", _set("/process/env/1", "=x"), "/process/env/1", "empty name"),
    ("env-nul", _set("/process/env/0", "A=b\x00c"), "/process/env/0", "NUL"),
    ("rlimit-dup", _append("/process/rlimits", {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}),
     "/process/rlimits/1/type", "duplicate rlimit type 'RLIMIT_NOFILE'"),
    ("rlimit-unknown", _set("/process/rlimits/0/type", "RLIMIT_FOO"), "/process/rlimits/0/type", "unknown rlimit"),
    ("rlimit-soft-gt-hard", _set("/process/rlimits/0/soft", 2048), "/process/rlimits/0",
     "soft limit 2048 is greater than hard limit 1024"),
    ("uid-unchanged", _set("/process/user/uid", 4294967295), "/process/user/uid", "'unchanged'"),
    ("gid-unchanged", _set("/process/user/gid", 4294967295), "/process/user/gid", "'unchanged'"),
    ("extra-gid-unchanged", _set("/process/user/additionalGids", [4294967295]),
     "/process/user/additionalGids/0", "'unchanged'"),
    ("oom-low", _set("/process/oomScoreAdj", -1001), "/process/oomScoreAdj", "-1000..1000"),
    ("oom-high", _set("/process/oomScoreAdj", 1001), "/process/oomScoreAdj", "-1000..1000"),
    # namespaces
    ("ns-dup", _set("/linux/namespaces/4", {"type": "pid"}), "/linux/namespaces/4/type",
     "duplicate namespace type 'pid'"),
    ("ns-relative-path", _set("/linux/namespaces/1/path", "proc/1/ns/net"), "/linux/namespaces/1/path",
     "absolute"),
    ("hostname-no-uts", _set("/linux/namespaces", ns("pid", "mount")), "/hostname", "UTS namespace"),
    ("domainname-no-uts", _both(_delete("/hostname"), _set("/domainname", "x"),
                                _set("/linux/namespaces", ns("mount"))), "/domainname", "UTS namespace"),
    # user namespace and mappings
    ("maps-without-userns", _set("/linux/uidMappings", [{"containerID": 0, "hostID": 1000, "size": 1}]),
     "/linux/uidMappings", "require a user namespace"),
    ("userns-without-maps", _append("/linux/namespaces", {"type": "user"}), "/linux/namespaces/5",
     "needs linux.uidMappings"),
    ("map-size-0", _set("/linux/uidMappings/0/size", 0), "/linux/uidMappings/0/size", "greater than 0"),
    ("map-host-overflow", _set("/linux/uidMappings/0", {"containerID": 0, "hostID": 4294967295, "size": 2}),
     "/linux/uidMappings/0", "hostID 4294967295 + size 2 overflows"),
    ("map-container-overflow", _set("/linux/gidMappings/0", {"containerID": 4294967000, "hostID": 0, "size": 1000}),
     "/linux/gidMappings/0", "containerID 4294967000 + size 1000 overflows"),
    ("map-overlap", _set("/linux/uidMappings", [{"containerID": 0, "hostID": 1000, "size": 10},
                                                {"containerID": 5, "hostID": 5000, "size": 10}]),
     "/linux/uidMappings/1", "containerID range overlaps"),
    ("map-host-overlap", _set("/linux/uidMappings", [{"containerID": 0, "hostID": 1000, "size": 10},
                                                     {"containerID": 100, "hostID": 1009, "size": 1}]),
     "/linux/uidMappings/1", "hostID range overlaps"),
    # mounts
    ("dest-escapes", _set("/mounts/0/destination", "/proc/../../etc"), "/mounts/0/destination", "escapes"),
    ("dest-relative-escapes", _set("/mounts/0/destination", "../x"), "/mounts/0/destination", "escapes"),
    ("dest-root", _set("/mounts/0/destination", "/"), "/mounts/0/destination", "on top of the rootfs"),
    ("dest-root-dotted", _set("/mounts/0/destination", "/proc/.."), "/mounts/0/destination", "on top of the rootfs"),
    ("dest-empty", _set("/mounts/0/destination", ""), "/mounts/0/destination", "must not be empty"),
    ("bind-no-source", _append("/mounts", {"destination": "/x", "options": ["rbind"]}), "/mounts/7", "needs a source"),
    ("mount-map-overlap", _append("/mounts", {"destination": "/x", "source": "/y", "options": ["bind", "idmap"],
                                             "uidMappings": [{"containerID": 0, "hostID": 0, "size": 5},
                                                             {"containerID": 1, "hostID": 9, "size": 1}],
                                             "gidMappings": [{"containerID": 0, "hostID": 0, "size": 1}]}),
     "/mounts/7/uidMappings/1", "containerID range overlaps"),
    ("idmap-without-anything", _append("/mounts", {"destination": "/x", "source": "/y", "options": ["bind", "idmap"]}),
     "/mounts/7", "idmap mount needs"),
    # hooks
    ("hook-relative", _set("/hooks/prestart", [{"path": "bin/hook"}]), "/hooks/prestart/0/path", "absolute"),
    ("hook-env", _set("/hooks/poststart", [{"path": "/bin/true", "env": ["X"]}]),
     "/hooks/poststart/0/env/0", "has no '='"),
    # devices
    ("device-dotdot", _set("/linux/devices", [{"type": "c", "path": "/dev/../etc/x", "major": 1, "minor": 3}]),
     "/linux/devices/0/path", "inside the container"),
    ("device-is-dev", _set("/linux/devices", [{"type": "c", "path": "/dev", "major": 1, "minor": 3}]),
     "/linux/devices/0/path", "inside the container"),
    ("device-negative-major", _set("/linux/devices", [{"type": "c", "path": "/dev/x", "major": -1, "minor": 3}]),
     "/linux/devices/0/major", "negative"),
    ("device-setuid", _set("/linux/devices", [{"type": "c", "path": "/dev/x", "major": 1, "minor": 3,
                                               "fileMode": 0o4666}]), "/linux/devices/0/fileMode", "setuid"),
    ("device-mode-bits", _set("/linux/devices", [{"type": "c", "path": "/dev/x", "major": 1, "minor": 3,
                                                  "fileMode": 0o20666}]), "/linux/devices/0/fileMode", "07777"),
    # sysctl
    ("sysctl-ipc-no-ns", _both(_set("/linux/namespaces", ns("mount", "uts")), _set("/linux/sysctl", {"kernel.shmmax": "1"})),
     "/linux/sysctl/kernel.shmmax", "needs an IPC namespace"),
    ("sysctl-mqueue-no-ns", _both(_set("/linux/namespaces", ns("mount", "uts")),
                                  _set("/linux/sysctl", {"fs.mqueue.msg_max": "1"})),
     "/linux/sysctl/fs.mqueue.msg_max", "needs an IPC namespace"),
    ("sysctl-net-no-ns", _set("/linux/sysctl", {"net.ipv4.ip_forward": "1"}), "/linux/sysctl/net.ipv4.ip_forward",
     "needs a network namespace"),
    ("sysctl-host", _set("/linux/sysctl", {"vm.swappiness": "1"}), "/linux/sysctl/vm.swappiness", "not namespaced"),
    ("sysctl-core-pattern", _set("/linux/sysctl", {"kernel.core_pattern": "|/x"}),
     "/linux/sysctl/kernel.core_pattern", "not namespaced"),
    ("sysctl-dotdot", _set("/linux/sysctl", {"net/../../kernel/x": "1"}), "/linux/sysctl/net~1..~1..~1kernel~1x",
     "not a valid sysctl name"),
    ("sysctl-empty-part", _set("/linux/sysctl", {"net..x": "1"}), "/linux/sysctl/net..x", "not a valid sysctl name"),
    ("sysctl-hostname-conflict", _set("/linux/sysctl", {"kernel.hostname": "x"}), "/linux/sysctl/kernel.hostname",
     "conflicts with the OCI hostname field"),
    ("sysctl-hostname-without-field", _both(_delete("/hostname"), _set("/linux/sysctl", {"kernel.hostname": "x"})),
     "/linux/sysctl/kernel.hostname", "conflicts with the OCI hostname field"),
    ("sysctl-domainname-no-uts", _both(_delete("/hostname"), _set("/linux/namespaces", ns("mount")),
                                       _set("/linux/sysctl", {"kernel.domainname": "x"})),
     "/linux/sysctl/kernel.domainname", "needs a UTS namespace"),
    ("sysctl-user-no-ns", _set("/linux/sysctl", {"user.max_user_namespaces": "1"}),
     "/linux/sysctl/user.max_user_namespaces", "needs a user namespace"),
    # cgroups
    ("cgroups-path-dotdot", _set("/linux/cgroupsPath", "/a/../../b"), "/linux/cgroupsPath", "'..'"),
    ("cgroups-path-nul", _set("/linux/cgroupsPath", "/test\x00invalid"), "/linux/cgroupsPath", "NUL byte"),
    ("unified-slash", _set("/linux/resources/unified", {"../memory.max": "1"}),
     "/linux/resources/unified/..~1memory.max", "plain cgroup file name"),
    ("unified-procs", _set("/linux/resources/unified", {"cgroup.procs": "1"}),
     "/linux/resources/unified/cgroup.procs", "core file"),
    ("unified-no-dot", _set("/linux/resources/unified", {"memory": "1"}), "/linux/resources/unified/memory",
     "controller file name"),
    ("cpu-burst", _set("/linux/resources/cpu", {"quota": 1000, "burst": 2000}), "/linux/resources/cpu/burst",
     "larger than quota"),
    # paths
    ("masked-relative", _set("/linux/maskedPaths/0", "proc/kcore"), "/linux/maskedPaths/0", "absolute"),
    ("readonly-relative", _set("/linux/readonlyPaths/0", "proc/sys"), "/linux/readonlyPaths/0", "absolute"),
    # seccomp
    ("seccomp-errno-default", _set("/linux/seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}),
     "/linux/seccomp/defaultErrnoRet", "not allowed with defaultAction SCMP_ACT_ALLOW"),
    ("seccomp-errno-rule", _set("/linux/seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["x"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]}),
     "/linux/seccomp/syscalls/0/errnoRet", "not allowed with action SCMP_ACT_KILL"),
    ("seccomp-arg-index", _set("/linux/seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["x"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}),
     "/linux/seccomp/syscalls/0/args/0/index", "outside 0..5"),
    ("seccomp-listener-relative", _set("/linux/seccomp", {"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "x.sock"}),
     "/linux/seccomp/listenerPath", "absolute"),
    ("seccomp-metadata-alone", _set("/linux/seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "m"}),
     "/linux/seccomp/listenerMetadata", "requires listenerPath"),
    ("seccomp-notify-alone", _set("/linux/seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["x"], "action": "SCMP_ACT_NOTIFY"}]}), "/linux/seccomp", "requires listenerPath"),
    # extras
    ("time-offsets-no-ns", _set("/linux/timeOffsets", {"monotonic": {"secs": 1}}), "/linux/timeOffsets",
     "new time namespace"),
    ("netdevices-no-netns", _set("/linux/netDevices", {"eth0": {}}), "/linux/netDevices", "network namespace"),
]


# Cases that start from `runc spec --rootless` (user namespace with mappings, no network namespace).
ROOTLESS = {"map-size-0", "map-host-overflow", "map-container-overflow", "map-overlap", "map-host-overlap",
            "sysctl-net-no-ns", "netdevices-no-netns"}


@pytest.mark.parametrize(("name", "change", "where", "gist"), CASES, ids=[c[0] for c in CASES])
def test_rule(bundle, name, change, where, gist):
    config = mutated(change, rootless=name in ROOTLESS)
    problems = semantic_problems(config, bundle)
    assert any(p == where and gist in m for p, m in problems), problems


NETDEVICE_NAMES = ["", "a" * 16, "a/b", "a:b", "a b", ".", ".."]


@pytest.mark.parametrize("name", NETDEVICE_NAMES)
def test_bad_interface_names(bundle, name):
    config = mutated(_set("/linux/netDevices", {"eth0": {"name": name}}))
    assert ("/linux/netDevices/eth0/name", f"{name!r} is not a valid network interface name") \
        in semantic_problems(config, bundle)


# -- things that must stay allowed -------------------------------------------------------------

ALLOWED = [
    ("relative-destination", _set("/mounts/0/destination", "proc")),
    ("dotdot-inside", _set("/mounts/0/destination", "/dev/../proc")),
    ("net-sysctl-with-netns", _set("/linux/sysctl", {"net.ipv4.ip_forward": "1", "net/core/somaxconn": "1"})),
    ("ipc-sysctls", _set("/linux/sysctl", {"kernel.shmmax": "1", "kernel.sem": "1 2 3 4", "kernel.msgmax": "1",
                                           "fs.mqueue.queues_max": "1"})),
    ("domainname-sysctl", _set("/linux/sysctl", {"kernel.domainname": "x"})),
    ("domainname-sysctl-equal-to-field", _both(_set("/domainname", "x"),
                                                _set("/linux/sysctl", {"kernel.domainname": "x"}))),
    ("domainname-sysctl-other-than-field", _both(_set("/domainname", "x"),
                                                  _set("/linux/sysctl", {"kernel.domainname": "y"}))),
    ("joined-userns-without-maps", _append("/linux/namespaces", {"type": "user", "path": "/proc/1/ns/user"})),
    ("empty-ns-path-means-new", _set("/linux/namespaces/0/path", "")),
    ("pipe-device-without-numbers", _set("/linux/devices", [{"type": "p", "path": "/dev/fifo"}])),
    ("hostname-empty-without-uts", _both(_set("/hostname", ""), _set("/linux/namespaces", ns("mount")))),
    ("unified-max-depth", _set("/linux/resources/unified", {"cgroup.max.depth": "3", "memory.max": "max"})),
    ("notify-with-listener", _set("/linux/seccomp", {"defaultAction": "SCMP_ACT_NOTIFY",
                                                     "listenerPath": "/run/agent.sock"})),
    ("errno-with-errno-action", _set("/linux/seccomp", {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1})),
    ("time-offsets-with-ns", _both(_append("/linux/namespaces", {"type": "time"}),
                                   _set("/linux/timeOffsets", {"boottime": {"secs": 5}}))),
    ("oom-bounds", _set("/process/oomScoreAdj", -1000)),
    ("absolute-root", lambda c: None),
]


@pytest.mark.parametrize("change", [c[1] for c in ALLOWED], ids=[c[0] for c in ALLOWED])
def test_still_allowed(bundle, change):
    assert semantic_problems(mutated(change), bundle) == []


def test_absolute_root_path(bundle):
    config = runc_config()
    config["root"]["path"] = str(Path(bundle) / "rootfs")
    assert semantic_problems(config, "/nonexistent-bundle") == []


def test_rootless_mappings_in_joined_userns_are_checked(bundle):
    config = runc_config(rootless=True)
    config["linux"]["uidMappings"][0]["size"] = 0
    assert ("/linux/uidMappings/0/size", "mapping size must be greater than 0") in semantic_problems(config, bundle)


def test_input_is_not_modified(bundle):
    config = runc_config()
    before = copy.deepcopy(config)
    semantic_problems(config, bundle)
    assert config == before


# -- property: the mapping checker agrees with a brute-force definition ------------------------

_mapping = st.fixed_dictionaries({"containerID": st.integers(0, 40), "hostID": st.integers(0, 40),
                                  "size": st.integers(0, 10)})


@settings(max_examples=300, deadline=None)
@given(st.lists(_mapping, max_size=4))
def test_mapping_overlap_matches_brute_force(maps):
    problems = check_mappings(maps, ("m",))
    overlap_reported = {field for field in ("containerID", "hostID")
                        if any(f"{field} range overlaps" in m for _, m in problems)}
    expected = set()
    for field in ("containerID", "hostID"):
        seen: set[int] = set()
        for entry in maps:
            ids = set(range(entry[field], entry[field] + entry["size"]))
            if seen & ids:
                expected.add(field)
            seen |= ids
    assert overlap_reported == expected
    assert any("size must be greater than 0" in m for _, m in problems) == any(e["size"] == 0 for e in maps)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.json")), ids=lambda p: p.name)
def test_captured_configs_pass_semantic_checks(bundle, path):
    """Configs written by runc, podman, containerd... must not trip a rule (their rootfs is not here)."""
    problems = semantic_problems(json.loads(path.read_text()), bundle)
    assert [p for p in problems if p[0] != "/root/path"] == []


def test_device_outside_dev_is_allowed(bundle):
    """config.md: a device path MAY be anywhere in the container's filesystem."""
    cfg = mutated(_set("/linux/devices", [{"type": "c", "path": "/etc/null", "major": 1, "minor": 3}]))
    assert semantic_problems(cfg, bundle) == []
