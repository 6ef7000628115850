"""All-positions training of the self-attentive encoder: one pass per sequence trains every prefix.

The prefix loop of models/train.py builds a session graph per (prefix, next item) pair, so a
sequence of n clicks is encoded n - 1 times per epoch. The attention encoder is causal and
position-free apart from relative distances (models/sequence_encoder.py), so the state after
click t of one pass over the whole sequence *is* the prefix's session vector, and

    loss = mean_t CE(scale * cos(F_t, M), x_{t+1})          (SASRec eq. 7-8 with full softmax)

over every position t of a batch of sequences trains the same objective as the prefix loop, about
(mean sequence length) times cheaper. This is how SASRec is trained (Kang and McAuley, ICDM 2018,
§III-E), here with full-softmax cross-entropy (Klenitskiy and Vasilev, RecSys 2023).

The two-tower score is what this stage trains; a ContextGNN head, if the model has one, is left
out (and out of the validation that picks the best epoch) and trained afterwards by the prefix
loop, which starts from this stage's best weights (models/train.py `train_checkpoint`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import Tensor

from streamrec.models.presets import ModelConfig
from streamrec.models.recommender import SessionRecommender
from streamrec.models.sequence_encoder import SelfAttentiveEncoder
from streamrec.state.vocab import PAD_INDEX

console = Console(stderr=True)
BUCKET_BATCHES = 32
"""Shuffled runs of this many batches are sorted by length before they are cut (little padding per batch)."""

Validate = Callable[[SessionRecommender], dict[str, float]]
"""Validation metrics of a model (models/train.py `evaluate` on the split's validation examples)."""
State = dict[str, Tensor]


@dataclass(frozen=True)
class SequenceChunks:
    """Training sequences cut into windows: inputs and next-item targets, both [N, L] left-aligned, PAD after."""

    inputs: Tensor
    targets: Tensor
    lengths: Tensor

    @classmethod
    def of(cls, sequences: list[list[int]], window: int) -> SequenceChunks:
        """Every transition of every sequence exactly once: a sequence longer than `window` + 1 clicks is
        cut from its end into windows of `window` targets, each input starting one click before its targets
        (the prefix loop likewise reads at most the last `window` clicks of a context)."""
        chunks: list[list[int]] = []
        for items in sequences:
            for end in range(len(items), 1, -window):
                chunks.append(items[max(0, end - window - 1) : end])
        longest = max((len(c) - 1 for c in chunks), default=1)
        inputs = torch.full((len(chunks), longest), PAD_INDEX, dtype=torch.long)
        targets = torch.full((len(chunks), longest), PAD_INDEX, dtype=torch.long)
        for row, chunk in enumerate(chunks):
            inputs[row, : len(chunk) - 1] = torch.tensor(chunk[:-1])
            targets[row, : len(chunk) - 1] = torch.tensor(chunk[1:])
        return cls(inputs, targets, torch.tensor([len(c) - 1 for c in chunks], dtype=torch.long))

    def __len__(self) -> int:
        return self.inputs.size(0)

    def batches(self, batch_size: int) -> list[Tensor]:
        """Shuffled batches of row indices, rows of similar length together (bucketing), in shuffled order."""
        order = sorted_in_runs(torch.randperm(len(self)), self.lengths, batch_size * BUCKET_BATCHES)
        batches = list(order.split(batch_size))
        return [batches[i] for i in torch.randperm(len(batches)).tolist()]


def sorted_in_runs(order: Tensor, lengths: Tensor, run_size: int) -> Tensor:
    """`order` (shuffled indices) with each run of `run_size` sorted by `lengths[index]`: batches cut from it hold
    similar lengths (little padding) while which indices meet still changes with every shuffle (bucketing)."""
    runs = order.split(run_size)
    return torch.cat([run[lengths[run].argsort(stable=True)] for run in runs]) if runs else order


def train_sequences(
    model: SessionRecommender, config: ModelConfig, sequences: list[list[int]], validate: Validate, device: torch.device
) -> tuple[State, dict[str, float]]:
    """Up to `config.sequence_epochs` all-positions epochs with early stopping on validation (patience
    `config.patience`, budget `config.sequence_train_seconds`); (best state dict, its validation metrics)."""
    encoder = model.encoder
    if not isinstance(encoder, SelfAttentiveEncoder):
        raise ValueError("all-positions training needs the attention encoder (ModelConfig.encoder = 'attention')")
    chunks = SequenceChunks.of([s for s in sequences if len(s) > 1], config.window)
    optimiser = torch.optim.Adam(encoder.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    started, best_score, stale = time.monotonic(), -1.0, 0
    best_state: State = snapshot(model)
    best_metrics: dict[str, float] = {}
    for epoch in range(1, config.sequence_epochs + 1):
        out_of_time = _epoch(encoder, config, chunks, optimiser, device, epoch, started)
        with _two_tower_only(model):
            metrics = validate(model)
        score = metrics[config.select_metric]
        console.print(f"sequence epoch {epoch}: valid {config.select_metric}={score:.4f} "
                      f"({time.monotonic() - started:.0f}s)")
        if score > best_score:
            best_score, best_metrics, best_state, stale = (
                score, {**metrics, "sequence_epoch": epoch}, snapshot(model), 0
            )
        else:
            stale += 1
        if stale >= config.patience or out_of_time:
            break
    return best_state, best_metrics


def _epoch(encoder: SelfAttentiveEncoder, config: ModelConfig, chunks: SequenceChunks, optimiser: torch.optim.Optimizer,
           device: torch.device, epoch: int, started: float) -> bool:
    """One shuffled pass; True when the stage's time budget ran out during it."""
    encoder.train()
    batches = chunks.batches(config.batch_size)
    columns = (TextColumn(f"sequence epoch {epoch}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("train", total=len(batches))
        for rows in batches:
            longest = int(chunks.lengths[rows].max())
            inputs = chunks.inputs[rows, :longest].to(device, non_blocking=True)
            targets = chunks.targets[rows, :longest].to(device, non_blocking=True)
            loss = all_positions_loss(encoder, inputs, targets, config.scale)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            progress.update(task, advance=1)
            if time.monotonic() - started > config.sequence_train_seconds:
                return True
    return False


def all_positions_loss(encoder: SelfAttentiveEncoder, inputs: Tensor, targets: Tensor, scale: float) -> Tensor:
    """Mean full-softmax cross-entropy of every non-PAD target; inputs and targets [B, L] -> scalar."""
    states = encoder.encode_sequences(inputs)  # [B, L, d]
    real = targets != PAD_INDEX
    session = F.normalize(states[real], dim=-1)  # [M, d]: only positions with a target are scored
    logits = scale * session @ encoder.item_table().T  # [M, V]
    return F.cross_entropy(logits, targets[real])


@contextmanager
def _two_tower_only(model: SessionRecommender) -> Iterator[None]:
    """The model without its ContextGNN head for a while: this stage trains and judges the two-tower score."""
    head = model.head
    model.head = None
    try:
        yield
    finally:
        model.head = head


def snapshot(model: SessionRecommender) -> State:
    """A detached copy of the model's state dict (the best epoch's weights, kept while training goes on)."""
    return {k: v.detach().clone() if isinstance(v, Tensor) else copy.deepcopy(v) for k, v in model.state_dict().items()}
