"""Streaming counts behind the ContextGNN head's session table (contextgnn.session_neighbours).

The session table weighs a pair of items by the sessions holding both, cosine-normalised by the
sessions holding each: S(a, b) = n(a, b) / sqrt(n(a) n(b)). On the stream, a click on an item the
session does not hold yet opens one more session for that item (n(b) += 1) and one more shared
session with each distinct item already in it (n(a, b) += 1 both ways); a re-click changes nothing.
Rows are rewritten lazily, as the windowed tables are (cooccurrence.py): only dirty rows' top-k.

Bounded approximations: a row keeps its `row_entries_cap` heaviest entries; the session is what the
caller passes (a scoring request's session window, not necessarily the whole visit), so an item
re-clicked after it left that window opens its session a second time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from streamrec.models.contextgnn import ContextGNNHead
from streamrec.models.online.sparse_rows import SparseRows
from streamrec.models.online.topk import top_into
from streamrec.state.vocab import PAD_INDEX


class SessionPairCounts(SparseRows):
    """n(a, b) per pair (sparse_rows.py) and n(a) per item, indexed by embedding row."""

    def __init__(self, capacity: int, row_entries_cap: int) -> None:
        super().__init__(capacity, row_entries_cap)
        self.sessions = np.zeros(capacity)
        self._seed: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        """(index, weight, sessions) of the table `from_head` read, for rows not read yet."""

    def grow(self, capacity: int) -> None:
        extra = capacity - self.capacity
        self._grow_rows(capacity)
        self.sessions = np.concatenate([self.sessions, np.zeros(extra)])

    def observe(self, prefix: Sequence[int], target: int) -> None:
        """Count the click `target` after the session's earlier clicks `prefix` (rows, PAD-free)."""
        held = set(prefix)
        if target in held:
            return
        self.sessions[target] += 1.0
        self.dirty.add(target)  # its cosine weights change with n(target)
        for other in held:
            self._add_entry(other, target, 1.0)
            self._add_entry(target, other, 1.0)

    def forget(self, item: int) -> None:
        """Erase everything known about row `item` (before the row is recycled for a new item)."""
        self._forget_row(item)
        self.sessions[item] = 0.0

    @torch.no_grad()
    def write(self, head: ContextGNNHead) -> int:
        """Rewrite the dirty rows of the head's session table and its session counts; rows rewritten."""
        head.session_count.copy_(torch.from_numpy(self.sessions.astype(np.float32)))
        dirty = self._take_dirty()
        if not dirty:
            return 0
        k = head.session_index.size(1)
        tables = np.zeros((2, len(dirty), k))  # index, weight
        for position, a in enumerate(dirty):
            cols, counts = self._row_arrays(a)
            cosine = counts / np.sqrt(np.maximum(self.sessions[a] * self.sessions[cols], 1e-12))
            top_into(tables, position, cols, cosine, k)
        rows = torch.tensor(dirty, dtype=torch.long, device=head.session_index.device)
        head.session_index[rows] = torch.from_numpy(tables[0]).long().to(rows.device)
        head.session_weight[rows] = torch.from_numpy(tables[1]).float().to(rows.device)
        return len(dirty)

    @classmethod
    def from_head(cls, head: ContextGNNHead, row_entries_cap: int) -> SessionPairCounts:
        """Counts consistent with a checkpoint's session table (exact for the kept top-k: n(a, b) = S sqrt(n(a) n(b))),
        each row read from the table when first used (O(items) here, as StreamingCooccurrence.from_tables)."""
        counts = cls(head.session_index.size(0), row_entries_cap)
        counts.sessions = head.session_count.detach().cpu().double().numpy().copy()
        counts._seed = (head.session_index.cpu().numpy(), head.session_weight.cpu().numpy(), counts.sessions.copy())
        counts._seed_rows()
        return counts

    def _read_row(self, a: int) -> dict[int, float]:
        assert self._seed is not None
        index, weight, sessions = self._seed
        kept = (weight[a] > 0) & (index[a] != PAD_INDEX)
        items = index[a][kept]
        return dict(zip(items.tolist(), (weight[a][kept] * np.sqrt(sessions[a] * sessions[items])).tolist()))
