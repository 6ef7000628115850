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


@pytest.mark.parametrize("encoder_lr", [0.0, 0.1, 1.0])
def test_the_head_stage_moves_the_trained_encoder_at_its_own_rate(encoder_lr: float) -> None:
    """head_stage_encoder_lr scales only the encoder's learning rate in the head stage; 0 leaves it as trained."""
    from streamrec.models.presets import preset
    from streamrec.models.recommender import SessionRecommender
    from streamrec.models.train import _parameter_groups

    torch.manual_seed(0)
    config = preset("sasrec-contextgnn", dim=16, window=6, lr=0.01, head_stage_encoder_lr=encoder_lr)
    model = SessionRecommender(config, num_items=12)
    groups = _parameter_groups(model, config, head_stage=True)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    optimiser = torch.optim.Adam(groups, lr=config.lr)
    encoder_before = [p.detach().clone() for p in model.encoder.parameters()]
    inputs = model.encode([([1, 2, 3], []), ([4, 5], [])])
    torch.nn.functional.cross_entropy(model(inputs), torch.tensor([4, 6])).backward()
    optimiser.step()
    moved = [not torch.equal(b, p) for b, p in zip(encoder_before, model.encoder.parameters())]
    assert any(moved) == (encoder_lr > 0)
    first = next(model.encoder.parameters())
    encoder_group = [g for g in optimiser.param_groups if any(p is first for p in g["params"])]
    assert encoder_group[0]["lr"] == pytest.approx(config.lr * encoder_lr)
    assert _parameter_groups(model, config, head_stage=False)[0].get("lr") is None  # before: one group at lr
