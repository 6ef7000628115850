"""A following scorer's head tables learn every observed click between versions; a swap never makes them older."""

from __future__ import annotations

import torch

from streamrec.config import load_settings
from streamrec.models.candidates import CandidateConfig
from streamrec.models.checkpoint import Checkpoint
from streamrec.models.scorer import Query
from streamrec.models.serving import NeuralScorer
from streamrec.stream.updates.follower import TABLES_SUFFIX, FrozenModel, follow_updates

NEW_PAIR = ["a", "k"]
"""A transition the chains never show: a is always followed by b."""


def _neighbours(scorer: NeuralScorer, item: str) -> set[str]:
    head = scorer.model.head
    assert head is not None
    row = scorer.vocab.index(item)
    index = torch.cat([head.knn_index[row][head.knn_weight[row] > 0],
                       head.neighbour_index[row][head.neighbour_weight[row] > 0]])
    return {scorer.vocab.item(int(i)) for i in index}


def _following(checkpoint: Checkpoint) -> NeuralScorer:
    scorer = NeuralScorer(checkpoint, device="cpu")
    scorer.learn_tables(row_entries_cap=300, buffer_clicks=1000)
    return scorer


def test_a_following_scorer_learns_a_new_transition_at_once(tiny_checkpoint: Checkpoint) -> None:
    scorer = _following(tiny_checkpoint)
    assert "k" not in _neighbours(scorer, "a")
    before = [item for item, _ in scorer.recommend([Query(["a"])], 15)[0]].index("k")
    scorer.observe_at([NEW_PAIR] * 20, [(0, offset) for offset in range(20)])
    assert "k" in _neighbours(scorer, "a")
    after = [item for item, _ in scorer.recommend([Query(["a"])], 15)[0]].index("k")
    assert after < before


def test_a_frozen_twin_keeps_the_checkpoint_tables(tiny_checkpoint: Checkpoint) -> None:
    scorer = NeuralScorer(tiny_checkpoint, device="cpu")
    settings = load_settings(updates={"follow": False})
    assert isinstance(follow_updates(settings, scorer), FrozenModel)
    assert scorer.tables is None
    tables = [t.clone() for t in (scorer.model.head.knn_index, scorer.model.head.knn_weight)]  # type: ignore[union-attr]
    scorer.observe_at([NEW_PAIR] * 20, [(0, offset) for offset in range(20)])
    assert torch.equal(tables[0], scorer.model.head.knn_index) and torch.equal(tables[1], scorer.model.head.knn_weight)  # type: ignore[union-attr]


def test_a_tables_only_stage_learns_the_counts_but_never_swaps(tiny_checkpoint: Checkpoint) -> None:
    """follow off + frozen_learn_tables: the warm-up weights with the stream's counts, under its own name."""
    scorer = NeuralScorer(tiny_checkpoint, device="cpu")
    settings = load_settings(updates={"follow": False, "frozen_learn_tables": True})
    assert isinstance(follow_updates(settings, scorer), FrozenModel)
    assert scorer.name == tiny_checkpoint.preset + TABLES_SUFFIX and scorer.tables is not None
    weights = {k: v.clone() for k, v in scorer.model.named_parameters()}
    scorer.observe_at([NEW_PAIR] * 20, [(0, offset) for offset in range(20)])
    assert "k" in _neighbours(scorer, "a")
    assert all(torch.equal(v, weights[k]) for k, v in scorer.model.named_parameters())


def test_a_swap_recounts_exactly_the_clicks_the_new_version_did_not_train_on(tiny_checkpoint: Checkpoint) -> None:
    serving = _following(tiny_checkpoint)
    clicks = [NEW_PAIR] * 6 + [["f", "k"]] * 4  # partition 0, offsets 0..9; a second partition below
    serving.observe_at(clicks, [(0, offset) for offset in range(10)])
    serving.observe_at([["k", "a"]] * 3, [(1, offset) for offset in range(3)])
    # the new version trained through offset 6 of partition 0 (the a -> k clicks) and nothing of partition 1;
    # here it is the same checkpoint, so after the swap it must hold exactly the f -> k and k -> a clicks
    candidate = _following(tiny_checkpoint)
    candidate.tables.take_over(serving.tables, {0: 6})  # type: ignore[union-attr]
    expected = _following(tiny_checkpoint)
    expected.observe_at([["f", "k"]] * 4 + [["k", "a"]] * 3, [None] * 7)
    head, reference = candidate.model.head, expected.model.head
    assert head is not None and reference is not None
    for name in ("knn_index", "knn_weight", "neighbour_index", "neighbour_weight", "idf_weight"):
        assert torch.allclose(getattr(head, name).float(), getattr(reference, name).float()), name
    assert torch.equal(candidate.model.item_counts, expected.model.item_counts)
    assert candidate.tables.recent is serving.tables.recent  # type: ignore[union-attr]  # the next swap re-counts from it too


def test_a_swap_recounts_a_long_session_as_it_was_first_counted(tiny_checkpoint: Checkpoint) -> None:
    """The session table pairs a click with its whole session, beyond the kNN window: a re-count does too."""
    serving = _following(tiny_checkpoint)
    assert serving.tables is not None and serving.tables.stats.sessions is not None
    long = ["a", "f", "k", "b", "g", "l", "c", "h", "m", "d", "i", "n"]
    assert len(long) > serving.tables.window + 2
    serving.observe_at([long[: t + 1] for t in range(len(long))], [(0, t) for t in range(len(long))])
    candidate = _following(tiny_checkpoint)
    candidate.tables.take_over(serving.tables, {0: 0})  # type: ignore[union-attr]  # trained on none of them
    head, reference = candidate.model.head, serving.model.head
    assert head is not None and reference is not None
    for mine, theirs in zip(head.tables(), reference.tables(), strict=True):
        assert torch.allclose(mine.float(), theirs.float())


def test_a_new_item_gets_a_row_at_its_first_click_and_can_be_recommended(tiny_checkpoint: Checkpoint) -> None:
    """The serving version does not know "fresh": it must not wait for the next version to rank it."""
    scorer = _following(tiny_checkpoint)
    capacity = scorer.model.num_items
    assert "fresh" not in scorer.vocab and len(scorer.vocab) == capacity  # no spare row: the catalogue grows
    scorer.observe_at([["a", "b", "fresh"]] * 10, [(0, offset) for offset in range(10)])
    assert "fresh" in scorer.vocab and scorer.model.num_items > capacity
    row = scorer.vocab.index("fresh")
    assert bool(scorer.model.rankable[row]) and not scorer.model.rankable[len(scorer.vocab):].any()
    assert scorer.tables is not None and scorer.tables.items_added == 1
    assert "fresh" in [item for item, _ in scorer.recommend([Query(["a", "b"])], 5)[0]]  # its counts rank it
    assert "fresh" in [item for item, _ in scorer.recommend([Query(["b", "fresh"])], 20)[0]]  # a repeat is rankable
    assert "fresh" not in tiny_checkpoint.vocab  # the checkpoint's vocabulary stays as loaded


def test_a_swap_gives_rows_again_to_new_items_the_version_lacks(tiny_checkpoint: Checkpoint) -> None:
    serving = _following(tiny_checkpoint)
    serving.observe_at([["a", "fresh"]] * 3, [(0, offset) for offset in range(3)])
    candidate = _following(tiny_checkpoint)  # a version trained on none of them
    candidate.tables.take_over(serving.tables, {0: 0})  # type: ignore[union-attr]
    assert "fresh" in candidate.vocab and bool(candidate.model.rankable[candidate.vocab.index("fresh")])


def test_on_the_candidate_path_an_item_beyond_the_spare_rows_waits_for_the_next_version(
    tiny_checkpoint: Checkpoint,
) -> None:
    scorer = NeuralScorer(tiny_checkpoint, device="cpu", candidates=CandidateConfig(candidates_min_catalogue_items=1))
    scorer.learn_tables(row_entries_cap=300, buffer_clicks=1000)
    capacity = scorer.model.num_items
    scorer.observe_at([["a", "fresh"]], [(0, 0)])
    assert "fresh" not in scorer.vocab and scorer.model.num_items == capacity
    assert scorer.tables is not None and scorer.tables.items_left_out == 1
    assert scorer.recommend([Query(["a", "fresh"])], 5)[0]  # answered from the clicks it knows
