"""Pressure stall information in ``events --stats`` on cgroup v2, in runc 1.5.1's JSON shape.

The expected documents are runc 1.5.1's own output in the v2 guest (tests/vm/test_runc15_v2.py
compares the two runtimes live); here the files are written by hand, so every rule is checked
on any host (this one has no per-cgroup pressure files).
"""

from __future__ import annotations

import json
from pathlib import Path

from pyrunc.cgroups.stats import parse_psi, v2_stats

CPU = "some avg10=0.18 avg60=0.03 avg300=0.00 total=28964\nfull avg10=0.18 avg60=0.03 avg300=0.00 total=21153\n"
ZERO = "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"


def test_parse_psi_as_runc_prints_it() -> None:
    got = parse_psi(CPU)
    assert got == {"some": {"avg10": 0.18, "avg60": 0.03, "avg300": 0, "total": 28964},
                   "full": {"avg10": 0.18, "avg60": 0.03, "avg300": 0, "total": 21153}}
    # Go prints a float64 zero as 0: the same bytes as runc 1.5.1's
    assert json.dumps(got, separators=(",", ":")) == (
        '{"some":{"avg10":0.18,"avg60":0.03,"avg300":0,"total":28964},'
        '"full":{"avg10":0.18,"avg60":0.03,"avg300":0,"total":21153}}')


def test_parse_psi_without_a_full_line_and_with_noise() -> None:
    got = parse_psi("some avg10=1.50 avg60=x avg300=2.25 total=7 extra=1\nbogus line\n")
    assert got == {"some": {"avg10": 1.5, "avg60": 0, "avg300": 2.25, "total": 7},
                   "full": {"avg10": 0, "avg60": 0, "avg300": 0, "total": 0}}


def cgroup(tmp_path: Path, pressure: bool) -> str:
    d = tmp_path / "c"
    d.mkdir()
    (d / "cpu.stat").write_text("usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 0\nnr_throttled 0\n"
                                "throttled_usec 0\n")
    (d / "memory.current").write_text("4096\n")
    (d / "memory.max").write_text("max\n")
    (d / "memory.stat").write_text("anon 4096\nfile 0\nkernel 100\nsock 0\n")
    (d / "pids.current").write_text("1\n")
    (d / "pids.max").write_text("40\n")
    if pressure:
        (d / "cpu.pressure").write_text(CPU)
        (d / "memory.pressure").write_text(ZERO)
        (d / "io.pressure").write_text(ZERO)
    return str(d)


def test_v2_stats_carry_psi_in_runc_151_places(tmp_path: Path) -> None:
    data = v2_stats(cgroup(tmp_path, pressure=True))
    zero = {"avg10": 0, "avg60": 0, "avg300": 0, "total": 0}
    assert data["cpu"] == {"usage": {"total": 10000, "kernel": 4000, "user": 6000}, "psi": parse_psi(CPU)}
    assert data["memory"]["psi"] == {"some": zero, "full": zero}
    assert data["blkio"] == {"psi": {"some": zero, "full": zero}}
    # runc 1.5.1's v2 shape: no empty throttling, no kernel/kernelTCP entries
    assert "throttling" not in data["cpu"]
    assert "kernel" not in data["memory"] and "kernelTCP" not in data["memory"]


def test_v2_stats_without_pressure_files_have_no_psi_key(tmp_path: Path) -> None:
    data = v2_stats(cgroup(tmp_path, pressure=False))
    assert "psi" not in data["cpu"] and "psi" not in data["memory"] and data["blkio"] == {}
