"""Pure parts of update / events / ps: units, flag patches, merging, durations, ps filtering."""

from __future__ import annotations

import pytest

from pyrunc.cgroups.resources import merge_resources
from pyrunc.cli.args import parse
from pyrunc.cli.events import parse_duration
from pyrunc.cli.ps import filter_table
from pyrunc.cli.update import OPTIONS, check_patch, parse_size, patch_from_flags
from pyrunc.errors import ConfigError, PyruncError, UsageError


@pytest.mark.parametrize("text,value", [
    ("512m", 512 << 20), ("512M", 512 << 20), ("512MB", 512 << 20), ("512mib", 512 << 20),
    ("1g", 1 << 30), ("100k", 100 << 10), ("4096", 4096), ("4096b", 4096), ("1.5g", 3 << 29),
    ("-1", -1), ("2t", 2 << 40),
])
def test_parse_size(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "lots", "-2", "1x", "m", "1gg", "--1"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_size(text)


def test_patch_from_flags_builds_oci_shape() -> None:
    p = parse(["--memory", "512m", "--memory-swap=-1", "--cpu-share", "512", "--cpu-quota", "-1",
               "--cpuset-cpus", "0-1", "--pids-limit", "-1", "--blkio-weight", "300", "c1"], OPTIONS)
    assert p.args == ["c1"]
    assert patch_from_flags(p.opts) == {
        "memory": {"limit": 512 << 20, "swap": -1},
        "cpu": {"shares": 512, "quota": -1, "cpus": "0-1"},
        "pids": {"limit": -1},
        "blockIO": {"weight": 300},
    }


def test_patch_from_flags_rejects_negative_unsigned() -> None:
    p = parse(["--cpu-period", "-5", "c1"], OPTIONS)
    with pytest.raises(UsageError, match="cpu-period"):
        patch_from_flags(p.opts)


def test_no_flags_is_an_empty_patch() -> None:
    assert patch_from_flags(parse(["c1"], OPTIONS).opts) == {}


@pytest.mark.parametrize("doc", [{"memory": {"limit": "1g"}}, {"memory": {"limit": -2}},
                                 {"cpu": {"shares": -1}}, {"bogus": {}}, [], {"pids": {"limit": 1.5}}])
def test_check_patch_rejects(doc) -> None:
    with pytest.raises(ConfigError):
        check_patch(doc)


def test_check_patch_accepts() -> None:
    check_patch({"memory": {"limit": -1, "swap": -1}, "cpu": {"cpus": "0", "quota": -1},
                 "pids": {"limit": -1}, "unified": {"memory.high": "100000"}})


def test_merge_keeps_recorded_values() -> None:
    old = {"memory": {"limit": 100, "swap": 200}, "devices": [{"allow": False}],
           "hugepageLimits": [{"pageSize": "2MB", "limit": 1}, {"pageSize": "1GB", "limit": 2}]}
    merged, touched = merge_resources(old, {"memory": {"limit": 150, "swap": None},
                                            "hugepageLimits": [{"pageSize": "2MB", "limit": 5}],
                                            "devices": [{"allow": True}]})
    assert merged["memory"] == {"limit": 150, "swap": 200}
    assert merged["devices"] == [{"allow": False}], "update never touches device rules"
    assert sorted((e["pageSize"], e["limit"]) for e in merged["hugepageLimits"]) == [("1GB", 2), ("2MB", 5)]
    assert touched == ["memory", "hugepageLimits"]
    assert old["memory"] == {"limit": 100, "swap": 200}, "input not modified"


@pytest.mark.parametrize("text,seconds", [("5s", 5), ("250ms", 0.25), ("1m30s", 90), ("1h", 3600),
                                          ("1.5s", 1.5), ("0", 0), ("100us", 1e-4), ("-1s", -1)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "soon", "5x", "s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_duration(text)


PS = """UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 08:00 ?        00:00:01 /sbin/init
root         120       1  0 08:00 ?        00:00:00 sleep 1000 120
root        1200     120  0 08:00 ?        00:00:00 sh -c echo 1 2
"""


def test_filter_table_keeps_header_and_members() -> None:
    out = filter_table(PS, {120, 1200}).splitlines()
    assert out[0].startswith("UID") and len(out) == 3
    assert [line.split()[1] for line in out[1:]] == ["120", "1200"]


def test_filter_table_needs_pid_column() -> None:
    with pytest.raises(PyruncError, match="couldn't find PID field in ps output"):
        filter_table("COMMAND\nsleep\n", {1})


def test_ps_args_after_the_id_are_payload() -> None:
    from pyrunc.cli.args import Opt

    p = parse(["-f", "json", "c1", "-o", "pid", "--format", "x"], [Opt("format", True, "f")],
              stop_at_positional=True)
    assert p.opts["format"] == "json" and p.args == ["c1", "-o", "pid", "--format", "x"]
