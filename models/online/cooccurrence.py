"""Streaming co-occurrence counts behind the ContextGNN head's tables (models/contextgnn.py).

The head reads, per item, its top-k neighbours under two normalisations of the same pair
counts (`cooccurrence_neighbours`): a click b following a within d <= window clicks of one
session adds 1/d to (a -> b) and backward_weight/d to (b -> a) (the kNN parameters, state/knn_params.py); "cosine"
divides by sqrt(freq(a) freq(b)) and drops re-clicks, "row" divides by the row's total (P(b | a), re-clicks kept). Batch
training recomputes both from the whole log; here every click updates the counts in place
(O(window)) and marks the touched rows dirty, and `write_tables` recomputes only the dirty
rows' top-k (O(row entries) each) and the idf weights (O(V)), so a refresh after a micro-batch
of 32 clicks costs ~ms, independent of how long the stream has run.

Approximations, bounded by design: a row keeps its `row_entries_cap` heaviest entries (the
trimmed weight stays in the row mass, so P(b | a) keeps the full row's denominator); a cosine
weight uses freq(b) as of the last time row a was rewritten. `from_tables` rebuilds counts
from a checkpoint's tables (exact for the kept top-k: total = cosine weight * sqrt(freq a freq b)),
so a resumed learner needs nothing but the checkpoint. A head with a session table
(ContextGNNHead.session_table) gets its counts from session_counts.py, fed the same clicks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from streamrec.models.contextgnn import ContextGNNHead
from streamrec.models.online.session_counts import SessionPairCounts
from streamrec.models.online.sparse_rows import SparseRows
from streamrec.models.online.topk import top_into
from streamrec.state.knn_params import KnnParams
from streamrec.state.vocab import PAD_INDEX


class StreamingCooccurrence(SparseRows):
    """Per-item pair counts (sparse_rows.py), row masses, click frequencies, indexed by embedding row."""

    def __init__(self, capacity: int, window: int, row_entries_cap: int, backward_weight: float,
                 session_pairs: bool = False) -> None:
        super().__init__(capacity, row_entries_cap)
        self.window = window
        self.backward_weight = backward_weight
        self.mass = np.zeros(capacity)
        """Total pair weight of each row, trimmed entries included (the row normalisation)."""
        self.freq = np.zeros(capacity)
        self.sessions = SessionPairCounts(capacity, row_entries_cap) if session_pairs else None
        """The session table's counts, for a head that has one (ContextGNNHead.session_table)."""
        self._seed: _Seed | None = None
        """The tables `from_tables` read, for the rows not read yet."""

    def grow(self, capacity: int) -> None:
        extra = capacity - self.capacity
        self._grow_rows(capacity)
        self.mass = np.concatenate([self.mass, np.zeros(extra)])
        self.freq = np.concatenate([self.freq, np.zeros(extra)])
        if self.sessions is not None:
            self.sessions.grow(capacity)

    def observe(self, prefix: Sequence[int], target: int) -> None:
        """Count the click `target` after the session's earlier clicks `prefix` (rows, PAD-free)."""
        self.freq[target] += 1.0
        if self.sessions is not None:
            self.sessions.observe(prefix, target)
        for distance in range(1, min(self.window, len(prefix)) + 1):
            earlier = prefix[-distance]
            self._add(earlier, target, 1.0 / distance)
            self._add(target, earlier, self.backward_weight / distance)

    def _add(self, a: int, b: int, weight: float) -> None:
        self._add_entry(a, b, weight)
        self.mass[a] += weight  # trimmed entries keep their mass

    def forget(self, item: int) -> None:
        """Erase everything known about row `item` (before the row is recycled for a new item)."""
        for source, weight in self._forget_row(item):
            self.mass[source] -= weight
        self.mass[item] = 0.0
        self.freq[item] = 0.0
        if self.sessions is not None:
            self.sessions.forget(item)

    @torch.no_grad()
    def write_tables(self, head: ContextGNNHead | None, item_counts: Tensor, idf: float) -> int:
        """Rewrite the dirty rows of the head's tables, item_counts and idf weights; returns rows rewritten."""
        item_counts.copy_(torch.from_numpy(self.freq.astype(np.float32)))
        dirty = self._take_dirty()
        if head is None:
            return 0
        share = item_counts / item_counts.sum().clamp_min(1.0)
        head.idf_weight.copy_(share.clamp_min(1e-12) ** -idf)
        session_rows = self.sessions.write(head) if self.sessions is not None and head.session_table else 0
        if not dirty:
            return session_rows
        k = head.neighbour_index.size(1)
        tables = np.zeros((4, len(dirty), k))  # cosine index, cosine weight, row index, row weight
        for position, a in enumerate(dirty):
            cols, totals = self._row_arrays(a)
            if cols.size == 0:
                continue
            top_into(tables[2:], position, cols, totals / max(self.mass[a], 1e-12), k)
            other = cols != a
            cosine = totals[other] / np.sqrt(np.maximum(self.freq[a] * self.freq[cols[other]], 1e-12))
            top_into(tables[:2], position, cols[other], cosine, k)
        index = torch.tensor(dirty, dtype=torch.long, device=head.knn_index.device)
        head.neighbour_index[index] = torch.from_numpy(tables[0]).long().to(index.device)
        head.neighbour_weight[index] = torch.from_numpy(tables[1]).float().to(index.device)
        head.knn_index[index] = torch.from_numpy(tables[2]).long().to(index.device)
        head.knn_weight[index] = torch.from_numpy(tables[3]).float().to(index.device)
        return len(dirty) + session_rows

    @classmethod
    def from_tables(
        cls, head: ContextGNNHead | None, item_counts: Tensor, knn: KnnParams | None, row_entries_cap: int
    ) -> StreamingCooccurrence:
        """Counts consistent with a checkpoint's tables (see the module docstring); `knn` None: popularity only.

        O(items), not O(items x neighbours): a row's counts are read from the tables the first time
        the row is used (`_row`), so a scoring stage that swaps in a new version every few seconds does
        not hold the interpreter for a pass over the whole catalogue at each swap.
        """
        window, backward = (knn.window, knn.backward_weight) if knn is not None else (0, 0.0)
        stats = cls(item_counts.numel(), window, row_entries_cap, backward)
        stats.freq = item_counts.detach().cpu().double().numpy().copy()
        if head is None:
            return stats
        if head.session_table:
            stats.sessions = SessionPairCounts.from_head(head, row_entries_cap)
        stats._seed = _Seed.of(head, stats.freq)
        stats._seed_rows()
        return stats

    def _read_row(self, a: int) -> dict[int, float]:
        assert self._seed is not None
        totals, mass = self._seed.row(a)
        self.mass[a] = max(mass, sum(totals.values()))
        return totals


@dataclass
class _Seed:
    """A checkpoint's windowed tables, turned into count rows one row at a time (`StreamingCooccurrence._row`).

    The inverse of `write_tables`: a cosine entry gives its pair total exactly (weight * sqrt(freq a freq b));
    a row whose P(b | a) entries share items with its cosine entries gives its mass (shared totals / shared
    probabilities), else (P only) the typical mass per click times freq(a), else (cosine only) the sum of its
    totals; P-only entries then count P * mass.
    """

    cos_index: np.ndarray
    cos_weight: np.ndarray
    row_index: np.ndarray
    row_weight: np.ndarray
    freq: np.ndarray
    """Click counts when the tables were written (the cosine weights' normalisation)."""
    _mass_per_click: float | None = None

    SAMPLE_ROWS: ClassVar[int] = 2_000
    """Rows the typical mass per click is estimated from (all of them in smaller catalogues)."""

    @classmethod
    def of(cls, head: ContextGNNHead, freq: np.ndarray) -> _Seed:
        """Views of the head's tables (rows are rewritten only once read, so the views stay the seed)."""
        return cls(head.neighbour_index.cpu().numpy(), head.neighbour_weight.cpu().numpy(),
                   head.knn_index.cpu().numpy(), head.knn_weight.cpu().numpy(), freq.copy())

    @property
    def mass_per_click(self) -> float:
        """Median mass per click of the rows whose mass is known (computed when a row first needs it)."""
        if self._mass_per_click is None:
            rows = np.arange(self.freq.size)
            if rows.size > self.SAMPLE_ROWS:
                rows = np.sort(np.random.default_rng(0).choice(rows, self.SAMPLE_ROWS, replace=False))
            ratios = [
                mass / max(self.freq[a], 1.0) for a in rows.tolist() if (mass := self._shared_mass(a)) is not None
            ]
            self._mass_per_click = float(np.median(ratios)) if ratios else 1.0
        return self._mass_per_click

    def _entries(self, a: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Row a's cosine (items, totals) and P(b | a) (items, probabilities), present entries only."""
        cos = (self.cos_weight[a] > 0) & (self.cos_index[a] != PAD_INDEX)
        cos_items = self.cos_index[a][cos]
        totals = self.cos_weight[a][cos].astype(np.float64) * np.sqrt(self.freq[a] * self.freq[cos_items])
        p = (self.row_weight[a] > 0) & (self.row_index[a] != PAD_INDEX)
        return cos_items, totals, self.row_index[a][p], self.row_weight[a][p].astype(np.float64)

    def _shared_mass(self, a: int) -> float | None:
        return self._mass_of_shared(*self._entries(a))

    @staticmethod
    def _mass_of_shared(
        cos_items: np.ndarray, totals: np.ndarray, p_items: np.ndarray, probability: np.ndarray
    ) -> float | None:
        """Shared totals / shared probabilities, None when the two rows share no item."""
        in_p, in_cos = np.isin(cos_items, p_items), np.isin(p_items, cos_items)
        return float(totals[in_p].sum() / probability[in_cos].sum()) if in_cos.any() else None

    def row(self, a: int) -> tuple[dict[int, float], float]:
        """Row a's pair totals and its mass estimate."""
        cos_items, totals, p_items, probability = self._entries(a)
        shared = self._mass_of_shared(cos_items, totals, p_items, probability)
        if shared is not None:
            mass = shared
        elif p_items.size:
            mass = self.mass_per_click * max(self.freq[a], 1.0)
        else:
            mass = float(totals.sum())
        row = dict(zip(cos_items.tolist(), totals.tolist()))
        only_p = ~np.isin(p_items, cos_items)
        row.update(zip(p_items[only_p].tolist(), (probability[only_p] * mass).tolist()))
        return row, mass
