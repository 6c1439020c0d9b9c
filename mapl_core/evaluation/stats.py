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


Z95 = 1.959964


def wilson(successes: float, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (good at small n and near 0 or 1, where the normal one is not)."""
    if n <= 0:
        return math.nan, math.nan
    p = successes / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return centre - half, centre + half


def difference_interval(p1: float, n1: int, p2: float, n2: int) -> tuple[float, float]:
    """95% interval of p2 − p1 for two proportions (Newcombe's hybrid score method, from the Wilson intervals).
    On the same rows (a paired design) it is conservative: wider than a paired interval."""
    l1, u1 = wilson(p1 * n1, n1)
    l2, u2 = wilson(p2 * n2, n2)
    d = p2 - p1
    return d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2), d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)


def decimals_for(half_width: float) -> int:
    """Decimal places a value deserves next to an interval of this half-width: two significant digits of it."""
    if not half_width or math.isnan(half_width):
        return 1
    return max(0, 1 - math.floor(math.log10(abs(half_width))))


def points(value: float, low: float, high: float, signed: bool = False) -> str:
    """A proportion (or, `signed`, a difference) and its interval in percentage points, rounded to what the
    interval supports: "54.7 [42.6, 66.4]", "55 [31, 77]"; signed: "-8 [-24, +9]"."""
    if value is None or math.isnan(value):
        return "—"
    digits = decimals_for(50 * (high - low))
    sign = "+" if signed else ""
    return f"{100 * value:{sign}.{digits}f} [{100 * low:{sign}.{digits}f}, {100 * high:{sign}.{digits}f}]"


def cluster_bootstrap(
    values: list[float], clusters: list, reps: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean of `values`, resampling whole clusters (rows of one prompt
    are not independent: a reward model that misreads a prompt misreads all its pairs). Deterministic for
    a seed. For a paired difference, pass the per-row differences."""
    import numpy as np

    if not values:
        return math.nan, math.nan
    ids = {c: i for i, c in enumerate(dict.fromkeys(clusters))}
    index = np.array([ids[c] for c in clusters])
    sums = np.bincount(index, weights=np.asarray(values, dtype=float), minlength=len(ids))
    counts = np.bincount(index, minlength=len(ids)).astype(float)
    draws = np.random.default_rng(seed).integers(0, len(ids), size=(reps, len(ids)))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def mcnemar_exact(only_first: int, only_second: int) -> float:
    """Two-sided exact McNemar p-value for paired binary outcomes: `only_first` pairs where only the first
    arm succeeded, `only_second` where only the second did (the binomial test of the discordant pairs)."""
    n = only_first + only_second
    if n == 0:
        return 1.0
    k = min(only_first, only_second)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_ratio_bootstrap(
    first: list[float], second: list[float], totals: list[float], reps: int = 10000, seed: int = 0
) -> tuple[float, float, float]:
    """(difference, low, high): the paired 95% percentile-bootstrap interval of sum(second)/sum(totals) −
    sum(first)/sum(totals), resampling units (prompts) with their counts. Prompt-level accuracy: totals of 1;
    instruction-level: each prompt's number of instructions."""
    import numpy as np

    a, b, t = (np.asarray(x, dtype=float) for x in (first, second, totals))
    diff = (b.sum() - a.sum()) / t.sum()
    draws = np.random.default_rng(seed).integers(0, len(t), size=(reps, len(t)))
    samples = (b[draws].sum(axis=1) - a[draws].sum(axis=1)) / t[draws].sum(axis=1)
    low, high = np.percentile(samples, [2.5, 97.5])
    return float(diff), float(low), float(high)
