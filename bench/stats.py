"""Summaries of repeated measurements: median and spread (min, max, interquartile range)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarise(runs: Sequence[float]) -> dict[str, Any]:
    """``{"median", "min", "max", "q1", "q3", "n", "runs"}`` of the finite values among ``runs``."""
    finite = [float(v) for v in runs if v is not None and math.isfinite(v)]
    if not finite:
        return {"median": None, "min": None, "max": None, "q1": None, "q3": None, "n": 0, "runs": []}
    return {
        "median": statistics.median(finite),
        "min": min(finite),
        "max": max(finite),
        "q1": percentile(finite, 25),
        "q3": percentile(finite, 75),
        "n": len(finite),
        "runs": [round(v, 4) for v in finite],
    }


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else math.nan
