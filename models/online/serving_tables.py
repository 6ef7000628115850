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

New items: a click on an item the serving version does not know (the trainer has not
published it yet) gives it a row at once, as the learner does (models/online/catalogue.py): its
embedding starts as the mean of the items clicked before it in the session, it becomes rankable,
and its counts start. Without this a new item stayed out of every prefix and answer until the
next version reached the stage, which the prequential guard and queueing can delay by tens of
seconds; a re-click of the session's last item, the commonest next click, was then unrankable.
The spare rows of the version are used first; when none is left the tables grow
(`item_capacity_spare`), except on the candidate path, whose index covers the version's rows
only: there an item beyond the spare rows waits for the next version (`items_left_out`).

Bounded approximation: after a restart the counts start again from the version's tables
(clicks since then wait for the next version, which learned them). The buffer keeps each click
as it was counted (its window, or its whole session when the head has a session table), so a
re-count pairs it as the first count did.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

from streamrec.models.online.catalogue import grow_model, grown_capacity, init_row
from streamrec.models.online.cooccurrence import StreamingCooccurrence
from streamrec.models.recommender import SessionRecommender
from streamrec.state.vocab import PAD_INDEX, ItemVocabulary

Position = tuple[int, int]
"""(scoring-requests partition, offset) of an observed click."""


class ServingTables:
    """Streaming counts behind one serving model's head; `observe` counts clicks (new items get rows) and rewrites
    touched rows. `model` and `vocab` are the serving ones: rows are added to them in place, and a growth
    replaces `model` (the scorer serves `tables.model`)."""

    def __init__(
        self, model: SessionRecommender, vocab: ItemVocabulary, row_entries_cap: int, buffer_clicks: int,
        item_capacity_spare: float = 1.0, may_grow: bool = True,
    ) -> None:
        self.model = model
        self.vocab = vocab
        self.item_capacity_spare = item_capacity_spare
        self.may_grow = may_grow
        self.items_added = 0
        """Items first seen here that got a row."""
        self.items_left_out = 0
        """Clicks on items that found no row (no spare row, growth off): they wait for the next version."""
        self.stats = StreamingCooccurrence.from_tables(model.head, model.item_counts, model.config.knn, row_entries_cap)
        self.window = max(self.stats.window, 0)
        self.recent: collections.deque[tuple[Position, tuple[str, ...]]] = collections.deque(maxlen=buffer_clicks)
        """The latest observed clicks as they were counted (the click after the earlier ones it was paired with),
        for `take_over`."""
        self.clicks_counted = 0

    def observe(self, sessions: Sequence[Sequence[str]], positions: Sequence[Position | None]) -> int:
        """Count each session's last click after its earlier ones, then rewrite the touched rows; rows rewritten."""
        for session, position in zip(sessions, positions):
            if not session:
                continue
            # the session table pairs the whole session, the others the window before the click
            counted = tuple(session if self.stats.sessions is not None else session[-(self.window + 1) :])
            if position is not None:
                self.recent.append((position, counted))
            self._count(counted)
        return self.write()

    def take_over(self, previous: ServingTables, trained_through: dict[int, int]) -> int:
        """Re-count the clicks `previous` observed that this version did not train on; keep its buffer; rows rewritten.

        `trained_through[p]`: the next offset of partition p the trainer had not read when it published.
        """
        for (partition, offset), counted in previous.recent:
            if offset >= trained_through.get(partition, 0):
                self._count(counted)
        self.recent = previous.recent
        return self.write()

    def write(self) -> int:
        head = self.model.head
        return self.stats.write_tables(head, self.model.item_counts, head.knn.idf if head is not None else 0.0)

    def _count(self, clicks: Sequence[str]) -> None:
        """Count the last click after the earlier ones; an item first seen gets a row first (`_admit`)."""
        rows: list[int] = []
        for item in clicks:
            row = self.vocab.index(item)
            rows.append(row if row != PAD_INDEX else self._admit(item, rows))
        *prefix, target = rows
        if target == PAD_INDEX:
            return
        self.stats.observe([row for row in prefix if row != PAD_INDEX], target)
        self.clicks_counted += 1

    def _admit(self, item: str, co_clicked: Sequence[int]) -> int:
        """A row for `item` (a spare one, else after growing), started from the items clicked before it; PAD_INDEX
        when there is none."""
        if len(self.vocab) >= self.model.num_items:
            if not self.may_grow:
                self.items_left_out += 1
                return PAD_INDEX
            capacity = grown_capacity(self.model.num_items, len(self.vocab) + 1, self.item_capacity_spare)
            self.model = grow_model(self.model, capacity)
            self.stats.grow(capacity)
        row = self.vocab.add(item)
        init_row(self.model, row, [r for r in co_clicked if r != PAD_INDEX])
        self.model.rankable[row] = True
        self.items_added += 1
        return row
