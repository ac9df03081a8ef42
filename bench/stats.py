"""Percentiles and paired ratios: every result is a distribution, never one number."""

from __future__ import annotations

from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    s = sorted(values)
    pos = (len(s) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median with p10/p90 and the sample count."""
    return {"median": percentile(values, 50), "p10": percentile(values, 10),
            "p90": percentile(values, 90), "n": float(len(values))}


def paired_ratios(num: Sequence[float], den: Sequence[float]) -> list[float]:
    """Iteration-by-iteration ratios of two runtimes measured alternately."""
    return [a / b for a, b in zip(num, den, strict=False) if b > 0]
