"""The systemd driver without systemd: path rules, properties, and the manager against a fake bus.

The cases for cgroupsPath and slice expansion are runc 1.1's (its systemd
driver is the oracle); the fake bus stands in for D-Bus only to drive the
manager's error paths (unit exists, failed job, a dead init), which a real
systemd is tested for in the --systemd guest lane (tests/vmsystemd/).
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from pyrunc.cgroups import create_manager, detect, load_manager
from pyrunc.cgroups import systemd_unit as su
from pyrunc.errors import CgroupError
from tests.unit import fakecgroup

MAX = (1 << 64) - 1


# ----------------------------------------------------------------------------- cgroupsPath
@pytest.mark.parametrize("path,expected", [
    ("", ("system.slice", "runc", "c1")),
    (None, ("system.slice", "runc", "c1")),
    ("system.slice:runc:c1", ("system.slice", "runc", "c1")),
    ("machine.slice:libpod:abc", ("machine.slice", "libpod", "abc")),
    ("kubepods-burstable-pod12.slice:cri-containerd:x", ("kubepods-burstable-pod12.slice", "cri-containerd", "x")),
    (":docker:c1", ("system.slice", "docker", "c1")),  # an empty slice means the default one
    ("system.slice::c1", ("system.slice", "", "c1")),
])
def test_parse_cgroups_path(path, expected) -> None:
    assert su.parse_cgroups_path(path, "c1") == expected


@pytest.mark.parametrize("path,match", [
    ("/sys/fs/cgroup/x", "slice:prefix:name"),
    ("a:b", "slice:prefix:name"),
    ("a:b:c:d", "slice:prefix:name"),
    ("system.slice:runc:", "name part is empty"),
    ("system.slice:ru/nc:c1", "prefix may not contain"),
    ("system.slice:runc:c/1", "name may not contain"),
])
def test_parse_cgroups_path_refuses(path, match) -> None:
    with pytest.raises(CgroupError, match=match):
        su.parse_cgroups_path(path, "c1")


def test_unit_name() -> None:
    assert su.unit_name("runc", "c1") == "runc-c1.scope"
    assert su.unit_name("", "c1") == "-c1.scope"  # runc joins with "-" unconditionally
    assert su.unit_name("runc", "pod-x.slice") == "pod-x.slice"


@pytest.mark.parametrize("slice_,expected", [
    ("-.slice", "/"),
    ("system.slice", "/system.slice"),
    ("system-foo.slice", "/system.slice/system-foo.slice"),
    ("a-b-c.slice", "/a.slice/a-b.slice/a-b-c.slice"),
    ("kubepods-burstable-pod12.slice", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod12.slice"),
])
def test_expand_slice(slice_, expected) -> None:
    assert su.expand_slice(slice_) == expected


@pytest.mark.parametrize("slice_,match", [
    ("system", "must end in .slice"),
    (".slic", "must end in .slice"),
    ("system.scope", "must end in .slice"),
    ("a/b.slice", "may not contain"),
    ("a--b.slice", "empty component"),
    ("-a.slice", "empty component"),
    ("a-.slice", "empty component"),
])
def test_expand_slice_refuses(slice_, match) -> None:
    with pytest.raises(CgroupError, match=match):
        su.expand_slice(slice_)


def test_cgroup_path() -> None:
    assert su.cgroup_path("system.slice", "runc-c1.scope") == "/system.slice/runc-c1.scope"
    assert su.cgroup_path("-.slice", "x.slice") == "/x.slice"
    assert su.cgroup_path("a-b.slice", "p-c.scope") == "/a.slice/a-b.slice/p-c.scope"


# ----------------------------------------------------------------------------- properties
def props(lst) -> dict:
    out: dict = {}
    for name, value in lst:
        out.setdefault(name, []).append(value)
    return {k: v[-1] for k, v in out.items()}


def test_unit_properties_scope_and_slice() -> None:
    p = props(su.unit_properties("d", "system.slice", "runc-c1.scope", 42))
    assert p["Slice"] == ("s", "system.slice") and p["Delegate"] == ("b", True)
    assert p["PIDs"] == ("au", [42]) and p["DefaultDependencies"] == ("b", False)
    assert p["MemoryAccounting"] == ("b", True) and p["TasksAccounting"] == ("b", True)
    p = props(su.unit_properties("d", "system.slice", "x.slice", -1))
    assert p["Wants"] == ("as", ["system.slice"]) and "Slice" not in p and "Delegate" not in p and "PIDs" not in p


def test_memory_pids_cpu_properties() -> None:
    p = props(su.resource_properties({
        "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 96 << 20},
        "pids": {"limit": 33},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1,3", "mems": "0"},
    }))
    assert p["MemoryMax"] == ("t", 64 << 20)
    assert p["MemoryLow"] == ("t", 32 << 20)
    assert p["MemorySwapMax"] == ("t", 32 << 20)  # memory+swap - memory, as the v2 file
    assert p["TasksMax"] == ("t", 33)
    assert p["CPUWeight"] == ("t", 100)  # runc 1.3.2+'s conversion of 1024 shares (1.1: 39)
    assert p["CPUQuotaPeriodUSec"] == ("t", 100000)
    assert p["CPUQuotaPerSecUSec"] == ("t", 500000)
    assert p["AllowedCPUs"] == ("ay", bytes([0b1011]))
    assert p["AllowedMemoryNodes"] == ("ay", b"\x01")


def test_unlimited_values_are_infinity() -> None:
    p = props(su.resource_properties({"memory": {"limit": -1}, "pids": {"limit": -1},
                                      "cpu": {"quota": -1, "period": 100000}}))
    assert p["MemoryMax"] == ("t", MAX) and p["MemorySwapMax"] == ("t", MAX) and p["TasksMax"] == ("t", MAX)
    assert p["CPUQuotaPerSecUSec"] == ("t", MAX)
    assert su.resource_properties({"pids": {}, "memory": {}}) == []
    # pids.limit 0 is a limit (spec 1.3): systemd has no TasksMax=0, runc 1.4+ sets 1 (the files too)
    assert su.resource_properties({"pids": {"limit": 0}}) == [("TasksMax", ("t", 1))]


@pytest.mark.parametrize("quota,period,expected", [
    (50000, 100000, 500000),
    (33333, 100000, 340000),  # 333330 rounded up to the next whole percent
    (10000, 0, 100000),       # default period 100 ms
    (1, 1000000, 10000),
    (200000, 100000, 2000000),
    (0, 100000, MAX),
])
def test_cpu_quota_per_sec(quota, period, expected) -> None:
    assert su.cpu_quota_per_sec(quota, period) == expected


def test_range_to_bits() -> None:
    assert su.range_to_bits("0", "x") == b"\x01"
    assert su.range_to_bits("8", "x") == b"\x00\x01"
    assert su.range_to_bits("0-9", "x") == b"\xff\x03"
    assert su.range_to_bits("", "x") == b"\x00"
    with pytest.raises(CgroupError, match="invalid cpuset cpus"):
        su.range_to_bits("3-1", "cpuset cpus")
    with pytest.raises(CgroupError, match="invalid cpuset cpus"):
        su.range_to_bits("a", "cpuset cpus")


def test_io_and_unified_properties() -> None:
    p = props(su.resource_properties({
        "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
        "unified": {"memory.high": "max", "memory.min": "4096", "pids.max": "12", "cpu.max": "25000 50000",
                    "cpu.weight": "77", "io.max": "8:0 wiops=5"},
    }))
    assert p["IOWeight"] == ("t", 1 + (490 * 9999) // 990)
    assert p["IOReadBandwidthMax"] == ("a(st)", [("/dev/block/8:0", 1048576)])
    assert p["MemoryHigh"] == ("t", MAX) and p["MemoryMin"] == ("t", 4096) and p["TasksMax"] == ("t", 12)
    assert p["CPUQuotaPeriodUSec"] == ("t", 50000) and p["CPUQuotaPerSecUSec"] == ("t", 500000)
    assert p["CPUWeight"] == ("t", 77)
    assert not any(name.startswith("IOWrite") for name in p)  # io.max has no property: files only


DEVICES = "Character devices:\n  1 mem\n  5 /dev/tty\n136 pts\n\nBlock devices:\n  8 sd\n"


def test_device_properties(tmp_path: Path) -> None:
    from pyrunc.cgroups.resources import DEFAULT_ALLOWED_DEVICES

    f = tmp_path / "devices"
    f.write_text(DEVICES)
    rules = [{"allow": False, "access": "rwm"}, {"allow": True, "type": "b", "major": 8, "minor": 0, "access": "r"},
             {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "w"}, *DEFAULT_ALLOWED_DEVICES]
    p = su.device_properties(rules, str(f))
    assert p[0] == ("DevicePolicy", ("s", "strict"))
    allow = dict(p[-1][1][1])
    assert allow["char-*"] == "m" and allow["block-*"] == "m"
    assert allow["/dev/char/1:3"] == "rwm"  # the "w" and the default "rwm" merged
    assert allow["/dev/block/8:0"] == "r"
    assert allow["char-pts"] == "rwm"


def test_device_properties_denies_and_allow_all(tmp_path: Path) -> None:
    f = tmp_path / "devices"
    f.write_text(DEVICES)
    rules = [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 5},
             {"allow": False, "type": "c", "major": 1, "minor": 5, "access": "w"},
             {"allow": True, "type": "c", "minor": 7}]  # "*:7": no systemd form
    assert dict(su.device_properties(rules, str(f))[-1][1][1]) == {"/dev/char/1:5": "rm"}
    assert su.device_properties([{"allow": True, "access": "rwm"}], str(f)) == [
        ("DevicePolicy", ("s", "auto")), ("DeviceAllow", ("a(ss)", []))]
    # allow-all with a deny after it: not expressible, strict and empty (the eBPF program decides)
    assert su.device_properties([{"allow": True, "access": "rwm"},
                                 {"allow": False, "type": "c", "major": 1, "minor": 5}], str(f)) == [
        ("DevicePolicy", ("s", "strict")), ("DeviceAllow", ("a(ss)", []))]
    # no rule for everything at all: systemd starts from deny-all (runc's emulator does too)
    assert su.device_properties([{"allow": True, "type": "c", "major": 1, "minor": 3}], str(f)) == [
        ("DevicePolicy", ("s", "strict")), ("DeviceAllow", ("a(ss)", [("/dev/char/1:3", "rwm")]))]


# ----------------------------------------------------------------------------- the manager
class FakeBus:
    """Records calls; ``start_result`` / ``start_error`` / ``stop_error`` script the answers."""

    def __init__(self, cgroup: Path, start_result: str = "done", start_error: str = "",
                 stop_error: str = ""):
        self.cgroup, self.start_result, self.start_error, self.stop_error = cgroup, start_result, start_error, stop_error
        self.calls: list = []

    def start_transient_unit(self, unit, properties, *, step):
        from pyrunc.cgroups.sdbus import SystemdBusError

        self.calls.append(("start", unit, props(properties)))
        if self.start_error:
            raise SystemdBusError(self.start_error, "refused", step)
        if self.start_result == "done":
            self.cgroup.mkdir(parents=True)
        return self.start_result

    def set_unit_properties(self, unit, properties, *, step):
        self.calls.append(("set", unit, props(properties)))

    def stop_unit(self, unit, *, step):
        from pyrunc.cgroups.sdbus import SystemdBusError

        self.calls.append(("stop", unit))
        if self.stop_error:
            raise SystemdBusError(self.stop_error, "no such unit", step)
        if self.cgroup.exists():
            for f in self.cgroup.iterdir():
                f.unlink()
            self.cgroup.rmdir()
        return "done"

    def reset_failed_unit(self, unit, *, step):
        self.calls.append(("reset", unit))

    def close(self):
        pass


@pytest.fixture
def v2_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    mp = tmp_path / "v2"
    mp.mkdir()
    fakecgroup.install(monkeypatch)  # the unit cgroups FakeBus makes get the kernel's files
    fakecgroup.mount(mp, "v2", ["cpu", "io", "memory", "pids"])
    monkeypatch.setattr(detect, "systemd_running", lambda: True)
    return detect.build_layout(f"99 20 0:99 / {mp} rw - cgroup2 cgroup2 rw\n", "0::/init.scope\n"), mp


def make(layout, bus, path="a-b.slice:pre:c1", resources=None):
    m = create_manager(path, "c1", systemd=True, layout=layout, resources=resources)
    m._bus = bus
    m.create()
    return m


def test_manager_starts_unit_with_init_and_resources(v2_layout) -> None:
    layout, mp = v2_layout
    bus = FakeBus(mp / "a.slice/a-b.slice/pre-c1.scope")
    resources = {"memory": {"limit": 1 << 20}, "pids": {"limit": 9}}
    m = make(layout, bus, resources=resources)
    assert m.paths()["unified"] == f"{mp}/a.slice/a-b.slice/pre-c1.scope"
    assert not m.can_place_at_birth()  # the unit does not exist yet
    m.apply(os.getpid())
    kind, unit, p = bus.calls[0]
    assert (kind, unit) == ("start", "pre-c1.scope")
    assert p["PIDs"] == ("au", [os.getpid()]) and p["Slice"] == ("s", "a-b.slice")
    assert p["MemoryMax"] == ("t", 1 << 20) and p["TasksMax"] == ("t", 9)
    m.set(resources)  # right after the start: files only, no second round trip
    assert [c[0] for c in bus.calls] == ["start"]
    assert (mp / "a.slice/a-b.slice/pre-c1.scope/memory.max").read_text() == str(1 << 20)
    saved = json.loads(json.dumps(m.save()))
    assert saved["driver"] == "systemd" and saved["unit"] == "pre-c1.scope" and saved["slice"] == "a-b.slice"
    again = load_manager(saved)
    again._bus = bus
    assert again.can_place_at_birth()  # exec: cloned into the unit's cgroup
    again.set({"pids": {"limit": 5}})  # update: properties, then files
    assert bus.calls[-1][0] == "set" and bus.calls[-1][2]["TasksMax"] == ("t", 5)
    again.destroy()
    assert bus.calls[-2:] == [("stop", "pre-c1.scope"), ("reset", "pre-c1.scope")]
    assert not (mp / "a.slice/a-b.slice/pre-c1.scope").exists()


def test_unit_exists_is_an_error_and_not_stopped(v2_layout) -> None:
    layout, mp = v2_layout
    bus = FakeBus(mp / "system.slice/runc-c1.scope", start_error="org.freedesktop.systemd1.UnitExists")
    m = make(layout, bus, "")
    (mp / "system.slice/runc-c1.scope").mkdir(parents=True)  # the other unit's cgroup
    with pytest.raises(CgroupError, match="unit runc-c1.scope already exists") as info:
        m.apply(os.getpid())
    assert info.value.container == "c1"
    assert not m.exists()  # so create's cleanup signals nothing in there
    m.destroy()  # the existing unit is someone else's
    assert (mp / "system.slice/runc-c1.scope").is_dir()
    assert [c[0] for c in bus.calls] == ["start"]


def test_failed_job_is_an_error_and_cleaned(v2_layout) -> None:
    layout, mp = v2_layout
    bus = FakeBus(mp / "system.slice/runc-c1.scope", start_result="failed")
    m = make(layout, bus, "")
    with pytest.raises(CgroupError, match="could not start unit runc-c1.scope: its job ended 'failed'"):
        m.apply(os.getpid())
    m.destroy()
    assert [c[0] for c in bus.calls] == ["start", "stop", "reset"]


def test_dead_init_reports_process_lookup(v2_layout) -> None:
    layout, mp = v2_layout
    bus = FakeBus(mp / "system.slice/runc-c1.scope", start_error="org.freedesktop.DBus.Error.UnixProcessIdUnknown")
    m = make(layout, bus, "")
    with pytest.raises(CgroupError) as info:
        m.apply(2 ** 22 + 1)  # above pid_max's ceiling: never alive
    assert info.value.errno == errno.ESRCH and info.value.container == "c1"


def test_stop_of_a_gone_unit_is_fine(v2_layout) -> None:
    layout, mp = v2_layout
    bus = FakeBus(mp / "system.slice/runc-c1.scope", stop_error="org.freedesktop.systemd1.NoSuchUnit")
    m = load_manager({"driver": "systemd", "id": "c1", "paths": {"unified": f"{mp}/system.slice/runc-c1.scope"},
                      "mountpoints": {"unified": str(mp)}, "unit": "runc-c1.scope", "slice": "system.slice"})
    m._bus = bus
    m.destroy()
    assert bus.calls == [("stop", "runc-c1.scope"), ("reset", "runc-c1.scope")]
