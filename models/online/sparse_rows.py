"""Sparse per-item count rows: the store behind every streamed table of the ContextGNN head.

Row a maps other items to a count. A row is capped at its `row_entries_cap` heaviest entries (trimmed
when it reaches 1.5x the cap, so trimming is amortised); `incoming[b]` lists the rows holding b, so a
recycled item is purged from every row in O(rows holding it); `dirty` collects the rows a table
rewrite must recompute. Rows rebuilt from a checkpoint's table are read lazily: `seed` marks every row
unread, and a subclass's `_read_row` turns one table row into counts the first time `_row` asks for it,
so rebuilding costs O(items) instead of a pass over items x neighbours.
"""

from __future__ import annotations

import numpy as np


class SparseRows:
    """rows[a] = {b: count}, capped; incoming[b] = rows holding b; dirty rows; lazily read seed rows."""

    def __init__(self, capacity: int, row_entries_cap: int) -> None:
        self.row_entries_cap = row_entries_cap
        self.rows: list[dict[int, float]] = [{} for _ in range(capacity)]
        self.incoming: list[set[int]] = [set() for _ in range(capacity)]
        """incoming[b]: rows holding an entry for b (to purge b when its row is recycled)."""
        self.dirty: set[int] = set()
        self._unread: np.ndarray | None = None
        """Rows still only in the seed table (None: no seed, or every row read)."""

    @property
    def capacity(self) -> int:
        return len(self.rows)

    def _grow_rows(self, capacity: int) -> None:
        extra = capacity - self.capacity
        self.rows += [{} for _ in range(extra)]
        self.incoming += [set() for _ in range(extra)]

    def _seed_rows(self) -> None:
        """Every row is now read from the seed table on first use (`_read_row`)."""
        self._unread = np.ones(self.capacity, dtype=bool)

    def _read_row(self, a: int) -> dict[int, float]:
        """Row a's counts from the seed table (subclasses that seed implement it)."""
        raise NotImplementedError

    def _row(self, a: int) -> dict[int, float]:
        """Row `a`'s counts, read from the seed table on first use."""
        unread = self._unread
        if unread is not None and a < unread.size and unread[a]:
            unread[a] = False
            self.rows[a] = self._read_row(a)
            for b in self.rows[a]:
                self.incoming[b].add(a)
        return self.rows[a]

    def _read_all(self) -> None:
        """Every row from the seed (before a forget: only read rows are in `incoming`)."""
        if self._unread is not None:
            for a in np.flatnonzero(self._unread).tolist():
                self._row(a)
            self._unread = None

    def _add_entry(self, a: int, b: int, weight: float) -> None:
        """rows[a][b] += weight; a full row keeps its heaviest `row_entries_cap` entries."""
        row = self._row(a)
        row[b] = row.get(b, 0.0) + weight
        self.incoming[b].add(a)
        self.dirty.add(a)
        if len(row) > self.row_entries_cap * 3 // 2:
            kept = dict(sorted(row.items(), key=lambda entry: entry[1], reverse=True)[: self.row_entries_cap])
            for dropped in set(row) - set(kept):
                self.incoming[dropped].discard(a)
            self.rows[a] = kept

    def _forget_row(self, item: int) -> list[tuple[int, float]]:
        """Remove `item` from every row and empty its own row; the (row, count) pairs removed from other rows."""
        self._read_all()
        removed = [(source, self.rows[source].pop(item, 0.0)) for source in self.incoming[item]]
        self.dirty.update(source for source, _ in removed)
        for target in self.rows[item]:
            self.incoming[target].discard(item)
        self.incoming[item] = set()
        self.rows[item] = {}
        self.dirty.add(item)
        return removed

    def _row_arrays(self, a: int) -> tuple[np.ndarray, np.ndarray]:
        """Row a as (items int64, counts float64) arrays, for a table rewrite."""
        row = self._row(a)
        return (np.fromiter(row.keys(), dtype=np.int64, count=len(row)),
                np.fromiter(row.values(), dtype=np.float64, count=len(row)))

    def _take_dirty(self) -> list[int]:
        """The dirty rows, in order, now clean."""
        dirty = sorted(self.dirty)
        self.dirty.clear()
        return dirty
