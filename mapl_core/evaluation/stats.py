"""Intervals for the experiments' tables."""

from __future__ import annotations

import math
import statistics

# two-sided 95% t quantiles by degrees of freedom; past 10 the normal quantile is within 0.2 of them
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def t_interval(values: list[float]) -> tuple[float, float]:
    """(mean, half-width of its 95% t-interval); the half-width is NaN for a single value, both are NaN where
    a value is (a column a run did not score)."""
    if any(math.isnan(v) for v in values):
        return math.nan, math.nan
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, float("nan")
    return mean, T975.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))
