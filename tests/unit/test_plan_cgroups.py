"""Manager.plan() against what create() and set() then write, on fake cgroupfs trees.

The plan must list exactly the writes create and set make, in their order, for every driver,
and make nothing itself (tests/integration/test_plan_differential.py does the same on the host).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pyrunc.cgroups import base, create_manager, devices_bpf, v1, v2
from pyrunc.errors import CgroupError
from pyrunc.process.creation import cgroup_resources
from tests.unit import fakecgroup
from tests.unit.test_cgroups_managers import make_layout

RESOURCES = {
    "memory": {"limit": 100 << 20, "swap": 150 << 20, "reservation": 10 << 20, "swappiness": 10},
    "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
    "pids": {"limit": 64},
    "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1 << 20}]},
    "devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3,
                                                     "access": "rw"}],
}


@pytest.fixture(autouse=True)
def cgroupfs(monkeypatch: pytest.MonkeyPatch) -> list:
    fakecgroup.install(monkeypatch)
    written: list = []
    real = base.write_file

    def record(directory, name, value, **kw):
        written.append([f"{directory}/{name}", value])
        return real(directory, name, value, **kw)

    for module in (base, v1, v2):
        monkeypatch.setattr(module, "write_file", record)
    monkeypatch.setattr(devices_bpf, "apply", lambda d, rules, container=None: written.append(["bpf", d]))
    return written


def tree(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*")}


@pytest.mark.parametrize("mode", ["v1", "v2", "hybrid"])
def test_plan_lists_the_writes_create_and_set_make(mode, tmp_path, cgroupfs):
    layout = make_layout(tmp_path, mode)
    resources = cgroup_resources({"linux": {"resources": RESOURCES}})
    if mode != "v2":
        resources["memory"].pop("swap")  # the fake v1 memory controller has no swap accounting
    m = create_manager("/pod/c1", "c1", layout=layout, resources=resources)
    before = tree(tmp_path)
    plan = m.plan()
    assert tree(tmp_path) == before and cgroupfs == []  # planning made and wrote nothing
    assert plan["mkdir"] and all(not Path(d).exists() for d in plan["mkdir"])
    m.create()
    m.set(m.resources)
    assert all(Path(d).is_dir() for d in plan["mkdir"])
    made = [w for w in cgroupfs if w[0] != "bpf"]
    assert [[f, v] for f, v, _ in plan["writes"]] == made
    if mode == "v2":
        assert ["bpf", m.paths()["unified"]] in cgroupfs
        assert plan["device_program"]["default"] == "deny"
        assert plan["device_program"]["rules"][-1] == "allow c 10:200 rwm"
    assert plan["placement"]["how"] == "born"


def test_plan_on_an_existing_parent_and_refusals(tmp_path, cgroupfs):
    """A parent that exists keeps its values (only the new level is seeded); a resource this
    host cannot take is refused by plan() as set() would refuse it."""
    layout = make_layout(tmp_path, "v1")
    (tmp_path / "cpuset" / "pod").mkdir()
    (tmp_path / "cpuset" / "pod" / "cpuset.cpus").write_text("2\n")
    (tmp_path / "cpuset" / "pod" / "cpuset.mems").write_text("0\n")
    m = create_manager("/pod/c1", "c1", layout=layout, resources={"pids": {"limit": 5}})
    plan = m.plan()
    seeded = [w for w in plan["writes"] if w[2] == "create cgroup"]
    assert seeded == [[str(tmp_path / "cpuset/pod/c1/cpuset.cpus"), "2", "create cgroup"],
                      [str(tmp_path / "cpuset/pod/c1/cpuset.mems"), "0", "create cgroup"]]
    bad = create_manager("/pod/c2", "c2", layout=layout, resources={"unified": {"memory.high": "1"}})
    with pytest.raises(CgroupError, match="needs cgroup v2"):
        bad.plan()


def test_v2_plan_predicts_controllers_of_a_new_cgroup(tmp_path, cgroupfs):
    """A controller the hierarchy does not offer is refused by plan(), as set() refuses it."""
    layout = make_layout(tmp_path, "v2")
    m = create_manager("/a/b/c", "c", layout=layout, resources={"rdma": {"mlx": {"hcaHandles": 2}}})
    with pytest.raises(CgroupError, match="rdma controller is not available"):
        m.plan()
    ok = create_manager("/a/b/c", "c", layout=layout, resources={"pids": {"limit": 3}})
    plan = ok.plan()
    enabling = [w[0] for w in plan["writes"] if w[0].endswith("cgroup.subtree_control")]
    assert enabling == [str(tmp_path / "v2/cgroup.subtree_control"), str(tmp_path / "v2/a/cgroup.subtree_control"),
                        str(tmp_path / "v2/a/b/cgroup.subtree_control")]


def test_systemd_plan_names_the_unit_its_properties_and_the_files(tmp_path, cgroupfs, monkeypatch):
    """No bus connection: the unit create would start, its properties (the same function the
    start uses) and the v2 files written into the unit's cgroup afterwards."""
    from pyrunc.cgroups import detect, systemd_unit

    monkeypatch.setattr(detect, "systemd_running", lambda: True)
    layout = make_layout(tmp_path, "v2")
    resources = {"memory": {"limit": 1 << 30}, "pids": {"limit": 10}}
    m = create_manager("machine.slice:pyrunc:c1", "c1", systemd=True, layout=layout, resources=resources)
    plan = m.plan()
    assert plan["driver"] == "systemd" and plan["unit"] == "pyrunc-c1.scope" and plan["slice"] == "machine.slice"
    assert plan["mkdir"] == [] and plan["placement"] == {"how": "unit", "unit": "pyrunc-c1.scope"}
    props = dict((name, value) for name, value in plan["properties"])
    assert props["Delegate"] is True and props["Slice"] == "machine.slice"
    assert props["MemoryMax"] == 1 << 30 and props["TasksMax"] == 10
    assert [n for n, _ in plan["properties"]][-2:] == [n for n, _ in systemd_unit.resource_properties(resources)]
    unit_dir = tmp_path / "v2/machine.slice/pyrunc-c1.scope"
    assert [w[0] for w in plan["writes"]] == [str(unit_dir / "memory.max"), str(unit_dir / "pids.max")]
    assert cgroupfs == [] and not unit_dir.exists()
