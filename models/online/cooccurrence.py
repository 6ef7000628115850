"""Streaming co-occurrence counts behind the ContextGNN head's tables (models/contextgnn.py).

The head reads, per item, its top-k neighbours under two normalisations of the same pair
counts (`cooccurrence_neighbours`): a click b following a within d <= window clicks of one
session adds 1/d to (a -> b) and backward_weight/d to (b -> a) (the kNN parameters, state/knn_params.py); "cosine" divides by sqrt(freq(a) freq(b))
and drops re-clicks, "row" divides by the row's total (P(b | a), re-clicks kept). Batch
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

import numpy as np
import torch
from torch import Tensor

from streamrec.models.contextgnn import ContextGNNHead
from streamrec.models.online.session_counts import SessionPairCounts
from streamrec.models.online.topk import top_into
from streamrec.state.knn_params import KnnParams
from streamrec.state.vocab import PAD_INDEX

class StreamingCooccurrence:
    """Per-item pair counts, click frequencies and dirty rows, indexed by embedding row."""

    def __init__(self, capacity: int, window: int, row_entries_cap: int, backward_weight: float,
                 session_pairs: bool = False) -> None:
        self.window = window
        self.backward_weight = backward_weight
        self.row_entries_cap = row_entries_cap
        self.rows: list[dict[int, float]] = [{} for _ in range(capacity)]
        self.incoming: list[set[int]] = [set() for _ in range(capacity)]
        """incoming[b]: rows holding an entry for b (to purge b when its row is recycled)."""
        self.mass = np.zeros(capacity)
        """Total pair weight of each row, trimmed entries included (the row normalisation)."""
        self.freq = np.zeros(capacity)
        self.dirty: set[int] = set()
        self.sessions = SessionPairCounts(capacity, row_entries_cap) if session_pairs else None
        """The session table's counts, for a head that has one (ContextGNNHead.session_table)."""

    @property
    def capacity(self) -> int:
        return len(self.rows)

    def grow(self, capacity: int) -> None:
        extra = capacity - self.capacity
        self.rows += [{} for _ in range(extra)]
        self.incoming += [set() for _ in range(extra)]
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
        row = self.rows[a]
        row[b] = row.get(b, 0.0) + weight
        self.incoming[b].add(a)
        self.mass[a] += weight
        self.dirty.add(a)
        if len(row) > self.row_entries_cap * 3 // 2:  # trim to the heaviest, keeping their mass
            kept = sorted(row.items(), key=lambda entry: entry[1], reverse=True)[: self.row_entries_cap]
            for dropped in set(row) - {b for b, _ in kept}:
                self.incoming[dropped].discard(a)
            self.rows[a] = dict(kept)

    def forget(self, item: int) -> None:
        """Erase everything known about row `item` (before the row is recycled for a new item)."""
        for source in self.incoming[item]:
            weight = self.rows[source].pop(item, 0.0)
            self.mass[source] -= weight
            self.dirty.add(source)
        for target in self.rows[item]:
            self.incoming[target].discard(item)
        self.incoming[item] = set()
        self.rows[item] = {}
        self.mass[item] = 0.0
        self.freq[item] = 0.0
        self.dirty.add(item)
        if self.sessions is not None:
            self.sessions.forget(item)

    @torch.no_grad()
    def write_tables(self, head: ContextGNNHead | None, item_counts: Tensor, idf: float) -> int:
        """Rewrite the dirty rows of the head's tables, item_counts and idf weights; returns rows rewritten."""
        item_counts.copy_(torch.from_numpy(self.freq.astype(np.float32)))
        dirty = sorted(self.dirty)
        self.dirty.clear()
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
            row = self.rows[a]
            if not row:
                continue
            cols = np.fromiter(row.keys(), dtype=np.int64, count=len(row))
            totals = np.fromiter(row.values(), dtype=np.float64, count=len(row))
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
        """Counts consistent with a checkpoint's tables (see the module docstring); `knn` None: popularity only."""
        window, backward = (knn.window, knn.backward_weight) if knn is not None else (0, 0.0)
        stats = cls(item_counts.numel(), window, row_entries_cap, backward)
        stats.freq = item_counts.detach().cpu().double().numpy().copy()
        if head is None:
            return stats
        if head.session_table:
            stats.sessions = SessionPairCounts.from_head(head, row_entries_cap)
        cos_index, cos_weight = head.neighbour_index.cpu().numpy(), head.neighbour_weight.cpu().double().numpy()
        row_index, row_weight = head.knn_index.cpu().numpy(), head.knn_weight.cpu().double().numpy()
        ratios: list[float] = []
        pending: list[int] = []
        for a in range(stats.capacity):
            totals = {
                int(b): float(w * np.sqrt(stats.freq[a] * stats.freq[b]))
                for b, w in zip(cos_index[a], cos_weight[a])
                if w > 0 and b != PAD_INDEX
            }
            probability = {int(b): float(p) for b, p in zip(row_index[a], row_weight[a]) if p > 0 and b != PAD_INDEX}
            shared = [b for b in probability if b in totals]
            if shared:
                mass = sum(totals[b] for b in shared) / sum(probability[b] for b in shared)
                ratios.append(mass / max(stats.freq[a], 1.0))
            elif probability:
                pending.append(a)  # mass estimated below from the typical mass per click
                mass = 0.0
            else:
                mass = sum(totals.values())
            for b, p in probability.items():
                totals.setdefault(b, p * mass)
            stats._install(a, totals, mass)
        per_click = float(np.median(ratios)) if ratios else 1.0
        for a in pending:
            mass = per_click * max(stats.freq[a], 1.0)
            probability = {int(b): float(p) for b, p in zip(row_index[a], row_weight[a]) if p > 0 and b != PAD_INDEX}
            stats._install(a, {b: p * mass for b, p in probability.items()}, mass)
        stats.dirty.clear()
        return stats

    def _install(self, a: int, totals: dict[int, float], mass: float) -> None:
        self.rows[a] = totals
        for b in totals:
            self.incoming[b].add(a)
        self.mass[a] = max(mass, sum(totals.values()))
