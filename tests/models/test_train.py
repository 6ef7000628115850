"""End-to-end training on a toy log the model must overfit (CPU, seconds)."""

from __future__ import annotations

import pytest
import torch
from _toy_split import CHAINS, toy_split

from streamrec.models.evaluate import rank_examples
from streamrec.models.scorer import Query
from streamrec.models.serving import NeuralScorer
from streamrec.models.train import encode_examples, evaluate, fit, train_checkpoint
from streamrec.state.ranking_metrics import METRIC_NAMES
from streamrec.state.vocab import ItemVocabulary

FAST = {"dim": 16, "max_epochs": 25, "patience": 25, "batch_size": 16, "lr": 0.01, "embedding_dropout": 0.0}


@pytest.mark.parametrize("name", ["srgnn", "grainrec-contextgnn", "sasrec", "sasrec-contextgnn"])
def test_model_overfits_deterministic_chains(name: str) -> None:
    split = toy_split()
    checkpoint = train_checkpoint(name, split, device="cpu", seed=0, **FAST)
    assert checkpoint.metrics["valid"]["HR@10"] == 1.0
    metrics = evaluate(checkpoint.build_model(), encode_examples(checkpoint.vocab, split.test), batch_size=8)
    assert metrics["MRR@20"] > 0.9  # the true next item is (almost always) ranked first


def test_full_ladder_with_glad_memory_trains_and_serves() -> None:
    """The top of the ablation ladder: GLAD memory (clusters, target-attentive read) + ContextGNN."""
    long_users = toy_split()
    checkpoint = train_checkpoint("contextgnn", long_users, device="cpu", window=2, chunk_size=2,
                                  **{**FAST, "max_epochs": 3})
    assert checkpoint.metrics["valid"]["HR@20"] == 1.0
    scorer = NeuralScorer(checkpoint, device="cpu")
    ranked = scorer.recommend([Query(session_items=("c", "d"), history_items=("a", "b"))], k=3)[0]
    assert len(ranked) == 3


def test_sampled_softmax_with_logq_also_learns() -> None:
    checkpoint = train_checkpoint("srgnn", toy_split(), device="cpu", sampled_negatives=8, **FAST)
    assert checkpoint.metrics["valid"]["HR@10"] == 1.0


def test_same_seed_same_weights() -> None:
    short = {**FAST, "max_epochs": 2}
    first = train_checkpoint("srgnn", toy_split(), device="cpu", seed=3, **short)
    second = train_checkpoint("srgnn", toy_split(), device="cpu", seed=3, **short)
    assert first.content_hash == second.content_hash


def test_fit_returns_a_scorer_that_recommends_the_next_chain_item() -> None:
    scorer = fit("srgnn", toy_split(), device="cpu")
    assert isinstance(scorer, NeuralScorer)
    chain = CHAINS[0]
    ranked = scorer.recommend([Query(session_items=tuple(chain[:2]))], k=3)[0]
    assert ranked[0][0] == chain[2]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_step_runs_on_cuda() -> None:
    checkpoint = train_checkpoint("grainrec-contextgnn", toy_split(), device="cuda", **{**FAST, "max_epochs": 2})
    assert checkpoint.state_dict and all(t.device.type == "cpu" for t in checkpoint.state_dict.values())
    scorer = NeuralScorer(checkpoint, device="cuda")
    assert scorer.recommend([Query(session_items=("a", "b"))], k=2)[0]


def test_validation_and_streamrec_evaluate_use_one_evaluator() -> None:
    """`train.evaluate` (full-catalogue ranks) and `evaluate.rank_examples` (served lists) agree, name for name."""
    split = toy_split()
    checkpoint = train_checkpoint("srgnn", split, device="cpu", seed=0, **{**FAST, "max_epochs": 2})
    by_rank = evaluate(checkpoint.build_model(), encode_examples(checkpoint.vocab, split.test), batch_size=8)
    by_list, _ = rank_examples(NeuralScorer(checkpoint, device="cpu"), split.test, 8, lambda _n: None)
    for name in METRIC_NAMES:
        assert by_rank[name] == pytest.approx(by_list.summary()[name], abs=1e-6), name


def test_ties_count_against_the_target_in_validation() -> None:
    """A model that scores every item the same ranks nothing (the optimistic count put every target first)."""
    split = toy_split()
    model = train_checkpoint("srgnn", split, device="cpu", **{**FAST, "max_epochs": 1}).build_model()
    model.rank_scores = lambda inputs: torch.zeros(len(inputs.graphs.ptr) - 1, model.num_items)  # type: ignore[method-assign]
    metrics = evaluate(model, encode_examples(ItemVocabulary(split.items), split.test), batch_size=8)
    assert model.num_items > 20  # every target ties with more than 20 items
    assert metrics["HR@20"] == 0.0 and metrics["MRR@20"] == 0.0
