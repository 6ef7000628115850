"""Which clicks a set of statistics has learned: so that none is ever learned twice.

The scoring stage reads its input at least once: after a crash it re-reads everything past its
last committed offsets, and the stateful stage, after ITS crash, re-emits scoring requests (new
offsets, the same event_id). Statistics that counted a click must not count it again, so the
statistics carry this ledger, persisted in the SAME RocksDB WriteBatch as the counts
(state/cooccurrence.py `flush`): after any crash the counts and the ledger agree.

Two records, each for one kind of repeat:

- per (topic, partition) the learned-offset watermark (the next offset not yet learned): a
  re-read record (offset below it) is not learned again, however long ago it was learned;
- the last `capacity` learned event_ids (oldest forgotten first): a re-emitted request (new
  offset) is recognised by its event_id. Re-emissions follow the original within the stateful
  stage's commit interval (seconds of clicks), so a bounded window suffices: a repeat further
  than `capacity` clicks away from the original would be learned twice.

A `redelivered` flag on scoring requests was considered instead of the id window: the stateful
stage cannot know which of its outputs the scoring stage already learned (it re-emits after
ITS crash, before anything tells it), so the flag would be a guess; the ledger is exact.
Nothing here knows Kafka: partitions are named by strings.
"""

from __future__ import annotations

import struct
from collections import OrderedDict

import orjson
from rocksdict import Rdict, WriteBatch

from streamrec.state.rocks import raw_items

_ID = b"l\x00"
_MARK = b"w\x00"
_SEQ = struct.Struct(">Q")


class LearnedLedger:
    """A bounded, persistable record of learned event_ids and per-partition offset watermarks."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.durable = False
        """True once loaded from (and so flushed to) a store: a crash keeps what was flushed."""
        self._ids: OrderedDict[str, int] = OrderedDict()
        self._next_seq = 0
        self._marks: dict[str, int] = {}
        self._new_ids: list[tuple[int, str]] = []
        self._forgotten: list[int] = []
        self._dirty_marks: set[str] = set()

    def __len__(self) -> int:
        return len(self._ids)

    def seen(self, event_id: str, source: str | None = None, offset: int | None = None) -> bool:
        """Whether this click was learned: its offset is below `source`'s watermark, or its event_id is remembered."""
        if source is not None and offset is not None and offset < self._marks.get(source, -1):
            return True
        return event_id in self._ids

    def mark(self, event_id: str, source: str | None = None, offset: int | None = None) -> None:
        """Record that the click was learned (call once its statistics are updated)."""
        if event_id not in self._ids:
            seq = self._next_seq
            self._next_seq += 1
            self._ids[event_id] = seq
            if self.durable:  # pending writes only for a ledger that is flushed (else they would pile up)
                self._new_ids.append((seq, event_id))
            while len(self._ids) > self.capacity:
                _, old = self._ids.popitem(last=False)
                if self.durable:
                    self._forgotten.append(old)
        if source is not None and offset is not None and offset + 1 > self._marks.get(source, -1):
            self._marks[source] = offset + 1
            self._dirty_marks.add(source)

    def watermark(self, source: str) -> int | None:
        """The next offset of `source` not learned yet (None: nothing of it learned)."""
        return self._marks.get(source)

    # ---- persistence (called by the statistics that own the ledger) -----------------

    def load(self, db: Rdict) -> None:
        """Read the ledger from `db` (keys it wrote); keeps the newest `capacity` ids."""
        self.durable = True
        for key, value in raw_items(db, _ID):
            if not key.startswith(_ID):
                break
            seq = _SEQ.unpack(key[len(_ID):])[0]
            self._ids[value.decode()] = seq
            self._next_seq = seq + 1
        while len(self._ids) > self.capacity:
            self._forgotten.append(self._ids.popitem(last=False)[1])
        for key, value in raw_items(db, _MARK):
            if not key.startswith(_MARK):
                break
            self._marks[key[len(_MARK):].decode()] = orjson.loads(value)

    def write_into(self, batch: WriteBatch) -> None:
        """Add what changed since the last call to `batch` (the statistics' atomic write)."""
        for seq, event_id in self._new_ids:
            if event_id in self._ids and self._ids[event_id] == seq:
                batch.put(_ID + _SEQ.pack(seq), event_id.encode())
        for seq in self._forgotten:
            batch.delete(_ID + _SEQ.pack(seq))
        for source in self._dirty_marks:
            batch.put(_MARK + source.encode(), orjson.dumps(self._marks[source]))
        self._new_ids.clear()
        self._forgotten.clear()
        self._dirty_marks.clear()
