"""A serving model's co-occurrence tables kept fresh between published versions.

Why: a scoring stage that follows `model-updates` changes its network only when the trainer
publishes (every `training.publish_every_s`), while the online kNN learns after every batch. The
ContextGNN head's tables (models/contextgnn.py) are counts, not gradients, so the serving stage
can keep them as fresh as the kNN's: every click it answers is counted into a
StreamingCooccurrence (cooccurrence.py) built from the serving version's own tables, and the rows
it touched are rewritten after the batch (~ms for a batch of tens of clicks). Only the tables move;
the weights stay the published version's.

A hot swap must never make the tables older: the new version's tables hold the clicks the trainer
learned, up to its trained-through offset per scoring-requests partition. `take_over` re-counts
into them the clicks this stage observed at or after those offsets (a bounded buffer of the latest
`buffer_clicks` clicks with their partition/offset), so the tables after a swap hold everything
they held before, by the new version's counting.

Bounded approximations: an item the serving version does not know (a new item the trainer has
not published yet) is left out of the prefix and a click on it counts nothing here; after a
restart the counts start again from the version's tables (clicks since then wait for the next
version, which learned them). The buffer keeps each click's window, not its whole session, so a
re-count after a swap pairs a click in the session table only with the clicks of that window.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

from streamrec.models.online.cooccurrence import StreamingCooccurrence
from streamrec.models.recommender import SessionRecommender
from streamrec.state.vocab import PAD_INDEX, ItemVocabulary

Position = tuple[int, int]
"""(scoring-requests partition, offset) of an observed click."""


class ServingTables:
    """Streaming counts behind one serving model's head; `observe` counts clicks and rewrites touched rows."""

    def __init__(
        self, model: SessionRecommender, vocab: ItemVocabulary, row_entries_cap: int, buffer_clicks: int
    ) -> None:
        self.model = model
        self.vocab = vocab
        self.stats = StreamingCooccurrence.from_tables(model.head, model.item_counts, model.config.knn, row_entries_cap)
        self.window = max(self.stats.window, 0)
        self.recent: collections.deque[tuple[Position, tuple[str, ...]]] = collections.deque(maxlen=buffer_clicks)
        """The latest observed clicks (last `window` earlier clicks + the click), for `take_over`."""
        self.clicks_counted = 0

    def observe(self, sessions: Sequence[Sequence[str]], positions: Sequence[Position | None]) -> int:
        """Count each session's last click after its earlier ones, then rewrite the touched rows; rows rewritten."""
        for session, position in zip(sessions, positions):
            if not session:
                continue
            tail = tuple(session[-(self.window + 1) :])
            if position is not None:
                self.recent.append((position, tail))
            # the session table pairs the whole session
            self._count(session if self.stats.sessions is not None else tail)
        return self.write()

    def take_over(self, previous: ServingTables, trained_through: dict[int, int]) -> int:
        """Re-count the clicks `previous` observed that this version did not train on; keep its buffer; rows rewritten.

        `trained_through[p]`: the next offset of partition p the trainer had not read when it published.
        """
        for (partition, offset), tail in previous.recent:
            if offset >= trained_through.get(partition, 0):
                self._count(tail)
        self.recent = previous.recent
        return self.write()

    def write(self) -> int:
        head = self.model.head
        return self.stats.write_tables(head, self.model.item_counts, head.knn.idf if head is not None else 0.0)

    def _count(self, tail: Sequence[str]) -> None:
        target = self.vocab.index(tail[-1])
        if target == PAD_INDEX or target >= self.stats.capacity:
            return
        prefix = [
            row for row in (self.vocab.index(item) for item in tail[:-1])
            if row != PAD_INDEX and row < self.stats.capacity
        ]
        self.stats.observe(prefix, target)
        self.clicks_counted += 1
