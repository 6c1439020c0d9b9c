from collections import Counter

import pytest

from mapl_core.training.mixing import OBJECTIVE_OF, mixed_indices, staged_indices


def test_balanced_mix_gives_each_objective_the_same_share() -> None:
    levels = ["original"] * 10 + ["intra"] * 25 + ["inter"] * 30 + ["inter_margin"] * 40
    order = mixed_indices(levels, "balanced", seed=3)
    per_objective = Counter(OBJECTIVE_OF[levels[i]] for i in order)
    assert per_objective == {"original": 70, "intra": 70, "inter": 70}
    assert set(order) == set(range(len(levels)))  # every row appears
    counts = Counter(order)
    originals = [counts[i] for i in range(10)]
    assert max(originals) - min(originals) <= 1  # cycled evenly, not sampled with replacement
    # inter keeps its own pairwise : margin proportion
    assert Counter(levels[i] for i in order if OBJECTIVE_OF[levels[i]] == "inter") == {
        "inter": 30,
        "inter_margin": 40,
    }


def test_mixes_are_reproducible_and_natural_is_a_permutation() -> None:
    levels = ["original"] * 5 + ["intra"] * 9
    assert mixed_indices(levels, "balanced", 0) == mixed_indices(levels, "balanced", 0)
    assert mixed_indices(levels, "balanced", 0) != mixed_indices(levels, "balanced", 1)
    assert sorted(mixed_indices(levels, "natural", 0)) == list(range(14))
    assert sorted(mixed_indices(["original"] * 4, "balanced", 0)) == [0, 1, 2, 3]  # one objective: no change
    with pytest.raises(ValueError, match="level mix"):
        mixed_indices(levels, "weighted", 0)


def test_curriculum_stages_draw_only_their_levels_in_turn() -> None:
    levels = ["original"] * 4 + ["intra"] * 3 + ["inter"] * 5 + ["inter_margin"] * 6
    order = staged_indices(
        levels, "balanced", 0, [({"intra"}, 7), ({"intra", "inter_margin"}, 12), (None, 33)]
    )
    assert len(order) == 52
    first, second, rest = order[:7], order[7:19], order[19:]
    assert {levels[i] for i in first} == {"intra"}
    assert sorted(Counter(first).values()) == [2, 2, 3]  # cycled evenly, not sampled with replacement
    assert Counter(levels[i] for i in second) == {"intra": 6, "inter_margin": 6}  # balanced within the stage
    assert {levels[i] for i in rest} == {"original", "intra", "inter", "inter_margin"}
    per_objective = Counter(OBJECTIVE_OF[levels[i]] for i in rest)
    assert per_objective == {"original": 11, "intra": 11, "inter": 11}  # the whole balanced mix
    assert staged_indices(levels, "balanced", 0, [({"intra"}, 7), (None, 9)]) == staged_indices(
        levels, "balanced", 0, [({"intra"}, 7), (None, 9)]
    )
    assert staged_indices(levels, "balanced", 1, [({"intra"}, 7)]) != staged_indices(
        levels, "balanced", 0, [({"intra"}, 7)]
    )
    with pytest.raises(ValueError, match="stage 0: no rows of"):
        staged_indices(["original"] * 3, "balanced", 0, [({"intra"}, 2)])


def test_shares_reweight_the_balanced_mix_and_leave_it_alone_without_them() -> None:
    levels = ["original"] * 10 + ["intra"] * 25 + ["inter"] * 30 + ["inter_margin"] * 40
    plain = mixed_indices(levels, "balanced", seed=3)
    assert mixed_indices(levels, "balanced", 3, {}) == plain
    assert mixed_indices(levels, "balanced", 3, {"original": 1.0, "inter": 1.0}) == plain  # 1 is the default
    order = mixed_indices(levels, "balanced", 3, {"original": 2})
    assert Counter(OBJECTIVE_OF[levels[i]] for i in order) == {"original": 70, "intra": 35, "inter": 35}
    order = mixed_indices(levels, "balanced", 3, {"intra": 0.5})
    assert Counter(OBJECTIVE_OF[levels[i]] for i in order) == {"original": 70, "intra": 35, "inter": 70}
    originals = Counter(i for i in mixed_indices(levels, "balanced", 3, {"original": 2}) if i < 10)
    assert set(originals.values()) == {7}  # still cycled evenly
    staged = staged_indices(levels, "balanced", 0, [(None, 40)], {"original": 2})
    assert Counter(OBJECTIVE_OF[levels[i]] for i in staged)["original"] == 20


@pytest.mark.parametrize(
    ("mix", "shares", "message"),
    [
        ("balanced", {"margin": 2}, "unknown objectives \\['margin'\\]"),
        ("balanced", {"intra": 0}, "must be > 0: intra=0"),
        ("natural", {"original": 2}, "reweight the balanced mix"),
    ],
)
def test_bad_shares_are_refused_with_the_reason(mix: str, shares: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mixed_indices(["original", "intra"], mix, 0, shares)
