"""Paired bootstrap intervals: they contain a true zero, exclude a real gap, and resample whole groups."""

import pytest

from streamrec.state.paired import paired_difference, paired_differences
from streamrec.state.ranking_metrics import METRIC_NAMES, RankingMetrics, metric_of_rank


def tally(ranks: list[float | None], groups: list[int]) -> RankingMetrics:
    metrics = RankingMetrics()
    for key, (rank, group) in enumerate(zip(ranks, groups)):
        metrics.add_rank(rank, key=key, group=group)
    return metrics


def test_metric_of_rank_matches_the_summary() -> None:
    for rank in (1, 2, 7, 10, 11, 20, 21, None):
        metrics = RankingMetrics()
        metrics.add_rank(rank)
        assert {name: metric_of_rank(name, rank) for name in METRIC_NAMES} == pytest.approx(metrics.summary())


def test_identical_scorers_differ_by_exactly_zero() -> None:
    ranks = [1, None, 3, 25, 2] * 40
    a = tally(ranks, [i // 5 for i in range(200)])
    result = paired_difference(a, a, "HR@20", ("x", "y"))
    assert result.diff == 0.0 and result.ci95 == (0.0, 0.0) and result.verdict == "tie"
    assert result.predictions == 200 and result.groups == 40


def test_a_clear_gap_is_a_win_and_noise_is_a_tie() -> None:
    groups = [i // 4 for i in range(400)]
    better = tally([1] * 300 + [None] * 100, groups)
    worse = tally([None] * 300 + [1] * 100, groups)
    result = paired_difference(better, worse, "HR@20", ("better", "worse"))
    assert result.diff == pytest.approx(0.5) and result.a_beats_b and result.verdict == "better beats worse"
    # one prediction apart in 400: the interval holds 0
    a = tally([1] * 200 + [None] * 200, groups)
    b = tally([1] * 199 + [None] * 201, groups)
    close = paired_difference(a, b, "HR@20")
    assert close.ci95[0] <= 0.0 <= close.ci95[1] and close.verdict == "tie"


def test_groups_widen_the_interval() -> None:
    """The same predictions, once as 400 independent groups and once as 4 sessions of 100 that disagree
    with each other: the sessions are the units, so the interval is far wider."""
    ranks_a = [1 if i < 200 else None for i in range(400)]
    ranks_b = [1 if i % 2 else None for i in range(400)]
    narrow = paired_difference(tally(ranks_a, list(range(400))), tally(ranks_b, list(range(400))), "HR@20")
    blocks = [i // 100 for i in range(400)]
    wide = paired_difference(tally(ranks_a, blocks), tally(ranks_b, blocks), "HR@20")
    assert narrow.diff == pytest.approx(wide.diff)
    assert (wide.groups, narrow.groups) == (4, 400)
    assert wide.ci95[1] - wide.ci95[0] > 3 * (narrow.ci95[1] - narrow.ci95[0])


def test_only_shared_keys_are_compared_and_every_pair_is_listed() -> None:
    a, b, c = RankingMetrics(), RankingMetrics(), RankingMetrics()
    for key in range(10):
        a.add_rank(1, key=key)
        c.add_rank(2, key=key)
        if key < 5:
            b.add_rank(None, key=key)
    ab = paired_difference(a, b, "MRR@20")
    assert ab.predictions == 5 and ab.diff == 1.0
    listed = paired_differences({"a": a, "b": b, "c": c}, metrics=("HR@20", "MRR@20"))
    assert [(p.a, p.b, p.metric) for p in listed] == [
        ("a", "b", "HR@20"), ("a", "b", "MRR@20"), ("a", "c", "HR@20"),
        ("a", "c", "MRR@20"), ("b", "c", "HR@20"), ("b", "c", "MRR@20"),
    ]
    assert listed[3].diff == pytest.approx(0.5) and listed[3].to_dict()["ci95"] == [0.5, 0.5]


def test_a_restricted_tally_keeps_only_the_named_predictions() -> None:
    whole = tally([1, None, 2, 4], [0, 0, 1, 1])
    part = whole.restricted([2, 3, 99])
    assert part.count == 2 and part.ranks == {2: (1, 2), 3: (1, 4)}
    assert part.summary()["MRR@20"] == pytest.approx((1 / 2 + 1 / 4) / 2)
