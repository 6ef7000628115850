"""Where the ContextGNN head's per-item features of a batch live: dense [B, V] or sparse on their support.

The head's features (models/contextgnn.py) are sums of (row, item, value) contributions from
the session's clicks and their co-occurrence rows, then normalised per row. Written once
against this small interface, they are computed either

- `DenseSpace`: on every item, [B, V] (training, full-catalogue scoring), or
- `SparseSpace`: only on the (row, item) pairs some contribution touches (their support, at
  most T*K + N*K + T pairs), then read at the candidates [B, C]: candidate re-ranking at a
  1,000,000-item catalogue never allocates [B, V].

Both accumulate the same contributions in the same order (index_put_ with accumulate), and
every feature is 0 off the support, so the row maxima and counts the head normalises with
are the same: a candidate's features equal the dense features at that item
(tests/models/candidates/test_candidate_rerank.py).
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from streamrec.state.vocab import PAD_INDEX


class ScoreSpace(Protocol):
    """Per-item feature vectors of a batch: sums, row reductions, and reading them at candidates."""

    def sum(self, rows: Tensor, items: Tensor, values: Tensor) -> Tensor:
        """Feature with sum_j values_j at (rows_j, items_j), 0 elsewhere."""
        ...

    def assign(self, rows: Tensor, items: Tensor, values: Tensor) -> Tensor:
        """Feature with values_j at (rows_j, items_j) (pairs are distinct), 0 elsewhere."""
        ...

    def per_item(self, table: Tensor) -> Tensor:
        """A per-item table [V] broadcast against features."""
        ...

    def without_padding(self, feature: Tensor) -> Tensor:
        """The feature with the padding item's entries 0."""
        ...

    def row_max(self, feature: Tensor) -> Tensor:
        """Maximum of each row's entries (0 for a row with none) [B], features are >= 0."""
        ...

    def per_row(self, stat: Tensor) -> Tensor:
        """A per-row statistic [B] broadcast against features."""
        ...

    def row_count(self, mask: Tensor) -> Tensor:
        """True entries per row [B] (float)."""
        ...

    def select(self, feature: Tensor) -> Tensor:
        """The feature at the scored items: [B, V], or [B, C] at the candidates."""
        ...


class DenseSpace:
    """Features as [B, V] tensors; `candidates` [B, C] (optional) selects columns at the end."""

    def __init__(self, batch_size: int, num_items: int, like: Tensor, candidates: Tensor | None = None) -> None:
        self.shape = (batch_size, num_items)
        self.like = like
        self.candidates = candidates

    def sum(self, rows: Tensor, items: Tensor, values: Tensor) -> Tensor:
        return self.like.new_zeros(self.shape).index_put_((rows, items), values, accumulate=True)

    def assign(self, rows: Tensor, items: Tensor, values: Tensor) -> Tensor:
        feature = self.like.new_zeros(self.shape)
        feature[rows, items] = values
        return feature

    def per_item(self, table: Tensor) -> Tensor:
        return table

    def without_padding(self, feature: Tensor) -> Tensor:
        feature[:, PAD_INDEX] = 0.0
        return feature

    def row_max(self, feature: Tensor) -> Tensor:
        return feature.amax(dim=1)

    def per_row(self, stat: Tensor) -> Tensor:
        return stat.unsqueeze(-1)

    def row_count(self, mask: Tensor) -> Tensor:
        return mask.sum(1).to(self.like.dtype)

    def select(self, feature: Tensor) -> Tensor:
        return feature if self.candidates is None else feature.gather(1, self.candidates)


class SparseSpace:
    """Features as [E] vectors over the sorted distinct (row, item) keys row * V + item of their support."""

    def __init__(self, rows: Tensor, items: Tensor, num_items: int, like: Tensor, candidates: Tensor) -> None:
        """rows/items: every pair any feature touches (any shape, duplicates allowed); candidates [B, C]."""
        self.num_items = num_items
        self.batch_size = candidates.size(0)
        self.like = like
        self.keys = torch.unique((rows * num_items + items).flatten(), sorted=True)
        self.rows = self.keys // num_items
        self.items = self.keys % num_items
        wanted = torch.arange(self.batch_size, device=candidates.device).unsqueeze(-1) * num_items + candidates
        position = torch.searchsorted(self.keys, wanted).clamp_max(max(self.keys.numel() - 1, 0))
        self.found = self.keys[position] == wanted if self.keys.numel() else torch.zeros_like(wanted, dtype=torch.bool)
        self.position = position

    def _positions(self, rows: Tensor, items: Tensor) -> Tensor:
        return torch.searchsorted(self.keys, rows * self.num_items + items)

    def sum(self, rows: Tensor, items: Tensor, values: Tensor) -> Tensor:
        zeros = self.like.new_zeros(self.keys.numel())
        return zeros.index_put_((self._positions(rows, items),), values, accumulate=True)

    def assign(self, rows: Tensor, items: Tensor, values: Tensor) -> Tensor:
        feature = self.like.new_zeros(self.keys.numel())
        feature[self._positions(rows, items)] = values
        return feature

    def per_item(self, table: Tensor) -> Tensor:
        return table[self.items]

    def without_padding(self, feature: Tensor) -> Tensor:
        return feature.masked_fill(self.items == PAD_INDEX, 0.0)

    def row_max(self, feature: Tensor) -> Tensor:
        top = self.like.new_zeros(self.batch_size)
        return top.scatter_reduce(0, self.rows, feature, reduce="amax", include_self=True)

    def per_row(self, stat: Tensor) -> Tensor:
        return stat[self.rows]

    def row_count(self, mask: Tensor) -> Tensor:
        return torch.bincount(self.rows[mask], minlength=self.batch_size).to(self.like.dtype)

    def select(self, feature: Tensor) -> Tensor:
        if feature.numel() == 0:
            return self.like.new_zeros(self.found.shape)
        return torch.where(self.found, feature[self.position], 0.0)
