"""RankingMetrics against hand-computed HR, NDCG and MRR."""

import math

import pytest

from streamrec.state.ranking_metrics import METRIC_NAMES, RankingMetrics

RANKED = [f"i{n}" for n in range(1, 21)]  # i1 at rank 1 ... i20 at rank 20


def single(target: str, ranked: list[str] = RANKED) -> dict[str, float]:
    metrics = RankingMetrics()
    metrics.add(ranked, target)
    return metrics.summary()


def test_target_first_scores_one_everywhere() -> None:
    assert single("i1") == {name: 1.0 for name in METRIC_NAMES}


def test_rank_three() -> None:
    got = single("i3")
    assert got["HR@10"] == got["HR@20"] == 1.0
    assert got["NDCG@10"] == pytest.approx(0.5)  # 1 / log2(3 + 1)
    assert got["NDCG@20"] == pytest.approx(0.5)
    assert got["MRR@20"] == pytest.approx(1 / 3)


def test_rank_fifteen_counts_only_at_twenty() -> None:
    got = single("i15")
    assert got["HR@10"] == 0.0 and got["NDCG@10"] == 0.0
    assert got["HR@20"] == 1.0
    assert got["NDCG@20"] == pytest.approx(0.25)  # 1 / log2(16)
    assert got["MRR@20"] == pytest.approx(1 / 15)


def test_missing_target_and_rank_beyond_cutoff_score_zero() -> None:
    assert single("absent") == {name: 0.0 for name in METRIC_NAMES}
    longer = RANKED + ["i21", "i22"]
    assert single("i22", longer) == {name: 0.0 for name in METRIC_NAMES}  # MRR is cut at 20


def test_means_over_predictions() -> None:
    metrics = RankingMetrics()
    metrics.add(RANKED, "i1")
    metrics.add(RANKED, "i2")
    metrics.add(RANKED, "absent")
    metrics.add([], "i1")
    got = metrics.summary()
    assert metrics.count == 4
    assert got["HR@10"] == pytest.approx(2 / 4)
    assert got["NDCG@10"] == pytest.approx((1 + 1 / math.log2(3)) / 4)
    assert got["MRR@20"] == pytest.approx((1 + 1 / 2) / 4)


def test_empty_summary_is_zero() -> None:
    metrics = RankingMetrics()
    assert metrics.count == 0
    assert metrics.summary() == {name: 0.0 for name in METRIC_NAMES}


def test_ties_count_against_the_target() -> None:
    """Pessimistic: a target tied with the items listed after it ranks below all of them."""
    tied = RankingMetrics()
    tied.add(["a", "b", "c"], "a", scores=[1.0, 1.0, 1.0])
    assert tied.summary()["MRR@20"] == pytest.approx(1 / 3)
    clear = RankingMetrics()
    clear.add(["a", "b", "c"], "a", scores=[2.0, 1.0, 1.0])
    assert clear.summary()["MRR@20"] == 1.0


def test_a_rank_scores_like_the_same_list_position() -> None:
    by_rank, by_list = RankingMetrics(), RankingMetrics()
    by_rank.add_ranks([3, None, float("inf"), 25])
    for target in ("i3", "absent", "absent", "i25"):
        by_list.add(RANKED, target)
    assert by_rank.summary() == by_list.summary() and by_rank.count == 4
