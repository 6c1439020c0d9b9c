"""The intervals every baseline-vs-MAPL row carries (mapl_core.evaluation.stats, tasks.artifacts.comparison): a
reader sees n, each accuracy's 95% interval and the difference's, rounded to what the interval supports."""

from __future__ import annotations

import pytest

from mapl_core.evaluation.stats import decimals_for, difference_interval, points, wilson
from tasks.artifacts import comparison, display_rows, summary_markdown


def test_wilson_matches_its_published_values() -> None:
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)  # Newcombe (1998), table I
    assert wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    low, high = wilson(32, 64)
    assert low < 0.5 < high and high - 0.5 == pytest.approx(0.5 - low)


def test_the_difference_interval_holds_zero_for_equal_proportions_and_widens_at_small_n() -> None:
    low, high = difference_interval(0.5, 64, 0.5, 64)
    assert low < 0 < high
    assert difference_interval(0.4, 1000, 0.6, 1000)[0] > 0  # 20 points on 1000 rows: shown
    small, large = difference_interval(0.4, 50, 0.6, 50), difference_interval(0.4, 500, 0.6, 500)
    assert small[1] - small[0] > large[1] - large[0]


def test_values_are_rounded_to_what_their_interval_supports() -> None:
    assert decimals_for(12.2) == 0 and decimals_for(3.4) == 1 and decimals_for(0.84) == 2
    assert points(0.5, 0.38, 0.62) == "50 [38, 62]"  # ±12 points: no decimals
    assert points(0.5, 0.48, 0.52) == "50.0 [48.0, 52.0]"


def test_every_row_carries_n_and_says_when_the_difference_is_not_shown() -> None:
    trained = {"rm": {"metrics": {"intra": {"accuracy": 0.469, "rows": 64}}},
               "rm_baseline": {"metrics": {"intra": {"accuracy": 0.547, "rows": 64}}}}  # fmt: skip
    evals = {"base": {"prompt_level_strict": 0.06}, "baseline": {"prompt_level_strict": 0.062},
             "mapl": {"prompt_level_strict": 0.3, "prompt_level_loose": 0.3, "inst_level_strict": 0.4,
                      "prompts": 541, "instructions": 834}}  # fmt: skip
    rows = comparison(trained, evals)
    intra = next(r for r in rows if r["metric"] == "held-out intra accuracy")
    assert (
        intra["n"] == 64 and intra["reads"] == "no difference shown at this n"
    )  # the 7.8 points of 2026-12-06
    strict = next(r for r in rows if r["metric"] == "IFEval prompt_level_strict")
    assert strict["n"] == 541 and strict["reads"] == "MAPL higher"
    assert next(r for r in rows if r["metric"] == "IFEval inst_level_strict")["n"] == 834
    shown = display_rows(rows)
    assert shown[0]["n"] == "64" and "[" in shown[0]["MAPL"] and shown[0]["Δ (points)"].startswith("-8")
    markdown = summary_markdown("p", {"t_intra": 0}, {}, rows)
    assert "95% intervals" in markdown and "no difference shown at this n" in markdown
