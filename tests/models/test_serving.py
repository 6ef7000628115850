"""NeuralScorer behind the Scorer protocol: batching, exclusions, unknown items, fallback, version."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from _toy_split import CHAINS, toy_split

from streamrec.models.checkpoint import Checkpoint
from streamrec.models.scorer import Query, Ranked, Scorer, reads_history
from streamrec.models.serving import NeuralScorer, load_checkpoint_scorer
from streamrec.models.train import train_checkpoint


@pytest.fixture(scope="module")
def checkpoint() -> Checkpoint:
    return train_checkpoint("grainrec-contextgnn", toy_split(), device="cpu", dim=16, max_epochs=25, patience=25,
                            batch_size=16, lr=0.01)


class _Recorder:
    """A fallback scorer that records what it was asked."""

    name = "recorder"
    version = "r1"

    def __init__(self) -> None:
        self.asked: list[Query] = []
        self.observed: list[Sequence[str]] = []

    def recommend(self, queries: Sequence[Query], k: int) -> list[Ranked]:
        self.asked += queries
        return [[("fallback", 1.0)] for _ in queries]

    def observe(self, sessions: Sequence[Sequence[str]]) -> None:
        self.observed += sessions


def test_is_a_scorer_with_the_checkpoint_version(checkpoint: Checkpoint, tmp_path: Path) -> None:
    scorer = load_checkpoint_scorer(checkpoint.save(tmp_path / "m.pt"), device="cpu")
    assert isinstance(scorer, Scorer)
    assert scorer.version == checkpoint.version and scorer.name == "grainrec-contextgnn"


def test_batches_answer_in_query_order(checkpoint: Checkpoint) -> None:
    scorer = NeuralScorer(checkpoint, device="cpu", batch_size=2)
    queries = [Query(session_items=tuple(chain[:2])) for chain in CHAINS]
    answers = scorer.recommend(queries, k=5)
    assert [ranked[0][0] for ranked in answers] == [chain[2] for chain in CHAINS]
    assert all(len(ranked) == 5 and ranked == sorted(ranked, key=lambda r: -r[1]) for ranked in answers)


def test_excluded_items_are_never_recommended(checkpoint: Checkpoint) -> None:
    scorer = NeuralScorer(checkpoint, device="cpu")
    chain = CHAINS[1]
    query = Query(session_items=tuple(chain[:2]), exclude=frozenset({chain[2], "unknown"}))
    ranked = scorer.recommend([query], k=19)[0]
    assert chain[2] not in {item for item, _ in ranked}
    assert len(ranked) == 19


def test_unknown_items_never_raise(checkpoint: Checkpoint) -> None:
    scorer = NeuralScorer(checkpoint, device="cpu")
    answers = scorer.recommend([Query(session_items=("nope",)), Query(session_items=("nope", "a")),
                                Query(session_items=())], k=3)
    assert [len(ranked) for ranked in answers] == [3, 3, 3]
    assert answers[1][0][0] == "b"  # the unknown click is skipped, "a" still answers


def test_short_and_unknown_sessions_go_to_the_fallback(checkpoint: Checkpoint) -> None:
    fallback = _Recorder()
    scorer = NeuralScorer(checkpoint, device="cpu", fallback=fallback, fallback_max_length=1)
    answers = scorer.recommend([Query(session_items=("a",)), Query(session_items=("a", "b")),
                                Query(session_items=("zz", "yy"))], k=2)
    assert answers[0] == [("fallback", 1.0)] and answers[2] == [("fallback", 1.0)]
    assert answers[1][0][0] == "c"
    assert [q.session_items for q in fallback.asked] == [("a",), ("zz", "yy")]
    scorer.observe([["a", "b"]])
    assert fallback.observed == [["a", "b"]]


def test_only_a_model_with_long_term_memory_reads_history(checkpoint: Checkpoint) -> None:
    glad = train_checkpoint("glad", toy_split(), device="cpu", dim=8, max_epochs=1, patience=1, batch_size=16)
    assert reads_history(NeuralScorer(glad, device="cpu"))
    assert not reads_history(NeuralScorer(checkpoint, device="cpu"))
