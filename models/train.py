"""Training: every prefix -> next item of the training sequences, Adam, early stopping on validation.

The loss is full-softmax cross-entropy over the catalogue (as in SR-GNN, "Session-based
Recommendation with Graph Neural Networks", Wu et al., AAAI 2019, https://arxiv.org/abs/1811.00855) or, for big
catalogues (`sampled_negatives > 0`), sampled softmax over shared negatives drawn from
popularity**0.75 with the logQ correction (logits - log Q(i)) so the estimate stays unbiased.
Validation ranks the full catalogue with the protocol's masks after every epoch; the best
epoch's weights are kept (patience `config.patience`), and the learning rate decays every
`lr_decay_every` epochs. Seeds are fixed; nothing leaves the device inside the hot loop.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import Tensor

from streamrec.config import load_settings
from streamrec.models.checkpoint import Checkpoint
from streamrec.models.contextgnn import cooccurrence_neighbours, session_neighbours
from streamrec.models.device import MAX_TORCH_THREADS, resolve_device
from streamrec.models.knn import knn_params
from streamrec.models.presets import ModelConfig, preset
from streamrec.models.recommender import Context, ModelInput, SessionRecommender
from streamrec.models.sequence_training import snapshot, sorted_in_runs, train_sequences
from streamrec.models.serving import NeuralScorer
from streamrec.state.clicklog.types import Example, Split, TrainSequence
from streamrec.state.knn_params import KnnParams
from streamrec.state.ranking_metrics import RankingMetrics
from streamrec.state.vocab import ItemVocabulary

console = Console(stderr=True)


@dataclass(frozen=True)
class EncodedExamples:
    """Examples as index lists: contexts, target rows (0: unknown target) and masked rows."""

    contexts: list[Context]
    targets: list[int]
    excluded: list[list[int]]


def fit(preset: str, split: Split, device: str, seed: int = 0, knn: KnnParams | None = None) -> NeuralScorer:
    """Train `preset` on split.train with early stopping on split.valid; a scorer of the best epoch."""
    checkpoint = train_checkpoint(preset, split, device=device, seed=seed, knn=knn)
    return NeuralScorer(checkpoint, device=device)


def train_command(dataset: Path | None, fmt: str, protocol: str, model: str, out: Path, device: str) -> None:
    """`streamrec train`: read the log, train, report test metrics, write the checkpoint."""
    from streamrec.state.clicklog.protocols import split_for

    split = split_for(fmt, dataset, protocol)
    checkpoint = train_checkpoint(model, split, device=device)
    config = checkpoint.config
    scorer_model = checkpoint.build_model(resolve_device(device))
    checkpoint.metrics["test"] = evaluate(
        scorer_model, encode_examples(checkpoint.vocab, split.test), config.batch_size * 4
    )
    checkpoint.save(out)
    console.print(f"wrote {out} version={checkpoint.version} metrics={checkpoint.metrics}")


def train_checkpoint(
    preset_name: str, split: Split, device: str = "auto", seed: int = 0, knn: KnnParams | None = None,
    **overrides: object,
) -> Checkpoint:
    """Train a preset (optionally with overridden config fields) and return the best epoch's checkpoint.

    The head's kNN parameters are `knn`, else the preset's, else the settings' `scoring.sknn_*`
    (saved in the checkpoint's config either way).
    """
    config = preset(preset_name, **overrides)
    if knn is not None or config.knn is None:
        config = replace(config, knn=knn or knn_params(load_settings()))
    _seed_everything(seed)
    torch.set_num_threads(min(MAX_TORCH_THREADS, torch.get_num_threads()))
    torch_device = resolve_device(device)
    vocab = ItemVocabulary(split.items)
    sequences = [vocab.encode_known(s.items) for s in split.train]
    model = _initial_model(config, vocab, sequences).to(torch_device)
    folds = max(config.cooccurrence_folds, 1) if model.head is not None else 1
    if folds > 1:
        assert model.head is not None
        out_of_fold = ([s for i, s in enumerate(sequences) if i % folds != f] for f in range(folds))
        model.head.set_fold_tables([_cooccurrence_tables(config, len(vocab), chosen) for chosen in out_of_fold])
    valid = encode_examples(vocab, split.valid)
    initial = None
    if config.encoder == "attention" and config.sequence_epochs > 0:
        state, metrics = train_sequences(model, config, sequences, lambda m: evaluate(m, valid, config.batch_size * 4),
                                         torch_device)
        model.load_state_dict(state)
        if model.head is None:
            return Checkpoint.from_model(preset_name, model, vocab, {"valid": metrics})
        initial = (state, {**evaluate(model, valid, config.batch_size * 4), "epoch": 0})  # the head untrained
    examples = _prefix_examples(split.train, sequences, vocab, folds, config.window)
    best, metrics = _optimise(model, config, sequences, examples, valid, torch_device, initial)
    model.load_state_dict(best)
    return Checkpoint.from_model(preset_name, model, vocab, {"valid": metrics})


def _initial_model(config: ModelConfig, vocab: ItemVocabulary, sequences: list[list[int]]) -> SessionRecommender:
    model = SessionRecommender(config, num_items=len(vocab))
    counts = np.bincount([i for s in sequences for i in s], minlength=len(vocab))
    model.item_counts.copy_(torch.from_numpy(counts.astype(np.float32)))
    if model.head is not None:
        cosine, row, session = _cooccurrence_tables(config, len(vocab), sequences)
        model.head.set_neighbours(cosine, row, model.item_counts, session)
    return model


Tables = tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor], tuple[Tensor, Tensor, Tensor] | None]


def _cooccurrence_tables(config: ModelConfig, num_items: int, sequences: list[list[int]]) -> Tables:
    """(cosine, row-normalised, session or None) co-occurrence neighbour tables of `sequences` (contextgnn.py),
    the windowed two with the kNN's parameters."""
    assert config.knn is not None, "train_checkpoint fills ModelConfig.knn"
    cosine, row = (
        cooccurrence_neighbours(sequences, num_items, config.knn, normalisation)
        for normalisation in ("cosine", "row")
    )
    session = (
        session_neighbours(sequences, num_items, config.knn.max_neighbours) if config.session_cooccurrence else None
    )
    return cosine, row, session


@dataclass(frozen=True)
class TrainExamples:
    """Every (prefix, next item) pair of the training sequences and the fold of its sequence."""

    contexts: list[Context]
    targets: Tensor
    folds: Tensor
    num_folds: int
    lengths: Tensor
    """Clicks each context's encoder reads (the prefix, cut at the model's `window`)."""


def _prefix_examples(
    train: Sequence[TrainSequence], sequences: list[list[int]], vocab: ItemVocabulary, folds: int, window: int
) -> TrainExamples:
    """Every (prefix, next item) pair of every training sequence, with the sequence's history."""
    contexts: list[Context] = []
    targets: list[int] = []
    fold: list[int] = []
    for index, (raw, items) in enumerate(zip(train, sequences)):
        history = vocab.encode_known(raw.history_items)
        for t in range(1, len(items)):
            contexts.append((items[:t], history))
            targets.append(items[t])
            fold.append(index % folds)
    lengths = torch.tensor([min(len(session), window) for session, _ in contexts], dtype=torch.long)
    return TrainExamples(
        contexts, torch.tensor(targets, dtype=torch.long), torch.tensor(fold, dtype=torch.long), folds, lengths
    )


def encode_examples(vocab: ItemVocabulary, examples: Sequence[Example]) -> EncodedExamples:
    """Evaluation examples as indices; a context without any known click keeps its last (unknown) slot out."""
    contexts: list[Context] = []
    targets: list[int] = []
    excluded: list[list[int]] = []
    for example in examples:
        session = vocab.encode_known(example.session_items)
        history = vocab.encode_known(example.history_items)
        if not session and history:
            session, history = history[-1:], history[:-1]
        contexts.append((session, history))
        targets.append(vocab.index(example.target))
        excluded.append(vocab.encode_known(sorted(example.exclude)))
    return EncodedExamples(contexts, targets, excluded)


def _optimise(
    model: SessionRecommender,
    config: ModelConfig,
    sequences: list[list[int]],
    examples: TrainExamples,
    valid: EncodedExamples,
    device: torch.device,
    initial: tuple[dict[str, Tensor], dict[str, float]] | None = None,
) -> tuple[dict[str, Tensor], dict[str, float]]:
    """Epoch loop with early stopping; returns (best state dict, its validation metrics). `initial`: the
    weights the model starts from and their metrics, kept unless an epoch beats them."""
    optimiser = torch.optim.Adam(_parameter_groups(model, config, head_stage=initial is not None), lr=config.lr,
                                 weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.StepLR(optimiser, step_size=config.lr_decay_every, gamma=config.lr_decay)
    sampler = _NegativeSampler(model.item_counts, config.sampled_negatives) if config.sampled_negatives else None
    best_metrics: dict[str, float]
    started, best_score, best_state, best_metrics, stale = time.monotonic(), -1.0, None, {}, 0
    if initial is not None:
        best_state, best_metrics = initial
        best_score = best_metrics[config.select_metric]
    for epoch in range(1, config.max_epochs + 1):
        model.start_epoch(sequences)
        out_of_time = _train_epoch(model, config, examples, optimiser, sampler, device, epoch, started)
        schedule.step()
        metrics = evaluate(model, valid, config.batch_size * 4)
        score = metrics[config.select_metric]
        console.print(f"epoch {epoch}: valid {_fmt(metrics)} ({time.monotonic() - started:.0f}s)")
        if score > best_score:
            best_score, best_metrics, stale = score, {**metrics, "epoch": epoch}, 0
            best_state = snapshot(model)
        else:
            stale += 1
        if stale >= config.patience or out_of_time:
            break
    assert best_state is not None
    return best_state, best_metrics


def _parameter_groups(model: SessionRecommender, config: ModelConfig, head_stage: bool) -> list[dict[str, Any]]:
    """Adam's parameter groups: in the head stage the encoder (trained already) at `head_stage_encoder_lr` * lr (0:
    it stays as it is), the rest at `lr`; otherwise every parameter at `lr`."""
    if not head_stage or config.head_stage_encoder_lr == 1.0:
        return [{"params": list(model.parameters())}]
    encoder = list(model.encoder.parameters())
    rest = [p for p in model.parameters() if all(p is not q for q in encoder)]
    return [{"params": rest}, {"params": encoder, "lr": config.lr * config.head_stage_encoder_lr}]


def _train_epoch(
    model: SessionRecommender,
    config: ModelConfig,
    examples: TrainExamples,
    optimiser: torch.optim.Optimizer,
    sampler: _NegativeSampler | None,
    device: torch.device,
    epoch: int,
    started: float,
) -> bool:
    """One pass over shuffled examples; True when the time budget ran out during it."""
    model.train()
    batches = _fold_batches(examples, config.batch_size, by_length=config.encoder == "attention")
    columns = (
        TextColumn(f"epoch {epoch}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("train", total=len(batches), rate="")
        for step, (fold, index) in enumerate(batches, start=1):
            inputs = model.encode([examples.contexts[i] for i in index.tolist()])
            inputs.fold = fold if examples.num_folds > 1 else None
            inputs = inputs.to(device, non_blocking=True)
            target = examples.targets[index].to(device, non_blocking=True)
            loss = _loss(model, inputs, target, sampler)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            elapsed = time.monotonic() - started
            progress.update(task, advance=1, rate=f"{step * config.batch_size / max(elapsed, 1e-9):.0f} ex/s")
            if elapsed > config.max_train_seconds:
                return True
    return False


BUCKET_BATCHES = 64
"""With `by_length`, shuffled runs of this many batches are sorted by context length before they are cut."""


def _fold_batches(examples: TrainExamples, batch_size: int, by_length: bool = False) -> list[tuple[int, Tensor]]:
    """Shuffled batches of example indices, each from a single fold, in shuffled order.

    `by_length` (the attention encoder, which pads every context of a batch to the longest):
    examples are shuffled, then each run of BUCKET_BATCHES batches is sorted by length before
    it is cut, so a batch holds contexts of similar length and padding costs little, while
    which examples meet in a batch still changes every epoch (bucketing)."""
    order = torch.randperm(len(examples.contexts))
    batches: list[tuple[int, Tensor]] = []
    for fold in range(examples.num_folds):
        members = order[examples.folds[order] == fold]
        if by_length:
            members = sorted_in_runs(members, examples.lengths, batch_size * BUCKET_BATCHES)
        batches += [(fold, index) for index in members.split(batch_size)]
    shuffle = torch.randperm(len(batches)).tolist()
    return [batches[i] for i in shuffle]


def _loss(model: SessionRecommender, inputs: ModelInput, target: Tensor, sampler: _NegativeSampler | None) -> Tensor:
    if sampler is None:
        return F.cross_entropy(model(inputs), target)
    candidates, log_q = sampler.candidates(target)
    logits = model(inputs, candidates) - log_q
    accidental = candidates[:, 1:] == target.unsqueeze(1)  # a sampled negative that is the positive
    logits[:, 1:] = logits[:, 1:].masked_fill(accidental, float("-inf"))
    return F.cross_entropy(logits, torch.zeros_like(target))


class _NegativeSampler:
    """Shared negatives ~ count**0.75; candidates [B, 1+S] (target first) and their log Q [B, 1+S]."""

    def __init__(self, item_counts: Tensor, negatives: int) -> None:
        weights = item_counts.clamp_min(0).pow(0.75)
        weights[0] = 0.0
        self.probability = weights / weights.sum()
        self.negatives = negatives

    def candidates(self, target: Tensor) -> tuple[Tensor, Tensor]:
        probability = self.probability.to(target.device)
        negatives = torch.multinomial(probability, self.negatives, replacement=True)
        candidates = torch.cat([target.unsqueeze(1), negatives.expand(target.numel(), -1)], dim=1)
        log_q = torch.log(probability[candidates] * self.negatives + 1e-12)
        return candidates, log_q


@torch.inference_mode()
def evaluate(model: SessionRecommender, examples: EncodedExamples, batch_size: int) -> dict[str, float]:
    """HR@10/20, MRR@20, NDCG@10/20 by full ranking with the examples' masks (unknown targets count as misses).

    The target's rank counts every item scoring at least as high (pessimistic ties), scored by
    the one evaluator `RankingMetrics` that `streamrec evaluate` uses too; keys `METRIC_NAMES` (+ "n").
    """
    model.eval()
    device = model.item_counts.device
    without_context = sum(1 for session, _ in examples.contexts if not session)
    ranks: list[Tensor] = [torch.full((without_context,), torch.inf)]
    for batch in _example_batches(examples, batch_size):
        contexts, targets, excluded = batch
        logits = model.rank_scores(model.encode(contexts).to(device))
        rows = torch.repeat_interleave(torch.arange(len(excluded)), torch.tensor([len(e) for e in excluded]))
        excluded_items = torch.tensor([i for e in excluded for i in e], dtype=torch.long, device=device)
        logits[rows.to(device), excluded_items] = float("-inf")
        target = torch.tensor(targets, device=device)
        target_logit = logits.gather(1, target.unsqueeze(1))
        rank = (logits >= target_logit).sum(1).float()  # 1-based, ties against the target (state/ranking_metrics.py)
        ranks.append(torch.where((target == 0) | target_logit.squeeze(1).isinf(), torch.inf, rank).cpu())
    model.train()
    metrics = RankingMetrics()
    metrics.add_ranks(torch.cat(ranks).tolist())
    return {**metrics.summary(), "n": float(metrics.count)}


def _example_batches(
    examples: EncodedExamples, batch_size: int
) -> Iterator[tuple[list[Context], list[int], list[list[int]]]]:
    """Batches of examples that have a context (the rest are misses, ranked inf)."""
    usable = [i for i, (session, _) in enumerate(examples.contexts) if session]
    for start in range(0, len(usable), batch_size):
        chunk = usable[start : start + batch_size]
        yield (
            [examples.contexts[i] for i in chunk],
            [examples.targets[i] for i in chunk],
            [examples.excluded[i] for i in chunk],
        )


def _fmt(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if k != "n")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
