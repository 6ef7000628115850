"""What the baselines share: a scorer over streaming co-occurrence statistics (state/cooccurrence.py).

The kNN and the popularity scorer read the same statistics structure, so they learn, persist,
close and account for learned clicks identically; this base holds that part once and each
subclass keeps only its algorithm (`recommend`, and what its `version` names). Learning whole
sessions offline (`fit`) streams every prefix through the same path as `observe`, so offline
and online statistics agree.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TypeVar

from streamrec.models.scorer import Query, Ranked
from streamrec.state.cooccurrence import CooccurrenceStats
from streamrec.state.learned import LearnedLedger

_Self = TypeVar("_Self", bound="StatisticsScorer")


class StatisticsScorer(ABC):
    """A Scorer that is also Fittable, Persistent, Closeable and KeepsLedger (models/scorer.py), all through `stats`."""

    name: str
    """Short scorer name, stamped on every recommendation (and naming its statistics folder)."""

    def __init__(self, stats: CooccurrenceStats) -> None:
        self.stats = stats

    @property
    def version(self) -> str:
        """`<name>-c<clicks learned>`: which statistics answered (a subclass adds what else tells them apart)."""
        return f"{self.name}-c{self.stats.clicks}"

    @abstractmethod
    def recommend(self, queries: Sequence[Query], k: int) -> list[Ranked]: ...

    def fit(self: _Self, sessions: Sequence[Sequence[str]]) -> _Self:
        """Learn whole logged sessions offline (identical to streaming their clicks through `observe`)."""
        for items in sessions:
            self.stats.observe_session(items)
        self.stats.flush()
        return self

    def observe(self, sessions: Sequence[Sequence[str]]) -> None:
        for items in sessions:
            self.stats.observe_click(items)

    @property
    def learned(self) -> LearnedLedger:
        """Which streamed clicks the statistics contain (persisted with them; see `learning_ledger`)."""
        return self.stats.learned

    def persist(self) -> None:
        """Write what `observe` learned since the last call (see `persist_scorer`)."""
        self.stats.flush()

    def close(self) -> None:
        """Flush and release persisted statistics (see `close_scorer`)."""
        self.stats.close()
