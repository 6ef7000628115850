"""Item co-occurrence and popularity statistics for the kNN and popularity scorers.

One data structure, fed one click at a time (the newest click of a session plus the
clicks before it), so offline fitting and online streaming build identical numbers:

- popularity: how often each item was clicked;
- neighbours: for each item `a`, a capped row of items `b` that followed (or preceded)
  it within `window` clicks of one session, weighted by 1/distance; forward transitions
  (a then b) get weight 1, backward ones `backward_weight`.

Time decay without touching old entries: every increment is multiplied by a boost
g = 2 ** (clicks / half_life_clicks) that grows with the click count, which ranks exactly
like multiplying every stored weight by 2 ** (-1 / half_life) after each click. When g gets
large every weight is divided by it once and g restarts at 1.

Memory: a row keeps at most `max_neighbours` entries (it is trimmed to that, keeping the
heaviest, whenever it grows 50% past it). With a RocksDB path, rows live on disk and at
most `max_cached_rows` sit in memory; popularity counts (one float per item) stay in
memory. Nothing here knows Kafka or torch.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from operator import itemgetter
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
from rocksdict import Options, Rdict, WriteBatch

from streamrec.state.learned import LearnedLedger
from streamrec.state.rocks import raw_items

_ROW = b"n\x00"
_POP = b"p\x00"
_META = b"m\x00meta"
_ITEM = itemgetter(0)
_COUNT = itemgetter(1)
_RESCALE_AT_LOG2 = 60.0
"""Divide everything by the boost once it reaches 2**60 (floats keep ~2**1000 of headroom)."""


@dataclass(frozen=True)
class CooccurrencePolicy:
    """How clicks become statistics; changing it invalidates stored statistics."""

    window: int = 5
    """A click pairs with up to this many earlier clicks of its session (0: popularity only)."""
    backward_weight: float = 0.5
    """Weight of the reverse pair (b -> a) relative to the forward transition (a -> b)."""
    max_neighbours: int = 100
    """Entries kept per row."""
    half_life_clicks: float = 0.0
    """After this many further clicks an observation counts half (0: no decay)."""
    top_items: int = 1000
    """Most popular items tracked exactly for the popularity fallback."""


class CooccurrenceStats:
    """Popularity and capped, time-decayed neighbour rows; optionally persisted in RocksDB."""

    def __init__(
        self, policy: CooccurrencePolicy, path: Path | None = None, max_cached_rows: int = 200_000,
        learned_ids_kept: int = 100_000,
    ) -> None:
        self.policy = policy
        self.clicks = 0
        """Clicks observed since the statistics were created (survives restarts when persisted)."""
        self.learned = LearnedLedger(learned_ids_kept)
        """Which streamed clicks these counts contain (state/learned.py); flushed in the same WriteBatch."""
        self._log2_boost = 0.0
        self._pop: dict[str, float] = {}
        self._top: dict[str, float] = {}
        self._top_sorted: list[tuple[str, float]] | None = None
        self._top_floor = 0.0
        self._rows: OrderedDict[str, dict[str, float]] = OrderedDict()
        self._dirty_rows: set[str] = set()
        self._dirty_pop: set[str] = set()
        self._max_cached_rows = max_cached_rows
        self._rescale_due = False
        self._db: Rdict | None = None
        if path is not None:
            self._open(path)

    # ---- reading -------------------------------------------------------------------

    def __contains__(self, item: str) -> bool:
        return item in self._pop

    def popularity(self, item: str) -> float:
        """Decayed click count of `item` in current units (0 for unknown items)."""
        return self._pop.get(item, 0.0)

    @property
    def popularities(self) -> Mapping[str, float]:
        """Every item's decayed click count, read-only (for scorers that look up many items per query)."""
        return MappingProxyType(self._pop)

    def top(self, n: int, exclude: Iterable[str] = ()) -> list[tuple[str, float]]:
        """The n most popular items not in `exclude`, with their counts, most popular first."""
        if self._top_sorted is None:  # count descending, then item ascending: two stable sorts on C-level keys
            by_item = sorted(self._top.items(), key=_ITEM)
            self._top_sorted = sorted(by_item, key=_COUNT, reverse=True)
        skip = set(exclude)
        return list(itertools.islice(((i, c) for i, c in self._top_sorted if i not in skip), n))

    def neighbours(self, item: str) -> dict[str, float]:
        """Row of `item`: neighbour -> decayed, distance-weighted co-occurrence (empty when unknown).

        The live row, for reading only: callers must not mutate it.
        """
        if item not in self._pop:
            return {}
        return self._row(item)

    # ---- learning ------------------------------------------------------------------

    def observe_click(self, session_items: Sequence[str]) -> None:
        """Count the LAST click of `session_items`: its popularity and its pairs with earlier clicks."""
        if not session_items:
            return
        boost = self._boost()
        new = session_items[-1]
        self._add_pop(new, boost)
        for distance in range(1, min(self.policy.window, len(session_items) - 1) + 1):
            earlier = session_items[-1 - distance]
            weight = boost / distance
            self._add_pair(earlier, new, weight)
            if self.policy.backward_weight > 0:
                self._add_pair(new, earlier, weight * self.policy.backward_weight)
        self.clicks += 1
        if self._log2_boost >= _RESCALE_AT_LOG2:
            if self._db is None:
                self._rescale()
            else:  # persisted: at the end of the next flush, which writes the batch's clicks with their ledger entries
                self._rescale_due = True

    def observe_session(self, items: Sequence[str]) -> None:
        """Count a whole logged session: the same as observing each of its prefixes in turn."""
        for end in range(1, len(items) + 1):
            self.observe_click(items[:end])

    def _boost(self) -> float:
        if self.policy.half_life_clicks > 0:
            self._log2_boost += 1.0 / self.policy.half_life_clicks
        return 2.0**self._log2_boost

    def _add_pop(self, item: str, weight: float) -> None:
        count = self._pop[item] = self._pop.get(item, 0.0) + weight
        self._dirty_pop.add(item)
        self._offer_top(item, count)

    def _offer_top(self, item: str, count: float) -> None:
        """Keep `_top` a superset of the `top_items` most popular items.

        An item outside it has a count <= `_top_floor` (the smallest count kept at the last
        trim), and counts only grow, so anything that beats the floor is let in and the set
        stays exact; it is trimmed back to `top_items` whenever it doubles.
        """
        if item not in self._top and len(self._top) >= self.policy.top_items and count <= self._top_floor:
            return
        self._top[item] = count
        self._top_sorted = None
        if len(self._top) > 2 * self.policy.top_items:
            self._top = dict(heapq.nlargest(self.policy.top_items, self._top.items(), key=lambda kv: kv[1]))
            self._top_floor = min(self._top.values())

    def _add_pair(self, a: str, b: str, weight: float) -> None:
        row = self._row(a)
        row[b] = row.get(b, 0.0) + weight
        self._dirty_rows.add(a)
        if len(row) > self.policy.max_neighbours * 3 // 2:
            self._rows[a] = dict(heapq.nlargest(self.policy.max_neighbours, row.items(), key=lambda kv: kv[1]))

    def _row(self, item: str) -> dict[str, float]:
        row = self._rows.get(item)
        if row is None:
            raw = self._db.get(_ROW + item.encode()) if self._db is not None else None
            row = self._rows[item] = orjson.loads(raw) if raw is not None else {}
        else:
            self._rows.move_to_end(item)
        return row

    def _rescale(self) -> None:
        """Divide every stored weight by the boost so it restarts at 1 (ranking unchanged).

        Rare (once per 60 half-lives). Persisted, it runs right after a flush: the popularity
        counts and the reset boost are written in one batch that also records the rows' rescale
        as pending; the rows are then streamed (never all loaded) in chunks, each written with
        its progress, so a crash in between is finished when the statistics are reopened.
        """
        factor = 2.0**-self._log2_boost
        self._log2_boost = 0.0
        for table in (self._pop, self._top):
            for item in table:
                table[item] *= factor
        self._top_sorted = None
        self._top_floor *= factor
        if self._db is None:
            for row in self._rows.values():
                for b in row:
                    row[b] *= factor
            return
        self._rows.clear()  # the flush before wrote every changed row; they are read back scaled
        batch = WriteBatch(raw_mode=True)
        for item, count in self._pop.items():
            batch.put(_POP + item.encode(), orjson.dumps(count))
        batch.put(_META, orjson.dumps(self._meta(rows_rescale={"factor": factor, "after": None})))
        self._db.write(batch)
        self._dirty_pop.clear()
        self._scale_stored_rows(factor, after=None)

    # ---- persistence ---------------------------------------------------------------

    def _open(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self._db = Rdict(str(path), Options(raw_mode=True))
        self.learned.load(self._db)
        meta_raw = self._db.get(_META)
        if meta_raw is None:
            return
        meta = orjson.loads(meta_raw)
        if meta["policy"] != asdict(self.policy):
            raise ValueError(f"statistics in {path} were built with {meta['policy']}, not {asdict(self.policy)}")
        self.clicks, self._log2_boost = meta["clicks"], meta["log2_boost"]
        if "rows_rescale" in meta:  # a crash interrupted a rescale: finish it before anything reads a row
            self._scale_stored_rows(meta["rows_rescale"]["factor"], after=meta["rows_rescale"]["after"])
        for key, value in raw_items(self._db, _POP):
            if not key.startswith(_POP):
                break
            item, count = key[len(_POP) :].decode(), orjson.loads(value)
            self._pop[item] = count
            self._offer_top(item, count)

    def _scale_stored_rows(self, factor: float, after: str | None, chunk: int = 10_000) -> None:
        """Multiply the stored rows after key `after` (hex; None: all) by `factor`, chunk by chunk with progress."""
        assert self._db is not None
        start = bytes.fromhex(after) if after is not None else _ROW
        batch, pending, last = WriteBatch(raw_mode=True), 0, None
        for key, value in raw_items(self._db, start):
            if not key.startswith(_ROW):
                break
            if key == start and after is not None:
                continue
            batch.put(key, orjson.dumps({b: w * factor for b, w in orjson.loads(value).items()}))
            pending, last = pending + 1, key
            if pending >= chunk:
                batch.put(_META, orjson.dumps(self._meta(rows_rescale={"factor": factor, "after": last.hex()})))
                self._db.write(batch)
                batch, pending = WriteBatch(raw_mode=True), 0
        batch.put(_META, orjson.dumps(self._meta()))
        self._db.write(batch)

    def _meta(self, rows_rescale: dict[str, Any] | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {"policy": asdict(self.policy), "clicks": self.clicks, "log2_boost": self._log2_boost}
        if rows_rescale is not None:
            meta["rows_rescale"] = rows_rescale
        return meta

    def flush(self) -> None:
        """Write what changed since the last flush in one atomic batch; bound the row cache."""
        if self._db is None:
            return
        batch = WriteBatch(raw_mode=True)
        for item in self._dirty_rows:
            batch.put(_ROW + item.encode(), orjson.dumps(self._rows[item]))
        for item in self._dirty_pop:
            batch.put(_POP + item.encode(), orjson.dumps(self._pop[item]))
        batch.put(_META, orjson.dumps(self._meta()))
        self.learned.write_into(batch)  # the counts and the record of what they contain, atomically
        self._db.write(batch)
        self._dirty_rows.clear()
        self._dirty_pop.clear()
        if self._rescale_due:
            self._rescale_due = False
            self._rescale()
        while len(self._rows) > self._max_cached_rows:
            self._rows.popitem(last=False)

    def close(self) -> None:
        """Flush and release the RocksDB lock (a no-op in memory)."""
        if self._db is not None:
            self.flush()
            self._db.close()
            self._db = None

