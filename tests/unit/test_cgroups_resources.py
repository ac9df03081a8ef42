"""Pure OCI -> cgroup value conversions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyrunc.cgroups import resources as res
from pyrunc.cgroups.base import clean_path, join
from pyrunc.errors import CgroupError

# What runc 1.5.1 wrote to cpu.weight in the v2 guest for these cpu.shares (tests/vm/test_runc15_v2.py checks it there).
RUNC_151_WEIGHTS = {2: 1, 100: 17, 512: 59, 1024: 100, 2048: 174, 10000: 627, 262144: 10000}


def test_cpu_shares_to_weight_matches_runc_151() -> None:
    assert res.cpu_shares_to_weight(0) == 0
    assert res.cpu_shares_to_weight(1) == 1  # clamped
    assert {s: res.cpu_shares_to_weight(s) for s in RUNC_151_WEIGHTS} == RUNC_151_WEIGHTS


def test_cpu_shares_linear_mapping_of_runc_11() -> None:
    assert res.cpu_shares_to_weight_linear(1024) == 39  # what runc 1.1.5 writes
    assert res.cpu_shares_to_weight_linear(2) == 1
    assert res.cpu_shares_to_weight_linear(262144) == 10000


@given(st.integers(min_value=2, max_value=262143))
def test_weight_mappings_are_monotonic_and_in_range(shares: int) -> None:
    for fn in (res.cpu_shares_to_weight, res.cpu_shares_to_weight_linear):
        w, w_next = fn(shares), fn(shares + 1)
        assert 1 <= w <= w_next <= 10000


def test_blkio_weight_to_io_weight() -> None:
    assert res.blkio_weight_to_io_weight(0) == 0
    assert res.blkio_weight_to_io_weight(10) == 1
    assert res.blkio_weight_to_io_weight(500) == 4950
    assert res.blkio_weight_to_io_weight(1000) == 10000


def test_memory_swap_to_v2() -> None:
    assert res.memory_swap_to_v2(0, -1) == -1
    assert res.memory_swap_to_v2(-1, 100) == -1
    assert res.memory_swap_to_v2(0, 100) == 0
    assert res.memory_swap_to_v2(300, 100) == 200
    with pytest.raises(CgroupError, match=">= memory"):
        res.memory_swap_to_v2(50, 100)
    with pytest.raises(CgroupError, match="without a memory limit"):
        res.memory_swap_to_v2(50, 0)
    assert res.memory_swap_to_v2(300, -1) == 300  # unlimited memory: swap alone (runc 1.2.1+)


def test_cpu_max_and_pids_max() -> None:
    assert res.cpu_max(None, None) is None
    assert res.cpu_max(50000, 100000) == "50000 100000"
    assert res.cpu_max(-1, 100000) == "max 100000"
    assert res.cpu_max(20000, None) == "20000"
    assert res.pids_max(None) is None
    assert res.pids_max(0) == "1"  # a limit (spec 1.3); runc 1.4+ writes 1 for it
    assert res.pids_max(-1) == "max" and res.pids_max(5) == "5"


def test_device_rules() -> None:
    assert res.device_rule({"allow": False, "access": "rwm"}) == ("devices.deny", "a *:* rwm")
    assert res.device_rule({"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"}) == (
        "devices.allow", "c 10:229 rw")
    with pytest.raises(CgroupError):
        res.device_rule({"allow": True, "type": "x"})
    with pytest.raises(CgroupError):
        res.device_rule({"allow": True, "access": "rwx"})


def test_check_keys_rejects_unknown() -> None:
    res.check_keys({"memory": {"limit": 1}, "cpu": {"shares": 2}, "unified": {"a.b": "1"}})
    with pytest.raises(CgroupError, match=r"linux.resources.bogus"):
        res.check_keys({"bogus": {}})
    with pytest.raises(CgroupError, match=r"linux.resources.memory.limitt"):
        res.check_keys({"memory": {"limitt": 1}})


def test_unified_key_and_page_size() -> None:
    assert res.unified_key("memory.high") == "memory"
    for bad in ("../memory.max", "memory", ".hidden", "a/b.c"):
        with pytest.raises(CgroupError):
            res.unified_key(bad)
    assert res.check_page_size("2MB") == "2MB"
    with pytest.raises(CgroupError):
        res.check_page_size("2M/../x")


def test_clean_path_never_climbs() -> None:
    assert clean_path("../../etc") == "etc"
    assert clean_path("/a/../../b/./c/") == "/b/c"
    assert clean_path("a//b") == "a/b"
    assert join("/sys/fs/cgroup/cpu", "/", "t1") == "/sys/fs/cgroup/cpu/t1"
    assert join("/m", "/x/y", "z") == "/m/x/y/z"


@given(st.lists(st.sampled_from(["a", "..", ".", "", "b"]), max_size=8))
def test_clean_path_stays_inside(parts: list[str]) -> None:
    raw = "/".join(parts)
    cleaned = clean_path(raw)
    assert ".." not in cleaned.split("/")
    assert cleaned.startswith("/") == raw.startswith("/") or cleaned == ""


def test_update_merges_block_devices_by_major_minor() -> None:
    """runc 1.5.1's update -r: per-device lists merge by major:minor, later entries win."""
    old = {"blockIO": {"weight": 100,
                       "throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 1048576}],
                       "weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 300}]}}
    merged, touched = res.merge_resources(old, {"blockIO": {
        "throttleReadBpsDevice": [{"major": 253, "minor": 0, "rate": 2097152}],
        "weightDevice": [{"major": 8, "minor": 0, "weight": 200}, {"major": 8, "minor": 16, "weight": 10}]}})
    bio = merged["blockIO"]
    assert touched == ["blockIO"] and bio["weight"] == 100
    assert bio["throttleReadBpsDevice"] == [{"major": 254, "minor": 0, "rate": 1048576},
                                            {"major": 253, "minor": 0, "rate": 2097152}]
    assert bio["weightDevice"] == [{"major": 8, "minor": 0, "weight": 200, "leafWeight": 300},
                                   {"major": 8, "minor": 16, "weight": 10}]
    again, _ = res.merge_resources(merged, {"blockIO": {"throttleReadBpsDevice": [
        {"major": 254, "minor": 0, "rate": 0}]}})
    assert again["blockIO"]["throttleReadBpsDevice"][0] == {"major": 254, "minor": 0, "rate": 0}
    assert old["blockIO"]["weightDevice"][0]["weight"] == 500, "the record passed in is not modified"
