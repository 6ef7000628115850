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
from streamrec.models.online.topk import top_into
from streamrec.state.vocab import PAD_INDEX


class SessionPairCounts:
    """n(a, b) per pair and n(a) per item, indexed by embedding row, with dirty rows."""

    def __init__(self, capacity: int, row_entries_cap: int) -> None:
        self.row_entries_cap = row_entries_cap
        self.rows: list[dict[int, float]] = [{} for _ in range(capacity)]
        self.incoming: list[set[int]] = [set() for _ in range(capacity)]
        self.sessions = np.zeros(capacity)
        self.dirty: set[int] = set()
        self._seed: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        """(index, weight, sessions, unread) of the table `from_head` read, for rows not read yet."""

    def grow(self, capacity: int) -> None:
        extra = capacity - len(self.rows)
        self.rows += [{} for _ in range(extra)]
        self.incoming += [set() for _ in range(extra)]
        self.sessions = np.concatenate([self.sessions, np.zeros(extra)])

    def observe(self, prefix: Sequence[int], target: int) -> None:
        """Count the click `target` after the session's earlier clicks `prefix` (rows, PAD-free)."""
        held = set(prefix)
        if target in held:
            return
        self.sessions[target] += 1.0
        self.dirty.add(target)  # its cosine weights change with n(target)
        for other in held:
            self._add(other, target)
            self._add(target, other)

    def _add(self, a: int, b: int) -> None:
        row = self._row(a)
        row[b] = row.get(b, 0.0) + 1.0
        self.incoming[b].add(a)
        self.dirty.add(a)
        if len(row) > self.row_entries_cap * 3 // 2:  # trim to the heaviest
            kept = dict(sorted(row.items(), key=lambda entry: entry[1], reverse=True)[: self.row_entries_cap])
            for dropped in set(row) - set(kept):
                self.incoming[dropped].discard(a)
            self.rows[a] = kept

    def forget(self, item: int) -> None:
        """Erase everything known about row `item` (before the row is recycled for a new item)."""
        if self._seed is not None:  # only read rows are in `incoming`
            for a in np.flatnonzero(self._seed[3]).tolist():
                self._row(a)
            self._seed = None
        for source in self.incoming[item]:
            self.rows[source].pop(item, None)
            self.dirty.add(source)
        for target in self.rows[item]:
            self.incoming[target].discard(item)
        self.incoming[item] = set()
        self.rows[item] = {}
        self.sessions[item] = 0.0
        self.dirty.add(item)

    @torch.no_grad()
    def write(self, head: ContextGNNHead) -> int:
        """Rewrite the dirty rows of the head's session table and its session counts; rows rewritten."""
        head.session_count.copy_(torch.from_numpy(self.sessions.astype(np.float32)))
        dirty = sorted(self.dirty)
        self.dirty.clear()
        if not dirty:
            return 0
        k = head.session_index.size(1)
        tables = np.zeros((2, len(dirty), k))  # index, weight
        for position, a in enumerate(dirty):
            row = self._row(a)
            if not row:
                continue
            cols = np.fromiter(row.keys(), dtype=np.int64, count=len(row))
            counts = np.fromiter(row.values(), dtype=np.float64, count=len(row))
            top_into(tables, position, cols, counts / np.sqrt(np.maximum(self.sessions[a] * self.sessions[cols], 1e-12)), k)
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
        counts._seed = (head.session_index.cpu().numpy(), head.session_weight.cpu().numpy(), counts.sessions.copy(),
                        np.ones(counts.sessions.size, dtype=bool))
        return counts

    def _row(self, a: int) -> dict[int, float]:
        """Row `a`'s counts, read from the seed table on first use."""
        if self._seed is not None and a < self._seed[3].size and self._seed[3][a]:
            index, weight, sessions, unread = self._seed
            unread[a] = False
            kept = (weight[a] > 0) & (index[a] != PAD_INDEX)
            items = index[a][kept]
            self.rows[a] = dict(zip(items.tolist(), (weight[a][kept] * np.sqrt(sessions[a] * sessions[items])).tolist()))
            for b in self.rows[a]:
                self.incoming[b].add(a)
        return self.rows[a]
