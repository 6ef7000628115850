"""The one interface every recommender implements: a batch of queries in, ranked lists out.

The streaming scoring stage, `streamrec evaluate` and `streamrec replay` all call
scorers only through this, so a torch model replaces the kNN baseline without
touching the backbone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from streamrec.state.learned import LearnedLedger

Ranked = list[tuple[str, float]]
"""(item_id, score) pairs, best first."""


@dataclass(frozen=True)
class Query:
    """What a scorer may know at the moment of one click."""

    session_items: Sequence[str]
    """The session's clicks so far, oldest first; the last is the click being answered."""
    history_items: Sequence[str] = ()
    """The user's long-term history (closed sessions), oldest first; empty for anonymous visitors."""
    user_id: str | None = None
    exclude: frozenset[str] = field(default_factory=frozenset)
    """Items that must not be recommended (e.g. already purchased, or masked by an evaluation protocol)."""


@runtime_checkable
class Scorer(Protocol):
    """What every scorer does; what only some do is one of the capability protocols below."""

    name: str
    """Short scorer name, stamped on every recommendation."""

    @property
    def version(self) -> str:
        """Version stamp of what is being served (model checkpoint id, statistics epoch)."""
        ...

    def recommend(self, queries: Sequence[Query], k: int) -> list[Ranked]:
        """Top-k items for each query, in query order. Never raises on unknown items."""
        ...

    def observe(self, sessions: Sequence[Sequence[str]]) -> None:
        """Learn the newest click of each session (online statistics); a frozen model ignores it.

        Each sequence is a session's clicks so far, oldest first, and only its LAST click is
        new: the scoring stage calls this once per batch, after `recommend`, with each new
        click's `session_items`, so a scorer counts what that click adds and never recounts
        the earlier ones (a redelivered click is filtered out before). Learning whole logged
        sessions offline is a scorer's own business (the baselines are `Fittable`: `fit` streams
        every prefix through the same path, so offline and online statistics agree). What a
        `Persistent` scorer learned becomes durable at the next `persist_scorer` call: the
        scoring stage makes it right before it commits the offsets of the clicks learned, so
        after a crash the statistics and the re-read clicks agree (nothing counted twice or lost).
        """
        ...


# --- optional capabilities ------------------------------------------------------------
# A scorer declares what else it can do by having these members; the stream and the
# evaluator ask with isinstance (all runtime_checkable), never by looking a name up, so a
# renamed method is a type error at its declaration, not a capability silently lost.


@runtime_checkable
class Closeable(Protocol):
    """Holds something to release when the stage stops (RocksDB locks, device memory)."""

    def close(self) -> None:
        """Flush and release; the statistics can be reopened at once after it."""
        ...


@runtime_checkable
class Persistent(Protocol):
    """Learns into durable statistics; `persist` writes what `observe` learned since the last call."""

    def persist(self) -> None: ...


@runtime_checkable
class KeepsLedger(Protocol):
    """Its statistics carry the ledger of which streamed clicks they contain (state/learned.py)."""

    @property
    def learned(self) -> LearnedLedger | None:
        """None when it has no statistics of its own (e.g. a checkpoint served without a fallback)."""
        ...


@runtime_checkable
class ObservesPositions(Protocol):
    """Learns each click with its scoring-requests (partition, offset), so a hot swap can re-count what a new
    version missed; the learner calls this instead of `observe` (None: a click read from no partition)."""

    def observe_at(self, sessions: Sequence[Sequence[str]], positions: Sequence[tuple[int, int] | None]) -> None: ...


@runtime_checkable
class ReadsHistory(Protocol):
    """Whether `Query.history_items` matter to it: long-term memory models (the GLAD presets) read them."""

    @property
    def reads_history(self) -> bool: ...


@runtime_checkable
class Fittable(Protocol):
    """Learns whole logged sessions offline in one call (the baselines: every prefix, as streaming them would)."""

    def fit(self, sessions: Sequence[Sequence[str]]) -> object: ...


@runtime_checkable
class RunsOnDevice(Protocol):
    """Computes on an accelerator or the CPU (torch models); reported with what the stage serves."""

    @property
    def device(self) -> object: ...


def close_scorer(scorer: Scorer) -> None:
    """Release what a scorer holds if it is `Closeable`; the scoring stage calls this when it stops,
    so persisted statistics are flushed and can be reopened at once."""
    if isinstance(scorer, Closeable):
        scorer.close()


def persist_scorer(scorer: Scorer) -> None:
    """Make what a scorer learned durable if it is `Persistent` (frozen models and in-memory statistics need
    nothing)."""
    if isinstance(scorer, Persistent):
        scorer.persist()


def learning_ledger(scorer: Scorer) -> LearnedLedger | None:
    """The ledger of clicks a scorer's statistics contain (`KeepsLedger`), or None.

    The scoring stage consults it so that no click is learned twice across crashes and
    re-emissions (state/learned.py); a scorer without one gets an in-memory ledger from the stage.
    Anything but a LearnedLedger under that name is no ledger.
    """
    ledger = scorer.learned if isinstance(scorer, KeepsLedger) else None
    return ledger if isinstance(ledger, LearnedLedger) else None


def reads_history(scorer: Scorer) -> bool:
    """Whether `scorer` uses `Query.history_items` (`ReadsHistory`; False for a scorer that does not say).

    The baselines and memory-less graph models do not, and sending them history only costs
    bytes on every scoring request.
    """
    return isinstance(scorer, ReadsHistory) and bool(scorer.reads_history)
