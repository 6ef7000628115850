"""The growing item catalogue: rows for items first seen on the stream, without a restart.

Every per-item tensor of a SessionRecommender (the embedding table, item_counts, the
`rankable` mask, the ContextGNN head's tables and idf weights) has one row per item. The
learner keeps spare rows: when a new item needs a row and none is spare, the tables grow by
`item_capacity_spare` of their size (doubling by default, so growth happens O(log items)
times); spare rows are never rankable. An item not clicked for `item_ttl_s` (event time)
leaves the candidate set (`rankable` False) and its row becomes free: the next new item takes
it over (vocabulary entry, embedding, counts, co-occurrence row and optimiser moments reset),
so on an endless stream of new items the tables stay bounded by the items alive within a TTL.
An expired item clicked again before its row is recycled simply becomes rankable again.

A new row starts from the mean embedding of the items co-clicked with it (the session
prefix of its first click), else from the mean of the rankable rows: the two-tower score of a
new item is then that of its context from the first step, and fine-tuning moves it from there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

import torch
from torch import Tensor

from streamrec.models.recommender import SessionRecommender
from streamrec.state.vocab import PAD_INDEX

OptimiserT = TypeVar("OptimiserT", bound=torch.optim.Optimizer)

ITEM_ROW_KEYS: tuple[str, ...] = (
    "encoder.items.weight",
    "item_counts",
    "rankable",
    "head.neighbour_index",
    "head.neighbour_weight",
    "head.knn_index",
    "head.knn_weight",
    "head.idf_weight",
    "head.session_index",
    "head.session_weight",
    "head.session_count",
)
"""State-dict entries with one row per item (padded when the catalogue grows)."""


def grown_capacity(capacity: int, needed: int, spare: float) -> int:
    """The next capacity >= needed, growing by the factor (1 + spare) each time."""
    while capacity < needed:
        capacity = max(capacity + 1, math.ceil(capacity * (1.0 + spare)))
    return capacity


def grow_model(model: SessionRecommender, capacity: int) -> SessionRecommender:
    """A copy of `model` with `capacity` item rows; new rows are zero and not rankable."""
    old = model.num_items
    grown = SessionRecommender(model.config, num_items=capacity).to(model.item_counts.device)
    state = model.state_dict()
    for key in ITEM_ROW_KEYS:
        if key in state:
            value = state[key]
            state[key] = torch.cat([value, value.new_zeros((capacity - old, *value.shape[1:]))])
    grown.load_state_dict(state)
    grown.train(model.training)
    return grown


def grow_optimiser_state(optimiser: OptimiserT, old: torch.nn.Module, new: torch.nn.Module) -> OptimiserT:
    """A fresh Adam over `new`'s parameters carrying `old`'s moments (item rows padded with zeros)."""
    fresh = type(optimiser)(new.parameters(), **optimiser.defaults)
    old_params = dict(old.named_parameters())
    for name, parameter in new.named_parameters():
        state = optimiser.state.get(old_params[name])
        if not state:
            continue
        moved = {}
        for key, value in state.items():
            if isinstance(value, Tensor) and value.dim() > 0 and value.shape != parameter.shape:
                value = torch.cat([value, value.new_zeros((parameter.shape[0] - value.shape[0], *value.shape[1:]))])
            moved[key] = value
        fresh.state[parameter] = moved
    return fresh


@torch.no_grad()
def init_row(model: SessionRecommender, row: int, co_clicked: Sequence[int]) -> None:
    """Row `row` := mean embedding of `co_clicked` rows, else of every rankable row (module docstring)."""
    table = model.encoder.items.weight
    known = [i for i in co_clicked if i != PAD_INDEX and i != row and bool(model.rankable[i])]
    if known:
        table[row] = table[torch.tensor(known, device=table.device)].mean(0)
    else:
        mask = model.rankable.clone()
        mask[PAD_INDEX] = False
        mask[row] = False
        table[row] = table[mask].mean(0) if bool(mask.any()) else 0.0


def reset_optimiser_row(optimiser: torch.optim.Optimizer, parameter: Tensor, row: int) -> None:
    """Zero the Adam moments of one recycled embedding row (its old item's history must not steer it)."""
    state = optimiser.state.get(parameter)
    if not state:
        return
    for value in state.values():
        if isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] == parameter.shape[0]:
            value[row] = 0
