"""``org.systemd.property.*`` annotations, pids.limit 0 and NeedDaemonReload under the systemd
driver: pyrunc beside runc 1.5.1 (../shared/oracle) on the same bundle, in the --systemd guest.

Good annotations must give the unit the same properties as runc's (``systemctl show``); bad
ones fail with one line naming the annotation and leave no unit, cgroup or state (runc's
text differs in wording; both name the annotation or the property). The places where pyrunc
is deliberately stricter or looser than runc 1.5.1 are in README ("Kept different").
"""

from __future__ import annotations

import itertools
import os

import pytest

from tests.conftest import PYRUNC, RUNC15
from tests.vmsystemd.conftest import SystemdRuntime, in_systemd_guest, show, unit_gone
from tests.vmsystemd.test_systemd_driver import cgroup_dir, nothing_left

if in_systemd_guest() is not None:
    pytest.skip(in_systemd_guest(), allow_module_level=True)

pytestmark = [pytest.mark.vm, pytest.mark.root,
              pytest.mark.skipif(not RUNC15.exists(), reason=f"runc 1.5.1 oracle not present ({RUNC15})")]
P = "org.systemd.property."
_serial = itertools.count()


@pytest.fixture
def pair(tmp_path):
    """pyrunc and runc 1.5.1, both with --systemd-cgroup; deleted afterwards."""
    rts = {"pyrunc": SystemdRuntime(PYRUNC, tmp_path / "py-root", "pyrunc"),
           "runc-1.5.1": SystemdRuntime(str(RUNC15), tmp_path / "r15-root", "runc-1.5.1")}
    yield rts
    for rt in rts.values():
        rt.cleanup()


def fresh(bundle) -> str:
    """A new cgroupsPath on the bundle; returns the unit both runtimes derive from it."""
    name = f"a{os.getpid()}x{next(_serial)}"
    bundle.config["linux"]["cgroupsPath"] = f"system.slice:i22b:{name}"
    return f"i22b-{name}.scope"


def started(rt, bundle, annotations: dict, props: tuple[str, ...], resources: dict | None = None) -> dict:
    unit = fresh(bundle)
    bundle.config["annotations"] = annotations
    bundle.config["linux"]["resources"] = resources or {"memory": {"limit": 200 << 20}}
    bundle.config["process"]["args"] = ["sleep", "1000"]
    p = rt("run", "-d", "c1", bundle=bundle)
    assert p.returncode == 0, f"{rt.name}: {p.stderr}"
    seen = show(unit, *props)
    seen["pids.max"] = (cgroup_dir(rt.state("c1")["pid"]) / "pids.max").read_text().strip()
    assert rt("delete", "--force", "c1").returncode == 0
    assert unit_gone(unit), f"{rt.name}: {unit} left"
    return seen


GOOD = [
    ({P + "TimeoutStopUSec": "uint64 123456789", P + "CollectMode": "'inactive-or-failed'"},
     ("TimeoutStopUSec", "CollectMode")),
    ({P + "RuntimeMaxSec": "100", P + "TimeoutStopSec": "1.5"}, ("RuntimeMaxUSec", "TimeoutStopUSec")),
    ({P + "SendSIGKILL": "false", P + "SendSIGHUP": "boolean true"}, ("SendSIGKILL", "SendSIGHUP")),
    ({P + "Documentation": "['https://a.example', 'https://b.example']"}, ("Documentation",)),
    ({P + "Documentation": "@as []", P + "CollectMode": '"inactive-or-failed"'}, ("Documentation", "CollectMode")),
    ({P + "Description": "'mine'", P + "TimeoutStopUSec": "uint64 0x10"}, ("Description", "TimeoutStopUSec")),
    # the resources' own properties win over an annotation of the same name, as with runc
    ({P + "MemoryMax": "uint64 100000000", P + "TasksMax": "uint64 7"}, ("MemoryMax", "TasksMax")),
]


@pytest.mark.parametrize("annotations,props", GOOD, ids=[",".join(g[1]) for g in GOOD])
def test_annotations_become_the_same_unit_properties(pair, bundle, annotations, props):
    ours = started(pair["pyrunc"], bundle, annotations, props)
    theirs = started(pair["runc-1.5.1"], bundle, annotations, props)
    assert ours == theirs


def test_pids_zero_is_tasks_max_one_as_runc_151(pair, bundle):
    """pids.limit 0 is a limit since runc 1.4: systemd cannot say TasksMax=0, both write 1."""
    ours = started(pair["pyrunc"], bundle, {}, ("TasksMax",), {"pids": {"limit": 0}})
    theirs = started(pair["runc-1.5.1"], bundle, {}, ("TasksMax",), {"pids": {"limit": 0}})
    assert ours == theirs == {"TasksMax": "1", "pids.max": "1"}


BAD = [
    ({P + "Ab": "true"}, "name incorrect: too short"),
    ({P + "Foo1": "true"}, "name incorrect: contains non-alphabetic character"),
    ({P + "CollectMode": "inactive-or-failed"}, "value parse error: unrecognized type"),
    ({P + "CollectMode": "'unterminated"}, "value parse error: unterminated string"),
    ({P + "TimeoutStopSec": "'x'"}, "value parse error: not a number"),
    ({P + "Documentation": "[]"}, "value parse error"),
    ({P + "TimeoutStopUSec": ""}, "value parse error"),
    ({P + "TimeoutStopUSec": "uint64 -1"}, "value parse error"),
    ({P + "TimeoutStopUSec": "12abc"}, "value parse error"),
    # refused by systemd itself: the unit never starts
    ({P + "NoSuchProperty": "true"}, "Cannot set property NoSuchProperty, or unknown property"),
    ({P + "CollectMode": "'bogus'"}, "Invalid CollectMode setting: bogus"),
    ({P + "TimeoutStopUSec": "123"}, "Unexpected message contents"),  # int32 where systemd wants uint64
]


@pytest.mark.parametrize("annotations,message", BAD, ids=[list(b[0].items())[0][1] or "empty" for b in BAD])
def test_bad_annotation_one_line_nothing_left(pair, bundle, annotations, message):
    key = next(iter(annotations))
    for rt in pair.values():
        unit = fresh(bundle)
        bundle.config["annotations"] = annotations
        bundle.config["process"]["args"] = ["sleep", "1000"]
        p = rt("run", "-d", "bad", bundle=bundle)
        assert p.returncode == 1, (rt.name, p.stderr)
        assert message in p.stderr, (rt.name, p.stderr)
        nothing_left(rt, "bad", unit)
        if rt.name == "pyrunc":
            lines = p.stderr.strip().splitlines()
            assert len(lines) == 1 and "container bad" in lines[0] and key in lines[0], p.stderr


def test_need_daemon_reload_stays_no(pair, bundle):
    """Device rules, memory, cpu shares, an annotation: after create and after update the scope
    must not ask for a daemon-reload (runc's GPU-loss bug: a reload re-applied stale device
    properties). runc 1.5.1's value is shown for the record; pyrunc's must be "no"."""
    resources = {"memory": {"limit": 200 << 20}, "cpu": {"shares": 1024},
                 "devices": [{"allow": False, "access": "rwm"},
                             {"allow": True, "type": "c", "major": 136, "access": "rwm"},
                             {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]}
    seen = {}
    for name, rt in pair.items():
        unit = fresh(bundle)
        bundle.config["annotations"] = {P + "CollectMode": "'inactive-or-failed'"}
        bundle.config["linux"]["resources"] = resources
        bundle.config["process"]["args"] = ["sleep", "1000"]
        assert rt("run", "-d", "n1", bundle=bundle).returncode == 0, name
        after_create = show(unit, "NeedDaemonReload")["NeedDaemonReload"]
        assert rt("update", "--memory", str(300 << 20), "n1").returncode == 0, name
        after_update = show(unit, "NeedDaemonReload", "MemoryMax")
        seen[name] = (after_create, after_update["NeedDaemonReload"], after_update["MemoryMax"])
        assert rt("delete", "--force", "n1").returncode == 0
        assert unit_gone(unit)
    assert seen["pyrunc"] == ("no", "no", str(300 << 20)), seen
